"""DataConstrainedLaw (Muennighoff et al. 2023, eqs. 5–7) against the paper's own code and
constants: the reference formula of the datablations repository (its README's
"Parametric Fit", with the two losses it prints for Figure 1), recovery of the published
constants from points drawn from the published law, its reduction to Chinchilla's law,
and what repetition does to the loss."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from scalelab._errors import ScalelabError, TableError
from scalelab.laws import ChinchillaLaw, DataConstrainedLaw
from scalelab.laws.data_constrained import MUENNIGHOFF_2023, compute_optimal_params

#: datablations README: a, b, e, alpha, beta, rd_star, rn_star (A = e^a, B = e^b, E = e^e)
PAPER_FIT = [6.255414, 7.3049974, 0.6254804, 0.3526596, 0.3526596, 15.387756, 5.309743]


def paper_loss(N, D, U):
    """The README's ``scaling_law(N, D, U)``, written out independently of scalelab."""
    a, b, e, alpha, beta, rd_star, rn_star = PAPER_FIT
    A, B, E = np.exp(a), np.exp(b), np.exp(e)
    G = ((alpha * A) / (beta * B)) ** (1 / (alpha + beta))
    RD = np.maximum(D / U - 1, 0)
    UN = np.minimum(N, (U * G) ** (beta / alpha) * G)
    RN = np.maximum(N / UN - 1, 0)
    return (E + A / (UN + UN * rn_star * (1 - np.exp(-RN / rn_star))) ** alpha
            + B / (U + U * rd_star * (1 - np.exp(-RD / rd_star))) ** beta)


def sweep(sigma=0.002, seed=0):
    """6 model sizes × 4 distinct-data sizes × 1–64 epochs, losses from the paper's law
    times lognormal noise of ``sigma`` (0.2%: the seed-to-seed spread of small runs)."""
    N, U, epochs = np.meshgrid(np.logspace(7, 9.5, 6), [1e8, 4e8, 1.6e9, 6.4e9],
                               [1, 2, 4, 8, 16, 32, 64], indexing="ij")
    table = pd.DataFrame({"params": N.ravel(), "samples": U.ravel(),
                          "samples_seen": (U * epochs).ravel()})
    noise = np.exp(np.random.default_rng(seed).normal(0, sigma, len(table)))
    table["val_loss"] = paper_loss(table["params"], table["samples_seen"],
                                   table["samples"]) * noise
    return table


@pytest.fixture(scope="module")
def fitted():
    return DataConstrainedLaw(n_bootstrap=200, seed=1).fit(
        sweep(), params="params", samples_seen="samples_seen", samples="samples", y="val_loss")


def paper_law() -> DataConstrainedLaw:
    """A DataConstrainedLaw holding the paper's constants (every parameter fixed)."""
    table = sweep(sigma=0.0)
    return DataConstrainedLaw(fixed=MUENNIGHOFF_2023, n_bootstrap=0).fit(table)


def test_formula_is_the_papers_reference_implementation():
    law = paper_law()
    # the two models of the paper's Figure 1 (right), losses printed in the README
    assert law.predict(N=6.34e9, D=242e9, U=25e9) == pytest.approx(2.2256440889984477, rel=1e-12)
    assert law.predict(N=8.67e9, D=178e9, U=25e9) == pytest.approx(2.2269634075087867, rel=1e-12)
    rng = np.random.default_rng(3)
    N, U = 10 ** rng.uniform(6, 10, 200), 10 ** rng.uniform(7, 11, 200)
    D = U * 10 ** rng.uniform(0, 3, 200)
    assert np.allclose(law.predict(N=N, D=D, U=U), paper_loss(N, D, U), rtol=1e-13, atol=0)
    # N_opt is Chinchilla's compute-optimal size: at C = 6ND fixed, no other N does better
    A, B, alpha, beta = (MUENNIGHOFF_2023[k] for k in ("A", "B", "alpha", "beta"))
    n_opt = compute_optimal_params(1e10, A, B, alpha, beta)
    budget = n_opt * 1e10
    grid = n_opt * np.exp(np.linspace(-0.5, 0.5, 1001))
    reducible = A / grid**alpha + B / (budget / grid) ** beta
    assert grid[np.argmin(reducible)] == pytest.approx(n_opt, rel=1e-3)


def test_jacobian_matches_finite_differences():
    law = paper_law()
    rng = np.random.default_rng(4)
    X = {"N": 10 ** rng.uniform(6, 10, 60), "U": 10 ** rng.uniform(7, 11, 60)}
    X["D"] = X["U"] * 10 ** rng.uniform(0, 3, 60)
    theta = law.theta_ + rng.normal(0, 0.05, law.theta_.size)
    log_pred, jac = law._log_predict(theta[None, None, :], X)
    for j, column in enumerate(jac):
        step = np.zeros_like(theta)
        step[j] = 1e-6
        up = law._log_predict((theta + step)[None, None, :], X)[0]
        down = law._log_predict((theta - step)[None, None, :], X)[0]
        numeric = (up - down) / 2e-6
        assert np.allclose(np.broadcast_to(column, numeric.shape), numeric, atol=1e-7), \
            law.param_names[j]


def test_recovers_published_constants_and_intervals_cover_them(fitted):
    p = fitted.params_
    assert p["R_D_star"] == pytest.approx(15.387756, rel=0.03)
    assert p["R_N_star"] == pytest.approx(5.309743, rel=0.05)
    assert p["E"] == pytest.approx(np.exp(0.6254804), rel=0.01)
    assert p["A"] == pytest.approx(np.exp(6.255414), rel=0.06)
    assert p["B"] == pytest.approx(np.exp(7.3049974), rel=0.06)
    assert p["alpha"] == pytest.approx(0.3526596, abs=0.005)
    assert p["beta"] == pytest.approx(0.3526596, abs=0.005)
    ci = fitted.conf_int(0.95)
    for name, truth in MUENNIGHOFF_2023.items():
        assert ci.loc[name, "lower"] <= truth <= ci.loc[name, "upper"], (name, ci.loc[name])
    text = fitted.summary()
    for word in ("DataConstrainedLaw", "R_D_star", "R_N_star", "Points used:  168"):
        assert word in text


def test_reduces_to_chinchilla_without_repetition():
    law = paper_law()
    table = sweep(sigma=0.0)
    chinchilla = ChinchillaLaw(n_bootstrap=0, fixed={k: MUENNIGHOFF_2023[k] for k in
                                                     ("E", "A", "B", "alpha", "beta")}
                               ).fit(table, params="params", samples="samples_seen")
    A, B, alpha, beta = (MUENNIGHOFF_2023[k] for k in ("A", "B", "alpha", "beta"))
    U = np.logspace(8, 12, 30)
    # one epoch (D = U) and N up to the compute-optimal size for U: exactly Chinchilla
    N = compute_optimal_params(U, A, B, alpha, beta) * np.linspace(0.01, 1.0, 30)
    assert np.allclose(law.predict(N=N, D=U, U=U), chinchilla.predict(N=N, D=U),
                       rtol=1e-13, atol=0)
    assert np.allclose(law.effective_data(D=U, U=U), U, rtol=1e-15)
    assert np.allclose(law.effective_params(N=N, U=U), N, rtol=1e-13)
    # parameters beyond N_opt(U) are discounted even at one epoch: a higher loss
    big = compute_optimal_params(U, A, B, alpha, beta) * 20
    assert np.all(law.predict(N=big, D=U, U=U) > chinchilla.predict(N=big, D=U))


def test_loss_rises_with_epochs_at_fixed_samples_seen(fitted):
    """At D fixed, fewer distinct samples (more epochs) give a higher loss; up to ~4 epochs
    the loss is almost that of unique data (the paper's §5 and Figure 3)."""
    D = 1e10
    epochs = np.array([1, 2, 4, 8, 16, 32, 64, 128])
    for law in (paper_law(), fitted):
        p = law.params_
        assert np.all(np.diff(law.predict(N=1e9, D=D, U=D / epochs)) > 0)
        # a model no larger than compute-optimal for the fewest distinct samples: only the
        # data term changes with the epochs
        n = compute_optimal_params(D / epochs[-1], p["A"], p["B"], p["alpha"], p["beta"])
        loss = law.predict(N=n, D=D, U=D / epochs)
        assert np.all(np.diff(loss) > 0)
        data_term = p["B"] / D ** p["beta"]  # of D distinct samples
        assert loss[2] - loss[0] < 0.03 * data_term  # 4 epochs: within 3% of unique data
        assert loss[-1] - loss[0] > data_term  # 128 epochs: the data term more than doubles
    # and the effective data saturate at U·(1 + R_D*)
    law = paper_law()
    assert law.effective_data(D=1e12, U=1e8) == pytest.approx(1e8 * (1 + 15.387756), rel=1e-9)


def test_chinchilla_on_samples_seen_mispredicts_repeated_runs_of_a_larger_model():
    """The issue's observation on published multi-epoch runs, on points drawn from the
    paper's law: fitted on the five smaller model sizes, Chinchilla's law in samples seen
    mispredicts the 64-epoch runs of the largest model by over 20%; the data-constrained
    law by under 0.5%."""
    table = sweep()
    largest = table["params"] == table["params"].max()
    train, test = table[~largest], table[largest]
    chinchilla = ChinchillaLaw(n_bootstrap=0).fit(train, params="params",
                                                  samples="samples_seen")
    constrained = DataConstrainedLaw(n_bootstrap=0).fit(train)
    truth = paper_loss(test["params"], test["samples_seen"], test["samples"]).to_numpy()
    most_repeated = (test["samples_seen"] / test["samples"] == 64).to_numpy() & \
        (test["samples"] == test["samples"].min()).to_numpy()
    error_chinchilla = np.abs(chinchilla.predict(test) / truth - 1)
    error_constrained = np.abs(constrained.predict(test) / truth - 1)
    assert error_chinchilla[most_repeated].max() > 0.20
    assert error_constrained.max() < 0.005


def test_bad_tables_raise_one_sentence():
    table = sweep(sigma=0.0)
    # a run inside its first epoch (samples_seen < samples) saw samples_seen distinct
    # samples: counted as min(U, D), as Muennighoff et al. do, not refused
    partial = table.assign(samples=table["samples_seen"] * 2)
    once = table.assign(samples=table["samples_seen"])
    a = DataConstrainedLaw(n_bootstrap=0).fit(partial)
    assert np.allclose(a.predict(partial), a.predict(once))
    with pytest.raises(TableError, match="no column 'tokens'"):
        DataConstrainedLaw(n_bootstrap=0).fit(table, samples_seen="tokens")
    with pytest.raises(ScalelabError, match="needs U="):
        paper_law().predict(N=1e9, D=1e10)
