"""Thresholds for an offline model, chosen from its scores on pictures you know are harmless.

Rekognition's confidences are calibrated for its default of 50; an offline model's are not.
NudeNet scores a crude cartoon torso above 60 as an exposed breast, and open_nsfw scores some
flat blobs of skin colour above 50. So each offline backend ships thresholds chosen by one
written-down rule (:func:`thresholds_from_scores`) from its scores on two sets of
pictures (``benchmarks/calibrate_local.py`` regenerates the table; see docs/local.rst):

- *harmless* pictures (drawn landscapes, shapes, gradients, noise, skin-coloured blobs, and
  the real photographs scikit-image and matplotlib ship) must be allowed: ``review_at`` sits
  above every harmless score;
- *borderline* pictures (crude cartoon torsos, and look-alikes: colour charts, gradients,
  textures, skin-toned fruit) may be sent to review but never blocked: ``block_at`` sits
  above every score of either set.

Run :func:`calibrate` on your own pictures to move the thresholds to your platform.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Protocol, runtime_checkable

from safegen.image import ImageSource
from safegen.policy import Thresholds
from safegen.ports import ImageBackend

__all__ = [
    "BLOCK_MARGIN",
    "REVIEW_MARGIN",
    "CalibratedBackend",
    "calibrate",
    "highest_scores",
    "thresholds_from_scores",
]

REVIEW_MARGIN = 5.0
"""How far above the highest harmless score ``review_at`` sits."""
BLOCK_MARGIN = 15.0
"""How far above the highest score of either set ``block_at`` sits."""
REVIEW_FLOOR = 40.0
"""The lowest ``review_at`` the rule gives, for a label no picture scored."""
BLOCK_FLOOR = 60.0
"""The lowest ``block_at`` the rule gives."""
CEILING = 95.0
"""The highest threshold the rule gives: a model that scores harmless pictures above this
cannot be saved by a threshold."""


@runtime_checkable
class CalibratedBackend(ImageBackend, Protocol):
    """An offline backend that ships thresholds for the labels it reports."""

    @property
    def thresholds(self) -> Mapping[str, Thresholds]:
        """The calibrated thresholds, keyed by the most specific labels it reports."""
        ...


def _up_to_five(value: float) -> float:
    return float(math.ceil(value / 5) * 5)


def thresholds_from_scores(harmless_max: float, borderline_max: float = 0.0) -> Thresholds:
    """Apply the rule to one label's highest scores (0-100) on the two sets.

    ``review_at`` is the highest harmless score plus
    :data:`~safegen.local.calibration.REVIEW_MARGIN`; ``block_at`` the highest score of either
    set plus :data:`~safegen.local.calibration.BLOCK_MARGIN`; both rounded up to a multiple of
    five, raised to their floors and capped at :data:`~safegen.local.calibration.CEILING`.

    >>> thresholds_from_scores(53.5, 6.0)
    Thresholds(block_at=70.0, review_at=60.0)
    >>> thresholds_from_scores(0.0)
    Thresholds(block_at=60.0, review_at=40.0)
    """
    review = min(CEILING, max(REVIEW_FLOOR, _up_to_five(harmless_max + REVIEW_MARGIN)))
    worst = max(harmless_max, borderline_max)
    block = min(CEILING, max(BLOCK_FLOOR, _up_to_five(worst + BLOCK_MARGIN)))
    return Thresholds(block_at=block, review_at=min(review, block))


def calibrate(
    backend: CalibratedBackend,
    harmless: Iterable[ImageSource],
    borderline: Iterable[ImageSource] = (),
) -> dict[str, Thresholds]:
    """Choose thresholds for *backend*'s labels from its scores on your own pictures.

    :param harmless: pictures your platform must allow.
    :param borderline: pictures that may go to review but must not be blocked.
    :returns: thresholds for each label in ``backend.thresholds``; pass them as a policy's
        ``labels``.
    """
    safe, edge = highest_scores(backend, harmless), highest_scores(backend, borderline)
    return {name: thresholds_from_scores(safe[name], edge[name]) for name in backend.thresholds}


def highest_scores(backend: CalibratedBackend, images: Iterable[ImageSource]) -> dict[str, float]:
    """Return the highest score (0-100) *backend* gave each of its labels on *images*."""
    best = dict.fromkeys(backend.thresholds, 0.0)
    for image in images:
        for label in backend.detect(image, min_confidence=0.0).labels:
            if label.name in best:
                best[label.name] = max(best[label.name], label.confidence)
    return best
