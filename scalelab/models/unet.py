"""U-Net for downscaling, run on the upsampled grid.

Ronneberger et al. 2015, "U-Net: Convolutional Networks for Biomedical Image
Segmentation", in the form used for climate downscaling emulators (e.g. Doury et al.
2023, Clim. Dyn.): the LR input is interpolated (bilinear) to the HR grid; an encoder
of ``depth`` levels, each two 3×3 conv-ReLU layers then 2×2 max-pooling, with the
channels doubling per level from ``width``; a bottleneck; a decoder of transposed
2×2 convolutions, concatenated skips and two 3×3 conv-ReLU layers; a 1×1 output
convolution giving the residual to the interpolated input.

Because each level halves the grid and doubles the channels, every level costs
about the same FLOPs: FLOPs grow ≈ linearly with ``depth`` and ≈ quadratically with
``width``. The HR size must be divisible by 2^depth.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from scalelab._errors import ScalelabError


def _double_conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(inplace=True),
                         nn.Conv2d(cout, cout, 3, padding=1), nn.ReLU(inplace=True))


class UNet(nn.Module):
    def __init__(self, width: int = 16, depth: int = 2, scale: int = 4, channels: int = 1,
                 in_channels: int | None = None):
        super().__init__()
        self.scale = scale
        self.channels = channels
        self.depth = depth
        widths = [width * 2**level for level in range(depth + 1)]
        self.down = nn.ModuleList()
        cin = in_channels or channels
        for level in range(depth):
            self.down.append(_double_conv(cin, widths[level]))
            cin = widths[level]
        self.bottleneck = _double_conv(cin, widths[depth])
        self.up = nn.ModuleList(
            nn.ConvTranspose2d(widths[level + 1], widths[level], 2, stride=2)
            for level in reversed(range(depth))
        )
        self.decode = nn.ModuleList(
            _double_conv(2 * widths[level], widths[level]) for level in reversed(range(depth))
        )
        self.out = nn.Conv2d(widths[0], channels, 1)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        up = F.interpolate(lr, scale_factor=self.scale, mode="bilinear", align_corners=False)
        factor = 2**self.depth
        if up.shape[-1] % factor or up.shape[-2] % factor:
            raise ScalelabError(
                f"a U-Net of depth {self.depth} needs an HR size divisible by {factor}, got "
                f"{tuple(up.shape[-2:])}; choose a smaller depth or another field_size."
            )
        h, skips = up, []
        for block in self.down:
            h = block(h)
            skips.append(h)
            h = F.max_pool2d(h, 2)
        h = self.bottleneck(h)
        for upconv, block, skip in zip(self.up, self.decode, reversed(skips)):
            h = block(torch.cat([upconv(h), skip], dim=1))
        return up[:, :self.channels] + self.out(h)
