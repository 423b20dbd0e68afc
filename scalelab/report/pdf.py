"""The PDF report: a runs table in, a multi-page PDF (and a PNG per page) out.

Pages: summary (what was swept, headline predictions with intervals, best variant,
backtest error), scaling curves, fit quality, compute-optimal frontier, calibration,
training curves, reproducibility; text that does not fit a page continues on the next
(:class:`scalelab.report.layout.Flow`), never off the bottom or over the footer. A page
that cannot be drawn says why in one
sentence; when nothing at all can be drawn (an empty table) ``write_report`` raises
one clear error before writing anything. Runs left out of the fits (not finished, a
missing, infinite or non-positive value) are warned as :class:`ScalelabWarning`, one
sentence per reason with its count, and listed on the summary page; whatever stops the
writer, no temporary file or page image of this call is left behind.
"""

from __future__ import annotations

import re

import sys
import warnings
from pathlib import Path

import matplotlib

import matplotlib.pyplot as plt
from matplotlib.backends.backend_pdf import PdfPages
import pandas as pd
from tqdm.auto import tqdm

from scalelab._errors import ScalelabError, ScalelabWarning
from scalelab._files import temporary_path, writable_folder
from scalelab.report.analysis import N_BOOTSTRAP, analyse
from scalelab.report.context import ReportContext
from scalelab.report.pages import PAGES, render_page


def write_report(runs: pd.DataFrame, path: str | Path, title: str = "scalelab report",
                 y: str | None = None, targets=None, spec=None,
                 source: str = "", n_bootstrap: int = N_BOOTSTRAP, png: bool = True,
                 progress: bool = False, result: str | None = None) -> Path:
    """Write the report of ``runs`` to ``path`` and each page as ``<stem>_<page>.png``.

    ``spec``: the sweep's :class:`~scalelab.sweep.SweepSpec` (or its document, a mapping,
    e.g. as a store saved it), from which its metric, targets and ``result`` are taken
    (:func:`scalelab.report.context.spec_settings`). ``y``: the metric to fit and
    predict; by default the spec's ``metric.name``, else ``val_loss``. ``targets``: a list
    like ``["params=1e8", "compute=1e18"]`` or dicts; by default the spec's
    ``scalelab.targets``, else 10× the largest model. ``result``: each run's value,
    ``"final"`` or ``"best"`` over its curve (default: the spec's ``scalelab.result``, else
    final). ``progress`` shows a bar over the fits and pages on stderr.
    """
    path = Path(path)
    if path.suffix.lower() != ".pdf":
        raise ScalelabError(f"{path}: a report is a PDF; give an output path ending in .pdf.")
    writable_folder(path, "report")  # before any work
    ctx = ReportContext.build(runs, y=y, targets=targets, spec=spec, source=source,
                              title=title, result=result)
    for sentence in ctx.dropped:  # `scalelab report` prints these on stdout
        warnings.warn(sentence, ScalelabWarning, stacklevel=2)
    bar = tqdm(total=len(PAGES) + 1, desc="report", unit="step", disable=not progress,
               file=sys.stderr)
    bar.set_postfix_str("fitting laws")
    analysis = analyse(ctx, n_bootstrap=n_bootstrap)
    bar.update(1)
    tmp = temporary_path(path)  # unique per process: two writers of one report never collide
    pngs = []
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with matplotlib.rc_context({"figure.max_open_warning": 0}), PdfPages(tmp) as pdf:
            for page in PAGES:
                name = page.__name__.removeprefix("page_")
                bar.set_postfix_str(name.replace("_", " "))
                for fig_name, fig in render_page(page, ctx, analysis):
                    pdf.savefig(fig)
                    if png:
                        # a variant's name may hold spaces, + and * (mse + 0.1*kl)
                        safe = re.sub(r"[^\w.=-]+", "_", fig_name).strip("_")
                        out = path.with_name(f"{path.stem}_{safe}.png")
                        fig.savefig(out, dpi=100)
                        pngs.append(out)
                    plt.close(fig)
                bar.update(1)
            info = pdf.infodict()
            info["Title"] = title
            info["Creator"] = "scalelab"
        tmp.replace(path)
    except BaseException as err:  # nothing half-written is left behind, whatever stopped us
        for leftover in (tmp, *pngs):
            leftover.unlink(missing_ok=True)
        if isinstance(err, OSError):
            raise ScalelabError(f"{path}: the report cannot be written there "
                                f"({err.strerror or type(err).__name__}); give a writable "
                                f"output path.") from None
        raise
    finally:
        bar.close()
    return path
