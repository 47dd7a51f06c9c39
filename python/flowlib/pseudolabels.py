"""Real video with targets from a classical method: OpenCV's DIS (medium preset) or DeepFlow flow between frames of
unlabelled videos, kept where the forward and backward flows agree, as training targets with a validity mask.

    python -m flowlib.pseudolabels --videos DIR --out training/pseudo [--teacher deepflow] [--exclude sintel_clip.mp4]

Classical flow is better than the bundled network on small motions over real textures (about half its error under
10 px on KITTI), which synthetic data does not teach well; the forward-backward check (Sundaram et al., 2010:
|w_f + w_b(x + w_f)|^2 < 0.01 (|w_f|^2 + |w_b|^2) + 0.5) drops occlusions and most of the teacher's mistakes. The
cache is derived from the videos it was made from: it lives with the training state, never in git.
"""
import argparse
import json
import os
import random
from concurrent.futures import ProcessPoolExecutor
from typing import Dict, List, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor

from .synthetic import photometric
from .videopairs import video_files

MAX_SIDE = 960
PAIRS_PER_VIDEO = 120
GAPS = (1, 1, 2)  # consecutive frames twice as often as one frame apart
# Texture a target needs (textured): on the dashcam clip this keeps 1% of the bare sky, 56% of the road (the rest is
# smooth asphalt) and 67% of the band at the horizon; grey levels in 0-1.
TEXTURE_WINDOW, TEXTURE_MIN = 15, 1e-5


# The classical methods that can label: DIS medium (fast, good on large motions) and DeepFlow (about 30x slower,
# the best classical method on the validation sets' small motions: Sintel 0.75 against DIS's 0.88, KITTI 2012 0.50
# against 0.57; models/README.md).
TEACHERS = ("dis-medium", "deepflow")


def teacher(a: np.ndarray, b: np.ndarray, name: str = "dis-medium") -> np.ndarray:
    """The `name` teacher's flow from RGB frame a to b, (H, W, 2) float32."""
    import cv2
    grey_a, grey_b = cv2.cvtColor(a, cv2.COLOR_RGB2GRAY), cv2.cvtColor(b, cv2.COLOR_RGB2GRAY)
    if name == "dis-medium":
        return cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM).calc(grey_a, grey_b, None)
    if name == "deepflow":
        return cv2.optflow.createOptFlow_DeepFlow().calc(grey_a, grey_b, None)
    raise ValueError(f"unknown teacher {name!r}; the teachers are {', '.join(TEACHERS)}")


def labelled(job: Tuple[np.ndarray, np.ndarray, str]) -> Tuple[np.ndarray, np.ndarray]:
    """One pair's forward flow (float16) and packed validity mask: a process pool's unit of work."""
    a, b, name = job
    forward, backward = teacher(a, b, name), teacher(b, a, name)
    return forward.astype(np.float16), np.packbits(consistent(forward, backward), axis=-1)


def consistent(forward: np.ndarray, backward: np.ndarray) -> np.ndarray:
    """Pixels whose forward flow lands inside the frame and comes back by the backward flow (the check above)."""
    import cv2
    h, w = forward.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    tx, ty = xs + forward[..., 0], ys + forward[..., 1]
    back = cv2.remap(backward, tx, ty, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    inside = (tx >= 0) & (tx <= w - 1) & (ty >= 0) & (ty <= h - 1)
    mismatch = ((forward + back) ** 2).sum(axis=2)
    bound = 0.01 * ((forward ** 2).sum(axis=2) + (back ** 2).sum(axis=2)) + 0.5
    return inside & (mismatch < bound)


def textured(frame: np.ndarray) -> np.ndarray:
    """Pixels of an RGB frame with texture to measure motion from: the smaller eigenvalue of the grey image's structure
    tensor over TEXTURE_WINDOW pixels is above TEXTURE_MIN. Elsewhere (a bare sky, a blank wall) a classical method's
    flow is its smoothness term filling in, not a measurement, and the forward-backward check does not catch it: a
    bare region drifts consistently both ways (DIS medium's dashcam sky: a median vector of 0.87 px a pair, 54% of its
    pixels kept by the check)."""
    import cv2
    grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255
    return cv2.cornerMinEigenVal(grey, TEXTURE_WINDOW, 3) > TEXTURE_MIN


def read_video(path: str, max_side: int = MAX_SIDE) -> np.ndarray:
    """(T, H, W, 3) uint8 RGB frames, downscaled to at most `max_side` on the long side."""
    from .videopairs import read_frames
    return read_frames(path, max_side=max_side, max_frames=100_000)


def build(videos: Sequence[str], out: str, *, pairs_per_video: int = PAIRS_PER_VIDEO, seed: int = 0,
          teacher_name: str = "dis-medium", workers: int = 2) -> Dict:
    """Writes <out>/<video>.npz (frames, pairs, flows, valid) per video and <out>/index.json; returns the index."""
    if teacher_name not in TEACHERS:
        raise ValueError(f"unknown teacher {teacher_name!r}; the teachers are {', '.join(TEACHERS)}")
    os.makedirs(out, exist_ok=True)
    index = {"teacher": teacher_name, "check": "forward-backward", "videos": {}}
    pool = ProcessPoolExecutor(max_workers=workers)
    for path in videos:
        frames = read_video(path)
        if len(frames) < 3:
            continue
        rng = random.Random(f"{seed}/{os.path.basename(path)}")
        starts = sorted(rng.sample(range(len(frames) - 2), min(pairs_per_video, len(frames) - 2)))
        pairs = [(t, t + rng.choice(GAPS)) for t in starts]
        used = sorted({t for pair in pairs for t in pair})
        position = {t: k for k, t in enumerate(used)}
        results = list(pool.map(labelled, [(frames[t1], frames[t2], teacher_name) for t1, t2 in pairs]))
        flows, valid = [flow for flow, _ in results], [mask for _, mask in results]
        name = os.path.splitext(os.path.basename(path))[0]
        np.savez(os.path.join(out, f"{name}.npz"), frames=frames[used],
                 pairs=np.array([(position[a], position[b]) for a, b in pairs], np.int32),
                 flows=np.stack(flows), valid=np.stack(valid))
        kept = float(np.mean([np.unpackbits(v, axis=-1)[:, :frames.shape[2]].mean() for v in valid]))
        index["videos"][name] = {"file": os.path.basename(path), "pairs": len(pairs), "size": list(frames.shape[1:3]),
                                 "valid_share": round(kept, 3)}
        print(json.dumps({name: index["videos"][name]}), flush=True)
    pool.shutdown()
    with open(os.path.join(out, "index.json"), "w") as f:
        json.dump(index, f, indent=1)
    return index


class PseudoLabelledPairs:
    """Random training crops of the cached pairs (scaled, cropped and flipped alike in frames and targets, with the
    photometric changes of the synthetic data), reproducible from `reseed`; a target counts only where the cache's
    check kept it and the first frame is textured."""

    def __init__(self, folder: str, *, height: int, width: int, seed: int = 0):
        self.height, self.width = height, width
        self.videos = []
        for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
            if name.endswith(".npz"):
                data = np.load(os.path.join(folder, name))
                video = {key: data[key] for key in ("frames", "pairs", "flows", "valid")}
                # The texture mask once per pair, into the cache's packed check: samples draw the same pairs often.
                w = video["frames"].shape[2]
                video["valid"] = np.packbits(np.stack([
                    np.unpackbits(kept, axis=-1)[:, :w].astype(bool) & textured(video["frames"][first])
                    for kept, (first, _) in zip(video["valid"], video["pairs"])]), axis=-1)
                self.videos.append(video)
        if not self.videos:
            raise ValueError(f"no pseudo-labelled videos in {folder} (make them with python -m flowlib.pseudolabels)")
        self.noise = torch.Generator()
        self.reseed(seed)

    def reseed(self, seed) -> None:
        self.rng = random.Random(seed)
        self.noise.manual_seed(self.rng.randrange(1 << 62))

    def sample(self) -> Dict[str, Tensor]:
        rng = self.rng
        video = self.videos[rng.randrange(len(self.videos))]
        k = rng.randrange(len(video["pairs"]))
        first, second = video["pairs"][k]
        h, w = video["frames"].shape[1:3]
        frames = torch.from_numpy(video["frames"][[first, second]]).permute(0, 3, 1, 2).float()
        flow = torch.from_numpy(video["flows"][k].astype(np.float32)).permute(2, 0, 1)
        valid = torch.from_numpy(np.unpackbits(video["valid"][k], axis=-1)[:, :w].astype(np.float32))
        # Random scale, never below what the crop needs; the flow scales with the frames.
        scale = max(rng.uniform(0.6, 1.2), self.height / h, self.width / w)
        size = (max(self.height, round(h * scale)), max(self.width, round(w * scale)))
        if size != (h, w):
            sy, sx = size[0] / h, size[1] / w
            frames = torch.nn.functional.interpolate(frames, size=size, mode="bilinear", align_corners=False)
            flow = torch.nn.functional.interpolate(flow[None], size=size, mode="bilinear", align_corners=False)[0]
            flow = flow * torch.tensor([sx, sy]).view(2, 1, 1)
            valid = (torch.nn.functional.interpolate(valid[None, None], size=size, mode="nearest")[0, 0])
        y = rng.randrange(size[0] - self.height + 1)
        x = rng.randrange(size[1] - self.width + 1)
        window = (slice(y, y + self.height), slice(x, x + self.width))
        frames, flow, valid = frames[(...,) + window], flow[(...,) + window], valid[window]
        if rng.random() < 0.5:
            frames, valid = frames.flip(-1), valid.flip(-1)
            flow = flow.flip(-1) * torch.tensor([-1.0, 1.0]).view(2, 1, 1)
        image1, image2 = photometric(frames[0], frames[1], rng, self.noise)
        return {"image1": image1.contiguous(), "image2": image2.contiguous(), "flow": flow.contiguous(),
                "valid": valid.contiguous()}

    def batch(self, size: int) -> Dict[str, Tensor]:
        samples = [self.sample() for _ in range(size)]
        return {key: torch.stack([s[key] for s in samples]) for key in samples[0]}


def main(argv: List[str] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", required=True, metavar="DIR")
    parser.add_argument("--out", required=True, metavar="DIR")
    parser.add_argument("--exclude", default="sintel_clip.mp4", metavar="NAME[,NAME...]",
                        help="file names never used (default sintel_clip.mp4: footage of the Sintel validation scenes)")
    parser.add_argument("--pairs-per-video", type=int, default=PAIRS_PER_VIDEO)
    parser.add_argument("--teacher", choices=TEACHERS, default="dis-medium")
    parser.add_argument("--workers", type=int, default=2, help="processes computing flows (default 2)")
    args = parser.parse_args(argv)
    videos = video_files(args.videos, args.exclude.split(","))
    if not videos:
        parser.error(f"no videos in {args.videos} (besides {args.exclude})")
    build(videos, args.out, pairs_per_video=args.pairs_per_video, teacher_name=args.teacher, workers=args.workers)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
