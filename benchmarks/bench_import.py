"""What `import safegen` costs, next to `import boto3`, in fresh interpreters.

``import safegen`` resolves its names lazily, so the script also times importing every name
the façade exports (what a program using all of the core pays). Target: safegen alone under
50 ms, and no botocore import. Median of several runs.

Run: ``.venv/bin/python benchmarks/bench_import.py [--runs 9]``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys

PROBE = (
    "import sys, time; start = time.perf_counter(); import {module}; "
    "print(time.perf_counter() - start, 'botocore' in sys.modules)"
)


def measure(module: str, runs: int) -> tuple[float, bool]:
    """Median import time of *module* in fresh interpreters, and whether botocore came too."""
    times, botocore = [], False
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", PROBE.format(module=module)],
            capture_output=True, text=True, check=True,
        ).stdout.split()  # fmt: skip
        times.append(float(out[0]))
        botocore = botocore or out[1] == "True"
    return statistics.median(times), botocore


def main() -> None:
    """Measure and print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    ours, ours_botocore = measure("safegen", args.runs)
    everything, all_botocore = measure(
        "safegen; [getattr(safegen, n) for n in safegen.__all__]", args.runs
    )
    theirs, _ = measure("boto3", args.runs)
    print(f"import safegen: {ours * 1e3:.1f} ms (botocore imported: {ours_botocore})")
    print(f"  + every public name: {everything * 1e3:.1f} ms (botocore imported: {all_botocore})")
    print(f"import boto3:   {theirs * 1e3:.1f} ms")
    print(f"safegen / boto3: {ours / theirs:.2f}x; target: under 50 ms, no botocore")


if __name__ == "__main__":
    main()
