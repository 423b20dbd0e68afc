"""Network families: shapes per scale, hand-counted N, FLOP scaling, stochastic variant."""

import pytest
import torch

from scalelab._errors import ScalelabError
from scalelab.models import NAMES, build_model, count_params, forward_flops


@pytest.mark.parametrize("family", NAMES)
@pytest.mark.parametrize("scale", [2, 4, 8])
def test_output_shape_for_each_scale(family, scale):
    model = build_model(family, width=4, depth=1, scale=scale)
    lr = torch.randn(2, 1, 32 // scale, 32 // scale)
    assert model(lr).shape == (2, 1, 32, 32)


def test_param_counts_by_hand():
    w, d, c, s = 8, 3, 1, 4
    edsr = w * c * 9 + w + d * 2 * (9 * w * w + w) + (9 * w * w + w) + (9 * w * c * s * s + c * s * s)
    assert count_params(build_model("edsr", w, d, s)) == edsr
    srcnn = 81 * c * w + w + d * (9 * w * w + w) + 25 * w * c + c
    assert count_params(build_model("srcnn", w, d, s)) == srcnn
    # U-Net depth 1: double conv c→w, bottleneck w→2w, up-conv 2w→w (2×2), decoder 2w→w, 1×1 out
    unet = ((9 * c * w + w) + (9 * w * w + w) + (9 * w * 2 * w + 2 * w) + (9 * 4 * w * w + 2 * w)
            + (4 * 2 * w * w + w) + (9 * 2 * w * w + w) + (9 * w * w + w) + (w * c + c))
    assert count_params(build_model("unet", w, 1, s)) == unet


def test_edsr_flops_match_hand_count_on_lr_grid():
    w, d, s, h = 8, 2, 4, 8  # all convolutions at the LR grid (h × h)
    macs = h * h * (9 * w + d * 2 * 9 * w * w + 9 * w * w + 9 * w * s * s)
    assert forward_flops(build_model("edsr", w, d, s), (1, h, h)) == 2 * macs


@pytest.mark.parametrize("family", NAMES)
def test_flops_grow_quadratically_with_width_and_linearly_with_depth(family):
    def flops(width, depth):
        return forward_flops(build_model(family, width, depth, 2), (1, 16, 16))
    width_ratio = flops(64, 2) / flops(32, 2)
    assert 3.3 < width_ratio < 4.1  # ≈ 4 for doubled width
    marginal = [flops(16, d + 1) - flops(16, d) for d in (1, 2)]
    assert marginal[1] == pytest.approx(marginal[0], rel=0.3)  # constant cost per added depth
    assert flops(16, 3) > flops(16, 1)


@pytest.mark.parametrize("family", NAMES)
def test_stochastic_variant_gives_distinct_members(family):
    model = build_model(family, 4, 1, 2, stochastic=True)
    lr = torch.randn(3, 1, 8, 8)
    ens = model.sample(lr, 5)
    assert ens.shape == (3, 5, 1, 16, 16) and model(lr).shape == (3, 1, 16, 16)
    assert (ens[:, 0] - ens[:, 1]).abs().max() > 0  # noise changes the member
    g1, g2 = (torch.Generator().manual_seed(7) for _ in range(2))
    assert torch.equal(model.sample(lr, 2, generator=g1), model.sample(lr, 2, generator=g2))
    assert forward_flops(model, (1, 8, 8)) > 0


def test_bad_names_and_sizes():
    with pytest.raises(ScalelabError, match="unknown model family 'vdsr'; valid choices are edsr"):
        build_model("vdsr", 4, 1, 2)
    with pytest.raises(ScalelabError, match="width must be a positive integer"):
        build_model("edsr", 0, 1, 2)
    with pytest.raises(ScalelabError, match="divisible by 8"):
        build_model("unet", 4, 3, 2)(torch.zeros(1, 1, 6, 6))
