"""The architectures this project exports, by name, with their export metadata."""
from typing import Any, Dict

import torch
from torch import nn

from .raft import RAFT

ARCHITECTURES: Dict[str, Dict[str, Any]] = {
    "raft": {
        "family": "raft", "stride": 8, "min_size": 64, "default_iterations": 12,
        "accepts_flow_init": True, "upsampling": "convex",
    },
    "raft-small": {
        "family": "raft", "stride": 8, "min_size": 64, "default_iterations": 12,
        "accepts_flow_init": True, "upsampling": "bilinear",
    },
}


def build(arch: str) -> nn.Module:
    if arch == "raft":
        return RAFT(small=False)
    if arch == "raft-small":
        return RAFT(small=True)
    raise ValueError(f"arch must be one of {', '.join(ARCHITECTURES)}, got {arch!r}")


def is_small(arch: str) -> bool:
    return arch == "raft-small"


def metadata(arch: str, *, name: str, trained_on: str, weights_source: str) -> Dict[str, Any]:
    info = dict(ARCHITECTURES[arch])
    info.update({
        "format": 1,
        "name": name,
        "arch": arch,
        "input": "rgb, float32 0..255, NCHW, sides a multiple of stride",
        "output": "flow in pixels, NCHW with 2 channels (u, v)",
        "entry_points": ["forward", "encode_features", "encode_context", "refine"],
        "trained_on": trained_on,
        "weights_source": weights_source,
        "torch_version": torch.__version__,
    })
    return info
