"""Calibrate the offline backends' thresholds on drawn pictures, and check the shipped ones.

Run: ``.venv/bin/python benchmarks/calibrate_local.py [--harmless 300 --borderline 100]``

Draws the seeded harmless and borderline sets (``tests/synthetic.py``), scores them with each
offline backend installed, applies ``safegen.local.calibration``'s rule, and prints, per
label: the highest score on each set, the thresholds the rule gives, and the ones the backend
ships. Also prints the per-image latency and the process's peak memory.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.synthetic

from tests.synthetic import borderline, harmless, png

from safegen import ImageModerator, ModerationPolicy
from safegen.errors import LocalModelError
from safegen.local import NudeNet, OpenNSFW, recommended_policy, thresholds_from_scores
from safegen.local.calibration import CalibratedBackend, highest_scores


def main() -> int:
    """Print the calibration table for every installed offline backend."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--harmless", type=int, default=300)
    parser.add_argument("--borderline", type=int, default=100)
    args = parser.parse_args()
    safe = [png(harmless(seed)) for seed in range(args.harmless)]
    edge = [png(borderline(seed)) for seed in range(args.borderline)]
    print(f"{len(safe)} harmless and {len(edge)} borderline pictures, 512x512 PNG")

    for make in (OpenNSFW, NudeNet):
        try:
            started = time.perf_counter()
            backend: CalibratedBackend = make()
            loaded = time.perf_counter() - started
        except LocalModelError as error:
            print(f"\n{make.__name__}: skipped ({error})")
            continue
        print(f"\n{backend.name}: loaded in {loaded * 1000:.0f} ms")
        # The rule that calibrate() applies, on scores computed once for the table too.
        top_safe, top_edge = highest_scores(backend, safe), highest_scores(backend, edge)
        chosen = {n: thresholds_from_scores(top_safe[n], top_edge[n]) for n in backend.thresholds}
        print(
            f"  {'label':26} {'highest harmless/borderline':>28} {'rule review/block':>18} "
            f"{'shipped':>10}"
        )
        for name, thresholds in chosen.items():
            shipped = backend.thresholds[name]
            mark = "" if shipped == thresholds else "  <- differs"
            print(
                f"  {name:26} {top_safe[name]:14.1f} / {top_edge[name]:<11.1f} "
                f"{thresholds.review_at:8g} / {thresholds.block_at:<7g} "
                f"{shipped.review_at:4g} / {shipped.block_at:<4g}{mark}"
            )
        moderator = ImageModerator(
            backend, recommended_policy(backend, ModerationPolicy(not_evaluated="allow"))
        )
        timings: list[float] = []
        actions: dict[str, list[str]] = {"harmless": [], "borderline": []}
        for family, images in (("harmless", safe), ("borderline", edge)):
            for image in images:
                verdict = moderator.moderate(image)
                timings.append(verdict.seconds)
                actions[family].append(verdict.action.value)
        for family, done in actions.items():
            counts = {a: done.count(a) for a in ("allow", "review", "block")}
            print(f"  {family}: {counts}")
        print(
            f"  per image: median {statistics.median(timings) * 1000:.1f} ms, "
            f"p95 {sorted(timings)[int(len(timings) * 0.95)] * 1000:.1f} ms"
        )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak memory of this process: {peak:.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
