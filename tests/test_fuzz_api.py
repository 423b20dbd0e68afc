"""Bad input to the Python API and to ``scalelab report``: one sentence, before any work.

Issue 18's fuzz test, API half. Every bad call below must raise a
:class:`~scalelab.ScalelabError` (a ValueError; an :class:`~scalelab.InputTypeError`
where the argument is of the wrong kind, which is a TypeError too) whose message is one
sentence — one line, ending with a full stop — that names the offending argument or
column, and must leave no file behind. The cases the issue found silently wrong are
checked against closed forms: what is refused now, and what the mended input gives.
"""

from __future__ import annotations

import math
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest

from scalelab import InputTypeError, ScalelabError, ScalelabWarning, TableError
from scalelab import calibration as cal
from scalelab import laws
from scalelab.laws.base import check_metric_column
from scalelab.runs import load_runs

# -------------------------------------------------------------------------- the data
N = np.array([1e5, 3e5, 1e6, 3e6, 1e7, 3e7])
TRUE = {"E": 1.5, "A": 300.0, "alpha": 0.3}
LOSS = TRUE["E"] + TRUE["A"] * N ** -TRUE["alpha"]
TABLE = pd.DataFrame({"params": N, "val_loss": LOSS})
CURVES = pd.DataFrame({"run_id": np.repeat(["a", "b", "c"], 3),
                       "params": np.repeat([1e5, 1e6, 1e7], 3),
                       "flops": [1e9, 1e10, 1e11] * 3,
                       "val_loss": [3.0, 2.0, 1.5, 3.2, 1.9, 1.2, 3.5, 2.2, 1.1]})
RNG = np.random.default_rng(0)
PROBS = RNG.dirichlet(np.ones(3), size=40)
LABELS = RNG.integers(0, 3, 40)
P_BINARY = RNG.uniform(size=40)
Y_BINARY = (RNG.uniform(size=40) < P_BINARY).astype(int)
OBS = RNG.normal(size=8)
ENS = RNG.normal(size=(5, 8))


def _fitted_power_law():
    return laws.PowerLaw(n_bootstrap=10).fit(TABLE)


def _fitted_chinchilla():
    n, d = np.meshgrid([1e6, 1e7, 1e8], [1e7, 1e8, 1e9])
    loss = 1.7 + 400 / n ** 0.34 + 410 / d ** 0.28
    return laws.ChinchillaLaw(n_bootstrap=0).fit(params=n.ravel(), samples=d.ravel(),
                                                 y=loss.ravel())


def _report_api():
    import scalelab.report

    return scalelab.report


def _with(**changes):
    return TABLE.assign(**changes)


def _row_inf(column):
    table = TABLE.copy()
    table.loc[2, column] = np.inf
    return table


PowerLaw, ChinchillaLaw = laws.PowerLaw, laws.ChinchillaLaw

# (id, call, words the sentence must name, the error class)
BAD_CALLS = [
    # --- laws: the table -------------------------------------------------------------
    ("power-empty-table", lambda: PowerLaw().fit(TABLE.iloc[:0]), "no rows", TableError),
    ("power-empty-frame", lambda: PowerLaw().fit(pd.DataFrame()), "params", TableError),
    ("power-empty-dict", lambda: PowerLaw().fit({}), "params", TableError),
    ("power-list-data", lambda: PowerLaw().fit([1, 2, 3]), "data", InputTypeError),
    ("power-dict-ragged", lambda: PowerLaw().fit({"params": N, "val_loss": LOSS[:3]}),
     "lengths", TableError),
    ("power-missing-column", lambda: PowerLaw().fit(TABLE, y="loss"), "loss", TableError),
    ("power-missing-group", lambda: PowerLaw().fit(TABLE, group="variant"), "variant",
     TableError),
    ("power-inf-x", lambda: PowerLaw().fit(_row_inf("params")), "params", TableError),
    ("power-inf-y", lambda: PowerLaw().fit(_row_inf("val_loss")), "val_loss", TableError),
    ("power-nan-y", lambda: PowerLaw().fit(_with(val_loss=np.nan)), "val_loss", TableError),
    ("power-string-y", lambda: PowerLaw().fit(_with(val_loss="high")), "y", TableError),
    ("power-negative-y", lambda: PowerLaw().fit(_with(val_loss=-LOSS)), "y", TableError),
    ("power-zero-x", lambda: PowerLaw().fit(_with(params=0.0)), "x", TableError),
    ("power-scalar-x", lambda: PowerLaw().fit(x=3, y=LOSS), "x", InputTypeError),
    ("power-ragged-arrays", lambda: PowerLaw().fit(x=N, y=LOSS[:4]), "lengths", TableError),
    ("power-two-sizes", lambda: PowerLaw().fit(x=[1e5, 1e6, 1e5, 1e6], y=[3, 2, 3, 2]),
     "distinct x", TableError),
    ("chinchilla-two-n", lambda: ChinchillaLaw(n_bootstrap=0).fit(
        params=np.repeat([1e6, 1e7], 5), samples=np.tile(np.logspace(6, 9, 5), 2),
        y=np.linspace(3, 2, 10)), "params", TableError),
    ("chinchilla-two-d", lambda: ChinchillaLaw(n_bootstrap=0).fit(
        params=np.tile(np.logspace(6, 9, 5), 2), samples=np.repeat([1e6, 1e7], 5),
        y=np.linspace(3, 2, 10)), "samples", TableError),
    # --- laws: hyper-parameters, checked when fitting -----------------------------------
    ("huber-zero", lambda: PowerLaw(huber_delta=0).fit(TABLE), "huber_delta", ScalelabError),
    ("huber-negative", lambda: PowerLaw(huber_delta=-1e-3).fit(TABLE), "huber_delta",
     ScalelabError),
    ("huber-nan", lambda: PowerLaw(huber_delta=float("nan")).fit(TABLE), "huber_delta",
     ScalelabError),
    ("n-bootstrap-string", lambda: PowerLaw(n_bootstrap="10").fit(TABLE), "n_bootstrap",
     ScalelabError),
    ("max-iter-zero", lambda: PowerLaw(max_iter=0).fit(TABLE), "max_iter", ScalelabError),
    ("method-unknown", lambda: PowerLaw(method="adam").fit(TABLE), "method", ScalelabError),
    ("drop-highest-all", lambda: PowerLaw(drop_highest=6).fit(TABLE), "drop_highest",
     ScalelabError),
    ("fixed-unknown", lambda: PowerLaw(fixed={"Q": 1.0}).fit(TABLE), "Q", ScalelabError),
    ("fixed-string", lambda: PowerLaw(fixed={"E": "a"}).fit(TABLE), "fixed", ScalelabError),
    ("fixed-negative-scale", lambda: PowerLaw(fixed={"E": -1.0}).fit(TABLE), "E",
     ScalelabError),
    ("bounds-not-pair", lambda: PowerLaw(bounds={"alpha": 1.0}).fit(TABLE), "bounds",
     ScalelabError),
    ("bounds-reversed", lambda: PowerLaw(bounds={"alpha": (2, 1)}, n_bootstrap=0).fit(TABLE),
     "bounds", ScalelabError),
    ("starts-words", lambda: PowerLaw(starts={"alpha": "a"}).fit(TABLE), "starts",
     ScalelabError),
    ("shared-string", lambda: PowerLaw(shared="alpha").fit(TABLE), "shared", ScalelabError),
    ("set-params-unknown", lambda: PowerLaw().set_params(delta=1), "delta", ScalelabError),
    ("annealing-decay", lambda: laws.AnnealingLaw(decay=2.0).fit(TABLE), "decay",
     ScalelabError),
    # --- laws: predict -----------------------------------------------------------------
    ("predict-unfitted", lambda: PowerLaw().predict(x=1e8), "fit", ScalelabError),
    ("predict-nan", lambda: _fitted_power_law().predict(x=np.nan), "x", ScalelabError),
    ("predict-negative", lambda: _fitted_power_law().predict(x=-1e8), "x", ScalelabError),
    ("predict-zero", lambda: _fitted_power_law().predict(x=[1e8, 0.0]), "x", ScalelabError),
    ("predict-words", lambda: _fitted_power_law().predict(x="big"), "x", InputTypeError),
    ("predict-unknown-keyword", lambda: _fitted_power_law().predict(x=1e8, z=1), "z",
     ScalelabError),
    ("predict-missing-keyword", lambda: _fitted_chinchilla().predict(N=1e9), "D=",
     ScalelabError),
    ("interval-level", lambda: _fitted_power_law().predict_interval(x=1e8, level=1.5),
     "level", ScalelabError),
    ("interval-kind", lambda: _fitted_power_law().predict_interval(x=1e8, kind="median"),
     "kind", ScalelabError),
    ("interval-no-bootstrap", lambda: PowerLaw(n_bootstrap=0).fit(TABLE).conf_int(),
     "n_bootstrap", ScalelabError),
    # --- laws: backtest, allocation, crossover -------------------------------------------
    ("backtest-too-few", lambda: laws.backtest(PowerLaw(n_bootstrap=0), TABLE.iloc[:4],
                                                x="params"), "points", TableError),
    ("backtest-empty", lambda: laws.backtest(PowerLaw(), TABLE.iloc[:0], x="params"),
     "no rows", TableError),
    ("backtest-not-law", lambda: laws.backtest("PowerLaw", TABLE, x="params"), "law",
     InputTypeError),
    ("backtest-fraction", lambda: laws.backtest(PowerLaw(), TABLE, x="params",
                                                 size_fractions=(0.0,)), "size fractions",
     ScalelabError),
    ("envelope-final-rows", lambda: laws.envelope_allocation(CURVES.groupby("run_id").tail(1)),
     "curves", TableError),
    ("envelope-budgets", lambda: laws.envelope_allocation(CURVES, n_budgets=-1), "n_budgets",
     ScalelabError),
    ("envelope-words", lambda: laws.envelope_allocation(CURVES.assign(flops="many")), "flops",
     TableError),
    ("isoflop-too-few", lambda: laws.isoflop_allocation(CURVES.groupby("run_id").tail(1)),
     "budgets", TableError),
    ("isoflop-words", lambda: laws.isoflop_allocation(CURVES.assign(params="big")), "params",
     TableError),
    ("loss-at-flops-negative", lambda: laws.loss_at_flops(CURVES, [-1.0]), "budgets",
     ScalelabError),
    ("crossover-not-law", lambda: laws.crossover("a", _fitted_power_law(), 1e5, 1e9),
     "law_a", InputTypeError),
    ("crossover-range", lambda: laws.crossover(_fitted_power_law(), _fitted_power_law(),
                                               1e9, 1e5), "lower", ScalelabError),
    ("compute-optimal-law", lambda: laws.compute_optimal(_fitted_power_law(), 1e20),
     "ChinchillaLaw", ScalelabError),
    ("annealing-areas-negative", lambda: laws.annealing_areas([1e-3, -1e-3]), "learning rates",
     TableError),
    # --- calibration: classification ---------------------------------------------------
    ("ece-n-one", lambda: cal.ece(PROBS[:1], LABELS[:1]), "2 points", ScalelabError),
    ("calibration-error-n-one", lambda: cal.calibration_error(PROBS[:1], LABELS[:1]),
     "2 points", ScalelabError),
    ("ece-bins-over-n", lambda: cal.ece(PROBS[:10], LABELS[:10], bins=15), "bins",
     ScalelabError),
    ("calibration-error-bins-over-n", lambda: cal.calibration_error(PROBS[:20], LABELS[:20]),
     "bins", ScalelabError),
    ("ece-unique-all-distinct", lambda: cal.ece(P_BINARY, Y_BINARY, binning="unique",
                                                 binary="p_positive"), "binning", ScalelabError),
    ("ece-bins-zero", lambda: cal.ece(PROBS, LABELS, bins=0), "bins", ScalelabError),
    ("ece-binning-unknown", lambda: cal.ece(PROBS, LABELS, binning="quantile"), "binning",
     ScalelabError),
    ("ece-norm-unknown", lambda: cal.ece(PROBS, LABELS, norm="l3"), "norm", ScalelabError),
    ("ece-labels-out-of-range", lambda: cal.ece(PROBS, LABELS + 3), "labels", ScalelabError),
    ("ece-labels-shape", lambda: cal.ece(PROBS, LABELS[:5]), "labels", ScalelabError),
    ("ece-labels-fractional", lambda: cal.ece(PROBS, LABELS + 0.5), "labels", ScalelabError),
    ("ece-labels-words", lambda: cal.ece(PROBS, LABELS.astype(str)), "labels", InputTypeError),
    ("ece-probs-words", lambda: cal.ece(PROBS.astype(str), LABELS), "probs", InputTypeError),
    ("ece-zero-d", lambda: cal.ece(np.float64(0.3), 1), "probs", ScalelabError),
    ("ece-logits", lambda: cal.ece(PROBS * 3 - 1, LABELS), "logits", ScalelabError),
    ("ece-rows-unnormalised", lambda: cal.ece(PROBS * 0.9, LABELS), "sum to 1", ScalelabError),
    ("ece-float16-unnormalised", lambda: cal.ece((PROBS * 0.98).astype(np.float16), LABELS),
     "sum to 1", ScalelabError),
    ("ece-nan", lambda: cal.ece(np.where(PROBS == PROBS[0, 0], np.nan, PROBS), LABELS), "NaN",
     ScalelabError),
    ("ece-binary-ambiguous", lambda: cal.ece(P_BINARY, Y_BINARY), "binary", ScalelabError),
    ("calibration-error-p", lambda: cal.calibration_error(PROBS, LABELS, p=0), "p",
     ScalelabError),
    ("brier-empty", lambda: cal.brier_score(PROBS[:0], LABELS[:0]), "probs", ScalelabError),
    ("bootstrap-n-one", lambda: cal.bootstrap_ci(cal.brier_score, PROBS[:1], LABELS[:1]),
     "2 points", ScalelabError),
    ("bootstrap-not-metric", lambda: cal.bootstrap_ci("ece", PROBS, LABELS), "metric",
     InputTypeError),
    ("bootstrap-level", lambda: cal.bootstrap_ci(cal.ece, PROBS, LABELS, level=90), "level",
     ScalelabError),
    # --- calibration: recalibrators --------------------------------------------------------
    ("temperature-empty", lambda: cal.TemperatureScaling().fit(np.zeros((0, 3)),
                                                               np.zeros(0, int)), "samples",
     ScalelabError),
    ("temperature-words", lambda: cal.TemperatureScaling().fit(np.array([["a", "b"]] * 3),
                                                               [0, 1, 0]), "logits",
     InputTypeError),
    ("temperature-shapes", lambda: cal.TemperatureScaling().fit(np.zeros((4, 3)), [0, 1]),
     "labels", ScalelabError),
    ("temperature-labels", lambda: cal.TemperatureScaling().fit(np.zeros((4, 3)), [0, 1, 2, 7]),
     "labels", ScalelabError),
    ("temperature-unfitted", lambda: cal.TemperatureScaling().predict_proba(PROBS), "fit",
     ScalelabError),
    ("histogram-bins-zero", lambda: cal.HistogramBinning(bins=0).fit(P_BINARY, Y_BINARY),
     "bins", ScalelabError),
    ("histogram-bins-float", lambda: cal.HistogramBinning(bins=2.5).fit(P_BINARY, Y_BINARY),
     "bins", ScalelabError),
    ("histogram-binning", lambda: cal.HistogramBinning(binning="x").fit(P_BINARY, Y_BINARY),
     "binning", ScalelabError),
    ("histogram-class-probs", lambda: cal.HistogramBinning().fit(PROBS, LABELS), "probs",
     ScalelabError),
    ("scaling-binning-bins", lambda: cal.ScalingBinning(bins=0).fit(P_BINARY, Y_BINARY),
     "bins", ScalelabError),
    ("scaling-binning-class-probs", lambda: cal.ScalingBinning().fit(PROBS, LABELS),
     "ScalingBinning", ScalelabError),
    ("platt-max-iter", lambda: cal.PlattScaling(max_iter=0).fit(P_BINARY, Y_BINARY),
     "max_iter", ScalelabError),
    ("platt-tol", lambda: cal.PlattScaling(tol=-1.0).fit(P_BINARY, Y_BINARY), "tol",
     ScalelabError),
    ("platt-one-class", lambda: cal.PlattScaling().fit(P_BINARY, np.zeros(40, int)), "labels",
     ScalelabError),
    ("isotonic-empty", lambda: cal.IsotonicCalibrator().fit(P_BINARY[:0], Y_BINARY[:0]),
     "probs", ScalelabError),
    ("isotonic-predict-range", lambda: cal.IsotonicCalibrator().fit(P_BINARY, Y_BINARY)
     .predict_proba(P_BINARY + 1), "probs", ScalelabError),
    # --- calibration: ensemble scores ------------------------------------------------------
    ("crps-empty-grid", lambda: cal.crps_ensemble(np.zeros(0), np.zeros((5, 0))), "empty",
     ScalelabError),
    ("crps-estimator", lambda: cal.crps_ensemble(OBS, ENS, estimator="exact"), "estimator",
     ScalelabError),
    ("crps-alpha", lambda: cal.crps_ensemble(OBS, ENS, estimator="afair", alpha=2.0), "alpha",
     ScalelabError),
    ("crps-axis-float", lambda: cal.crps_ensemble(OBS, ENS, axis=0.0), "axis", InputTypeError),
    ("crps-axis-range", lambda: cal.crps_ensemble(OBS, ENS, axis=3), "axis", ScalelabError),
    ("crps-shapes", lambda: cal.crps_ensemble(OBS[:3], ENS), "obs", ScalelabError),
    ("crps-scalar-ensemble", lambda: cal.crps_ensemble(1.0, 2.0), "ens", ScalelabError),
    ("crps-words", lambda: cal.crps_ensemble(OBS, ENS.astype(str)), "ens", InputTypeError),
    ("crps-fair-one-member", lambda: cal.crps_ensemble(OBS, ENS[:1], estimator="fair"),
     "members", ScalelabError),
    ("crps-inf", lambda: cal.crps_ensemble(OBS, np.where(ENS == ENS[0, 0], np.inf, ENS)),
     "infinite",
     ScalelabError),
    ("crps-weights", lambda: cal.crps_ensemble(OBS, ENS, reduce_axes="all",
                                               weights=-np.ones(8)), "weights", ScalelabError),
    ("spread-skill-undefined", lambda: cal.spread_skill_ratio(np.zeros(8), np.zeros((5, 8))),
     "undefined", ScalelabError),
    ("spread-skill-empty", lambda: cal.spread_skill_ratio(np.zeros(0), np.zeros((5, 0))),
     "empty", ScalelabError),
    ("spread-skill-no-reduction", lambda: cal.spread_skill_ratio(OBS, ENS, reduce_axes=None),
     "reduce_axes", ScalelabError),
    ("rank-histogram-nan", lambda: cal.rank_histogram(OBS, np.where(ENS == ENS[0, 0], np.nan,
                                                                    ENS)),
     "NaN", ScalelabError),
    ("rank-flatness-negative", lambda: cal.rank_histogram_flatness([3, -1, 2]), "counts",
     ScalelabError),
    ("coverage-level", lambda: cal.interval_coverage(OBS, ENS, level=1.0), "level",
     ScalelabError),
    ("quantile-levels", lambda: cal.quantile_score(OBS, ENS.T, [0.1, 0.5]), "levels",
     ScalelabError),
    # --- the report's functions (run in the test's empty working folder) -------------------
    ("report-not-a-table", lambda: _report_api().write_report([1, 2], "report.pdf"), "table",
     ScalelabError),
    ("report-not-a-pdf", lambda: _report_api().write_report(TABLE, "report.png"), "PDF",
     ScalelabError),
    ("report-no-metric", lambda: _report_api().write_report(TABLE, "report.pdf", y="val_crps"),
     "val_crps", ScalelabError),
    ("report-metric-words", lambda: _report_api().write_report(_with(val_loss="low"),
                                                               "report.pdf"), "val_loss",
     ScalelabError),
    ("report-target", lambda: _report_api().write_report(TABLE, "report.pdf",
                                                         targets=["params=many"]), "many",
     ScalelabError),
    ("report-unwritable", lambda: _report_api().write_report(TABLE, "/proc/none/report.pdf"),
     "writable", ScalelabError),
    ("analyse-not-context", lambda: _report_api().analyse(TABLE), "ReportContext",
     ScalelabError),
    ("fit-power-laws-list", lambda: _report_api().fit_power_laws([1, 2]), "DataFrame",
     TableError),
    # --- the runs table --------------------------------------------------------------------
    ("load-runs-int", lambda: load_runs(42), "source", InputTypeError),
    ("load-runs-status", lambda: load_runs(TABLE, status="done"), "status", TableError),
    ("load-runs-sweep-column", lambda: load_runs(TABLE, sweep="a"), "sweep", TableError),
]

# --- issue 25, second round: silent numbers, tracebacks and unclear sentences ---------------
SHUFFLED = pd.Series(LOSS).sample(frac=1, random_state=1)
MIXED = pd.concat([TABLE.assign(loss_variant="mse"),
                   TABLE.assign(loss_variant="crps_fair", val_loss=LOSS / 2)], ignore_index=True)
FIELD_OBS, FIELD_ENS = np.zeros((2, 4)), RNG.normal(size=(5, 2, 4))
ROW_ZERO = np.array([[1.0] * 4, [0.0] * 4])  # the second row of the grid weighs nothing
RUNS = TABLE.assign(run_id=list("abcdef"), samples=64)

BAD_CALLS += [
    # laws: inputs numpy or pandas would read silently wrong
    ("power-series-labels-differ", lambda: PowerLaw().fit(x=pd.Series(N),
                                                          y=pd.Series(LOSS, index=N)), "y",
     TableError),
    ("power-series-vs-table-index", lambda: PowerLaw().fit(TABLE, y=pd.Series(LOSS, index=N)),
     "table", TableError),
    ("power-2d-x", lambda: PowerLaw().fit(x=np.column_stack([N, N]), y=np.r_[LOSS, LOSS]),
     "shape (6, 2)", TableError),
    ("power-2d-y", lambda: PowerLaw().fit(x=np.r_[N, N], y=np.column_stack([LOSS, LOSS])),
     "y", TableError),
    ("power-dict-2d", lambda: PowerLaw().fit({"params": np.column_stack([N, N]),
                                              "val_loss": np.r_[LOSS, LOSS]}), "params",
     TableError),
    ("power-ragged-list", lambda: PowerLaw().fit(x=[[1e5, 1e6], [1e7]], y=[3, 2, 1]), "ragged",
     TableError),
    ("power-datetime-x", lambda: PowerLaw().fit(x=pd.Series(pd.to_datetime(N * 1e9)), y=LOSS),
     "dates", InputTypeError),
    ("power-timedelta-x", lambda: PowerLaw().fit(x=pd.to_timedelta(N, unit="s"), y=LOSS),
     "durations", InputTypeError),
    ("power-bool-y", lambda: PowerLaw().fit(x=N, y=LOSS > 2), "True/False", InputTypeError),
    ("power-bool-column", lambda: PowerLaw().fit(_with(val_loss=LOSS > 2)), "val_loss",
     InputTypeError),
    ("power-object-bools", lambda: PowerLaw().fit(x=N, y=[True, False] * 3), "True/False",
     InputTypeError),
    ("power-complex-y", lambda: PowerLaw().fit(x=N, y=LOSS + 0j), "complex", InputTypeError),
    ("power-duplicate-columns", lambda: PowerLaw().fit(pd.concat([TABLE, TABLE[["val_loss"]]],
                                                                 axis=1)),
     "2 columns named 'val_loss'", TableError),
    ("power-group-missing", lambda: PowerLaw().fit(pd.concat([TABLE, TABLE]),
                                                   group=np.array(["a"] * 6 + [None] * 6)),
     "group has 6 missing values", TableError),
    ("power-mixed-variants", lambda: PowerLaw().fit(MIXED), "loss_variant", TableError),
    ("power-mixed-variants-other-group", lambda: PowerLaw().fit(
        MIXED.assign(samples=64), group="samples"), "group='loss_variant'", TableError),
    ("power-e-fixed-one-x", lambda: PowerLaw(fixed={"E": 1.5}).fit(
        x=[1e5, 1e5, 1e5], y=[3, 3, 3]), "same x", TableError),
    ("predict-true", lambda: _fitted_power_law().predict(x=True), "True/False", InputTypeError),
    ("predict-bool-array", lambda: _fitted_power_law().predict(x=np.array([True, False])),
     "x", InputTypeError),
    ("predict-list-with-a-bool", lambda: _fitted_power_law().predict(x=[1e8, True]),
     "True/False", InputTypeError),
    ("power-2d-x-with-table", lambda: PowerLaw().fit(TABLE, x=np.column_stack([N, N])),
     "shape (6, 2)", TableError),
    ("predict-date", lambda: _fitted_power_law().predict(x=np.datetime64("2024-01-01")),
     "dates", InputTypeError),
    ("predict-chinchilla-bool", lambda: _fitted_chinchilla().predict(N=1e9, D=True),
     "D (the samples)", InputTypeError),
    ("interval-level-percent", lambda: _fitted_power_law().predict_interval(x=1e8, level="90%"),
     "level", ScalelabError),
    ("interval-level-bool", lambda: _fitted_power_law().predict_interval(x=1e8, level=True),
     "level", ScalelabError),
    ("conf-int-level-percent", lambda: _fitted_power_law().conf_int("95%"), "level",
     ScalelabError),
    ("compute-optimal-nan", lambda: laws.compute_optimal(_fitted_chinchilla(), np.nan), "flops",
     ScalelabError),
    ("compute-optimal-inf", lambda: laws.compute_optimal(_fitted_chinchilla(), [1e20, np.inf]),
     "flops", ScalelabError),
    ("compute-optimal-bool", lambda: laws.compute_optimal(_fitted_chinchilla(), True), "flops",
     InputTypeError),
    ("compute-optimal-empty", lambda: laws.compute_optimal(_fitted_chinchilla(), []), "flops",
     ScalelabError),
    ("compute-optimal-level", lambda: laws.compute_optimal(_fitted_chinchilla(), 1e20,
                                                           level="90%"), "level",
     ScalelabError),
    ("backtest-no-fractions", lambda: laws.backtest(PowerLaw(), TABLE, x="params",
                                                    size_fractions=()), "size_fractions",
     ScalelabError),
    ("backtest-fraction-string", lambda: laws.backtest(PowerLaw(), TABLE, x="params",
                                                       size_fractions="0.5"), "size_fractions",
     InputTypeError),
    ("backtest-fraction-bool", lambda: laws.backtest(PowerLaw(), TABLE, x="params",
                                                     size_fractions=(True,)), "size fractions",
     ScalelabError),
    ("backtest-duplicate-columns", lambda: laws.backtest(
        PowerLaw(), pd.concat([TABLE, TABLE[["params"]]], axis=1), x="params"), "params",
     TableError),
    ("backtest-level-percent", lambda: laws.backtest(PowerLaw(n_bootstrap=10), TABLE,
                                                     x="params", level="90%"), "level",
     ScalelabError),
    ("crossover-bool", lambda: laws.crossover(_fitted_power_law(), _fitted_power_law(), True,
                                              1e9), "lower", InputTypeError),
    ("annealing-areas-bool", lambda: laws.annealing_areas([True, False, True]), "lr",
     TableError),
    ("metric-is-params", lambda: check_metric_column("params", TABLE.columns), "scaling axis",
     TableError),
    ("metric-is-flops", lambda: check_metric_column("flops", ["flops", "val_loss"]), "flops",
     TableError),
    ("metric-is-step", lambda: check_metric_column("step", ["step", "val_loss"]), "step",
     TableError),
    ("metric-is-setting", lambda: check_metric_column("lr", ["lr", "val_loss"]), "lr",
     TableError),
    ("metric-missing", lambda: check_metric_column("val_crps", TABLE.columns), "val_crps",
     TableError),
    ("metric-not-a-name", lambda: check_metric_column(3, TABLE.columns), "y", InputTypeError),
    ("predict-duplicate-metric", lambda: laws.predict(
        pd.concat([RUNS, RUNS[["val_loss"]]], axis=1), "params=1e8"), "2 columns named",
     TableError),
    ("result-rows-duplicate-size", lambda: laws.result_rows(
        pd.concat([RUNS, RUNS[["params"]]], axis=1)), "'params'", TableError),
    # calibration
    ("ece-bins-true", lambda: cal.ece(PROBS, LABELS, bins=True), "bins", ScalelabError),
    ("ece-bins-float", lambda: cal.ece(PROBS, LABELS, bins=10.0), "bins", ScalelabError),
    ("calibration-error-debias-words", lambda: cal.calibration_error(PROBS, LABELS, bins=5,
                                                                     debias="False"), "debias",
     InputTypeError),
    ("calibration-error-p-true", lambda: cal.calibration_error(PROBS, LABELS, p=True), "p",
     ScalelabError),
    ("reliability-bins-true", lambda: cal.reliability_curve(PROBS, LABELS, bins=True), "bins",
     ScalelabError),
    ("bootstrap-resamples-true", lambda: cal.bootstrap_ci(cal.brier_score, PROBS, LABELS,
                                                          resamples=True), "resamples",
     ScalelabError),
    ("ece-ragged", lambda: cal.ece([[0.5, 0.5], [1.0]], [0, 1]), "probs", ScalelabError),
    ("ece-labels-ragged", lambda: cal.ece(PROBS[:2], [[0], [1, 2]]), "labels", ScalelabError),
    ("brier-ragged", lambda: cal.brier_score([[0.5, 0.5], [1.0]], [0, 1]), "probs",
     ScalelabError),
    ("temperature-ragged", lambda: cal.TemperatureScaling().fit([[0.5, 0.5], [1.0]], [0, 1]),
     "logits", ScalelabError),
    ("crps-ragged", lambda: cal.crps_ensemble([1.0, 2.0], [[1.0, 2.0], [3.0]]), "ens",
     ScalelabError),
    ("crps-reduce-axes-float", lambda: cal.crps_ensemble(OBS, ENS, reduce_axes=0.5),
     "reduce_axes", InputTypeError),
    ("crps-reduce-axes-float-tuple", lambda: cal.crps_ensemble(OBS, ENS, reduce_axes=(0.5,)),
     "reduce_axes", InputTypeError),
    ("crps-reduce-axes-bool", lambda: cal.crps_ensemble(OBS, ENS, reduce_axes=True),
     "reduce_axes", InputTypeError),
    ("crps-zero-weight-row", lambda: cal.crps_ensemble(FIELD_OBS, FIELD_ENS, reduce_axes=1,
                                                       weights=ROW_ZERO), "weights",
     ScalelabError),
    ("spread-skill-zero-weight-row", lambda: cal.spread_skill_ratio(
        FIELD_OBS, FIELD_ENS, reduce_axes=1, weights=ROW_ZERO), "weights", ScalelabError),
    ("coverage-zero-weight-row", lambda: cal.interval_coverage(
        FIELD_OBS, FIELD_ENS, reduce_axes=1, weights=ROW_ZERO), "weights", ScalelabError),
    ("crps-weights-ragged", lambda: cal.crps_ensemble(OBS, ENS, reduce_axes="all",
                                                      weights=[[1.0, 2.0], [1.0]]), "weights",
     ScalelabError),
    ("crps-alpha-string", lambda: cal.crps_ensemble(OBS, ENS, estimator="afair", alpha="0.9"),
     "alpha", ScalelabError),
    ("coverage-level-percent", lambda: cal.interval_coverage(OBS, ENS, level="90%"), "level",
     ScalelabError),
    ("bootstrap-level-bool", lambda: cal.bootstrap_ci(cal.brier_score, PROBS, LABELS,
                                                      level=True), "level", ScalelabError),
    ("flatness-nan", lambda: cal.rank_histogram_flatness([3, np.nan, 2]), "NaN", ScalelabError),
    ("flatness-inf", lambda: cal.rank_histogram_flatness([3, np.inf, 2]), "counts",
     ScalelabError),
    ("rank-histogram-seed-words", lambda: cal.rank_histogram(OBS, ENS, seed="a"), "seed",
     ScalelabError),
    ("pit-seed-negative", lambda: cal.pit(OBS, ENS, seed=-1), "seed", ScalelabError),
    ("calibration-error-seed-float", lambda: cal.calibration_error(PROBS, LABELS, bins=5,
                                                                   p=3, seed=1.5), "seed",
     ScalelabError),
]


def _one_sentence(message: str) -> None:
    assert "\n" not in message, f"not one line: {message!r}"
    assert message.endswith("."), f"no full stop: {message!r}"
    assert "Traceback" not in message and len(message) < 400, message


@pytest.mark.parametrize("call, names, error", [pytest.param(c, n, e, id=i)
                                                 for i, c, n, e in BAD_CALLS])
def test_bad_api_input_is_one_sentence_naming_it(call, names, error, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # anything written to the working folder would stay here
    with pytest.raises(error) as caught:
        call()
    message = str(caught.value)
    _one_sentence(message)
    assert names.lower() in message.lower(), f"{names!r} not named in: {message}"
    assert list(tmp_path.iterdir()) == []


def test_there_are_sixty_bad_api_inputs_and_the_errors_are_value_or_type_errors():
    assert len(BAD_CALLS) >= 60
    assert issubclass(ScalelabError, ValueError) and issubclass(TableError, ScalelabError)
    assert issubclass(InputTypeError, ScalelabError) and issubclass(InputTypeError, TypeError)


@pytest.mark.parametrize("name, make", [
    ("empty.csv", lambda p: p.write_text("")),
    ("unterminated.csv", lambda p: p.write_text('params,val_loss\n1e5,2.0\n1e6,"1.5\n')),
    ("latin1.csv", lambda p: p.write_bytes("params,nom\n1e5,caf\xe9\n".encode("latin-1"))),
    ("binary.csv", lambda p: p.write_bytes(bytes(range(256)) * 4)),
    ("broken.parquet", lambda p: p.write_bytes(b"not parquet")),
    ("missing.csv", lambda p: None),
])
def test_load_runs_of_an_unreadable_table_is_one_sentence(name, make, tmp_path):
    path = tmp_path / name
    make(path)
    with pytest.raises(TableError) as caught:
        load_runs(path)
    _one_sentence(str(caught.value))
    assert name in str(caught.value)


# ------------------------------------------------ the silent cases, against closed forms
def test_an_infinite_row_is_refused_and_without_it_the_law_is_recovered():
    table = TABLE.copy()
    table.loc[len(table)] = {"params": 1e8, "val_loss": np.inf}  # a diverged run
    with pytest.raises(TableError, match=r"1 row \(val_loss: 1 infinite\)"):
        PowerLaw(n_bootstrap=0).fit(table)
    law = PowerLaw(n_bootstrap=0).fit(table[np.isfinite(table["val_loss"])])
    for name, value in TRUE.items():
        assert law.params_[name] == pytest.approx(value, rel=1e-6)


def test_a_dict_of_columns_fits_as_the_table_does():
    law = PowerLaw(n_bootstrap=0).fit({"params": N, "val_loss": LOSS})
    assert law.params_["alpha"] == pytest.approx(TRUE["alpha"], rel=1e-6)


def test_predict_at_inf_is_the_floor_and_at_nan_refused():
    law = PowerLaw(n_bootstrap=0).fit(TABLE)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert law.predict(x=np.inf) == pytest.approx(TRUE["E"], rel=1e-6)  # lim x→∞ = E
    with pytest.raises(ScalelabError, match="2 bad values"):
        law.predict(x=[1e8, np.nan, -1.0])


def test_two_sizes_do_not_identify_chinchilla_but_do_with_its_floor_fixed():
    n, d = np.meshgrid([1e6, 1e7], np.logspace(7, 10, 6))
    loss = 1.7 + 400 / n ** 0.34 + 410 / d ** 0.28
    data = dict(params=n.ravel(), samples=d.ravel(), y=loss.ravel())
    with pytest.raises(TableError, match="2 distinct values of params"):
        ChinchillaLaw(n_bootstrap=0).fit(**data)
    # with E known, two sizes give A and alpha exactly: L − E − B/D^β = A/N^α at two N
    law = ChinchillaLaw(n_bootstrap=0, fixed={"E": 1.7}).fit(**data)
    assert law.params_["alpha"] == pytest.approx(0.34, rel=1e-4)
    assert law.params_["beta"] == pytest.approx(0.28, rel=1e-4)


def test_calibration_error_of_a_miscalibrated_forecast_is_its_gap_not_zero():
    # every forecast says 0.9 and the event never happens: the error is 0.9 exactly
    p, y = np.full(30, 0.9), np.zeros(30, int)
    assert cal.ece(p, y, binary="p_positive") == pytest.approx(0.9)
    assert cal.calibration_error(p, y, binary="p_positive") == pytest.approx(0.9)
    # the same with bins >= n was 0.0 (debiased bins of one point count 0): now refused
    with pytest.raises(ScalelabError, match="too few"):
        cal.calibration_error(p[:10], y[:10], binary="p_positive")


def test_float16_probabilities_are_accepted_after_a_float16_softmax():
    logits = RNG.normal(size=(2000, 10)).astype(np.float16)
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    p16 = exp / exp.sum(axis=1, keepdims=True)  # a softmax computed in float16
    assert p16.dtype == np.float16 and np.abs(p16.astype(np.float64).sum(1) - 1).max() > 1e-4
    labels = RNG.integers(0, 10, 2000)
    p64 = p16.astype(np.float64)
    # the float16 values exactly, binned as float64 values would be
    for metric in (cal.ece, cal.brier_score, cal.nll):
        assert metric(p16, labels) == pytest.approx(
            metric(p64 / p64.sum(1, keepdims=True), labels), abs=2e-3)
    with pytest.raises(ScalelabError, match="sum to 1"):  # float32 keeps the tight tolerance
        cal.ece((p64 * 1.001).astype(np.float32), labels)


def test_spread_skill_of_degenerate_ensembles():
    obs = np.zeros(6)
    # members 0 and 2 about obs 0: variance 2, ×(M+1)/M = 3; error of the mean 1: √3
    assert cal.spread_skill_ratio(obs, np.stack([obs, obs + 2])) == pytest.approx(math.sqrt(3))
    with pytest.warns(ScalelabWarning, match="zero spread"):
        assert cal.spread_skill_ratio(obs, np.ones((4, 6))) == 0.0
    with pytest.warns(ScalelabWarning, match="ratio is inf"):
        assert cal.spread_skill_ratio(obs, np.stack([obs - 1, obs + 1])) == math.inf
    with pytest.raises(ScalelabError, match="undefined"):
        cal.spread_skill_ratio(obs, np.zeros((4, 6)))


def test_crps_of_one_point_and_of_no_point():
    # members {0, 1}, obs 0: (1/M)Σ|x−y| − 1/(2M²)ΣΣ|x_j−x_k| = 1/2 − 2/8 = 1/4
    assert cal.crps_ensemble(0.0, np.array([0.0, 1.0])) == pytest.approx(0.25)
    with pytest.raises(ScalelabError, match="empty"):
        cal.crps_ensemble(np.zeros((0, 4)), np.zeros((3, 0, 4)), reduce_axes="all")


def test_temperature_that_runs_to_its_bound_is_warned():
    logits = RNG.normal(size=(200, 4))
    with pytest.warns(ScalelabWarning, match="bound"):  # logits unrelated to labels: T → ∞
        cal.TemperatureScaling().fit(logits, RNG.integers(0, 4, 200))
    separable = np.eye(4)[np.arange(200) % 4] * 3.0
    law = cal.TemperatureScaling().fit(separable + RNG.normal(0, 1, (200, 4)), np.arange(200) % 4)
    assert 0.05 < law.temperature_ < 20


# ------------------------- issue 25, second round: mended inputs against closed forms
def _assert_truth(law, rel=1e-6):
    for name, value in TRUE.items():
        assert law.params_[name] == pytest.approx(value, rel=rel), law.params_


def test_series_in_another_order_are_paired_by_label_as_pandas_pairs_them():
    # was E = 6.01, A = 0: the shuffled y paired by position
    _assert_truth(PowerLaw(n_bootstrap=0).fit(x=pd.Series(N), y=SHUFFLED))
    _assert_truth(PowerLaw(n_bootstrap=0).fit(TABLE, y=SHUFFLED))
    _assert_truth(PowerLaw(n_bootstrap=0).fit({"params": pd.Series(N), "val_loss": SHUFFLED}))


def test_a_single_column_or_row_array_is_one_value_per_point():
    _assert_truth(PowerLaw(n_bootstrap=0).fit(x=N[:, None], y=LOSS[None, :]))


def test_arrays_on_one_grid_pair_element_by_element():
    # sizes from np.meshgrid and the losses on that grid: flattened alike, as .ravel() would
    n, d = np.meshgrid([1e6, 1e7, 1e8], [1e7, 1e8, 1e9])
    loss = 1.7 + 400 / n ** 0.34 + 410 / d ** 0.28
    law = ChinchillaLaw(n_bootstrap=0).fit(params=n, samples=d, y=loss)
    for name, value in {"E": 1.7, "A": 400, "B": 410, "alpha": 0.34, "beta": 0.28}.items():
        assert law.params_[name] == pytest.approx(value, rel=1e-4)


def test_with_the_floor_fixed_two_sizes_give_a_and_alpha_exactly():
    # L − E = A·N^−α at two sizes: α = log(r1/r2)/log(N2/N1), A = r1·N1^α
    law = PowerLaw(n_bootstrap=0, fixed={"E": 1.5}).fit(x=N[[0, 3, 0]], y=LOSS[[0, 3, 0]])
    assert law.params_["alpha"] == pytest.approx(0.3, rel=1e-6)
    assert law.params_["A"] == pytest.approx(300.0, rel=1e-6)
    with pytest.raises(TableError, match=r"at least 3 distinct x values to fit E, A and alpha"):
        PowerLaw(n_bootstrap=0).fit(x=N[[0, 3, 0]], y=LOSS[[0, 3, 0]])
    with pytest.raises(TableError, match="same x"):
        PowerLaw(n_bootstrap=0, fixed={"E": 1.5}).fit(x=N[[0, 0]], y=LOSS[[0, 0]])


def test_a_bound_the_fit_ends_at_is_warned_naming_the_parameter():
    with pytest.warns(ScalelabWarning, match=r"alpha ended at its lower bound 0\.5"):
        law = PowerLaw(n_bootstrap=0, bounds={"alpha": (0.5, 1)}).fit(TABLE)
    assert law.params_["alpha"] == pytest.approx(0.5, abs=1e-9)
    with warnings.catch_warnings():  # a bound the optimum lies inside says nothing
        warnings.simplefilter("error")
        _assert_truth(PowerLaw(n_bootstrap=0, bounds={"alpha": (0.1, 1)}).fit(TABLE))


def test_a_metric_that_rises_with_size_is_warned_and_a_falling_one_is_not():
    with pytest.warns(ScalelabWarning, match=r"y rises with x \(Spearman rho = \+1\.00"):
        PowerLaw(n_bootstrap=0).fit(x=N, y=LOSS[::-1])
    with pytest.warns(ScalelabWarning, match=r"val_psnr rises with params"):
        PowerLaw(n_bootstrap=0).fit(TABLE.assign(val_psnr=LOSS[::-1]), y="val_psnr")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _assert_truth(PowerLaw(n_bootstrap=0).fit(TABLE))


def test_loss_variants_are_fitted_one_law_each_with_group():
    law = PowerLaw(n_bootstrap=0).fit(MIXED, group="loss_variant")
    # crps_fair's losses are half mse's: the same alpha, E and A halved
    assert law.params_["E[mse]"] == pytest.approx(1.5, rel=1e-6)
    assert law.params_["A[crps_fair]"] == pytest.approx(150.0, rel=1e-6)
    assert law.params_["alpha[crps_fair]"] == pytest.approx(0.3, rel=1e-6)
    _assert_truth(PowerLaw(n_bootstrap=0).fit(MIXED[MIXED.loss_variant == "mse"]))


def test_numpy_scalars_are_numbers_for_levels_alpha_and_bins():
    law, level = _fitted_power_law(), float(np.float32(0.9))  # the same number as a float
    assert law.predict_interval(x=1e8, level=np.float32(0.9)).equals(
        law.predict_interval(x=1e8, level=level))
    fair = cal.crps_ensemble(OBS, ENS, estimator="fair")
    nrg = cal.crps_ensemble(OBS, ENS, estimator="nrg")
    # afCRPS_α = α·fair + (1 − α)·nrg (Lang et al. 2024)
    np.testing.assert_allclose(cal.crps_ensemble(OBS, ENS, estimator="afair",
                                                 alpha=np.float32(0.9)),
                               float(np.float32(0.9)) * fair + (1 - float(np.float32(0.9))) * nrg)
    assert cal.interval_coverage(OBS, ENS, level=np.float32(0.5)) == \
        cal.interval_coverage(OBS, ENS, level=0.5)
    assert cal.ece(PROBS, LABELS, bins=np.int64(10)) == cal.ece(PROBS, LABELS, bins=10)
    assert cal.bootstrap_ci(cal.brier_score, PROBS, LABELS, level=np.float32(0.9), seed=0) == \
        cal.bootstrap_ci(cal.brier_score, PROBS, LABELS, level=level, seed=0)


def test_weights_zero_on_some_points_of_a_row_weigh_the_rest():
    score = cal.crps_ensemble(FIELD_OBS, FIELD_ENS)
    weights = np.array([[1.0, 0.0, 3.0, 0.0], [0.0, 0.0, 0.0, 2.0]])
    expected = (score * weights).sum(axis=1) / weights.sum(axis=1)
    np.testing.assert_allclose(cal.crps_ensemble(FIELD_OBS, FIELD_ENS, reduce_axes=1,
                                                 weights=weights), expected)
    np.testing.assert_allclose(cal.crps_ensemble(FIELD_OBS, FIELD_ENS, reduce_axes=(1,),
                                                 weights=weights[:1]),
                               (score[:, [0, 2]] * [1, 3]).sum(axis=1) / 4)


def test_rank_flatness_of_a_flat_histogram_is_zero():
    flat = cal.rank_histogram_flatness([5, 5, 5, 5])
    assert flat.chi2 == 0.0 and flat.p_value == 1.0 and flat.delta == 0.0


def test_compute_optimal_at_a_budget_is_the_closed_form():
    law = _fitted_chinchilla()
    E, A, B, alpha, beta = law.params_[["E", "A", "B", "alpha", "beta"]]
    budget = 1e21 / 6
    # N_opt = G·(C/6)^(β/(α+β)), G = (αA/(βB))^(1/(α+β)) (Hoffmann et al. 2022, eq. 4)
    G = (alpha * A / (beta * B)) ** (1 / (alpha + beta))
    row = laws.compute_optimal(law, np.float32(1e21)).iloc[0]
    assert row["params"] == pytest.approx(G * (float(np.float32(1e21)) / 6) ** (beta / (alpha + beta)),
                                          rel=1e-9)
    assert laws.compute_optimal(law, 1e21).iloc[0]["params"] == pytest.approx(
        G * budget ** (beta / (alpha + beta)), rel=1e-12)


def test_a_metric_column_passes_the_check():
    assert check_metric_column("val_loss", TABLE.columns) == "val_loss"
    assert check_metric_column("val_crps", ["params", "val_crps"]) == "val_crps"


def test_load_runs_of_a_wandb_folder_with_an_empty_log_is_one_sentence(tmp_path):
    run = tmp_path / "wandb" / "offline-run-20260101_000000-abc"
    run.mkdir(parents=True)
    (run / "run-abc.wandb").write_bytes(b"")
    with pytest.raises(ScalelabError) as caught:
        load_runs(tmp_path / "wandb")
    _one_sentence(str(caught.value))
    assert "run-abc.wandb" in str(caught.value) and "empty" in str(caught.value)


# ---------------------------------------------------------- fits of many points (issue 25)
def _noisy(n, seed=0):
    rng = np.random.default_rng(seed)
    x = np.exp(rng.uniform(np.log(1e5), np.log(1e9), n))
    return x, (1.5 + 300 * x ** -0.3) * np.exp(rng.normal(0, 0.02, n))


def test_a_screened_fit_reaches_the_optimum_of_every_start_on_every_point(monkeypatch):
    from scalelab.laws import base

    x, y = _noisy(3000)
    screened = PowerLaw(n_bootstrap=0).fit(x=x, y=y)
    assert 3000 > base.SCREEN_POINTS  # this fit was screened on a subsample
    monkeypatch.setattr(base, "GRID_BUDGET", 10**18)  # the old procedure: no screening
    exhaustive = PowerLaw(n_bootstrap=0).fit(x=x, y=y)
    assert screened.objective_ == pytest.approx(exhaustive.objective_, rel=1e-9)
    np.testing.assert_allclose(screened.params_, exhaustive.params_, rtol=1e-5)
    assert screened.params_["alpha"] == pytest.approx(0.3, rel=0.02)


def test_a_fit_of_many_points_holds_memory_in_proportion_to_them():
    import tracemalloc

    x, y = _noisy(200_000)
    tracemalloc.start()
    law = PowerLaw(n_bootstrap=0).fit(x=x, y=y)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # every start on every point at once held (300 starts × 2e5 points × 3) Jacobians:
    # 1.4 GB each; the screened fit holds a few arrays of the points
    assert peak < 150e6, f"{peak / 1e6:.0f} MB"
    assert law.params_["alpha"] == pytest.approx(0.3, rel=0.01)
    assert law.params_["E"] == pytest.approx(1.5, rel=0.01)


def test_bootstrap_and_polish_in_batches_equal_one_batch(monkeypatch):
    from scalelab.laws import base

    x, y = _noisy(60, seed=3)
    whole = PowerLaw(n_bootstrap=12, seed=4).fit(x=x, y=y)
    monkeypatch.setattr(base, "BATCH_BUDGET", 60 * 3 * 5)  # batches of 5 resamples
    batched = PowerLaw(n_bootstrap=12, seed=4).fit(x=x, y=y)
    np.testing.assert_allclose(batched.bootstrap_params_, whole.bootstrap_params_, rtol=1e-10)
    np.testing.assert_allclose(batched.params_, whole.params_, rtol=1e-12)


# ------------------------------------------------------------------- scalelab report
def _sweep_table(widths=(4, 8), samples=(64, 128), diverged=False) -> pd.DataFrame:
    """A runs table like a small sweep's: curves of 4 evaluations per run."""
    rows = []
    for width in widths:
        params = 100.0 * width ** 2
        for d in samples:
            run = f"w{width}-d{d}"
            for step in range(4):
                seen = d * (step + 1) * 4
                loss = 0.2 + 5 * params ** -0.3 + 3 * seen ** -0.3
                rows.append({"run_id": run, "width": width, "params": params, "samples": d,
                             "step": step * 10, "samples_seen": seen,
                             "flops": 6 * params * seen, "val_loss": loss,
                             "status": "finished"})
    table = pd.DataFrame(rows)
    if diverged:  # lr: .inf — one run's loss lost at the first step
        last = table["run_id"] == table["run_id"].iloc[-1]
        table.loc[last, "val_loss"] = None
        table.loc[last, "status"] = "diverged"
    return table


def _report(tmp_path, capsys, source, *extra):
    from scalelab.cli import main

    code = main(["report", str(source), "-o", str(tmp_path / "out" / "report.pdf"), *extra])
    out, err = capsys.readouterr()
    leftovers = [p.name for p in tmp_path.rglob("*.tmp*")]
    assert leftovers == [] and "Traceback" not in out + err
    return code, out, err


BAD_TABLES = {
    "empty": "",
    "header-only": "params,samples,val_loss\n",
    "unterminated": 'params,samples,val_loss\n1e5,64,2.0\n1e6,64,"1.5\n',
    "string-losses": "params,samples,val_loss\n1e5,64,high\n1e6,64,low\n1e7,64,mid\n",
    "no-metric": "params,samples\n1e5,64\n1e6,64\n",
    "latin1": "params,samples,val_loss,nom\n1e5,64,3,caf\xe9\n",
    "binary": None,
    "not-a-pdf": "params,samples,val_loss\n1e5,64,3\n",
}


@pytest.mark.parametrize("name", list(BAD_TABLES))
def test_report_of_a_bad_table_is_one_sentence_and_leaves_nothing(name, tmp_path, capsys):
    path = tmp_path / f"{name}.csv"
    text = BAD_TABLES[name]
    if text is None:
        path.write_bytes(bytes(range(256)) * 4)
    else:
        path.write_bytes(text.encode("latin-1"))
    extra = ["-o", str(tmp_path / "out" / "report.png")] if name == "not-a-pdf" else []
    code, out, err = _report(tmp_path, capsys, path, *extra)
    assert code == 2
    message = err.strip().splitlines()[-1]
    assert message.startswith("scalelab: error: ")
    _one_sentence(message)
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


@pytest.mark.parametrize("name, rows, told", [
    ("nan-inf-negative", "1e8,128,nan\n1e8,128,inf\n2e8,128,-1\n",
     ["left out 1 of 11 runs: val_loss is missing", "left out 1 of 11 runs: val_loss is infinite",
      "left out 1 of 11 runs: val_loss <= 0"]),
    ("negative-params", "-5,128,2.0\nbig,128,2.0\n",
     ["left out 2 of 10 runs: params is missing, not a number or <= 0"]),
], ids=["nan-inf-negative", "negative-params"])
def test_report_counts_the_rows_it_leaves_out_on_stdout(name, rows, told, tmp_path, capsys):
    table = _sweep_table(widths=(4, 6, 8, 12), samples=(64, 128)).groupby("run_id").tail(1)
    path = tmp_path / f"{name}.csv"
    path.write_text(table[["params", "samples", "val_loss"]].to_csv(index=False) + rows)
    code, out, _ = _report(tmp_path, capsys, path)
    assert code == 0 and (tmp_path / "out" / "report.pdf").is_file()
    for sentence in told:
        assert f"report: {sentence}" in out


@pytest.mark.parametrize("diverged", [False, True], ids=["2x2", "2x2-diverged"])
def test_a_two_by_two_sweep_and_a_diverged_run_still_render(diverged, tmp_path):
    from scalelab.report import write_report

    table = _sweep_table(diverged=diverged)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        path = write_report(table, tmp_path / "report.pdf", n_bootstrap=20, png=False)
    assert path.is_file() and path.stat().st_size > 10_000
    told = [str(w.message) for w in caught if issubclass(w.category, ScalelabWarning)]
    assert told == (["left out 1 of 4 runs: not finished (1 diverged)."] if diverged else [])
    assert [p.name for p in tmp_path.iterdir()] == ["report.pdf"]


def test_a_bug_in_a_page_becomes_its_sentence_and_an_interrupt_leaves_nothing(tmp_path,
                                                                              monkeypatch):
    from scalelab.report import pdf
    from scalelab.report.context import ReportContext
    from scalelab.report.pages import render_page

    ctx = ReportContext.build(_sweep_table())

    def page_buggy(ctx, analysis):
        return None.frontier  # the kind of bug the issue met

    with pytest.warns(ScalelabWarning, match="AttributeError"):
        (name, fig), = render_page(page_buggy, ctx, None)
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert name == "buggy" and any("scalelab bug" in t for t in texts)

    def page_interrupted(ctx, analysis):
        raise KeyboardInterrupt

    monkeypatch.setattr(pdf, "PAGES", [pdf.PAGES[0], page_interrupted])
    with pytest.raises(KeyboardInterrupt):
        pdf.write_report(_sweep_table(), tmp_path / "report.pdf", n_bootstrap=0)
    assert list(tmp_path.iterdir()) == []


def test_report_command_in_a_fresh_process_has_no_traceback(tmp_path):
    path = tmp_path / "runs.csv"
    path.write_text('params,samples,val_loss\n1e5,64,2.0\n1e6,64,"1.5\n')
    done = subprocess.run([sys.executable, "-m", "scalelab.cli", "report", str(path)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.startswith("scalelab: error: ") and "runs.csv" in done.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["runs.csv"]
