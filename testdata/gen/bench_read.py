#!/usr/bin/env python3
"""Read benchmark driver (issue 4): wx-data vs xarray + zarr-python + dask over the same local HTTP server.

    cargo build --release -p wx-data --example read_bench -p wx-testkit --bin wx-test-server
    cargo xtask bench data   (or: PYTHON testdata/gen/bench_read.py --python PYTHON) [--workdir /tmp/wx-read-bench] [--grid 1.0]
        [--steps 8] [--repeat 5] [--warmup 1] [--target-dir target]

1. writes a miner-layout Blosc-zstd store with `make_bench_store.py` into WORKDIR (kept between
   runs; `--regen` rewrites it), signed with the fixture test key;
2. starts ONE `wx-test-server` (wx-testkit) on 127.0.0.1 serving WORKDIR with a bearer token;
3. runs each tool `--warmup` times unmeasured (the first run of either pays for cold caches:
   the server's file cache, Python's imports), then, alternately, `--repeat` times each: the Rust
   reader (`examples/read_bench`: manifest fetch + signature check, then wx's MinerForecastReader
   reads every variable at every valid time, each chunk fetched, sha256-verified against the
   manifest and decoded, 4 fields in flight) and the Python stack (`bench_read_xarray.py`:
   `open_zarr(consolidated=True)` over fsspec HTTP with the same token, `.load()` with dask);
4. prints every run's JSON and a summary: median MB/s of decoded data and peak RSS of each, the
   throughput ratio (target ≥ 5) and the peak-memory ratio (target ≤ 0.5).

Both tools run twice over: with glibc malloc's defaults, and with
`GLIBC_TUNABLES=glibc.malloc.mmap_threshold=64MiB:glibc.malloc.trim_threshold=256MiB` (for both
processes), because with the defaults each multi-MB chunk buffer is mmapped/trimmed and
page-faulted afresh. The Rust reader (like the wx binaries) links mimalloc, which avoids that
by itself; the variable then only changes the Python side.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
TOKEN = "bench-token-0123456789"
TUNED_MALLOC = "glibc.malloc.mmap_threshold=67108864:glibc.malloc.trim_threshold=268435456"


def run_json(cmd: list[str], env: dict) -> dict:
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=900, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/wx-read-bench"))
    ap.add_argument("--grid", type=float, default=1.0)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--regen", action="store_true")
    ap.add_argument("--target-dir", type=Path, default=REPO / "target")
    ap.add_argument("--python", default=sys.executable, help="interpreter with xarray/zarr/dask/aiohttp")
    args = ap.parse_args()

    server_bin = args.target_dir / "release" / "wx-test-server"
    bench_bin = args.target_dir / "release" / "examples" / "read_bench"
    for b in (server_bin, bench_bin):
        if not b.exists():
            sys.exit(f"{b} missing: cargo build --release -p wx-data --example read_bench "
                     "-p wx-testkit --bin wx-test-server")
    info = args.workdir / "bench_miner.manifest-info.json"
    if args.regen or not info.exists():
        subprocess.run([args.python, str(HERE / "make_bench_store.py"), str(args.workdir),
                        "--grid", str(args.grid), "--steps", str(args.steps)], check=True)

    server = subprocess.Popen([str(server_bin), "--root", str(args.workdir), "--token", TOKEN],
                              stdout=subprocess.PIPE, text=True)
    try:
        base = server.stdout.readline().strip()
        if not base.startswith("http://127.0.0.1:"):
            sys.exit(f"server did not start: {base!r}")
        url = base + "bench_miner"
        variants = {"default_malloc": {}, "tuned_malloc": {"GLIBC_TUNABLES": TUNED_MALLOC}}
        runs = {v: {"rust": [], "python": []} for v in variants}
        commands = {
            "rust": [str(bench_bin), "--url", url, "--token", TOKEN, "--info", str(info)],
            "python": [args.python, str(HERE / "bench_read_xarray.py"), url, TOKEN],
        }
        for variant, extra in variants.items():
            env = {**os.environ, **extra}
            for _ in range(args.warmup):
                for cmd in commands.values():
                    run_json(cmd, env)
            for i in range(args.repeat):
                order = ["rust", "python"] if i % 2 == 0 else ["python", "rust"]
                for tool in order:
                    r = run_json(commands[tool], env)
                    r["variant"] = variant
                    runs[variant][tool].append(r)
                    print(json.dumps(r), flush=True)
    finally:
        server.terminate()
        server.wait(timeout=10)

    def summary(rs):
        return {
            "decoded_mb": round(rs[0]["decoded_bytes"] / 1e6, 1),
            "median_mb_per_s": round(statistics.median(r["mb_per_s"] for r in rs), 1),
            "median_seconds": round(statistics.median(r["seconds"] for r in rs), 3),
            "peak_rss_mb": round(max(r["peak_rss_bytes"] for r in rs) / 1e6, 1),
        }
    report = {"store": {"grid_deg": args.grid, "steps": args.steps}, "repeat": args.repeat,
              "warmup": args.warmup}
    for variant in runs:
        rust, py = summary(runs[variant]["rust"]), summary(runs[variant]["python"])
        if rust["decoded_mb"] != py["decoded_mb"]:
            sys.exit(f"the two readers decoded different amounts: {rust} vs {py}")
        report["store"]["decoded_mb"] = rust["decoded_mb"]
        throughput_ratio = rust["median_mb_per_s"] / py["median_mb_per_s"]
        memory_ratio = rust["peak_rss_mb"] / py["peak_rss_mb"]
        report[variant] = {
            "wx_data": rust,
            "xarray_zarr_dask": py,
            "throughput_ratio": round(throughput_ratio, 2),
            "peak_memory_ratio": round(memory_ratio, 3),
            "target_met": throughput_ratio >= 5 and memory_ratio <= 0.5,
        }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
