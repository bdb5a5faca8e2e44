"""How fast ModerationPolicy.evaluate judges realistic Rekognition responses.

Prints evaluations per second for responses of 1, 5 and 20 labels, and two ratios:

- against the floor (50,000 evaluations per second for 5 labels, on one core), the speed a
  policy needs to be noise in front of a ~100 ms Rekognition call;
- against a named baseline measured in the same run: the flat check the seed's Lambda makes
  (any label's confidence above one threshold), over the same raw responses. safegen does more
  (per-path thresholds, exclusions, explanations), so the ratio shows what that costs.

``evaluate()`` builds the whole explanation (every violation and ignored label) before it
returns; the "evaluate/s" column reads it, and "+to_dict/s" adds the JSON form an audit log
writes.

Run: ``.venv/bin/python benchmarks/bench_policy.py`` (best of several repeats; the machine is
shared, so read the figures as approximate). ``--check`` exits 1 when the 5-label figure is
under the floor.
"""

from __future__ import annotations

import argparse
import functools
import time
from collections.abc import Callable
from typing import Any

from safegen import ContentType, ModerationPolicy
from safegen.aws import parse_moderation_response

FLOOR_PER_SECOND = 50_000  # for a 5-label response, explanations built


def _label(name: str, parent: str, level: int, confidence: float) -> dict[str, Any]:
    return {"Name": name, "ParentName": parent, "TaxonomyLevel": level, "Confidence": confidence}


def responses() -> dict[int, dict[str, Any]]:
    """Three DetectModerationLabels responses shaped like the service's (ancestors included)."""
    one = [_label("Violence", "", 1, 72.0)]
    five = [
        _label("Explicit", "", 1, 91.0),
        _label("Explicit Nudity", "Explicit", 2, 91.0),
        _label("Exposed Female Nipple", "Explicit Nudity", 3, 91.0),
        _label("Swimwear or Underwear", "", 1, 64.0),
        _label("Female Swimwear or Underwear", "Swimwear or Underwear", 2, 64.0),
    ]
    twenty = [
        *five,
        _label("Non-Explicit Nudity of Intimate parts and Kissing", "", 1, 97.0),
        _label("Kissing on the Lips", "Non-Explicit Nudity of Intimate parts and Kissing", 2, 97.0),
        _label("Non-Explicit Nudity", "Non-Explicit Nudity of Intimate parts and Kissing", 2, 58.0),
        _label("Bare Back", "Non-Explicit Nudity", 3, 58.0),
        _label("Violence", "", 1, 88.0),
        _label("Weapons", "Violence", 2, 88.0),
        _label("Graphic Violence", "Violence", 2, 45.0),
        _label("Blood & Gore", "Graphic Violence", 3, 45.0),
        _label("Drugs & Tobacco", "", 1, 99.4),
        _label("Drug & Tobacco Paraphernalia & Use", "Drugs & Tobacco", 2, 99.4),
        _label("Smoking", "Drug & Tobacco Paraphernalia & Use", 3, 99.4),
        _label("Alcohol", "", 1, 81.0),
        _label("Alcoholic Beverages", "Alcohol", 2, 81.0),
        _label("Gambling", "", 1, 52.0),
        _label("Gambling", "Gambling", 2, 52.0),
    ]
    animated = [{"Name": "Animated", "Confidence": 86.0}]
    return {
        n: {"ModerationLabels": labels, "ContentTypes": animated, "ModerationModelVersion": "7.0"}
        for n, labels in ((1, one), (5, five), (20, twenty))
    }


POLICY = ModerationPolicy.from_mapping(
    {
        "block_at": 50,
        "review_at": 40,
        "exclude": ["Kissing on the Lips"],
        "labels": {
            "Explicit Nudity": 60,
            "Female Swimwear or Underwear": {"block_at": 75, "review_at": 60},
            "Alcohol": 90,
        },
        "content_types": {
            "Animated": {"min_confidence": 80, "labels": {"Violence": 95}, "exclude": ["Weapons"]}
        },
    }
)


def seed_style_check(response: dict[str, Any], threshold: float = 50.0) -> bool:
    """Flag a response the way the seed's Lambda does: any label above one threshold."""
    return any(label["Confidence"] > threshold for label in response["ModerationLabels"])


def evaluate_and_read(labels: Any, types: Any) -> int:
    """Decide, and read the explanation evaluate() built with the decision."""
    decision = POLICY.evaluate(labels, types)
    return len(decision.violations) + len(decision.ignored)


def evaluate_and_serialise(labels: Any, types: Any) -> dict[str, Any]:
    """Decide and serialise the whole explanation, as an audit log would."""
    return POLICY.evaluate(labels, types).to_dict()


def per_second(work: Callable[[], object], *, seconds: float, repeats: int) -> float:
    """Best-of-*repeats* calls per second, each repeat running for about *seconds*."""
    best = 0.0
    for _ in range(repeats):
        calls, start = 0, time.perf_counter()
        deadline = start + seconds
        while True:
            for _ in range(200):
                work()
            calls += 200
            now = time.perf_counter()
            if now >= deadline:
                break
        best = max(best, calls / (now - start))
    return best


def main() -> int:
    """Measure and print the table; with ``--check``, return 1 below the floor."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=0.5, help="length of one repeat")
    parser.add_argument("--repeats", type=int, default=5, help="repeats; the best one counts")
    parser.add_argument("--check", action="store_true", help="exit 1 under the 5-label floor")
    args = parser.parse_args()

    timing = {"seconds": args.seconds, "repeats": args.repeats}
    print("policy evaluation (one core), explanations built: evaluate() vs the seed's flat check")
    header = ("labels", "evaluate/s", "+to_dict/s", "baseline/s", "vs baseline", "vs floor")
    print("{:>6} {:>12} {:>12} {:>12} {:>12} {:>10}".format(*header))
    floor_ratio = 0.0
    for size, raw in responses().items():
        parsed = parse_moderation_response(raw)
        labels, types = parsed.labels, parsed.content_types
        assert all(isinstance(t, ContentType) for t in types)
        ours = per_second(functools.partial(evaluate_and_read, labels, types), **timing)
        serialised = per_second(functools.partial(evaluate_and_serialise, labels, types), **timing)
        baseline = per_second(functools.partial(seed_style_check, raw), **timing)
        ratio = ""
        if size == 5:
            floor_ratio = ours / FLOOR_PER_SECOND
            ratio = f"{floor_ratio:9.2f}x"
        print(
            f"{size:>6} {ours:>12,.0f} {serialised:>12,.0f} {baseline:>12,.0f} "
            f"{ours / baseline:>11.3f}x {ratio:>10}"
        )
    verdict = "meets" if floor_ratio >= 1 else "is UNDER"
    print(
        f"floor: {FLOOR_PER_SECOND:,} evaluations/s for 5 labels with explanations; "
        f"{floor_ratio:.2f}x: {verdict} the floor"
    )
    return 1 if args.check and floor_ratio < 1 else 0


if __name__ == "__main__":
    raise SystemExit(main())
