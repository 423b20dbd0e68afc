"""The GPU check: every figure scalelab needs from a CUDA machine, in one JSON, in < 7 minutes.

Steps, each in its own process with its own time limit (a step that fails or runs out of
time is recorded in the JSON with its exit status and the tail of its output; the check
goes on with the next step, and the whole stays within ``--max-seconds``):

1. ``gpu-tests``: the tests marked ``gpu`` (``pytest -m gpu``): counts of passed,
   failed and skipped.
2. ``bench-train``: ``benchmarks/bench_train.py --device cuda --compile``: samples/s
   and TFLOP/s of fp32, bf16 + channels_last, and bf16 + channels_last + compile, per
   family and size, and the speed-ups.
3. ``bench-families``: ``bench_train.py`` for srcnn, unet, swinir, diffusion and irn,
   fp32 against bf16 + channels_last (no compile), and the learned kernels (``--kernels``).
4. ``bench-sweep``: ``benchmarks/bench_sweep.py --runs-per-gpu 8`` on one GPU: runs/hour
   one at a time (one slot: runs_per_gpu 1) against packed (runs_per_gpu 8).
5. ``crps-cuda``: the ensemble CRPS (``scalelab.calibration.crps_ensemble``) with its
   torch backend on CUDA against its numpy path: the largest difference and the time
   of each.

    bash benchmarks/gpu_check.sh                  # writes $OUT/gpu_check.json (or ./)
    python benchmarks/gpu_check.py --output f.json --dry-run   # the plan, nothing run
    python benchmarks/gpu_check.py --only crps-cuda --device cpu   # one step on a CPU

It prints a one-line summary per step and the path of the JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"


def steps(device: str) -> list[tuple[str, list[str], float]]:
    """(name, command, seconds allowed) of every step, in order."""
    py = sys.executable
    cuda = device == "cuda"
    return [
        ("gpu-tests", [py, "-m", "pytest", "-q", "-m", "gpu", "-p", "no:cacheprovider",
                       str(ROOT / "tests" / "test_gpu.py")], 90),
        ("bench-train", [py, str(BENCH / "bench_train.py"), "--device", device,
                         "--families", "edsr", "--rounds", "2",
                         *(["--compile", "--steps", "20"] if cuda else
                           ["--compare", "--steps", "2", "--field-size", "16"])], 130),
        # every other family, fp32 against bf16 + channels_last (no compile: minutes each)
        ("bench-families", [py, str(BENCH / "bench_train.py"), "--device", device,
                            "--families", "srcnn", "unet", "swinir", "diffusion", "irn",
                            "--kernels", "--rounds", "1",
                            *(["--steps", "10", "--warmup", "3"] if cuda else
                              ["--steps", "1", "--warmup", "1", "--field-size", "16"])], 90),
        # one GPU: "one at a time" is runs_per_gpu 1 (one slot), "packed" runs_per_gpu 8
        ("bench-sweep", [py, str(BENCH / "bench_sweep.py"), "--runs-per-gpu", "8",
                         "--repeats", "1",
                         *(["--runs", "16", "--steps", "100"] if cuda else
                           ["--runs", "2", "--steps", "5", "--field-size", "16"])], 90),
        ("crps-cuda", [py, str(Path(__file__).resolve()), "--crps", "--device", device], 20),
    ]


def parse(name: str, out: str) -> dict:
    """The figures a step printed."""
    if name == "gpu-tests":
        return {word: int(n) for n, word in re.findall(r"(\d+) (passed|failed|skipped|error)",
                                                       out)}
    if name in ("bench-train", "bench-families"):
        lines = out.splitlines()
        header = next((ln for ln in lines if ln.startswith("family")), None)
        rows = []
        for line in lines:
            if "|" not in line or line.startswith("family"):
                continue
            cells = [c.split() for c in line.split("|")]
            family, width, depth, params, gflop = cells[0][:5]
            variants = [label.split()[0] for label in (header or "").split("|")[1:]
                        if "samples/s" in label]
            rows.append({"family": family, "width": int(width), "depth": int(depth),
                         "params": int(params), "gflop_per_sample": float(gflop),
                         **{f"{v}_samples_per_s": float(c[0]) for v, c in zip(variants, cells[1:])},
                         **{f"{v}_tflops": float(c[1]) for v, c in zip(variants, cells[1:])},
                         **({"speed_up": [float(x.rstrip("×")) for x in cells[-1]]}
                            if len(variants) > 1 else {})})
        device = next((ln for ln in lines if ln.startswith("device:")), "")
        return {"device": device, "rows": rows}
    if name == "bench-sweep":
        figures = {}
        for label, seconds, per_hour in re.findall(
                r"^\s*(one at a time(?:, 1 thread)?|packed): +([\d.]+) s +(\d+) runs/hour",
                out, re.M):
            figures[label] = {"seconds": float(seconds), "runs_per_hour": int(per_hour)}
        setup = next((ln for ln in out.splitlines() if ln.startswith("sweep of")), "")
        if "packed" in figures and "one at a time" in figures:
            figures["packed_vs_one_at_a_time"] = round(
                figures["one at a time"]["seconds"] / figures["packed"]["seconds"], 2)
        return {"setup": setup, **figures}
    if name == "crps-cuda":
        last = [ln for ln in out.splitlines() if ln.startswith("{")]
        return json.loads(last[-1]) if last else {}
    return {}


def run_step(name: str, command: list[str], limit: float) -> dict:
    t0 = time.perf_counter()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=limit,
                              cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT) + (
                                  os.pathsep + os.environ["PYTHONPATH"]
                                  if os.environ.get("PYTHONPATH") else "")})
        out, rc, status = done.stdout, done.returncode, "ok" if done.returncode == 0 else "failed"
        err = done.stderr
    except subprocess.TimeoutExpired as expired:
        out = expired.stdout.decode() if isinstance(expired.stdout, bytes) else expired.stdout or ""
        err = expired.stderr.decode() if isinstance(expired.stderr, bytes) else expired.stderr or ""
        rc, status = None, "timeout"
    except OSError as error:  # the command could not start
        out, err, rc, status = "", str(error), None, "failed"
    result = {"status": status, "returncode": rc, "seconds": round(time.perf_counter() - t0, 1),
              "limit_s": round(limit, 1), "command": command}
    try:
        result["figures"] = parse(name, out)
    except Exception as error:  # noqa: BLE001 - a figure we could not read is not fatal
        result["figures"] = {}
        result["parse_error"] = f"{type(error).__name__}: {error}"
    result["stdout_tail"] = out[-3000:]
    if status != "ok":
        result["output_tail"] = (out[-2000:] + "\n--- stderr ---\n" + err[-3000:]).strip()
    return result


def crps_step(device: str) -> None:
    """Print a JSON line: the torch CRPS on ``device`` against numpy, and their times."""
    import numpy as np
    import torch

    from scalelab.calibration import crps_ensemble

    rng = np.random.default_rng(0)
    shape = (256, 64, 64) if device == "cuda" else (16, 32, 32)  # a CPU smoke test is small
    obs = rng.normal(size=shape).astype(np.float32)
    ens = obs[None] + rng.normal(size=(16, *shape)).astype(np.float32)
    t0 = time.perf_counter()
    reference = crps_ensemble(obs, ens, axis=0, estimator="fair")
    numpy_s = time.perf_counter() - t0
    obs_t, ens_t = torch.as_tensor(obs, device=device), torch.as_tensor(ens, device=device)
    crps_ensemble(obs_t, ens_t, axis=0, estimator="fair")  # warm-up
    if device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(5):
        score = crps_ensemble(obs_t, ens_t, axis=0, estimator="fair")
    if device == "cuda":
        torch.cuda.synchronize()
    torch_s = (time.perf_counter() - t0) / 5
    difference = float(np.max(np.abs(score.cpu().numpy() - reference)))
    print(json.dumps({"device": str(score.device), "points": int(obs.size), "members": 16,
                      "max_abs_difference": difference, "numpy_s": round(numpy_s, 4),
                      "torch_s": round(torch_s, 5), "speed_up": round(numpy_s / torch_s, 1)}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_out = Path(os.environ["OUT"]) / "gpu_check.json" if os.environ.get("OUT") \
        else Path("gpu_check.json")
    parser.add_argument("--output", type=Path, default=default_out,
                        help="JSON to write (default $OUT/gpu_check.json, else ./gpu_check.json)")
    parser.add_argument("--device", default="cuda", help="cuda (the check) or cpu (a smoke test)")
    parser.add_argument("--max-seconds", type=float, default=420,
                        help="the whole check's budget; later steps get what is left")
    parser.add_argument("--only", nargs="*", help="run only these steps")
    parser.add_argument("--dry-run", action="store_true", help="write the plan, run nothing")
    parser.add_argument("--crps", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.crps:
        crps_step(args.device)
        return 0

    plan = steps(args.device)
    known = [name for name, _, _ in plan]
    unknown = sorted(set(args.only or []) - set(known))
    if unknown:
        parser.error(f"unknown step {unknown[0]!r}; steps are {', '.join(known)}")
    report = {"host": platform.node(), "python": platform.python_version(),
              "device_requested": args.device, "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
              "max_seconds": args.max_seconds, "dry_run": args.dry_run, "steps": {}}
    try:
        import torch

        report["torch"] = torch.__version__
        report["cuda_available"] = torch.cuda.is_available()
        if torch.cuda.is_available():
            report["gpu"] = torch.cuda.get_device_name(0)
    except Exception as error:  # noqa: BLE001 - recorded; the steps will say the rest
        report["torch_error"] = str(error)
    deadline = time.monotonic() + args.max_seconds
    args.output.parent.mkdir(parents=True, exist_ok=True)
    for name, command, limit in plan:
        if args.only and name not in args.only:
            continue
        left = deadline - time.monotonic()
        if args.dry_run:
            result = {"status": "planned", "command": command, "limit_s": limit}
        elif left < 5:
            result = {"status": "skipped", "reason": f"no time left of {args.max_seconds:.0f} s"}
        else:
            result = run_step(name, command, min(limit, left))
        report["steps"][name] = result
        args.output.write_text(json.dumps(report, indent=2))  # a kill keeps what was done
        print(f"{name:>18}: {result['status']}"
              + (f" in {result['seconds']:.0f} s" if "seconds" in result else ""), flush=True)
    report["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    args.output.write_text(json.dumps(report, indent=2))
    print(f"gpu check: {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
