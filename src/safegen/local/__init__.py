"""Offline image moderation: models that ship inside their packages and run on this machine.

Nothing here reaches the network: a model is read from its installed package or the backend
refuses to start (:class:`~safegen.LocalModelError`). Each backend says what it can see
(the ``coverage`` of its :class:`~safegen.ImageReport`), so what the policy moderates
beyond that is *not evaluated*, never safe, and ships thresholds calibrated for its own
scores (see :func:`calibrate`); :func:`recommended_policy` puts them in a policy.

- :class:`OpenNSFW` (``pip install 'safegen[local]'``, Apache-2.0 and BSD-2-Clause): one
  score for explicit content. The default.
- :class:`NudeNet` (``pip install 'safegen[nudenet]'``, **AGPL-3.0**, opt-in only): exposed
  body parts with boxes, mapped onto the v7 nudity labels.
- :class:`Ensemble`: several of them as one backend.
"""

from __future__ import annotations

import attrs

from safegen.local.calibration import CalibratedBackend, calibrate, thresholds_from_scores
from safegen.local.ensemble import Ensemble
from safegen.local.nudenet import NudeNet
from safegen.local.opennsfw import OpenNSFW
from safegen.policy import ModerationPolicy

__all__ = [
    "CalibratedBackend",
    "Ensemble",
    "NudeNet",
    "OpenNSFW",
    "calibrate",
    "recommended_policy",
    "thresholds_from_scores",
]


def recommended_policy(
    backend: CalibratedBackend, base: ModerationPolicy | None = None
) -> ModerationPolicy:
    """Return *base* with *backend*'s calibrated thresholds under its own label entries.

    Everything else is *base*'s, unchanged: its default thresholds, exclusions (what your
    platform does not moderate), ``not_evaluated`` (what the backend's blind spots cost),
    content-type rules, its ``[prompts]`` section, and any entry *base* sets for one of the
    backend's labels, which wins over the calibrated one.

    >>> from safegen.local import OpenNSFW
    >>> policy = recommended_policy(OpenNSFW(), ModerationPolicy(not_evaluated="allow"))
    >>> policy.to_mapping()["labels"], policy.not_evaluated
    ({'Explicit': {'block_at': 75.0, 'review_at': 65.0}}, <Action.ALLOW: 'allow'>)
    """
    base = base if base is not None else ModerationPolicy()
    taxonomy = base.taxonomy
    labels = {taxonomy.lookup(name): value for name, value in backend.thresholds.items()}
    labels.update(base.labels)
    # attrs.evolve carries every other field (prompts, content types, exclusions...) as
    # it is: a field added to the policy later is carried too, never silently reset.
    return attrs.evolve(base, labels=labels)
