"""The estimator contract, checked over every law and recalibrator as scikit-learn's
``check_estimator`` checks its estimators (Buitinck et al. 2013, §2–3).

Every class exported by ``scalelab.laws`` that is a :class:`~scalelab.laws.Law`, and every
class exported by ``scalelab.calibration`` with ``fit`` and ``predict_proba``, is found by
itself — a law added later is checked without touching this file, provided its ``fit``
takes its inputs as column keywords (``fit(table, params=..., samples=..., y=...)``); a law
with another ``fit`` gets its example data in ``LAW_EXAMPLES``.

For each: ``fit`` returns self; ``get_params`` / ``set_params`` / ``clone`` round-trip (and
``sklearn.base.clone`` when scikit-learn is installed); a refit on other data is fresh
(every attribute equals a new estimator's fitted on that data: no stale backtest, no
bootstrap draws of the earlier data); use before fit raises one error class,
:class:`scalelab._errors.NotFittedError`; bad hyper-parameters are refused at ``fit``
in one sentence, never at ``__init__``.
"""

import inspect
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import scalelab
import scalelab._estimator
import scalelab.calibration
import scalelab.laws
from scalelab._errors import NotFittedError, ScalelabError
from scalelab.laws import Law, annealing_areas

try:
    from sklearn.base import clone as sklearn_clone
except ImportError:  # scikit-learn is optional: the get_params/set_params round trip stands in
    sklearn_clone = None

BOOTSTRAP = 8  # resamples in the contract fits: enough to hold draws, quick to refit


def _classes(module, keep):
    return sorted({obj for name in module.__all__ if isinstance(obj := getattr(module, name), type)
                   and keep(obj)}, key=lambda c: c.__name__)


LAWS = _classes(scalelab.laws, lambda c: issubclass(c, Law) and c is not Law)
RECALIBRATORS = _classes(scalelab.calibration,
                         lambda c: hasattr(c, "fit") and hasattr(c, "predict_proba"))


# ---- example data -------------------------------------------------------------------
def _column_law_data(law_cls, seed: int) -> tuple[pd.DataFrame, dict]:
    """A table in the law's inputs (one column per fit keyword) with a saturating power-law
    y, and the keywords of ``fit``; ``seed`` changes the noise, the grid and the exponents."""
    keywords = list(law_cls.inputs.values())
    rng = np.random.default_rng(seed)
    per_axis = 12 if len(keywords) == 1 else (5 if len(keywords) == 2 else 4)
    axes = [np.geomspace(10.0 ** (3 + seed + i), 10.0 ** (7 + seed + i), per_axis)
            for i in range(len(keywords))]
    grid = np.meshgrid(*axes, indexing="ij")
    table = pd.DataFrame({k: g.ravel() for k, g in zip(keywords, grid)})
    exponent = 0.3 + 0.05 * seed
    y = 1.5 + sum(40.0 * (i + 1) * table[k] ** -exponent for i, k in enumerate(keywords))
    table["y"] = y * np.exp(rng.normal(0, 0.01, len(table)))
    return table, {**{k: k for k in keywords}, "y": "y"}


def _annealing_data(seed: int) -> tuple[pd.DataFrame, dict]:
    """Loss curves of a constant and a cosine schedule from the law of Tissue et al. 2024."""
    rng = np.random.default_rng(seed)
    steps = 400 + 100 * seed
    rows = []
    for name, lr in {"constant": np.full(steps, 1e-3),
                     "cosine": 1e-3 * 0.5 * (1 + np.cos(np.pi * np.arange(steps) / steps))}.items():
        s1, s2 = annealing_areas(lr)
        loss = 2.0 + 1.5 * s1 ** -(0.5 + 0.05 * seed) - 0.3 * s2
        at = np.arange(10, steps + 1, 10)
        rows.append(pd.DataFrame({"run_id": name, "step": at, "lr_step": lr[at - 1],
                                  "train_loss": loss[at - 1]
                                  * np.exp(rng.normal(0, 0.002, at.size))}))
    return pd.concat(rows, ignore_index=True), {}


def _scaled_annealing_data(seed: int) -> tuple[pd.DataFrame, dict]:
    """Curves of three model sizes under a cosine schedule from E + A·N^(−α) + B·S1^(−β)
    − C·S2 (Tissue et al. 2024's law with Hoffmann et al.'s size term)."""
    rng = np.random.default_rng(seed)
    steps = 400
    lr = 1e-3 * 0.5 * (1 + np.cos(np.pi * np.arange(steps) / steps))
    s1, s2 = annealing_areas(lr)
    at = np.arange(10, steps + 1, 10)
    rows = []
    for n in (1e4, 3e4, 1e5, 3e5):
        loss = 1.0 + 30.0 * n ** -(0.4 + 0.05 * seed) + 0.5 * s1 ** -0.5 - 0.1 * s2
        rows.append(pd.DataFrame({"run_id": f"n{n:g}", "params": n, "step": at,
                                  "lr_step": lr[at - 1],
                                  "val_loss": loss[at - 1] * np.exp(rng.normal(0, 0.002,
                                                                               at.size))}))
    return pd.concat(rows, ignore_index=True), {}


def _data_constrained_data(seed: int) -> tuple[pd.DataFrame, dict]:
    """Runs repeating U distinct samples for 1 to 64 epochs (D = epochs × U ≥ U), with the
    repeated data's worth decaying as in Muennighoff et al. 2023 (R_D* = 15)."""
    rng = np.random.default_rng(seed)
    n, u, epochs = np.meshgrid(np.geomspace(1e6, 1e8, 4), np.geomspace(1e7, 1e9, 3),
                               [1.0, 4.0, 16.0, 64.0], indexing="ij")
    d_eff = u + u * 15.0 * (1 - np.exp(-(epochs - 1) / 15.0))
    exponent = 0.3 + 0.05 * seed
    y = 1.8 + 400.0 * n ** -exponent + 900.0 * d_eff ** -exponent
    table = pd.DataFrame({"params": n.ravel(), "samples": u.ravel(),
                          "samples_seen": (u * epochs).ravel(),
                          "y": y.ravel() * np.exp(rng.normal(0, 0.005, y.size))})
    return table, {"params": "params", "samples_seen": "samples_seen", "samples": "samples",
                   "y": "y"}


def _precision_data(seed: int) -> tuple[pd.DataFrame, dict]:
    """Runs at 2–32 weight bits, N_eff = N(1 − e^(−P/γ)) (Kumar et al. 2024), γ = 2–3."""
    rng = np.random.default_rng(seed)
    n, d, p = np.meshgrid(np.geomspace(1e3, 1e5, 4), np.geomspace(256, 4096, 3),
                          [2.0, 3.0, 4.0, 8.0, 32.0], indexing="ij")
    neff = n * -np.expm1(-p / (2.0 + 0.5 * seed))
    y = 0.01 + 3.0 * neff ** -(0.5 + 0.05 * seed) + 2.0 * d ** -0.45
    table = pd.DataFrame({"params": n.ravel(), "samples": d.ravel(), "bits": p.ravel(),
                          "y": y.ravel() * np.exp(rng.normal(0, 0.005, y.size))})
    return table, {"params": "params", "samples": "samples", "bits": "bits", "y": "y"}


def _qat_fraction_data(seed: int) -> tuple[pd.DataFrame, dict]:
    """FP-then-QAT runs at QAT fractions 0.05–0.9 (fractions lie in (0, 1])."""
    rng = np.random.default_rng(seed)
    n, d, f, p = np.meshgrid([1e3, 1e4, 1e5], [1e4, 1e5, 1e6], [0.05, 0.2, 0.5, 0.9], [2.0, 8.0],
                             indexing="ij")
    s = d / (n * p / 8)
    y = (0.01 + 3.0 * n ** -0.5 + 2.0 * (d * (1 - 0.4 * f)) ** -(0.45 + 0.05 * seed)
         + 0.002 * ((1 - f) * s) ** 0.5 * (f * s) ** -0.4)
    table = pd.DataFrame({"params": n.ravel(), "samples": d.ravel(), "fraction": f.ravel(),
                          "bits": p.ravel(), "y": y.ravel() * np.exp(rng.normal(0, 0.005, y.size))})
    return table, {"params": "params", "samples": "samples", "fraction": "fraction",
                   "bits": "bits", "y": "y"}


#: laws whose ``fit`` does not take its inputs as column keywords, or whose inputs are
#: constrained (U ≤ D, bits, fractions in (0, 1]): {name: data(seed)}
LAW_EXAMPLES = {"AnnealingLaw": _annealing_data, "DataConstrainedLaw": _data_constrained_data,
                "ScaledAnnealingLaw": _scaled_annealing_data, "PrecisionLaw": _precision_data,
                "QATFractionLaw": _qat_fraction_data}


def law_data(law_cls, seed: int = 0):
    if law_cls.__name__ in LAW_EXAMPLES:
        return LAW_EXAMPLES[law_cls.__name__](seed)
    fit_keywords = set(inspect.signature(law_cls.fit).parameters)
    missing = set(law_cls.inputs.values()) - fit_keywords
    assert not missing, (f"{law_cls.__name__}.fit does not take its inputs {sorted(missing)} as "
                         f"keywords; give it example data in LAW_EXAMPLES")
    return _column_law_data(law_cls, seed)


def fit_law(law, seed: int = 0):
    table, columns = law_data(type(law), seed)
    return law.fit(table, **columns)


def recalibrator_data(cls, seed: int = 0):
    rng = np.random.default_rng(seed)
    n = 600 + 200 * seed
    if cls.__name__ == "TemperatureScaling":
        labels = rng.integers(0, 4, n)
        logits = rng.normal(0, 1, (n, 4))
        logits[np.arange(n), labels] += 1.5 + seed
        return logits * 3.0, labels
    p_true = rng.uniform(0.02, 0.98, n)
    labels = (rng.uniform(size=n) < p_true).astype(int)
    logit = np.log(p_true / (1 - p_true)) * (2.0 + seed)  # overconfident scores
    return 1 / (1 + np.exp(-logit)), labels


def new_law(cls):
    return cls().set_params(n_bootstrap=BOOTSTRAP)


# ---- comparing fitted state -----------------------------------------------------------
def assert_same(a, b, where: str) -> None:
    if isinstance(a, pd.DataFrame):
        pd.testing.assert_frame_equal(a, b, obj=where)
    elif isinstance(a, (pd.Series, pd.Index)):
        (pd.testing.assert_series_equal if isinstance(a, pd.Series)
         else pd.testing.assert_index_equal)(a, b, obj=where)
    elif isinstance(a, np.ndarray):
        np.testing.assert_array_equal(a, b, err_msg=where)
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            assert_same(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    elif hasattr(a, "get_params") and hasattr(b, "get_params"):  # a fitted sub-estimator
        assert type(a) is type(b), where
        assert_same_state(a, b, where)
    else:
        assert a == b or (a != a and b != b), f"{where}: {a!r} != {b!r}"


def assert_same_state(a, b, what: str = "") -> None:
    assert sorted(vars(a)) == sorted(vars(b)), \
        f"{what}: attributes differ: {sorted(set(vars(a)) ^ set(vars(b)))}"
    for name in vars(a):
        assert_same(getattr(a, name), getattr(b, name), f"{what}.{name}")


def learned(estimator) -> list[str]:
    return [k for k in vars(estimator) if k.endswith("_") and not k.startswith("_")]


# ---- the contract -------------------------------------------------------------------
def test_every_estimator_is_found():
    assert {c.__name__ for c in LAWS} >= {"PowerLaw", "BrokenPowerLaw", "ChinchillaLaw",
                                          "KaplanLaw", "AnnealingLaw"}
    assert {c.__name__ for c in RECALIBRATORS} == {"TemperatureScaling", "PlattScaling",
                                                   "HistogramBinning", "IsotonicCalibrator",
                                                   "ScalingBinning"}


@pytest.mark.parametrize("cls", LAWS + RECALIBRATORS, ids=lambda c: c.__name__)
def test_params_round_trip_and_clone(cls):
    estimator = cls()
    params = estimator.get_params()
    signature = inspect.signature(cls.__init__).parameters
    assert set(params) == {n for n, p in signature.items() if n != "self"
                           and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
    # __init__ stores its arguments unchanged
    assert all(params[n] is p.default or params[n] == p.default
               for n, p in signature.items() if n in params)
    # set_params(**get_params()) is the identity; set_params returns self
    assert estimator.set_params(**params) is estimator
    assert estimator.get_params() == params
    with pytest.raises(ScalelabError, match="unknown hyper-parameter 'no_such'"):
        estimator.set_params(no_such=1)
    clones = [estimator.clone(), scalelab._estimator.clone(estimator)]
    if sklearn_clone is not None:
        clones.append(sklearn_clone(estimator))
    for copy in clones:
        assert type(copy) is cls and copy is not estimator
        assert copy.get_params() == params
        assert not learned(copy)
    assert repr(estimator).startswith(f"{cls.__name__}(")


@pytest.mark.parametrize("cls", LAWS, ids=lambda c: c.__name__)
def test_law_contract(cls):
    law = new_law(cls)
    assert fit_law(law) is law, "fit must return self"
    assert law.is_fitted and law.bootstrap_params_.shape[0] == BOOTSTRAP
    # the fitted inputs and y are public: the fit's own residuals are recomputed from them
    inputs = law.fitted_inputs_
    assert set(inputs) == set(law.inputs) and law.y_.shape == (law.n_points_,)
    np.testing.assert_allclose(np.log(law.y_) - np.log(law.predict(**inputs)), law.residuals_,
                               rtol=1e-9, atol=1e-12)
    # bootstrap predictions: one row per refit, centred on the interval of predict_interval
    boot = law.predict_bootstrap(**inputs)
    assert boot.shape == (BOOTSTRAP, law.n_points_)
    band = law.predict_interval(level=0.5, kind="mean", **inputs)
    np.testing.assert_allclose(band["lower"], np.quantile(boot, 0.25, axis=0))
    np.testing.assert_allclose(band["upper"], np.quantile(boot, 0.75, axis=0))
    # a clone of a fitted law is unfitted, with the same hyper-parameters
    copy = law.clone()
    assert not learned(copy) and copy.get_params() == law.get_params()
    if sklearn_clone is not None:
        assert not learned(sklearn_clone(law))


@pytest.mark.parametrize("cls", LAWS, ids=lambda c: c.__name__)
def test_law_refit_is_fresh(cls):
    law = new_law(cls)
    fit_law(law, seed=0)
    if len(cls.inputs) == 1 and cls.__name__ not in LAW_EXAMPLES:  # quick to backtest
        table, columns = law_data(cls, 0)
        law.backtest(table, size=next(iter(cls.inputs.values())), **columns)
        assert len(law.backtest_)  # left behind by the first fit
    # refit on other data without bootstrap: nothing of the first fit may survive
    law.set_params(n_bootstrap=0)
    fit_law(law, seed=1)
    fresh = fit_law(cls().set_params(n_bootstrap=0), seed=1)
    assert_same_state(law, fresh, cls.__name__)
    assert law.bootstrap_params_ is None and not hasattr(law, "backtest_")


@pytest.mark.parametrize("cls", RECALIBRATORS, ids=lambda c: c.__name__)
def test_recalibrator_contract_and_fresh_refit(cls):
    model = cls()
    assert model.fit(*recalibrator_data(cls, 0)) is model, "fit must return self"
    assert model.is_fitted
    first = model.predict_proba(recalibrator_data(cls, 0)[0])
    assert np.all((first >= 0) & (first <= 1))
    model.fit(*recalibrator_data(cls, 1))
    fresh = cls().fit(*recalibrator_data(cls, 1))
    assert_same_state(model, fresh, cls.__name__)
    assert not learned(model.clone())


def _not_fitted_calls(estimator):
    if isinstance(estimator, Law):
        symbols = {s: 1e6 for s in estimator.inputs}
        return [lambda: estimator.predict(**symbols),
                lambda: estimator.predict_interval(**symbols),
                lambda: estimator.predict_bootstrap(**symbols),
                estimator.conf_int, estimator.cov_params, estimator.summary,
                estimator.params_table, lambda: estimator.params_,
                lambda: estimator.residuals_]
    return [lambda: estimator.predict_proba(np.array([0.2, 0.7])),
            lambda: getattr(estimator, estimator._fitted_attribute)]


@pytest.mark.parametrize("cls", LAWS + RECALIBRATORS, ids=lambda c: c.__name__)
def test_use_before_fit_raises_not_fitted_error(cls):
    estimator = cls()
    assert not estimator.is_fitted
    for call in _not_fitted_calls(estimator):
        with pytest.raises(NotFittedError, match=f"this {cls.__name__} is not fitted yet") as err:
            call()
        # like scikit-learn's: a ValueError and an AttributeError, one sentence
        assert isinstance(err.value, ValueError) and isinstance(err.value, AttributeError)
        assert str(err.value).count(". ") == 0 and str(err.value).endswith(".")
    assert not hasattr(estimator, "params_") and not hasattr(estimator, "no_such_")
    with pytest.raises(AttributeError, match="no attribute '_private'"):
        estimator._private  # noqa: B018 - private names are plain AttributeErrors


BAD_LAW_PARAMS = [("huber_delta", 0.0), ("huber_delta", -1e-3), ("huber_delta", float("nan")),
                  ("n_bootstrap", -1), ("n_bootstrap", 2.5), ("max_iter", 0),
                  ("drop_highest", -1), ("seed", -3)]


@pytest.mark.parametrize("cls", LAWS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("name, value", BAD_LAW_PARAMS)
def test_bad_law_hyper_parameters_are_refused_at_fit(cls, name, value):
    law = cls(**{name: value})  # __init__ only stores (scikit-learn's rule)
    assert getattr(law, name) is value
    with pytest.raises(ScalelabError, match=rf"{cls.__name__}: {name} must be") as err:
        fit_law(law)
    message = str(err.value)
    assert "\n" not in message and message.endswith(".")
    assert re.search(r"\.\s+[A-Z]", message) is None  # one sentence
    assert not law.is_fitted


@pytest.mark.parametrize("cls, name, value", [
    (scalelab.calibration.PlattScaling, "max_iter", 0),
    (scalelab.calibration.PlattScaling, "tol", -1.0),
    (scalelab.calibration.HistogramBinning, "bins", 0),
    (scalelab.calibration.ScalingBinning, "bins", 1.5),
])
def test_bad_recalibrator_hyper_parameters_are_refused_at_fit(cls, name, value):
    model = cls(**{name: value})
    with pytest.raises(ScalelabError, match=rf"{cls.__name__}: {name} must be"):
        model.fit(*recalibrator_data(cls))


def test_annealing_decay_is_checked():
    with pytest.raises(ScalelabError, match="decay must be a finite number >= 0 and <= 1"):
        fit_law(scalelab.laws.AnnealingLaw(decay=1.5))


@pytest.mark.parametrize("cls", [LAWS[0], RECALIBRATORS[0]], ids=lambda c: c.__name__)
def test_sklearn_not_fitted_error_catches_scalelabs(cls):
    """``except sklearn.exceptions.NotFittedError`` (what code written for scikit-learn
    catches) catches scalelab's, with scikit-learn installed."""
    exceptions = pytest.importorskip("sklearn.exceptions")
    estimator = cls()
    for call in _not_fitted_calls(estimator):
        try:
            call()
        except exceptions.NotFittedError as err:
            assert isinstance(err, NotFittedError) and isinstance(err, ScalelabError)
        else:
            raise AssertionError("no error before fit")
    assert issubclass(scalelab.NotFittedError, exceptions.NotFittedError)
    assert scalelab.NotFittedError is NotFittedError is scalelab.laws.NotFittedError


def test_not_fitted_error_without_sklearn_and_import_stays_cheap():
    """Without scikit-learn, scalelab's error is still a ValueError and an AttributeError;
    ``import scalelab`` imports scikit-learn only once the error is asked for."""
    code = ("import sys\n"
            "import scalelab\n"
            "assert 'sklearn' not in sys.modules, 'import scalelab imported scikit-learn'\n"
            "sys.modules['sklearn'] = None  # as if not installed\n"
            "from scalelab.laws import PowerLaw\n"
            "from scalelab import NotFittedError\n"
            "try:\n"
            "    PowerLaw().params_\n"
            "except NotFittedError as err:\n"
            "    assert isinstance(err, ValueError) and isinstance(err, AttributeError)\n"
            "    print([c.__module__ for c in type(err).__mro__])\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "sklearn" not in done.stdout and "scalelab._errors" in done.stdout
