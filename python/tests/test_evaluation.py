"""Evaluation helpers: a method run on enlarged pairs gives its flow back at the pair's size and scale; the
selection rule is a geometric mean of ratios to the reference; the still-sky measure looks at the sky's window
only."""
import unittest

import numpy as np
from flowlib.evaluation import SKY_COLUMNS, SKY_PAIRS, SKY_ROWS, enlarged, selection_score, sky_drift


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
        frames = np.zeros((20, 100, 200, 3), np.uint8)
        h, w = frames.shape[1:3]
        top, bottom = int(SKY_ROWS[0] * h), int(SKY_ROWS[1] * h)
        left, right = int(SKY_COLUMNS[0] * w), int(SKY_COLUMNS[1] * w)
        calls = []

        def method(a, b):
            calls.append(a.shape)
            flow = np.full(a.shape[:2] + (2,), 50.0, np.float32)  # the road, anything outside the window
            flow[top:bottom, left:right] = (3.0, -4.0)  # a sky drifting 5 px a pair
            flow[top, left:right] = (30.0, 40.0)  # one row of outliers: the median ignores it, the mean does not
            return flow

        drift = sky_drift(method, frames)
        self.assertEqual(len(calls), SKY_PAIRS)
        self.assertAlmostEqual(drift["median_vector_px"], 5.0, places=3)
        rows = bottom - top
        self.assertAlmostEqual(drift["mean_length_px"], (5.0 * (rows - 1) + 50.0) / rows, places=2)


class SelectionScoreTest(unittest.TestCase):
    def test_the_score_is_the_geometric_mean_of_the_ratios(self):
        reference = {"chairs": {"epe": 4.0}, "sintel": {"epe": 1.0}, "kitti2015": {"epe": 6.0, "fl_all": 0.2}}
        scores = {"chairs": {"epe": 2.0}, "sintel": {"epe": 2.0}, "kitti2015": {"epe": 6.0, "fl_all": 0.2}}
        self.assertAlmostEqual(selection_score(scores, reference), 1.0)
        scores["sintel"]["epe"] = 4.0
        self.assertAlmostEqual(selection_score(scores, reference), 2 ** 0.25)


if __name__ == "__main__":
    unittest.main()
