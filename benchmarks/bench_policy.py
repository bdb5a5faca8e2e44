"""How fast ModerationPolicy.evaluate judges realistic Rekognition responses.

Prints evaluations per second for responses of 1, 5 and 20 labels, and two ratios:

- against the target (100,000 evaluations per second for 5 labels, on one core);
- against a named baseline measured in the same run: the flat check the seed's Lambda makes
  (any label's confidence above one threshold), over the same raw responses. safegen does more
  (per-path thresholds, exclusions, explanations), so the ratio shows what that costs.

``evaluate()`` decides at once and builds its explanation objects when they are first read;
the "+explain" column times ``evaluate(...).to_dict()``, what an audit log pays.

Run: ``.venv/bin/python benchmarks/bench_policy.py`` (best of several repeats; the machine is
shared, so read the figures as approximate).
"""

from __future__ import annotations

import argparse
import functools
import time
from collections.abc import Callable
from typing import Any

from safegen import ContentType, ModerationPolicy
from safegen.aws import parse_moderation_response

TARGET_PER_SECOND = 100_000  # for a 5-label response


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


def evaluate_and_explain(labels: Any, types: Any) -> dict[str, Any]:
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


def main() -> None:
    """Measure and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=0.5, help="length of one repeat")
    parser.add_argument("--repeats", type=int, default=5, help="repeats; the best one counts")
    args = parser.parse_args()

    timing = {"seconds": args.seconds, "repeats": args.repeats}
    print("policy evaluation (one core): evaluate() vs the seed Lambda's flat check")
    header = ("labels", "safegen/s", "+explain/s", "baseline/s", "vs baseline", "vs target")
    print("{:>6} {:>12} {:>12} {:>12} {:>12} {:>10}".format(*header))
    for size, raw in responses().items():
        parsed = parse_moderation_response(raw)
        labels, types = parsed.labels, parsed.content_types
        assert all(isinstance(t, ContentType) for t in types)
        ours = per_second(functools.partial(POLICY.evaluate, labels, types), **timing)
        explained = per_second(functools.partial(evaluate_and_explain, labels, types), **timing)
        baseline = per_second(functools.partial(seed_style_check, raw), **timing)
        target = f"{ours / TARGET_PER_SECOND:9.2f}x" if size == 5 else ""
        print(
            f"{size:>6} {ours:>12,.0f} {explained:>12,.0f} {baseline:>12,.0f} "
            f"{ours / baseline:>11.3f}x {target:>10}"
        )
    print(f"target: {TARGET_PER_SECOND:,} evaluations/s for 5 labels (vs target >= 1.00x)")


if __name__ == "__main__":
    main()
