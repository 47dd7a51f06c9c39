"""Self-supervised training pieces: the photometric losses on pairs with a known motion, and unlabelled pairs from
video files."""
import os
import tempfile
import unittest

import numpy as np
import torch

from flowlib.losses import (backward_warp, census_distance, census_transform, edge_aware_smoothness, fb_visible,
                            photometric_sequence_loss)
from flowlib.raft import RAFT
from flowlib.train import Batches, train_step
from flowlib.videopairs import VideoPairs, video_files


def textured(h: int, w: int, seed: int = 0, cell: int = 4) -> torch.Tensor:
    """A smooth random RGB texture (1, 3, H, W) in 0..255, of features about `cell` pixels wide."""
    noise = torch.rand(1, 3, h // cell, w // cell, generator=torch.Generator().manual_seed(seed))
    return 255 * torch.nn.functional.interpolate(noise, size=(h, w), mode="bicubic", align_corners=False).clamp(0, 1)


def shifted_pair(dx: int, dy: int):
    """Frame 2 is frame 1 moved by (dx, dy): the true flow is (dx, dy) everywhere, frame1(x) = frame2(x + flow)."""
    big = textured(80, 96)
    image1 = big[..., 8:72, 8:88]
    image2 = big[..., 8 - dy:72 - dy, 8 - dx:88 - dx]
    flow = torch.zeros(1, 2, 64, 80)
    flow[:, 0], flow[:, 1] = dx, dy
    return image1, image2, flow


class PhotometricLossTest(unittest.TestCase):
    def test_warping_the_second_frame_by_the_true_flow_gives_the_first(self):
        image1, image2, flow = shifted_pair(3, -2)
        warped, inside = backward_warp(image2, flow)
        interior = inside[0, 0] > 0
        self.assertLess((warped - image1)[0][:, interior].abs().max().item(), 1e-3)
        self.assertEqual(int((~interior).sum()), 2 * 80 + 3 * 64 - 2 * 3)  # the rows and columns that land outside

    def test_census_ignores_a_brightness_offset_and_sees_a_shift(self):
        image1, image2, _ = shifted_pair(2, 0)
        same = census_distance(census_transform(image1), census_transform(image1 + 30))
        moved = census_distance(census_transform(image1), census_transform(image2))
        self.assertLess(same[..., 3:-3, 3:-3].max().item(), 1e-4)
        self.assertGreater(moved[..., 3:-3, 3:-3].mean().item(), 1.0)

    def test_forward_backward_consistency_marks_what_disagrees(self):
        forward = torch.full((1, 2, 16, 16), 1.0)
        consistent = fb_visible(forward, -forward)
        self.assertEqual(int(consistent.sum()), 15 * 15)  # the last row and column land outside
        self.assertEqual(int(fb_visible(forward, forward).sum()), 0)

    def test_smoothness_is_zero_for_affine_flow_and_positive_for_noise(self):
        ys, xs = torch.meshgrid(torch.arange(16.0), torch.arange(16.0), indexing="ij")
        affine = torch.stack([0.1 * xs + 2, -0.05 * ys + 0.2 * xs])[None]
        image = textured(16, 16)
        self.assertLess(edge_aware_smoothness(affine, image).item(), 1e-5)
        self.assertGreater(edge_aware_smoothness(torch.randn(1, 2, 16, 16), image).item(), 0.1)

    def test_the_true_flow_scores_better_than_zero_or_wrong_flow_and_gradients_flow(self):
        image1, image2, flow = shifted_pair(4, 1)

        def loss(forward):
            return photometric_sequence_loss([forward], [-forward], image1, image2)
        off = torch.tensor([2.0, -2.0]).view(1, 2, 1, 1)
        true, zero, wrong = loss(flow), loss(torch.zeros_like(flow)), loss(flow + off)
        self.assertLess(true.item(), 0.6 * zero.item())
        self.assertLess(true.item(), 0.6 * wrong.item())
        guess = (flow + 0.5).requires_grad_()
        loss(guess).backward()
        self.assertTrue(torch.isfinite(guess.grad).all() and guess.grad.abs().sum() > 0)

    def test_mismatched_sequences_are_refused(self):
        image1, image2, flow = shifted_pair(1, 1)
        with self.assertRaisesRegex(ValueError, "as many forward as backward"):
            photometric_sequence_loss([flow, flow], [flow], image1, image2)


class UnlabelledStepTest(unittest.TestCase):
    def test_a_step_on_an_unlabelled_batch_trains_both_directions_and_returns_the_forward_flow(self):
        torch.manual_seed(0)
        model = RAFT(small=True)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
        image1, image2, _ = shifted_pair(2, 1)
        batch = {"image1": torch.cat([image1, image1.flip(-1)]), "image2": torch.cat([image2, image2.flip(-1)])}
        before = [p.detach().clone() for p in model.parameters()]
        loss, flow = train_step(model, optimizer, batch, iterations=2)
        self.assertTrue(torch.isfinite(loss))
        self.assertEqual(tuple(flow.shape), (2, 2, 64, 80))
        self.assertTrue(any(not torch.equal(a, b) for a, b in zip(before, model.parameters())))


def write_video(path: str, frames: int, height: int = 120, width: int = 160) -> None:
    import cv2
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), 10, (width, height))
    base = (textured(height + 64, width + 64, seed=3, cell=16)[0].permute(1, 2, 0).numpy()).astype(np.uint8)
    for t in range(frames):
        writer.write(np.ascontiguousarray(base[2 * t:2 * t + height, 3 * t:3 * t + width, ::-1]))
    writer.release()


class VideoPairsTest(unittest.TestCase):
    def setUp(self):
        self.folder = tempfile.mkdtemp()
        write_video(os.path.join(self.folder, "pan.avi"), 12)
        write_video(os.path.join(self.folder, "held-out.avi"), 12)
        open(os.path.join(self.folder, "notes.txt"), "w").close()

    def test_videos_are_listed_without_the_excluded_ones(self):
        self.assertEqual([os.path.basename(p) for p in video_files(self.folder, ["held-out.avi"])], ["pan.avi"])
        self.assertEqual(video_files(os.path.join(self.folder, "absent")), [])

    def test_pairs_are_crops_of_consecutive_frames_reproducible_from_the_seed(self):
        pairs = VideoPairs(video_files(self.folder), height=64, width=96)
        pairs.reseed("a")
        first = pairs.batch(3)
        pairs.reseed("a")
        again = pairs.batch(3)
        self.assertEqual(tuple(first["image1"].shape), (3, 3, 64, 96))
        self.assertNotIn("flow", first)
        self.assertTrue(torch.equal(first["image1"], again["image1"]) and torch.equal(first["image2"], again["image2"]))
        # Consecutive frames of a pan: alike, but not the same.
        difference = (first["image1"] - first["image2"]).abs().mean().item()
        unrelated = (first["image1"] - first["image2"].flip(-1, -2)).abs().mean().item()
        self.assertGreater(difference, 0.5)
        self.assertLess(difference, unrelated / 3)

    def test_unreadable_videos_are_an_error_that_names_them(self):
        bad = os.path.join(self.folder, "bad.mp4")
        with open(bad, "wb") as f:
            f.write(b"not a video")
        with self.assertRaisesRegex(ValueError, "bad.mp4"):
            VideoPairs([bad], height=64, width=64)

    def test_a_video_share_mixes_unlabelled_batches_into_the_synthetic_ones(self):
        made = iter(Batches(height=64, width=64, batch=2, seed=5, first_step=0, video_share=0.5, textures=[],
                            videos=video_files(self.folder)))
        batches = [next(made) for _ in range(12)]
        unlabelled = [b for b in batches if "flow" not in b]
        self.assertTrue(0 < len(unlabelled) < 12)
        self.assertEqual(tuple(unlabelled[0]["image1"].shape), (1, 3, 64, 64))
        with self.assertRaisesRegex(ValueError, "needs videos"):
            Batches(height=64, width=64, batch=2, seed=5, first_step=0, video_share=0.5, textures=[])


if __name__ == "__main__":
    unittest.main()
