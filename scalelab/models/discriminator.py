"""The discriminator of adversarial training, sized from the generator it judges.

An SRGAN-style convolutional discriminator (Ledig et al. 2017, Fig. 4) scaled with the
generator: ``stages = min(depth + 1, 4)`` stages (SRGAN's four), stage i two 3×3
convolutions (the second of stride 2, halving the grid) of width ``w·2^i`` (up to 8w, as
SRGAN's 64 … 512) with ``w = round(ratio · width)``, each
followed by a leaky ReLU (slope 0.2), then a global mean over the grid and one linear
layer to a logit per field. ``width`` and ``depth`` are the generator's, so a sweep over
the generator's size scales its discriminator with it; ``ratio`` (the run's
``options.discriminator_width``, default 1) sets how much bigger or smaller it is.
SRGAN's batch normalisation is left out (its batches here are all-real or all-generated,
where batch statistics tell the two apart) and its dense layers are a global mean, so
any field size works. ``forward`` returns the logits ``(B,)``; ``features`` also the
output of every stage, for feature matching (Salimans et al. 2016; Wang et al. 2018,
pix2pixHD, eq. 4).

Its parameters are a training-time cost: N recorded for a run stays the generator's.
"""

from __future__ import annotations

import torch
from torch import nn


class Discriminator(nn.Module):
    def __init__(self, channels: int, width: int, stages: int):
        super().__init__()
        blocks, c_in = [], channels
        for stage in range(stages):
            c_out = width * 2 ** stage
            blocks.append(nn.Sequential(
                nn.Conv2d(c_in, c_out, 3, padding=1), nn.LeakyReLU(0.2),
                nn.Conv2d(c_out, c_out, 3, stride=2, padding=1), nn.LeakyReLU(0.2)))
            c_in = c_out
        self.blocks = nn.ModuleList(blocks)
        self.head = nn.Linear(c_in, 1)

    def features(self, fields: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The logits ``(B,)`` and each stage's output (the features feature matching compares)."""
        out, feats = fields, []
        for block in self.blocks:
            out = block(out)
            feats.append(out)
        return self.head(out.mean(dim=(-2, -1))).squeeze(-1), feats

    def forward(self, fields: torch.Tensor) -> torch.Tensor:
        return self.features(fields)[0]


MAX_STAGES = 4  # SRGAN's discriminator: four stages, widths 64 … 512


def discriminator_for(channels: int, width: int, depth: int, ratio: float = 1.0) -> Discriminator:
    """The discriminator of a generator of ``width`` and ``depth`` (see the module's docstring)."""
    return Discriminator(channels, max(1, round(ratio * width)), min(depth + 1, MAX_STAGES))
