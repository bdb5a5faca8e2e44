"""The engine that judges what a backend reported against a :class:`~safegen.ModerationPolicy`.

The policy (``safegen.policy``) is the model: its settings, the file format, validation. This
module is what applies it: where each reported label sits, which threshold or exclusion
governs each category, and the decision with every reason, built at once. It is pure: no I/O,
no clock, no randomness. The one cache is :func:`functools.lru_cache` on :func:`_judge`, a
pure function of the policy, a category path and the content-type rules that applied.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from typing import Any, Literal, Protocol, TypeAlias

import attrs

from safegen import _numbers, _settings
from safegen.decision import (
    Action,
    ContentTypeMatch,
    IgnoredLabel,
    IgnoreReason,
    NotEvaluated,
    PolicyDecision,
    PolicySource,
    Violation,
)
from safegen.errors import InvalidLabelError, PolicyError
from safegen.labels import ContentType, ModerationLabel
from safegen.taxonomy import Category, Taxonomy

Path: TypeAlias = tuple[str, ...]
Setting: TypeAlias = Literal["block_at", "review_at"]


# What the engine reads of a policy, so that it depends on no policy module (the model in
# safegen.policy satisfies these; nothing here imports it back).
class EntrySettings(Protocol):
    """One label entry: either setting may be left to inherit (``None``)."""

    @property
    def block_at(self) -> float | None: ...
    @property
    def review_at(self) -> float | None: ...


class RuleSettings(Protocol):
    """What applies while a content type is reported."""

    @property
    def min_confidence(self) -> float: ...
    @property
    def labels(self) -> Mapping[Category, EntrySettings]: ...
    @property
    def exclude(self) -> frozenset[Category]: ...
    @property
    def action(self) -> Action | None: ...


class PolicySettings(Protocol):
    """A policy's settings, hashable so that per-category work can be cached."""

    @property
    def block_at(self) -> float: ...
    @property
    def review_at(self) -> float | None: ...
    @property
    def labels(self) -> Mapping[Category, EntrySettings]: ...
    @property
    def exclude(self) -> frozenset[Category]: ...
    @property
    def content_types(self) -> Mapping[str, RuleSettings]: ...
    @property
    def not_evaluated(self) -> Action: ...
    @property
    def taxonomy(self) -> Taxonomy: ...
    def __hash__(self) -> int: ...


@attrs.frozen
class EffectiveThresholds:
    """How a policy judges one category: the thresholds in force and where each was set.

    :param category: the category.
    :param block_at: the confidence at or above which it blocks.
    :param block_source: the policy entry that set *block_at*.
    :param review_at: the confidence at or above which it sends to review; equal to
        *block_at* when there is no review band.
    :param review_source: the policy entry that set *review_at*.
    :param excluded_by: the exclusion that stops it counting at all, if any.
    """

    category: Category
    block_at: float
    block_source: PolicySource
    review_at: float
    review_source: PolicySource
    excluded_by: PolicySource | None = None


@attrs.frozen
class _Judge:
    """How one category is judged under one set of applied content-type rules."""

    excluded_by: PolicySource | None
    block_at: float
    block_source: PolicySource
    review_at: float
    review_source: PolicySource


#: One category a response reports, in path order: the category, the indices of the labels
#: that report it, the position after its last descendant (they are the steps up to there),
#: and how it is judged.
_Step: TypeAlias = tuple[Category, tuple[int, ...], int, _Judge]


# -- the public operations, called by ModerationPolicy's methods ------------------------------


def evaluate(
    policy: PolicySettings,
    labels: Iterable[ModerationLabel],
    content_types: Iterable[ContentType],
    coverage: Iterable[str | Category] | None,
) -> PolicyDecision:
    """Judge a response: see :meth:`safegen.ModerationPolicy.evaluate`."""
    labels = _collection(labels, "labels", "ModerationLabel")
    shape = []
    for label in labels:
        if not isinstance(label, ModerationLabel):
            raise InvalidLabelError(f"expected ModerationLabel, got {type(label).__name__}")
        shape.append((label.name, label.parent, label.level))
    matches = _matching_rules(policy, _check_content_types(content_types))
    rules = tuple([match.name for match in matches])
    steps = _plan(policy, policy.taxonomy, tuple(shape), rules)
    # The report each category is judged on: its only one, or its most confident.
    chosen = [
        reporters[0]
        if len(reporters) == 1
        else max(reporters, key=lambda i: _report_key(labels[i]))
        for _, reporters, _, _ in steps
    ]

    violations: list[Violation] = []
    ignored: list[IgnoredLabel] = []
    action = Action.ALLOW
    for position, (category, _, end, judge) in enumerate(steps):
        index = chosen[position]
        label = labels[index]
        if judge.excluded_by is not None:
            ignored.append(
                IgnoredLabel(label, category, IgnoreReason.EXCLUDED, None, judge.excluded_by)
            )
            continue
        # The most confident descendant reported by another label, at least as confident.
        explainer = None
        for later in range(position + 1, end):
            other = labels[chosen[later]]
            if (
                chosen[later] != index
                and other.confidence >= label.confidence
                and (explainer is None or other.confidence > explainer.confidence)
            ):
                explainer = other
        confidence = label.confidence
        if explainer is not None:
            reason = IgnoreReason.EXPLAINED_BY_DESCENDANT
            ignored.append(IgnoredLabel(label, category, reason, explained_by=explainer))
        elif confidence >= judge.block_at:
            violations.append(
                Violation(label, category, Action.BLOCK, judge.block_at, judge.block_source)
            )
            action = Action.BLOCK
        elif confidence >= judge.review_at:
            violations.append(
                Violation(label, category, Action.REVIEW, judge.review_at, judge.review_source)
            )
            if action is Action.ALLOW:
                action = Action.REVIEW
        else:  # below the lowest threshold that applies: review's when there is a band
            ignored.append(
                IgnoredLabel(
                    label,
                    category,
                    IgnoreReason.BELOW_THRESHOLD,
                    judge.review_at,
                    judge.review_source,
                )
            )

    not_evaluated = None
    if coverage is not None:
        blind = _blind_spots(policy, _names(coverage, "coverage"), rules)
        if blind:
            not_evaluated = NotEvaluated(blind, policy.not_evaluated)
            action = Action.strictest((action, policy.not_evaluated))

    decided_by = None
    for match in matches:  # the strictest outright action wins; ties go to the first name
        if match.action is not None and (
            decided_by is None or match.action.severity > action.severity
        ):
            action, decided_by = match.action, match.name
    if len(violations) > 1:
        violations.sort(key=_headline_first)
    return PolicyDecision(action, violations, ignored, matches, decided_by, not_evaluated)


def thresholds_for(
    policy: PolicySettings, label: str | Category, content_types: Iterable[str]
) -> EffectiveThresholds:
    """Explain one category's thresholds: see :meth:`safegen.ModerationPolicy.thresholds_for`."""
    category = _settings.category(label, policy.taxonomy, "label")
    reported = []
    for name in _names(content_types, "content_types"):
        if not isinstance(name, str) or policy.taxonomy.content_type(name) is None:
            raise PolicyError(
                f"content type {_numbers.show(name)} is not one of {policy.taxonomy.content_types}"
            )
        reported.append(ContentType(name, 100.0))
    rules = tuple(match.name for match in _matching_rules(policy, tuple(reported)))
    judge = _judge(policy, policy.taxonomy, category.path, rules)
    return EffectiveThresholds(
        category,
        judge.block_at,
        judge.block_source,
        judge.review_at,
        judge.review_source,
        judge.excluded_by,
    )


def blind_spots(
    policy: PolicySettings,
    coverage: Iterable[str | Category],
    content_types: Iterable[ContentType],
) -> tuple[Category, ...]:
    """Return what *coverage* misses: see :meth:`safegen.ModerationPolicy.blind_spots`."""
    matches = _matching_rules(policy, _check_content_types(content_types))
    names = _names(coverage, "coverage")
    return _blind_spots(policy, names, tuple(match.name for match in matches))


# -- the parts ------------------------------------------------------------------------------


def _blind_spots(
    policy: PolicySettings, coverage: tuple[str | Category, ...], rules: tuple[str, ...]
) -> tuple[Category, ...]:
    taxonomy = policy.taxonomy
    seen = [_settings.category(name, taxonomy, "coverage") for name in coverage]
    blind: list[Category] = []
    pending = [c for c in taxonomy if c.level == 1]
    pending.reverse()
    while pending:  # depth first, in taxonomy order
        category = pending.pop()
        if _judge(policy, taxonomy, category.path, rules).excluded_by is not None:
            continue
        if any(category.is_within(s) for s in seen):
            continue
        if not any(s.is_within(category) for s in seen):
            blind.append(category)  # nothing under it is seen: the whole subtree is blind
            continue
        pending.extend(reversed(taxonomy.children(category)))
    return tuple(blind)


@functools.lru_cache(maxsize=1024)
def _plan(
    policy: PolicySettings,
    taxonomy: Taxonomy,
    shape: tuple[tuple[str, str | None, int | None], ...],
    rule_names: tuple[str, ...],
) -> tuple[_Step, ...]:
    """How to judge a response of this shape (names, parents, levels) under these rules.

    Everything that does not depend on confidences: where each label sits (a label may
    report more than one category: see :meth:`~safegen.Taxonomy.place_each`), which labels
    report the same category, the categories in path order (a category's descendants
    directly follow it), and each category's judge. Pure, so cached: shapes repeat.
    """
    labels = [ModerationLabel(name, 0.0, parent, level) for name, parent, level in shape]
    reporters: dict[Path, tuple[Category, list[int]]] = {}
    for index, placements in enumerate(taxonomy.place_each(labels)):
        for category in placements:
            reporters.setdefault(category.path, (category, []))[1].append(index)
    ordered = sorted(reporters)
    steps: list[_Step] = []
    for position, path in enumerate(ordered):
        depth, end = len(path), position + 1
        while end < len(ordered) and ordered[end][:depth] == path:
            end += 1
        category, found = reporters[path]
        steps.append((category, tuple(found), end, _judge(policy, taxonomy, path, rule_names)))
    return tuple(steps)


def _collection(value: object, name: str, kind: str) -> tuple[Any, ...]:
    """Return what a backend reported as a tuple; anything but a collection is refused."""
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
        raise InvalidLabelError(
            f"{name}: expected a collection of {kind}, got {type(value).__name__}"
        )
    return tuple(value)


def _names(value: object, name: str) -> tuple[Any, ...]:
    """Return a list of names as a tuple: a lone name is a list of one, not its characters."""
    if isinstance(value, str | Category):
        return (value,)
    if isinstance(value, bytes | Mapping) or not isinstance(value, Iterable):
        raise PolicyError(f"{name}: expected a list of names, got {type(value).__name__}")
    return tuple(value)


def _check_content_types(content_types: Iterable[ContentType]) -> tuple[ContentType, ...]:
    content_types = _collection(content_types, "content_types", "ContentType")
    for content_type in content_types:
        if not isinstance(content_type, ContentType):
            raise InvalidLabelError(f"expected ContentType, got {type(content_type).__name__}")
    return content_types


def _matching_rules(
    policy: PolicySettings, content_types: tuple[ContentType, ...]
) -> tuple[ContentTypeMatch, ...]:
    """Return the content-type rules that apply, in name order, with what triggered each."""
    if not policy.content_types or not content_types:
        return ()
    canonical = policy.taxonomy.content_type
    strongest: dict[str | None, float] = {}
    for content_type in content_types:
        name, confidence = canonical(content_type.name), content_type.confidence
        if confidence > strongest.get(name, -1.0):
            strongest[name] = confidence
    matches = []
    for name, rule in policy.content_types.items():  # sorted by name
        reported = strongest.get(name)
        if reported is not None and reported >= rule.min_confidence:
            matches.append(ContentTypeMatch(name, reported, rule.min_confidence, rule.action))
    return tuple(matches)


@functools.lru_cache(maxsize=4096)
def _judge(
    policy: PolicySettings, taxonomy: Taxonomy, path: Path, rule_names: tuple[str, ...]
) -> _Judge:
    """How *path* is judged with the named content-type rules applied.

    Pure, so cached: *taxonomy* is part of the key because policies that differ only in
    their taxonomy compare equal.
    """
    rules = [(name, policy.content_types[name]) for name in rule_names]
    exclusions = [(None, policy.exclude), *((name, rule.exclude) for name, rule in rules)]
    excluded_by = None
    for content_type, excluded in exclusions:
        hit = _most_specific(path, excluded)
        if hit is not None:
            excluded_by = PolicySource("exclude", taxonomy.spelling(hit), content_type)
            break
    block_at, block_source = _setting(policy, taxonomy, path, "block_at", rules) or (
        policy.block_at,
        PolicySource("block_at"),
    )
    review = _setting(policy, taxonomy, path, "review_at", rules)
    if review is None and policy.review_at is not None:
        review = (policy.review_at, PolicySource("review_at"))
    # No review band, or an inherited review floor above this label's block_at: REVIEW
    # starts where BLOCK does, so the band is empty.
    review_at, review_source = (
        review if review is not None and review[0] <= block_at else (block_at, block_source)
    )
    return _Judge(excluded_by, block_at, block_source, review_at, review_source)


def _setting(
    policy: PolicySettings,
    taxonomy: Taxonomy,
    path: Path,
    setting: Setting,
    rules: list[tuple[str, RuleSettings]],
) -> tuple[float, PolicySource] | None:
    """Return a label entry's value for *setting*, or ``None`` if only the default applies.

    Applied content-type rules take precedence over the top level; where several set the
    value, the strictest (lowest) wins.
    """
    found: list[tuple[float, PolicySource]] = []
    for name, rule in rules:
        entry = _entry_for(path, setting, rule.labels)
        if entry is not None:
            category, value = entry
            found.append((value, PolicySource(setting, taxonomy.spelling(category), name)))
    if found:
        return min(found, key=lambda vs: vs[0])
    entry = _entry_for(path, setting, policy.labels)
    if entry is not None:
        category, value = entry
        return value, PolicySource(setting, taxonomy.spelling(category))
    return None


def _most_specific(path: Path, categories: frozenset[Category]) -> Category | None:
    for depth in range(len(path), 0, -1):
        candidate = Category(path[:depth])
        if candidate in categories:
            return candidate
    return None


def _entry_for(
    path: Path, setting: Setting, entries: Mapping[Category, EntrySettings]
) -> tuple[Category, float] | None:
    for depth in range(len(path), 0, -1):
        category = Category(path[:depth])
        thresholds = entries.get(category)
        if thresholds is not None:
            value: float | None = getattr(thresholds, setting)
            if value is not None:
                return category, value
    return None


def _report_key(label: ModerationLabel) -> tuple[float, str, str, int]:
    """Order duplicate reports of one category so the choice never depends on input order."""
    return (label.confidence, label.name, label.parent or "", label.level or 0)


def _headline_first(violation: Violation) -> tuple[int, float, Path]:
    return (-violation.action.severity, -violation.label.confidence, violation.category.path)
