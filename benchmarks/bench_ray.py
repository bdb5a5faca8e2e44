"""The Ray Data engine on this machine: 2 workers against 1, with an offline model.

Each worker is a Ray actor that loads OpenNSFW once (one onnxruntime thread each, so the
workers, not the model's threads, are what scale) and moderates local pictures from a Ray
Data pipeline; the driver writes the ledger. Baseline, in the same run: the same engine
with 1 worker. Printed: images/s of each and the speed-up (2 CPUs: at most x2).

Run: ``.venv/bin/python benchmarks/bench_ray.py [--images 200]`` (needs the ``ray`` and
``local`` extras).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    """Measure 1 and 2 workers and print the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))  # for tests.synthetic
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    import ray
    from tests.synthetic import harmless, png

    from safegen import ImageModerator
    from safegen.batch import Ledger, directory_items
    from safegen.batch.ray import RayEngine
    from safegen.local import OpenNSFW, recommended_policy

    policy = recommended_policy(OpenNSFW())

    def build() -> ImageModerator:  # runs in each actor: the model is loaded there, once
        from safegen.local import OpenNSFW, recommended_policy

        model = OpenNSFW(threads=1)
        return ImageModerator(model, recommended_policy(model))

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "images"
        root.mkdir()
        for seed in range(args.images):
            (root / f"{seed:05d}.png").write_bytes(png(harmless(seed)))
        for workers in (1, 2):
            engine = RayEngine(build, workers=workers, batch_size=8)
            where = Path(folder) / f"ledger-{workers}.jsonl"
            with Ledger.open(where, policy=policy, engine="ray") as ledger:
                start = time.perf_counter()
                summary = engine.run(directory_items(root), ledger)
                seconds = time.perf_counter() - start
            rows.append((workers, summary.checked, seconds))
    ray.shutdown()
    print(f"{args.images} pictures (512x512 PNG), OpenNSFW, 1 onnxruntime thread per actor")
    print(f"{'workers':>8} {'checked':>8} {'seconds':>8} {'images/s':>9}")
    for workers, checked, seconds in rows:
        print(f"{workers:>8} {checked:>8} {seconds:>8.1f} {checked / seconds:>9.1f}")
    (_, c1, s1), (_, c2, s2) = rows
    print(f"2 workers vs 1: x{(c2 / s2) / (c1 / s1):.2f} (actor start-up included; at most x2)")


if __name__ == "__main__":
    main()
