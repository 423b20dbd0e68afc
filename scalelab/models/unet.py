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

``emb_dim`` makes it a conditional backbone (the denoiser of the diffusion family): an
embedding vector (e.g. of the noise level) is projected per block and added to each
double convolution's first feature map, as in the residual blocks of the DDPM U-Net
(Ho et al. 2020, App. B); :meth:`UNet.features` runs the U without the interpolation
and the residual.
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
                 in_channels: int | None = None, emb_dim: int | None = None):
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
        # one projection of the embedding per double convolution: down, bottleneck, decode
        block_widths = widths[:depth] + [widths[depth]] + widths[:depth][::-1]
        self.emb_proj = None if emb_dim is None else nn.ModuleList(
            nn.Linear(emb_dim, cout) for cout in block_widths)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        up = F.interpolate(lr, scale_factor=self.scale, mode="bilinear", align_corners=False)
        return up[:, :self.channels] + self.features(up)

    def _block(self, index: int, block: nn.Sequential, h: torch.Tensor, emb) -> torch.Tensor:
        if emb is None:
            return block(h)
        h = block[0](h) + self.emb_proj[index](emb)[:, :, None, None]
        return block[3](block[2](block[1](h)))

    def features(self, h: torch.Tensor, emb: torch.Tensor | None = None) -> torch.Tensor:
        """The U on an HR-grid input ``h``: encoder, bottleneck, decoder, 1×1 output."""
        factor = 2**self.depth
        if h.shape[-1] % factor or h.shape[-2] % factor:
            raise ScalelabError(
                f"a U-Net of depth {self.depth} needs an HR size divisible by {factor}, got "
                f"{tuple(h.shape[-2:])}; choose a smaller depth or another field_size."
            )
        if (emb is None) != (self.emb_proj is None):
            raise ScalelabError("this U-Net was built with emb_dim=" + str(
                None if self.emb_proj is None else self.emb_proj[0].in_features)
                + "; pass an embedding exactly when emb_dim is set.")
        skips, index = [], 0
        for block in self.down:
            h = self._block(index, block, h, emb)
            index += 1
            skips.append(h)
            h = F.max_pool2d(h, 2)
        h = self._block(index, self.bottleneck, h, emb)
        index += 1
        for upconv, block, skip in zip(self.up, self.decode, reversed(skips)):
            h = self._block(index, block, torch.cat([upconv(h), skip], dim=1), emb)
            index += 1
        return self.out(h)
