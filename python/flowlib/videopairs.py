"""Unlabelled pairs of consecutive frames from real videos, for self-supervised training (losses.
photometric_sequence_loss). Frames are decoded once, at most MAX_SIDE on their long side; each sample is a random
pair of one video (consecutive, or one frame apart), scaled, cropped and flipped alike in both frames, in either
temporal order. Which videos are used is the caller's choice: leave out any footage of the validation scenes."""
import os
import random
from typing import Dict, List, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".mov", ".webm")
MAX_SIDE = 640
MAX_FRAMES = 400  # per video, to bound memory (at 640x360, 0.7 MB a frame)


def video_files(folder: str, exclude: Sequence[str] = ()) -> List[str]:
    """The videos in `folder` (not recursive), sorted, without the file names in `exclude`."""
    if not os.path.isdir(folder):
        return []
    return sorted(os.path.join(folder, name) for name in os.listdir(folder)
                  if name.lower().endswith(VIDEO_EXTENSIONS) and name not in exclude)


def read_frames(path: str, max_side: int = MAX_SIDE, max_frames: int = MAX_FRAMES) -> np.ndarray:
    """(T, H, W, 3) uint8 RGB frames of a video, downscaled to at most `max_side` on the long side."""
    import cv2
    capture = cv2.VideoCapture(path)
    frames = []
    try:
        while len(frames) < max_frames:
            ok, frame = capture.read()
            if not ok:
                break
            h, w = frame.shape[:2]
            scale = min(1.0, max_side / max(h, w))
            if scale < 1:
                frame = cv2.resize(frame, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
            frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    finally:
        capture.release()
    return np.stack(frames) if frames else np.zeros((0, 1, 1, 3), np.uint8)


class VideoPairs:
    """Random unlabelled training pairs from a set of videos, reproducible from `reseed`."""

    def __init__(self, paths: Sequence[str], *, height: int, width: int, seed: int = 0):
        self.height, self.width = height, width
        # Frames smaller than the crop are scaled up to it at sampling time.
        self.videos = [frames for frames in (read_frames(p) for p in paths) if len(frames) >= 3]
        if not self.videos:
            raise ValueError(f"no readable video with at least 3 frames among {list(paths)}")
        self.rng = random.Random(seed)

    def reseed(self, seed) -> None:
        self.rng = random.Random(seed)

    def sample(self) -> Dict[str, Tensor]:
        rng = self.rng
        frames = self.videos[rng.randrange(len(self.videos))]
        gap = 2 if rng.random() < 0.3 else 1
        t = rng.randrange(len(frames) - gap)
        pair = torch.from_numpy(np.stack([frames[t], frames[t + gap]])).permute(0, 3, 1, 2).float()
        h, w = pair.shape[-2:]
        # Random scale, never below what the crop needs.
        scale = max(rng.uniform(0.6, 1.0), self.height / h, self.width / w)
        size = (max(self.height, round(h * scale)), max(self.width, round(w * scale)))
        if size != (h, w):
            pair = F.interpolate(pair, size=size, mode="bilinear", align_corners=False)
        y = rng.randrange(size[0] - self.height + 1)
        x = rng.randrange(size[1] - self.width + 1)
        pair = pair[..., y:y + self.height, x:x + self.width]
        if rng.random() < 0.5:
            pair = pair.flip(-1)
        if rng.random() < 0.5:
            pair = pair.flip(0)
        gain = rng.uniform(0.8, 1.2)
        pair = (pair * gain).clamp(0, 255)
        return {"image1": pair[0].contiguous(), "image2": pair[1].contiguous()}

    def batch(self, size: int) -> Dict[str, Tensor]:
        samples = [self.sample() for _ in range(size)]
        return {key: torch.stack([s[key] for s in samples]) for key in samples[0]}
