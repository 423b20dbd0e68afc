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


def _bomb(levels: int = 8) -> str:
    """A YAML alias bomb: each anchor a list of nine aliases of the one before (9**levels)."""
    lines = ["  - &a0 [x, x, x, x, x, x, x, x, x]"]
    for level in range(1, levels):
        lines.append(f"  - &a{level} [" + ", ".join([f"*a{level - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def _nested(depth: int) -> str:
    return "[" * depth + "1" + "]" * depth


# Issue 25, second round: values that passed the plan and failed in the run, tracebacks,
# hangs and silent results at load (each: one sentence before any work, nothing left).
SPEC_CASES += [
    ("samples-seen-inf", spec_text(p("samples_seen: {value: .inf}"), replace={"steps": ""}),
     ["sweep", "plan", "SPEC"], ["samples_seen", "finite", "inf"]),
    ("samples-seen-1e400", spec_text(p("samples_seen: {value: 1e400}"), replace={"steps": ""}),
     ["sweep", "plan", "SPEC"], ["samples_seen", "finite"]),
    ("epochs-inf", spec_text(p("epochs: {value: .inf}"), replace={"steps": ""}),
     ["sweep", "plan", "SPEC"], ["epochs", "finite"]),
    ("epochs-nan", spec_text(p("epochs: {value: .nan}"), replace={"steps": ""}),
     ["sweep", "plan", "SPEC"], ["epochs", "nan"]),
    ("targets-null", spec_text(scalelab=s("targets: [null]")), ["sweep", "plan", "SPEC"],
     ["scalelab.targets", "None is not a target"]),
    ("targets-list-in-list", spec_text(scalelab=s("targets: [[params=1e5]]")),
     ["sweep", "plan", "SPEC"], ["scalelab.targets", "is not a target"]),
    ("target-key-twice", spec_text(scalelab=s("targets: ['params=1e5,params=2e5']")),
     ["sweep", "plan", "SPEC"], ["gives params twice"]),
    ("description-3000-deep", spec_text(top=f"description: {_nested(3000)}\n"),
     ["sweep", "plan", "SPEC"], ["nests lists or mappings too deeply"]),
    ("options-3000-deep", spec_text(p(f"options: {{value: {{slope: {_nested(3000)}}}}}")),
     ["sweep", "plan", "SPEC"], ["nests lists or mappings"]),
    ("description-40-deep", spec_text(top=f"description: {_nested(40)}\n"),
     ["sweep", "plan", "SPEC"], ["more than 32 levels deep"]),
    ("alias-bomb-description", spec_text(top="description:\n" + _bomb()),
     ["sweep", "plan", "SPEC"], ["200,000 values", "aliases"]),
    ("alias-bomb-options", spec_text(p("options: {value: {slope: [" + ", ".join(["*a4"] * 9)
                                       + "]}}"), top="description:\n" + _bomb(5)),
     ["sweep", "plan", "SPEC"], ["200,000 values"]),
    ("alias-recursive", spec_text(top="description: &loop [1, *loop]\n"),
     ["sweep", "plan", "SPEC"], ["YAML"]),
    ("spec-over-a-megabyte", spec_text(top="description: '" + "x" * 1_100_000 + "'\n"),
     ["sweep", "plan", "SPEC"], ["bytes", "more than a sweep spec may be"]),
    ("assign-overrides", None, ["sweep", "plan", "SPEC", "overrides=3"],
     ["overrides is scalelab's record", "cannot be set"]),
    ("overrides-not-list-with-assign", spec_text(top="overrides: 3\n"),
     ["sweep", "plan", "SPEC", "width=8"], ["overrides must be a list", "3"]),
    ("name-300-chars", spec_text(name="n" * 300).replace("  store: reports/fuzz/runs.db\n", ""),
     ["sweep", "run", "SPEC", "--no-wandb", "--quiet"], ["300 characters", "100"]),
    ("store-name-300-bytes", None, ["sweep", "run", "SPEC", "--store", "TMP/" + "s" * 300 + "/r.db"],
     ["bytes long", "255"]),
    ("duplicate-key-one-line", spec_text(p("seed: {value: 1, value: 2}")),
     ["sweep", "plan", "SPEC"], ["'value' is given twice", "line"]),
    ("duplicate-option-one-line", spec_text(p("options: {value: {slope: 2, slope: 5}}")),
     ["sweep", "plan", "SPEC"], ["'slope' is given twice"]),
    ("parameter-in-two-groups", spec_text(p("a: {parameters: {seed: {values: [1, 2]}}}")
                                          + p("b: {parameters: {seed: {values: [3, 4]}}}")),
     ["sweep", "plan", "SPEC"], ["'seed' is given twice", "parameters.a.seed",
                                 "parameters.b.seed"]),
    ("parameter-in-group-and-top", spec_text(p("g: {parameters: {width: {value: 8}}}")),
     ["sweep", "plan", "SPEC"], ["'width' is given twice", "parameters.g.width"]),
    ("branch-of-no-trunk", spec_text(p("schedule: {value: wsd}") + p("parent: {value: abc123}")
                                     + p("branch_step: {value: 2}")),
     ["sweep", "plan", "SPEC"], ["parent 'abc123' is not a trunk of this sweep"]),
    ("loss-zero-weight", spec_text(p("loss_variant: {value: 0*mse}")),
     ["sweep", "plan", "SPEC"], ["'0*mse'", "weighs every term by 0"]),
    ("loss-zero-weights", spec_text(p("loss_variant: {value: '0*mse + 0.0*l1'}")),
     ["sweep", "plan", "SPEC"], ["weighs every term by 0"]),
    ("decay-fraction-under-cosine", spec_text(p("options: {value: {decay_fraction: 0.5}}")),
     ["sweep", "plan", "SPEC"], ["options.decay_fraction", "schedule cosine"]),
    ("decay-fraction-under-constant", spec_text(p("schedule: {value: constant}")
                                                + p("options: {value: {decay_fraction: 0.5}}")),
     ["sweep", "plan", "SPEC"], ["options.decay_fraction", "schedule constant"]),
    ("decay-fraction-negative", spec_text(p("schedule: {value: wsd}")
                                          + p("options: {value: {decay_fraction: -1}}")),
     ["sweep", "plan", "SPEC"], ["decay_fraction", "(0, 1]", "-1"]),
    ("decay-fraction-zero", spec_text(p("schedule: {value: wsd}")
                                      + p("options: {value: {decay_fraction: 0}}")),
     ["sweep", "plan", "SPEC"], ["decay_fraction", "got 0"]),
    ("decay-fraction-above-one", spec_text(p("schedule: {value: wsd}")
                                           + p("options: {value: {decay_fraction: 1.5}}")),
     ["sweep", "plan", "SPEC"], ["decay_fraction", "1.5"]),
    ("decay-fraction-on-trunk", spec_text(p("schedule: {value: wsd}") + p("cooldowns: {value: [2]}")
                                          + p("options: {value: {decay_fraction: 0.5}}")),
     ["sweep", "plan", "SPEC"], ["decay_fraction", "cooldown_fraction"]),
    ("metric-typo", spec_text(top="metric: {name: val_nope}\n"), ["sweep", "plan", "SPEC"],
     ["metric.name 'val_nope' is recorded by no run", "val_loss"]),
    ("metric-ensemble-only", spec_text(top="metric: {name: val_crps}\n"),
     ["sweep", "plan", "SPEC"], ["'val_crps' is recorded only by ensembles"]),
    ("metric-typo-run", spec_text(top="metric: {name: val_los}\n"),
     ["run", "SPEC", "--no-wandb", "--quiet"], ["did you mean 'val_loss'"]),
    ("report-unwritable-run", spec_text(scalelab=s("report: /proc/nope/r.pdf")),
     ["run", "SPEC", "--no-wandb", "--quiet"], ["/proc/nope/r.pdf", "scalelab.report"]),
    ("report-under-a-file-run", spec_text(scalelab=s("report: TMP/spec.yaml/r.pdf")),
     ["run", "SPEC", "--no-wandb", "--quiet"], ["is a file, so no folder can be made", "report"]),
    ("sampler-steps-huge", spec_text(p("family: {value: diffusion}")
                                     + p("options: {value: {sampler_steps: 100000000}}")),
     ["sweep", "plan", "SPEC"], ["sampler_steps", "[1, 1000]", "100000000"]),
    ("store-ends-in-slash", spec_text().replace("store: reports/fuzz/runs.db",
                                                "store: reports/fuzz/"),
     ["sweep", "run", "SPEC", "--no-wandb"], ["ends in a slash", "reports/fuzz/runs.db"]),
    ("cli-store-ends-in-slash", None, ["sweep", "run", "SPEC", "--store", "TMP/out/"],
     ["--store", "ends in a slash"]),
    ("cli-store-dev-null", None, ["sweep", "run", "SPEC", "--store", "/dev/null", "--no-wandb"],
     ["/dev/null", "special file"]),
    ("cli-override-after-option", None, ["sweep", "run", "SPEC", "--quiet", "width=0"],
     ["width", "got 0"]),
    ("cli-override-after-two-options", None,
     ["run", "SPEC", "--no-wandb", "--quiet", "widht=8"], ["'widht'"]),
    ("example-data-into-file", None, ["example-data", "era5-like", "SPEC"],
     ["is a file, not a folder"]),
    ("example-data-under-file", None, ["example-data", "era5-like", "SPEC/sub"],
     ["is a file, so no folder can be made"]),
]

LONG = "x" * 300
SPEC_CASES += [
    ("assign-3000-deep", None, ["sweep", "plan", "SPEC", f"description={_nested(3000)}"],
     ["nests lists or mappings too deeply"]),
    ("assign-key-twice", None, ["sweep", "plan", "SPEC", "options={slope: 2, slope: 5}"],
     ["duplicate key 'slope'"]),
    ("wandb-init-timeout-inf", spec_text(scalelab=s("wandb: {init_timeout: .inf}")),
     ["sweep", "plan", "SPEC"], ["init_timeout", "finite", "inf"]),
    ("gpus-per-run-inf", spec_text(scalelab=s("gpus_per_run: .inf")),
     ["sweep", "plan", "SPEC"], ["gpus_per_run", "inf"]),
    ("metric-is-an-axis", spec_text(top="metric: {name: step}\n"), ["sweep", "plan", "SPEC"],
     ["metric.name 'step' is a run's count or setting"]),
    ("example-data-too-big", None, ["example-data", "era5-like", "TMP/ex", "--days",
                                    "100000000"], ["GB in memory", "--days"]),
    ("example-data-too-few-days", None, ["example-data", "era5-like", "TMP/ex", "--days", "0"],
     ["days must be at least 30"]),
    ("name-unicode-over-255-bytes", spec_text(name="€" * 99), ["sweep", "plan", "SPEC"],
     ["99 characters (297 bytes) long"]),
    ("spec-name-300-bytes", None, ["sweep", "plan", f"TMP/{LONG}.yaml"], ["305 bytes long"]),
    ("runs-list-name-300-bytes", None, ["runs", "list", f"TMP/{LONG}.db"], ["bytes long"]),
    ("report-csv-name-300-bytes", None, ["report", f"TMP/{LONG}.csv"], ["file name too long"]),
    ("predict-csv-name-300-bytes", None, ["predict", f"TMP/{LONG}.csv", "--target", "params=1"],
     ["file name too long"]),
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
    # issue 25: predict and report options that were silent or ran code
    ("predict-target-twice", ["predict", "STORE", "--target", "params=1e5,params=2e5"],
     ["gives params twice"]),
    ("report-target-twice", ["report", "STORE", "--target", "samples=1,samples=2", "-o",
                             "TMP/r.pdf"], ["gives samples twice"]),
    ("predict-y-step", ["predict", "STORE", "--target", "params=1e5", "--y", "step"],
     ["--y 'step' is a scaling axis", "val_loss"]),
    ("predict-y-params", ["predict", "STORE", "--target", "params=1e5", "--y", "params"],
     ["--y 'params'"]),
    ("predict-y-width", ["predict", "STORE", "--target", "params=1e5", "--y", "width"],
     ["--y 'width'", "run's setting"]),
    ("report-y-step", ["report", "STORE", "--y", "step", "-o", "TMP/r.pdf"],
     ["--y 'step' is a scaling axis"]),
    ("predict-where-at-local", ["predict", "STORE", "--target", "params=1e5", "--where",
                                "@runs.to_csv('TMP/PWNED.csv') == 0"],
     ["--where", "no @variables, attributes or calls"]),
    ("predict-where-method", ["predict", "STORE", "--target", "params=1e5", "--where",
                              "params.to_csv('TMP/PWNED.csv') == 0"], ["no @variables"]),
    ("predict-where-call", ["predict", "STORE", "--target", "params=1e5", "--where",
                            "__import__('os').system('touch TMP/PWNED') == 0"],
     ["no @variables"]),
    ("predict-where-subscript", ["predict", "STORE", "--target", "params=1e5", "--where",
                                 "params[0] > 1"], ["no @variables"]),
    ("predict-where-column", ["predict", "STORE", "--target", "params=1e5", "--where",
                              "colour == 'red'"], ["names 'colour'", "not a column"]),
    ("predict-where-syntax", ["predict", "STORE", "--target", "params=1e5", "--where",
                              "params <"], ["not a valid selection"]),
    ("export-name-300-bytes", ["runs", "export", "STORE", "-o", f"TMP/{LONG}.csv"],
     ["bytes long"]),
    ("predict-words-in-params", ["predict", "TMP/words.csv", "--target", "params=1e5"],
     ["column 'params' holds 'abc'", "data row 2"]),
    ("predict-words-in-y", ["predict", "TMP/words_y.csv", "--target", "params=1e5", "--y",
                            "loss"], ["column 'loss' holds 'high'"]),
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
    (tmp_path / "words.csv").write_text("params,samples,loss,val_loss\n1e3,16,1.0,1.0\n"
                                        "abc,16,0.9,0.8\n3e3,16,n/a,0.6\n4e3,16,0.5,0.5\n")
    (tmp_path / "words_y.csv").write_text("params,samples,loss\n1e3,16,1.0\n2e3,16,0.9\n"
                                          "3e3,16,high\n4e3,16,0.5\n")
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


@pytest.fixture(scope="module")
def data_files(tmp_path_factory):
    """Small gridded files (time × latitude × longitude), each damaged in one way."""
    import numpy as np
    import pandas as pd
    import xarray as xr

    folder = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    time = pd.date_range("2001-01-01", periods=40, freq="D")
    lat, lon = 50.0 - 0.5 * np.arange(16), 5.0 + 0.5 * np.arange(16)
    coords = {"time": time, "latitude": ("latitude", lat, {"units": "degrees_north"}),
              "longitude": ("longitude", lon, {"units": "degrees_east"})}
    values = 280 + rng.normal(size=(40, 16, 16))

    def dataset(v, t=time):
        return xr.Dataset({"t2m": (("time", "latitude", "longitude"), v)},
                          coords={**coords, "time": t})

    dataset(values).to_netcdf(folder / "ok.nc")
    dataset(np.full_like(values, np.nan)).to_netcdf(folder / "nan.nc")
    dataset(np.full_like(values, 280.0)).to_netcdf(folder / "constant.nc")
    dataset(values, time[:20].append(time[:20])).to_netcdf(folder / "repeated.nc")
    dataset(values).to_zarr(folder / "truncated.zarr", zarr_format=2, consolidated=False,
                            encoding={"t2m": {"chunks": (1, 16, 16)}})
    for chunk in (folder / "truncated.zarr" / "t2m").iterdir():
        if chunk.name[0].isdigit():  # every chunk cut in half, as by a full disk
            chunk.write_bytes(chunk.read_bytes()[: chunk.stat().st_size // 2])
    return folder


DATA_CASES = [
    ("gridded-all-nan", "nan.nc", "", ["target 't2m' has no finite value in the train split"]),
    ("gridded-constant", "constant.nc", "", ["target 't2m' is 280 everywhere in the train split"]),
    ("gridded-repeated-time", "repeated.nc", "", ["time axis 'time' repeats 20 time steps",
                                                  "drop_duplicates"]),
    ("gridded-truncated-zarr", "truncated.zarr", "",
     ["truncated.zarr", "could not be read", "damaged or truncated"]),
    ("gridded-split-over-one", "ok.nc", ", split: {train: 0.9, val: 0.6}",
     ["options.split fractions add up to 1.5", "train 0.9, val 0.6"]),
]


@pytest.mark.parametrize("case", DATA_CASES, ids=[c[0] for c in DATA_CASES])
@pytest.mark.parametrize("command", ["plan", "run"])
def test_damaged_gridded_data_is_refused_when_the_spec_loads(case, command, data_files, tmp_path,
                                                            capsys, monkeypatch):
    """What used to fail inside every run (a math domain error from PSNR, a blosc error, a
    silent leak of training steps into validation) is one sentence before any run."""
    name, file, extra, names = case
    spec = tmp_path / "spec.yaml"
    spec.write_text(spec_text(p("field: {value: gridded}") +
                              p(f"options: {{value: {{path: {data_files / file}, variable: t2m"
                                f"{extra}}}}}")))
    argv = ["sweep", "plan", str(spec)] if command == "plan" else \
        ["run", str(spec), "--no-wandb", "--quiet"]
    rc, out, err = _run(argv, capsys, tmp_path, monkeypatch)
    _check_refusal(rc, out, err, names)
    assert _listing(tmp_path) == {"spec.yaml"}


def test_the_undamaged_data_file_plans(data_files, tmp_path, capsys, monkeypatch):
    spec = tmp_path / "spec.yaml"
    spec.write_text(spec_text(p("field: {value: gridded}") +
                              p(f"options: {{value: {{path: {data_files / 'ok.nc'}, "
                                f"variable: t2m, split: {{train: 0.6, val: 0.2, test: 0.2}}}}}}")))
    rc, out, err = _run(["sweep", "plan", str(spec)], capsys, tmp_path, monkeypatch)
    assert rc == 0, err


def test_a_fifo_as_the_store_is_refused_without_blocking(tmp_path, capsys, monkeypatch):
    fifo = tmp_path / "runs.db"
    os.mkfifo(fifo)
    spec = tmp_path / "spec.yaml"
    spec.write_text(spec_text())
    for argv in (["sweep", "run", str(spec), "--store", str(fifo), "--no-wandb", "--quiet"],
                 ["runs", "list", str(fifo)], ["report", str(fifo), "-o", str(tmp_path / "r.pdf")],
                 ["predict", str(fifo), "--target", "params=1e5"]):
        rc, out, err = _run(argv, capsys, tmp_path, monkeypatch)  # would block on open()
        _check_refusal(rc, out, err, ["runs.db", "named pipe" if argv[0] != "sweep" else
                                      "special file"])
    assert _listing(tmp_path) == {"spec.yaml", "runs.db"}


def test_workers_are_capped_at_the_sweeps_runs(tmp_path):
    """--workers 100000000 on a one-run sweep: one slot, not a list of a hundred million."""
    from scalelab.sweep import load_spec
    from scalelab.sweep.executors import make_executor

    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(spec_text(p("seed: {values: [1, 2, 3]}")))
    spec = load_spec(spec_file, overrides={"workers": ("--workers", 100_000_000)})
    executor = make_executor(spec)
    assert executor.workers == 3 and spec.settings.workers == 100_000_000


def test_same_key_twice_through_a_merge_key_is_still_allowed(tmp_path):
    """A merge key (<<) brings keys an explicit key may override: not a duplicate."""
    from scalelab.sweep import load_spec

    spec = tmp_path / "spec.yaml"
    spec.write_text("name: m\nparameters:\n  width: &w {value: 4}\n  seed: {<<: *w, value: 7}\n"
                    "  samples: {value: 16}\n  field_size: {value: 16}\n  val_samples: {value: 8}\n")
    assert load_spec(spec).runs[0].seed == 7


def test_a_metric_the_runs_record_is_accepted_and_the_declaration_matches_a_real_run():
    """The names a spec's metric may take are those a real run's curve rows hold."""
    from scalelab.config import RunConfig
    from scalelab.runs.columns import CURVE_COLUMNS, ENSEMBLE_METRICS, SKILL_METRICS
    from scalelab.train import train

    deterministic = train(RunConfig(width=4, samples=8, val_samples=4, field_size=16, steps=2,
                                    eval_every=2, batch_size=4))
    ensemble = train(RunConfig(width=4, samples=8, val_samples=4, field_size=16, steps=2,
                               eval_every=2, batch_size=4, ensemble_members=2,
                               loss_variant="crps_fair"))
    numeric = {k for row in deterministic.rows for k, v in row.items()
               if isinstance(v, (int, float))}
    assert numeric <= {*CURVE_COLUMNS, *SKILL_METRICS}
    assert {"val_loss", "val_mse", "val_psnr"} <= numeric
    ens = {k for row in ensemble.rows for k, v in row.items() if isinstance(v, (int, float))}
    assert set(ENSEMBLE_METRICS) <= ens <= {*CURVE_COLUMNS, *SKILL_METRICS, *ENSEMBLE_METRICS}


def test_at_least_sixty_new_cases_of_issue_25():
    issue_18 = 84 + 15 + 3  # the cases before issue 25
    now = len(SPEC_CASES) + len(STORE_CASES) + len(SUBPROCESS_CASES) + 2 * len(DATA_CASES)
    assert now - issue_18 >= 60


def test_a_report_table_of_thousands_of_rows_draws_thirty():
    """A table of one row per run (50,000 one-row runs) is cut to what a page can show, with
    the rest counted: drawing 14,000 cells took over a minute."""
    import matplotlib.pyplot as plt
    import pandas as pd

    from scalelab.report.layout import MAX_TABLE_ROWS
    from scalelab.report.layout import table as _table

    fig, ax = plt.subplots()
    try:
        _table(ax, pd.DataFrame({"run": range(5000), "loss": [0.5] * 5000}))
        cells = ax.tables[0].get_celld()
        rows = {r for r, _ in cells}
        assert len(rows) == MAX_TABLE_ROWS + 1  # the header and 30 rows
        assert cells[(MAX_TABLE_ROWS, 0)].get_text().get_text() == "+4,971 more"
    finally:
        plt.close(fig)


def test_distribution_bounds_written_as_yaml_1_1_text_are_numbers(tmp_path, capsys, monkeypatch):
    """YAML 1.1 reads 1e-4 as text; W&B (YAML 1.2) reads a number: so does the spec."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(spec_text(p("lr: {distribution: log_uniform_values, min: 1e-4, max: 1e-2}"),
                              top="run_cap: 3\n").replace("method: grid", "method: random"))
    from scalelab.sweep import load_spec

    lrs = [cfg.lr for cfg in load_spec(spec).runs]
    assert len(lrs) == 3 and all(1e-4 <= lr <= 1e-2 for lr in lrs)
