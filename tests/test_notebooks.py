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


def _extras():
    import tomllib

    with open(ANALYSIS.parent / "pyproject.toml", "rb") as fh:
        return tomllib.load(fh)["project"]["optional-dependencies"]


def test_the_notebook_extra_brings_nbconvert_and_the_test_extra_brings_it():
    """``pip install -e ".[notebook]"`` (or ``.[test]``) installs what ``jupyter nbconvert
    --execute analysis/*.ipynb`` needs: nbconvert was missing."""
    import re

    names = {re.split(r"[<>=!~\[ ;]", r, maxsplit=1)[0].lower().replace("_", "-")
             for r in _extras()["notebook"]}
    assert {"nbconvert", "nbclient", "nbformat", "jupyter-client", "ipykernel"} <= names
    assert "scalelab[notebook]" in _extras()["test"]


def test_jupyter_nbconvert_executes_a_notebook_that_uses_scalelab(tmp_path):
    """The command a user runs on analysis/*.ipynb, on a small notebook of the same kind
    (the analysis notebooks themselves run in test_notebook_runs_top_to_bottom)."""
    import subprocess
    import sys

    book = nbformat.v4.new_notebook()
    book.cells = [nbformat.v4.new_code_cell(
        "import numpy as np, pandas as pd\n"
        "from scalelab.laws import PowerLaw\n"
        "n = np.array([1e3, 3e3, 1e4, 3e4, 1e5])\n"
        "law = PowerLaw(n_bootstrap=0).fit(pd.DataFrame({'params': n, 'val_loss': 5 * n ** -0.3}),"
        " x='params', y='val_loss')\n"
        "print(round(float(law.params_['alpha']), 6))")]
    path = tmp_path / "small.ipynb"
    nbformat.write(book, path)
    jupyter = Path(sys.executable).with_name("jupyter")
    done = subprocess.run([str(jupyter), "nbconvert", "--to", "notebook", "--execute",
                           "--output", "ran.ipynb", str(path)], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "PYTHONPATH": str(ANALYSIS.parent)})
    assert done.returncode == 0, done.stderr
    ran = nbformat.read(tmp_path / "ran.ipynb", as_version=4)
    assert ran.cells[0].outputs[0]["text"].strip() == "0.3"
