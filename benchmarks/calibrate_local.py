"""Calibrate the offline backends' thresholds, and check every shipped offline configuration.

Run: ``.venv/bin/python benchmarks/calibrate_local.py [--drawn 300 --cartoons 100 --lookalikes 90]``
(the real photographs need ``pip install scikit-image matplotlib``: the ``calibrate`` extra).

Four seeded or bundled sets (``tests/synthetic.py``, ``tests/photographs.py``):

- *harmless*: drawn pictures (landscapes, shapes, gradients, noise, skin-coloured blobs) and
  the real photographs installed packages carry (portraits, faces, a cat, coffee, a rocket,
  test charts, ...). They must be allowed: ``review_at`` sits above every score.
- *borderline*: crude cartoon torsos and look-alikes (colour wheels, hue gradients, colour
  bars, checkers, noise, skin-toned textures and fruit, in colour and in grey). They may be
  reviewed, never blocked: ``block_at`` sits above every score of every set.

Prints, per backend and label, the highest score of each family and the picture that gave
it, the thresholds ``safegen.local.calibration``'s rule gives and the ones shipped; then the
action each shipped configuration (OpenNSFW, NudeNet, both; the recommended policy over each
preset) takes on each family, naming any harmless picture that is not allowed (a harmless
picture NudeNet's skin test holds at the review line is named, and left out of the rule's
input: that score is the test's floor, not evidence). With
``--raw``, NudeNet's scores without its skin test too (``NudeNet(min_skin=0)``), for
comparison. Also prints one model's latency on one picture and the process's peak memory.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.synthetic

from tests.photographs import lookalike, photographs
from tests.synthetic import borderline, harmless, png

from safegen import Action, ImageModerator, ImageReport, ModerationPolicy
from safegen.decision import PolicyDecision
from safegen.errors import LocalModelError, PolicyError
from safegen.local import Ensemble, NudeNet, OpenNSFW, recommended_policy, thresholds_from_scores
from safegen.local.calibration import CalibratedBackend
from safegen.local.nudenet import _review_floor
from safegen.reports import ImageSource

PRESETS = ("offline", "general", "strict", "explicit")


def families(drawn: int, cartoons: int, lookalikes: int) -> dict[str, dict[str, bytes]]:
    """Return the calibration sets by family, each picture by name."""
    return {
        "drawn": {f"harmless({seed})": png(harmless(seed)) for seed in range(drawn)},
        "photographs": photographs(),
        "cartoons": {f"borderline({seed})": png(borderline(seed)) for seed in range(cartoons)},
        "lookalikes": {f"lookalike({seed})": png(lookalike(seed)) for seed in range(lookalikes)},
    }


HARMLESS = ("drawn", "photographs")


class Replay:
    """A calibrated backend answering what a real one answered once for each picture."""

    def __init__(self, backend: CalibratedBackend, images: Iterable[bytes], times: list[float]):
        self.name = backend.name
        self.thresholds = backend.thresholds
        self.reports: dict[bytes, ImageReport] = {}
        for image in images:
            started = time.perf_counter()
            self.reports[image] = backend.detect(image, min_confidence=0.0)
            times.append(time.perf_counter() - started)

    def detect(self, image: ImageSource, *, min_confidence: float) -> ImageReport:
        """Return the report the real backend gave *image*."""
        assert isinstance(image, bytes)
        return self.reports[image]


def scores(backend: Replay, images: Mapping[str, bytes]) -> dict[str, dict[str, float]]:
    """Return each picture's score for each of *backend*'s labels (0 when not reported)."""
    found = {}
    for name, image in images.items():
        top = dict.fromkeys(backend.thresholds, 0.0)
        for label in backend.detect(image, min_confidence=0.0).labels:
            if label.name in top:
                top[label.name] = max(top[label.name], label.confidence)
        found[name] = top
    return found


def table(backend: Replay, sets: Mapping[str, Mapping[str, bytes]]) -> None:
    """Print the highest score per label and family, the rule's thresholds and the shipped."""
    seen = {family: scores(backend, images) for family, images in sets.items()}
    print(f"  {'label':26} {'family':12} {'highest':>7}  picture")
    for label, shipped in backend.thresholds.items():
        top: dict[str, float] = {}
        for family, by_image in seen.items():
            name, score = max(
                ((n, s[label]) for n, s in by_image.items()), key=lambda x: x[1], default=("-", 0)
            )
            top[family] = score
            print(f"  {label:26} {family:12} {score:7.1f}  {name}")
        # NudeNet's skin test holds a colour-doubted detection at the review line, never
        # lower: that score is the test's floor, not the detector's evidence, and raising
        # review_at over it would only raise the floor with it. It is left out of the rule's
        # input and counted: each such harmless picture is reviewed (the floor's cost).
        floor = _review_floor(shipped) * 100 if backend.name == "nudenet" else None
        held = [n for f in HARMLESS for n, s in seen.get(f, {}).items() if s[label] == floor]
        safe = max(
            (s[label] for f in HARMLESS for s in seen.get(f, {}).values() if s[label] != floor),
            default=0.0,
        )
        if held:
            print(f"  {label:26} held at the review line by the skin test: {', '.join(held)}")
        rule = thresholds_from_scores(safe, max(top.values()))
        mark = "" if rule == shipped else "  <- differs"
        print(
            f"  {label:26} rule review/block {rule.review_at:g}/{rule.block_at:g}, "
            f"shipped {shipped.review_at:g}/{shipped.block_at:g}{mark}"
        )


def policies() -> dict[str, ModerationPolicy]:
    """Return the base policies the shipped configurations put calibrated thresholds over."""
    bases = {"default, not_evaluated=allow": ModerationPolicy(not_evaluated="allow")}
    for name in PRESETS:
        try:
            bases[f"preset {name}"] = ModerationPolicy.preset(name)
        except (PolicyError, AttributeError):  # a preset this version does not ship
            continue
    return bases


def _by_scores(action: Action, decision: PolicyDecision | None) -> Action:
    """Return the action the scores alone (not the gap in coverage) call for."""
    if decision is None or decision.not_evaluated is None:
        return action
    return max(
        (v.action for v in decision.violations), key=lambda a: a.severity, default=Action.ALLOW
    )


def verdicts(backend: CalibratedBackend, sets: Mapping[str, Mapping[str, bytes]]) -> None:
    """Print each shipped configuration's actions per family; name harmless pictures not allowed."""
    for base_name, base in policies().items():
        moderator = ImageModerator(backend, recommended_policy(backend, base))
        counts = []
        for family, images in sets.items():
            done: dict[str, int] = {"allow": 0, "review": 0, "block": 0}
            unseen = 0
            for name, image in images.items():
                verdict = moderator.moderate(image)
                action = _by_scores(verdict.action, verdict.decision)
                if action is not verdict.action:
                    unseen += 1  # decided by what the model cannot see, not by a score
                done[action.value] += 1
                if action is Action.BLOCK or (family in HARMLESS and action is not Action.ALLOW):
                    print(f"    {base_name}: {family} {name} -> {action.value}")
            note = f" (+{unseen} decided by not_evaluated)" if unseen else ""
            counts.append(f"{family} {done}{note}")
        print(f"  {base_name}: " + "; ".join(counts))


def main() -> int:
    """Print the calibration table and the shipped configurations' verdicts."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--drawn", type=int, default=300)
    parser.add_argument("--cartoons", type=int, default=100)
    parser.add_argument("--lookalikes", type=int, default=90)
    parser.add_argument("--raw", action="store_true", help="also NudeNet without its skin test")
    args = parser.parse_args()
    sets = families(args.drawn, args.cartoons, args.lookalikes)
    print(", ".join(f"{len(images)} {family}" for family, images in sets.items()))
    if not sets["photographs"]:
        print("no real photographs: pip install scikit-image matplotlib")

    makers: list[tuple[str, Callable[[], CalibratedBackend]]] = [
        ("OpenNSFW", OpenNSFW),
        ("NudeNet", NudeNet),
    ]
    if args.raw:
        makers.append(("NudeNet(min_skin=0)", lambda: NudeNet(min_skin=0)))
    loaded: dict[str, Replay] = {}
    timings: list[float] = []
    everything = [image for images in sets.values() for image in images.values()]
    for title, make in makers:
        try:
            started = time.perf_counter()
            backend = make()
            elapsed = time.perf_counter() - started
        except LocalModelError as error:
            print(f"\n{title}: skipped ({error})")
            continue
        loaded[title] = Replay(backend, everything, timings)
        print(f"\n{title}: loaded in {elapsed * 1000:.0f} ms")
        table(loaded[title], sets)
    configurations: dict[str, CalibratedBackend] = {
        k: v for k, v in loaded.items() if "min_skin" not in k
    }
    if {"OpenNSFW", "NudeNet"} <= set(loaded):
        configurations["OpenNSFW+NudeNet"] = Ensemble([loaded["OpenNSFW"], loaded["NudeNet"]])
    for title, backend in configurations.items():
        print(f"\n{title}: actions (the recommended policy over each base)")
        verdicts(backend, sets)
    if timings:
        print(
            f"\none model, one picture: median {statistics.median(timings) * 1000:.1f} ms, "
            f"p95 {sorted(timings)[int(len(timings) * 0.95)] * 1000:.1f} ms"
        )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory of this process: {peak:.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
