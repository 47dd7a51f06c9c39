"""RAFT and RAFT-S (Teed & Deng, "RAFT: Recurrent All-Pairs Field Transforms for Optical Flow", ECCV 2020).

Module and parameter names follow the authors' release (princeton-vl/RAFT, core/), so their checkpoints
(`raft-things.pth`, `raft-small.pth`, ...) load after stripping the `module.` prefix that
`torch.nn.DataParallel` added. The code is scriptable: the exported TorchScript file exposes the encoders and
the iterative refinement separately, so that a video session can encode every frame once.

Callers pass RGB images in 0..255 as float NCHW tensors whose sides are multiples of 8; normalisation to
[-1, 1] happens here (Section 4 of the paper trains on that range).
"""
from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _norm(norm_fn: str, channels: int) -> nn.Module:
    if norm_fn == "batch":
        return nn.BatchNorm2d(channels)
    if norm_fn == "instance":
        return nn.InstanceNorm2d(channels)
    if norm_fn == "none":
        return nn.Sequential()
    raise ValueError(f"norm_fn must be 'batch', 'instance' or 'none', got {norm_fn!r}")


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions with a skip connection (feature encoder of RAFT, Section 3.1)."""

    def __init__(self, in_planes: int, planes: int, *, norm_fn: str, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=3, padding=1, stride=stride)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, padding=1)
        self.relu = nn.ReLU(inplace=True)
        self.norm1 = _norm(norm_fn, planes)
        self.norm2 = _norm(norm_fn, planes)
        self.downsample: Optional[nn.Module] = None
        if stride != 1:
            # The authors register norm3 both as an attribute and inside `downsample`; both names appear in
            # their checkpoints (batch norm only), so keep both.
            self.norm3 = _norm(norm_fn, planes)
            self.downsample = nn.Sequential(nn.Conv2d(in_planes, planes, kernel_size=1, stride=stride), self.norm3)

    def forward(self, x: Tensor) -> Tensor:
        y = self.relu(self.norm1(self.conv1(x)))
        y = self.relu(self.norm2(self.conv2(y)))
        if self.downsample is not None:
            x = self.downsample(x)
        return self.relu(x + y)


class BottleneckBlock(nn.Module):
    """1x1 - 3x3 - 1x1 block with a skip connection (the small model's encoders)."""

    def __init__(self, in_planes: int, planes: int, *, norm_fn: str, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes // 4, kernel_size=1, padding=0)
        self.conv2 = nn.Conv2d(planes // 4, planes // 4, kernel_size=3, padding=1, stride=stride)
        self.conv3 = nn.Conv2d(planes // 4, planes, kernel_size=1, padding=0)
        self.relu = nn.ReLU(inplace=True)
        self.norm1 = _norm(norm_fn, planes // 4)
        self.norm2 = _norm(norm_fn, planes // 4)
        self.norm3 = _norm(norm_fn, planes)
        self.downsample: Optional[nn.Module] = None
        if stride != 1:
            self.norm4 = _norm(norm_fn, planes)
            self.downsample = nn.Sequential(nn.Conv2d(in_planes, planes, kernel_size=1, stride=stride), self.norm4)

    def forward(self, x: Tensor) -> Tensor:
        y = self.relu(self.norm1(self.conv1(x)))
        y = self.relu(self.norm2(self.conv2(y)))
        y = self.relu(self.norm3(self.conv3(y)))
        if self.downsample is not None:
            x = self.downsample(x)
        return self.relu(x + y)


class Encoder(nn.Module):
    """Feature or context encoder (Section 3.1): a 7x7 stride-2 convolution, three stages of two blocks
    (the second and third halve the resolution) and a 1x1 projection, giving 1/8 resolution."""

    def __init__(self, *, block, widths: Tuple[int, int, int, int], output_dim: int, norm_fn: str, dropout: float):
        super().__init__()
        stem, w1, w2, w3 = widths
        self.norm1 = _norm(norm_fn, stem)
        self.conv1 = nn.Conv2d(3, stem, kernel_size=7, stride=2, padding=3)
        self.relu1 = nn.ReLU(inplace=True)
        self.layer1 = _stage(block, stem, w1, norm_fn=norm_fn, stride=1)
        self.layer2 = _stage(block, w1, w2, norm_fn=norm_fn, stride=2)
        self.layer3 = _stage(block, w2, w3, norm_fn=norm_fn, stride=2)
        self.conv2 = nn.Conv2d(w3, output_dim, kernel_size=1)
        self.dropout = nn.Dropout2d(p=dropout) if dropout > 0 else nn.Identity()
        _init_weights(self)

    def forward(self, x: Tensor) -> Tensor:
        x = self.relu1(self.norm1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.dropout(self.conv2(x))


def BasicEncoder(*, output_dim: int, norm_fn: str, dropout: float = 0.0) -> Encoder:
    """RAFT's encoder: residual blocks of 64, 96 and 128 channels."""
    return Encoder(block=ResidualBlock, widths=(64, 64, 96, 128), output_dim=output_dim, norm_fn=norm_fn,
                   dropout=dropout)


def SmallEncoder(*, output_dim: int, norm_fn: str, dropout: float = 0.0) -> Encoder:
    """RAFT-S's encoder: bottleneck blocks of 32, 64 and 96 channels."""
    return Encoder(block=BottleneckBlock, widths=(32, 32, 64, 96), output_dim=output_dim, norm_fn=norm_fn,
                   dropout=dropout)


def _stage(block, in_planes: int, planes: int, *, norm_fn: str, stride: int) -> nn.Sequential:
    return nn.Sequential(block(in_planes, planes, norm_fn=norm_fn, stride=stride),
                         block(planes, planes, norm_fn=norm_fn, stride=1))


def _init_weights(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d, nn.GroupNorm)):
            if m.weight is not None:
                nn.init.constant_(m.weight, 1)
            if m.bias is not None:
                nn.init.constant_(m.bias, 0)


class CorrBlock(nn.Module):
    """All-pairs correlation volume, pooled into a pyramid and looked up around the current estimate (Section 3.2).

    The volume is the dot product of every pair of 1/8-resolution feature vectors divided by sqrt(channels);
    its last two dimensions are average-pooled `num_levels - 1` times. A lookup samples a (2r+1)^2 window at
    every level. The window's channel order matches the authors' (x offset major), which trained weights rely on.
    """

    def __init__(self, *, num_levels: int, radius: int):
        super().__init__()
        if num_levels < 1 or radius < 1:
            raise ValueError(f"num_levels and radius must be positive, got {num_levels} and {radius}")
        self.num_levels = num_levels
        self.radius = radius

    def build_pyramid(self, fmap1: Tensor, fmap2: Tensor) -> List[Tensor]:
        batch, dim, ht, wd = fmap1.shape
        corr = torch.matmul(fmap1.reshape(batch, dim, ht * wd).transpose(1, 2), fmap2.reshape(batch, dim, ht * wd))
        corr = corr.reshape(batch * ht * wd, 1, ht, wd) / (float(dim) ** 0.5)
        pyramid = [corr]
        for _ in range(self.num_levels - 1):
            corr = F.avg_pool2d(corr, kernel_size=2, stride=2)
            pyramid.append(corr)
        return pyramid

    def lookup(self, pyramid: List[Tensor], coords: Tensor) -> Tensor:
        r = self.radius
        batch, _, h1, w1 = coords.shape
        offsets = torch.linspace(-r, r, 2 * r + 1, device=coords.device, dtype=coords.dtype)
        # (first, second) = (x offset, y offset) with the first varying slowest, as in the authors' code.
        delta = torch.stack(torch.meshgrid(offsets, offsets, indexing="ij"), dim=-1).view(1, 2 * r + 1, 2 * r + 1, 2)
        centroid = coords.permute(0, 2, 3, 1).reshape(batch * h1 * w1, 1, 1, 2)
        out: List[Tensor] = []
        for level, corr in enumerate(pyramid):
            xy = centroid / float(2 ** level) + delta
            ht, wd = corr.shape[-2:]
            # align_corners=True normalisation, with the authors' (size - 1) denominators.
            scale = torch.tensor([2.0 / max(wd - 1, 1), 2.0 / max(ht - 1, 1)], device=xy.device, dtype=xy.dtype)
            grid = xy * scale - 1.0
            sampled = F.grid_sample(corr, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
            out.append(sampled.view(batch, h1, w1, -1))
        return torch.cat(out, dim=-1).permute(0, 3, 1, 2).contiguous()

    def pool_features(self, fmap2: Tensor) -> List[Tensor]:
        """The second frame's features average-pooled like the volume's last two dimensions: pooling the volume
        over frame 2 equals correlating with pooled features (both are linear), so the pyramid need not exist."""
        pooled = [fmap2]
        for _ in range(self.num_levels - 1):
            fmap2 = F.avg_pool2d(fmap2, kernel_size=2, stride=2)
            pooled.append(fmap2)
        return pooled

    def lookup_on_the_fly(self, fmap1: Tensor, pooled: List[Tensor], coords: Tensor,
                          chunk_bytes: int = 1 << 26) -> Tensor:
        """The same values as `lookup(build_pyramid(fmap1, fmap2), coords)` without the all-pairs volume, in memory
        linear in the frame's size. The window's offsets are whole numbers, so all its taps share the bilinear
        weights of its centre: the dot products at the (2r+2)^2 integer positions around it, weighted four at a
        time, give the (2r+1)^2 samples. Those dot products come from a matrix product per 8x8 tile of query pixels
        against the one region of frame 2 that holds most of the tile's windows (neighbours move alike); pixels
        whose window lies outside it are gathered alone. Positions outside the frame count as zero, as
        grid_sample's zero padding does."""
        r = self.radius
        side = 2 * r + 2
        tile = 8
        span = side + 12  # the region's side: a tile's own extent (7) and some spread of motion
        batch, dim, h1, w1 = fmap1.shape
        pad_h, pad_w = (tile - h1 % tile) % tile, (tile - w1 % tile) % tile
        ht1, wd1 = h1 + pad_h, w1 + pad_w
        rows_t, cols_t = ht1 // tile, wd1 // tile
        tiles, per_tile = batch * rows_t * cols_t, tile * tile
        query = F.pad(fmap1 / (float(dim) ** 0.5), [0, pad_w, 0, pad_h])
        query = query.view(batch, dim, rows_t, tile, cols_t, tile).permute(0, 2, 4, 3, 5, 1)
        query = query.reshape(tiles, per_tile, dim)
        centres = F.pad(coords, [0, pad_w, 0, pad_h], mode="replicate")
        centres = centres.view(batch, 2, rows_t, tile, cols_t, tile).permute(0, 2, 4, 3, 5, 1)
        centres = centres.reshape(tiles, per_tile, 2)
        image = torch.arange(batch, device=coords.device).view(batch, 1).expand(batch, rows_t * cols_t)
        image = image.reshape(tiles, 1)
        steps = torch.arange(side, device=coords.device)
        region_steps = torch.arange(span, device=coords.device)
        tiles_per_chunk = max(1, chunk_bytes // (span * span * dim * 4))
        pixels_per_chunk = max(1, chunk_bytes // (side * side * dim * 4))
        out: List[Tensor] = []
        for level, fmap2 in enumerate(pooled):
            ht, wd = fmap2.shape[-2:]
            table = fmap2.permute(0, 2, 3, 1).reshape(batch * ht * wd, dim)
            x = centres[:, :, 0] / float(2 ** level)
            y = centres[:, :, 1] / float(2 ** level)
            # A side of one cell: align_corners=True maps every coordinate onto it (lookup's (size - 1) scale is
            # then 0), so every tap reads that row or column (the window's middle one, below) with full weight.
            if wd == 1:
                x = torch.zeros_like(x)
            if ht == 1:
                y = torch.zeros_like(y)
            x0, y0 = torch.floor(x), torch.floor(y)
            fx, fy = (x - x0).unsqueeze(-1).unsqueeze(-1), (y - y0).unsqueeze(-1).unsqueeze(-1)
            start_x, start_y = x0.long() - r, y0.long() - r
            # Each tile's region is centred on its median window, so a few outliers do not move it.
            origin_x = torch.median(start_x, dim=1, keepdim=True).values - (span - side) // 2
            origin_y = torch.median(start_y, dim=1, keepdim=True).values - (span - side) // 2
            rel_x, rel_y = start_x - origin_x, start_y - origin_y
            covered = (rel_x >= 0) & (rel_x <= span - side) & (rel_y >= 0) & (rel_y <= span - side)
            grid_x, grid_y = origin_x + region_steps, origin_y + region_steps
            region_valid = (((grid_y >= 0) & (grid_y < ht)).unsqueeze(2) & ((grid_x >= 0) & (grid_x < wd)).unsqueeze(1))
            region_index = (image.unsqueeze(2) * (ht * wd) + grid_y.clamp(0, ht - 1).unsqueeze(2) * wd
                            + grid_x.clamp(0, wd - 1).unsqueeze(1)).view(tiles, span * span)
            local = torch.empty(tiles, per_tile, span * span, dtype=fmap1.dtype, device=fmap1.device)
            for first in range(0, tiles, tiles_per_chunk):
                last = min(tiles, first + tiles_per_chunk)
                region = table.index_select(0, region_index[first:last].reshape(-1))
                region = region.view(last - first, span * span, dim)
                local[first:last] = torch.bmm(query[first:last], region.transpose(1, 2))
            local = local * region_valid.view(tiles, 1, span * span).to(local.dtype)
            tap_index = ((rel_y.clamp(0, span - side).unsqueeze(-1) + steps).unsqueeze(-1) * span
                         + (rel_x.clamp(0, span - side).unsqueeze(-1) + steps).unsqueeze(-2))
            taps = torch.gather(local, 2, tap_index.view(tiles, per_tile, side * side)).view(tiles * per_tile, -1)
            missing = torch.nonzero(~covered.view(-1)).view(-1)
            for first in range(0, missing.numel(), pixels_per_chunk):
                which = missing[first:first + pixels_per_chunk]
                xs = start_x.view(-1)[which].unsqueeze(1) + steps
                ys = start_y.view(-1)[which].unsqueeze(1) + steps
                inside = ((ys >= 0) & (ys < ht)).unsqueeze(2) & ((xs >= 0) & (xs < wd)).unsqueeze(1)
                index = (image.expand(tiles, per_tile).reshape(-1)[which].view(-1, 1, 1) * (ht * wd)
                         + ys.clamp(0, ht - 1).unsqueeze(2) * wd + xs.clamp(0, wd - 1).unsqueeze(1))
                gathered = table.index_select(0, index.reshape(-1)).view(which.numel(), side * side, dim)
                own = torch.bmm(gathered, query.view(tiles * per_tile, dim, 1).index_select(0, which))
                taps[which] = own.view(which.numel(), side * side) * inside.view(which.numel(), -1).to(own.dtype)
            taps = taps.view(tiles, per_tile, side, side)  # rows are y, columns x
            if ht == 1:
                taps = taps[:, :, r:r + 1, :].expand(tiles, per_tile, side, side)
            if wd == 1:
                taps = taps[:, :, :, r:r + 1].expand(tiles, per_tile, side, side)
            window = ((1 - fy) * ((1 - fx) * taps[:, :, :-1, :-1] + fx * taps[:, :, :-1, 1:])
                      + fy * ((1 - fx) * taps[:, :, 1:, :-1] + fx * taps[:, :, 1:, 1:]))
            # The authors' channel order: x offset major.
            window = window.transpose(2, 3).reshape(batch, rows_t, cols_t, tile, tile, -1)
            window = window.permute(0, 1, 3, 2, 4, 5).reshape(batch, ht1, wd1, -1)
            out.append(window[:, :h1, :w1])
        return torch.cat(out, dim=-1).permute(0, 3, 1, 2).contiguous()


class FlowHead(nn.Module):
    def __init__(self, input_dim: int, hidden_dim: int):
        super().__init__()
        self.conv1 = nn.Conv2d(input_dim, hidden_dim, 3, padding=1)
        self.conv2 = nn.Conv2d(hidden_dim, 2, 3, padding=1)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv2(self.relu(self.conv1(x)))


class ConvGRU(nn.Module):
    """Convolutional GRU with 3x3 gates (Section 3.3; the small model's update operator)."""

    def __init__(self, *, hidden_dim: int, input_dim: int):
        super().__init__()
        self.convz = nn.Conv2d(hidden_dim + input_dim, hidden_dim, 3, padding=1)
        self.convr = nn.Conv2d(hidden_dim + input_dim, hidden_dim, 3, padding=1)
        self.convq = nn.Conv2d(hidden_dim + input_dim, hidden_dim, 3, padding=1)

    def forward(self, h: Tensor, x: Tensor) -> Tensor:
        hx = torch.cat([h, x], dim=1)
        z = torch.sigmoid(self.convz(hx))
        r = torch.sigmoid(self.convr(hx))
        q = torch.tanh(self.convq(torch.cat([r * h, x], dim=1)))
        return (1 - z) * h + z * q


class SepConvGRU(nn.Module):
    """Two GRUs, 1x5 then 5x1, which widen the receptive field at the cost of one 3x3 GRU (Section 3.3)."""

    def __init__(self, *, hidden_dim: int, input_dim: int):
        super().__init__()
        self.convz1 = nn.Conv2d(hidden_dim + input_dim, hidden_dim, (1, 5), padding=(0, 2))
        self.convr1 = nn.Conv2d(hidden_dim + input_dim, hidden_dim, (1, 5), padding=(0, 2))
        self.convq1 = nn.Conv2d(hidden_dim + input_dim, hidden_dim, (1, 5), padding=(0, 2))
        self.convz2 = nn.Conv2d(hidden_dim + input_dim, hidden_dim, (5, 1), padding=(2, 0))
        self.convr2 = nn.Conv2d(hidden_dim + input_dim, hidden_dim, (5, 1), padding=(2, 0))
        self.convq2 = nn.Conv2d(hidden_dim + input_dim, hidden_dim, (5, 1), padding=(2, 0))

    def forward(self, h: Tensor, x: Tensor) -> Tensor:
        hx = torch.cat([h, x], dim=1)
        z = torch.sigmoid(self.convz1(hx))
        r = torch.sigmoid(self.convr1(hx))
        q = torch.tanh(self.convq1(torch.cat([r * h, x], dim=1)))
        h = (1 - z) * h + z * q
        hx = torch.cat([h, x], dim=1)
        z = torch.sigmoid(self.convz2(hx))
        r = torch.sigmoid(self.convr2(hx))
        q = torch.tanh(self.convq2(torch.cat([r * h, x], dim=1)))
        return (1 - z) * h + z * q


class SmallMotionEncoder(nn.Module):
    def __init__(self, *, corr_planes: int):
        super().__init__()
        self.convc1 = nn.Conv2d(corr_planes, 96, 1, padding=0)
        self.convf1 = nn.Conv2d(2, 64, 7, padding=3)
        self.convf2 = nn.Conv2d(64, 32, 3, padding=1)
        self.conv = nn.Conv2d(128, 80, 3, padding=1)

    def forward(self, flow: Tensor, corr: Tensor) -> Tensor:
        cor = F.relu(self.convc1(corr))
        flo = F.relu(self.convf2(F.relu(self.convf1(flow))))
        out = F.relu(self.conv(torch.cat([cor, flo], dim=1)))
        return torch.cat([out, flow], dim=1)


class BasicMotionEncoder(nn.Module):
    def __init__(self, *, corr_planes: int):
        super().__init__()
        self.convc1 = nn.Conv2d(corr_planes, 256, 1, padding=0)
        self.convc2 = nn.Conv2d(256, 192, 3, padding=1)
        self.convf1 = nn.Conv2d(2, 128, 7, padding=3)
        self.convf2 = nn.Conv2d(128, 64, 3, padding=1)
        self.conv = nn.Conv2d(64 + 192, 128 - 2, 3, padding=1)

    def forward(self, flow: Tensor, corr: Tensor) -> Tensor:
        cor = F.relu(self.convc2(F.relu(self.convc1(corr))))
        flo = F.relu(self.convf2(F.relu(self.convf1(flow))))
        out = F.relu(self.conv(torch.cat([cor, flo], dim=1)))
        return torch.cat([out, flow], dim=1)


class SmallUpdateBlock(nn.Module):
    def __init__(self, *, corr_planes: int, hidden_dim: int):
        super().__init__()
        self.encoder = SmallMotionEncoder(corr_planes=corr_planes)
        self.gru = ConvGRU(hidden_dim=hidden_dim, input_dim=82 + 64)
        self.flow_head = FlowHead(hidden_dim, hidden_dim=128)

    def forward(self, net: Tensor, inp: Tensor, corr: Tensor, flow: Tensor) -> Tuple[Tensor, Tensor]:
        motion = self.encoder(flow, corr)
        net = self.gru(net, torch.cat([inp, motion], dim=1))
        return net, self.flow_head(net)

    def upsample_mask(self, net: Tensor) -> Optional[Tensor]:
        return None


class BasicUpdateBlock(nn.Module):
    def __init__(self, *, corr_planes: int, hidden_dim: int):
        super().__init__()
        self.encoder = BasicMotionEncoder(corr_planes=corr_planes)
        self.gru = SepConvGRU(hidden_dim=hidden_dim, input_dim=128 + hidden_dim)
        self.flow_head = FlowHead(hidden_dim, hidden_dim=256)
        self.mask = nn.Sequential(nn.Conv2d(128, 256, 3, padding=1), nn.ReLU(inplace=True),
                                  nn.Conv2d(256, 64 * 9, 1, padding=0))

    def forward(self, net: Tensor, inp: Tensor, corr: Tensor, flow: Tensor) -> Tuple[Tensor, Tensor]:
        motion = self.encoder(flow, corr)
        net = self.gru(net, torch.cat([inp, motion], dim=1))
        return net, self.flow_head(net)

    def upsample_mask(self, net: Tensor) -> Optional[Tensor]:
        # The authors scale the mask by 0.25 to balance gradients; trained weights expect it.
        return 0.25 * self.mask(net)


def coords_grid(batch: int, ht: int, wd: int, device: torch.device, dtype: torch.dtype) -> Tensor:
    ys, xs = torch.meshgrid(torch.arange(ht, device=device, dtype=dtype),
                            torch.arange(wd, device=device, dtype=dtype), indexing="ij")
    return torch.stack([xs, ys], dim=0).unsqueeze(0).expand(batch, 2, ht, wd)


def convex_upsample(flow: Tensor, mask: Tensor) -> Tensor:
    """Each full-resolution pixel is a softmax-weighted combination of its 3x3 coarse neighbours (Section 3.3)."""
    n, _, h, w = flow.shape
    weights = torch.softmax(mask.view(n, 1, 9, 8, 8, h, w), dim=2)
    neighbours = F.unfold(8 * flow, [3, 3], padding=1).view(n, 2, 9, 1, 1, h, w)
    up = torch.sum(weights * neighbours, dim=2).permute(0, 1, 4, 2, 5, 3)
    return up.reshape(n, 2, 8 * h, 8 * w)


def bilinear_upsample(flow: Tensor) -> Tensor:
    h, w = flow.shape[-2:]
    return 8 * F.interpolate(flow, size=(8 * h, 8 * w), mode="bilinear", align_corners=True)


class RAFT(nn.Module):
    """RAFT (`small=False`) or RAFT-S (`small=True`), with the authors' hyper-parameters for each."""

    stride: int = 8

    def __init__(self, *, small: bool = False, dropout: float = 0.0):
        super().__init__()
        self.small = small
        if small:
            self.hidden_dim, self.context_dim, radius = 96, 64, 3
            self.fnet = SmallEncoder(output_dim=128, norm_fn="instance", dropout=dropout)
            self.cnet = SmallEncoder(output_dim=self.hidden_dim + self.context_dim, norm_fn="none", dropout=dropout)
        else:
            self.hidden_dim, self.context_dim, radius = 128, 128, 4
            self.fnet = BasicEncoder(output_dim=256, norm_fn="instance", dropout=dropout)
            self.cnet = BasicEncoder(output_dim=self.hidden_dim + self.context_dim, norm_fn="batch", dropout=dropout)
        self.flow_metadata = "{}"
        self.corr_levels = 4
        self.corr_radius = radius
        self.corr = CorrBlock(num_levels=self.corr_levels, radius=radius)
        corr_planes = self.corr_levels * (2 * radius + 1) ** 2
        if small:
            self.update_block = SmallUpdateBlock(corr_planes=corr_planes, hidden_dim=self.hidden_dim)
        else:
            self.update_block = BasicUpdateBlock(corr_planes=corr_planes, hidden_dim=self.hidden_dim)

    @staticmethod
    def normalize(image: Tensor) -> Tensor:
        return 2.0 * (image / 255.0) - 1.0

    def compute_dtype(self) -> torch.dtype:
        """The type of the weights, which the networks compute in: float32, or bfloat16 once the loader has cast the
        module (the mixed-precision path). Coordinates, the correlation and its lookups stay in float32 either way."""
        return self.update_block.flow_head.conv1.weight.dtype

    @torch.jit.export
    def encode_features(self, image: Tensor) -> Tensor:
        """Feature map (1/8 resolution, float32) of an RGB 0..255 image; shared by both frames of a pair."""
        return self.fnet(self.normalize(image).to(self.compute_dtype())).float()

    @torch.jit.export
    def encode_context(self, image: Tensor) -> Tuple[Tensor, Tensor]:
        """Initial hidden state and context features of the first frame, in the compute type."""
        out = self.cnet(self.normalize(image).to(self.compute_dtype()))
        net, inp = torch.split(out, [self.hidden_dim, self.context_dim], dim=1)
        return torch.tanh(net), torch.relu(inp)

    def _upsample(self, flow: Tensor, net: Tensor) -> Tensor:
        mask = self.update_block.upsample_mask(net)
        if mask is None:
            return bilinear_upsample(flow)
        return convex_upsample(flow, mask.float())

    def iterate(self, fmap1: Tensor, fmap2: Tensor, net: Tensor, inp: Tensor, iterations: int,
                flow_init: Optional[Tensor], keep_all: bool,
                tolerance: float = 0.0, on_the_fly: bool = False) -> Tuple[List[Tensor], Tensor, int]:
        """Runs the update operator; returns the upsampled flows (every iteration's, or only the last), the
        1/8-resolution flow and the number of iterations run. With `tolerance` > 0 it stops after the first iteration
        whose update moved the flow by less than `tolerance` full-resolution pixels on average (the largest such mean
        over the batch), at most `iterations`. With `on_the_fly` the correlation windows are computed from the
        features at each lookup instead of from the all-pairs volume: the same values in memory linear in the frame's
        size (the volume is quadratic: 4.2 GB at 1080p), at a higher cost per iteration."""
        if iterations < 1:
            raise ValueError(f"iterations must be at least 1, got {iterations}")
        if on_the_fly:
            pyramid = self.corr.pool_features(fmap2)
        else:
            pyramid = self.corr.build_pyramid(fmap1, fmap2)
        b, _, h, w = fmap1.shape
        coords0 = coords_grid(b, h, w, fmap1.device, fmap1.dtype)
        coords1 = coords0.clone()
        if flow_init is not None:
            coords1 = coords1 + flow_init
        flows: List[Tensor] = []
        ran = 0
        for i in range(iterations):
            coords1 = coords1.detach()
            if on_the_fly:
                corr = self.corr.lookup_on_the_fly(fmap1, pyramid, coords1)
            else:
                corr = self.corr.lookup(pyramid, coords1)
            net, delta = self.update_block(net, inp, corr.to(net.dtype), (coords1 - coords0).to(net.dtype))
            coords1 = coords1 + delta.float()
            ran = i + 1
            converged = False
            if tolerance > 0.0:
                update = 8.0 * torch.sqrt(delta[:, 0] ** 2 + delta[:, 1] ** 2).mean(dim=(1, 2)).max()
                converged = float(update) < tolerance
            if keep_all or i == iterations - 1 or converged:
                flows.append(self._upsample(coords1 - coords0, net))
            if converged:
                break
        return flows, coords1 - coords0, ran

    @torch.jit.export
    def refine(self, fmap1: Tensor, fmap2: Tensor, net: Tensor, inp: Tensor, iterations: int,
               flow_init: Optional[Tensor] = None, on_the_fly: bool = False) -> Tuple[Tensor, Tensor]:
        """Full-resolution flow and the 1/8-resolution flow (for warm-starting the next pair)."""
        flows, low, _ = self.iterate(fmap1, fmap2, net, inp, iterations, flow_init, False, 0.0, on_the_fly)
        return flows[-1], low

    @torch.jit.export
    def refine_adaptive(self, fmap1: Tensor, fmap2: Tensor, net: Tensor, inp: Tensor, iterations: int, tolerance: float,
                        flow_init: Optional[Tensor] = None, on_the_fly: bool = False) -> Tuple[Tensor, Tensor, int]:
        """As `refine`, stopping once an iteration's mean update is under `tolerance` pixels (at most `iterations`);
        also returns how many iterations ran."""
        flows, low, ran = self.iterate(fmap1, fmap2, net, inp, iterations, flow_init, False, tolerance, on_the_fly)
        return flows[-1], low, ran

    @torch.jit.export
    def forward_project(self, flow: Tensor) -> Tensor:
        """Warm start for the next pair of a video (Section 3.3): each 1/8-resolution motion vector is carried to
        where it points, as the authors do with scipy's griddata on the CPU. Cells that receive several vectors
        average them; empty cells take their neighbours' (three 3x3 dilation steps), then their own old value."""
        b, _, h, w = flow.shape
        target = coords_grid(b, h, w, flow.device, flow.dtype) + flow
        x = torch.round(target[:, 0]).long()
        y = torch.round(target[:, 1]).long()
        inside = ((x >= 0) & (x < w) & (y >= 0) & (y < h)).to(flow.dtype).view(b, 1, h * w)
        index = (y.clamp(0, h - 1) * w + x.clamp(0, w - 1)).view(b, 1, h * w)
        total = torch.zeros(b, 2, h * w, dtype=flow.dtype, device=flow.device)
        total.scatter_add_(2, index.expand(b, 2, h * w), flow.reshape(b, 2, h * w) * inside)
        count = torch.zeros(b, 1, h * w, dtype=flow.dtype, device=flow.device)
        count.scatter_add_(2, index, inside)
        total, count = total.view(b, 2, h, w), count.view(b, 1, h, w)
        kernel = torch.ones(1, 1, 3, 3, dtype=flow.dtype, device=flow.device)
        for _ in range(3):
            known = (count > 0).to(flow.dtype)
            mean = total / count.clamp(min=1)
            grown = F.conv2d(mean.reshape(b * 2, 1, h, w) * known.repeat_interleave(2, dim=0), kernel, padding=1)
            weight = F.conv2d(known, kernel, padding=1)
            fill = (known == 0) & (weight > 0)
            total = torch.where(fill, grown.view(b, 2, h, w) / weight.clamp(min=1), mean)
            count = torch.where(fill | (known > 0), torch.ones_like(count), count)
        projected = total / count.clamp(min=1)
        return torch.where(count > 0, projected, flow)

    def forward(self, image1: Tensor, image2: Tensor, iterations: int = 12,
                flow_init: Optional[Tensor] = None) -> Tensor:
        fmaps = self.encode_features(torch.cat([image1, image2], dim=0))
        fmap1, fmap2 = torch.chunk(fmaps, 2, dim=0)
        net, inp = self.encode_context(image1)
        flows, _, _ = self.iterate(fmap1, fmap2, net, inp, iterations, flow_init, False)
        return flows[-1]

    def forward_all(self, image1: Tensor, image2: Tensor, iterations: int = 12,
                    flow_init: Optional[Tensor] = None) -> List[Tensor]:
        """Every iteration's upsampled flow, for the sequence loss."""
        fmaps = self.encode_features(torch.cat([image1, image2], dim=0))
        fmap1, fmap2 = torch.chunk(fmaps, 2, dim=0)
        net, inp = self.encode_context(image1)
        flows, _, _ = self.iterate(fmap1, fmap2, net, inp, iterations, flow_init, True)
        return flows
