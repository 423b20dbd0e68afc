"""Recovery of the precision laws' constants from data drawn from them (Kumar et al. 2024;
Dremov et al. 2025), the bit-width choice under a memory budget against a brute-force
minimum, and their place among predict's candidates."""

import numpy as np
import pandas as pd
import pytest

from scalelab._errors import TableError
from scalelab.laws import PrecisionLaw, QATFractionLaw, best_bits_under_memory
from scalelab.runs.table import param_bits

#: a downscaling-sized truth (losses ~1e-2, N 1e3–1e5, U 256–4096) with Kumar's gamma of
#: a few bits
TRUTH = {"E": 0.01, "A": 3.0, "B": 2.0, "alpha": 0.5, "beta": 0.45, "gamma": 2.5}


def _kumar(n, d, p, t=TRUTH):
    neff = n * -np.expm1(-p / t["gamma"])
    return t["E"] + t["A"] * neff ** -t["alpha"] + t["B"] * d ** -t["beta"]


def _grid(noise=0.0, seed=0):
    rng = np.random.default_rng(seed)
    rows = [{"params": n, "samples": d, "param_bits": p}
            for n in (1e3, 3e3, 1e4, 3e4, 1e5) for d in (256, 1024, 4096)
            for p in (2, 3, 4, 6, 8, 32)]
    t = pd.DataFrame(rows)
    t["val_loss"] = _kumar(t.params, t.samples, t.param_bits) * np.exp(
        noise * rng.standard_normal(len(t)))
    return t


def test_precision_law_recovers_known_constants():
    law = PrecisionLaw(n_bootstrap=0).fit(_grid())
    for name, value in TRUTH.items():
        assert law.params_[name] == pytest.approx(value, rel=1e-3), name
    # with 1% noise gamma within 10% and inside its 95% interval
    noisy = PrecisionLaw(n_bootstrap=40, seed=1).fit(_grid(noise=0.01, seed=3))
    assert noisy.params_["gamma"] == pytest.approx(TRUTH["gamma"], rel=0.1)
    lo, hi = noisy.conf_int(0.95).loc["gamma"]
    assert lo < TRUTH["gamma"] < hi
    # N_eff by the closed form
    assert noisy.effective_params(1e4, 32) == pytest.approx(1e4, rel=1e-4)
    law_neff = law.effective_params(1e4, 2.5)
    assert law_neff == pytest.approx(1e4 * (1 - np.exp(-1)), rel=1e-3)


def test_one_bit_width_is_refused():
    with pytest.raises(TableError, match="two or more bit widths"):
        PrecisionLaw().fit(_grid().assign(param_bits=4.0))


def test_best_bits_under_memory_is_the_brute_force_minimum():
    law = PrecisionLaw(n_bootstrap=20).fit(_grid(noise=0.003))
    memory = 8e3  # bytes
    table = best_bits_under_memory(law, memory, D=4096, bits=(2, 3, 4, 6, 8, 16, 32))
    # brute force on the truth: N = floor(8M/P), loss at D
    losses = {p: _kumar(np.floor(8 * memory / p), 4096, p) for p in (2, 3, 4, 6, 8, 16, 32)}
    assert table["bits"].iloc[0] == min(losses, key=losses.get)
    assert (table["lower"] <= table["prediction"]).all()
    assert table["share_best"].sum() == pytest.approx(1.0)


QAT = {"E": 0.01, "A": 3.0, "B": 2.0, "alpha": 0.5, "beta": 0.45, "eta": 0.6, "G": 0.002,
       "phi": 0.5, "psi": 0.4}


def _qat(n, d, f, p, t=QAT):
    s = d / (n * p / 8)
    return (t["E"] + t["A"] * n ** -t["alpha"] + t["B"] * (d * (1 - (1 - t["eta"]) * f)) ** -t["beta"]
            + t["G"] * (np.maximum(1 - f, 1e-12) * s) ** t["phi"] * (f * s) ** -t["psi"])


def test_qat_fraction_law_recovers_known_constants_and_its_optimum_rises_with_s():
    rows = [{"params": n, "samples": d, "qat_fraction": f, "param_bits": p}
            for n in (1e3, 1e4, 1e5) for d in (1e4, 1e5, 1e6)
            for f in (0.05, 0.1, 0.2, 0.4, 0.7, 0.9) for p in (2, 4, 8)]
    t = pd.DataFrame(rows)
    t["val_loss"] = _qat(t.params, t.samples, t.qat_fraction, t.param_bits)
    law = QATFractionLaw(n_bootstrap=0).fit(t)
    for name, value in QAT.items():
        assert law.params_[name] == pytest.approx(value, rel=2e-2), name
    # f* by brute force on the truth, and its rise with samples per parameter-byte
    fs = np.linspace(0.001, 1, 1000)
    for n, d, p in [(1e4, 1e5, 4), (1e3, 1e6, 2)]:
        truth = fs[np.argmin(_qat(n, d, fs, p))]
        assert law.optimal_fraction(n, d, p) == pytest.approx(truth, abs=0.01)
    low, high = law.optimal_fraction(1e5, 1e4, 8), law.optimal_fraction(1e3, 1e6, 2)
    assert QATFractionLaw.bytes_ratio(1e3, 1e6, 2) > QATFractionLaw.bytes_ratio(1e5, 1e4, 8)
    assert high > low


def test_param_bits_of_a_runs_table():
    t = pd.DataFrame({"amp": ["none", "bf16", "none", "bf16"], "weight_bits": [0, 0, 4, 3]})
    assert param_bits(t).tolist() == [32, 16, 4, 3]
    assert param_bits(pd.DataFrame({"x": [1]})).tolist() == [32]


def test_predict_backtests_the_precision_law_where_bits_vary():
    from scalelab.laws import predict

    t = _grid(noise=0.002).rename(columns={"samples": "samples"})
    t["run_id"] = [f"r{i}" for i in range(len(t))]
    p = predict(t, target="params=3e5", n_bootstrap=10)
    names = set(p.candidates["law"]) if hasattr(p, "candidates") else set()
    assert "PrecisionLaw" in names or "PrecisionLaw" in p.summary()


#: Kumar et al. 2024's fitted weight constant (App. K, Table 2: γ_w = 2.6745, as quoted by
#: third-party code; γ_a = 2.2102 and γ_kv = 0.9578 are the activations' and KV cache's)
#: with the Chinchilla part of Hoffmann et al. 2022 (eq. 10: E = 1.69, A = 406.4,
#: B = 410.7, α = 0.34, β = 0.28), on the paper's grid: N 30M–220M, D 1.5B–26B, P 3–16 bits
PUBLISHED = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28, "gamma": 2.6745}


def test_precision_law_recovers_the_published_gamma_on_the_papers_grid():
    rows = [{"params": n, "samples": d, "param_bits": p}
            for n in (30e6, 60e6, 110e6, 220e6) for d in (1.5e9, 5e9, 13e9, 26e9)
            for p in (3, 4, 5, 6, 8, 16)]
    t = pd.DataFrame(rows)
    t["val_loss"] = _kumar(t.params, t.samples, t.param_bits, PUBLISHED) * np.exp(
        0.002 * np.random.default_rng(7).standard_normal(len(t)))
    law = PrecisionLaw(n_bootstrap=30, seed=2).fit(t)
    assert law.params_["gamma"] == pytest.approx(PUBLISHED["gamma"], rel=0.05)
    lo, hi = law.conf_int(0.95).loc["gamma"]
    assert lo < PUBLISHED["gamma"] < hi
    for name in ("alpha", "beta"):
        assert law.params_[name] == pytest.approx(PUBLISHED[name], rel=0.1), name
