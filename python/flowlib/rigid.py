"""Rigid 3-D scenes with exact flow: planes, boxes and billboards textured with real photographs, seen by a camera
that moves between the frames, with some objects moving on their own.

The lesson of SEA-RAFT (Wang et al., 2024, Section 4): pre-training on rigid flow (TartanAir) generalises across
datasets better than FlyingChairs-like layers, because the motion fields have the structure of real ones: expansion
from a focus, parallax growing with nearness, a still or rotating far field, occlusion at depth edges.

A scene is a list of textured quads (a centre and two half-extent axes in camera-1 coordinates: x right, y down,
z forward, metres). Frame 1 is rendered by casting each pixel's ray against every quad and keeping the nearest hit;
frame 2 by the same with every quad carried by its motion (the camera's, composed with the object's own) into the
camera-2 frame. The flow of a frame-1 pixel is where its 3-D point projects in frame 2, which is exact and is known
for occluded points and points that leave the frame alike (as FlyingThings3D gives it); it is invalid only where
the point ends behind the camera. Frames are rendered at twice the resolution and averaged down (anti-aliasing);
textures are sampled from a mip pyramid at the level their footprint needs, so distant surfaces do not shimmer.

Two kinds of scene: a street (ground, facades, parked and moving boxes, billboards, a far sky; the camera moves
forward up to 2.5 m a frame and turns a little, as a car's at 10 frames per second, in half the scenes hardly at
all; a third of the streets are open roads, without facades, under a bright, bare sky above a distant skyline, as
on a highway, where the sky stands still while the road streams past) and a room (walls, floor and objects at 1-20
m; the camera moves in any direction and turns up to 3 degrees, the objects on their own). The crop is a window of
a wider virtual image (KITTI-like focal lengths and widths), so displacements have the range of full-resolution
footage.
"""
import math
import random
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from .synthetic import photometric, procedural_texture
from .textures import load_photographs

NEAR = 0.2  # metres: points nearer than this to a camera are not rendered, and their flow is invalid
MIP_LEVELS = 4
SUPERSAMPLE = 2
MAX_TEXTURE_SIDE = 512
STRAIGHT_SHARE = 0.5  # of street scenes, driven (nearly) straight: see RigidSceneGenerator._street
OPEN_ROAD_SHARE = 1 / 3  # of street scenes, open roads: no facades, a bright bare sky over a far skyline


def rotation(yaw: float, pitch: float, roll: float) -> Tensor:
    """Rotation matrix of yaw (about y), pitch (about x) and roll (about z), radians."""
    cy, sy = math.cos(yaw), math.sin(yaw)
    cp, sp = math.cos(pitch), math.sin(pitch)
    cr, sr = math.cos(roll), math.sin(roll)
    ry = torch.tensor([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rx = torch.tensor([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    rz = torch.tensor([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
    return ry @ rx @ rz


class Quad:
    """A textured rectangle: points centre + a * u + b * v for a, b in [-1, 1]; `repeat` tiles the texture (mirrored)
    that many times along each axis; `motion` is its own rigid motion between the frames, (R, t) applied in camera-1
    coordinates (x -> R x + t), or None for the static scene."""

    def __init__(self, centre, u, v, texture: List[Tensor], repeat: Tuple[float, float] = (1.0, 1.0),
                 motion: Optional[Tuple[Tensor, Tensor]] = None):
        self.centre, self.u, self.v = (torch.as_tensor(x, dtype=torch.float32) for x in (centre, u, v))
        self.texture, self.repeat, self.motion = texture, repeat, motion

    def moved(self, rotation_: Tensor, translation: Tensor) -> "Quad":
        """The quad after x -> R x + t."""
        quad = Quad(rotation_ @ self.centre + translation, rotation_ @ self.u, rotation_ @ self.v, self.texture,
                    self.repeat, self.motion)
        return quad


def mip_pyramid(texture: Tensor) -> List[Tensor]:
    """(1, 3, H, W) float levels, each half the previous (area averaged)."""
    levels = [texture.float().unsqueeze(0)]
    for _ in range(MIP_LEVELS - 1):
        if min(levels[-1].shape[-2:]) < 8:
            break
        levels.append(F.avg_pool2d(levels[-1], 2))
    return levels


class Camera:
    """Pinhole intrinsics of the rendered window: focal length f and principal point (cx, cy), in window pixels."""

    def __init__(self, f: float, cx: float, cy: float, height: int, width: int):
        self.f, self.cx, self.cy, self.height, self.width = f, cx, cy, height, width

    def scaled(self, factor: int) -> "Camera":
        # Pixel centres: window pixel (x, y) spans [x, x + 1); its sub-pixels keep the same centre.
        return Camera(self.f * factor, (self.cx + 0.5) * factor - 0.5, (self.cy + 0.5) * factor - 0.5,
                      self.height * factor, self.width * factor)

    def rays(self) -> Tensor:
        """(3, H*W) ray directions with z = 1."""
        ys, xs = torch.meshgrid(torch.arange(self.height, dtype=torch.float32),
                                torch.arange(self.width, dtype=torch.float32), indexing="ij")
        return torch.stack([(xs.flatten() - self.cx) / self.f, (ys.flatten() - self.cy) / self.f,
                            torch.ones(self.height * self.width)])

    def project(self, points: Tensor) -> Tensor:
        """(2, N) pixel coordinates of (3, N) points."""
        z = points[2].clamp(min=1e-6)
        return torch.stack([self.f * points[0] / z + self.cx, self.f * points[1] / z + self.cy])


def intersect(quads: List[Quad], camera: Camera, rays: Tensor) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """Nearest hit of each of the camera's rays (camera.rays()): depth t (inf where none), quad index (-1), and the
    hit's (a, b) on its quad. A quad wholly in front of the camera is only tested against the rays inside its
    projection's bounding box."""
    n = rays.shape[1]
    best = torch.full((n,), float("inf"))
    index = torch.full((n,), -1, dtype=torch.long)
    coord_a, coord_b = torch.zeros(n), torch.zeros(n)
    everywhere = torch.arange(n)
    grid = everywhere.view(camera.height, camera.width)
    for k, quad in enumerate(quads):
        corners = torch.stack([quad.centre + sa * quad.u + sb * quad.v for sa in (-1, 1) for sb in (-1, 1)], dim=1)
        if bool((corners[2] > NEAR).all()):
            projected = camera.project(corners)
            x0, y0 = (max(0, math.floor(float(projected[i].min()))) for i in (0, 1))
            x1 = min(camera.width, math.ceil(float(projected[0].max())) + 1)
            y1 = min(camera.height, math.ceil(float(projected[1].max())) + 1)
            if x0 >= x1 or y0 >= y1:
                continue
            where = grid[y0:y1, x0:x1].reshape(-1)
        else:
            where = everywhere
        sub = rays[:, where]
        normal = torch.linalg.cross(quad.u, quad.v)
        denominator = normal @ sub
        t = (normal @ quad.centre) / torch.where(denominator.abs() < 1e-9, torch.full_like(denominator, 1e-9),
                                                 denominator)
        offset = sub * t - quad.centre.view(3, 1)
        a = (quad.u @ offset) / (quad.u @ quad.u)
        b = (quad.v @ offset) / (quad.v @ quad.v)
        hit = (t > NEAR) & (a.abs() <= 1) & (b.abs() <= 1) & (t < best[where])
        hits = where[hit]
        best[hits], index[hits], coord_a[hits], coord_b[hits] = t[hit], k, a[hit], b[hit]
    return best, index, coord_a, coord_b


def shade(quads: List[Quad], pyramids: List[List[Tensor]], camera: Camera, rays: Tensor) -> Tensor:
    """(3, H*W) colours of the nearest surfaces along the rays (black where nothing is hit)."""
    depth, index, a, b = intersect(quads, camera, rays)
    colour = torch.zeros(3, rays.shape[1])
    # The rays grouped by the quad they hit.
    order = torch.argsort(index)
    counts = torch.bincount(index + 1, minlength=len(quads) + 1).tolist()
    start = counts[0]  # rays that hit nothing come first
    for k, quad in enumerate(quads):
        mask, start = order[start:start + counts[k + 1]], start + counts[k + 1]
        if mask.numel() == 0:
            continue
        levels = pyramids[k]
        # Texture coordinates in [-1, 1] per tile, mirrored across tiles by grid_sample's reflection.
        ga, gb = a[mask] * quad.repeat[0], b[mask] * quad.repeat[1]
        # Texels of level 0 per pixel: the pixel's footprint on the surface (distance over focal length, widened
        # by the slant), over the size of a texel there.
        hit_rays = rays[:, mask]
        ray_length = hit_rays.norm(dim=0)
        normal = torch.linalg.cross(quad.u, quad.v)
        slant = ((normal @ hit_rays).abs() / (normal.norm() * ray_length)).clamp(min=0.05)
        footprint = depth[mask] * ray_length / (camera.f * slant)
        texel = 2 * min(quad.u.norm(), quad.v.norm()) / (max(quad.repeat) * max(levels[0].shape[-2:]))
        level = torch.log2((footprint / texel).clamp(min=1)).round().clamp(max=len(levels) - 1).long()
        sampled = torch.zeros(3, mask.numel())
        for lv in range(len(levels)):
            at = level == lv
            if at.any():
                grid = torch.stack([ga[at], gb[at]], dim=-1).view(1, 1, -1, 2)
                sampled[:, at] = F.grid_sample(levels[lv], grid, mode="bilinear", padding_mode="reflection",
                                               align_corners=False).view(3, -1)
        colour[:, mask] = sampled
    return colour


class RigidSceneGenerator:
    """Makes training pairs of a fixed size: image1, image2 (3, H, W) 0..255, flow (2, H, W) and valid (H, W)."""

    def __init__(self, *, height: int, width: int, seed: int = 0, textures: Optional[List[Tensor]] = None,
                 street_share: float = 0.5):
        if height < 16 or width < 16:
            raise ValueError(f"height and width must be at least 16, got {height}x{width}")
        if not 0 <= street_share <= 1:
            raise ValueError(f"street_share must be in [0, 1], got {street_share}")
        self.height, self.width, self.street_share = height, width, street_share
        self.textures = load_photographs() if textures is None else textures
        self.noise = torch.Generator()
        self.reseed(seed)

    def reseed(self, seed) -> None:
        """Restarts the random stream: what follows depends only on the seed (an int or a str) and the settings."""
        self.rng = random.Random(seed)
        self.noise.manual_seed(self.rng.randrange(1 << 62))

    def _texture(self, *, smooth: bool = False, bright: bool = False) -> Tensor:
        """A crop of a photograph (or a procedural pattern when there are none), as (3, S, S') float; `smooth`
        blurs it heavily and lowers its contrast, as a sky or a bare wall; `bright` also lifts it near white and
        washes out its colour, as a clear or overcast sky in daylight."""
        rng = self.rng
        if self.textures and rng.random() < 0.85:
            photo = self.textures[rng.randrange(len(self.textures))]
            h, w = photo.shape[-2:]
            side_h, side_w = rng.randint(min(h, 128), h), rng.randint(min(w, 128), w)
            y0, x0 = rng.randint(0, h - side_h), rng.randint(0, w - side_w)
            crop = photo[:, y0:y0 + side_h, x0:x0 + side_w].float()
            if max(side_h, side_w) > MAX_TEXTURE_SIDE:  # finer than any surface shows it at these crop sizes
                crop = F.interpolate(crop.unsqueeze(0), scale_factor=MAX_TEXTURE_SIDE / max(side_h, side_w),
                                     mode="area")[0]
            if rng.random() < 0.5:
                crop = crop.flip(2)
        else:
            crop = procedural_texture(rng.choice([128, 192, 256]), rng)
        if smooth:
            small = F.interpolate(crop.unsqueeze(0), size=(8, 8), mode="area")
            crop = F.interpolate(small, size=(64, 64), mode="bicubic", align_corners=False)[0]
            mean = crop.mean(dim=(1, 2), keepdim=True)
            crop = (mean + (crop - mean) * rng.uniform(0.05, 0.4) + rng.uniform(0, 80)).clamp(0, 255)
        if bright:
            grey = crop.mean(dim=0, keepdim=True)
            crop = grey + (crop - grey) * rng.uniform(0.2, 0.8)
            crop = (crop - crop.mean() + rng.uniform(170, 240)).clamp(0, 255)
        return crop

    def _object_motion(self, scale: float) -> Tuple[Tensor, Tensor]:
        rng = self.rng
        angle = math.radians(rng.uniform(-8, 8) * scale)
        return (rotation(angle, math.radians(rng.uniform(-2, 2) * scale), math.radians(rng.uniform(-2, 2) * scale)),
                torch.tensor([rng.uniform(-0.6, 0.6), rng.uniform(-0.15, 0.15), rng.uniform(-0.8, 0.8)]) * scale)

    def _box(self, centre, size, yaw: float, motion=None) -> List[Quad]:
        """The five visible faces of a box (no bottom) standing at `centre` (its base centre for street scenes)."""
        r = rotation(yaw, 0.0, 0.0)
        sx, sy, sz = (s / 2 for s in size)
        c = torch.tensor(centre, dtype=torch.float32)
        ex, ey, ez = r @ torch.tensor([sx, 0.0, 0.0]), torch.tensor([0.0, sy, 0.0]), r @ torch.tensor([0.0, 0.0, sz])
        faces = [(c - ez, ex, ey), (c + ez, ex, ey), (c - ex, ez, ey), (c + ex, ez, ey), (c - ey, ex, ez)]
        return [Quad(centre_, u, v, self._texture(), (1.0, 1.0), motion) for centre_, u, v in faces]

    def _street(self) -> Tuple[List[Quad], Tensor, Tensor]:
        rng = self.rng
        height = rng.uniform(1.2, 2.0)  # camera above the ground
        quads = [Quad([0, height, 150], [150, 0, 0], [0, 0, 150], self._texture(), (rng.uniform(20, 60),) * 2)]
        open_road = rng.random() < OPEN_ROAD_SHARE
        # The sky (or a distant skyline) far away, in front: it moves only with the camera's rotation.
        quads.append(Quad([0, -400, 2000], [4000, 0, 0], [0, 1200, 0],
                          self._texture(smooth=open_road or rng.random() < 0.7,
                                        bright=open_road and rng.random() < 0.8)))
        if open_road:  # hills, woods and buildings on the horizon, 150-800 m away
            for _ in range(rng.randint(0, 6)):
                z, wide, tall = rng.uniform(150, 800), rng.uniform(20, 300), rng.uniform(3, 40)
                quads.append(Quad([rng.uniform(-400, 400), height - tall / 2, z], [wide / 2, 0, 0], [0, tall / 2, 0],
                                  self._texture(), (wide / rng.uniform(10, 60), 1.0)))
        for side in (-1, 1):
            if not open_road and rng.random() < 0.8:  # facades along the street, in segments
                x, z = side * rng.uniform(4, 12), rng.uniform(2, 10)
                while z < 120:
                    length = rng.uniform(5, 30)
                    tall = rng.uniform(4, 25)
                    quads.append(Quad([x, height - tall / 2, z + length / 2], [0, 0, length / 2], [0, tall / 2, 0],
                                      self._texture(), (length / rng.uniform(3, 10), tall / rng.uniform(3, 10))))
                    z += length + rng.uniform(0, 6)
        for _ in range(rng.randint(2, 8)):  # cars, parked or moving along the street
            moving = rng.random() < 0.5
            motion = None
            if moving:
                motion = (rotation(math.radians(rng.uniform(-3, 3)), 0, 0),
                          torch.tensor([rng.uniform(-0.2, 0.2), 0.0, rng.uniform(-3.0, 3.0)]))
            length, width_, tall = rng.uniform(3.5, 5), rng.uniform(1.6, 2.0), rng.uniform(1.3, 1.8)
            centre = [rng.uniform(-8, 8), height - tall / 2, rng.uniform(4, 60)]
            quads += self._box(centre, (width_, tall, length), math.radians(rng.uniform(-15, 15)), motion)
        for _ in range(rng.randint(2, 10)):  # poles, signs, trees, people: billboards facing the camera
            tall, wide = rng.uniform(1, 8), rng.uniform(0.3, 3)
            motion = None
            if rng.random() < 0.2:  # a pedestrian or cyclist crossing
                motion = (torch.eye(3), torch.tensor([rng.uniform(-0.8, 0.8), 0.0, rng.uniform(-0.3, 0.3)]))
            yaw = math.radians(rng.uniform(-40, 40))
            quads.append(Quad([rng.uniform(-12, 12), height - tall / 2, rng.uniform(3, 80)],
                              [wide / 2 * math.cos(yaw), 0, -wide / 2 * math.sin(yaw)], [0, tall / 2, 0],
                              self._texture(), (1.0, 1.0), motion))
        # The car's motion: forward up to 2.5 m a frame, turning a little.
        speed = math.exp(rng.uniform(math.log(0.05), math.log(2.5))) if rng.random() < 0.9 else 0.0
        # Most driving goes straight: in half the scenes the camera turns by 0.5-10% of the range, so that a bare
        # sky, whose flow is the rotation's alone, is mostly still, as on real roads.
        turn = 1.0 if rng.random() < 1 - STRAIGHT_SHARE else math.exp(rng.uniform(math.log(0.005), math.log(0.1)))
        camera_rotation = rotation(math.radians(rng.uniform(-2.5, 2.5) * turn),
                                   math.radians(rng.uniform(-0.8, 0.8) * turn),
                                   math.radians(rng.uniform(-0.8, 0.8) * turn))
        # x -> R x + t takes camera-1 coordinates to camera-2's: moving forward brings points nearer (t_z < 0).
        camera_translation = torch.tensor([rng.uniform(-0.1, 0.1) * speed + rng.uniform(-0.05, 0.05),
                                           rng.uniform(-0.05, 0.05), -speed])
        return quads, camera_rotation, camera_translation

    def _room(self) -> Tuple[List[Quad], Tensor, Tensor]:
        rng = self.rng
        depth, half_w, half_h = rng.uniform(5, 30), rng.uniform(3, 15), rng.uniform(2, 8)
        y_floor = rng.uniform(0.8, 1.0) * half_h
        quads = [
            Quad([0, 0, depth], [half_w * 2, 0, 0], [0, half_h * 2, 0], self._texture(), (rng.uniform(1, 4),) * 2),
            Quad([0, y_floor, depth / 2], [half_w * 2, 0, 0], [0, 0, depth], self._texture(), (rng.uniform(2, 8),) * 2),
            Quad([0, y_floor - 2 * half_h, depth / 2], [half_w * 2, 0, 0], [0, 0, depth],
                 self._texture(smooth=rng.random() < 0.5)),
            Quad([-half_w * 2, 0, depth / 2], [0, 0, depth], [0, half_h * 2, 0], self._texture(), (2.0, 2.0)),
            Quad([half_w * 2, 0, depth / 2], [0, 0, depth], [0, half_h * 2, 0], self._texture(), (2.0, 2.0)),
        ]
        motion_scale = math.exp(rng.uniform(math.log(0.05), math.log(1.5)))
        for _ in range(rng.randint(3, 10)):
            z = math.exp(rng.uniform(math.log(1.5), math.log(depth * 0.9)))
            x, y = rng.uniform(-0.6, 0.6) * z, rng.uniform(-0.4, 0.4) * z
            size = [rng.uniform(0.2, 0.5) * z ** 0.7 for _ in range(3)]
            motion = self._object_motion(motion_scale) if rng.random() < 0.5 else None
            if rng.random() < 0.5:
                quads += self._box([x, y, z], size, rng.uniform(-math.pi, math.pi), motion)
            else:
                r = rotation(rng.uniform(-0.8, 0.8), rng.uniform(-0.5, 0.5), rng.uniform(-0.5, 0.5))
                u, v = r @ torch.tensor([size[0], 0.0, 0.0]), r @ torch.tensor([0.0, size[1], 0.0])
                quads.append(Quad([x, y, z], u, v, self._texture(), (1.0, 1.0), motion))
        camera_scale = math.exp(rng.uniform(math.log(0.02), math.log(1.0)))
        camera_rotation = rotation(*(math.radians(rng.uniform(-3, 3) * camera_scale) for _ in range(3)))
        camera_translation = torch.tensor([rng.uniform(-0.3, 0.3), rng.uniform(-0.2, 0.2),
                                           rng.uniform(-0.4, 0.4)]) * camera_scale
        return quads, camera_rotation, camera_translation

    def _camera(self) -> Camera:
        """The rendered window inside a wider virtual image: focal length and principal point of the window."""
        rng = self.rng
        virtual_width = rng.uniform(1.5, 5.0) * self.width
        virtual_height = virtual_width * rng.uniform(0.3, 0.75)
        virtual_height = max(virtual_height, self.height)
        f = virtual_width * rng.uniform(0.45, 1.0)
        left = rng.uniform(0, virtual_width - self.width)
        top = rng.uniform(0, virtual_height - self.height)
        return Camera(f, virtual_width / 2 - left, virtual_height / 2 - top, self.height, self.width)

    def sample(self) -> Dict[str, Tensor]:
        street = self.rng.random() < self.street_share
        quads, camera_rotation, camera_translation = self._street() if street else self._room()
        camera = self._camera()
        pyramids = [mip_pyramid(q.texture) for q in quads]
        # Every quad in camera-2 coordinates: its own motion, then the camera's.
        moved = []
        for quad in quads:
            if quad.motion is not None:
                rotation_, translation = quad.motion
                about = quad.centre - rotation_ @ quad.centre  # objects turn about their own centre
                quad = quad.moved(rotation_, translation + about)
            moved.append(quad.moved(camera_rotation, camera_translation))
        fine = camera.scaled(SUPERSAMPLE)
        fine_rays = fine.rays()
        frames = []
        for scene in (quads, moved):
            colour = shade(scene, pyramids, fine, fine_rays).view(1, 3, fine.height, fine.width)
            frames.append(F.avg_pool2d(colour, SUPERSAMPLE)[0])

        # Flow at the window's pixel centres: where each frame-1 point is in frame 2.
        rays = camera.rays()
        depth, index, _, _ = intersect(quads, camera, rays)
        points = rays * depth.clamp(max=1e5)
        carried = points.clone()
        for k, quad in enumerate(quads):
            mask = index == k
            if quad.motion is not None and mask.any():
                rotation_, translation = quad.motion
                about = quad.centre - rotation_ @ quad.centre
                carried[:, mask] = rotation_ @ points[:, mask] + (translation + about).view(3, 1)
        in_camera2 = camera_rotation @ carried + camera_translation.view(3, 1)
        pixels = torch.stack([rays[0] * camera.f + camera.cx, rays[1] * camera.f + camera.cy])
        flow = camera.project(in_camera2) - pixels
        valid = (index >= 0) & (in_camera2[2] > NEAR)
        flow = torch.where(valid.unsqueeze(0), flow, torch.zeros_like(flow))
        image1, image2 = photometric(frames[0], frames[1], self.rng, self.noise)
        h, w = self.height, self.width
        return {"image1": image1, "image2": image2, "flow": flow.view(2, h, w), "valid": valid.view(h, w).float()}

    def batch(self, size: int) -> Dict[str, Tensor]:
        samples = [self.sample() for _ in range(size)]
        return {key: torch.stack([s[key] for s in samples]) for key in samples[0]}
