"""Reading the weight files people actually have, and mapping them onto this project's model definitions.

- The authors' RAFT checkpoints are `torch.nn.DataParallel` state dicts: every key starts with `module.`.
- torchvision's RAFT state dicts use other module names; `torchvision_raft_to_authors` renames them.
- Plain state dicts (already in the authors' names) load as they are.
- FlowNetPytorch's `.pth.tar` files are dicts holding `state_dict`, `arch` and `div_flow`.
"""
import json
import os
import re
from collections import OrderedDict
from typing import Dict, List, Mapping, Optional, Tuple

import torch
from torch import Tensor, nn

from .paths import MODELS_DIR

DATA_PARALLEL_PREFIX = "module."


class CheckpointError(ValueError):
    pass


def flow_scale(checkpoint) -> Optional[float]:
    """FlowNet checkpoints store the factor between network output and pixels as `div_flow`."""
    if isinstance(checkpoint, Mapping) and isinstance(checkpoint.get("div_flow"), (int, float)):
        return float(checkpoint["div_flow"])
    return None


def strip_data_parallel(state: Mapping[str, Tensor]) -> "OrderedDict[str, Tensor]":
    """Removes the `module.` prefix that torch.nn.DataParallel adds to every key."""
    return OrderedDict((k[len(DATA_PARALLEL_PREFIX):] if k.startswith(DATA_PARALLEL_PREFIX) else k, v)
                       for k, v in state.items())


def unwrap(checkpoint) -> Mapping[str, Tensor]:
    """The state dict inside a checkpoint file's object (a bare state dict, or a dict holding one)."""
    if isinstance(checkpoint, Mapping):
        for key in ("state_dict", "model", "model_state_dict"):
            if key in checkpoint and isinstance(checkpoint[key], Mapping):
                return checkpoint[key]
        if all(isinstance(v, Tensor) for v in checkpoint.values()):
            return checkpoint
    raise CheckpointError(f"expected a state dict (a mapping of names to tensors), got {type(checkpoint).__name__}")


def key_rules(key_format: str) -> List[Tuple[str, str]]:
    """A key format's renaming rules, from models/weights.json (the one place they are defined; the addon applies
    the same rules). The file writes replacements as `$1`; Python's re writes them as `\\g<1>`."""
    with open(os.path.join(MODELS_DIR, "weights.json"), encoding="utf-8") as f:
        formats = json.load(f)["keyFormats"]
    if key_format not in formats:
        raise CheckpointError(f"unknown key format {key_format!r}; known: {', '.join(formats)}")
    rules = formats[key_format]["rules"]
    return [(pattern, re.sub(r"\$(\d)", r"\\g<\1>", replacement)) for pattern, replacement in rules]


def rename(state: Mapping[str, Tensor], key_format: str) -> "OrderedDict[str, Tensor]":
    """Applies a key format's rules to every key, in order."""
    rules = key_rules(key_format)
    out: "OrderedDict[str, Tensor]" = OrderedDict()
    for key, value in state.items():
        name = key
        for pattern, replacement in rules:
            name = re.sub(pattern, replacement, name)
        out[name] = value
    return out


def torchvision_raft_to_authors(state: Mapping[str, Tensor], *, small: bool) -> "OrderedDict[str, Tensor]":
    """Renames a torchvision `raft_large` / `raft_small` state dict to the authors' parameter names."""
    out = rename(state, "torchvision-raft-small" if small else "torchvision-raft")
    # The authors' blocks register the projection's norm twice (as normN and inside `downsample`), and
    # load_state_dict wants both names.
    for name, value in list(out.items()):
        shortcut = re.match(r"^(.*\.layer\d\.\d)\.downsample\.1\.(.*)$", name)
        if shortcut:
            alias = "norm4" if small else "norm3"
            out[f"{shortcut.group(1)}.{alias}.{shortcut.group(2)}"] = value
    return out


def load_into(model: nn.Module, state: Mapping[str, Tensor]) -> None:
    """Loads `state` into `model`, naming every missing, unexpected or mis-shaped key."""
    state = strip_data_parallel(state)
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [f"{k} (file {tuple(state[k].shape)}, model {tuple(v.shape)})"
             for k, v in expected.items() if k in state and tuple(state[k].shape) != tuple(v.shape)]
    problems = []
    if missing:
        problems.append(f"missing keys: {', '.join(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {', '.join(unexpected)}")
    if wrong:
        problems.append(f"mis-shaped keys: {', '.join(wrong)}")
    if problems:
        raise CheckpointError("; ".join(problems))
    model.load_state_dict(state, strict=True)


def state_from(checkpoint, *, source: str = "auto", small: bool = False) -> Dict[str, Tensor]:
    """The state dict of a loaded weight file of the authors (`module.` keys), torchvision, or a plain one."""
    state = unwrap(checkpoint)
    if source == "auto":
        source = "torchvision" if any(k.startswith("feature_encoder.") for k in state) else "authors"
    if source == "torchvision":
        return torchvision_raft_to_authors(state, small=small)
    if source == "authors":
        return strip_data_parallel(state)
    raise CheckpointError(f"source must be 'auto', 'authors' or 'torchvision', got {source!r}")


def load_weights(path: str) -> Dict[str, object]:
    """A trainer checkpoint (its dict, the state dict under 'model'), a plain state dict, or an export's TorchScript
    file (then {'model': its state dict})."""
    try:
        return {"model": torch.jit.load(path, map_location="cpu").state_dict()}
    except RuntimeError:
        return torch.load(path, map_location="cpu")
