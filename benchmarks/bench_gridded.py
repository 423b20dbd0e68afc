"""Lazy reads of gridded data: a run's memory follows the samples it uses, not the file's size.

Writes a zarr store of ERA5-sized global fields (``time × 721 × 1440`` float32,
uncompressed, chunks of 1 × 256 × 256, CF attributes) of at least ``--size`` GB on disk
under ``--dir`` (default: the system's temporary folder), then trains short runs on
it, each in a fresh process, and prints each run's peak resident memory (the
process's ``ru_maxrss``) next to the store's size — and what the old eager reader
would have held (the whole variable as float64: twice the store). The store is
deleted at the end.

    python benchmarks/bench_gridded.py                 # a 4 GB store, runs of 512 and 4096 samples
    python benchmarks/bench_gridded.py --size 0.05 --samples 64 --steps 2   # a smoke test
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

NY, NX, CHUNK = 721, 1440, 256

RUN = """
import json, resource, sys, time
from scalelab.config import RunConfig
from scalelab.train import train
cfg = RunConfig(**json.loads(sys.argv[1]))
t0 = time.perf_counter()
result = train(cfg)
print(json.dumps({"status": result.status, "wall_s": time.perf_counter() - t0,
                  "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                  "val_rmse": result.rows[-1]["val_rmse"]}))
"""


def write_store(path: Path, size_gb: float, seed: int = 0) -> int:
    """A zarr (format 2) store of ``t2m`` with ≥ ``size_gb`` GB of float32 on disk; its steps."""
    import zarr

    field_bytes = NY * NX * 4
    steps = max(8, math.ceil(size_gb * 1e9 / field_bytes))
    root = zarr.open_group(str(path), mode="w", zarr_format=2)
    root.attrs["Conventions"] = "CF-1.7"
    lat = np.linspace(90.0, -90.0, NY)
    lon = np.arange(NX) * 0.25
    coords = {
        "time": (np.arange(steps, dtype=np.int64), {"standard_name": "time", "axis": "T",
                                                    "units": "days since 2000-01-01",
                                                    "calendar": "proleptic_gregorian"}),
        "latitude": (lat, {"standard_name": "latitude", "units": "degrees_north"}),
        "longitude": (lon, {"standard_name": "longitude", "units": "degrees_east"}),
    }
    for name, (values, attrs) in coords.items():
        array = root.create_array(name, shape=values.shape, dtype=values.dtype,
                                  chunks=values.shape, compressors=None)
        array[:] = values
        array.attrs.update({**attrs, "_ARRAY_DIMENSIONS": [name]})
    t2m = root.create_array("t2m", shape=(steps, NY, NX), dtype="float32",
                            chunks=(1, CHUNK, CHUNK), compressors=None, fill_value=float("nan"))
    t2m.attrs.update({"standard_name": "air_temperature", "units": "K",
                      "_ARRAY_DIMENSIONS": ["time", "latitude", "longitude"]})
    rng = np.random.default_rng(seed)
    climate = (300.0 - 45.0 * np.sin(np.radians(lat))[:, None] ** 2
               + np.zeros((1, NX))).astype(np.float32)
    slab = 16
    for start in range(0, steps, slab):
        n = min(slab, steps - start)
        noise = rng.standard_normal((n, NY, NX), dtype=np.float32)
        t2m[start:start + n] = climate + 3.0 * noise
    zarr.consolidate_metadata(str(path))
    return steps


def disk_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=float, default=4.0, help="store size on disk, GB")
    parser.add_argument("--dir", default=tempfile.gettempdir(), help="where to write it")
    parser.add_argument("--samples", default="512,4096", help="training-set sizes to run")
    parser.add_argument("--field-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="scalelab-bench-gridded-", dir=args.dir))
    store = folder / "era5_sized.zarr"
    try:
        t0 = time.perf_counter()
        steps = write_store(store, args.size)
        size = disk_bytes(store)
        print(f"store: {store} — {steps} × {NY} × {NX} float32, {size / 1e9:.2f} GB on disk "
              f"(written in {time.perf_counter() - t0:.0f} s)")
        print(f"the old eager reader would hold the whole variable as float64: "
              f"{2 * steps * NY * NX * 4 / 1e9:.2f} GB")
        for samples in [int(s) for s in args.samples.split(",")]:
            config = {"field": "gridded", "field_size": args.field_size, "scale": 4,
                      "family": "edsr", "width": 8, "depth": 1, "samples": samples,
                      "val_samples": 64, "batch_size": 16, "steps": args.steps,
                      "eval_every": args.steps, "device": "cpu",
                      "options": {"path": str(store), "variable": "t2m", "stats_fields": 64}}
            out = subprocess.run([sys.executable, "-c", RUN, json.dumps(config)],
                                 capture_output=True, text=True)
            if out.returncode != 0:
                raise SystemExit(out.stderr[-3000:])
            run = json.loads(out.stdout.strip().splitlines()[-1])
            patches = (samples + 64) * args.field_size**2 * 4
            rss = run["peak_rss_bytes"]
            print(f"run with {samples} samples of {args.field_size}²: {run['status']} in "
                  f"{run['wall_s']:.1f} s; peak RSS {rss / 2**20:.0f} MiB "
                  f"({'<' if rss < 2**30 else '>='} 1 GiB; {rss / size * 100:.1f} % of the store); "
                  f"patches read {patches / 2**20:.1f} MiB; val_rmse {run['val_rmse']:.3f} K")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        print(f"deleted {folder}")


if __name__ == "__main__":
    main()
