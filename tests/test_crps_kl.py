"""CRPS + KL (FuXi-ENS): the KL against its closed form, the VAE perturbation, the loss by
name, a run that trains and is scored for calibration, and the spec's sentences."""

import json
import math
from dataclasses import replace

import pytest
import torch

from scalelab._errors import SpecError
from scalelab.train import train
from scalelab.train.checkpoint import checkpoint_path
from test_train_loop import TINY, _stopped_after_step_8, curve

def same_rows(first, second) -> bool:
    """Rows equal bit for bit (wall times aside), the reliability diagrams' dicts too: their
    JSON (floats written round-trip exact, NaN as NaN)."""
    def text(result):
        return json.dumps([{k: v for k, v in row.items() if k != "wall_time_s"}
                           for row in result.rows], sort_keys=True)
    return text(first) == text(second)


KL_RUN = replace(TINY, ensemble_members=3, loss_variant="crps_fair + 0.1*kl", steps=24,
                 eval_every=8)


def test_gaussian_kl_is_the_closed_form():
    from scalelab.losses.functional import gaussian_kl

    # KL(N(1, 1) ‖ N(0, 1)) = ½; KL(N(0, e²) ‖ N(0, 1)) = ½ (e² − 1 − 2)
    assert float(gaussian_kl(torch.tensor([1.0]), torch.tensor([0.0]))) == pytest.approx(0.5)
    assert float(gaussian_kl(torch.tensor([0.0]), torch.tensor([2.0]))) == pytest.approx(
        0.5 * (math.e ** 2 - 3))
    torch.manual_seed(0)
    mean, log_var = torch.randn(2, 4, 5, 5), torch.randn(2, 4, 5, 5)
    reference = torch.distributions.kl_divergence(
        torch.distributions.Normal(mean, (0.5 * log_var).exp()),
        torch.distributions.Normal(torch.zeros_like(mean), torch.ones_like(mean))).mean()
    torch.testing.assert_close(gaussian_kl(mean, log_var), reference)


def test_the_vae_perturbation_draws_each_member_from_its_latent():
    from scalelab.models import build_model, count_params
    from scalelab.models.stochastic import LatentPerturbed

    torch.manual_seed(0)
    model = build_model("edsr", 4, 1, 4, stochastic=True, perturbation="vae", noise_channels=3)
    assert isinstance(model, LatentPerturbed)
    plain = build_model("edsr", 4, 1, 4, stochastic=True, noise_channels=3)
    # the encoder: 3×3 conv 1 → 4 and 4 → 2·3 (mean and log-variance), with biases
    assert count_params(model) - count_params(plain) == (9 * 4 + 4) + (9 * 4 * 6 + 6)
    lr = torch.randn(2, 1, 4, 4)
    members = model.sample(lr, 5)
    assert members.shape == (2, 5, 1, 16, 16)
    assert (members[:, 0] - members[:, 1]).abs().max() > 0  # each member its own draw
    mean, log_var = model.latent
    assert mean.shape == (10, 3, 4, 4)
    assert mean.abs().max() == 0 and log_var.abs().max() == 0  # starts as N(0, I) noise


def test_the_loss_by_name_adds_the_latents_kl():
    from scalelab.losses import get_loss
    from scalelab.losses.functional import crps_ensemble, gaussian_kl
    from scalelab.models import build_model

    torch.manual_seed(1)
    model = build_model("edsr", 4, 1, 4, stochastic=True, perturbation="vae", noise_channels=2)
    with torch.no_grad():
        model.encoder[-1].weight.normal_(0, 0.3)  # a latent away from N(0, I)
    lr, target = torch.randn(3, 1, 4, 4), torch.randn(3, 1, 16, 16)
    loss = get_loss("crps_fair + 0.1*kl")
    ensemble = model.sample(lr, 4)
    # not bound: a prediction made with no latent adds no KL
    assert float(loss(ensemble, target, lr).detach()) == pytest.approx(
        float(crps_ensemble(ensemble, target, "fair").detach()))
    loss.bind(model)
    expected = crps_ensemble(ensemble, target, "fair") + 0.1 * gaussian_kl(*model.latent)
    assert float(gaussian_kl(*model.latent).detach()) > 0.01
    torch.testing.assert_close(loss(ensemble, target, lr), expected)


def test_crps_kl_trains_and_is_scored_for_calibration():
    result = train(KL_RUN)
    assert result.status == "finished"
    rows = curve(result)
    assert rows["train_loss"][-1] < rows["train_loss"][1]  # the loss decreases
    assert rows["val_crps"][-1] < rows["val_crps"][0]
    last = result.rows[-1]
    for key in ("val_crps", "val_spread_skill", "val_rank_delta", "val_rank_departure",
                "val_exceed_ece", "val_exceed_brier"):
        assert math.isfinite(last[key]), key
    assert last["val_spread_skill"] > 0  # the latent spreads the members
    assert last["val_loss"] >= last["val_crps"] - 1e-6  # its own loss adds a KL ≥ 0
    noise = train(replace(KL_RUN, loss_variant="crps_fair"))
    # N counts the encoder of the latent: the VAE variant has more parameters
    assert result.info["params"] > noise.info["params"]


def test_a_stopped_crps_kl_run_resumes_bit_equal(tmp_path):
    cfg = replace(KL_RUN, steps=12, eval_every=4, checkpoint_every=5)
    _stopped_after_step_8(cfg, tmp_path)
    assert torch.load(checkpoint_path(tmp_path), weights_only=True)["step"] == 5
    resumed = train(cfg, checkpoint_dir=tmp_path)
    assert resumed.info["resumed_from_step"] == 5
    assert same_rows(resumed, train(replace(cfg, checkpoint_every=0)))


@pytest.mark.parametrize("change, words", [
    ({"loss_variant": "crps_fair + 0.1*kl"}, "ensemble_members must be at least 2"),
    ({"loss_variant": "crps_fair + 0.1*kl", "ensemble_members": 2, "family": "diffusion"},
     "scores the latent of a VAE-perturbed network"),
    ({"loss_variant": "crps_fair + 0.1*kl", "ensemble_members": 2,
      "options": {"latent_channels": 0}}, "options.latent_channels must be"),
])
def test_bad_kl_settings_are_one_sentence(change, words):
    with pytest.raises(SpecError, match=words) as err:
        replace(TINY, **change).validate()
    assert "\n" not in str(err.value)
