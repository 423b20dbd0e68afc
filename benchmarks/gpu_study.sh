#!/usr/bin/env bash
# The real-scale study on one GPU (benchmarks/study.py --gpu): EDSR (12 widths, 6k–10M
# parameters, 128² fields) and SwinIR (8 widths, 36k–4.1M, 64²) on precipitation-like
# fields and on the ERA5-like example at 1.25° (written here first, ~30 s), each width a
# trunk with cooldown branches at 1/4, 1/2 and all of it; then the runs table (CSV,
# Parquet) and predict backtested at 10× and 30× per sweep. Within 8 minutes on one H100.
#
#     bash benchmarks/gpu_study.sh             # table + JSON in benchmarks/results/ (and $OUT)
#     bash benchmarks/gpu_study.sh --max-seconds 300 --only precip-edsr
#
# Self-checking, and it fails fast, because GPU time is scarce: the packages it needs and
# a CUDA device are checked in seconds before any work; the first failed run stops the
# study; each sweep runs under the time left, the whole under `timeout` (8 minutes); a line
# is printed for every run that ends. What finished is kept (the store resumes, so a second
# call goes on where the first stopped) and exported and backtested even after a timeout;
# the exit status is 0 only when every sweep finished and every backtest was computed.
#
# Setup as benchmarks/gpu_check.sh: scalelab from this checkout on PYTHONPATH (no install),
# the machine's own torch. Packages the machine lacks can come as wheels in .whl/ (a
# machine without network): they are installed with pip --no-index into a folder of /tmp.
# The study needs neither wandb nor zarr nor h5netcdf (W&B is off; without h5netcdf the
# ERA5-like data is written as netCDF-3).
set -u
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
export WANDB_MODE="${WANDB_MODE:-disabled}" PYTHONUNBUFFERED=1
python="${PYTHON:-python}"
if [ -x "$root/.venv/bin/python" ] && [ -z "${PYTHON:-}" ]; then python="$root/.venv/bin/python"; fi
command -v "$python" >/dev/null 2>&1 || python=python3

if compgen -G "$root/.whl/*.whl" >/dev/null; then
    site="${TMPDIR:-/tmp}/scalelab-study-site"
    echo "gpu_study: installing $(ls "$root"/.whl/*.whl | wc -l) wheels from .whl/ into $site"
    "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target "$site" "$root"/.whl/*.whl || { echo "gpu_study: the wheels in .whl/ did not install"; exit 2; }
    export PYTHONPATH="$PYTHONPATH:$site"
fi

timeout 60 "$python" - <<'EOF' || exit 2
import importlib.util
import sys

needed = ("torch", "numpy", "scipy", "pandas", "statsmodels", "yaml", "tqdm", "xarray", "h5py")
missing = [name for name in needed if importlib.util.find_spec(name) is None]
if missing:
    sys.exit(f"gpu_study: missing Python packages: {', '.join(missing)}; install scalelab "
             f"(pip install -e .) or bring them as wheels in .whl/.")
import torch

if not torch.cuda.is_available():
    sys.exit(f"gpu_study: torch {torch.__version__} sees no CUDA device; run "
             f"`python benchmarks/study.py --cpu` on a machine without one.")
x = torch.randn(256, 256, device="cuda")
torch.cuda.synchronize()
assert torch.isfinite(x @ x).all()
import scalelab.sweep  # noqa: F401 - the checkout imports with these packages

print(f"gpu_study: torch {torch.__version__}, {torch.cuda.get_device_name(0)}, "
      f"pyarrow {'yes' if importlib.util.find_spec('pyarrow') else 'no (CSV only)'}")
EOF

exec timeout -k 15 480 "$python" "$here/study.py" --gpu "$@"
