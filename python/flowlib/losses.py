"""Training losses of the two model families, and the end-point error metric."""
from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from .raft import coords_grid


def end_point_error(flow: Tensor, target: Tensor, valid: Optional[Tensor] = None) -> Tensor:
    """Mean Euclidean distance between predicted and true flow vectors (N, 2, H, W), over valid pixels."""
    epe = torch.linalg.vector_norm(flow - target, dim=1)
    if valid is None:
        return epe.mean()
    mask = valid > 0.5
    return epe[mask].mean() if mask.any() else epe.new_zeros(())


def sequence_loss(flows: Sequence[Tensor], target: Tensor, valid: Optional[Tensor] = None, *,
                  gamma: float = 0.8, max_flow: float = 400.0) -> Tensor:
    """RAFT's loss (Section 3.4): L1 distance of every iteration's flow to the truth, weighted gamma^(N - i).

    Later iterations count more; pixels marked invalid, or with a true motion above `max_flow`, are ignored.
    """
    if not flows:
        raise ValueError("flows must hold at least one prediction")
    if not 0 < gamma <= 1:
        raise ValueError(f"gamma must be in (0, 1], got {gamma}")
    magnitude = torch.linalg.vector_norm(target, dim=1)
    mask = magnitude < max_flow
    if valid is not None:
        mask = mask & (valid > 0.5)
    mask = mask.unsqueeze(1).float()
    n = len(flows)
    total = target.new_zeros(())
    for i, flow in enumerate(flows):
        weight = gamma ** (n - i - 1)
        total = total + weight * ((flow - target).abs() * mask).sum() / (mask.sum() * 2).clamp(min=1)
    return total


# FlowNet's weights for flow2 .. flow6: the coarser the scale, the higher the weight (Dosovitskiy et al., 2015).
FLOWNET_SCALE_WEIGHTS = (0.005, 0.01, 0.02, 0.08, 0.32)


def multiscale_epe_loss(predictions: Sequence[Tensor], target: Tensor, *,
                        weights: Sequence[float] = FLOWNET_SCALE_WEIGHTS, div_flow: float = 20.0) -> Tensor:
    """FlowNet's loss: at each scale, the EPE against the truth scaled by 1/div_flow and area-downsampled
    to that scale, weighted per scale (finest first, as the network returns flow2 .. flow6)."""
    if len(predictions) != len(weights):
        raise ValueError(f"expected {len(weights)} predictions (one per weight), got {len(predictions)}")
    scaled = target / div_flow
    total = target.new_zeros(())
    for prediction, weight in zip(predictions, weights):
        h, w = prediction.shape[-2:]
        downsampled = F.adaptive_avg_pool2d(scaled, (h, w))
        total = total + weight * end_point_error(prediction, downsampled)
    return total


# Self-supervised training on unlabelled video (as UnFlow, UFlow and SMURF do): the first frame should match the
# second warped back by the flow, where the pixel is visible in both; the flow should be smooth except at edges.

def backward_warp(image: Tensor, flow: Tensor) -> Tuple[Tensor, Tensor]:
    """`image` (N, C, H, W) sampled at x + flow(x), bilinearly, and a (N, 1, H, W) mask of the pixels whose
    target lies inside the frame."""
    n, _, h, w = flow.shape
    target = coords_grid(n, h, w, flow.device, flow.dtype) + flow
    x, y = target[:, 0], target[:, 1]
    grid = torch.stack([2 * x / max(w - 1, 1) - 1, 2 * y / max(h - 1, 1) - 1], dim=-1)
    warped = F.grid_sample(image, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
    inside = ((x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1)).unsqueeze(1).to(flow.dtype)
    return warped, inside


CENSUS_RADIUS = 3


def census_transform(image: Tensor, radius: int = CENSUS_RADIUS) -> Tensor:
    """Soft census signature of an RGB 0..255 image (N, 3, H, W): for each of the (2r+1)^2 neighbours, the
    difference to the centre in grey level, squashed to (-1, 1). Invariant to additive and, mostly, to
    multiplicative lighting changes."""
    grey = (0.299 * image[:, 0:1] + 0.587 * image[:, 1:2] + 0.114 * image[:, 2:3])
    side = 2 * radius + 1
    patches = F.unfold(grey, side, padding=radius).view(image.shape[0], side * side, *image.shape[-2:])
    difference = patches - grey
    return difference / torch.sqrt(0.81 + difference ** 2)


def census_distance(signature1: Tensor, signature2: Tensor) -> Tensor:
    """Soft Hamming distance of two census signatures, (N, 1, H, W)."""
    squared = (signature1 - signature2) ** 2
    return (squared / (0.1 + squared)).sum(dim=1, keepdim=True)


def fb_visible(forward: Tensor, backward: Tensor) -> Tensor:
    """Pixels of the first frame visible in the second, (N, 1, H, W) in {0, 1}, by forward-backward consistency
    (Meister et al., UnFlow): the forward flow and the backward flow at its target must nearly cancel, and the
    target must lie inside the frame."""
    back, inside = backward_warp(backward, forward)
    mismatch = ((forward + back) ** 2).sum(dim=1, keepdim=True)
    bound = 0.01 * ((forward ** 2).sum(dim=1, keepdim=True) + (back ** 2).sum(dim=1, keepdim=True)) + 0.5
    return (mismatch < bound).to(forward.dtype) * inside


def edge_aware_smoothness(flow: Tensor, image: Tensor, edge_weight: float = 10.0) -> Tensor:
    """Mean second-order difference of the flow (px per px^2), down-weighted across image edges (ARFlow)."""
    grey = image.mean(dim=1, keepdim=True) / 255.0
    wx = torch.exp(-edge_weight * (grey[..., :, 1:] - grey[..., :, :-1]).abs())[..., :, 1:]
    wy = torch.exp(-edge_weight * (grey[..., 1:, :] - grey[..., :-1, :]).abs())[..., 1:, :]
    ddx = (flow[..., :, 2:] - 2 * flow[..., :, 1:-1] + flow[..., :, :-2]).abs()
    ddy = (flow[..., 2:, :] - 2 * flow[..., 1:-1, :] + flow[..., :-2, :]).abs()
    return (wx * ddx).mean() + (wy * ddy).mean()


def photometric_sequence_loss(forward_flows: Sequence[Tensor], backward_flows: Sequence[Tensor], image1: Tensor,
                              image2: Tensor, *, gamma: float = 0.8, smoothness: float = 10.0) -> Tensor:
    """The self-supervised counterpart of `sequence_loss`, over both directions of a pair: for every iteration, the
    census distance between each frame and the other warped back by that iteration's flow, over the pixels the last
    iteration's flows find visible in both (a robust penalty, normalised by their count), plus `smoothness` times the
    edge-aware second-order smoothness; weighted gamma^(N - i) as the supervised loss is."""
    if not forward_flows or len(forward_flows) != len(backward_flows):
        raise ValueError(f"expected as many forward as backward flows (at least one), got {len(forward_flows)} and "
                         f"{len(backward_flows)}")
    with torch.no_grad():
        visible1 = fb_visible(forward_flows[-1], backward_flows[-1])
        visible2 = fb_visible(backward_flows[-1], forward_flows[-1])
    signature1, signature2 = census_transform(image1), census_transform(image2)
    # The census of a border pixel sees the zero padding: leave a band of its radius out.
    r = CENSUS_RADIUS
    border = torch.zeros_like(visible1)
    border[..., r:-r, r:-r] = 1
    mask1, mask2 = visible1 * border, visible2 * border
    count1, count2 = mask1.sum().clamp(min=1), mask2.sum().clamp(min=1)
    n = len(forward_flows)
    total = image1.new_zeros(())
    for i, (forward, backward) in enumerate(zip(forward_flows, backward_flows)):
        weight = gamma ** (n - i - 1)
        for flow, first, second, mask, count, image in ((forward, signature1, signature2, mask1, count1, image1),
                                                        (backward, signature2, signature1, mask2, count2, image2)):
            warped, _ = backward_warp(second, flow)
            penalty = (census_distance(first, warped) + 0.01) ** 0.4
            photometric = (penalty * mask).sum() / count
            total = total + weight * (photometric + smoothness * edge_aware_smoothness(flow, image))
    return total
