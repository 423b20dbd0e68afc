"""The learned-kernels page: how well the learned degradation (``learned_kernel``, ADK-Net;
:mod:`scalelab.data.kernels`) matches its target LR, and the runs it made the LR of
(torch-free).

For each kernels file the table's ``learned_kernel`` runs name (``options.kernel_path``),
the page reads the file's JSON record (no torch) and draws its held-out LR fidelity — the
RMSE against the target LR on test fields of the learned kernels, of the block mean and of
bicubic downsampling — with what it was fitted to; beside it, each run's ``val_rmse``
against N per degradation and loss variant. A table with no ``learned_kernel`` run emits
no page, so other reports do not change.
"""

from __future__ import annotations

import pandas as pd

from scalelab._errors import ScalelabError
from scalelab.report.analysis import Analysis
from scalelab.report.context import ReportContext

OPERATOR = "learned_kernel"


def kernel_files(final: pd.DataFrame) -> dict:
    """``{kernel_path: record or the sentence why it cannot be read}`` of the table's
    ``learned_kernel`` runs."""
    from scalelab.data.kernel_files import read_record, resolve_kernel_path

    if "degradation" not in final or not (final["degradation"] == OPERATOR).any():
        return {}
    out = {}
    for options in final.loc[final["degradation"] == OPERATOR, "options"] \
            if "options" in final else []:
        if isinstance(options, str):
            import json

            options = json.loads(options)
        path = (options or {}).get("kernel_path")
        if path is None or path in out:
            continue
        try:
            out[path] = read_record(resolve_kernel_path(path))
        except ScalelabError as err:
            out[path] = str(err)
    return out


def page_kernels(ctx: ReportContext, analysis: Analysis):
    """The learned kernels' held-out fidelity and the runs made with them; no page
    without a ``learned_kernel`` run."""
    import numpy as np

    from scalelab.report.figures import plot_scaling
    from scalelab.report.layout import message, text_block
    from scalelab.report.pages import new_page, panel

    files = kernel_files(ctx.final)
    if not files:
        return []
    fig = new_page("Learned degradation (adaptive kernels): LR fidelity against its target, "
                   "and the runs it made", ctx)
    left, right = fig.subplots(1, 2, gridspec_kw={"top": 0.86, "bottom": 0.36, "left": 0.07,
                                                  "right": 0.98, "wspace": 0.3})
    lines = ["## The kernels files"]
    names = ("learned_kernel", "block_mean", "bicubic")
    readable = {p: r for p, r in files.items() if isinstance(r, dict) and r.get("fidelity")}
    if readable:
        width = 0.8 / len(readable)
        for i, (path, record) in enumerate(readable.items()):
            values = [record["fidelity"].get(n, np.nan) for n in names]
            left.bar(np.arange(3) + i * width, values, width, label=str(path))
            for x, v in zip(np.arange(3) + i * width, values):
                left.text(x, v, f"{v:.3g}", ha="center", va="bottom", fontsize=6)
        left.set_xticks(np.arange(3) + 0.4 - width / 2, ["learned kernels", "block mean",
                                                         "bicubic"], fontsize=7)
        left.set_ylabel("held-out LR RMSE vs the target LR (field units)")
        left.set_title("LR fidelity on held-out fields", fontsize=8)
        left.legend(fontsize=6, frameon=False)
    else:
        message(left, "no kernels file of these runs could be read here.")
    for path, record in files.items():
        if isinstance(record, dict):
            s = record.get("settings", {})
            lines.append(f"{path}: {s.get('field')} ×{s.get('scale')}, target "
                         f"{s.get('target')} {s.get('options') or ''}, k = "
                         f"{s.get('kernel_size')}, width {s.get('width')}, depth "
                         f"{s.get('depth')}, {s.get('samples')} fields × {s.get('steps')} "
                         f"steps; held-out RMSE: " + ", ".join(
                             f"{n} {record.get('fidelity', {}).get(n, float('nan')):.4g}"
                             for n in names))
        else:
            lines.append(f"{path}: {record}")
    final = ctx.final.copy()
    if "loss_variant" in final and "degradation" in final:
        final["degradation · loss"] = final["degradation"] + " · " + final["loss_variant"]
        by = "degradation · loss"
    else:
        by = "degradation"
    y = "val_rmse" if "val_rmse" in final else ctx.y
    panel(right, plot_scaling, final, x="params", y=y, by=by,
          title=f"{y} vs N, per degradation and loss")
    lines += ["## Method",
              "Kernels: per LR pixel and channel, a k×k kernel (summing to 1) predicted from "
              "the HR by a small network and applied to the HR patch under the pixel, fitted "
              "to the target LR (scalelab fit-kernels); scored on held-out test fields. "
              "downscale_consistency coarsens each prediction by the run's own operator."]
    text_block(fig, 0.07, 0.29, lines, size=8, width=0.9)
    return [("kernels", fig)]
