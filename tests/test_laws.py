"""Tests of scalelab.laws against independent numbers: Epoch AI's Chinchilla estimates
(tests/data/chinchilla/README.md), scipy's own L-BFGS-B, closed forms and synthetic data
drawn from known laws."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import brentq, minimize, minimize_scalar
from scipy.special import logsumexp

from scalelab._errors import ScalelabError, TableError
from scalelab.laws import (AnnealingLaw, BrokenPowerLaw, ChinchillaLaw, KaplanLaw, PowerLaw,
                           annealing_areas, backtest, compute_optimal, crossover,
                           envelope_allocation, isoflop_allocation, isoflop_profiles,
                           loss_at_flops)
from scalelab.laws._optim import minimize_batched

DATA = Path(__file__).parent / "data" / "chinchilla" / "svg_extracted_data.csv"


@pytest.fixture(scope="module")
def chinchilla_table():
    table = pd.read_csv(DATA)
    table["tokens"] = table["Training FLOP"] / (6 * table["Model Size"])
    return table


@pytest.fixture(scope="module")
def chinchilla_fit(chinchilla_table):
    return ChinchillaLaw(drop_highest=5, n_bootstrap=300, seed=42).fit(
        chinchilla_table, params="Model Size", samples="tokens", y="loss")


def test_laws_import_without_torch():
    code = "import sys, scalelab.laws; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


# ---- Chinchilla: Epoch AI's replication ----------------------------------------------
def test_chinchilla_reproduces_epoch_grid_optimum(chinchilla_fit):
    p = chinchilla_fit.params_
    # Epoch's "replicate exactly" grid search (README): A=477.84, B=2143.86, E=1.8172,
    # alpha=0.3473, beta=0.3672
    assert p["A"] == pytest.approx(477.84, rel=2e-3)
    assert p["B"] == pytest.approx(2143.86, rel=2e-3)
    assert p["E"] == pytest.approx(1.8172, rel=2e-4)
    assert p["alpha"] == pytest.approx(0.3473, abs=2e-4)
    assert p["beta"] == pytest.approx(0.3672, abs=2e-4)
    assert chinchilla_fit.n_points_ == 240 and len(chinchilla_fit.excluded_) == 5
    assert chinchilla_fit.n_starts_ == 4500


def test_chinchilla_bootstrap_intervals_overlap_epoch(chinchilla_fit):
    epoch = {"A": (285.214, 743.626), "B": (1042.357, 5810.344), "E": (1.769, 1.871),
             "alpha": (0.317, 0.373), "beta": (0.331, 0.415)}
    epoch_se = {"A": 124.52, "B": 1293.28, "E": 0.02566, "alpha": 0.0154, "beta": 0.0206}
    ci = chinchilla_fit.conf_int(0.95)
    for name, (lo, hi) in epoch.items():
        assert ci.loc[name, "lower"] < hi and lo < ci.loc[name, "upper"], name
        assert ci.loc[name, "lower"] < chinchilla_fit.params_[name] < ci.loc[name, "upper"]
        # bootstrap standard errors of the same order as Epoch's (4000 resamples there)
        assert 0.5 < chinchilla_fit.bse_[name] / epoch_se[name] < 2.0, name


def test_chinchilla_optimum_is_scipy_optimum(chinchilla_table, chinchilla_fit):
    """Polishing our optimum with scipy's L-BFGS-B (independent code) does not lower it."""
    kept = chinchilla_table.sort_values("loss").iloc[:-5]
    log_n, log_d = np.log(kept["Model Size"].to_numpy()), np.log(kept["tokens"].to_numpy())
    log_l = np.log(kept["loss"].to_numpy())

    def objective(p):
        a, b, e, alpha, beta = p
        r = log_l - logsumexp([a - alpha * log_n, b - beta * log_d, np.full_like(log_n, e)],
                              axis=0)
        return np.sum(np.where(np.abs(r) <= 1e-3, 0.5 * r**2, 1e-3 * (np.abs(r) - 0.5e-3)))

    ours = chinchilla_fit.theta_epoch_order()
    assert objective(ours) == pytest.approx(chinchilla_fit.objective_, rel=1e-10)
    polished = minimize(objective, ours, method="L-BFGS-B")
    assert polished.fun >= objective(ours) * (1 - 1e-6)
    # and a few of Epoch's grid starts run through scipy end no lower than our fit
    for start in [(5, 5, 0.5, 0.5, 0.5), (10, 10, 0, 0.5, 0.5), (0, 0, 1, 0, 0)]:
        assert minimize(objective, start, method="L-BFGS-B").fun >= objective(ours) * (1 - 1e-6)


def test_chinchilla_summary_and_predict(chinchilla_fit):
    text = chinchilla_fit.summary()
    for word in ("ChinchillaLaw", "alpha", "std err", "[0.025", "Points used:  240", "left out: 5"):
        assert word in text
    p = chinchilla_fit.params_
    N, D = 7e10, 1.4e12
    expected = p["E"] + p["A"] / N ** p["alpha"] + p["B"] / D ** p["beta"]
    assert chinchilla_fit.predict(N=N, D=D) == pytest.approx(expected, rel=1e-12)
    band = chinchilla_fit.predict_interval(N=[N, 1e9], D=D, level=0.9)
    assert (band["lower"] < band["prediction"]).all() and (band["prediction"] < band["upper"]).all()
    wide = chinchilla_fit.predict_interval(N=N, D=D, level=0.99, kind="observation")
    assert wide["upper"].iloc[0] - wide["lower"].iloc[0] > band["upper"].iloc[0] - band["lower"].iloc[0]


def test_compute_optimal_matches_numerical_minimum(chinchilla_fit):
    table = compute_optimal(chinchilla_fit, [1e21, 5.76e23], level=0.9)
    p = chinchilla_fit.params_
    for flops, row in table.iterrows():
        def loss(log_n):
            n = np.exp(log_n)
            return p["E"] + p["A"] / n ** p["alpha"] + p["B"] / (flops / (6 * n)) ** p["beta"]
        best = minimize_scalar(loss, bounds=(10, 40), method="bounded",
                               options={"xatol": 1e-10})
        assert row["params"] == pytest.approx(np.exp(best.x), rel=1e-4)
        assert row["params"] * row["samples"] * 6 == pytest.approx(flops, rel=1e-12)
        assert row["params_lower"] < row["params"] < row["params_upper"]


# ---- the batched optimiser against scipy -----------------------------------------------
def test_batched_lbfgs_matches_scipy_on_rosenbrock():
    def rosen(x):
        return np.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)

    def fun_grad(x, rows):
        f = np.sum(100 * (x[:, 1:] - x[:, :-1] ** 2) ** 2 + (1 - x[:, :-1]) ** 2, axis=1)
        g = np.zeros_like(x)
        g[:, :-1] += -400 * x[:, :-1] * (x[:, 1:] - x[:, :-1] ** 2) - 2 * (1 - x[:, :-1])
        g[:, 1:] += 200 * (x[:, 1:] - x[:, :-1] ** 2)
        return f, g

    starts = np.random.default_rng(0).uniform(-2, 2, size=(8, 4))
    lower, upper = np.full(4, -1.5), np.full(4, 0.8)  # a bound that binds at the optimum
    res = minimize_batched(fun_grad, starts, lower, upper)
    refs = [minimize(rosen, start, method="L-BFGS-B", bounds=list(zip(lower, upper)),
                     options={"ftol": 1e-15, "gtol": 1e-12}) for start in starts]
    assert res.fun.min() == pytest.approx(min(r.fun for r in refs), abs=1e-9)
    best = min(refs, key=lambda r: r.fun)
    assert np.allclose(res.x[np.argmin(res.fun)], best.x, atol=1e-5)
    # every row stops at a first-order point of the box problem (projected gradient ~ 0)
    g = res.grad
    free = ~(((res.x <= lower + 1e-12) & (g > 0)) | ((res.x >= upper - 1e-12) & (g < 0)))
    assert np.abs(np.where(free, g, 0)).max() < 1e-3
    assert res.x.max() <= 0.8 and res.x.min() >= -1.5


# ---- synthetic laws with known truth ----------------------------------------------------
def test_power_law_recovers_truth_and_interval_covers():
    rng = np.random.default_rng(1)
    x = np.repeat(np.geomspace(1e5, 1e9, 12), 2)
    y = (1.7 + 400 * x**-0.35) * np.exp(rng.normal(0, 0.005, x.size))
    law = PowerLaw(n_bootstrap=200).fit(pd.DataFrame({"params": x, "val_loss": y}),
                                        x="params", y="val_loss")
    assert law.params_["E"] == pytest.approx(1.7, rel=0.02)
    assert law.params_["alpha"] == pytest.approx(0.35, abs=0.02)
    ci = law.conf_int(0.99)
    for name, truth in {"E": 1.7, "A": 400, "alpha": 0.35}.items():
        assert ci.loc[name, "lower"] <= truth <= ci.loc[name, "upper"], name
    assert law.fit(x=x, y=y) is law and law.rmse_log_ < 0.01


def test_power_law_fixed_bounds_and_metric_floor():
    rng = np.random.default_rng(2)
    x = np.geomspace(1e4, 1e8, 15)
    ece = (0.002 + 0.5 * x**-0.3) * np.exp(rng.normal(0, 0.01, x.size))  # a calibration error
    law = PowerLaw(bounds={"E": (0.0, 1.0)}, n_bootstrap=0).fit(x=x, y=ece)
    assert 0 <= law.params_["E"] <= 1 and law.params_["alpha"] == pytest.approx(0.3, abs=0.05)
    fixed = PowerLaw(fixed={"alpha": 0.3}, n_bootstrap=0).fit(x=x, y=ece)
    assert fixed.params_["alpha"] == 0.3
    with pytest.raises(ScalelabError, match="conf_int needs bootstrap"):
        fixed.conf_int()


def test_shared_exponent_across_groups():
    rng = np.random.default_rng(3)
    x = np.geomspace(1e5, 1e9, 10)
    rows = [pd.DataFrame({"params": x, "variant": v,
                          "val_loss": (E + A * x**-0.3) * np.exp(rng.normal(0, 0.003, x.size))})
            for v, E, A in [("mse", 1.0, 50.0), ("crps", 0.8, 80.0)]]
    table = pd.concat(rows, ignore_index=True)
    law = PowerLaw(shared=("alpha",), n_bootstrap=50).fit(table, x="params", y="val_loss",
                                                          group="variant")
    assert list(law.params_.index) == ["E[mse]", "E[crps]", "A[mse]", "A[crps]", "alpha"]
    assert law.params_["alpha"] == pytest.approx(0.3, abs=0.02)
    assert law.params_["E[crps]"] == pytest.approx(0.8, rel=0.05)
    p = law.params_
    assert law.predict(x=1e10, group="crps") == pytest.approx(
        p["E[crps]"] + p["A[crps]"] * 1e10 ** -p["alpha"], rel=1e-12)


def test_kaplan_law_recovers_truth():
    rng = np.random.default_rng(4)
    N = np.repeat(np.geomspace(1e7, 1e9, 5), 5)
    D = np.tile(np.geomspace(1e8, 1e10, 5), 5)
    y = ((8.8e13 / N) ** (0.076 / 0.095) + 5.4e13 / D) ** 0.095 * np.exp(rng.normal(0, 0.001, 25))
    law = KaplanLaw(n_bootstrap=0).fit(params=N, samples=D, y=y)
    assert law.params_["alpha_N"] == pytest.approx(0.076, abs=0.003)
    assert law.params_["alpha_D"] == pytest.approx(0.095, abs=0.003)


def test_broken_power_law_recovers_break():
    rng = np.random.default_rng(5)
    x = np.geomspace(1e3, 1e7, 30)
    y = (0.5 + 10 * x**-0.1 * (1 + (x / 1e5) ** 2) ** (-0.2)) * np.exp(rng.normal(0, 0.002, 30))
    law = BrokenPowerLaw(n_bootstrap=0).fit(x=x, y=y)
    assert law.params_["alpha_change"] == pytest.approx(0.4, abs=0.05)
    assert law.params_["x_break"] == pytest.approx(1e5, rel=0.3)


def test_annealing_law_areas_and_fit():
    lr = np.r_[np.full(5, 1.0), np.linspace(1.0, 0.0, 5)]
    s1, s2 = annealing_areas(lr, decay=0.5)
    m, expected = 0.0, []  # Tissue et al. eq. 3–4, by hand
    for i in range(lr.size):
        m = 0.5 * m + (lr[i - 1] - lr[i] if i else 0.0)
        expected.append(m)
    assert np.allclose(s1, np.cumsum(lr)) and np.allclose(s2, np.cumsum(expected))
    rng = np.random.default_rng(6)
    rows = []
    for name, sched in [("const", np.full(2000, 1e-3)),
                        ("cos", 1e-3 * 0.5 * (1 + np.cos(np.pi * np.arange(2000) / 2000))),
                        ("wsd", np.r_[np.full(1600, 1e-3), np.linspace(1e-3, 0, 400)])]:
        f, a = annealing_areas(sched)
        steps = np.arange(50, 2001, 50)
        loss = (2.0 + 1.5 * f[steps - 1] ** -0.5 - 0.3 * a[steps - 1]) * np.exp(
            rng.normal(0, 0.002, steps.size))
        rows += [{"run_id": name, "step": s, "lr_step": sched[s - 1], "train_loss": v}
                 for s, v in zip(steps, loss)]
    law = AnnealingLaw(n_bootstrap=0).fit(pd.DataFrame(rows))
    assert law.params_["alpha"] == pytest.approx(0.5, abs=0.03)
    assert law.params_["C"] == pytest.approx(0.3, rel=0.1)
    new = np.r_[np.full(1000, 1e-3), np.linspace(1e-3, 0, 1000)]
    f, a = annealing_areas(new)
    assert law.predict_curve(new)[-1] == pytest.approx(2.0 + 1.5 * f[-1] ** -0.5 - 0.3 * a[-1],
                                                       rel=0.01)


# ---- backtest, allocation, crossover --------------------------------------------------
def _curves(rng, sizes, noise=0.003, samples=np.geomspace(1e8, 2e10, 12)):
    """Training curves of L = 1.69 + 406.4/N^0.34 + 410.7/D^0.28 (Hoffmann's values)."""
    rows = []
    for N in sizes:
        for D in samples:
            loss = 1.69 + 406.4 / N**0.34 + 410.7 / D**0.28
            rows.append({"run_id": f"n{N:.0e}", "params": N, "samples": D, "step": D,
                         "flops": 6 * N * D, "val_loss": loss * np.exp(rng.normal(0, noise))})
    return pd.DataFrame(rows)


def test_backtest_protocol():
    rng = np.random.default_rng(7)
    curves = _curves(rng, np.geomspace(1e7, 3e9, 7))
    result = backtest(ChinchillaLaw(n_bootstrap=100), curves, y="val_loss", size="params",
                      run="run_id", step="step", size_fractions=(1.0, 0.1), drop_early=0.1,
                      params="params", samples="samples")
    assert list(result["size_fraction"]) == [1.0, 0.1]
    truth = 1.69 + 406.4 / 3e9**0.34 + 410.7 / 2e10**0.28
    assert result["truth"].iloc[0] == pytest.approx(truth, rel=0.02)
    assert np.allclose(result["are"], abs(result["prediction"] - result["truth"]) / result["truth"])
    assert result["are"].iloc[0] < 0.02 and bool(result["covered"].iloc[0])
    final_only = PowerLaw(n_bootstrap=50).backtest(
        curves[curves["step"] == curves["step"].max()], y="val_loss", size="params", x="params")
    assert final_only["n_points"].iloc[0] == 6


def test_allocation_approaches_agree_with_closed_form():
    alpha, beta = 0.34, 0.28
    exponent = beta / (alpha + beta)  # Hoffmann et al. eq. 4
    rng = np.random.default_rng(8)
    curves = _curves(rng, np.geomspace(1e7, 1e10, 40), noise=0.0,
                     samples=np.geomspace(1e6, 1e14, 60))
    approach1 = envelope_allocation(curves, params="params", flops="flops", y="val_loss")
    assert approach1.exponent == pytest.approx(exponent, abs=0.05)
    runs = []
    for C in np.geomspace(1e18, 1e21, 6):
        for N in np.geomspace(1e7, 1e10, 25):
            D = C / (6 * N)
            runs.append({"params": N, "flops": C, "budget": C,
                         "val_loss": 1.69 + 406.4 / N**alpha + 410.7 / D**beta})
    approach2 = isoflop_allocation(pd.DataFrame(runs), budget="budget")
    assert approach2.exponent == pytest.approx(exponent, abs=0.03)
    lo, hi = approach2.conf_int(0.95).loc["exponent"]
    assert lo <= approach2.exponent <= hi
    assert approach2.predict(1e22)["params"].iloc[0] > approach2.predict(1e20)["params"].iloc[0]


def test_loss_at_flops_is_linear_in_log_compute():
    # two runs whose loss is exactly a + b·log10(C) between evaluations: the interpolation
    # returns the line's value; budgets outside a run's curve are not extrapolated
    curves = pd.DataFrame({
        "run_id": ["a"] * 3 + ["b"] * 3 + ["c"],
        "params": [1e6] * 3 + [4e6] * 3 + [9e6],
        "flops": [1e10, 1e11, 1e12, 1e11, 1e12, 1e13, 1e12],
        "val_loss": [5.0, 4.0, 3.5, 4.5, 3.0, 2.0, 1.0],
    })
    at = loss_at_flops(curves, [10 ** 10.5, 10 ** 11.25, 1e13, 1e14])
    expected = [("a", 10 ** 10.5, 4.5), ("a", 10 ** 11.25, 4.0 - 0.5 * 0.25),
                ("b", 10 ** 11.25, 4.5 - 1.5 * 0.25), ("b", 1e13, 2.0)]
    assert list(at["run"]) == [e[0] for e in expected]
    assert np.allclose(at["flops"], [e[1] for e in expected])
    assert np.allclose(at["loss"], [e[2] for e in expected])
    assert list(at["params"]) == [1e6, 1e6, 4e6, 4e6]  # run c has one row: no curve
    with pytest.raises(TableError, match="column 'flops'"):
        loss_at_flops(curves.drop(columns="flops"), [1e11])


def test_envelope_and_isoflop_profiles_read_losses_through_loss_at_flops():
    rng = np.random.default_rng(3)
    curves = _curves(rng, np.geomspace(1e7, 1e10, 8), samples=np.geomspace(1e6, 1e13, 20))
    allocation = envelope_allocation(curves)
    at = loss_at_flops(curves, allocation.frontier["flops"])
    envelope = at.groupby("flops")["loss"].min()
    assert np.allclose(allocation.frontier["loss"], envelope.loc[allocation.frontier["flops"]])
    profiles = isoflop_profiles(curves, n_budgets=4)
    assert profiles["flops"].nunique() == 4
    at = loss_at_flops(curves, profiles["flops"].unique())
    best = at.loc[at.groupby("flops")["loss"].idxmin()]
    chosen = profiles[profiles["best"]]
    assert np.allclose(chosen["params"], best["params"]) and np.allclose(chosen["loss"],
                                                                         best["loss"])
    with pytest.raises(TableError, match="at least 3 runs"):
        isoflop_profiles(curves[curves["params"] < 2e7])


def test_crossover_with_bootstrap_interval():
    rng = np.random.default_rng(9)
    x = np.geomspace(1e4, 1e8, 14)
    truth = brentq(lambda v: (1.0 + 20 * v**-0.25) - (1.3 + 5 * v**-0.5), 1e4, 1e12)
    a = PowerLaw(n_bootstrap=200, seed=1).fit(
        x=x, y=(1.0 + 20 * x**-0.25) * np.exp(rng.normal(0, 0.002, x.size)))
    b = PowerLaw(n_bootstrap=200, seed=2).fit(
        x=x, y=(1.3 + 5 * x**-0.5) * np.exp(rng.normal(0, 0.002, x.size)))
    result = crossover(a, b, 1e4, 1e10, level=0.95)
    assert result.crossover == pytest.approx(truth, rel=0.3)
    assert result.lower <= truth <= result.upper
    assert result.better_beyond == "a"
    never = crossover(a, b, 1e9, 1e10)
    assert np.isnan(never.crossover) and "no crossover" in str(never)


# ---- degenerate tables: one clear sentence -------------------------------------------
@pytest.mark.parametrize("x, y, match", [
    ([1e6, 1e7], [3.0, 2.5], "at least 3 distinct x"),
    ([1e6, 1e7, np.nan, 1e9], [3.0, 2.5, 2.2, 2.1], "NaN"),
    ([1e6, 1e6, 1e6, 1e6], [3.0, 2.5, 2.2, 2.1], "same x"),
    ([1e6, 1e7, 1e8, 1e9], [3.0, 2.5, 0.0, 2.1], "must be positive"),
    ([1e6, 1e7, 1e8], [3.0, 2.5, 2.2], "more points than free parameters"),
])
def test_degenerate_tables_raise_one_sentence(x, y, match):
    with pytest.raises(TableError, match=match) as err:
        PowerLaw().fit(x=x, y=y)
    message = str(err.value)
    assert "\n" not in message and message.endswith(".")
    assert re.search(r"\.\s+[A-Z]", message) is None  # one sentence


def test_bad_column_and_not_fitted():
    with pytest.raises(TableError, match="no column 'tokens'"):
        ChinchillaLaw().fit(pd.DataFrame({"params": [1.0], "val_loss": [1.0]}), samples="tokens")
    with pytest.raises(ScalelabError, match="not fitted"):
        ChinchillaLaw().predict(N=1e9, D=1e10)
    with pytest.raises(ScalelabError, match="unknown parameter 'gamma'"):
        PowerLaw(fixed={"gamma": 1}).fit(x=[1, 2, 3, 4], y=[4, 3, 2, 1.5])
