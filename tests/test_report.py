"""The PDF report: rendered page by page (pdftoppm), its text read back (pdftotext), and
its bad-input behaviour. The runs come from a real small sweep in a SQLite store."""

import shutil
import subprocess
import sys
from pathlib import Path

import matplotlib.image
import numpy as np
import pandas as pd
import pytest

import scalelab
from scalelab import ScalelabError
from scalelab.laws import PowerLaw
from scalelab.report import write_report
from scalelab.sweep import RunStore
from conftest import TINY_SPEC as SPEC
from scalelab.runs import final_rows

def pdf_pages(pdf: Path, tmp: Path) -> list[np.ndarray]:
    if shutil.which("pdftoppm") is None:
        pytest.fail("pdftoppm (poppler-utils) is needed to render the report; .ci/run installs it")
    subprocess.run(["pdftoppm", "-r", "30", "-png", str(pdf), str(tmp / "page")], check=True)
    return [matplotlib.image.imread(p) for p in sorted(tmp.glob("page-*.png"))]


def pdf_text(pdf: Path) -> str:
    return subprocess.run(["pdftotext", "-layout", str(pdf), "-"], check=True,
                          capture_output=True, text=True).stdout


@pytest.fixture(scope="session")
def tiny_report(tiny_store, tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "tiny.pdf"
    runs = scalelab.load_runs(tiny_store)
    write_report(runs, out, title="tiny sweep", y="val_mse", spec=SPEC,
                 targets=SPEC["scalelab"]["targets"], source=str(tiny_store), n_bootstrap=100)
    return out


def test_every_page_renders_and_none_is_blank(tiny_report, tmp_path):
    pages = pdf_pages(tiny_report, tmp_path)
    # summary, scaling (2 variants on one page), fit quality ×2, frontier ×2, calibration
    # metrics, rank histograms and reliability, training curves, reproducibility
    assert len(pages) == 10
    for image in pages:
        assert image[..., :3].std() > 0.03  # a blank page is one colour
    # the figures are saved as PNG beside the PDF too
    pngs = sorted(tiny_report.parent.glob("tiny_*.png"))
    assert {p.stem for p in pngs} >= {"tiny_summary", "tiny_scaling_1", "tiny_calibration",
                                      "tiny_calibration_histograms",
                                      "tiny_curves", "tiny_reproducibility"}


def test_summary_states_sweep_predictions_and_backtest(tiny_store, tiny_report):
    text = pdf_text(tiny_report)
    assert "What was swept" in text
    assert "4, 6, 8, 12, 16" in text  # widths
    assert "64, 128, 256, 512" in text  # data sizes
    assert "mse, crps_fair" in text or "crps_fair, mse" in text
    assert "Headline predictions" in text and "params = 2e+04" in text
    assert "compute = 1e+11" in text
    assert "ARE" in text
    assert "is predicted best" in text
    # the headline number is what scalelab.laws.predict gives for the same runs
    from scalelab.laws import predict

    runs = scalelab.load_runs(tiny_store)
    expected = predict(runs[runs.loss_variant == "mse"], "params=2e4", y="val_mse",
                       n_bootstrap=10).prediction
    assert f"{expected:.4g}" in text


def test_reproducibility_page_has_spec_and_versions(tiny_report):
    text = pdf_text(tiny_report)
    assert "Sweep spec" in text and "crps_fair" in text
    assert f"scalelab {scalelab.__version__}" in text
    assert "torch" in text  # the training library versions recorded by the runs


def test_report_cli_from_a_csv_table_with_targets(tiny_store, tmp_path):
    table = tmp_path / "runs.csv"
    scalelab.load_runs(tiny_store).to_csv(table, index=False)
    out = tmp_path / "from_csv.pdf"
    result = subprocess.run([sys.executable, "-m", "scalelab.cli", "report", str(table), "-o",
                             str(out), "--target", "params=1e5", "--y", "val_crps"],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert len(pdf_pages(out, tmp_path)) >= 7
    assert "params = 1e+05" in pdf_text(out)


def test_empty_store_is_one_clear_error(tmp_path):
    store = tmp_path / "empty.db"
    RunStore(store).close()
    result = subprocess.run([sys.executable, "-m", "scalelab.cli", "report", str(store)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "scalelab: error: the runs table is empty, so there is nothing to report; run a sweep "
        "first or check the store path."]
    assert not (tmp_path / "report.pdf").exists()


def test_missing_metric_column_is_one_clear_error(tiny_store, tmp_path):
    with pytest.raises(ScalelabError, match="no column 'val_nope'"):
        write_report(scalelab.load_runs(tiny_store), tmp_path / "r.pdf", y="val_nope")


def test_one_size_still_writes_a_report_that_says_why(tiny_store, tmp_path):
    runs = scalelab.load_runs(tiny_store)
    one = runs[(runs["width"] == 8) & (runs["loss_variant"] == "mse")]
    out = write_report(one, tmp_path / "one.pdf", y="val_mse", n_bootstrap=20,
                       targets=["params=1e6"])
    pages = pdf_pages(out, tmp_path)
    assert len(pages) >= 7
    text = " ".join(pdf_text(out).split())
    # the law in N cannot be fitted from one size: the page says so in a sentence
    assert "at least 3 distinct x values" in text or "all points have the same" in text
    # a parameter target cannot be extrapolated from one model size: the report says so
    # and falls back to persistence (the largest run's value), in words
    assert "not predicted" in text or ("no law could be fitted" in text
                                       and "persistence" in text)


def test_table_without_the_usual_columns(tmp_path):
    # someone else's published losses: no run ids, no curves, only sizes and losses
    rng = np.random.default_rng(0)
    n = np.geomspace(1e6, 1e9, 8)
    table = pd.DataFrame({"params": n, "val_loss": 1.7 + 400 * n**-0.34 * np.exp(rng.normal(0, 0.01, 8))})
    out = write_report(table, tmp_path / "published.pdf", n_bootstrap=50)
    pages = pdf_pages(out, tmp_path)
    assert len(pages) >= 7 and all(p[..., :3].std() > 0.01 for p in pages)
    text = " ".join(pdf_text(out).split())
    assert "no training curves with FLOPs" in text


def test_calibration_page_states_the_backtests_of_its_laws(tiny_report):
    """CRPS, |1 − SSR| and rank flatness each get a law in N with a leave-largest-out
    backtest (scalelab.report.calibration_fits), stated on the calibration page."""
    text = pdf_text(tiny_report)
    assert "backtest at N" in text and "ARE" in text


# ---- the numbers apart from the drawings ------------------------------------------------
def _published_table(n_points: int = 8) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = np.geomspace(1e6, 1e9, n_points)
    return pd.DataFrame({"params": n,
                         "val_loss": 1.7 + 400 * n**-0.34 * np.exp(rng.normal(0, 0.01, n_points))})


def test_analysis_computes_without_matplotlib():
    # the report's numbers come from report.analysis, which needs no plotting library
    code = """
import sys
sys.modules["matplotlib"] = None  # any import of matplotlib fails
import numpy as np, pandas as pd
from scalelab.report.analysis import FitFailure, ReportContext, analyse, fit_power_laws
n = np.geomspace(1e6, 1e9, 8)
table = pd.DataFrame({"params": n, "val_loss": 1.7 + 400 * n**-0.34})
analysis = analyse(ReportContext.build(table), n_bootstrap=20)
va = analysis.variants[None]
assert isinstance(va.allocation, FitFailure) and "FLOPs" in va.allocation.reason
assert not isinstance(va.headline_law, FitFailure)
assert np.isfinite(analysis.predictions["prediction"]).all()
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]


def test_a_fit_that_cannot_be_made_is_a_fit_failure_with_its_reason():
    from scalelab.report import FitFailure, fit_power_laws

    table = _published_table()
    table["samples"] = [1, 1, 1, 1, 1, 1, 2, 2]  # two sizes at D = 2: no law there
    fits = fit_power_laws(table, by="samples", n_bootstrap=0)
    assert isinstance(fits[1], PowerLaw)
    assert fits[2] == FitFailure(
        "PowerLaw.fit needs at least 3 distinct x values to fit E, A and alpha, got 2; add "
        "runs at more sizes.")
    # the law that could be fitted is the one fitted directly on its rows
    direct = PowerLaw(n_bootstrap=0).fit(table[table["samples"] == 1], x="params")
    assert fits[1].predict(x=1e10) == pytest.approx(direct.predict(x=1e10), rel=1e-12)


def test_one_guard_for_analyses_pages_and_panels():
    import matplotlib.pyplot as plt

    from scalelab.report.analysis import FitFailure, attempt
    from scalelab.report.context import ReportContext
    from scalelab.report.figures import plot_frontier
    from scalelab.report.pages import panel, render_page

    def refuse(*args, **kwargs):
        raise ScalelabError("the table is too small; add runs.")

    called = []
    failure = FitFailure("no frontier without FLOPs.")
    # a failure among the arguments is passed on without calling; a ScalelabError becomes one
    assert attempt(lambda *a: called.append(a), 1, failure) is failure and not called
    assert attempt(refuse) == FitFailure("the table is too small; add runs.")
    with pytest.raises(ZeroDivisionError):  # a bug is not a failed fit
        attempt(lambda: 1 / 0)
    # a panel drawn from a failed result, or whose drawing refuses, shows the sentence
    fig, (ax1, ax2) = plt.subplots(1, 2)
    panel(ax1, plot_frontier, failure, prefix="no frontier: ")
    panel(ax2, refuse)
    texts = [t.get_text().replace("\n", " ") for ax in (ax1, ax2) for t in ax.texts]
    assert texts == ["no frontier: no frontier without FLOPs.",
                     "the table is too small; add runs."]
    plt.close(fig)
    # a page that cannot be drawn becomes one page with its sentence
    ctx = ReportContext.build(_published_table())

    def page_broken(ctx, analysis):
        refuse()

    (name, page), = render_page(page_broken, ctx, None)
    assert name == "broken"
    assert any("the table is too small" in t.get_text() for ax in page.axes for t in ax.texts)
    plt.close(page)
