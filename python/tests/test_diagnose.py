"""The diagnosis reports a set's EPE and Fl-all as the trainer's evaluation does, so its selection score is the
trainer's."""
import unittest

import numpy as np
from flowlib.diagnose import breakdown
from flowlib.evaluation import Sample, evaluate_full


def sample(name, shift):
    truth = np.zeros((8, 10, 2), np.float32)
    truth[..., 0] = 10.0
    valid = np.ones((8, 10), bool)
    valid[0] = False  # the first row is not counted
    image = np.full((8, 10, 3), shift, np.uint8)  # tells the method which pair it is given
    return Sample(name, image, image.copy(), truth, valid)


def method(a, b):
    """The truth, 4 px off in u on the left half of the frame when the pair is marked 1, else exact."""
    flow = np.zeros(a.shape[:2] + (2,), np.float32)
    flow[..., 0] = 10.0
    if a[0, 0, 0] == 1:
        flow[:, :5, 0] += 4.0
    return flow


class BreakdownTest(unittest.TestCase):
    def test_epe_and_fl_all_are_the_trainers(self):
        pairs = [sample("off", 1), sample("exact", 0)]
        result = breakdown(method, pairs)
        # EPE is the mean over pairs (2 px and 0 px); Fl-all is over all counted pixels (4 px > 3 px and > 5% of
        # 10 px on a quarter of them).
        self.assertAlmostEqual(result["epe"], 1.0, places=6)
        self.assertAlmostEqual(result["fl_all"], 0.25, places=6)
        full = evaluate_full(method, {"set": pairs})["set"]
        self.assertEqual((result["epe"], result["fl_all"]), (full["epe"], full["fl_all"]))


if __name__ == "__main__":
    unittest.main()
