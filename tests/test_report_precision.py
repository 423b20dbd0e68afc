"""The report's precision page: drawn only when the runs vary in weight precision, and
its answer to the memory question against the brute-force minimum of the fitted law."""

import numpy as np
import pandas as pd
import pytest

from scalelab.report.context import ReportContext
from scalelab.report.precision import page_precision, precision_analysis, varies_precision


def _runs(bits=(0, 2, 3, 4, 8), amp="none", gamma=2.0):
    rows = []
    for i, (n, w) in enumerate([(n, w) for n in (1e3, 3e3, 1e4, 3e4) for w in bits]):
        p = w if w else (16 if amp == "bf16" else 32)
        neff = n * -np.expm1(-p / gamma)
        rows.append({"run_id": f"r{i}", "params": n, "samples": 2048, "weight_bits": w,
                     "amp": amp, "loss_variant": "mse", "qat_fraction": 0.5, "step": 100,
                     "samples_seen": 3200, "flops": 1e9, "status": "finished",
                     "val_loss": 0.02 + 2.0 * neff ** -0.5})
    return pd.DataFrame(rows)


def test_no_page_without_a_precision_axis():
    runs = _runs(bits=(0,))
    assert not varies_precision(runs)
    assert page_precision(ReportContext.build(runs), None) == []


def test_bf16_against_fp32_is_an_axis():
    both = pd.concat([_runs(bits=(0,)), _runs(bits=(0,), amp="bf16").assign(
        run_id=lambda t: t.run_id + "b")])
    assert varies_precision(both)


def test_page_draws_and_names_the_best_bit_width():
    import matplotlib.pyplot as plt

    runs = _runs()
    fit = precision_analysis(runs, n_bootstrap=20)
    assert fit.law.params_["gamma"] == pytest.approx(2.0, rel=0.02)
    # at the memory of the largest run at the lowest bits (3e4·2/8 bytes): the truth's best
    assert fit.memory_bytes == 3e4 * 2 / 8
    truth = {p: 2.0 * (np.floor(8 * 7500 / p) * -np.expm1(-p / 2.0)) ** -0.5
             for p in (2, 3, 4, 5, 6, 8, 16, 32)}
    assert (fit.choice["distance"] <= 1).all()
    assert fit.residuals.abs().max() < 1e-3  # the runs lie on the law
    # measured: at 7500 bytes, 2 bits → N = 3e4, 4 bits → 1e4, 8 bits → 3e3, fp32 → 1e3
    measured = fit.measured.set_index("bits")["params"].to_dict()
    assert measured == {2: 3e4, 3: 1e4, 4: 1e4, 8: 3e3, 32: 1e3}
    assert fit.measured["bits"].iloc[0] == 2
    assert int(fit.choice["bits"].iloc[0]) == min(truth, key=truth.get)
    text = " ".join(fit.sentences())
    assert f"best at {min(truth, key=truth.get)} bits" in text and "γ = 2" in text
    pages = page_precision(ReportContext.build(runs), None)
    assert [name for name, _ in pages] == ["precision"]
    for _, fig in pages:  # every text of the page lies inside it
        renderer = fig.canvas.get_renderer()
        fig.canvas.draw()
        texts = [t for t in fig.texts if t.get_text().strip()]
        assert any("best at 2 bits" in t.get_text() for t in texts)
        for t in texts:
            box = t.get_window_extent(renderer)
            assert box.x0 >= -1 and box.x1 <= fig.bbox.width + 1, t.get_text()[:40]
            assert box.y0 >= -1 and box.y1 <= fig.bbox.height + 1, t.get_text()[:40]
        plt.close(fig)


def test_qat_fractions_fit_at_the_largest_and_are_compared():
    runs = _runs()
    more = runs[runs.weight_bits > 0].assign(qat_fraction=0.25, run_id=lambda t: t.run_id + "q",
                                             val_loss=lambda t: t.val_loss * 1.1)
    both = pd.concat([runs.assign(qat_fraction=1.0), more], ignore_index=True)
    fit = precision_analysis(both, n_bootstrap=0)
    assert fit.fraction == 1.0
    assert fit.law.params_["gamma"] == pytest.approx(2.0, rel=0.02)  # the f = 1 runs only
    lines = " ".join(fit.sentences())
    assert "QAT runs at f = 1" in lines
    from scalelab.report.precision import fraction_sentences

    qat = both[both.weight_bits > 0]
    text = fraction_sentences(qat.assign(param_bits=qat.weight_bits.astype(float)), "val_loss")
    assert text[0].startswith("P = 2: best f = 1 ") and "+0.0% against f = 1" in text[0]
