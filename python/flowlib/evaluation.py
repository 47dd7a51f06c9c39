"""End-point error on the shared validation samples (FlyingChairs pairs and the Sintel pair), for any method."""
import glob
import os
from typing import Callable, Dict, List, Tuple

import numpy as np
import torch

from .flowio import read_flo, read_rgb
from .models import ARCHITECTURES
from .padding import crop, pad, padding_for
from .paths import SHARED_DATA


Pair = Tuple[np.ndarray, np.ndarray, np.ndarray]  # image1 (H, W, 3) uint8 RGB, image2, flow (H, W, 2)
Method = Callable[[np.ndarray, np.ndarray], np.ndarray]


def validation_sets(root: str = SHARED_DATA) -> Dict[str, List[Pair]]:
    """{'chairs': [...9 pairs], 'sintel': [1 pair]}; empty when the data is absent."""
    sets: Dict[str, List[Pair]] = {}
    chairs = sorted(glob.glob(os.path.join(root, "flyingchairs", "*-img0.ppm")))
    if chairs:
        sets["chairs"] = [(read_rgb(p), read_rgb(p.replace("-img0", "-img1")),
                           read_flo(p.replace("-img0.ppm", "-gt.flo")))
                          for p in chairs]
    sintel = os.path.join(root, "sintel")
    if os.path.exists(os.path.join(sintel, "flow_0001.flo")):
        sets["sintel"] = [(read_rgb(os.path.join(sintel, "frame_0001.png")),
                           read_rgb(os.path.join(sintel, "frame_0002.png")),
                           read_flo(os.path.join(sintel, "flow_0001.flo")))]
    return sets


def epe(flow: np.ndarray, truth: np.ndarray) -> float:
    valid = np.abs(truth).max(axis=2) < 1e9
    return float(np.linalg.norm(flow - truth, axis=2)[valid].mean())


def zero_flow(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The no-motion baseline; its EPE is the mean true speed."""
    return np.zeros(a.shape[:2] + (2,), np.float32)


def evaluate(method: Method, sets: Dict[str, List[Pair]]) -> Dict[str, float]:
    """Mean EPE per set (the average over its pairs)."""
    return {name: float(np.mean([epe(method(a, b), gt) for a, b, gt in pairs])) for name, pairs in sets.items()}


def raft_method(model: torch.nn.Module, iterations: int = 12, *, arch: str = "raft-small") -> Method:
    """Wraps an eager RAFT as a method, padded and cropped as the addon does for that architecture."""
    properties = ARCHITECTURES[arch]

    def run(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        h, w = a.shape[:2]
        padding = padding_for(h, w, stride=properties["stride"], min_size=properties["min_size"])
        t1 = pad(torch.from_numpy(a).permute(2, 0, 1)[None].float(), padding)
        t2 = pad(torch.from_numpy(b).permute(2, 0, 1)[None].float(), padding)
        with torch.inference_mode():
            flow = model(t1, t2, iterations)
        return crop(flow, padding, h, w)[0].permute(1, 2, 0).numpy()

    return run
