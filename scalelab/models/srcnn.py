"""SRCNN-style plain convolutional network, run on the upsampled grid.

Dong et al. 2016, "Image Super-Resolution Using Deep Convolutional Networks"
(SRCNN, 9-1-5 layout): the LR input is first interpolated to the HR grid (here
bicubic), then a 9×9 feature-extraction convolution, ``depth`` 3×3 convolutions of
``width`` channels with ReLU (the non-linear mapping, deepened as in VDSR, Kim et al.
2016), and a 5×5 reconstruction convolution. The network predicts the residual to
the interpolated input (Kim et al. 2016). All convolutions run at the HR grid, so the
FLOPs per sample are ``scale²`` times those of an EDSR of the same width and depth.

Parameters (``C`` = channels, ``C_in`` = input channels, ``w`` = width, ``d`` = depth):
N = 81·C_in·w + w + d·(9w² + w) + 25·w·C + C.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class SRCNN(nn.Module):
    def __init__(self, width: int = 16, depth: int = 2, scale: int = 4, channels: int = 1,
                 in_channels: int | None = None):
        super().__init__()
        self.scale = scale
        self.channels = channels
        self.extract = nn.Conv2d(in_channels or channels, width, 9, padding=4)
        self.mapping = nn.ModuleList(nn.Conv2d(width, width, 3, padding=1) for _ in range(depth))
        self.reconstruct = nn.Conv2d(width, channels, 5, padding=2)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        up = F.interpolate(lr, scale_factor=self.scale, mode="bicubic", align_corners=False)
        h = F.relu(self.extract(up))
        for conv in self.mapping:
            h = F.relu(conv(h))
        return up[:, :self.channels] + self.reconstruct(h)
