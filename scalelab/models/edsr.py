"""EDSR-style residual super-resolution network with a pixel-shuffle upsampler.

Lim et al. 2017, "Enhanced Deep Residual Networks for Single Image
Super-Resolution": a head convolution, ``depth`` residual blocks (conv-ReLU-conv
with an identity skip, no batch norm), a long skip, and a sub-pixel output
layer (Shi et al. 2016, PixelShuffle by the scale factor), so all convolutions run
on the coarse grid. The network predicts the
residual to a bilinear upsampling of the input, which is the standard practice for
field downscaling. Width (channels) and depth (blocks) set its size.
``in_channels`` > ``channels`` admits extra input channels (the noise of the
stochastic variant); the bilinear base uses the first ``channels``.
"""

from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F


class ResBlock(nn.Module):
    def __init__(self, width: int, res_scale: float = 1.0):
        super().__init__()
        self.conv1 = nn.Conv2d(width, width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1)
        self.res_scale = res_scale

    def forward(self, x):
        return x + self.res_scale * self.conv2(F.relu(self.conv1(x)))


class EDSR(nn.Module):
    def __init__(self, width: int = 16, depth: int = 2, scale: int = 4, channels: int = 1,
                 in_channels: int | None = None):
        super().__init__()
        self.scale = scale
        self.channels = channels
        self.head = nn.Conv2d(in_channels or channels, width, 3, padding=1)
        self.body = nn.Sequential(*[ResBlock(width, res_scale=0.1 if depth > 8 else 1.0)
                                    for _ in range(depth)])
        self.body_tail = nn.Conv2d(width, width, 3, padding=1)
        # sub-pixel output layer (Shi et al. 2016): every convolution runs at the LR grid
        self.upsample = nn.Sequential(
            nn.Conv2d(width, channels * scale * scale, 3, padding=1), nn.PixelShuffle(scale)
        )

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        h = self.head(lr)
        h = h + self.body_tail(self.body(h))
        out = self.upsample(h)
        base = F.interpolate(lr[:, :self.channels], scale_factor=self.scale, mode="bilinear", align_corners=False)
        return base + out
