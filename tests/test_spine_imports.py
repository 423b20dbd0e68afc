"""Analysis never needs torch: with `import torch` failing, specs load, runs tables load,
every law fits and predicts, every calibration function runs and a report is written."""

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from scalelab.config import RunConfig
from scalelab.sweep.store import RunStore

ROOT = Path(__file__).resolve().parents[1]

# Run first in the subprocess: any import of torch (or a torch submodule) raises.
BLOCK_TORCH = textwrap.dedent("""
    import sys

    class NoTorch:
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch."):
                raise ImportError(f"torch is blocked in this test (import {name})")
            return None

    sys.meta_path.insert(0, NoTorch())
    try:
        import torch  # noqa: F401
    except ImportError:
        pass
    else:
        raise SystemExit("the torch blocker did not block")
""")


def run_without_torch(code: str, timeout: float = 300, cwd=ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCK_TORCH + textwrap.dedent(code)],
                          capture_output=True, text=True, timeout=timeout, cwd=cwd)


def test_analysis_parts_do_not_import_torch():
    code = ("import sys, scalelab, scalelab.laws, scalelab.calibration, scalelab.report, "
            "scalelab.runs, scalelab.table, scalelab.registry, scalelab.sweep.spec, "
            "scalelab.models, scalelab.data, scalelab.losses; "
            "assert 'torch' not in sys.modules, 'torch was imported'")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_run_result_imports_without_torch():
    """Train and sweep share RunResult; a driver without torch can unpickle it."""
    code = ("import sys; from scalelab.result import RunResult; "
            "assert RunResult('a', 'failed').host; assert 'torch' not in sys.modules")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_runs_table_module_does_not_import_sweep():
    code = ("import sys, scalelab.runs, scalelab.runs.tracking; "
            "assert not [m for m in sys.modules if m.startswith(('scalelab.sweep', 'torch'))]")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_every_shipped_spec_loads_without_torch(tmp_path):
    specs = sorted(str(p) for p in (ROOT / "sweeps").glob("*.yaml"))
    assert specs
    # sweeps/gridded.yaml reads data/era5_like.nc, which `scalelab example-data` writes
    from scalelab.data.era5like import write_era5_like

    write_era5_like(tmp_path / "data", resolution=5.0)
    result = run_without_torch(cwd=tmp_path, code=f"""
        from scalelab.sweep import load_spec
        for path in {specs!r}:
            spec = load_spec(path)
            assert len(spec) >= 1, path
            for cfg in spec.runs:
                cfg.validate(path)
        print("loaded", len({specs!r}))
    """)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"loaded {len(specs)}" in result.stdout


def _chinchilla_store(path):
    """25 runs whose final loss follows L = 1.5 + 400 N^-0.34 + 4000 D^-0.28 exactly."""
    rows_by_run = {}
    with RunStore(path) as store:
        cfgs = [RunConfig(width=w, samples=d, field_size=16, steps=100)
                for w in (4, 6, 8, 12, 16) for d in (256, 512, 1024, 2048, 4096)]
        store.add_sweep("grid", {"name": "grid"}, cfgs)
        for cfg in cfgs:
            params = 90 * cfg.width ** 2
            loss = 1.5 + 400 * params ** -0.34 + 4000 * cfg.samples ** -0.28
            rows = [{"step": step, "samples_seen": 32 * step, "flops": 6.0 * params * 32 * step,
                     "lr": 1e-3 / step, "train_loss": factor * loss, "val_loss": factor * loss,
                     "wall_time_s": step / 100} for step, factor in ((1, 3), (10, 2), (100, 1))]
            store.mark_running(cfg.run_id)
            store.record_result(cfg.run_id, "finished", rows,
                                {"params": params, "flops_per_sample": 1e3 * params,
                                 "wall_time_s": 1.25})
            rows_by_run[cfg.run_id] = rows
    return rows_by_run


def test_runs_laws_calibration_and_report_work_without_torch(tmp_path):
    store = tmp_path / "runs.db"
    _chinchilla_store(store)
    csv = tmp_path / "published.csv"
    n = np.geomspace(1e6, 1e9, 10)
    csv.write_text("params,val_loss\n" + "".join(f"{x:g},{float(2 + 50 * x ** -0.3)!r}\n" for x in n))
    result = run_without_torch(f"""
        import inspect
        import numpy as np
        import pandas as pd
        import scalelab
        import scalelab.calibration as cal
        import scalelab.laws as laws
        from scalelab.report import write_report

        runs = scalelab.load_runs({str(store)!r}, sweep="grid")
        assert runs["run_id"].nunique() == 25 and len(runs) == 75, runs.shape
        published = scalelab.load_runs({str(csv)!r})
        assert len(published) == 10

        # every law: fit, predict, predict_interval
        final = runs[runs["step"] == 100]
        fitted = {{}}
        fitted["PowerLaw"] = laws.PowerLaw(n_bootstrap=20).fit(published, x="params")
        fitted["BrokenPowerLaw"] = laws.BrokenPowerLaw(n_bootstrap=20).fit(published, x="params")
        fitted["ChinchillaLaw"] = laws.ChinchillaLaw(n_bootstrap=20).fit(final)
        fitted["KaplanLaw"] = laws.KaplanLaw(n_bootstrap=20).fit(final)
        steps = np.arange(1, 201)
        lr = np.where(steps < 150, 1e-3, 1e-3 * (200 - steps) / 50 + 1e-5)
        s1, s2 = laws.annealing_areas(lr, 0.999)
        curve = pd.DataFrame({{"run_id": "a", "step": steps, "lr_step": lr,
                               "train_loss": 2.0 + 3.0 * s1 ** -0.5 - 0.4 * s2}})
        fitted["AnnealingLaw"] = laws.AnnealingLaw(n_bootstrap=20).fit(curve)
        n, u, ep = (a.ravel() for a in np.meshgrid(np.geomspace(1e6, 1e8, 4), [1e7, 1e8],
                                                  [1.0, 4.0, 16.0, 64.0], indexing="ij"))
        d_eff = u + u * 15.0 * (1 - np.exp(-(ep - 1) / 15.0))
        repeated = pd.DataFrame({{"params": n, "samples": u, "samples_seen": u * ep,
                                  "val_loss": 1.8 + 400 * n ** -0.3 + 900 * d_eff ** -0.3}})
        fitted["DataConstrainedLaw"] = laws.DataConstrainedLaw(n_bootstrap=20).fit(repeated)
        fitted["OvertrainingLaw"] = laws.OvertrainingLaw(n_bootstrap=20).fit(final)
        fitted["FarseerLaw"] = laws.FarseerLaw(n_bootstrap=20).fit(final)
        sizes = pd.concat([curve.assign(run_id=f"n{{k}}", params=k,
                                        val_loss=curve["train_loss"] + 30 * k ** -0.4)
                           for k in (1e4, 3e4, 1e5)], ignore_index=True)
        fitted["ScaledAnnealingLaw"] = laws.ScaledAnnealingLaw(n_bootstrap=20).fit(sizes)
        n, d, p, f = (a.ravel() for a in np.meshgrid([1e3, 1e4, 1e5], [1e4, 3e4, 1e5],
                                                    [2.0, 4.0, 32.0], [0.1, 0.4, 0.9],
                                                    indexing="ij"))
        bits = pd.DataFrame({{"params": n, "samples": d, "param_bits": p, "qat_fraction": f,
                              "val_loss": 0.01 + 3 * (n * -np.expm1(-p / 2.5)) ** -0.5
                              + 2 * d ** -0.45 + 0.002 * ((1 - f) * d / n) ** 0.5 * f ** -0.4}})
        fitted["PrecisionLaw"] = laws.PrecisionLaw(n_bootstrap=20).fit(bits)
        fitted["QATFractionLaw"] = laws.QATFractionLaw(n_bootstrap=20).fit(bits)
        every_law = {{name for name in laws.__all__ if isinstance(getattr(laws, name), type)
                      and issubclass(getattr(laws, name), laws.Law)
                      and getattr(laws, name) is not laws.Law}}
        assert set(fitted) == every_law, every_law - set(fitted)
        # the exact power law is recovered (closed form: y = 2 + 50 x^-0.3)
        assert abs(fitted["PowerLaw"].predict(x=1e9) - (2 + 50 * 1e9 ** -0.3)) < 1e-3
        assert abs(fitted["ChinchillaLaw"].predict(params=1e5, samples=1e4)
                   - (1.5 + 400 * 1e5 ** -0.34 + 4000 * 1e4 ** -0.28)) < 1e-2
        for name, law in fitted.items():
            if name == "AnnealingLaw":
                interval = law.predict_interval(S1=[s1[-1]], S2=[s2[-1]])
            elif name == "ScaledAnnealingLaw":
                interval = law.predict_interval(N=[1e6], S1=[s1[-1]], S2=[s2[-1]])
            elif name in ("PowerLaw", "BrokenPowerLaw"):
                interval = law.predict_interval(x=[1e9])
            elif name == "DataConstrainedLaw":
                interval = law.predict_interval(N=[1e8], D=[6.4e9], U=[1e8])
            elif name == "PrecisionLaw":
                interval = law.predict_interval(N=[1e6], D=[1e5], P=[4])
            elif name == "QATFractionLaw":
                interval = law.predict_interval(N=[1e6], D=[1e5], F=[0.5], P=[4])
            else:
                interval = law.predict_interval(params=[1e5], samples=[1e4])
            assert (interval["lower"] <= interval["upper"]).all(), name

        # every calibration function and recalibrator, on numpy arrays
        rng = np.random.default_rng(0)
        logits = rng.normal(size=(400, 3)) * 2
        probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
        labels = np.array([rng.choice(3, p=p) for p in probs])
        obs = rng.normal(size=50)
        ens = rng.normal(size=(8, 50))
        calls = {{
            "ece": lambda: cal.ece(probs, labels),
            "calibration_error": lambda: cal.calibration_error(probs, labels, seed=0),
            "brier_score": lambda: cal.brier_score(probs, labels),
            "nll": lambda: cal.nll(probs, labels),
            "reliability_curve": lambda: cal.reliability_curve(probs, labels),
            "plot_reliability": lambda: cal.plot_reliability(cal.reliability_curve(probs, labels)),
            "bootstrap_ci": lambda: cal.bootstrap_ci(cal.ece, probs, labels, resamples=20, seed=0),
            "crps_ensemble": lambda: cal.crps_ensemble(obs, ens),
            "interval_coverage": lambda: cal.interval_coverage(obs, ens),
            "pit": lambda: cal.pit(obs, ens, seed=0),
            "quantile_score": lambda: cal.quantile_score(obs, np.sort(ens[:3], 0).T,
                                                         [0.25, 0.5, 0.75]),
            "rank_histogram": lambda: cal.rank_histogram(obs, ens, seed=0),
            "rank_histogram_flatness": lambda: cal.rank_histogram_flatness(
                cal.rank_histogram(obs, ens, seed=0)),
            "rank_histogram_departure": lambda: cal.rank_histogram_departure(
                cal.rank_histogram(obs.reshape(5, 10), ens.reshape(8, 5, 10), seed=0, per=0)),
            "spread_skill_ratio": lambda: cal.spread_skill_ratio(obs, ens),
        }}
        for name in ("HistogramBinning", "IsotonicCalibrator", "PlattScaling", "ScalingBinning"):
            calls[name] = (lambda c: lambda: getattr(cal, c)().fit(probs[:, 0], labels == 0)
                           .predict_proba(probs[:, 0]))(name)
        calls["TemperatureScaling"] = lambda: cal.TemperatureScaling().fit(
            logits, labels).predict_proba(logits)
        every = {{name for name in cal.__all__ if inspect.isfunction(getattr(cal, name))
                  or hasattr(getattr(cal, name), "predict_proba")}}
        assert set(calls) == every, every ^ set(calls)
        for name, call in calls.items():
            call()
        # a one-member ensemble's CRPS is the absolute error (closed form)
        assert np.allclose(cal.crps_ensemble(obs, ens[:1]), np.abs(obs - ens[0]))
        assert cal.brier_score(np.eye(3)[labels], labels) == 0.0

        pdf = write_report(runs, {str(tmp_path / "report.pdf")!r}, n_bootstrap=20, png=False)
        assert pdf.read_bytes()[:5] == b"%PDF-"
        import sys
        assert not [m for m in sys.modules if m == "torch" or m.startswith("torch.")]
        print("ok")
    """, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    assert result.stdout.strip().endswith("ok")
