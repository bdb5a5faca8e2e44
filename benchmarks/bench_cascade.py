"""How many Rekognition calls the Cascade saves on a mixed set, and what it costs in agreement.

Run: ``.venv/bin/python benchmarks/bench_cascade.py`` (needs the ``local`` and ``nudenet``
extras; about a minute).

The set (drawn from seeds, ``tests/synthetic.py``): 100 harmless pictures, 50 cartoon torsos
(half with nipples drawn on) and 50 "weapon" pictures. The offline models really run on
every picture. Rekognition is simulated, because its answers on drawings cannot be fetched
here: it is assumed to see what a person would, namely an exposed nipple at 85 on the
cartoons that have them, implied nudity at 60 on the others, and a weapon at 92 on the weapon
pictures (drawn as harmless pictures: only the simulated Rekognition knows). Those
assumptions are this benchmark's, not measurements of Rekognition.

The baseline is Rekognition alone: one call per picture. For each policy and offline model
the table shows the calls the cascade saved and how often its action matched the baseline's,
with the disagreements split into "let through" (the cascade was more lenient) and "stricter".
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.synthetic

from tests.synthetic import borderline, harmless, png

from safegen import (
    REKOGNITION_V7,
    Cascade,
    ImageBackend,
    ImageModerator,
    ModerationLabel,
    ModerationPolicy,
)
from safegen.image import ImageReport, ImageSource
from safegen.local import Ensemble, NudeNet, OpenNSFW
from safegen.testing import FakeImageBackend

# Every top-level category but Explicit: a platform that moderates explicit content only.
NOT_EXPLICIT = [c.name for c in REKOGNITION_V7 if c.level == 1 and c.name != "Explicit"]
POLICIES = {
    "explicit only": ModerationPolicy(exclude=NOT_EXPLICIT),
    "everything": ModerationPolicy(),
    "everything, gaps accepted": ModerationPolicy(not_evaluated="allow"),
}


def _chain(*names: str, confidence: float) -> tuple[ModerationLabel, ...]:
    return tuple(
        ModerationLabel(name, confidence, parent=names[i - 1] if i else None, level=i + 1)
        for i, name in enumerate(names)
    )


def build_set() -> tuple[list[bytes], dict[bytes, tuple[ModerationLabel, ...]]]:
    """Return the pictures and what the simulated Rekognition sees in each."""
    truth: dict[bytes, tuple[ModerationLabel, ...]] = {}
    for seed in range(100):
        truth[png(harmless(seed))] = ()
    for seed in range(50):
        if seed % 2 == 0:
            labels = _chain("Explicit", "Explicit Nudity", "Exposed Female Nipple", confidence=85.0)
        else:
            labels = _chain(
                "Non-Explicit Nudity of Intimate parts and Kissing",
                "Non-Explicit Nudity",
                "Implied Nudity",
                confidence=60.0,
            )
        truth[png(borderline(seed))] = labels
    for seed in range(1000, 1050):
        truth[png(harmless(seed))] = _chain("Violence", "Weapons", confidence=92.0)
    return list(truth), truth


def main() -> int:
    """Print the table."""
    images, truth = build_set()

    def rekognition_sees(image: ImageSource) -> ImageReport:
        assert isinstance(image, bytes)
        return ImageReport(labels=truth[image], model_version="7.0")

    firsts: dict[str, ImageBackend] = {
        "opennsfw": OpenNSFW(),
        "opennsfw+nudenet": Ensemble([OpenNSFW(), NudeNet()]),
    }
    print(f"{len(images)} pictures; baseline: Rekognition alone, {len(images)} calls\n")
    print(
        f"{'policy':<27} {'first look':<17} {'calls':>6} {'saved':>7} {'agree':>7} "
        f"{'let through':>12} {'stricter':>9}"
    )
    for policy_name, policy in POLICIES.items():
        alone = ImageModerator(FakeImageBackend(respond=rekognition_sees), policy)
        baseline = [v.action for v in alone.moderate_many(images)]
        for first_name, first in firsts.items():
            rekognition = FakeImageBackend(respond=rekognition_sees, name="rekognition")
            cascade = Cascade(first, ImageModerator(rekognition, policy))
            actions = [v.action for v in cascade.moderate_many(images, max_workers=2)]
            calls = len(rekognition.calls)
            agree = sum(a is b for a, b in zip(actions, baseline, strict=True))
            lenient = sum(a.severity < b.severity for a, b in zip(actions, baseline, strict=True))
            stricter = sum(a.severity > b.severity for a, b in zip(actions, baseline, strict=True))
            print(
                f"{policy_name:<27} {first_name:<17} {calls:>6} "
                f"{1 - calls / len(images):>7.0%} {agree / len(images):>7.0%} "
                f"{lenient:>12} {stricter:>9}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
