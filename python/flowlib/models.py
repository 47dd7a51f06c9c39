"""The architectures this project exports, by name, with their properties: the one source of truth for both.

Each export carries these properties (typed module attributes read by the addon, and the `flow_metadata` JSON read
by the TypeScript library); `python -m flowlib.models` prints the registry that models/architectures.json holds.
"""
import json
import sys
from typing import Any, Dict

import torch
from torch import nn

from .flownet import FlowNetC, FlowNetS
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
_FLOWNET = {"family": "flownet", "stride": 64, "min_size": 64, "default_iterations": 1, "accepts_flow_init": False,
            "upsampling": "bilinear"}
# FlowNetPytorch's four variants, and the FlowNet2 repository's FlowNet2-S / FlowNet2-C.
_FLOWNET_VARIANTS = {
    "flownets": (FlowNetS, False, False), "flownets-bn": (FlowNetS, True, False),
    "flownetc": (FlowNetC, False, False), "flownetc-bn": (FlowNetC, True, False),
    "flownet2-s": (FlowNetS, False, True), "flownet2-c": (FlowNetC, False, True),
}
for _name in _FLOWNET_VARIANTS:
    ARCHITECTURES[_name] = dict(_FLOWNET, entry_points=["forward"])
# Properties that also travel as typed module attributes, so the addon reads them without parsing JSON.
TYPED_ATTRIBUTES = {"stride": "flow_stride", "min_size": "flow_min_size",
                    "default_iterations": "flow_default_iterations"}


def build(arch: str) -> nn.Module:
    if arch == "raft":
        return RAFT(small=False)
    if arch == "raft-small":
        return RAFT(small=True)
    if arch in _FLOWNET_VARIANTS:
        cls, batch_norm, flownet2 = _FLOWNET_VARIANTS[arch]
        return cls(batch_norm=batch_norm, flownet2=flownet2)
    raise ValueError(f"arch must be one of {', '.join(ARCHITECTURES)}, got {arch!r}")


def is_small(arch: str) -> bool:
    return arch == "raft-small"


def registry() -> Dict[str, Dict[str, Any]]:
    """What models/architectures.json holds: every architecture's properties."""
    return {arch: {key: value for key, value in sorted(properties.items()) if key != "entry_points"}
            for arch, properties in ARCHITECTURES.items()}


def attach_metadata(model: nn.Module, info: Dict[str, Any]) -> None:
    """Sets the export's metadata on a module before scripting: the JSON and the typed attributes."""
    model.flow_metadata = json.dumps(info, sort_keys=True)
    for key, attribute in TYPED_ATTRIBUTES.items():
        setattr(model, attribute, int(info[key]))
    # An export without weights refuses to run until weights (or an explicit request for random ones) are given.
    model.flow_weightless = bool(info.get("weightless", False))
    # RAFT's networks follow their weights' type (raft.RAFT.compute_dtype), so the loader may cast them to bfloat16.
    model.flow_mixed_precision = info["family"] == "raft"


def metadata(arch: str, *, name: str, trained_on: str, weights_source: str) -> Dict[str, Any]:
    info = {"entry_points": ["forward", "encode_features", "encode_context", "refine", "refine_adaptive",
                             "forward_project"],
            "input_normalization": "2 * x / 255 - 1"}
    info.update(ARCHITECTURES[arch])
    if info["family"] == "flownet":
        info["input_normalization"] = ("(x - mean of the pair per channel) / 255" if arch.startswith("flownet2")
                                       else "x / 255 - (0.45, 0.432, 0.411)")
    info.update({
        "format": 1,
        "name": name,
        "arch": arch,
        "input": "rgb, float32 0..255, NCHW, sides a multiple of stride",
        "output": "flow in pixels, NCHW with 2 channels (u, v)",
        "trained_on": trained_on,
        "weights_source": weights_source,
        "torch_version": torch.__version__,
    })
    return info


if __name__ == "__main__":
    json.dump(registry(), sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")
