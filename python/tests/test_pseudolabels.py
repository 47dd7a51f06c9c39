"""The pseudo-label teachers: each recovers a known motion, the forward-backward check keeps what agrees, an unknown
teacher is refused by name; targets count only where the frame has texture."""
import os
import tempfile
import unittest

import numpy as np
from flowlib.pseudolabels import TEACHERS, PseudoLabelledPairs, consistent, labelled, teacher
from flowlib.pseudolabels import textured as has_texture


def textured(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A smooth random RGB texture (uint8): enough structure for classical flow to lock on."""
    import cv2
    noise = np.random.default_rng(seed).random((height, width, 3)).astype(np.float32)
    return (cv2.GaussianBlur(noise, (0, 0), 2.0) * 255 * 3 - 255).clip(0, 255).astype(np.uint8)


class TeacherTest(unittest.TestCase):
    def test_each_teacher_recovers_a_shift_and_the_check_keeps_it(self):
        big = textured(160, 200)
        a, b = big[20:116, 20:148], big[18:114, 17:145]  # the content moves by (+3, +2) px from a to b
        for name in TEACHERS:
            with self.subTest(teacher=name):
                flow = teacher(a, b, name)
                self.assertEqual(flow.shape, (96, 128, 2))
                inner = flow[16:-16, 16:-16]
                self.assertLess(float(np.abs(inner - np.array([3.0, 2.0])).mean()), 0.3)
                forward, mask = labelled((a, b, name))
                self.assertEqual(forward.dtype, np.float16)
                valid = np.unpackbits(mask, axis=-1)[:, :128].astype(bool)
                self.assertGreater(valid[16:-16, 16:-16].mean(), 0.9)

    def test_the_check_drops_pixels_whose_backward_flow_disagrees_or_that_leave_the_frame(self):
        forward = np.zeros((8, 10, 2), np.float32)
        forward[..., 0] = 2.0
        backward = -forward
        backward[:4] = 0.0  # the upper half does not come back
        kept = consistent(forward, backward)
        self.assertFalse(kept[:4].any())
        self.assertTrue(kept[4:, :8].all())
        self.assertFalse(kept[:, 8:].any())  # x + 2 lands outside a 10-pixel-wide frame

    def test_an_unknown_teacher_is_refused_by_name(self):
        frame = textured(32, 32)
        with self.assertRaisesRegex(ValueError, "unknown teacher 'raft'; the teachers are dis-medium, deepflow"):
            teacher(frame, frame, "raft")


class TextureTest(unittest.TestCase):
    def test_texture_is_found_in_a_random_texture_and_not_in_a_flat_or_one_directional_image(self):
        self.assertGreater(has_texture(textured(64, 64)).mean(), 0.95)
        self.assertFalse(has_texture(np.full((64, 64, 3), 140, np.uint8)).any())
        ramp = np.repeat(np.linspace(0, 255, 64, dtype=np.float32)[None, :, None], 64, 0).repeat(3, 2)
        self.assertFalse(has_texture(ramp.astype(np.uint8)).any())  # an edge direction only: the aperture problem

    def test_training_targets_are_dropped_where_the_frame_is_bare(self):
        frame = textured(64, 64)
        frame[:32] = 150  # a bare sky over a textured ground
        with tempfile.TemporaryDirectory() as folder:
            np.savez(os.path.join(folder, "clip.npz"), frames=np.stack([frame, frame]),
                     pairs=np.array([[0, 1]], np.int32), flows=np.zeros((1, 64, 64, 2), np.float16),
                     valid=np.packbits(np.ones((1, 64, 64), bool), axis=-1))
            pairs = PseudoLabelledPairs(folder, height=64, width=64, seed=3)
            # Scaled by up to 1.2 and cropped: rows 0-16 stay bare (the 15-pixel window reaches 7 rows), 48 on ground.
            for _ in range(8):
                valid = pairs.sample()["valid"]
                self.assertEqual(float(valid[:17].sum()), 0.0)
                self.assertGreater(float(valid[48:].mean()), 0.9)


if __name__ == "__main__":
    unittest.main()
