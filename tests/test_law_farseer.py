"""FarseerLaw (Li et al. 2025): its formula against the paper's form written out here,
recovery of known constants, its reduction to Chinchilla's law when the N-dependence is
switched off, and its place among predict's candidates."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from scalelab._errors import ScalelabError
from scalelab.laws import ChinchillaLaw, FarseerLaw, predict, synthetic
from scalelab.laws import registry
from scalelab.laws.farseer import FARSEER_CODE

NAMES = ("a1", "b1", "alpha", "a2", "b2", "beta", "a3", "b3", "gamma")


def paper_loss(N, D, c=FARSEER_CODE):
    """L(N, D) = e^(a3·N^γ + b3) + e^(a2·N^β + b2)·D^(−e^(a1·N^α + b1)), written out."""
    floor = np.exp(c["a3"] * N ** c["gamma"] + c["b3"])
    scale = np.exp(c["a2"] * N ** c["beta"] + c["b2"])
    return floor + scale * D ** -np.exp(c["a1"] * N ** c["alpha"] + c["b1"])


def grid(sigma=0.0, seed=0, sizes=np.geomspace(5e7, 2e9, 6), data=np.geomspace(1e9, 1e11, 8),
         loss=paper_loss):
    N, D = np.meshgrid(sizes, data, indexing="ij")
    table = pd.DataFrame({"params": N.ravel(), "samples": D.ravel()})
    noise = np.exp(np.random.default_rng(seed).normal(0, sigma, len(table)))
    table["val_loss"] = loss(table["params"].to_numpy(), table["samples"].to_numpy()) * noise
    return table


def true_terms(N, c=FARSEER_CODE):
    return {"A": np.exp(c["a1"] * N ** c["alpha"] + c["b1"]),
            "B": np.exp(c["a2"] * N ** c["beta"] + c["b2"]),
            "E": np.exp(c["a3"] * N ** c["gamma"] + c["b3"])}


@pytest.fixture(scope="module")
def exact():
    return FarseerLaw(n_bootstrap=0).fit(grid())


def test_recovers_the_nine_constants_of_noise_free_points_and_the_formula(exact):
    for name in NAMES:
        assert exact.params_[name] == pytest.approx(FARSEER_CODE[name], rel=1e-6, abs=1e-9), name
    rng = np.random.default_rng(2)
    N, D = 10 ** rng.uniform(7, 10, 200), 10 ** rng.uniform(8, 12, 200)
    assert np.allclose(exact.predict(N=N, D=D), paper_loss(N, D), rtol=1e-8, atol=0)
    assert np.allclose(synthetic.farseer_loss(N, D), paper_loss(N, D), rtol=1e-14, atol=0)
    terms = exact.terms(N[:5])
    for name, values in true_terms(N[:5]).items():
        assert np.allclose(terms[name], values, rtol=1e-7)
    assert exact.reference_size_ == pytest.approx(np.sqrt(2e8 * 5e8), rel=1e-9)  # median N


def test_jacobian_matches_finite_differences(exact):
    rng = np.random.default_rng(4)
    X = {"N": 10 ** rng.uniform(6, 11, 80), "D": 10 ** rng.uniform(8, 12, 80)}
    theta = exact.theta_ + rng.normal(0, 0.05, 9)
    theta[[2, 5, 8]] = [0.3, 1e-9, -0.2]  # an exponent at ~0: the series branch
    _, jac = exact._log_predict(theta[None, None, :], X)
    for j, column in enumerate(jac):
        step = np.zeros(9)
        step[j] = 1e-6
        up = exact._log_predict((theta + step)[None, None, :], X)[0]
        down = exact._log_predict((theta - step)[None, None, :], X)[0]
        numeric = (up - down) / 2e-6
        assert np.allclose(np.broadcast_to(column, numeric.shape), numeric, atol=1e-6), NAMES[j]


def test_noisy_points_recover_the_terms_and_the_intervals_cover_the_constants():
    table = grid(sigma=0.001, seed=1)
    law = FarseerLaw(n_bootstrap=100, seed=0).fit(table)
    sizes = np.unique(table["params"])
    terms = law.terms(sizes)
    truth = true_terms(sizes)
    assert np.max(np.abs(terms["A"] / truth["A"] - 1)) < 0.02
    assert np.max(np.abs(terms["B"] / truth["B"] - 1)) < 0.08
    assert np.max(np.abs(terms["E"] / truth["E"] - 1)) < 0.01
    ci = law.conf_int(0.95)
    for name in NAMES:
        assert ci.loc[name, "lower"] <= FARSEER_CODE[name] <= ci.loc[name, "upper"], name
    # four times the largest model, at 100 samples per parameter
    assert law.predict(N=8e9, D=8e11) == pytest.approx(paper_loss(8e9, 8e11), rel=0.015)
    band = law.predict_interval(N=8e9, D=8e11, level=0.9)
    assert band["lower"][0] < band["prediction"][0] < band["upper"][0]
    text = law.summary()
    for word in ("FarseerLaw", "Points used:  48", *NAMES):
        assert word in text


def test_without_n_dependence_it_is_chinchillas_law():
    E, B, beta = 1.9, 410.0, 0.28
    # a1 = a2 = a3 = 0: E + B/D^β, Chinchilla's law without its N term
    N, D = np.geomspace(1e6, 1e10, 30), np.geomspace(1e8, 1e12, 30)
    off = dict(a1=0.0, a2=0.0, a3=0.0, b1=np.log(beta), b2=np.log(B), b3=np.log(E))
    assert np.allclose(synthetic.farseer_loss(N, D, **off),
                       synthetic.chinchilla_loss(N, D, E=E, A=0.0, B=B, beta=beta), rtol=1e-13)
    fixed = {"a1": 0.0, "a2": 0.0, "a3": 0.0}
    law = FarseerLaw(n_bootstrap=0, fixed=fixed).fit(grid(
        loss=lambda n, d: synthetic.chinchilla_loss(n, d, E=E, A=0.0, B=B, beta=beta)))
    assert np.exp(law.params_[["b3", "b2", "b1"]].to_numpy()) == pytest.approx([E, B, beta],
                                                                              rel=1e-6)
    # with Chinchilla's N term present, the D term's B and β are still recovered, and the
    # floor E(N) follows E + A/N^α
    p = synthetic.CHINCHILLA
    table = grid(sigma=0.002, seed=3, sizes=np.geomspace(1e7, 1e9, 6),
                 data=np.geomspace(2e8, 2e11, 8), loss=synthetic.chinchilla_loss)
    law = FarseerLaw(n_bootstrap=0, fixed={"a1": 0.0, "a2": 0.0}).fit(table)
    chinchilla = ChinchillaLaw(n_bootstrap=0).fit(table)
    assert np.exp(law.params_["b1"]) == pytest.approx(p["beta"], rel=0.03)
    assert np.exp(law.params_["b1"]) == pytest.approx(chinchilla.params_["beta"], rel=0.03)
    assert np.exp(law.params_["b2"]) == pytest.approx(p["B"], rel=0.15)
    sizes = np.geomspace(1e7, 1e9, 6)
    floor = law.terms(sizes)["E"].to_numpy()
    assert np.allclose(floor, p["E"] + p["A"] * sizes ** -p["alpha"], rtol=0.01)


def test_starts_given_replace_those_of_the_first_seed():
    law = FarseerLaw(n_bootstrap=0, starts={"alpha": [0.1, 0.2]}).fit(grid())
    assert law.n_starts_ == 2 * 3 * 3  # alpha given; beta and gamma varied over 3 values
    assert law.params_["alpha"] == pytest.approx(FARSEER_CODE["alpha"], rel=1e-6)


def test_fixed_and_bounds_that_are_not_its_coordinates_are_refused():
    table = grid()
    with pytest.raises(ScalelabError, match="fixed may hold a1 only at 0"):
        FarseerLaw(fixed={"a1": 0.1}).fit(table)
    with pytest.raises(ScalelabError, match="only together with a2=0"):
        FarseerLaw(fixed={"b2": -14.0}).fit(table)
    with pytest.raises(ScalelabError, match="bounds may bound only the exponents"):
        FarseerLaw(bounds={"a3": (-1, 1)}).fit(table)
    with pytest.raises(ScalelabError, match="shared must name all of"):
        FarseerLaw(shared=("alpha",)).fit(table.assign(g=np.arange(len(table)) % 2), group="g")
    # 9 constants need 10+ points and 3+ distinct sizes of each input
    with pytest.raises(ScalelabError, match="too few to identify"):
        FarseerLaw().fit(grid(sizes=[1e8, 1e9]))


def test_a_candidate_of_predict_only_where_the_grid_supports_nine_constants():
    small = grid(sigma=0.003, sizes=np.geomspace(1e7, 1e9, 3), data=np.geomspace(1e9, 1e11, 3))
    p = predict(small, "params=3e9,samples=3e10", n_bootstrap=5)
    row = p.candidates.set_index("law").loc["FarseerLaw"]
    assert "nine constants need 4+ model sizes" in row["note"]
    assert not np.isfinite(row["backtest_are"]) and p.law != "FarseerLaw"


@pytest.mark.slow
def test_predict_chooses_it_where_it_backtests_clearly_better_and_not_on_a_small_margin(
        monkeypatch):
    # Farseer's surface, 8 sizes, 0.2% noise: the other joint laws miss by 2–4%
    fitted, held = synthetic.farseer_grid(sizes=tuple(np.geomspace(2e7, 1e9, 8)), noise=0.002,
                                          distances=(3.0,))
    row = held.iloc[3]
    p = predict(fitted, {"params": row["params"], "samples": row["samples"]}, n_bootstrap=10)
    cands = p.candidates.set_index("law")["backtest_are"]
    assert p.law == "FarseerLaw"
    assert cands["FarseerLaw"] < cands["ChinchillaLaw"] / 3
    assert abs(p.prediction - row["true_loss"]) / row["true_loss"] < 0.01
    # 6 sizes, 0.7% noise: Farseer backtests a little better than Chinchilla's law (the only
    # other joint law here), within the 1.3× margin its preference asks, so it is not chosen
    for name in ("KaplanLaw", "OvertrainingLaw"):
        monkeypatch.delitem(registry._REGISTRY, name)
    fitted, held = synthetic.farseer_grid(seed=0, distances=(3.0,))
    row = held.iloc[3]
    p = predict(fitted, {"params": row["params"], "samples": row["samples"]}, n_bootstrap=10)
    cands = p.candidates.set_index("law")["backtest_are"]
    assert cands["FarseerLaw"] < cands["ChinchillaLaw"] < 1.3 * cands["FarseerLaw"]
    assert p.law == "ChinchillaLaw"
