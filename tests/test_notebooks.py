"""The notebooks in analysis/ run top to bottom (nbclient, a real kernel) and are
committed without outputs."""

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ANALYSIS = Path(__file__).resolve().parents[1] / "analysis"
NOTEBOOKS = sorted(ANALYSIS.glob("*.ipynb"))


def test_there_are_notebooks_and_they_are_committed_without_outputs():
    assert {p.name for p in NOTEBOOKS} >= {"fit_chinchilla.ipynb", "quickstart.ipynb"}
    for path in NOTEBOOKS:
        book = nbformat.read(path, as_version=4)
        for cell in book.cells:
            if cell.cell_type == "code":
                assert not cell.outputs and cell.execution_count is None, path.name


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_top_to_bottom(path, tiny_store, monkeypatch):
    # small inputs: the quickstart notebook reads the tiny sweep's store, the Chinchilla
    # notebook bootstraps 100 times instead of 300
    monkeypatch.setenv("SCALELAB_STORE", str(tiny_store))
    monkeypatch.setenv("SCALELAB_NOTEBOOK_BOOTSTRAP", "100")
    monkeypatch.delenv("MPLBACKEND", raising=False)  # let the kernel draw inline
    book = nbformat.read(path, as_version=4)
    NotebookClient(book, timeout=900, kernel_name="python3",
                   resources={"metadata": {"path": str(ANALYSIS)}}).execute()
    outputs = [o for c in book.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    # every figure cell produced an image
    assert any("image/png" in o.get("data", {}) for o in outputs)
