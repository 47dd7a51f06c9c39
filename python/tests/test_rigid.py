"""The rigid 3-D scene generator: pairs of the asked size with finite, exact flow (frame 2 sampled along the flow
gives frame 1 back where the point stays visible), reproducible from a seed, and street cameras that mostly drive
straight."""
import math
import unittest

import torch
from flowlib.losses import backward_warp
from flowlib.rigid import STRAIGHT_SHARE, RigidSceneGenerator
from flowlib.synthetic import procedural_texture


def textures():
    import random
    rng = random.Random(7)
    return [procedural_texture(128, rng) for _ in range(4)]


class RigidSceneTest(unittest.TestCase):
    def test_pairs_have_the_size_and_a_finite_flow(self):
        generator = RigidSceneGenerator(height=48, width=64, seed=3, textures=textures())
        batch = generator.batch(2)
        self.assertEqual(tuple(batch["image1"].shape), (2, 3, 48, 64))
        self.assertEqual(tuple(batch["flow"].shape), (2, 2, 48, 64))
        self.assertEqual(tuple(batch["valid"].shape), (2, 48, 64))
        self.assertTrue(torch.isfinite(batch["flow"]).all())
        self.assertGreater(float(batch["valid"].mean()), 0.5)

    def test_the_same_seed_gives_the_same_pair(self):
        first = RigidSceneGenerator(height=32, width=48, seed="a/1", textures=textures()).sample()
        again = RigidSceneGenerator(height=32, width=48, seed="a/1", textures=textures()).sample()
        other = RigidSceneGenerator(height=32, width=48, seed="a/2", textures=textures()).sample()
        self.assertTrue(torch.equal(first["flow"], again["flow"]))
        self.assertTrue(torch.equal(first["image2"], again["image2"]))
        self.assertFalse(torch.equal(first["flow"], other["flow"]))

    def test_the_flow_carries_frame_2_back_onto_frame_1(self):
        # Against the same warp with zero flow: the true flow must explain the change far better, on average over
        # scenes (occluded pixels and the photometric augmentation leave a residue either way).
        generator = RigidSceneGenerator(height=64, width=96, seed=11, textures=textures())
        with_flow, without = [], []
        for _ in range(4):
            s = generator.sample()
            if float(s["flow"].abs().mean()) < 0.5:
                continue  # a still scene says nothing either way
            warped, inside = backward_warp(s["image2"][None], s["flow"][None])
            warped = warped[0]
            # Points that leave the frame have exact flow too, but nothing in frame 2 to compare with.
            mask = s["valid"].bool() & inside[0, 0].bool()
            with_flow.append(float((warped - s["image1"]).abs().mean(0)[mask].median()))
            without.append(float((s["image2"] - s["image1"]).abs().mean(0)[mask].median()))
        self.assertGreater(len(with_flow), 0)
        self.assertLess(sum(with_flow), 0.6 * sum(without))

    def test_street_cameras_mostly_drive_straight(self):
        generator = RigidSceneGenerator(height=32, width=48, seed=5, textures=textures(), street_share=1.0)
        generator._texture = lambda **_: torch.zeros(3, 8, 8)  # only the cameras are looked at
        angles = []
        for _ in range(300):
            _, camera_rotation, _ = generator._street()
            cosine = float(((torch.trace(camera_rotation) - 1) / 2).clamp(-1, 1))
            angles.append(math.degrees(math.acos(cosine)))
        straight = sum(a < 0.3 for a in angles) / len(angles)
        self.assertGreater(straight, STRAIGHT_SHARE - 0.12)
        self.assertLess(straight, STRAIGHT_SHARE + 0.2)  # a turning scene can draw a small angle too
        self.assertGreater(max(angles), 1.5)


if __name__ == "__main__":
    unittest.main()
