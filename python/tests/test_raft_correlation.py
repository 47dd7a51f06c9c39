"""RAFT's on-the-fly correlation lookup against the all-pairs volume it replaces."""
import unittest

import torch

from flowlib.raft import RAFT, CorrBlock


def pixel_grid(batch: int, height: int, width: int) -> torch.Tensor:
    ys, xs = torch.meshgrid(torch.arange(height).float(), torch.arange(width).float(), indexing="ij")
    return torch.stack([xs, ys]).unsqueeze(0).repeat(batch, 1, 1, 1)


class OnTheFlyCorrelationTest(unittest.TestCase):
    def compare(self, *, radius: int, dim: int, batch: int, height: int, width: int, spread: float,
                chunk_bytes: int = 1 << 26) -> float:
        torch.manual_seed(radius * 100 + height)
        block = CorrBlock(num_levels=4, radius=radius)
        f1, f2 = torch.randn(batch, dim, height, width), torch.randn(batch, dim, height, width)
        coords = pixel_grid(batch, height, width) + spread * torch.randn(batch, 2, height, width)
        coords[0, 0, 0, 0], coords[-1, 1, -1, -1] = -300.7, 900.2  # far outside the frame
        reference = block.lookup(block.build_pyramid(f1, f2), coords)
        computed = block.lookup_on_the_fly(f1, block.pool_features(f2), coords, chunk_bytes)
        self.assertEqual(computed.shape, reference.shape)
        return (computed - reference).abs().max().item()

    def test_smooth_motion_small_and_large_model_settings(self):
        for radius, dim in [(3, 128), (4, 256)]:
            error = self.compare(radius=radius, dim=dim, batch=1, height=24, width=40, spread=0.8)
            print(f"on the fly vs all pairs, radius {radius}, {dim} channels: max |difference| {error:.2e}")
            self.assertLess(error, 1e-4)

    def test_scattered_motion_odd_sizes_batches_and_small_chunks(self):
        # Large random motion leaves most windows outside their tile's region; odd sides pool to sides of one cell.
        error = self.compare(radius=3, dim=16, batch=2, height=13, width=19, spread=12.0, chunk_bytes=20_000)
        print(f"on the fly vs all pairs, scattered motion, 13x19, batch 2: max |difference| {error:.2e}")
        self.assertLess(error, 1e-4)

    def test_whole_model_flow_is_the_same_and_scripts(self):
        torch.manual_seed(0)
        model = torch.jit.script(RAFT(small=True).eval())
        image1 = torch.rand(1, 3, 96, 136) * 255
        image2 = torch.roll(image1, shifts=(3, -5), dims=(2, 3))
        with torch.inference_mode():
            fmap1, fmap2 = model.encode_features(torch.cat([image1, image2])).chunk(2)
            net, inp = model.encode_context(image1)
            volume, _ = model.refine(fmap1, fmap2, net, inp, 8, None, False)
            on_the_fly, _ = model.refine(fmap1, fmap2, net, inp, 8, None, True)
        error = (volume - on_the_fly).abs().max().item()
        print(f"RAFT-S flow, on the fly vs all pairs, 8 iterations: max |difference| {error:.2e} px")
        self.assertLess(error, 1e-4)


if __name__ == "__main__":
    unittest.main()
