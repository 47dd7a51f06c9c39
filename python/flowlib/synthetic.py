"""A FlyingChairs-like generator: textured layers under random affine motions, with exact ground-truth flow.

Each sample is a background layer and several foreground objects (random star-shaped outlines), each carrying
its own texture. Every layer has a pose in frame 1 and a pose in frame 2 (its own random rotation, scale and
translation applied on top). Frames are rendered by sampling each layer's texture through the inverse pose;
the flow of a frame-1 pixel is where the topmost layer covering it takes that point in frame 2. Occluded
pixels keep the motion of the layer they belong to in frame 1, as FlyingChairs does.

Textures come from photographs that Debian packages ship (textures.py) and from procedural patterns. The shared
evaluation data is never used.
"""
import math
import random
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from .textures import load_photographs

# Crops of photographs at least this big (before the layer's pose scales them).
MIN_TEXTURE_SIDE = 200


def procedural_texture(size: int, rng: random.Random) -> Tensor:
    """Multi-octave coloured value noise, optionally mixed with stripes or a checkerboard."""
    g = torch.Generator().manual_seed(rng.randrange(1 << 30))
    out = torch.zeros(3, size, size)
    amplitude = 1.0
    for octave in range(rng.randint(3, 6)):
        cells = 2 ** (octave + 2)
        noise = torch.rand(1, 3, cells, cells, generator=g)
        out += amplitude * F.interpolate(noise, size=(size, size), mode="bicubic", align_corners=False)[0]
        amplitude *= rng.uniform(0.45, 0.7)
    out = (out - out.amin()) / (out.amax() - out.amin() + 1e-6)
    kind = rng.random()
    if kind < 0.3:
        ys, xs = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
        angle, period = rng.uniform(0, math.pi), rng.uniform(4, 24)
        stripes = (torch.sin((xs * math.cos(angle) + ys * math.sin(angle)) * 2 * math.pi / period) > 0).float()
        out = 0.6 * out + 0.4 * stripes * torch.rand(3, 1, 1, generator=g)
    elif kind < 0.45:
        ys, xs = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
        period = rng.randint(6, 32)
        checker = (((xs // period) + (ys // period)) % 2).float()
        out = 0.6 * out + 0.4 * checker * torch.rand(3, 1, 1, generator=g)
    return (out.clamp(0, 1) * 255).contiguous()


def affine(angle: float, scale: float, tx: float, ty: float) -> Tensor:
    """3x3 matrix of x -> scale * R(angle) x + t, in pixel coordinates."""
    c, s = math.cos(angle) * scale, math.sin(angle) * scale
    return torch.tensor([[c, -s, tx], [s, c, ty], [0.0, 0.0, 1.0]], dtype=torch.float64)


def transform(matrix: Tensor, pixels: Tensor) -> Tensor:
    """The first two rows of matrix @ pixels for homogeneous (3, N) pixels, elementwise: a 3x3 by 3xN float64
    product goes through a slow general matrix path."""
    return matrix[:2, 0:1] * pixels[0] + matrix[:2, 1:2] * pixels[1] + matrix[:2, 2:3]


def affine_inverse(matrix: Tensor) -> Tensor:
    """Inverse of a 3x3 affine matrix (last row 0 0 1) in closed form."""
    (a, b, tx), (c, d, ty) = matrix[:2].tolist()
    det = a * d - b * c
    ia, ib, ic, id_ = d / det, -b / det, -c / det, a / det
    return torch.tensor([[ia, ib, -(ia * tx + ib * ty)], [ic, id_, -(ic * tx + id_ * ty)], [0.0, 0.0, 1.0]],
                        dtype=matrix.dtype)


BLUR_SUBFRAMES = 5


class SyntheticFlowGenerator:
    """Makes training pairs of a fixed size: (image1, image2) as (3, H, W) 0..255 and flow as (2, H, W)."""

    def __init__(self, *, height: int, width: int, seed: int = 0, min_objects: int = 3, max_objects: int = 8,
                 max_translation: float = 0.12, slow_share: float = 0.0, blur_share: float = 0.0,
                 fast_share: float = 0.0, zoom_share: float = 0.0, textures: Optional[List[Tensor]] = None):
        if height < 16 or width < 16:
            raise ValueError(f"height and width must be at least 16, got {height}x{width}")
        if not 0 < min_objects <= max_objects:
            raise ValueError(f"need 0 < min_objects <= max_objects, got {min_objects}, {max_objects}")
        if not 0 <= slow_share <= 1:
            raise ValueError(f"slow_share must be in [0, 1], got {slow_share}")
        for name, share in (("blur_share", blur_share), ("fast_share", fast_share), ("zoom_share", zoom_share)):
            if not 0 <= share <= 1:
                raise ValueError(f"{name} must be in [0, 1], got {share}")
        if slow_share + fast_share > 1:
            raise ValueError(f"slow_share and fast_share together must be at most 1, got {slow_share} + {fast_share}")
        self.height, self.width = height, width
        self.noise = torch.Generator()
        self.reseed(seed)
        self.min_objects, self.max_objects = min_objects, max_objects
        self.max_translation = max_translation * max(height, width)
        self.slow_share, self.blur_share = slow_share, blur_share
        self.fast_share, self.zoom_share = fast_share, zoom_share
        self.textures = load_photographs() if textures is None else textures
        ys, xs = torch.meshgrid(torch.arange(height, dtype=torch.float64), torch.arange(width, dtype=torch.float64),
                                indexing="ij")
        self.pixels = torch.stack([xs.flatten(), ys.flatten(), torch.ones(height * width, dtype=torch.float64)])

    def reseed(self, seed) -> None:
        """Restarts the random stream: what follows depends only on the seed (an int or a str) and the settings."""
        self.rng = random.Random(seed)
        self.noise.manual_seed(self.rng.randrange(1 << 62))

    def _texture(self) -> Tensor:
        rng = self.rng
        if self.textures and rng.random() < 0.7:
            t = rng.choice(self.textures)
            side = min(t.shape[1], t.shape[2], rng.randint(MIN_TEXTURE_SIDE, 512))
            y0, x0 = rng.randint(0, t.shape[1] - side), rng.randint(0, t.shape[2] - side)
            crop = t[:, y0:y0 + side, x0:x0 + side].float()
            if rng.random() < 0.5:
                crop = crop.flip(2)
            return crop
        return procedural_texture(rng.choice([128, 192, 256]), rng)

    def _outline(self) -> Tuple[List[float], List[float]]:
        """A star-shaped outline: radius r(theta) = 1 + sum a_k sin(k theta + phi_k), normalised to max 1."""
        rng = self.rng
        terms = [(k, rng.uniform(0, 0.35 / k), rng.uniform(0, 2 * math.pi)) for k in range(2, rng.randint(3, 7))]
        return [t[1] for t in terms], [t[2] for t in terms]

    def _sample_layer(self, texture: Tensor, pose: Tensor, canvas: Tuple[int, int]) -> Tensor:
        """Texture colours at the layer coordinates of every frame pixel (3, H*W), via the inverse pose."""
        inverse = affine_inverse(pose)
        coords = transform(inverse, self.pixels)  # layer pixel coordinates, centred on the layer origin
        gx = coords[0] / (canvas[1] / 2)
        gy = coords[1] / (canvas[0] / 2)
        grid = torch.stack([gx, gy], dim=-1).float().view(1, 1, -1, 2)
        sampled = F.grid_sample(texture.unsqueeze(0), grid, mode="bilinear", padding_mode="reflection",
                                align_corners=False)
        return sampled.view(3, -1), coords

    def sample(self) -> Dict[str, Tensor]:
        rng = self.rng
        h, w = self.height, self.width
        n = rng.randint(self.min_objects, self.max_objects)
        # A share of scenes is slow: every motion (translation, rotation, change of scale) is scaled down by a factor
        # between 1/50 and 1/2, log-uniform, so sub-pixel and few-pixel motions, common in video, are well represented.
        # A share of scenes is fast: translations scaled up 2-4x (log-uniform), up to about half the crop's longer
        # side, as driving footage moves near objects by a large part of the frame.
        speed = 1.0
        if self.slow_share or self.fast_share:
            draw = rng.random()
            if draw < self.slow_share:
                speed = math.exp(rng.uniform(math.log(0.02), math.log(0.5)))
            elif draw < self.slow_share + self.fast_share:
                speed = math.exp(rng.uniform(math.log(2.0), math.log(4.0)))
        t = self.max_translation * speed
        layers = []
        # Background: covers everything, moves a little. In a zoom scene (a share of the rest) it expands from (or
        # contracts towards) a focus inside the frame, as the road and roadside do for a camera moving forward; the
        # objects then expand about their own centres too, nearer ones more.
        bg_pose1 = affine(0.0, 1.0, w / 2, h / 2)
        zoom = 1.0
        if speed == 1.0 and self.zoom_share and rng.random() < self.zoom_share:
            zoom = math.exp(rng.uniform(0.03, 0.3) * (1 if rng.random() < 0.8 else -1))
            fx, fy = rng.uniform(0.3, 0.7) * w, rng.uniform(0.3, 0.6) * h
            bg_motion = (affine(0, 1, fx + rng.uniform(-0.05, 0.05) * t, fy + rng.uniform(-0.05, 0.05) * t)
                         @ affine(rng.uniform(-0.01, 0.01), zoom, 0, 0) @ affine(0, 1, -fx, -fy))
        else:
            bg_motion = affine(rng.uniform(-0.04, 0.04) * speed, 1 + rng.uniform(-0.05, 0.05) * speed,
                               rng.uniform(-0.3, 0.3) * t, rng.uniform(-0.3, 0.3) * t)
        layers.append({"texture": self._texture(), "pose1": bg_pose1, "motion": bg_motion, "radius": None,
                       "canvas": (h * 1.3, w * 1.3)})
        for _ in range(n):
            size = rng.uniform(0.12, 0.45) * min(h, w)
            cx, cy = rng.uniform(-0.1, 1.1) * w, rng.uniform(-0.1, 1.1) * h
            pose1 = affine(rng.uniform(-math.pi, math.pi), 1.0, cx, cy)
            if zoom != 1.0:
                # carried away from the focus with the background, expanding by up to twice its rate
                motion_about_centre = affine(rng.uniform(-0.05, 0.05), zoom ** rng.uniform(1.0, 2.0), 0, 0)
                carried = transform(bg_motion, torch.tensor([[cx], [cy], [1.0]], dtype=torch.float64))[:, 0]
                shift = affine(0, 1, float(carried[0]) - cx + rng.uniform(-0.2, 0.2) * t,
                               float(carried[1]) - cy + rng.uniform(-0.2, 0.2) * t)
            else:
                motion_about_centre = affine(rng.uniform(-0.2, 0.2) * speed, 1 + rng.uniform(-0.15, 0.15) * speed,
                                             0, 0)
                shift = affine(0, 1, rng.uniform(-1, 1) * t, rng.uniform(-1, 1) * t)
            to_origin, back = affine(0, 1, -cx, -cy), affine(0, 1, cx, cy)
            motion = shift @ back @ motion_about_centre @ to_origin
            layers.append({"texture": self._texture(), "pose1": pose1, "motion": motion,
                           "radius": (size, self._outline()), "canvas": (size * 2, size * 2)})

        # Motion blur for a share of scenes: each frame is the mean of renderings over an exposure around its
        # instant (a fraction of the frame interval), every layer moving along its own motion.
        exposure = 0.0
        if self.blur_share and rng.random() < self.blur_share:
            exposure = rng.uniform(0.2, 0.8)
        frames = []
        cover = None
        offsets = [exposure * (k / (BLUR_SUBFRAMES - 1) - 0.5) for k in range(BLUR_SUBFRAMES)] if exposure else [0.0]
        for frame in (0, 1):
            # The middle offset is 0: that rendering is the frame's instant, whose layer ownership gives the flow.
            renders = [self._render(layers, frame + offset) for offset in offsets]
            frames.append((sum(image for image, _ in renders) / len(renders)).view(3, h, w))
            if frame == 0:
                cover = renders[len(renders) // 2][1]

        flow = torch.zeros(2, h * w, dtype=torch.float64)
        for index, layer in enumerate(layers):
            mask = cover == index
            if mask.any():
                pixels = self.pixels[:, mask]
                flow[:, mask] = transform(layer["motion"], pixels) - pixels[:2]
        image1, image2 = self._photometric(frames[0], frames[1])
        return {"image1": image1, "image2": image2, "flow": flow.view(2, h, w).float()}

    def _render(self, layers, time: float) -> Tuple[Tensor, Tensor]:
        """The layers composited at a time between frames (0: frame 1, 1: frame 2; poses interpolated linearly in
        between and beyond), and which layer owns each pixel: (3, H*W) colours and (H*W,) layer indices."""
        h, w = self.height, self.width
        image = torch.zeros(3, h * w)
        owner = torch.zeros(h * w, dtype=torch.long)
        for index, layer in enumerate(layers):
            identity = torch.eye(3, dtype=layer["motion"].dtype)
            pose = (identity + time * (layer["motion"] - identity)) @ layer["pose1"]
            colour, coords = self._sample_layer(layer["texture"], pose, layer["canvas"])
            if layer["radius"] is None:
                alpha = torch.ones(h * w)
            else:
                size, (amps, phases) = layer["radius"]
                theta = torch.atan2(coords[1], coords[0])
                radius = torch.ones_like(theta)
                for k, (a, phi) in enumerate(zip(amps, phases), start=2):
                    radius = radius + a * torch.sin(k * theta + phi)
                radius = radius / (1 + sum(amps)) * size
                distance = radius - torch.hypot(coords[0], coords[1])
                alpha = distance.clamp(-0.5, 0.5).float() + 0.5  # about one pixel of anti-aliasing
            image = image * (1 - alpha) + colour * alpha
            owner = torch.where(alpha > 0.5, torch.full_like(owner, index), owner)
        return image, owner

    def _photometric(self, a: Tensor, b: Tensor) -> Tuple[Tensor, Tensor]:
        return photometric(a, b, self.rng, self.noise)

    def batch(self, size: int) -> Dict[str, Tensor]:
        samples = [self.sample() for _ in range(size)]
        return {key: torch.stack([s[key] for s in samples]) for key in samples[0]}


def photometric(a: Tensor, b: Tensor, rng: random.Random, noise: torch.Generator) -> Tuple[Tensor, Tensor]:
    """Colour jitter shared by both frames plus a small per-frame part, and sensor noise."""

    def jitter(img: Tensor, gain: Tensor, bias: float, saturation: float, gamma: float) -> Tensor:
        grey = img.mean(0, keepdim=True)
        img = grey + (img - grey) * saturation
        img = (img * gain.view(3, 1, 1) + bias).clamp(0, 255)
        return 255 * (img / 255) ** gamma

    gain = torch.tensor([rng.uniform(0.7, 1.3) for _ in range(3)])
    bias, saturation, gamma = rng.uniform(-25, 25), rng.uniform(0.6, 1.4), rng.uniform(0.75, 1.3)
    out = []
    for img in (a, b):
        own = gain * torch.tensor([rng.uniform(0.97, 1.03) for _ in range(3)])
        img = jitter(img, own, bias + rng.uniform(-3, 3), saturation, gamma)
        img = img + torch.randn(img.shape, generator=noise, dtype=img.dtype) * rng.uniform(0, 4)
        out.append(img.clamp(0, 255))
    return out[0], out[1]


def warm_start(flow: Tensor, rng: random.Random, noise: torch.Generator) -> Tensor:
    """A flow_init for training from a warm start, as a video's previous pair gives it: the true flow averaged down
    to 1/8 resolution (in 1/8-resolution pixels), off by a per-sample scale error (the motion changed speed), a
    smooth error field of up to 2 px at full resolution, and a few blocks where it is wrong altogether (zero: a new
    object, or an occlusion)."""
    b, _, h, w = flow.shape
    low = F.avg_pool2d(flow, 8) / 8
    hl, wl = low.shape[-2:]
    scale = torch.tensor([rng.uniform(0.8, 1.2) for _ in range(b)]).view(b, 1, 1, 1)
    coarse = torch.randn(b, 2, max(1, hl // 4), max(1, wl // 4), generator=noise)
    smooth = F.interpolate(coarse, size=(hl, wl), mode="bilinear", align_corners=False)
    amplitude = torch.tensor([rng.uniform(0.0, 0.25) for _ in range(b)]).view(b, 1, 1, 1)
    init = low * scale + smooth * amplitude
    for k in range(b):
        for _ in range(rng.randint(0, 2)):
            bh, bw = rng.randint(1, max(1, hl // 3)), rng.randint(1, max(1, wl // 3))
            y, x = rng.randint(0, hl - bh), rng.randint(0, wl - bw)
            init[k, :, y:y + bh, x:x + bw] = 0
    return init


def magnify(batch: Dict[str, Tensor], rng: random.Random) -> Dict[str, Tensor]:
    """The batch seen closer: from each pair a window 1/s of the size, s in 1.15-2 (log-uniform), enlarged back to
    the full size (bilinear), its flow enlarged and multiplied by s, as RAFT's training scales its crops up: finer
    detail is then spread over more pixels, as in footage of higher resolution or softer focus, with motions larger
    by the same factor. A mask, where the batch has one, keeps only the pixels whose whole neighbourhood was valid."""
    image1, image2, flow = batch["image1"], batch["image2"], batch["flow"]
    _, _, h, w = image1.shape
    out = {key: [] for key in batch if key in ("image1", "image2", "flow", "valid")}
    for k in range(image1.shape[0]):
        s = 2 ** rng.uniform(0.2, 1.0)
        wh, ww = max(8, round(h / s)), max(8, round(w / s))
        y, x = rng.randint(0, h - wh), rng.randint(0, w - ww)
        window = (slice(y, y + wh), slice(x, x + ww))

        def enlarge(t: Tensor) -> Tensor:
            return F.interpolate(t[None], size=(h, w), mode="bilinear", align_corners=False)[0]

        out["image1"].append(enlarge(image1[k][(slice(None),) + window]))
        out["image2"].append(enlarge(image2[k][(slice(None),) + window]))
        scale = torch.tensor([w / ww, h / wh]).view(2, 1, 1)
        out["flow"].append(enlarge(flow[k][(slice(None),) + window]) * scale)
        if "valid" in out:
            out["valid"].append((enlarge(batch["valid"][k][window][None])[0] > 0.999).float())
    result = dict(batch)
    result.update({key: torch.stack(values) for key, values in out.items()})
    return result
