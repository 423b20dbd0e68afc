"""The Gauss–Newton minimiser (the laws' default) reaches the optimum of the L-BFGS one
(``method="lbfgs"``, the earlier default, itself checked against scipy in test_laws.py):
on Epoch AI's Chinchilla data and on the data of every law test, for the fit from the
grid of starts and for the bootstrap refits, objective within 1e-8 relative or lower."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scalelab._errors import ScalelabError
from scalelab.laws import (AnnealingLaw, BrokenPowerLaw, ChinchillaLaw, DataConstrainedLaw,
                           KaplanLaw, PowerLaw, annealing_areas)
from scalelab.laws._optim import minimize_gauss_newton, minimize_stage

DATA = Path(__file__).parent / "data" / "chinchilla" / "svg_extracted_data.csv"
RTOL = 1e-8


def epoch_chinchilla():
    table = pd.read_csv(DATA)
    table["tokens"] = table["Training FLOP"] / (6 * table["Model Size"])
    return (ChinchillaLaw, dict(drop_highest=5),
            dict(data=table, params="Model Size", samples="tokens", y="loss"))


def power_law():
    rng = np.random.default_rng(1)
    x = np.repeat(np.geomspace(1e5, 1e9, 12), 2)
    y = (1.7 + 400 * x**-0.35) * np.exp(rng.normal(0, 0.005, x.size))
    return PowerLaw, {}, dict(x=x, y=y)


def power_law_five_points():
    rng = np.random.default_rng(0)
    x = np.logspace(6, 9, 5)
    return PowerLaw, {}, dict(x=x, y=1.7 + 400 * x**-0.3 * np.exp(rng.normal(0, 0.01, 5)))


def power_law_bounded_floor():
    rng = np.random.default_rng(2)
    x = np.geomspace(1e4, 1e8, 15)
    ece = (0.002 + 0.5 * x**-0.3) * np.exp(rng.normal(0, 0.01, x.size))
    return PowerLaw, dict(bounds={"E": (0.0, 1.0)}), dict(x=x, y=ece)


def shared_exponent():
    rng = np.random.default_rng(3)
    x = np.geomspace(1e5, 1e9, 10)
    table = pd.concat([pd.DataFrame({"params": x, "variant": v, "val_loss": (E + A * x**-0.3)
                                     * np.exp(rng.normal(0, 0.003, x.size))})
                       for v, E, A in [("mse", 1.0, 50.0), ("crps", 0.8, 80.0)]],
                      ignore_index=True)
    return PowerLaw, dict(shared=("alpha",)), dict(data=table, x="params", y="val_loss",
                                                   group="variant")


def kaplan():
    rng = np.random.default_rng(4)
    N = np.repeat(np.geomspace(1e7, 1e9, 5), 5)
    D = np.tile(np.geomspace(1e8, 1e10, 5), 5)
    y = ((8.8e13 / N) ** (0.076 / 0.095) + 5.4e13 / D) ** 0.095 * np.exp(rng.normal(0, 0.001, 25))
    return KaplanLaw, {}, dict(params=N, samples=D, y=y)


def chinchilla_grid():
    rng = np.random.default_rng(0)
    N = np.repeat(np.logspace(7, 9, 5), 5)
    D = np.tile(np.logspace(9, 11, 5), 5)
    y = (1.8 + 400 / N**0.34 + 2000 / D**0.37) * np.exp(rng.normal(0, 0.01, 25))
    return ChinchillaLaw, {}, dict(params=N, samples=D, y=y)


def broken():
    rng = np.random.default_rng(5)
    x = np.geomspace(1e3, 1e7, 30)
    y = (0.5 + 10 * x**-0.1 * (1 + (x / 1e5) ** 2) ** (-0.2)) * np.exp(rng.normal(0, 0.002, 30))
    return BrokenPowerLaw, {}, dict(x=x, y=y)


def annealing():
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
    return AnnealingLaw, {}, dict(data=pd.DataFrame(rows))


def data_constrained():
    from test_law_data_constrained import sweep  # tests/ is on the path, as for conftest

    return DataConstrainedLaw, {}, dict(data=sweep(sigma=0.01, seed=5))


CASES = {f.__name__: f for f in (epoch_chinchilla, power_law, power_law_five_points,
                                 power_law_bounded_floor, shared_exponent, kaplan,
                                 chinchilla_grid, broken, annealing, data_constrained)}


@pytest.mark.parametrize("case", sorted(CASES))
def test_gauss_newton_reaches_the_lbfgs_optimum(case):
    cls, hyper, data = CASES[case]()
    new = cls(n_bootstrap=0, **hyper).fit(**data)
    old = cls(n_bootstrap=0, method="lbfgs", **hyper).fit(**data)
    assert new.method == "gauss-newton" and old.method == "lbfgs"
    assert new.objective_ <= old.objective_ * (1 + RTOL), (new.objective_, old.objective_)
    assert new.converged_
    # the objective is the one both minimise: recomputed from the returned parameters
    fun_grad = new._objective(new.fitted_inputs_, np.log(new.y_), None)
    assert fun_grad(new.theta_[None], np.arange(1))[0][0] == pytest.approx(new.objective_,
                                                                          rel=1e-12)


@pytest.mark.parametrize("case", ["epoch_chinchilla", "power_law_five_points",
                                  "shared_exponent", "data_constrained"])
def test_gauss_newton_bootstrap_refits_reach_the_lbfgs_optima(case):
    cls, hyper, data = CASES[case]()
    law = cls(n_bootstrap=0, **hyper).fit(**data)
    n = law.y_.size
    rng = np.random.default_rng(0)
    weights = rng.multinomial(n, np.full(n, 1 / n), size=40).astype(float)
    if law.fitted_groups_ is not None:  # resample within groups, as Law._bootstrap does
        weights = np.zeros((40, n))
        for g in law.groups_:
            idx = np.flatnonzero(law.fitted_groups_ == g)
            weights[:, idx] = rng.multinomial(idx.size, np.full(idx.size, 1 / idx.size), size=40)
    fun_grad = law._objective(law.fitted_inputs_, np.log(law.y_), weights)
    start = np.repeat(law.theta_[None], 40, axis=0)
    runs = {method: minimize_stage(fun_grad, start, law._lower, law._upper, method=method,
                                   stage="bootstrap", max_iter=law.max_iter)
            for method in ("gauss-newton", "lbfgs")}
    new, old = runs["gauss-newton"].fun, runs["lbfgs"].fun
    # resamples of few distinct points can interpolate them (objective ~ 0): compare
    # those on the scale of the full fit's objective
    assert np.all(new <= old * (1 + RTOL) + 1e-10 * law.objective_), np.max(new / old)
    assert runs["gauss-newton"].converged.all()


def test_gauss_newton_on_a_linear_huber_regression_matches_scipy():
    """A model linear in its parameters: Gauss–Newton on Huber's curvature is Newton's
    method on a piecewise quadratic; its optimum is scipy's."""
    from scipy.optimize import minimize

    rng = np.random.default_rng(8)
    t = np.linspace(0, 1, 40)
    y = 1.0 + 2.0 * t + rng.standard_t(2, 40) * 0.01  # heavy tails: many points beyond δ

    def residuals(theta, rows):
        J = np.broadcast_to(np.stack([np.ones_like(t), t]), (theta.shape[0], 2, t.size))
        return y - theta @ np.stack([np.ones_like(t), t]), J, np.ones((1, t.size))

    def fun_grad(theta, rows):  # not used by Gauss–Newton; present as in robust_objective
        raise AssertionError

    fun_grad.residuals, fun_grad.delta = residuals, 1e-3
    res = minimize_gauss_newton(fun_grad, np.array([[0.0, 0.0], [5.0, -3.0]]), ftol=1e-15,
                                pgtol=1e-14)

    def objective(theta):
        r = y - theta[0] - theta[1] * t
        return np.sum(np.where(np.abs(r) <= 1e-3, 0.5 * r**2, 1e-3 * (np.abs(r) - 0.5e-3)))

    ref = minimize(objective, [1.0, 2.0], method="Nelder-Mead",
                   options={"xatol": 1e-12, "fatol": 1e-16, "maxiter": 20000})
    for row in range(2):
        assert res.fun[row] <= ref.fun * (1 + 1e-10)
        assert np.allclose(res.x[row], ref.x, atol=1e-6)
    assert res.n_iter.max() < 50


def test_unknown_method_is_one_sentence():
    with pytest.raises(ScalelabError, match="method='newton' is not a minimiser"):
        PowerLaw(method="newton").fit(x=[1, 2, 3, 4], y=[4, 3, 2.5, 2.2])
