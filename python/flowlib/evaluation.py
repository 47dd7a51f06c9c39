"""Accuracy on the shared validation data (FlyingChairs samples, Sintel training pairs, KITTI 2015 and 2012 driving
pairs), the same code for every method.

Per set: EPE (the mean over pairs of each pair's mean end-point error, as RAFT's evaluation reports KITTI), Fl-all
(the share of all valid pixels of the set whose error is over 3 px and over 5% of the true motion) and EPE by true
speed (under 10, 10-40 and over 40 px, over the pooled pixels). Only pixels with known flow count: KITTI's valid
mask, Sintel's pixels outside its invalid mask, and .flo values under 1e9.

And the still sky of the shared dashcam clip (video/solidWhiteRight.mp4, a camera driving down a highway under a
clear sky), which has no ground truth but needs none: the sky is at infinity, so the camera's small rotations move it
by a fraction of a pixel, and any motion found there is made up.
"""
import glob
import os
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional

import numpy as np
import torch

from .flowio import read_flo, read_kitti_flow, read_mask, read_rgb
from .models import ARCHITECTURES
from .padding import crop, pad, padding_for
from .paths import SHARED_DATA

Method = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (H, W, 3) uint8 RGB twice -> (H, W, 2) float32 flow

SPEED_BANDS = (("s0-10", 0.0, 10.0), ("s10-40", 10.0, 40.0), ("s40+", 40.0, float("inf")))
# The sets, in the order tables show them. 'sintel-demo' is the single Sintel pair of mmflow's demo; 'sintel' the
# five training pairs (clean and final).
SET_NAMES = ("chairs", "sintel", "kitti2015", "kitti2012", "sintel-demo")


@dataclass
class Sample:
    name: str
    image1: np.ndarray  # (H, W, 3) uint8 RGB
    image2: np.ndarray
    flow: np.ndarray  # (H, W, 2) float32
    valid: np.ndarray  # (H, W) bool: pixels whose flow is known and counted


def _known(flow: np.ndarray) -> np.ndarray:
    return np.abs(flow).max(axis=2) < 1e9


def _chairs(root: str) -> List[Sample]:
    samples = []
    for path in sorted(glob.glob(os.path.join(root, "flyingchairs", "*-img0.ppm"))):
        flow = read_flo(path.replace("-img0.ppm", "-gt.flo"))
        samples.append(Sample(os.path.basename(path)[:-9], read_rgb(path), read_rgb(path.replace("-img0", "-img1")),
                              flow, _known(flow)))
    return samples


def _sintel_training(root: str) -> List[Sample]:
    base = os.path.join(root, "sintel-training")
    samples = []
    for path in sorted(glob.glob(os.path.join(base, "flow", "*", "frame_*.flo"))):
        scene, frame = os.path.basename(os.path.dirname(path)), os.path.basename(path)[:-4]
        number = int(frame.split("_")[1])
        flow = read_flo(path)
        valid = _known(flow)
        invalid = os.path.join(base, "invalid", scene, frame + ".png")
        if os.path.exists(invalid):
            valid &= ~read_mask(invalid)
        for render in ("clean", "final"):
            first = os.path.join(base, render, scene, frame + ".png")
            second = os.path.join(base, render, scene, f"frame_{number + 1:04d}.png")
            if os.path.exists(first) and os.path.exists(second):
                samples.append(Sample(f"{render}/{scene}/{frame}", read_rgb(first), read_rgb(second), flow, valid))
    return samples


def _kitti(root: str, folder: str, images: str, flows: str) -> List[Sample]:
    samples = []
    for path in sorted(glob.glob(os.path.join(root, folder, flows, "*_10.png"))):
        name = os.path.basename(path)[:-7]
        first = os.path.join(root, folder, images, f"{name}_10.png")
        second = os.path.join(root, folder, images, f"{name}_11.png")
        if os.path.exists(first) and os.path.exists(second):
            flow, valid = read_kitti_flow(path)
            samples.append(Sample(name, read_rgb(first), read_rgb(second), flow, valid))
    return samples


def _sintel_demo(root: str) -> List[Sample]:
    folder = os.path.join(root, "sintel")
    if not os.path.exists(os.path.join(folder, "flow_0001.flo")):
        return []
    flow = read_flo(os.path.join(folder, "flow_0001.flo"))
    return [Sample("frame_0001", read_rgb(os.path.join(folder, "frame_0001.png")),
                   read_rgb(os.path.join(folder, "frame_0002.png")), flow, _known(flow))]


def validation_sets(root: str = SHARED_DATA, names: Optional[List[str]] = None) -> Dict[str, List[Sample]]:
    """The sets present under root (all of SET_NAMES by default), each a list of samples; sets without data are left
    out, so the result is empty when the data is absent."""
    readers = {"chairs": lambda: _chairs(root), "sintel": lambda: _sintel_training(root),
               "kitti2015": lambda: _kitti(root, "kitti2015", "image_2", "flow_occ"),
               "kitti2012": lambda: _kitti(root, "kitti2012", "image_0", "flow_noc"),
               "sintel-demo": lambda: _sintel_demo(root)}
    unknown = [name for name in names or [] if name not in readers]
    if unknown:
        raise ValueError(f"unknown validation set {unknown[0]!r}; the sets are {', '.join(SET_NAMES)}")
    sets = {name: readers[name]() for name in (names or SET_NAMES)}
    return {name: samples for name, samples in sets.items() if samples}


def pair_errors(flow: np.ndarray, sample: Sample):
    """End-point errors and true speeds of the counted pixels of one pair."""
    if flow.shape != sample.flow.shape:
        raise ValueError(f"{sample.name}: flow is {flow.shape}, truth is {sample.flow.shape}")
    error = np.linalg.norm(flow - sample.flow, axis=2)[sample.valid]
    speed = np.linalg.norm(sample.flow, axis=2)[sample.valid]
    return error, speed


def set_metrics(errors: List[np.ndarray], speeds: List[np.ndarray]) -> Dict[str, float]:
    error, speed = np.concatenate(errors), np.concatenate(speeds)
    result = {"epe": float(np.mean([e.mean() for e in errors])),
              "fl_all": float(((error > 3) & (error > 0.05 * speed)).mean())}
    for band, low, high in SPEED_BANDS:
        inside = (speed >= low) & (speed < high)
        result[band] = float(error[inside].mean()) if inside.any() else float("nan")
    return result


def evaluate_full(method: Method, sets: Dict[str, List[Sample]]) -> Dict[str, Dict[str, float]]:
    """{set: {epe, fl_all, s0-10, s10-40, s40+}} for a method."""
    results = {}
    for name, samples in sets.items():
        errors, speeds = zip(*(pair_errors(method(s.image1, s.image2), s) for s in samples))
        results[name] = set_metrics(list(errors), list(speeds))
    return results


def evaluate(method: Method, sets: Dict[str, List[Sample]]) -> Dict[str, float]:
    """Mean EPE per set."""
    return {name: row["epe"] for name, row in evaluate_full(method, sets).items()}


def zero_flow(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The no-motion baseline; its EPE is the mean true speed."""
    return np.zeros(a.shape[:2] + (2,), np.float32)


# The checkpoint selection rule, fixed before the runs it selects: the geometric mean, over these measures, of the
# model's figure divided by OpenCV DIS medium's on the same pairs. Under 1 means better than DIS medium on balance;
# every measure counts alike whatever its scale.
SELECTION_MEASURES = (("chairs", "epe"), ("sintel", "epe"), ("kitti2015", "epe"), ("kitti2015", "fl_all"))


def selection_score(scores: Dict[str, Dict[str, float]], reference: Dict[str, Dict[str, float]]) -> float:
    """The rule above over the measures present in both; when none is (a validation restricted to other sets), the
    same over the EPE of every set present in both."""
    measures = [(s, m) for s, m in SELECTION_MEASURES if s in scores and s in reference]
    measures = measures or [(s, "epe") for s in scores if s in reference]
    ratios = [scores[s][m] / reference[s][m] for s, m in measures]
    return float(np.exp(np.mean(np.log(ratios)))) if ratios else float("nan")


# How the catalogue (models/weights.json) and `flow.info.weights.metrics` name the shared sets, with their sizes:
# the figures of the bundled weights travel inside their export (metadata `metrics`), written from these.
CATALOGUE_SETS = {"chairs": "flyingchairs-samples-9", "sintel": "sintel-training-samples-5",
                  "kitti2015": "kitti-2015-training-samples-5", "kitti2012": "kitti-2012-training-samples-2"}


def catalogue_metrics(scores: Dict[str, Dict[str, float]]) -> Dict[str, Dict[str, float]]:
    """{catalogue set name: {epe, fl_all in percent}} of evaluate_full's results, rounded as the catalogue is."""
    out = {}
    for name, label in CATALOGUE_SETS.items():
        if name in scores:
            row = {"epe": round(scores[name]["epe"], 3)}
            if name.startswith("kitti"):
                row["fl_all"] = round(100 * scores[name]["fl_all"], 2)
            out[label] = row
    return out


def raft_method(model: torch.nn.Module, iterations: int = 12, *, arch: str = "raft-small",
                initial: Optional[Method] = None) -> Method:
    """Wraps an eager RAFT as a method, padded and cropped as the addon does for that architecture. With `initial`,
    that method's flow (at full resolution) starts the refinement, averaged down to 1/8 as the video session's
    warm start does."""
    properties = ARCHITECTURES[arch]

    def run(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        h, w = a.shape[:2]
        padding = padding_for(h, w, stride=properties["stride"], min_size=properties["min_size"])
        t1 = pad(torch.from_numpy(a).permute(2, 0, 1)[None].float(), padding)
        t2 = pad(torch.from_numpy(b).permute(2, 0, 1)[None].float(), padding)
        with torch.inference_mode():
            if initial is None:
                flow = model(t1, t2, iterations)
            else:
                start = pad(torch.from_numpy(initial(a, b)).permute(2, 0, 1)[None].float(), padding)
                start = torch.nn.functional.avg_pool2d(start, 8) / 8
                flow = model(t1, t2, iterations, start)
        return crop(flow, padding, h, w)[0].permute(1, 2, 0).numpy()

    return run


SKY_CLIP = os.path.join(SHARED_DATA, "video", "solidWhiteRight.mp4")
# Open sky in every frame of that clip: the top 22% of the rows, columns 12-62% (trees are on the left, a gantry sign
# on the right).
SKY_ROWS, SKY_COLUMNS = (0.0, 0.22), (0.12, 0.62)
SKY_PAIRS = 8


def sky_pairs(path: str = SKY_CLIP) -> Optional[np.ndarray]:
    """SKY_PAIRS consecutive pairs spread over the clip, (P, 2, H, W, 3) RGB at most 960 wide (the clip's other
    frames are not kept), or None where the shared data is absent. Raises ValueError for a clip of under 2 frames."""
    if not os.path.exists(path):
        return None
    from .videopairs import read_frames
    frames = read_frames(path, max_side=960, max_frames=100_000)
    if len(frames) < 2:
        raise ValueError(f"{path}: {len(frames)} readable frames, the still-sky measure needs at least 2")
    starts = np.linspace(0, len(frames) - 2, SKY_PAIRS).astype(int)
    return np.stack([frames[starts], frames[starts + 1]], axis=1)


def sky_drift(method: Method, pairs: np.ndarray) -> Dict[str, float]:
    """Over the pairs (as sky_pairs gives them): the length of the sky's median flow vector (a drift of the whole
    sky) and its mean flow length, in pixels, both averaged over the pairs."""
    h, w = pairs.shape[2:4]
    window = (slice(int(SKY_ROWS[0] * h), int(SKY_ROWS[1] * h)),
              slice(int(SKY_COLUMNS[0] * w), int(SKY_COLUMNS[1] * w)))
    drift, length = [], []
    for a, b in pairs:
        sky = method(a, b)[window].reshape(-1, 2)
        drift.append(float(np.linalg.norm(np.median(sky, axis=0))))
        length.append(float(np.linalg.norm(sky, axis=1).mean()))
    return {"median_vector_px": round(float(np.mean(drift)), 3), "mean_length_px": round(float(np.mean(length)), 3)}


def enlarged(method: Method, factor: float) -> Method:
    """The method run on the pair enlarged by `factor` (bicubic), its flow brought back to the pair's size (area
    average) and scale: how the method takes footage of higher resolution or softer detail than it was tuned on."""
    import cv2

    def run(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        h, w = a.shape[:2]
        size = (max(8, round(w * factor)), max(8, round(h * factor)))
        flow = method(cv2.resize(a, size, interpolation=cv2.INTER_CUBIC),
                      cv2.resize(b, size, interpolation=cv2.INTER_CUBIC))
        flow = cv2.resize(flow, (w, h), interpolation=cv2.INTER_AREA if factor > 1 else cv2.INTER_LINEAR)
        return flow * np.array([w / size[0], h / size[1]], np.float32)

    return run


def format_table(results: Dict[str, Dict[str, Dict[str, float]]]) -> str:
    """One line per method and set: EPE, Fl-all and EPE by speed band."""
    lines = [f"{'method':24s} {'set':12s} {'EPE':>7s} {'Fl-all':>7s} " + " ".join(f"{b[0]:>7s}" for b in SPEED_BANDS)]
    for method, per_set in results.items():
        for name, row in per_set.items():
            lines.append(f"{method:24s} {name:12s} {row['epe']:7.3f} {100 * row['fl_all']:6.1f}% " +
                         " ".join(f"{row[b[0]]:7.2f}" for b in SPEED_BANDS))
    return "\n".join(lines)
