"""FlowNetS and FlowNetC (Dosovitskiy et al., "FlowNet: Learning Optical Flow with Convolutional Networks", ICCV 2015).

Module and parameter names follow FlowNetPytorch (`flownets_*.pth.tar`, `flownetc_*.pth.tar`: a dict with
`arch`, `state_dict` and `div_flow`), in its batch-norm and plain variants, so their checkpoints load as they
are. The FlowNet2 repository's FlowNet2-S and FlowNet2-C use the same names with biases on the (de)convolutions
and flow predictors (FlowNet2-C also on its flow upsamplers) and subtract the pair's own mean from the input;
`flownet2=True` builds that variant.

Callers pass RGB images in 0..255 (NCHW, sides a multiple of 64); the authors' normalisation (x / 255 minus a
per-channel mean) happens here, and the output is the full-resolution flow in pixels.
"""
from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# FlowNetPytorch subtracts this RGB mean after scaling to 0..1.
FLOWNETPYTORCH_MEAN = (0.45, 0.432, 0.411)


def conv(batch_norm: bool, in_planes: int, out_planes: int, kernel_size: int = 3, stride: int = 1) -> nn.Sequential:
    """Convolution (+ batch norm) + leaky ReLU(0.1); with batch norm the convolution has no bias."""
    layers: List[nn.Module] = [nn.Conv2d(in_planes, out_planes, kernel_size, stride, (kernel_size - 1) // 2,
                                         bias=not batch_norm)]
    if batch_norm:
        layers.append(nn.BatchNorm2d(out_planes))
    layers.append(nn.LeakyReLU(0.1, inplace=True))
    return nn.Sequential(*layers)


def deconv(in_planes: int, out_planes: int, bias: bool) -> nn.Sequential:
    return nn.Sequential(nn.ConvTranspose2d(in_planes, out_planes, 4, 2, 1, bias=bias), nn.LeakyReLU(0.1, inplace=True))


def predict_flow(in_planes: int, bias: bool) -> nn.Conv2d:
    return nn.Conv2d(in_planes, 2, kernel_size=3, stride=1, padding=1, bias=bias)


def crop_like(x: Tensor, target: Tensor) -> Tensor:
    return x[:, :, :target.shape[2], :target.shape[3]]


class Correlation(nn.Module):
    """FlowNetC's correlation layer in plain torch ops (Section 3 of the paper), identical on CPU and CUDA.

    For kernel size 1, out[b, (i, j), y, x] = <f1[b, :, y, x], f2[b, :, y + s*(i - d), x + s*(j - d)]> / C,
    with d = max_displacement / stride and s the stride in the second map; i indexes vertical displacements
    (the slower channel index) and j horizontal ones. Outside the second map the features are zero.

    The (2d+1)^2 displacements are a loop of shifted elementwise products: at 1024x436 that beats a banded
    batched matrix product (which does far more arithmetic) and needs no custom operator.
    """

    def __init__(self, *, max_displacement: int = 20, stride: int = 2):
        super().__init__()
        if max_displacement < 0 or stride < 1 or max_displacement % stride:
            raise ValueError(f"max_displacement must be a non-negative multiple of stride, got "
                             f"{max_displacement} and {stride}")
        self.max_displacement = max_displacement
        self.stride = stride
        self.patch = 2 * (max_displacement // stride) + 1

    def forward(self, f1: Tensor, f2: Tensor) -> Tensor:
        c, h, w = f1.shape[1], f1.shape[2], f1.shape[3]
        d, s, p = self.max_displacement, self.stride, self.patch
        padded = F.pad(f2, [d, d, d, d])
        out: List[Tensor] = []
        for i in range(p):
            for j in range(p):
                out.append((f1 * padded[:, :, i * s:i * s + h, j * s:j * s + w]).sum(1))
        return torch.stack(out, dim=1) / c


def correlation_reference(f1: Tensor, f2: Tensor, *, max_displacement: int = 20, stride: int = 2) -> Tensor:
    """The same correlation with explicit loops over displacements and pixels; slow, for tests only."""
    b, c, h, w = f1.shape
    r = max_displacement // stride
    out = torch.zeros(b, (2 * r + 1) ** 2, h, w, dtype=f1.dtype)
    for i in range(2 * r + 1):
        for j in range(2 * r + 1):
            dy, dx = (i - r) * stride, (j - r) * stride
            for y in range(h):
                for x in range(w):
                    yy, xx = y + dy, x + dx
                    if 0 <= yy < h and 0 <= xx < w:
                        out[:, i * (2 * r + 1) + j, y, x] = (f1[:, :, y, x] * f2[:, :, yy, xx]).sum(1) / c
    return out


class FlowNet(nn.Module):
    """The part FlowNetS and FlowNetC share: conv4 .. conv6_1 and the refinement from flow6 to flow2."""

    stride: int = 64
    # FlowNet2-C's flow upsamplers have biases, FlowNet2-S's do not.
    flownet2_upsampler_bias: bool = False

    def __init__(self, *, batch_norm: bool, flownet2: bool = False, div_flow: float = 20.0):
        super().__init__()
        if batch_norm and flownet2:
            raise ValueError("the FlowNet2 variants have no batch norm; pass batch_norm=False with flownet2=True")
        self.batch_norm = batch_norm
        # FlowNet2-S/C subtract the pair's own per-channel mean; FlowNetPytorch a fixed one.
        self.pair_mean = flownet2
        self.input_mean: List[float] = [m * 255.0 for m in FLOWNETPYTORCH_MEAN]
        self.div_flow = float(div_flow)
        self.flow_metadata = "{}"
        bn, bias = batch_norm, flownet2
        self.build_encoder(bn)
        self.conv4 = conv(bn, 256, 512, stride=2)
        self.conv4_1 = conv(bn, 512, 512)
        self.conv5 = conv(bn, 512, 512, stride=2)
        self.conv5_1 = conv(bn, 512, 512)
        self.conv6 = conv(bn, 512, 1024, stride=2)
        self.conv6_1 = conv(bn, 1024, 1024)

        self.deconv5 = deconv(1024, 512, bias)
        self.deconv4 = deconv(1026, 256, bias)
        self.deconv3 = deconv(770, 128, bias)
        self.deconv2 = deconv(386, 64, bias)

        self.predict_flow6 = predict_flow(1024, bias)
        self.predict_flow5 = predict_flow(1026, bias)
        self.predict_flow4 = predict_flow(770, bias)
        self.predict_flow3 = predict_flow(386, bias)
        self.predict_flow2 = predict_flow(194, bias)

        up_bias = flownet2 and self.flownet2_upsampler_bias
        self.upsampled_flow6_to_5 = nn.ConvTranspose2d(2, 2, 4, 2, 1, bias=up_bias)
        self.upsampled_flow5_to_4 = nn.ConvTranspose2d(2, 2, 4, 2, 1, bias=up_bias)
        self.upsampled_flow4_to_3 = nn.ConvTranspose2d(2, 2, 4, 2, 1, bias=up_bias)
        self.upsampled_flow3_to_2 = nn.ConvTranspose2d(2, 2, 4, 2, 1, bias=up_bias)

        # FlowNetPytorch's initialisation.
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.kaiming_normal_(m.weight, 0.1)
                if m.bias is not None:
                    nn.init.constant_(m.bias, 0)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def normalize_pair(self, image1: Tensor, image2: Tensor) -> Tuple[Tensor, Tensor]:
        if self.pair_mean:
            mean = torch.cat([image1, image2], dim=3).mean(dim=(2, 3), keepdim=True)
        else:
            mean = torch.tensor(self.input_mean, dtype=image1.dtype, device=image1.device).view(1, 3, 1, 1)
        return (image1 - mean) / 255.0, (image2 - mean) / 255.0

    def build_encoder(self, bn: bool) -> None:
        raise NotImplementedError

    def encode(self, image1: Tensor, image2: Tensor) -> Tuple[Tensor, Tensor]:
        """conv2 features (for the finest refinement) and conv3_1 features."""
        raise NotImplementedError

    def predict(self, image1: Tensor, image2: Tensor) -> List[Tensor]:
        """flow2 .. flow6, each in units of pixels / div_flow (the form the multi-scale loss compares)."""
        out_conv2, out_conv3 = self.encode(image1, image2)
        out_conv4 = self.conv4_1(self.conv4(out_conv3))
        out_conv5 = self.conv5_1(self.conv5(out_conv4))
        out_conv6 = self.conv6_1(self.conv6(out_conv5))

        flow6 = self.predict_flow6(out_conv6)
        concat5 = torch.cat((out_conv5, crop_like(self.deconv5(out_conv6), out_conv5),
                             crop_like(self.upsampled_flow6_to_5(flow6), out_conv5)), 1)
        flow5 = self.predict_flow5(concat5)
        concat4 = torch.cat((out_conv4, crop_like(self.deconv4(concat5), out_conv4),
                             crop_like(self.upsampled_flow5_to_4(flow5), out_conv4)), 1)
        flow4 = self.predict_flow4(concat4)
        concat3 = torch.cat((out_conv3, crop_like(self.deconv3(concat4), out_conv3),
                             crop_like(self.upsampled_flow4_to_3(flow4), out_conv3)), 1)
        flow3 = self.predict_flow3(concat3)
        concat2 = torch.cat((out_conv2, crop_like(self.deconv2(concat3), out_conv2),
                             crop_like(self.upsampled_flow3_to_2(flow3), out_conv2)), 1)
        flow2 = self.predict_flow2(concat2)
        return [flow2, flow3, flow4, flow5, flow6]

    def forward(self, image1: Tensor, image2: Tensor, iterations: int = 1,
                flow_init: Optional[Tensor] = None) -> Tensor:
        """Full-resolution flow in pixels. `iterations` and `flow_init` are part of the common model contract;
        FlowNet is a single pass and ignores them."""
        flow2 = self.predict(image1, image2)[0]
        return F.interpolate(self.div_flow * flow2, size=image1.shape[-2:], mode="bilinear", align_corners=False)


class FlowNetS(FlowNet):
    """FlowNetSimple: the two frames stacked into six channels go through one encoder."""

    def build_encoder(self, bn: bool) -> None:
        self.conv1 = conv(bn, 6, 64, kernel_size=7, stride=2)
        self.conv2 = conv(bn, 64, 128, kernel_size=5, stride=2)
        self.conv3 = conv(bn, 128, 256, kernel_size=5, stride=2)
        self.conv3_1 = conv(bn, 256, 256)

    def encode(self, image1: Tensor, image2: Tensor) -> Tuple[Tensor, Tensor]:
        x1, x2 = self.normalize_pair(image1, image2)
        conv2 = self.conv2(self.conv1(torch.cat([x1, x2], dim=1)))
        return conv2, self.conv3_1(self.conv3(conv2))


class FlowNetC(FlowNet):
    """FlowNetCorr: a shared tower per frame up to conv3, compared by the correlation layer."""

    flownet2_upsampler_bias = True

    def build_encoder(self, bn: bool) -> None:
        self.conv1 = conv(bn, 3, 64, kernel_size=7, stride=2)
        self.conv2 = conv(bn, 64, 128, kernel_size=5, stride=2)
        self.conv3 = conv(bn, 128, 256, kernel_size=5, stride=2)
        self.conv_redir = conv(bn, 256, 32, kernel_size=1, stride=1)
        self.corr = Correlation(max_displacement=20, stride=2)
        self.conv3_1 = conv(bn, 32 + 441, 256)

    def encode(self, image1: Tensor, image2: Tensor) -> Tuple[Tensor, Tensor]:
        x1, x2 = self.normalize_pair(image1, image2)
        conv2a = self.conv2(self.conv1(x1))
        conv3a = self.conv3(conv2a)
        conv3b = self.conv3(self.conv2(self.conv1(x2)))
        corr = F.leaky_relu(self.corr(conv3a, conv3b), 0.1)
        return conv2a, self.conv3_1(torch.cat([self.conv_redir(conv3a), corr], dim=1))
