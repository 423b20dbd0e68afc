"""scalelab.laws.predict: candidates, backtests and the naive baselines, checked against
closed forms (laws whose data are generated from known parameters, persistence and the
log–log line computed by hand), and the `scalelab predict` command."""

import json
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from scalelab._errors import ScalelabError
from scalelab.laws import predict
from scalelab.laws.regime import result_rows, undertrained_runs

SIZES = np.array([1e3, 2e3, 4e3, 8e3, 1.6e4, 3.2e4])


def power_table(E=0.5, A=10.0, alpha=0.4, sizes=SIZES, seeds=(0,), jitter=0.0):
    rows = []
    for i, n in enumerate(sizes):
        for s in seeds:
            wiggle = jitter * (1 if (i + s) % 2 else -1)
            rows.append({"run_id": f"r{i}_{s}", "params": n, "seed": s,
                         "val_loss": (E + A * n**-alpha) * (1 + wiggle)})
    return pd.DataFrame(rows)


def curves_table(finals: dict, falls: dict, steps=100, evals=11):
    """One curve per run: linear in step from final·(1 + 5·fall) to final, so that the
    fall over the last fifth is exactly `fall` (relative to the final value)."""
    rows = []
    for run, (params, final) in finals.items():
        fall = falls.get(run, 0.0)
        for step in np.linspace(0, steps, evals):
            value = final * (1 + fall * (steps - step) / (0.2 * steps))
            rows.append({"run_id": run, "step": int(step), "params": params,
                         "val_loss": value})
    return pd.DataFrame(rows)


def test_saturating_power_law_is_chosen_and_recovers_the_truth():
    table = power_table(seeds=(0, 1), jitter=1e-3)
    target = 4 * SIZES[-1]
    truth = 0.5 + 10.0 * target**-0.4
    p = predict(table, f"params={target}", n_bootstrap=30)
    assert p.law == "PowerLaw"
    assert p.beats_persistence and p.sentence is None
    assert abs(p.prediction - truth) / truth < 0.01
    assert p.lower <= truth <= p.upper
    # persistence in the k=1 fold: the mean at 1.6e4 predicting the runs at 3.2e4
    # (closed form; the ±jitter of the two seeds cancels in the mean)
    clean = lambda n: 0.5 + 10.0 * n**-0.4  # noqa: E731
    truths = clean(SIZES[-1]) * np.array([1 - 1e-3, 1 + 1e-3])
    expected_k1 = np.mean(np.abs(clean(SIZES[-2]) - truths) / truths)
    baselines = p.baselines.set_index("law")
    assert baselines.loc["persistence", "are_k1"] == pytest.approx(expected_k1, rel=1e-9)
    assert p.backtest_are < p.persistence_are
    assert set(p.candidates["law"]) >= {"PowerLaw", "PowerLaw(E=0)", "BrokenPowerLaw"}
    folds = ["are_k1", "are_k2"]  # while 4+ sizes remain in
    assert [c for c in p.candidates.columns if c.startswith("are_k")] == folds
    assert p.persistence_are == pytest.approx(
        np.mean(baselines.loc["persistence", folds].to_numpy(float)))


def test_pure_power_law_data_make_the_log_log_line_exact():
    table = power_table(E=0.0, A=3.0, alpha=0.3)
    p = predict(table, "params=1e5", n_bootstrap=10)
    assert p.loglog_are == pytest.approx(0.0, abs=1e-12)
    assert p.prediction == pytest.approx(3.0 * 1e5**-0.3, rel=1e-3)
    line = p.baselines.set_index("law").loc["log–log line", "prediction"]
    assert line == pytest.approx(3.0 * 1e5**-0.3, rel=1e-9)


def test_at_the_floor_persistence_is_used_and_said_in_words():
    values = [0.052, 0.045, 0.043, 0.0410, 0.0411, 0.0412]
    table = pd.DataFrame({"run_id": [f"r{i}" for i in range(6)], "params": SIZES,
                          "val_loss": values})
    p = predict(table, "params=1.28e5", n_bootstrap=10)
    assert p.law == "persistence" and not p.beats_persistence
    assert p.prediction == pytest.approx(0.0412)
    assert "No law beats persistence" in p.sentence and "floor" in p.sentence
    # persistence's own k=1 error: 0.0411 predicting 0.0412
    assert p.baselines.set_index("law").loc["persistence", "are_k1"] == \
        pytest.approx(0.0001 / 0.0412, rel=1e-9)
    # one seed: the interval is ± z·(persistence ARE) in log space, widened by
    # persistence's backtest errors |log(truth/pred)| / s(d), s(d) = √(0.5² + log² d)
    # (split-conformal; with 3 scores from 2 folds, Student's t at 2 degrees of freedom
    # times their root mean square)
    from scipy.stats import t

    z = 1.6448536269514722
    v = dict(zip(SIZES, values))
    held = [(3.2e4, 1.6e4), (1.6e4, 8e3), (3.2e4, 8e3)]
    r = np.log([v[a] / v[b] for a, b in held])
    d = np.array([a / b for a, b in held])
    s = lambda d: np.hypot(0.5, np.log(d))  # noqa: E731
    q = t.ppf(0.95, df=2) * np.sqrt(np.mean((r / s(d))**2))
    half = max(z * p.persistence_are, q * s(4.0))
    assert p.upper == pytest.approx(0.0412 * math.exp(half), rel=1e-9)
    assert p.distance == pytest.approx(4.0) and p.backtested_distance == pytest.approx(4.0)
    assert p.lower < p.prediction < p.upper


def test_undertrained_fall_is_measured_over_the_last_fifth():
    table = curves_table({"a": (1e3, 0.5), "b": (2e3, 0.4)}, {"a": 0.2, "b": 0.0})
    flags = undertrained_runs(table).set_index("run_id")
    assert flags.loc["a", "fall"] == pytest.approx(0.2)
    assert flags.loc["b", "fall"] == pytest.approx(0.0)
    assert bool(flags.loc["a", "undertrained"]) and not bool(flags.loc["b", "undertrained"])
    assert not undertrained_runs(table, threshold=0.25)["undertrained"].any()


def test_result_best_takes_the_lowest_value_of_the_curve():
    table = pd.DataFrame({"run_id": ["a"] * 4, "step": [0, 10, 20, 30],
                          "val_loss": [1.0, 0.3, 0.2, 0.25]})
    best = result_rows(table, result="best").iloc[0]
    assert best["val_loss"] == 0.2 and best["best_step"] == 20
    assert result_rows(table, result="final").iloc[0]["val_loss"] == 0.25
    with pytest.raises(ScalelabError, match="final"):
        result_rows(table, result="last")


def test_undertrained_largest_runs_are_named_when_persistence_wins():
    finals = {f"r{i}": (n, v) for i, (n, v) in
              enumerate(zip(SIZES, [0.052, 0.045, 0.043, 0.0410, 0.0411, 0.0412]))}
    table = curves_table(finals, {"r4": 0.1, "r5": 0.1})
    p = predict(table, "params=1e5", n_bootstrap=10)
    assert p.law == "persistence"
    assert "undertrained" in p.sentence
    assert any("undertrained" in n and "r5" in n for n in p.notes)
    assert set(p.to_dict()["undertrained"]) == {"r4", "r5"}
    # early stopping: the best over the curve of these monotone curves is the final value
    assert predict(table, "params=1e5", result="best", n_bootstrap=10).prediction == \
        pytest.approx(p.prediction)


def chinchilla_grid(E=1.0, A=40.0, B=60.0, alpha=0.35, beta=0.4):
    rows = []
    for n in SIZES[:5]:
        for d in (1000, 4000, 16000):  # integers, as a store gives them
            rows.append({"run_id": f"{n:g}_{d:g}", "params": n, "samples": d,
                         "val_loss": E + A * n**-alpha + B * d**-beta})
    return pd.DataFrame(rows)


def test_joint_laws_predict_unswept_data_and_cannot_cross():
    table = chinchilla_grid()
    truth = lambda n, d: 1.0 + 40.0 * n**-0.35 + 60.0 * d**-0.4  # noqa: E731
    p = predict(table, "params=6.4e4,samples=1.6e4", n_bootstrap=10)
    laws = set(p.candidates["law"])
    assert {"ChinchillaLaw", "PowerLaw(shared A, α)", "KaplanLaw", "PowerLaw"} <= laws
    chin = p.candidates.set_index("law").loc["ChinchillaLaw"]
    assert chin["prediction"] == pytest.approx(truth(6.4e4, 1.6e4), rel=1e-4)
    assert chin["backtest_are"] < 1e-4
    assert p.at == {"samples": 1.6e4}
    # D beyond the sweep: only the joint laws can speak, and the note says so
    q = predict(table, "params=3.2e4,samples=6.4e4", n_bootstrap=10)
    assert q.axis == "samples" and set(q.candidates["law"]) <= {
        "ChinchillaLaw", "KaplanLaw", "OvertrainingLaw", "FarseerLaw", "PowerLaw(shared A, α)",
        "PowerLaw", "PowerLaw(E=0)",
        "BrokenPowerLaw"}
    law = p.laws["ChinchillaLaw"]
    grid = np.geomspace(1e3, 1e7, 50)
    small, large = law.predict(N=grid, D=1e3), law.predict(N=grid, D=1.6e4)
    assert (large < small).all()
    shared = p.laws["PowerLaw(shared A, α)"]
    gap = shared.predict(x=grid, group=1000) - shared.predict(x=grid, group=16000)
    assert np.ptp(gap) < 1e-9 * abs(gap).max()  # parallel curves: a constant gap


def test_not_swept_data_size_uses_joint_laws_only():
    table = chinchilla_grid()
    p = predict(table, "params=6.4e4,samples=8e3", n_bootstrap=10)
    assert p.axis == "params"
    used = p.candidates.dropna(subset=["prediction"])
    assert set(used["law"]) <= {"ChinchillaLaw", "KaplanLaw", "OvertrainingLaw", "FarseerLaw"}
    assert any("not swept" in n for n in p.notes)


def test_weighted_choice_blends_the_laws_that_beat_persistence():
    table = power_table(seeds=(0, 1), jitter=2e-3)
    p = predict(table, "params=6.4e4", choose="weighted", n_bootstrap=10)
    used = p.candidates[p.candidates["weight"] > 0]
    assert used["weight"].sum() == pytest.approx(1.0)
    assert (used["backtest_are"] < p.persistence_are).all()
    assert p.prediction == pytest.approx(float(np.dot(used["weight"], used["prediction"])))


def test_compute_target_uses_the_loss_envelope():
    rows = []
    for n in (1e3, 2e3, 4e3, 8e3, 1.6e4):
        for step in range(1, 21):
            d = step * 256
            rows.append({"run_id": f"n{n:g}", "step": step, "params": n, "flops": 6 * n * d,
                         "val_loss": 1.0 + 40 * n**-0.35 + 60 * d**-0.4})
    table = pd.DataFrame(rows)
    p = predict(table, "compute=1e10", n_bootstrap=10)
    assert p.axis == "flops" and np.isfinite(p.prediction)
    assert p.at == {} and len(p.baselines) == 2
    top = table["flops"].max()
    final_best = table[table["flops"] == top]["val_loss"].min()
    assert p.baselines.set_index("law").loc["persistence", "prediction"] == \
        pytest.approx(final_best)


def test_bad_input_is_one_sentence():
    table = power_table()
    with pytest.raises(ScalelabError, match="KEY=VALUE"):
        predict(table, "width=3")
    with pytest.raises(ScalelabError, match="samples"):
        predict(table, "samples=1e4")
    with pytest.raises(ScalelabError, match="choose"):
        predict(table, "params=1e5", choose="vote")
    with pytest.raises(ScalelabError, match="valid selection"):
        predict(table, "params=1e5", where="params <")
    with pytest.raises(ScalelabError, match="no run is left"):
        predict(table, "params=1e5", where="params > 1e9")
    mixed = table.assign(loss_variant=["mse", "crps_fair"] * 3)
    with pytest.raises(ScalelabError, match="several loss variants"):
        predict(mixed, "params=1e5")


def test_cli_predict_prints_json_and_text(tmp_path):
    path = tmp_path / "runs.csv"
    power_table(seeds=(0, 1), jitter=1e-3).to_csv(path, index=False)
    cmd = [sys.executable, "-m", "scalelab.cli", "predict", str(path), "--target",
           "params=1.28e5", "--target", "params=6.4e4", "--where", "params < 3e4", "--json"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    objects = json.loads(out)
    assert [o["target"] for o in objects] == ["params=128000", "params=64000"]
    for o in objects:
        assert {"target", "prediction", "lower", "upper", "law", "backtest_are",
                "persistence_are"} <= set(o)
        assert o["lower"] <= o["prediction"] <= o["upper"]
    text = subprocess.run(cmd[:7] + ["--where", "params < 3e4"], capture_output=True,
                          text=True, check=True).stdout
    assert "persistence" in text and "90% interval" in text
    bad = subprocess.run(cmd[:5] + ["--target", "params=abc"], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1


def test_result_is_chosen_in_the_spec_and_checked_there():
    from scalelab.sweep import parse_spec

    raw = {"method": "grid", "parameters": {"width": {"values": [4, 8]}},
           "scalelab": {"result": "best"}}
    assert parse_spec(raw).settings.result == "best"
    assert parse_spec({**raw, "scalelab": {}}).settings.result == "final"
    with pytest.raises(ScalelabError, match="scalelab.result must be final"):
        parse_spec({**raw, "scalelab": {"result": "lowest"}}, source="s.yaml")


def test_report_context_takes_each_runs_best_value_when_asked():
    from scalelab.report import ReportContext

    table = pd.DataFrame({"run_id": ["a"] * 3 + ["b"] * 3, "step": [0, 10, 20] * 2,
                          "params": [1e3] * 3 + [2e3] * 3,
                          "val_loss": [1.0, 0.3, 0.4, 1.0, 0.2, 0.1]})
    best = ReportContext.build(table, spec={"scalelab": {"result": "best"}})
    assert best.result == "best"
    assert best.final.set_index("run_id")["val_loss"].to_dict() == {"a": 0.3, "b": 0.1}
    final = ReportContext.build(table)
    assert final.final.set_index("run_id")["val_loss"].to_dict() == {"a": 0.4, "b": 0.1}



def test_folds_of_equal_length_do_not_share_a_fit():
    """A fit is cached by what it reads, not by the table's length and index: each compute
    fold's loss envelope is a new frame indexed 0…n−1 (folds of one length once shared one
    fit, so the backtests of a compute target read a fit that had seen the held point)."""
    import pandas as pd

    from scalelab.laws import PowerLaw, predict
    from scalelab.laws._problem import compute_problem
    from scalelab.laws.synthetic import chinchilla_loss

    rng = np.random.default_rng(0)
    rows = []
    for n in (1e3, 2e3, 4e3, 8e3, 1.6e4, 3.2e4):
        for step in range(1, 21):
            d = step * 640.0
            loss = chinchilla_loss(n * 1e4, d * 1e4) * (1 + 0.003 * rng.standard_normal())
            rows.append({"run_id": f"r{int(n)}", "params": n, "samples": 4096,
                         "samples_seen": d, "step": step, "flops": 6 * n * d,
                         "status": "finished", "val_loss": loss})
    curves = pd.DataFrame(rows)
    finals = curves[curves["step"] == 20]
    target = {"compute": float(curves["flops"].max()) * 3}
    problem = compute_problem(finals, curves, target, "val_loss")
    assert len(problem.folds) >= 2
    kept = [frozenset(f.left["run_id"]) for f in problem.folds]
    assert len(kept) == len(set(kept))  # no fold twice
    p = predict(curves, target, n_bootstrap=10)
    rows = p.backtests[p.backtests["law"] == "PowerLaw"].set_index("k")
    for fold in problem.folds:  # each fold's prediction is the law fitted to that fold
        law = PowerLaw(n_bootstrap=0).fit(fold.left_slice, x="flops", y="val_loss")
        direct = float(np.asarray(law.predict(fold.held["flops"].to_numpy(float)))[0])
        assert rows.loc[fold.k, "prediction"] == pytest.approx(direct, rel=1e-6)
