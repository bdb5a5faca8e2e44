"""Speed and memory of the offline backends on this machine, per 512x512 picture.

Run: ``.venv/bin/python benchmarks/bench_local.py [--images 100]`` (needs the ``local``
extra; ``nudenet`` is measured when installed).

Each measurement runs in its own process, so peak memory is the backend's alone. The
baseline, measured in the same run, is a process that imports safegen and decodes the same
pictures with Pillow (what any backend has to do): the table shows each backend's load time,
median and 95th-percentile time per picture (decode included) with its ratio to the
baseline's decode, and peak memory (max RSS) with the increase over the baseline process.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def measure(backend: str, count: int) -> dict[str, float]:
    """Run in a child process: load *backend*, moderate *count* pictures, report timings."""
    sys.path.insert(0, str(ROOT))  # for tests.synthetic
    from tests.synthetic import harmless, png

    pictures = [png(harmless(seed)) for seed in range(count)]
    started = time.perf_counter()
    if backend == "baseline":
        from safegen.local import _picture

        def run(image: bytes) -> object:
            return _picture.views(image)
    else:
        from safegen.local import NudeNet, OpenNSFW

        model: OpenNSFW | NudeNet = OpenNSFW() if backend == "opennsfw" else NudeNet()

        def run(image: bytes) -> object:
            return model.detect(image, min_confidence=0.0)

    loaded = time.perf_counter() - started
    run(pictures[0])  # warm-up: first-run allocations are not per-picture cost
    timings = []
    for image in pictures:
        start = time.perf_counter()
        run(image)
        timings.append(time.perf_counter() - start)
    timings.sort()
    return {
        "load_s": loaded,
        "median_ms": statistics.median(timings) * 1000,
        "p95_ms": timings[int(len(timings) * 0.95) - 1] * 1000,
        "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> int:
    """Measure the baseline and each installed backend in child processes; print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.images)))
        return 0

    results = {}
    for backend in ("baseline", "opennsfw", "nudenet"):
        done = subprocess.run(
            [sys.executable, __file__, "--child", backend, "--images", str(args.images)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            print(f"{backend}: skipped ({done.stderr.strip().splitlines()[-1]})")
            continue
        results[backend] = json.loads(done.stdout)
    base = results["baseline"]
    print(f"{args.images} harmless 512x512 PNG pictures, one at a time, on this machine\n")
    print(
        f"{'backend':<10} {'load':>7} {'median':>9} {'p95':>9} {'x decode':>9} "
        f"{'peak RSS':>9} {'over baseline':>14}"
    )
    for name, row in results.items():
        print(
            f"{name:<10} {row['load_s'] * 1000:>5.0f}ms {row['median_ms']:>7.1f}ms "
            f"{row['p95_ms']:>7.1f}ms {row['median_ms'] / base['median_ms']:>8.1f}x "
            f"{row['peak_mib']:>6.0f}MiB {row['peak_mib'] - base['peak_mib']:>11.0f}MiB"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
