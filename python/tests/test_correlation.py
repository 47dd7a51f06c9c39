"""FlowNetC's plain-torch correlation against the explicit-loop definition."""
import unittest

import torch

from flowlib.flownet import Correlation, correlation_reference


class CorrelationTest(unittest.TestCase):
    def test_matches_the_loop_definition_with_the_papers_settings(self):
        torch.manual_seed(0)
        f1, f2 = torch.randn(2, 7, 11, 14), torch.randn(2, 7, 11, 14)
        out = Correlation(max_displacement=20, stride=2)(f1, f2)
        self.assertEqual(tuple(out.shape), (2, 441, 11, 14))
        error = (out - correlation_reference(f1, f2, max_displacement=20, stride=2)).abs().max().item()
        print(f"correlation vs explicit loops: max |difference| {error:.2e}")
        self.assertLess(error, 1e-5)

    def test_other_displacements_and_strides(self):
        torch.manual_seed(1)
        f1, f2 = torch.randn(1, 3, 9, 8), torch.randn(1, 3, 9, 8)
        for max_displacement, stride in [(4, 1), (6, 2), (0, 1)]:
            out = Correlation(max_displacement=max_displacement, stride=stride)(f1, f2)
            ref = correlation_reference(f1, f2, max_displacement=max_displacement, stride=stride)
            self.assertLess((out - ref).abs().max().item(), 1e-5)

    def test_channel_order_is_vertical_major(self):
        # A feature at (y, x) in frame 1 found 2 rows down and 4 columns right in frame 2.
        f1, f2 = torch.zeros(1, 1, 30, 30), torch.zeros(1, 1, 30, 30)
        f1[0, 0, 10, 10] = 1
        f2[0, 0, 12, 14] = 1
        out = Correlation(max_displacement=20, stride=2)(f1, f2)
        i, j = 10 + 1, 10 + 2  # (dy / stride + r, dx / stride + r)
        self.assertEqual(out[0, i * 21 + j, 10, 10].item(), 1.0)
        self.assertEqual(out[0, :, 10, 10].sum().item(), 1.0)

    def test_scripts_and_rejects_bad_settings(self):
        scripted = torch.jit.script(Correlation())
        f = torch.randn(1, 4, 6, 6)
        self.assertTrue(torch.equal(scripted(f, f), Correlation()(f, f)))
        with self.assertRaisesRegex(ValueError, "multiple of stride, got 5 and 2"):
            Correlation(max_displacement=5, stride=2)


if __name__ == "__main__":
    unittest.main()
