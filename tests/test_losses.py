"""Loss variants: values against independent computations, gradchecks, edge cases, syntax."""

import numpy as np
import properscoring
import pytest
import scipy.ndimage
import scipy.stats
import scoringrules
import torch

from scalelab._errors import ScalelabError, SpecError
from scalelab.config import RunConfig
from scalelab.data import degrade
from scalelab.losses import NAMES, get_loss, parse_variant

rng = np.random.default_rng(0)


def _t(array):
    return torch.tensor(array, dtype=torch.float64)


def test_pixel_losses_closed_form():
    pred, target = rng.normal(size=(2, 1, 5, 5)), rng.normal(size=(2, 1, 5, 5))
    r = pred - target
    assert float(get_loss("mse")(_t(pred), _t(target))) == pytest.approx(np.mean(r**2))
    assert float(get_loss("l1")(_t(pred), _t(target))) == pytest.approx(np.mean(np.abs(r)))
    eps = 0.1
    assert float(get_loss(f"charbonnier(eps={eps})")(_t(pred), _t(target))) == pytest.approx(
        np.mean(np.sqrt(r**2 + eps**2)))
    d = 0.5
    huber = np.where(np.abs(r) <= d, 0.5 * r**2, d * (np.abs(r) - 0.5 * d)).mean()
    assert float(get_loss(f"huber(huber_delta={d})")(_t(pred), _t(target))) == pytest.approx(huber)
    tau = 0.9
    u = target - pred
    assert float(get_loss(f"quantile(tau={tau})")(_t(pred), _t(target))) == pytest.approx(
        np.mean(u * (tau - (u < 0))))


def test_weighted_sum_is_the_sum_of_terms():
    pred, target = _t(rng.normal(size=(2, 1, 8, 8))), _t(rng.normal(size=(2, 1, 8, 8)))
    combined = get_loss("mse + 0.1*spectral + gradient*2")(pred, target)
    parts = (get_loss("mse")(pred, target) + 0.1 * get_loss("spectral")(pred, target)
             + 2 * get_loss("gradient")(pred, target))
    assert float(combined) == pytest.approx(float(parts))


def _numpy_radial_spectrum(field):
    n = field.shape[-1]
    power = np.abs(np.fft.fft2(field)) ** 2 / n**4
    k = np.fft.fftfreq(n) * n
    radius = np.rint(np.hypot(*np.meshgrid(k, k, indexing="ij"))).astype(int)
    return np.array([power[radius == ring].sum() for ring in range(1, n // 2 + 1)])


def test_spectral_matches_numpy():
    pred, target = rng.normal(size=(2, 1, 8, 8)), rng.normal(size=(2, 1, 8, 8))
    eps = 1e-8
    expected = np.mean([(np.log(_numpy_radial_spectrum(pred[b, 0]) + eps)
                         - np.log(_numpy_radial_spectrum(target[b, 0]) + eps)) ** 2 for b in range(2)])
    assert float(get_loss("spectral")(_t(pred), _t(target))) == pytest.approx(expected)


def test_gradient_matches_scipy_sobel():
    pred, target = rng.normal(size=(2, 1, 7, 9)), rng.normal(size=(2, 1, 7, 9))
    def grads(f):  # scipy smooths along every other axis, so one 2-D field at a time
        return [np.stack([scipy.ndimage.sobel(f[b, 0], axis=a)[1:-1, 1:-1] for b in range(2)])
                for a in (0, 1)]
    gp, gt = grads(pred), grads(target)
    expected = np.mean((gp[0] - gt[0]) ** 2 + (gp[1] - gt[1]) ** 2)
    assert float(get_loss("gradient")(_t(pred), _t(target))) == pytest.approx(expected)


@pytest.mark.parametrize("members", [2, 5])
def test_crps_against_scoringrules_and_properscoring(members):
    obs = rng.normal(size=(3, 1, 4, 4))
    ens = rng.normal(size=(3, members, 1, 4, 4))
    fct = np.moveaxis(ens, 1, -1)
    nrg = scoringrules.crps_ensemble(obs, fct, estimator="nrg", backend="numpy").mean()
    fair = scoringrules.crps_ensemble(obs, fct, estimator="fair", backend="numpy").mean()
    assert nrg == pytest.approx(properscoring.crps_ensemble(obs, fct).mean())
    assert float(get_loss("crps_nrg")(_t(ens), _t(obs))) == pytest.approx(nrg)
    assert float(get_loss("crps_fair")(_t(ens), _t(obs))) == pytest.approx(fair)
    # Lang et al. 2024: afCRPS_α = α·fCRPS + (1 − α)·CRPS
    alpha = 0.9
    assert float(get_loss(f"crps_afair(alpha={alpha})")(_t(ens), _t(obs))) == pytest.approx(
        alpha * fair + (1 - alpha) * nrg)


def test_afair_pairwise_definition():
    """Lang et al. 2024, eq. 4, summed over pairs directly."""
    obs, ens, alpha = rng.normal(), rng.normal(size=4), 0.95
    m, eps = ens.size, (1 - alpha) / 4
    total = sum(abs(ens[j] - obs) + abs(ens[k] - obs) - (1 - eps) * abs(ens[j] - ens[k])
                for j in range(m) for k in range(m) if j != k) / (2 * m * (m - 1))
    value = get_loss("crps_afair")(_t(ens).view(1, m, 1, 1, 1), _t([obs]).view(1, 1, 1, 1))
    assert float(value) == pytest.approx(total)


@pytest.mark.parametrize("name", ["crps_nrg", "crps_fair", "crps_afair"])
def test_crps_loss_is_the_calibration_score_and_passes_nan_through(name):
    """The loss averages scalelab.calibration's CRPS (checked there against scoringrules);
    a NaN member gives a NaN loss, not an error, so the loop can record the divergence."""
    from scalelab.calibration import crps_ensemble

    local = np.random.default_rng(7)  # the module's rng stream stays as the other tests expect
    ens, obs = local.normal(size=(2, 4, 1, 3, 3)), local.normal(size=(2, 1, 3, 3))
    loss = get_loss(name)
    score = crps_ensemble(obs, ens, axis=1, estimator=name[len("crps_"):], reduce_axes="all")
    assert float(loss(_t(ens), _t(obs))) == pytest.approx(score, rel=1e-12)
    ens[0, 1, 0, 0, 0] = np.nan
    assert torch.isnan(loss(_t(ens), _t(obs)))


def test_wasserstein_reg_against_scipy():
    pred, target = rng.normal(size=(2, 1, 6, 6)), rng.gamma(0.5, size=(2, 1, 6, 6))
    w1 = np.mean([scipy.stats.wasserstein_distance(pred[b].ravel(), target[b].ravel())
                  for b in range(2)])
    value = get_loss("wasserstein_reg(weight=0.3)")(_t(pred), _t(target))
    assert float(value) == pytest.approx(np.mean((pred - target) ** 2) + 0.3 * w1)


def test_downscale_consistency_uses_the_degradation():
    pred, target = rng.normal(size=(2, 1, 8, 8)), rng.normal(size=(2, 1, 8, 8))
    lr = rng.normal(size=(2, 1, 4, 4))
    coarse = pred.reshape(2, 1, 4, 2, 4, 2).mean(axis=(3, 5))  # block mean by hand
    expected = np.mean(np.abs(pred - target)) + 2.0 * np.mean((coarse - lr) ** 2)
    loss = get_loss("downscale_consistency(weight=2, pixel='l1')", scale=2, degradation="block_mean")
    assert float(loss(_t(pred), _t(target), _t(lr))) == pytest.approx(expected)
    # a prediction that coarsens exactly to the LR input has no consistency penalty
    bic = get_loss("downscale_consistency", scale=2, degradation="bicubic")
    hr = _t(pred)
    assert float(bic(hr, hr, degrade(hr, 2, "bicubic"))) == pytest.approx(0.0, abs=1e-12)


def test_class_weighted_ce_against_hand_computation():
    from sklearn.utils.class_weight import compute_class_weight

    pred, target = rng.normal(size=(2, 1, 4, 4)), rng.gamma(0.7, size=(2, 1, 4, 4))
    edges, sigma = np.array([0.05, 1.0, 3.0]), 0.5
    classes = np.digitize(target, edges).ravel()
    bounds = np.concatenate([[-np.inf], edges, [np.inf]])
    cdf = scipy.stats.norm.cdf((bounds[None, :] - pred.ravel()[:, None]) / sigma)
    probs = np.diff(cdf, axis=1)
    present = np.unique(classes)
    w = np.zeros(4)
    w[present] = compute_class_weight("balanced", classes=present, y=classes)
    nll = -np.log(probs[np.arange(classes.size), classes])
    expected = (w[classes] * nll).sum() / w[classes].sum()
    loss = get_loss("class_weighted_ce(edges=[0.05, 1, 3], sigma=0.5)")
    assert float(loss(_t(pred), _t(target))) == pytest.approx(expected)


@pytest.mark.parametrize("name", NAMES)
def test_gradcheck(name):
    torch.manual_seed(1)
    loss = get_loss(name, scale=2)
    shape = (2, 3, 1, 6, 6) if loss.needs_ensemble else (2, 1, 6, 6)
    pred = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    target = torch.randn(2, 1, 6, 6, dtype=torch.float64).abs()
    lr = torch.randn(2, 1, 3, 3, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda p: loss(p, target, lr), (pred,))


@pytest.mark.parametrize("name", NAMES)
def test_constant_and_all_dry_fields(name):
    loss = get_loss(name, scale=2)
    for value in (0.0, 3.0):  # all dry (zeros) and a constant field
        target = torch.full((2, 1, 6, 6), value, dtype=torch.float64)
        pred = target.clone().unsqueeze(1).repeat(1, 3, 1, 1, 1) if loss.needs_ensemble else target.clone()
        pred.requires_grad_(True)
        out = loss(pred, target, torch.full((2, 1, 3, 3), value, dtype=torch.float64))
        out.backward()
        assert torch.isfinite(out) and torch.isfinite(pred.grad).all()
        if name != "class_weighted_ce":  # a perfect forecast scores 0 (Charbonnier: its floor ε)
            floor = 1e-3 if name == "charbonnier" else 0.0
            assert float(out.detach()) == pytest.approx(floor, abs=1e-9)


def test_deterministic_loss_of_ensemble_uses_its_mean():
    ens, target = _t(rng.normal(size=(2, 4, 1, 5, 5))), _t(rng.normal(size=(2, 1, 5, 5)))
    assert float(get_loss("mse")(ens, target)) == pytest.approx(
        float(((ens.mean(1) - target) ** 2).mean()))


@pytest.mark.parametrize("name", ["crps_fair", "crps_afair"])
def test_fair_crps_with_one_member_is_a_clear_error(name):
    with pytest.raises(ScalelabError, match="at least 2 members"):
        get_loss(name)(torch.zeros(2, 1, 1, 4, 4), torch.zeros(2, 1, 4, 4))


def test_expression_syntax_and_validation():
    assert parse_variant("mse+0.1*spectral") == [(1.0, "mse", {}), (0.1, "spectral", {"eps": 1e-8})]
    assert parse_variant("crps_afair(alpha=0.5)")[0][2] == {"alpha": 0.5}
    RunConfig(loss_variant="l1 + 1e-2*wasserstein_reg(weight=2)").validate()
    for bad, words in [("msee", "unknown loss 'msee'; valid choices are mse, l1"),
                       ("mse+0.1*foo", "unknown loss 'foo'"),
                       ("huber(delta=1)", "no setting 'delta'; valid settings are huber_delta"),
                       ("mse*l1", "needs a number"), ("mse+", "not a sum of terms"),
                       ("crps_afair(alpha=2)", "alpha must be in"), ("-1*mse", "weights must be >= 0"),
                       ("mse(1)", "not 'name'")]:
        with pytest.raises(SpecError, match=words):
            RunConfig(loss_variant=bad).validate()
    with pytest.raises(ScalelabError, match="unknown degradation"):
        get_loss("mse", degradation="nearest")
