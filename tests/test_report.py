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
    assert len(pages) == len(list(tiny_report.parent.glob("tiny_*.png"))) >= 10
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


# ---- pages that keep their text, a shared metric, one symbol table, the bicubic line ----
LOSS_TARGETS = ["params=2e4", "compute=1e11", "params=5e4", "params=1e5"]


@pytest.fixture(scope="session")
def tiny_loss(tiny_store):
    """The tiny sweep reported on val_loss (each variant's own loss) with four targets, so
    the summary holds more than one page: its context, analysis and PDF."""
    from scalelab.report.analysis import analyse
    from scalelab.report.context import ReportContext

    runs = scalelab.load_runs(tiny_store)
    ctx = ReportContext.build(runs, y="val_loss", targets=LOSS_TARGETS, spec=SPEC,
                              title="tiny sweep")
    return ctx, analyse(ctx, n_bootstrap=20)


@pytest.fixture(scope="session")
def tiny_loss_report(tiny_store, tmp_path_factory):
    out = tmp_path_factory.mktemp("loss_report") / "loss.pdf"
    write_report(scalelab.load_runs(tiny_store), out, title="tiny sweep", y="val_loss",
                 spec=SPEC, targets=LOSS_TARGETS, n_bootstrap=20)
    return out


def pdf_words(pdf: Path) -> list[tuple[int, float, float, list]]:
    """Each page's (number, width, height, [(xMin, yMin, xMax, yMax, word)]) by pdftotext -bbox."""
    import re

    html = subprocess.run(["pdftotext", "-bbox", str(pdf), "-"], check=True,
                          capture_output=True, text=True).stdout
    pages = []
    for i, (w, h, body) in enumerate(re.findall(
            r'<page width="([\d.]+)" height="([\d.]+)">(.*?)</page>', html, re.S)):
        words = [(float(a), float(b), float(c), float(d), t) for a, b, c, d, t in re.findall(
            r'<word xMin="([\d.-]+)" yMin="([\d.-]+)" xMax="([\d.-]+)" yMax="([\d.-]+)">'
            r'(.*?)</word>', body)]
        pages.append((i + 1, float(w), float(h), words))
    return pages


def test_every_page_keeps_its_text_on_the_page_and_off_the_footer(tiny_loss_report):
    """The summary flows onto a continuation page instead of off the bottom: every section's
    text is found, in order, and no word of any page lies outside it or on the footer."""
    text = " ".join(pdf_text(tiny_loss_report).split())
    sections = ["What was swept", "Headline predictions", "Which loss variant",
                "How far to trust it", "Laws used",
                "intervals from bootstrap resamples of the runs.", "Scaling curves",
                "Fit quality", "Compute-optimal frontier", "Calibration of the ensembles",
                "Rank histograms", "Training curves", "Reproducibility", "Sweep spec"]
    at = [text.find(s) for s in sections]
    assert all(i >= 0 for i in at), [s for s, i in zip(sections, at) if i < 0]
    assert at == sorted(at)
    assert "tiny sweep (continued, 2)" in text
    for number, width, height, words in pdf_words(tiny_loss_report):
        # the footer line: "scalelab · <title> · <n> runs · <date> <time> UTC", 1.2% up
        utc = [w for w in words if w[4] == "UTC" and w[3] > height * 0.95]
        assert utc, f"page {number} has no footer"
        line = utc[-1]
        footer = [w for w in words if abs(w[1] - line[1]) < 0.3 and abs(w[3] - line[3]) < 0.3]
        box = (min(w[0] for w in footer), min(w[1] for w in footer),
               max(w[2] for w in footer), max(w[3] for w in footer))
        for x0, y0, x1, y1, word in words:
            assert -1 <= x0 and x1 <= width + 1 and -1 <= y0 and y1 <= height + 1, \
                f"page {number}: {word!r} lies off the page"
            if (x0, y0, x1, y1, word) not in footer:
                overlaps = x0 < box[2] and x1 > box[0] and y0 < box[3] and y1 > box[1] + 0.5
                assert not overlaps, f"page {number}: {word!r} is drawn over the footer"


def test_flow_starts_a_new_page_where_the_next_line_would_not_fit():
    import matplotlib.pyplot as plt
    from matplotlib.text import Text

    from scalelab.report.layout import BOTTOM, Flow, new_page

    flow = Flow("long", "long", lambda title: new_page(title, "footer"))
    lines = [f"## section {i}" if i % 10 == 0 else f"line {i} " + "word " * (5 + i % 40)
             for i in range(150)]
    flow.text(lines, size=9)
    flow.table(pd.DataFrame({"a": range(60), "b": ["x" * 30] * 60}))
    assert len(flow.pages) > 2 and [n for n, _ in flow.pages][:2] == ["long", "long_2"]
    found = []
    for _, fig in flow.pages:
        renderer = fig.canvas.get_renderer()
        for t in fig.findobj(Text):
            if not t.get_text().strip() or not t.get_visible():
                continue
            box = t.get_window_extent(renderer)
            if "footer" not in t.get_text():
                assert box.y0 >= BOTTOM * fig.bbox.height - 1, t.get_text()[:40]
            assert box.x1 <= fig.bbox.width + 1, t.get_text()[:40]
            found.append(t.get_text())
        plt.close(fig)
    joined = " ".join(" ".join(found).split())
    for i, line in enumerate(lines):  # every line written, whole
        assert " ".join(line.removeprefix("## ").split()) in joined, i


def test_text_of_every_page_lies_inside_it(tiny_loss):
    """Axis labels, colourbar labels, titles and table cells: none is clipped by the page's
    edge; every colourbar is labelled; every table cell is wide enough for its text."""
    import matplotlib.pyplot as plt
    from matplotlib.table import Table

    from scalelab.report.pages import PAGES, render_page

    ctx, analysis = tiny_loss
    for page in PAGES:
        for name, fig in render_page(page, ctx, analysis):
            renderer = fig.canvas.get_renderer()
            fig.canvas.draw()
            inside = (lambda box: box.x0 >= -1 and box.x1 <= fig.bbox.width + 1
                      and box.y0 >= -1 and box.y1 <= fig.bbox.height + 1)
            for t in [*fig.texts, fig._suptitle]:  # the page's own text
                if t is not None and t.get_text().strip():
                    assert inside(t.get_window_extent(renderer)), (name, t.get_text()[:50])
            for ax in fig.axes:  # what each panel draws: ticks, labels, title, legend
                if ax.get_visible() and ax.axison:
                    assert inside(ax.get_tightbbox(renderer)), (name, ax.get_title()[:50])
                for t in ax.texts:
                    if t.get_text().strip():
                        assert inside(t.get_window_extent(renderer)), (name, t.get_text()[:50])
                if ax.get_label() == "<colorbar>":
                    assert ax.get_ylabel(), f"{name}: a colourbar without a label"
                for table in ax.findobj(Table):
                    for cell in table.get_celld().values():
                        text = cell.get_text()
                        assert text.get_window_extent(renderer).width <= \
                            cell.get_window_extent(renderer).width + 0.5, (name, text.get_text())
                        assert inside(cell.get_window_extent(renderer)), (name, text.get_text())
            plt.close(fig)


def test_variants_are_compared_on_a_metric_they_share(tiny_loss, tiny_store):
    """val_loss is mse's MSE and crps_fair's CRPS: the variants are compared on val_crps,
    which both record, with the numbers predict gives on it, and the metric named."""
    from scalelab.laws import predict

    ctx, analysis = tiny_loss
    assert analysis.comparison_metric == "val_crps"
    runs = scalelab.load_runs(tiny_store)
    truth = {v: predict(runs[runs.loss_variant == v], target="params=2e4", y="val_crps",
                        n_bootstrap=20).prediction for v in ("mse", "crps_fair")}
    best = min(truth, key=truth.get)
    other = ({"mse", "crps_fair"} - {best}).pop()
    first = next(s for s in analysis.best if s.startswith("At params = 2e+04"))
    assert first.startswith(f"At params = 2e+04: {best} is predicted best (val_crps "
                            f"{truth[best]:.4g} vs {other} {truth[other]:.4g})")
    assert analysis.best[0].startswith("Compared on validation CRPS (field units) (val_crps)")
    loss_preds = analysis.predictions.set_index(["target", "variant"])["prediction"]
    assert f"{loss_preds[('params = 2e+04', 'mse')]:.4g}" not in first


def test_the_comparison_metric_is_chosen_from_what_every_variant_records(tiny_store):
    from scalelab.report.analysis import _best_sentences, comparison_metric
    from scalelab.report.context import ReportContext

    runs = scalelab.load_runs(tiny_store)
    assert comparison_metric(ReportContext.build(runs, y="val_mse")) == "val_mse"
    assert comparison_metric(ReportContext.build(runs, y="val_loss")) == "val_crps"
    no_crps = runs.assign(val_crps=np.where(runs.loss_variant == "mse", np.nan, runs.val_crps))
    assert comparison_metric(ReportContext.build(no_crps, y="val_loss")) == "val_mse"
    bare = runs.drop(columns=["val_crps", "val_mse", "val_rmse", "val_mae"])
    ctx = ReportContext.build(bare, y="val_loss")
    assert comparison_metric(ctx) is None
    assert "so the variants are not compared" in _best_sentences(ctx, {"a": 0, "b": 0},
                                                                 pd.DataFrame(), None)[0]
    one = runs[runs.loss_variant == "mse"]
    assert comparison_metric(ReportContext.build(one, y="val_loss")) is None


def test_report_uses_one_level_and_one_symbol_per_axis(tiny_loss_report):
    """Intervals at the report's one LEVEL (90%); U for distinct samples, D only for samples
    seen (the tiny sweep's U: 64 … 512; its D: 60 steps × 32 = 1,920)."""
    import re

    text = " ".join(pdf_text(tiny_loss_report).split())
    assert "90%" in text and "95%" not in text
    assert "U = 512" in text
    assert not re.search(r"\bD = (64|128|256|512)\b", text)


def test_fitted_parameters_print_zero_not_underflow():
    from scalelab.report.labels import format_param

    assert format_param(3.21e-217, ".3g", 0.05) == "0"
    assert format_param(0.0562, ".4g", 0.05) == "0.0562"
    assert format_param(-1e-20) == "0" and format_param(2e-3) == "0.002"


def test_one_data_size_gives_the_middle_panel_room_to_the_others(tiny_store):
    import matplotlib.pyplot as plt

    from scalelab.report.analysis import analyse
    from scalelab.report.context import ReportContext
    from scalelab.report.pages import page_scaling

    runs = scalelab.load_runs(tiny_store)
    ctx = ReportContext.build(runs[runs.samples == 512], y="val_mse", targets=["params=2e4"])
    (name, fig), = page_scaling(ctx, analyse(ctx, n_bootstrap=0))
    panels = [ax for ax in fig.axes if ax.get_label() != "<colorbar>" and ax.get_title()]
    assert len(panels) == 4  # two variants × (vs N, vs compute): no empty middle panel
    assert not any("no curve" in t.get_text() for ax in fig.axes for t in ax.texts)
    assert any("one data size (U = 512)" in t.get_text() for t in fig.texts)
    plt.close(fig)


def test_bicubic_reference_is_recorded_and_drawn(tiny_loss, tiny_store):
    """Every run records bicubic upsampling's skill on its validation set; the scaling and
    calibration pages draw it as a line at that value."""
    import matplotlib.pyplot as plt

    from scalelab.report.pages import page_calibration, page_scaling

    ctx, analysis = tiny_loss
    final = final_rows(scalelab.load_runs(tiny_store))
    for variant in ("mse", "crps_fair"):
        rows = final[final.loss_variant == variant]
        assert rows["val_bicubic_loss"].nunique() == 1  # one validation set
        assert analysis.bicubic["val_loss"][variant] == rows["val_bicubic_loss"].iloc[0]
    # the fair CRPS of identical members is the absolute error: crps_fair's bicubic loss
    # is the bicubic CRPS, which is the bicubic MAE
    rows = final[final.loss_variant == "crps_fair"]
    assert rows["val_bicubic_loss"].iloc[0] == pytest.approx(rows["val_bicubic_mae"].iloc[0],
                                                              rel=1e-6)
    (_, fig), = page_scaling(ctx, analysis)
    drawn = {round(line.get_ydata()[0], 12) for ax in fig.axes for line in ax.lines
             if line.get_label().startswith("bicubic upsampling")}
    assert drawn == {round(v, 12) for v in analysis.bicubic["val_loss"].values()}
    plt.close(fig)
    pages = page_calibration(ctx, analysis)
    crps_axes = [ax for ax in pages[0][1].axes if ax.get_title().startswith("validation CRPS")]
    assert any(line.get_label().startswith("bicubic upsampling")
               and line.get_ydata()[0] == pytest.approx(final["val_bicubic_crps"].iloc[0])
               for line in crps_axes[0].lines)
    for _, fig in pages:
        plt.close(fig)


def test_calibration_page_fits_the_sample_size_free_rank_departure(tiny_loss):
    ctx, analysis = tiny_loss
    assert "val_rank_departure" in analysis.calibration
    assert "val_rank_delta" not in analysis.calibration
    assert set(analysis.calibration_laws["val_rank_departure"]) == {"mse", "crps_fair"}


def test_predict_cli_says_how_far_it_beats_bicubic(tiny_store):
    import json

    cmd = [sys.executable, "-m", "scalelab.cli", "predict", str(tiny_store), "--target",
           "params=2e4", "--y", "val_mse"]
    text = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=True).stdout
    found = json.loads(subprocess.run(cmd + ["--json"], capture_output=True, text=True,
                                      timeout=600, check=True).stdout)
    bicubic = final_rows(scalelab.load_runs(tiny_store))["val_bicubic_mse"].iloc[0]
    for item in found:
        assert item["bicubic"] == pytest.approx(bicubic, rel=1e-12)
        gain = (bicubic - item["prediction"]) / bicubic
        assert item["better_than_bicubic"] == pytest.approx(gain, rel=1e-9)
        word = "better" if gain >= 0 else "worse"
        assert f"predicted {abs(gain):.1%} {word} than bicubic upsampling ({bicubic:.4g})" in text


def test_bicubic_value_is_one_reference_or_none():
    from scalelab.runs.baselines import bicubic_column, bicubic_value, improvement, versus_bicubic

    assert bicubic_column("val_loss") == "val_bicubic_loss"
    assert bicubic_column("val_mse") == "val_bicubic_mse"
    assert bicubic_column("params") is None and bicubic_column("val_p99_bias") is None
    same = pd.DataFrame({"val_bicubic_mse": [0.04, 0.04, np.nan]})
    assert bicubic_value(same, "val_mse") == 0.04
    differ = pd.DataFrame({"val_bicubic_mse": [0.04, 0.05]})  # two validation sets
    assert bicubic_value(differ, "val_mse") is None
    assert bicubic_value(same, "val_crps") is None  # not recorded
    assert improvement(0.03, 0.04, "val_mse") == pytest.approx(0.25)
    assert improvement(30.0, 24.0, "val_psnr") == pytest.approx(0.25)  # larger is better
    assert versus_bicubic(0.05, 0.04, "val_mse") == \
        "25.0% worse than bicubic upsampling (0.04)"
    assert versus_bicubic(0.05, None, "val_mse") is None
