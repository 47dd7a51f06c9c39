"""The synthetic generator's ground truth: frame 2 sampled at x + flow(x) reproduces frame 1 where visible."""
import unittest

import torch
import torch.nn.functional as F

from flowlib.losses import backward_warp
from flowlib.synthetic import SyntheticFlowGenerator, magnify, procedural_texture


def exact_samples(h: int, w: int, count: int, **options):
    """Samples of a generator with the given options on procedural textures, without photometric changes."""
    import random
    textures = [procedural_texture(128, random.Random(k)) for k in range(4)]
    generator = SyntheticFlowGenerator(height=h, width=w, textures=textures, **options)
    generator._photometric = lambda a, b: (a, b)
    return [generator.sample() for _ in range(count)]


class SyntheticTest(unittest.TestCase):
    def test_flow_warps_frame_two_onto_frame_one(self):
        import random
        textures = [procedural_texture(128, random.Random(k)) for k in range(4)]
        generator = SyntheticFlowGenerator(height=96, width=128, seed=3, textures=textures)
        generator._photometric = lambda a, b: (a, b)  # exact colours for this check
        sample = generator.sample()
        warped = backward_warp(sample["image2"][None], sample["flow"][None])[0][0]
        error = (warped - sample["image1"]).abs().mean(0)
        # Occluded and out-of-frame pixels differ; most of the frame must agree to within a few levels.
        self.assertGreater((error < 8).float().mean().item(), 0.5)
        self.assertGreater(sample["flow"].abs().max().item(), 1.0)

    def test_flow_has_no_sub_pixel_offset(self):
        """Shifting the flow by a quarter pixel in any direction makes the warp worse: no half-pixel convention slip."""
        import random
        textures = [procedural_texture(128, random.Random(k)) for k in range(4)]
        generator = SyntheticFlowGenerator(height=96, width=128, seed=7, textures=textures)
        generator._photometric = lambda a, b: (a, b)
        offsets = [(0.0, 0.0), (0.25, 0.0), (-0.25, 0.0), (0.0, 0.25), (0.0, -0.25)]
        errors = [0.0] * len(offsets)
        for _ in range(3):
            sample = generator.sample()
            for k, (ox, oy) in enumerate(offsets):
                shifted = sample["flow"] + torch.tensor([ox, oy]).view(2, 1, 1)
                warped = backward_warp(sample["image2"][None], shifted[None])[0][0]
                errors[k] += (warped - sample["image1"]).abs().mean(0)[8:-8, 8:-8].median().item()
        self.assertEqual(min(range(len(offsets)), key=lambda k: errors[k]), 0, f"warp errors {errors}")

    def test_slow_scenes_are_slow_and_still_exact(self):
        """slow_share=1 scales every motion down (median speed well under the default's) without breaking the warp."""
        h, w = 96, 128

        def median_speeds(share):
            samples = exact_samples(h, w, 6, seed=5, slow_share=share)
            return [s["flow"].norm(dim=0).median().item() for s in samples], samples

        fast, _ = median_speeds(0.0)
        slow, samples = median_speeds(1.0)
        self.assertLess(max(slow), 0.5 * sorted(fast)[len(fast) // 2], f"slow {slow} fast {fast}")
        for sample in samples:
            warped = backward_warp(sample["image2"][None], sample["flow"][None])[0][0]
            error = (warped - sample["image1"]).abs().mean(0)
            self.assertGreater((error < 8).float().mean().item(), 0.8)
        with self.assertRaisesRegex(ValueError, "slow_share must be in \\[0, 1\\], got 1.5"):
            SyntheticFlowGenerator(height=32, width=48, slow_share=1.5, textures=[])

    def test_motion_blur_softens_the_frames_and_keeps_the_flow(self):
        """blur_share=1 renders the same scene (same seed) with the same flow, but smoother frames."""
        import random
        textures = [procedural_texture(128, random.Random(k)) for k in range(4)]

        def sample(share):
            generator = SyntheticFlowGenerator(height=96, width=128, seed=9, blur_share=share, textures=textures)
            generator._photometric = lambda a, b: (a, b)
            return generator.sample()

        sharp, blurred = sample(0.0), sample(1.0)
        self.assertTrue(torch.equal(sharp["flow"], blurred["flow"]))

        def detail(image):
            return (image[:, :, 1:] - image[:, :, :-1]).abs().mean().item()

        for key in ("image1", "image2"):
            self.assertLess(detail(blurred[key]), 0.95 * detail(sharp[key]))
            self.assertLess((blurred[key] - sharp[key]).abs().mean().item(), 40)
        with self.assertRaisesRegex(ValueError, "blur_share must be in \\[0, 1\\], got -0.1"):
            SyntheticFlowGenerator(height=32, width=48, blur_share=-0.1, textures=[])

    def warp_agreement(self, sample, h, w):
        warped, inside = backward_warp(sample["image2"][None], sample["flow"][None])
        warped, inside = warped[0], inside[0, 0].bool()  # inside: pixels that stay in frame 2
        error = (warped - sample["image1"]).abs().mean(0)
        return ((error < 8) & inside).float().sum().item() / max(1, inside.sum().item())

    def test_fast_scenes_are_fast_and_still_exact(self):
        """fast_share=1 scales translations up (median speed well over the default's); the flow still warps."""
        h, w = 96, 128

        def median(values):
            return sorted(values)[len(values) // 2]

        normal = [s["flow"].norm(dim=0).median().item() for s in exact_samples(h, w, 6, seed=5)]
        fast = exact_samples(h, w, 6, seed=5, fast_share=1.0)
        self.assertGreater(median([s["flow"].norm(dim=0).median().item() for s in fast]), 1.5 * median(normal))
        for sample in fast:
            self.assertGreater(self.warp_agreement(sample, h, w), 0.4)
        with self.assertRaisesRegex(ValueError, "fast_share must be in \\[0, 1\\], got 2"):
            SyntheticFlowGenerator(height=32, width=48, fast_share=2, textures=[])
        with self.assertRaisesRegex(ValueError, "slow_share and fast_share together must be at most 1, got 0.6 "
                                                "\\+ 0.5"):
            SyntheticFlowGenerator(height=32, width=48, slow_share=0.6, fast_share=0.5, textures=[])

    def test_zoom_scenes_expand_from_a_focus_and_are_exact(self):
        """zoom_share=1: the background's flow diverges (forward motion: mostly expansion) and still warps."""
        h, w = 96, 128
        divergences = []
        for sample in exact_samples(h, w, 8, seed=11, zoom_share=1.0, min_objects=1, max_objects=1):
            flow = sample["flow"]
            divergence = (flow[0, :, 2:] - flow[0, :, :-2]).mean() / 2 + (flow[1, 2:] - flow[1, :-2]).mean() / 2
            divergences.append(divergence.item())
            self.assertGreater(self.warp_agreement(sample, h, w), 0.5)
        self.assertGreater(sum(d > 0.02 for d in divergences), len(divergences) // 2, divergences)

    def test_warm_starts_are_near_the_truth_at_one_eighth(self):
        import random
        from flowlib.synthetic import warm_start
        generator = SyntheticFlowGenerator(height=64, width=96, seed=2, textures=[])
        flow = generator.batch(3)["flow"]
        init = warm_start(flow, random.Random(1), torch.Generator().manual_seed(1))
        self.assertEqual(tuple(init.shape), (3, 2, 8, 12))
        truth = F.avg_pool2d(flow, 8) / 8
        self.assertLess((init - truth).abs().mean().item(), 0.5 * truth.abs().mean().item() + 0.3)
        self.assertFalse(torch.equal(init, truth))

    def test_batches_have_the_requested_shape_and_range(self):
        generator = SyntheticFlowGenerator(height=32, width=48, seed=1, textures=[])
        batch = generator.batch(2)
        self.assertEqual(tuple(batch["image1"].shape), (2, 3, 32, 48))
        self.assertEqual(tuple(batch["flow"].shape), (2, 2, 32, 48))
        self.assertGreaterEqual(batch["image1"].min().item(), 0)
        self.assertLessEqual(batch["image2"].max().item(), 255)
        with self.assertRaisesRegex(ValueError, "at least 16, got 8x48"):
            SyntheticFlowGenerator(height=8, width=48, textures=[])


class MagnifyTest(unittest.TestCase):
    def test_a_magnified_pair_keeps_exact_flow_scaled_with_it(self):
        import random
        big = procedural_texture(160, random.Random(2))
        h, w = 64, 96
        image1, image2 = big[:, 10:10 + h, 10:10 + w], big[:, 12:12 + h, 7:7 + w]  # content moves by (+3, -2)
        flow = torch.tensor([3.0, -2.0]).view(2, 1, 1).expand(2, h, w)
        valid = torch.ones(h, w)
        valid[30:34, 46:50] = 0  # pixel (32, 48) is inside every window a magnification of at most 2 takes
        batch = {"image1": image1[None], "image2": image2[None], "flow": flow[None].clone(), "valid": valid[None]}
        before = {key: value.clone() for key, value in batch.items()}
        out = magnify(batch, random.Random(9))
        for key in batch:
            self.assertEqual(out[key].shape, batch[key].shape, key)
            self.assertTrue(torch.equal(batch[key], before[key]), f"{key} was changed in place")
        u, v = out["flow"][0, 0], out["flow"][0, 1]
        self.assertGreater(float(u.mean()), 3 * 1.1)  # scaled up by 1.15-2, the same factor everywhere
        self.assertLess(float(u.mean()), 3 * 2.05)
        self.assertLess(float(u.std()) + float(v.std()), 1e-4)
        self.assertAlmostEqual(float(v.mean()) / float(u.mean()), -2 / 3, delta=0.1)  # the same factor along both axes
        # Frame 2 sampled along the scaled flow gives frame 1 back (away from the borders).
        warped = backward_warp(out["image2"], out["flow"])[0][0]
        inner = (slice(None), slice(12, -12), slice(12, -12))
        self.assertLess(float((warped - out["image1"][0])[inner].abs().mean()),
                        0.3 * float((out["image2"][0] - out["image1"][0])[inner].abs().mean()))
        # The invalid block stays invalid, enlarged with the rest (16 pixels before, at least 16 * 1.15^2 after);
        # the rest stays valid.
        mask = out["valid"][0]
        self.assertTrue(set(mask.unique().tolist()) <= {0.0, 1.0})
        self.assertGreaterEqual(int((mask == 0).sum()), 21)
        self.assertGreater(float(mask.mean()), 0.9)


if __name__ == "__main__":
    unittest.main()
