"""How a frame is padded before it enters a model, and cropped after: the one definition on the Python side.

The addon (binding/Padding.cc) and the TypeScript library (lib/padding.ts) define the same thing; a test checks
all three agree. Frames are replicate-padded to a multiple of the model's stride, and to at least its minimum
size, centred as the RAFT authors' evaluation pads (extra row or column at the bottom or right).
"""
from typing import NamedTuple

import torch
import torch.nn.functional as F


class Padding(NamedTuple):
    top: int
    left: int
    padded_height: int
    padded_width: int


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def padding_for(height: int, width: int, *, stride: int, min_size: int) -> Padding:
    padded_height = max(_round_up(height, stride), _round_up(min_size, stride))
    padded_width = max(_round_up(width, stride), _round_up(min_size, stride))
    return Padding((padded_height - height) // 2, (padded_width - width) // 2, padded_height, padded_width)


def pad(image: torch.Tensor, padding: Padding) -> torch.Tensor:
    """Replicate-pads an (N, C, H, W) image as `padding` says."""
    height, width = image.shape[-2:]
    pads = [padding.left, padding.padded_width - width - padding.left,
            padding.top, padding.padded_height - height - padding.top]
    return F.pad(image, pads, mode="replicate") if any(pads) else image


def crop(flow: torch.Tensor, padding: Padding, height: int, width: int) -> torch.Tensor:
    """The (N, 2, H, W) flow of the original frame, out of the padded frame's flow."""
    return flow[..., padding.top:padding.top + height, padding.left:padding.left + width]
