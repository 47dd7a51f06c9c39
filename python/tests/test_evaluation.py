"""Evaluation helpers: a method run on enlarged pairs gives its flow back at the pair's size and scale; the
selection rule is a geometric mean of ratios to the reference."""
import unittest

import numpy as np
from flowlib.evaluation import enlarged, selection_score


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


class SelectionScoreTest(unittest.TestCase):
    def test_the_score_is_the_geometric_mean_of_the_ratios(self):
        reference = {"chairs": {"epe": 4.0}, "sintel": {"epe": 1.0}, "kitti2015": {"epe": 6.0, "fl_all": 0.2}}
        scores = {"chairs": {"epe": 2.0}, "sintel": {"epe": 2.0}, "kitti2015": {"epe": 6.0, "fl_all": 0.2}}
        self.assertAlmostEqual(selection_score(scores, reference), 1.0)
        scores["sintel"]["epe"] = 4.0
        self.assertAlmostEqual(selection_score(scores, reference), 2 ** 0.25)


if __name__ == "__main__":
    unittest.main()
