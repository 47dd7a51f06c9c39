"""The training losses and the EPE metric on hand-computed cases."""
import unittest

import torch

from flowlib.losses import end_point_error, multiscale_epe_loss, sequence_loss


class LossTest(unittest.TestCase):
    def test_epe_is_the_mean_vector_distance(self):
        target = torch.zeros(1, 2, 2, 2)
        flow = torch.zeros(1, 2, 2, 2)
        flow[0, 0, 0, 0], flow[0, 1, 0, 0] = 3.0, 4.0  # one pixel off by 5
        self.assertAlmostEqual(end_point_error(flow, target).item(), 5 / 4)
        valid = torch.tensor([[[1.0, 0.0], [0.0, 0.0]]])
        self.assertAlmostEqual(end_point_error(flow, target, valid).item(), 5.0)

    def test_sequence_loss_weights_later_iterations_more(self):
        target = torch.zeros(1, 2, 4, 4)
        flows = [torch.full((1, 2, 4, 4), 1.0), torch.full((1, 2, 4, 4), 2.0)]
        # gamma^(N-1-i): 0.8 for the first, 1 for the last; the L1 mean of each is its value.
        self.assertAlmostEqual(sequence_loss(flows, target, gamma=0.8).item(), 0.8 * 1 + 1.0 * 2, places=5)

    def test_sequence_loss_ignores_invalid_and_huge_motion(self):
        target = torch.zeros(1, 2, 1, 2)
        target[0, 0, 0, 1] = 1000.0  # beyond max_flow
        flows = [torch.ones(1, 2, 1, 2)]
        self.assertAlmostEqual(sequence_loss(flows, target).item(), 1.0)
        valid = torch.tensor([[[0.0, 1.0]]])
        self.assertEqual(sequence_loss(flows, target, valid).item(), 0.0)
        with self.assertRaisesRegex(ValueError, "gamma must be in \\(0, 1\\], got 1.5"):
            sequence_loss(flows, target, gamma=1.5)

    def test_multiscale_loss_downsamples_and_weights_coarse_scales_more(self):
        target = torch.full((1, 2, 64, 64), 20.0)  # 1.0 per component after div_flow 20
        zero = [torch.zeros(1, 2, 64 // 2 ** k, 64 // 2 ** k) for k in range(5)]
        expected = sum((0.005, 0.01, 0.02, 0.08, 0.32)) * 2 ** 0.5
        self.assertAlmostEqual(multiscale_epe_loss(zero, target).item(), expected, places=5)
        only_coarse_wrong = [target[:, :, ::2 ** k, ::2 ** k] / 20 for k in range(4)] + [zero[4]]
        self.assertAlmostEqual(multiscale_epe_loss(only_coarse_wrong, target).item(), 0.32 * 2 ** 0.5, places=5)
        with self.assertRaisesRegex(ValueError, "expected 5 predictions"):
            multiscale_epe_loss(zero[:3], target)


if __name__ == "__main__":
    unittest.main()
