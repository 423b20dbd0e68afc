"""Bad specs and bad command lines, as a new user writes them: each is refused before any
work starts, with one sentence naming what is wrong, no traceback, no file left behind
and no run started (issue 18).

Each case is a small YAML spec (the base spec below with a change) and an argv; most
run in-process through ``scalelab.cli.main`` (fast), a few as real subprocesses (the
console's own output). For each: a non-zero exit, no "Traceback", one line
``scalelab: error: <sentence>`` that names the offending key or value, and the tmp
folder holds exactly what it held before (no store, report, export or temporary file;
a store read by a reading command may gain SQLite's own ``-wal``/``-shm`` index).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from scalelab.cli import main

ROOT = Path(__file__).resolve().parents[1]

BASE = {
    "name": "fuzz",
    "parameters": "  width: {value: 4}\n  samples: {value: 16}\n  field_size: {value: 16}\n"
                  "  val_samples: {value: 8}\n  steps: {value: 4}\n  eval_every: {value: 2}\n"
                  "  batch_size: {value: 4}\n",
}


def spec_text(params: str = "", top: str = "", scalelab: str = "", name: str = "fuzz",
              replace: dict | None = None) -> str:
    """The base spec with extra parameter lines, top-level lines and scalelab lines."""
    body = BASE["parameters"]
    for old, new in (replace or {}).items():
        body = re.sub(rf"  {old}: .*\n", new, body)
    text = (f"name: {name}\nmethod: grid\n{top}parameters:\n{body}{params}"
            f"scalelab:\n  workers: 1\n  store: reports/fuzz/runs.db\n{scalelab}")
    return text


def p(line: str) -> str:
    return f"  {line}\n"


def s(line: str) -> str:
    return f"  {line}\n"


# (id, spec text or bytes (None: the base spec), argv with SPEC/STORE/TMP, words the sentence names)
SPEC_CASES = [
    # reading the file
    ("spec-is-folder", None, ["sweep", "plan", "TMP"], ["is a folder, not a spec file"]),
    ("spec-missing", None, ["sweep", "plan", "TMP/nope.yaml"], ["no such sweep spec file"]),
    ("not-utf8", "name: caf\xe9\n".encode("latin-1") + b"parameters:\n  width: {value: 4}\n",
     ["sweep", "plan", "SPEC"], ["not UTF-8", "line 1"]),
    ("python-tag", spec_text(p("seed: !!python/object/apply:os.system [echo hi]")),
     ["sweep", "plan", "SPEC"], ["YAML tags are not allowed", "python/object/apply"]),
    ("python-name-tag", spec_text(p("seed: !!python/name:os.system ''")),
     ["sweep", "plan", "SPEC"], ["YAML tags are not allowed"]),
    ("duplicate-top-key", "name: a\nname: b\nparameters:\n  width: {value: 4}\n",
     ["sweep", "plan", "SPEC"], ["'name' is given twice"]),
    ("duplicate-parameter", spec_text(p("width: {value: 8}")), ["sweep", "plan", "SPEC"],
     ["'width' is given twice"]),
    ("yaml-syntax", "name: a\nparameters: {width: [4, 8\n", ["sweep", "plan", "SPEC"],
     ["YAML syntax error", "line"]),
    ("spec-is-list", "- width: 4\n", ["sweep", "plan", "SPEC"], ["YAML mapping", "list"]),
    ("spec-empty", "", ["sweep", "plan", "SPEC"], ["YAML mapping", "NoneType"]),
    # top level
    ("top-key-typo", spec_text(top="paramters: {}\n"), ["sweep", "plan", "SPEC"],
     ["'paramters'"]),
    ("method-bayes", spec_text(top="method: bayes\n").replace("method: grid\n", "", 1),
     ["sweep", "plan", "SPEC"], ["method 'bayes'"]),
    ("metric-goal", spec_text(top="metric: {name: val_loss, goal: maximise}\n"),
     ["sweep", "plan", "SPEC"], ["metric.goal", "maximise"]),
    ("name-traversal", spec_text(name="../../x"), ["sweep", "plan", "SPEC"],
     ["name '../../x'", "plain name"]),
    ("name-slash", spec_text(name="a/b"), ["sweep", "plan", "SPEC"], ["name 'a/b'"]),
    ("name-empty", spec_text(name="''"), ["sweep", "plan", "SPEC"], ["name ''"]),
    ("early-terminate", spec_text(top="early_terminate: {type: median}\n"),
     ["sweep", "plan", "SPEC"], ["early_terminate"]),
    # parameter entries
    ("value-and-values", spec_text(p("seed: {value: 1, values: [1, 2]}")),
     ["sweep", "plan", "SPEC"], ["parameters.seed", "'value' and 'values'"]),
    ("values-empty", spec_text(p("seed: {values: []}")), ["sweep", "plan", "SPEC"],
     ["parameters.seed.values"]),
    ("values-not-list", spec_text(p("seed: {values: 3}")), ["sweep", "plan", "SPEC"],
     ["parameters.seed.values"]),
    ("bare-value", spec_text(p("seed: 3")), ["sweep", "plan", "SPEC"], ["parameters.seed"]),
    ("param-typo", spec_text(p("widht: {value: 4}")), ["sweep", "plan", "SPEC"], ["'widht'"]),
    ("entry-key-typo", spec_text(p("seed: {valeu: 3}")), ["sweep", "plan", "SPEC"],
     ["'valeu'"]),
    ("width-text", spec_text(replace={"width": p("width: {value: wide}")}),
     ["sweep", "plan", "SPEC"], ["width", "'wide'"]),
    ("width-zero", spec_text(replace={"width": p("width: {value: 0}")}),
     ["sweep", "plan", "SPEC"], ["width", "got 0"]),
    ("width-negative", spec_text(replace={"width": p("width: {value: -4}")}),
     ["sweep", "plan", "SPEC"], ["width", "-4"]),
    ("lr-inf", spec_text(p("lr: {value: .inf}")), ["sweep", "plan", "SPEC"],
     ["lr must be positive and finite", "inf"]),
    ("lr-nan", spec_text(p("lr: {value: .nan}")), ["sweep", "plan", "SPEC"], ["lr", "nan"]),
    ("lr-zero", spec_text(p("lr: {value: 0}")), ["sweep", "plan", "SPEC"], ["lr", "got 0"]),
    ("weight-decay-negative", spec_text(p("weight_decay: {value: -1}")),
     ["sweep", "plan", "SPEC"], ["weight_decay", "-1"]),
    ("steps-zero", spec_text(replace={"steps": p("steps: {value: 0}")}),
     ["sweep", "plan", "SPEC"], ["steps", "got 0"]),
    ("warmup-too-long", spec_text(p("warmup_steps: {value: 4}")), ["sweep", "plan", "SPEC"],
     ["warmup_steps", "steps=4"]),
    ("scale-not-dividing", spec_text(p("scale: {value: 3}")), ["sweep", "plan", "SPEC"],
     ["scale 3", "field_size 16"]),
    ("family-unknown", spec_text(p("family: {value: resnet}")), ["sweep", "plan", "SPEC"],
     ["family 'resnet'"]),
    ("loss-typo", spec_text(p("loss_variant: {value: msee}")), ["sweep", "plan", "SPEC"],
     ["loss_variant 'msee'"]),
    ("optimizer-unknown", spec_text(p("optimizer: {value: adamx}")), ["sweep", "plan", "SPEC"],
     ["optimizer 'adamx'"]),
    ("device-tpu", spec_text(p("device: {value: tpu}")), ["sweep", "plan", "SPEC"],
     ["device 'tpu'"]),
    ("gridded-without-path", spec_text(p("field: {value: gridded}")),
     ["sweep", "plan", "SPEC"], ["gridded", "options.path"]),
    ("gridded-missing-file", spec_text(p("field: {value: gridded}") +
                                       p("options: {value: {path: TMP/none.nc, "
                                         "variable: t2m}}")),
     ["sweep", "plan", "SPEC"], ["none.nc"]),
    # options
    ("option-typo-field", spec_text(p("options: {value: {slpoe: 2}}")),
     ["sweep", "plan", "SPEC"], ["'slpoe'", "did you mean 'slope'"]),
    ("option-typo-family", spec_text(p("family: {value: swinir}") +
                                     p("options: {value: {windw: 4}}")),
     ["sweep", "plan", "SPEC"], ["'windw'", "did you mean 'window'"]),
    ("option-of-another-family", spec_text(p("options: {value: {window: 4}}")),
     ["sweep", "plan", "SPEC"], ["options.window", "family swinir", "family edsr"]),
    ("option-of-another-field", spec_text(p("options: {value: {viscosity: 0.1}}")),
     ["sweep", "plan", "SPEC"], ["options.viscosity", "field turbulence"]),
    ("option-not-mapping", spec_text(p("options: {value: 3}")), ["sweep", "plan", "SPEC"],
     ["options", "3"]),
    ("option-bad-choice", spec_text(p("family: {value: diffusion}") +
                                    p("options: {value: {sampler: ddim}}")),
     ["sweep", "plan", "SPEC"], ["sampler='ddim'"]),
    # sizes that cannot fit, numbers of runs that cannot be planned
    ("width-huge", spec_text(replace={"width": p("width: {value: 1000000}")}),
     ["sweep", "plan", "SPEC"], ["width=1000000", "GB", "memory"]),
    ("depth-huge", spec_text(p("depth: {value: 100000000}")), ["sweep", "plan", "SPEC"],
     ["depth=100000000", "memory"]),
    ("batch-huge", spec_text(replace={"batch_size": p("batch_size: {value: 1000000000}")}),
     ["sweep", "plan", "SPEC"], ["batch_size=1000000000", "memory"]),
    ("samples-huge", spec_text(replace={"samples": p("samples: {value: 1000000000}")}),
     ["sweep", "plan", "SPEC"], ["samples=1000000000", "memory"]),
    ("samples-1e9-text", spec_text(replace={"samples": p("samples: {value: 1e9}")}),
     ["sweep", "plan", "SPEC"], ["samples=1000000000", "memory"]),
    ("samples-fraction-text", spec_text(replace={"samples": p("samples: {value: 1.25e1}")}),
     ["sweep", "plan", "SPEC"], ["samples", "'1.25e1'"]),
    ("random-run-cap-huge", spec_text(top="run_cap: 1000000\n").replace("method: grid",
                                                                          "method: random"),
     ["sweep", "plan", "SPEC"], ["run_cap 1000000", "10000"]),
    ("run-cap-text", spec_text(top="run_cap: 1e6\n"), ["sweep", "plan", "SPEC"],
     ["run_cap", "'1e6'"]),
    ("grid-too-large", spec_text(p("seed: {values: [" + ", ".join(map(str, range(200))) + "]}")
                                 + p("lr: {values: [" + ", ".join(f"{1e-4 * (i + 1):.6g}" for i in
                                                                  range(60)) + "]}")),
     ["sweep", "plan", "SPEC"], ["12000 points", "10000"]),
    ("random-without-cap", spec_text().replace("method: grid", "method: random"),
     ["sweep", "plan", "SPEC"], ["run_cap"]),
    ("distribution-on-grid", spec_text(p("lr: {distribution: uniform, min: 0.001, max: 0.01}")),
     ["sweep", "plan", "SPEC"], ["parameters.lr", "grid"]),
    ("distribution-min-inf", spec_text(p("lr: {distribution: uniform, min: -.inf, max: 1}"),
                                       top="run_cap: 2\n").replace("method: grid",
                                                                   "method: random"),
     ["sweep", "plan", "SPEC"], ["parameters.lr.min", "finite"]),
    # the scalelab section
    ("store-empty", spec_text().replace("  store: reports/fuzz/runs.db\n", "  store:\n"),
     ["sweep", "plan", "SPEC"], ["scalelab.store is empty"]),
    ("store-empty-text", spec_text().replace("store: reports/fuzz/runs.db", "store: ''"),
     ["sweep", "plan", "SPEC"], ["scalelab.store is empty"]),
    ("report-not-pdf", spec_text(scalelab=s("report: out.txt")), ["sweep", "plan", "SPEC"],
     ["scalelab.report 'out.txt'", ".pdf"]),
    ("report-empty", spec_text(scalelab=s("report:")), ["sweep", "plan", "SPEC"],
     ["scalelab.report is empty"]),
    ("targets-string", spec_text(scalelab=s('targets: "params=1e6"')),
     ["sweep", "plan", "SPEC"], ["scalelab.targets must be a list", "'params=1e6'"]),
    ("targets-unknown", spec_text(scalelab=s("targets: [flops=1e6]")),
     ["sweep", "plan", "SPEC"], ["scalelab.targets", "flops=1e6"]),
    ("workers-negative", spec_text().replace("workers: 1", "workers: -1"),
     ["sweep", "plan", "SPEC"], ["scalelab.workers", "-1"]),
    ("workers-zero", spec_text().replace("workers: 1", "workers: 0"),
     ["sweep", "plan", "SPEC"], ["scalelab.workers", "got 0"]),
    ("executor-unknown", spec_text(scalelab=s("executor: slurm")), ["sweep", "plan", "SPEC"],
     ["scalelab.executor 'slurm'"]),
    ("devices-negative", spec_text(scalelab=s("devices: [-1]")), ["sweep", "plan", "SPEC"],
     ["scalelab.devices", "[-1]"]),
    ("scalelab-key-typo", spec_text(scalelab=s("wokers: 2")), ["sweep", "plan", "SPEC"],
     ["'wokers'"]),
    ("max-attempts-zero", spec_text(scalelab=s("max_attempts: 0")), ["sweep", "plan", "SPEC"],
     ["scalelab.max_attempts", "0"]),
    ("wandb-mode", spec_text(scalelab=s("wandb: {mode: loud}")), ["sweep", "plan", "SPEC"],
     ["scalelab.wandb.mode", "'loud'"]),
    # command-line options and assignments
    ("cli-workers-negative", None, ["sweep", "run", "SPEC", "--workers", "-1"],
     ["--workers", "-1"]),
    ("cli-workers-zero", None, ["sweep", "run", "SPEC", "--workers", "0"], ["--workers", "0"]),
    ("cli-workers-word", None, ["run", "SPEC", "--workers", "many"], ["--workers", "'many'"]),
    ("cli-store-proc", None, ["sweep", "run", "SPEC", "--store", "/proc/nope/runs.db"],
     ["/proc/nope/runs.db", "/proc"]),
    ("cli-store-empty", None, ["sweep", "run", "SPEC", "--store", ""], ["--store", "empty"]),
    ("cli-store-folder", None, ["sweep", "run", "SPEC", "--store", "TMP"],
     ["is a folder, not a run store"]),
    ("cli-store-under-file", None, ["sweep", "run", "SPEC", "--store", "SPEC/runs.db"],
     ["is a file", "no folder can be made"]),
    ("cli-executor", None, ["sweep", "run", "SPEC", "--executor", "slurm"],
     ["--executor", "'slurm'"]),
    ("cli-assign-typo", None, ["sweep", "plan", "SPEC", "widht=8"], ["'widht'"]),
    ("cli-assign-not-kv", None, ["sweep", "plan", "SPEC", "width"], ["'width'", "KEY=VALUE"]),
    ("cli-assign-inf", None, ["sweep", "plan", "SPEC", "lr=.inf"], ["lr", "inf"]),
    ("cli-wandb-unwritable", None, ["sweep", "wandb", "SPEC", "-o", "/proc/nope/sweep.yaml"],
     ["/proc/nope/sweep.yaml", "W&B sweep config"]),
    ("cli-wandb-folder", None, ["sweep", "wandb", "SPEC", "-o", "TMP"], ["is a folder"]),
    ("device-cuda-99", spec_text(p("device: {value: 'cuda:99'}")),
     ["sweep", "run", "SPEC", "--no-wandb", "--quiet"], ["device cuda:99", "auto"]),
]

# cases on an existing store (made once, copied into each test's folder): STORE
STORE_CASES = [
    ("runs-list-missing", ["runs", "list", "TMP/none.db"], ["no run store here"]),
    ("runs-list-folder", ["runs", "list", "TMP"], ["is a folder, not a run store"]),
    ("runs-list-text", ["runs", "list", "SPEC"], ["not a SQLite file"]),
    ("runs-list-status", ["runs", "list", "STORE", "--status", "done"], ["--status 'done'"]),
    ("runs-list-metric", ["runs", "list", "STORE", "--metric", "val_los"],
     ["--metric 'val_los'", "did you mean 'val_loss'", "val_mse"]),
    ("runs-list-sweep", ["runs", "list", "STORE", "--sweep", "other"], ["sweep named 'other'"]),
    ("runs-list-sort", ["runs", "list", "STORE", "--sort", "colour"], ["--sort 'colour'"]),
    ("runs-show-prefix", ["runs", "show", "STORE", "zzz"], ["'zzz'"]),
    ("runs-export-suffix", ["runs", "export", "STORE", "-o", "TMP/x.txt"],
     ["unknown export format .txt"]),
    ("runs-export-unwritable", ["runs", "export", "STORE", "-o", "/proc/nope/x.csv"],
     ["/proc/nope/x.csv", "export"]),
    ("report-metric", ["report", "STORE", "--y", "val_los", "-o", "TMP/r.pdf"],
     ["--y 'val_los'", "val_loss"]),
    ("report-not-pdf", ["report", "STORE", "-o", "TMP/r.txt"], ["r.txt", ".pdf"]),
    ("report-unwritable", ["report", "STORE", "-o", "/proc/nope/r.pdf"],
     ["/proc/nope/r.pdf", "report"]),
    ("report-missing", ["report", "TMP/none.db"], ["no such run store"]),
    ("report-target", ["report", "STORE", "--target", "flops=1e6", "-o", "TMP/r.pdf"],
     ["flops=1e6"]),
]


@pytest.fixture(scope="module")
def small_store(tmp_path_factory):
    """A store with two finished runs (curves of val_loss and val_mse), written directly."""
    from scalelab.config import RunConfig
    from scalelab.sweep.store import RunStore

    path = tmp_path_factory.mktemp("store") / "runs.db"
    with RunStore(path) as store:
        configs = [RunConfig(width=w, samples=16, val_samples=8, field_size=16, steps=4)
                   for w in (4, 8)]
        store.add_sweep("fuzz", {"name": "fuzz"}, configs)
        for cfg in configs:
            store.mark_running(cfg.run_id)
            store.record_result(cfg.run_id, "finished",
                                [{"step": s, "val_loss": 1.0 / (s + 1), "val_mse": 0.5 / (s + 1)}
                                 for s in (0, 2, 4)], {"params": 100 * cfg.width})
    return path


def _listing(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")
            if not p.name.endswith(("-wal", "-shm"))}  # SQLite's index of a store read


def _fill(argv, tmp: Path, spec: Path, store: Path | None = None) -> list[str]:
    out = []
    for arg in argv:
        arg = arg.replace("SPEC", str(spec)).replace("TMP", str(tmp))
        out.append(arg.replace("STORE", str(store)) if store else arg)
    return out


def _check_refusal(rc: int, out: str, err: str, names: list[str]) -> str:
    assert rc not in (0, None), f"accepted: {out}{err}"
    assert "Traceback" not in out + err
    lines = [line for line in err.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("scalelab: error: ")]
    assert len(errors) == 1 and lines == errors, err  # the sentence alone: nothing started
    assert not out.strip(), out
    sentence = errors[0].removeprefix("scalelab: error: ")
    # one sentence: one line, ending as a sentence ends, no second sentence after ". "
    assert re.search(r"[.?]$", sentence), sentence
    assert not re.search(r"[a-z]\. [A-Z]", sentence), sentence
    for word in names:
        assert word in sentence, f"{word!r} not in {sentence!r}"
    return sentence


def _run(argv, capsys, cwd: Path, monkeypatch) -> tuple[int, str, str]:
    monkeypatch.chdir(cwd)  # a default store (reports/<name>/) would land in the tmp folder
    try:
        rc = main(argv)
    except SystemExit as exit_:  # argparse
        rc = exit_.code
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


@pytest.mark.parametrize("case", SPEC_CASES, ids=[c[0] for c in SPEC_CASES])
def test_bad_spec_or_command_line_is_one_sentence_before_any_work(case, tmp_path, capsys,
                                                                     monkeypatch):
    name, text, argv, names = case
    if name == "spec-is-folder":
        (tmp_path / "folder.yaml").mkdir()
        argv = ["sweep", "plan", str(tmp_path / "folder.yaml")]
    spec = tmp_path / "spec.yaml"
    text = spec_text() if text is None else text
    if isinstance(text, bytes):
        spec.write_bytes(text)
    else:
        spec.write_text(text.replace("TMP", str(tmp_path)))
    before = _listing(tmp_path)
    rc, out, err = _run(_fill(argv, tmp_path, spec), capsys, tmp_path, monkeypatch)
    _check_refusal(rc, out, err, names)
    assert _listing(tmp_path) == before  # no store, report, export or temporary file


def test_device_cuda_without_a_gpu_is_refused_before_the_store_opens(tmp_path, capsys,
                                                                      monkeypatch):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU (device-cuda-99 covers the refusal)")
    spec = tmp_path / "spec.yaml"
    spec.write_text(spec_text(p("device: {value: cuda}")))
    rc, out, err = _run(["sweep", "run", str(spec), "--no-wandb", "--quiet"], capsys, tmp_path,
                        monkeypatch)
    sentence = _check_refusal(rc, out, err, ["device cuda", "no CUDA GPU",
                                             "device: auto or cpu"])
    assert sentence.endswith("use device: auto or cpu.")
    assert _listing(tmp_path) == {"spec.yaml"}


@pytest.mark.parametrize("case", STORE_CASES, ids=[c[0] for c in STORE_CASES])
def test_bad_command_on_a_store_is_one_sentence_and_writes_nothing(case, small_store, tmp_path,
                                                                   capsys, monkeypatch):
    name, argv, names = case
    store = tmp_path / "runs.db"
    store.write_bytes(small_store.read_bytes())
    spec = tmp_path / "spec.yaml"
    spec.write_text(spec_text())
    before, data = _listing(tmp_path), store.read_bytes()
    rc, out, err = _run(_fill(argv, tmp_path, spec, store), capsys, tmp_path, monkeypatch)
    _check_refusal(rc, out, err, names)
    assert _listing(tmp_path) == before
    assert store.read_bytes() == data


SUBPROCESS_CASES = [
    (spec_text(p("seed: !!python/object/apply:os.system [echo hacked]")),
     ["sweep", "run", "SPEC", "--no-wandb"], ["YAML tags are not allowed"]),
    (spec_text(), ["sweep", "run", "SPEC", "--workers", "-1", "--no-wandb"], ["--workers"]),
    (spec_text(replace={"width": p("width: {value: 1000000}")}), ["sweep", "plan", "SPEC"],
     ["width=1000000"]),
]


@pytest.mark.parametrize("case", SUBPROCESS_CASES, ids=["tag", "workers", "width"])
def test_the_console_prints_the_sentence_alone(case, tmp_path):
    text, argv, names = case
    spec = tmp_path / "spec.yaml"
    spec.write_text(text)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "scalelab.cli", *_fill(argv, tmp_path, spec)],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)
    _check_refusal(done.returncode, done.stdout, done.stderr, names)
    assert done.returncode == 2
    assert "hacked" not in done.stdout + done.stderr
    assert _listing(tmp_path) == {"spec.yaml"}


def test_at_least_sixty_cases():
    assert len(SPEC_CASES) + len(STORE_CASES) + len(SUBPROCESS_CASES) >= 60


def test_a_good_spec_still_plans(tmp_path, capsys, monkeypatch):
    """The base of every case is itself valid: each refusal is the change's doing."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(spec_text(p("options: {value: {slope: 2.5}}")))
    rc, out, err = _run(["sweep", "plan", str(spec)], capsys, tmp_path, monkeypatch)
    assert rc == 0, err
    assert "1 runs" in out
    assert _listing(tmp_path) == {"spec.yaml"}


def test_loader_keeps_yaml_merge_keys_and_same_key_in_different_mappings(tmp_path):
    from scalelab.sweep import load_spec

    spec = tmp_path / "spec.yaml"
    spec.write_text(textwrap.dedent("""
        name: merge
        parameters:
          model:
            parameters:
              width: &w {value: 4}
              depth: {value: 1}
          data:
            parameters:
              samples: {value: 16}
              field_size: {value: 16}
              val_samples: {value: 8}
          seed: {<<: *w}
    """))
    runs = load_spec(spec).runs
    assert len(runs) == 1 and runs[0].width == 4 and runs[0].seed == 4
