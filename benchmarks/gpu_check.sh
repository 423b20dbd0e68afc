#!/usr/bin/env bash
# The GPU check (see benchmarks/gpu_check.py): the gpu-marked tests, bench_train.py on CUDA
# (fp32, bf16, channels_last, compile), bench_sweep.py with runs_per_gpu 1 and 8, and the
# torch CRPS on CUDA, each time-limited, all within 7 minutes; one JSON of figures, by
# default $OUT/gpu_check.json (./gpu_check.json without OUT). A failing step is recorded in
# the JSON and the check goes on. Extra arguments go to gpu_check.py (--dry-run,
# --output F, --max-seconds S, --only STEP ..., --device cpu).
set -u
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
export WANDB_MODE="${WANDB_MODE:-offline}"
python="${PYTHON:-python}"
if [ -x "$root/.venv/bin/python" ] && [ -z "${PYTHON:-}" ]; then python="$root/.venv/bin/python"; fi
exec timeout 450 "$python" "$here/gpu_check.py" "$@"
