"""Evaluation helpers: a method run on enlarged pairs gives its flow back at the pair's size and scale; the
selection rule is a geometric mean of ratios to the reference; the still-sky measure looks at the sky's window
only."""
import os
import tempfile
import unittest

import numpy as np
from flowlib.evaluation import SKY_COLUMNS, SKY_PAIRS, SKY_ROWS, enlarged, selection_score, sky_drift, sky_pairs


class EnlargedTest(unittest.TestCase):
    def test_the_flow_comes_back_at_the_pairs_size_and_scale(self):
        seen = []

        def method(a, b):
            seen.append(a.shape)
            flow = np.zeros(a.shape[:2] + (2,), np.float32)
            flow[..., 0], flow[..., 1] = 6.0, -4.0  # what a pair twice the size shows for a (3, -2) motion
            return flow

        a = np.zeros((30, 40, 3), np.uint8)
        flow = enlarged(method, 2.0)(a, a.copy())
        self.assertEqual(seen, [(60, 80, 3)])
        self.assertEqual(flow.shape, (30, 40, 2))
        np.testing.assert_allclose(flow[..., 0], 3.0, atol=1e-5)
        np.testing.assert_allclose(flow[..., 1], -2.0, atol=1e-5)


class SkyDriftTest(unittest.TestCase):
    def test_only_the_sky_window_counts_and_its_median_vector_is_measured(self):
        pairs = np.zeros((SKY_PAIRS, 2, 100, 200, 3), np.uint8)
        h, w = pairs.shape[2:4]
        top, bottom = int(SKY_ROWS[0] * h), int(SKY_ROWS[1] * h)
        left, right = int(SKY_COLUMNS[0] * w), int(SKY_COLUMNS[1] * w)
        calls = []

        def method(a, b):
            calls.append(a.shape)
            flow = np.full(a.shape[:2] + (2,), 50.0, np.float32)  # the road, anything outside the window
            flow[top:bottom, left:right] = (3.0, -4.0)  # a sky drifting 5 px a pair
            flow[top, left:right] = (30.0, 40.0)  # one row of outliers: the median ignores it, the mean does not
            return flow

        drift = sky_drift(method, pairs)
        self.assertEqual(len(calls), SKY_PAIRS)
        self.assertAlmostEqual(drift["median_vector_px"], 5.0, places=3)
        rows = bottom - top
        self.assertAlmostEqual(drift["mean_length_px"], (5.0 * (rows - 1) + 50.0) / rows, places=2)


class SkyPairsTest(unittest.TestCase):
    def test_consecutive_pairs_spread_over_the_clip_and_nothing_else_is_kept(self):
        import cv2
        with tempfile.TemporaryDirectory() as out:
            path = os.path.join(out, "clip.avi")
            writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
            for t in range(30):  # frame t is grey level 8 t, which survives the codec to within a few levels
                writer.write(np.full((48, 64, 3), 8 * t, np.uint8))
            writer.release()
            pairs = sky_pairs(path)
        self.assertEqual(pairs.shape, (SKY_PAIRS, 2, 48, 64, 3))
        levels = pairs.reshape(SKY_PAIRS, 2, -1).mean(axis=2) / 8
        starts = np.linspace(0, 28, SKY_PAIRS).astype(int)
        np.testing.assert_allclose(levels[:, 0], starts, atol=0.5)
        np.testing.assert_allclose(levels[:, 1], starts + 1, atol=0.5)

    def test_an_absent_clip_gives_none_and_an_unreadable_one_is_refused_by_name(self):
        with tempfile.TemporaryDirectory() as out:
            self.assertIsNone(sky_pairs(os.path.join(out, "absent.mp4")))
            broken = os.path.join(out, "broken.mp4")
            with open(broken, "wb") as f:
                f.write(b"not a video" * 100)
            with self.assertRaisesRegex(ValueError, "broken.mp4: 0 readable frames"):
                sky_pairs(broken)


class SelectionScoreTest(unittest.TestCase):
    def test_the_score_is_the_geometric_mean_of_the_ratios(self):
        reference = {"chairs": {"epe": 4.0}, "sintel": {"epe": 1.0}, "kitti2015": {"epe": 6.0, "fl_all": 0.2}}
        scores = {"chairs": {"epe": 2.0}, "sintel": {"epe": 2.0}, "kitti2015": {"epe": 6.0, "fl_all": 0.2}}
        self.assertAlmostEqual(selection_score(scores, reference), 1.0)
        scores["sintel"]["epe"] = 4.0
        self.assertAlmostEqual(selection_score(scores, reference), 2 ** 0.25)


if __name__ == "__main__":
    unittest.main()
