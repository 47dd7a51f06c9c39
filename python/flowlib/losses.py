"""Training losses of the two model families, and the end-point error metric."""
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor


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
