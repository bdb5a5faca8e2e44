"""What a batch did, in numbers: :class:`BatchSummary` and the :class:`Tally` that builds it."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import attrs

from safegen.batch._records import LedgerRecord

_ACTIONS = ("allow", "review", "block")


def _frozen_counts(value: Mapping[str, int]) -> Mapping[str, int]:
    return MappingProxyType(dict(sorted(value.items())))


@attrs.frozen
class BatchSummary:
    """Counts of one run of a batch (the items this run recorded, plus those it skipped).

    :param actions: items per action (``allow``, ``review``, ``block``), failures included
        under their failure action.
    :param labels: items per top-level category that met a threshold (an item counts once
        per top-level category).
    :param failures: failed items per cause code.
    :param checked: items judged by the policy.
    :param failed: items that could not be checked (final or to be retried).
    :param skipped: items recorded as skipped (files a source does not moderate).
    :param skips: skipped items per reason (``"unsupported_type"``).
    :param already_done: items an earlier run had settled, not checked again.
    :param retryable: failed items whose cause is transient: a resumed run retries them.
    """

    actions: Mapping[str, int] = attrs.field(factory=dict, converter=_frozen_counts)
    labels: Mapping[str, int] = attrs.field(factory=dict, converter=_frozen_counts)
    failures: Mapping[str, int] = attrs.field(factory=dict, converter=_frozen_counts)
    checked: int = 0
    failed: int = 0
    skipped: int = 0
    already_done: int = 0
    retryable: int = 0
    skips: Mapping[str, int] = attrs.field(factory=dict, converter=_frozen_counts, kw_only=True)

    @property
    def total(self) -> int:
        """Items this run recorded (checked, failed or skipped)."""
        return self.checked + self.failed + self.skipped

    @property
    def flagged(self) -> bool:
        """Whether anything was blocked, sent to review, or could not be checked."""
        return bool(self.failed or self.actions.get("block") or self.actions.get("review"))

    def to_dict(self) -> dict[str, Any]:
        """Return the summary as plain JSON-ready data."""
        return {
            "total": self.total,
            "checked": self.checked,
            "failed": self.failed,
            "skipped": self.skipped,
            "already_done": self.already_done,
            "retryable": self.retryable,
            "actions": {key: self.actions.get(key, 0) for key in _ACTIONS},
            "labels": dict(self.labels),
            "failures": dict(self.failures),
            "skips": dict(self.skips),
        }

    def render(self) -> str:
        """Return a few lines for a terminal: totals, actions, top labels, failures by cause."""
        lines = [
            f"{self.total} items: {self.checked} checked, {self.failed} could not be checked, "
            f"{self.skipped} skipped; {self.already_done} already done"
        ]
        lines.append("  ".join(f"{key} {self.actions.get(key, 0)}" for key in _ACTIONS))
        if self.labels:
            top = sorted(self.labels.items(), key=lambda kv: (-kv[1], kv[0]))[:5]
            lines.append("labels: " + ", ".join(f"{name} {count}" for name, count in top))
        if self.failures:
            causes = sorted(self.failures.items(), key=lambda kv: (-kv[1], kv[0]))
            lines.append("failures: " + ", ".join(f"{code} {count}" for code, count in causes))
        if self.skips:
            reasons = sorted(self.skips.items(), key=lambda kv: (-kv[1], kv[0]))
            lines.append("skipped: " + ", ".join(f"{code} {count}" for code, count in reasons))
        if self.retryable:
            lines.append(f"{self.retryable} failed for a transient cause: run again to retry them")
        return "\n".join(lines)


class Tally:
    """Count records as an engine writes them; :meth:`summary` freezes the counts. Thread-safe."""

    def __init__(self, *, already_done: int = 0) -> None:
        self._lock = threading.Lock()
        self._actions: Counter[str] = Counter()
        self._labels: Counter[str] = Counter()
        self._failures: Counter[str] = Counter()
        self._skips: Counter[str] = Counter()
        self._outcomes: Counter[str] = Counter()
        self._retryable = 0
        self.already_done = already_done

    def add(self, record: LedgerRecord) -> None:
        """Count *record*."""
        with self._lock:
            self._outcomes[record.outcome] += 1
            if record.action is not None:
                self._actions[record.action] += 1
            for top in {label.split("/", 1)[0] for label in record.labels}:
                self._labels[top] += 1
            if record.outcome == "failed":
                self._failures[record.error or "unknown"] += 1
                self._retryable += record.retryable
            elif record.outcome == "skipped":
                self._skips[record.error or "unknown"] += 1

    def summary(self) -> BatchSummary:
        """Return the counts so far."""
        with self._lock:
            return BatchSummary(
                actions=self._actions,
                labels=self._labels,
                failures=self._failures,
                checked=self._outcomes["checked"],
                failed=self._outcomes["failed"],
                skipped=self._outcomes["skipped"],
                already_done=self.already_done,
                retryable=self._retryable,
                skips=self._skips,
            )
