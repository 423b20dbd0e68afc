"""predict on the grids the field runs (over-training multiples, IsoFLOP budgets, many
epochs), drawn from known laws (scalelab.laws.synthetic, written out from the papers'
equations), and the registry that makes a law a candidate by declaring itself."""

import math

import numpy as np
import pandas as pd
import pytest

from scalelab.laws import (Candidate, PowerLaw, predict, predict_many, register_candidate,
                           registered_candidates, synthetic)
from scalelab.laws.data_constrained import MUENNIGHOFF_2023, DataConstrainedLaw
from scalelab.laws.registry import unregister_candidate


def _targets(held, cols):
    return [{c: float(r[c]) for c in cols} for _, r in held.iterrows()]


def test_overtraining_grid_is_predicted_by_a_joint_law_within_its_interval():
    fitted, held = synthetic.overtraining_grid(multipliers=(5, 20, 80, 320), distances=(10.0,))
    preds = predict_many(fitted, _targets(held, ["params", "samples"]), n_bootstrap=20)
    truth = held["val_loss"].to_numpy()
    are = np.abs([p.prediction for p in preds] - truth) / truth
    assert np.median(are) < 0.03
    assert {p.law for p in preds} <= {"ChinchillaLaw", "OvertrainingLaw", "KaplanLaw"}
    assert np.mean([p.lower <= t <= p.upper for p, t in zip(preds, truth)]) >= 0.75
    p = preds[0]
    assert p.distance == pytest.approx(10.0) and p.backtested_distance > 1
    assert p.far == (10.0 > 2 * p.backtested_distance)
    far = predict(fitted, {"params": 4.1e8 * 30, "samples": 80 * 4.1e8 * 30}, n_bootstrap=20)
    assert far.far and "more than 2 times as far" in far.sentence  # 30× > 2 × 5.2×
    d = p.to_dict()
    assert {"distance", "backtested_distance", "coverage", "far"} <= set(d)


def test_multi_epoch_targets_name_epochs_and_samples_seen():
    fitted, held = synthetic.multi_epoch_grid(sizes=tuple(np.geomspace(2e6, 5e7, 6)),
                                              epochs=(1, 4, 16, 64), distances=(3.0,))
    row = held.iloc[2]  # 16 epochs of 1e8 samples
    by_epochs = predict(fitted, {"params": row["params"], "samples": row["samples"],
                                 "epochs": row["epochs"]}, n_bootstrap=10)
    by_seen = predict(fitted, {"params": row["params"], "samples_seen": row["samples_seen"]},
                      n_bootstrap=10)
    assert by_epochs.point["samples_seen"] == pytest.approx(16 * 1e8)
    assert by_seen.prediction == pytest.approx(by_epochs.prediction, rel=1e-9)
    assert "DataConstrainedLaw" in set(by_epochs.candidates["law"])
    assert abs(by_epochs.prediction - row["true_loss"]) / row["true_loss"] < 0.05


def test_isoflop_compute_target_uses_each_budgets_best_run():
    fitted, held = synthetic.isoflop_grid(distances=(3.0,))
    p = predict(fitted, {"compute": 3e18}, n_bootstrap=10)
    assert p.axis == "flops"
    # persistence at a compute target: the best run of the largest budget (by hand)
    top = fitted[fitted["flops"] == fitted["flops"].max()]
    assert p.baselines.set_index("law").loc["persistence", "prediction"] == \
        pytest.approx(top["val_loss"].min())
    best = held["val_loss"].min()  # the best run of the held-out budget
    assert abs(p.prediction - best) / best < 0.04
    assert p.lower <= held["true_loss"].min() <= p.upper


def test_compute_with_params_gives_the_samples_seen_through_the_tables_flops():
    fitted, _ = synthetic.isoflop_grid()
    p = predict(fitted, {"params": 2e9, "compute": 6e19}, n_bootstrap=10)
    assert p.point["samples"] == pytest.approx(6e19 / (6 * 2e9), rel=1e-6)


def test_a_partial_first_epoch_counts_the_samples_seen_as_distinct():
    # Muennighoff et al.: U_D = min(U, D); a run that stopped at D < U saw D distinct
    truth = DataConstrainedLaw(n_bootstrap=0)
    n, d, u = 1e7, 5e7, 1e8
    expected = synthetic.data_constrained_loss(n, d, d)  # D distinct samples, one epoch
    assert synthetic.data_constrained_loss(n, d, u) == pytest.approx(expected)
    rows = [{"params": n, "samples": 1e8, "samples_seen": e * 1e8}
            for n in np.geomspace(1e6, 1e8, 5) for e in (0.25, 0.5, 1, 4, 16, 64)]
    table = pd.DataFrame(rows)
    table["val_loss"] = synthetic.data_constrained_loss(table["params"], table["samples_seen"],
                                                        table["samples"])
    law = truth.fit(table)  # rows with samples_seen < samples are accepted
    for name in ("alpha", "beta"):
        assert law.params_[name] == pytest.approx(MUENNIGHOFF_2023[name], rel=0.05)


def test_a_registered_law_becomes_a_candidate_and_can_be_chosen():
    table = pd.DataFrame({"params": np.geomspace(1e3, 3.2e4, 6)})
    table["val_loss"] = 0.5 + 10 * table["params"]**-0.4
    register_candidate(Candidate(
        "MyLaw", "E + A·{x}^(−0.4)", "slice",
        lambda ctx: PowerLaw(fixed={"alpha": 0.4}, n_bootstrap=ctx.n_bootstrap),
        min_sizes=2, order=1))
    try:
        assert "MyLaw" in [c.name for c in registered_candidates()]
        p = predict(table, "params=1e5", n_bootstrap=10)
        row = p.candidates.set_index("law").loc["MyLaw"]
        assert row["formula"] == "E + A·N^(−0.4)"
        assert row["backtest_are"] < 1e-6
        assert p.law in ("MyLaw", "PowerLaw")
    finally:
        unregister_candidate("MyLaw")
    assert "MyLaw" not in set(predict(table, "params=1e5", n_bootstrap=10).candidates["law"])


def test_registry_refuses_what_is_not_a_candidate():
    from scalelab._errors import ScalelabError

    with pytest.raises(ScalelabError, match="kind must be"):
        Candidate("x", "", "sideways", lambda ctx: None)
    with pytest.raises(ScalelabError, match="already registered"):
        register_candidate(Candidate("PowerLaw", "", "slice", lambda ctx: None))
    with pytest.raises(TypeError, match="Candidate"):
        register_candidate("PowerLaw")


def _annealed_curves(sizes, steps=200, evals=20, lr_peak=1e-2, E=0.5, A=20.0, alpha=0.4,
                     B=0.2, beta=0.5, C=0.1):
    from scalelab.laws import annealing_areas

    lr = lr_peak * 0.5 * (1 + np.cos(np.pi * np.arange(steps) / steps))  # cosine, per step
    s1, s2 = annealing_areas(lr)
    rows = []
    for n in sizes:
        for step in np.linspace(steps / evals, steps, evals).astype(int):
            loss = E + A * n**-alpha + B * s1[step - 1]**-beta - C * s2[step - 1]
            rows.append({"run_id": f"n{n:g}", "params": n, "step": step,
                         "lr_step": lr[step - 1], "val_loss": loss})
    return pd.DataFrame(rows)


def test_scaled_annealing_law_recovers_its_constants_from_whole_curves():
    from scalelab.laws import ScaledAnnealingLaw

    curves = _annealed_curves([1e3, 3e3, 1e4, 3e4])
    law = ScaledAnnealingLaw(n_bootstrap=0).fit(curves)
    for name, value in {"E": 0.5, "A": 20.0, "alpha": 0.4, "B": 0.2, "beta": 0.5,
                        "C": 0.1}.items():
        assert law.params_[name] == pytest.approx(value, rel=0.03)  # E and B trade a little
    assert np.abs(law.residuals_).max() < 1e-4  # the curves themselves to 1e-4


def test_curve_law_is_a_candidate_of_predict_and_backtests_on_the_runs_ends():
    sizes = [1e3, 2e3, 4e3, 8e3, 1.6e4, 3.2e4]
    curves = _annealed_curves(sizes)
    p = predict(curves, "params=1.28e5", n_bootstrap=10)
    row = p.candidates.set_index("law").loc["ScaledAnnealingLaw"]
    truth = _annealed_curves([1.28e5])["val_loss"].iloc[-1]  # the end of a cosine run
    assert row["backtest_are"] < 1e-3  # fitted to the last half of each curve
    assert row["prediction"] == pytest.approx(truth, rel=1e-3)
    # result="best" asks for each run's lowest value, which a curve law does not model
    best = predict(curves, "params=1.28e5", result="best", n_bootstrap=10)
    assert "ScaledAnnealingLaw" not in set(best.candidates["law"])


def test_one_size_and_a_level_in_words_are_one_sentence():
    from scalelab._errors import ScalelabError

    one = pd.DataFrame({"params": [1e6], "val_loss": [2.0]})
    with pytest.raises(ScalelabError, match="2 or more params values"):
        predict(one, "params=1e7")
    table = pd.DataFrame({"params": np.geomspace(1e3, 3.2e4, 6)})
    table["val_loss"] = 0.5 + 10 * table["params"]**-0.4
    with pytest.raises(ScalelabError, match="level must be a number"):
        predict(table, "params=1e5", level="90%")
    assert predict(table, "params=1e5", level=np.float32(0.8), n_bootstrap=10).level == \
        pytest.approx(0.8)


def test_api_where_is_parsed_not_run(tmp_path, monkeypatch):
    from scalelab._errors import ScalelabError

    monkeypatch.chdir(tmp_path)
    table = pd.DataFrame({"params": np.geomspace(1e3, 3.2e4, 6)})
    table["val_loss"] = 0.5 + 10 * table["params"]**-0.4
    with pytest.raises(ScalelabError, match="may only compare"):
        predict(table, "params=1e5", where="@table.to_csv('PWNED.csv') == 0")
    assert not (tmp_path / "PWNED.csv").exists()
