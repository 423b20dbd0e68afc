"""The gap's law under geographic shift (closed forms) and the report's shift page."""

import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.image as mpimg  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from scalelab.laws.gap import GapLaw, gap_values  # noqa: E402
from scalelab.report.context import ReportContext  # noqa: E402
from scalelab.report.shift import compare_regions, page_shift  # noqa: E402

N = np.geomspace(1e3, 1e5, 7)


def law_gap(G, B, beta, noise=0.0, seed=0):
    rng = np.random.default_rng(seed)
    return G + B * (N / N[0]) ** (-beta) + rng.normal(0, noise, N.size)


def test_a_known_gap_law_is_recovered_and_its_closing_n_stated():
    # g(N) = −0.05 + (N/1e3)^(−1/2) reaches 0 at N* = 1e3 · (1/0.05)^2 = 4e5, 4× the largest
    law = GapLaw(n_bootstrap=300).fit(N, law_gap(-0.05, 1.0, 0.5, noise=1e-4))
    p = law.params_
    assert p["G"] == pytest.approx(-0.05, abs=2e-3) and p["beta"] == pytest.approx(0.5, abs=0.02)
    assert law.closes_at_ == pytest.approx(4e5, rel=0.1)
    lo, hi = law.closes_interval_
    assert lo < 4e5 < hi and law.never_fraction_ < 0.05
    sentence = law.closing_sentence()
    assert sentence.startswith(f"closes at N ≈ {law.closes_at_:.3g}, {law.closes_at_ / 1e5:.3g}× "
                               "the largest run (90% interval")
    assert law.trend == "shrinks"


@pytest.mark.parametrize("G, B, beta, start", [
    (0.2, 1.0, 0.5, "never: the gap shrinks with N (β = 0.50) but towards a floor G = 0.2"),
    (0.5, -0.3, 0.5, "never, the gap does not shrink: it grows with N"),
    (0.3, 0.0, 0.0, "never, the gap does not shrink: it stays flat with N"),
    (-0.2, 0.1, 0.5, "nothing to close: at the largest N (1e+05) the shifted result is"),
    # zero gap at N* = 1e3 · (1/0.001)^2 = 1e9, 1e4× the largest run
    (-0.001, 1.0, 0.5, "not within the fitted range: the law reaches zero gap only at N ≈ 1e+09"),
])
def test_the_closing_sentence_says_why_not(G, B, beta, start):
    law = GapLaw(n_bootstrap=100).fit(N, law_gap(G, B, beta))
    assert law.closing_sentence().startswith(start), law.closing_sentence()


def test_gap_kinds_and_the_direction_of_better():
    shifted, reference = np.array([2.0, 3.0]), np.array([1.0, 2.0])
    np.testing.assert_allclose(gap_values(shifted, reference), [1.0, 1.0])
    np.testing.assert_allclose(gap_values(shifted, reference, "ratio"), [1.0, 0.5])
    # PSNR: higher is better, so a shifted PSNR below the in-region one is a positive gap
    np.testing.assert_allclose(gap_values(reference, shifted, higher_is_better=True), [1, 1])


def shift_table(with_regions=True):
    """Runs trained on 'europe': val_rmse = 0.1 + 2·N^(−0.3); the tropics' gap closes
    (−0.05 + (N/N₀)^(−0.5)), the arctic's stays at 0.2; two data sizes."""
    rows = []
    options = json.dumps({"regions": {"train": "europe", "eval": ["tropics", "arctic"]}})
    for i, n in enumerate(N):
        for samples in (512, 2048):
            home = 0.1 + 2 * n**-0.3 * (1.1 if samples == 512 else 1.0)
            row = {"run_id": f"r{i}_{samples}", "step": 100, "params": n, "samples": samples,
                   "loss_variant": "mse", "val_rmse": home, "options": options}
            if with_regions:
                row["val_rmse@tropics"] = home - 0.05 + (n / N[0]) ** -0.5
                row["val_rmse@arctic"] = home + 0.2
            rows.append(row)
    return pd.DataFrame(rows)


def test_compare_regions_fits_each_region_and_each_gap():
    comp = compare_regions(shift_table(), "val_rmse", n_bootstrap=50)
    assert comp.train_region == "europe" and comp.shifted == ["tropics", "arctic"]
    assert comp.exponent("europe", 2048.0) == pytest.approx(0.3, abs=0.01)
    tropics, arctic = comp.gaps[("tropics", 2048.0)], comp.gaps[("arctic", 2048.0)]
    assert tropics.closes_at_ == pytest.approx(4e5, rel=0.05)
    assert arctic.params_["G"] == pytest.approx(0.2, abs=1e-9) and arctic.trend == "flat"
    text = " ".join(comp.sentences())
    assert "tropics (U = 2,048): α =" in text and "closes at N ≈ 4e+05" in text
    assert "arctic (U = 2,048)" in text and "never, the gap does not shrink" in text


def test_the_shift_page_renders_and_only_with_region_metrics(tmp_path):
    ctx = ReportContext.build(shift_table(), y="val_rmse")
    pages = page_shift(ctx, None)
    assert [name for name, _ in pages] == ["shift_mse"]
    fig = pages[0][1]
    texts = " ".join(t.get_text() for t in fig.texts)
    assert "Does scale close the gap?" in texts and "closes at N ≈" in texts
    out = tmp_path / "shift.png"
    fig.savefig(out, dpi=60)
    image = mpimg.imread(out)
    assert image.shape[0] > 300 and image[..., :3].std() > 0.05  # drawn, not blank
    renderer = fig.canvas.get_renderer()
    for artist in [*fig.texts, *(ax.title for ax in fig.axes),
                   *(ax.xaxis.label for ax in fig.axes), *(ax.yaxis.label for ax in fig.axes)]:
        box = artist.get_window_extent(renderer)  # nothing drawn off the page
        assert box.x0 >= -1 and box.x1 <= fig.bbox.width + 1, artist.get_text()[:40]
        assert box.y0 >= -1 and box.y1 <= fig.bbox.height + 1, artist.get_text()[:40]
    axes_titles = [ax.get_title() for ax in fig.axes]
    assert any("vs U" in t for t in axes_titles)  # U varies: its panel is drawn
    assert page_shift(ReportContext.build(shift_table(False), y="val_rmse"), None) == []
    from scalelab.report.pages import PAGES

    assert page_shift in PAGES


def test_a_floor_whose_interval_includes_zero_is_not_resolved():
    # a noisy gap shrinking towards 0.02: the floor's interval straddles zero, so whether
    # scale closes it is not resolved, and the sentence says so rather than "never"
    law = GapLaw(n_bootstrap=300).fit(N, law_gap(0.02, 1.0, 0.5, noise=0.03, seed=3))
    g_lo, g_hi = law.interval("G")
    assert g_lo < 0 < g_hi and not np.isfinite(law.closes_at_)
    sentence = law.closing_sentence()
    assert sentence.startswith("not resolved: the gap shrinks with N"), sentence
    assert f"{1 - law.never_fraction_:.0%} of bootstrap refits close it" in sentence
