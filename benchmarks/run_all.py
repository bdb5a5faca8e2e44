"""Run every benchmark, one after another, and print each one's table.

Run: ``.venv/bin/pip install -e '.[bench]' && .venv/bin/python benchmarks/run_all.py``
(about two minutes; obscenity needs Node and npm, and is skipped with a reason without them).
Every figure is a ratio or a fraction against a baseline measured in the same run, so it
holds on a noisy machine; none of them is a pass/fail test.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
BENCHMARKS: list[tuple[str, str, list[str]]] = [
    ("policy evaluation", "bench_policy.py", []),
    ("forbidden-term filter vs better-profanity and obscenity", "bench_rules.py", []),
    ("pipeline vs the seed's sequential design", "bench_pipeline.py", []),
    ("moderate_many against a 50/s quota", "bench_moderate_many.py", []),
    ("import cost", "bench_import.py", []),
    ("offline backends: speed and memory", "bench_local.py", []),
    ("peak memory on adversarial headers", "bench_memory.py", []),
    ("offline backends: calibration on drawn pictures", "calibrate_local.py", []),
    ("cascade: Rekognition calls saved and agreement", "bench_cascade.py", []),
    ("async pipeline on one loop vs the sync one in threads", "bench_async.py", []),
    ("audit trail: appends/s, verifying a million entries", "bench_audit.py", []),
    ("batch over an S3 prefix: quota share, memory flat", "bench_batch.py", []),
    ("Ray Data engine: 2 workers vs 1, OpenNSFW", "bench_ray.py", ["--images", "60"]),
]


def main() -> int:
    """Run them all; return non-zero if any failed to run."""
    failed = 0
    for title, script, extra in BENCHMARKS:
        print(f"\n=== {title} ({script})", flush=True)
        done = subprocess.run([sys.executable, str(HERE / script), *extra], check=False)
        failed += done.returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
