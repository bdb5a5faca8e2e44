"""The moderation policy: what "unsafe" means for a platform, and the pure engine that applies it.

A policy maps what a backend reported (labels and content types) to an :class:`~safegen.Action`
with every reason. Its semantics, in short (``docs/policies.rst`` has the long form):

- A label counts when its confidence is at or above its threshold. Each setting (``block_at``,
  ``review_at``) comes from the most specific entry on the label's path (L3, then L2, then L1),
  else the policy default. ``[review_at, block_at)`` yields REVIEW.
- An excluded concept and everything under it never counts.
- An ancestor reported together with a descendant at least as confident is judged through that
  descendant, so excluding or loosening a specific concept is not undone by its L1.
- A content-type rule applies when its content type is reported at or above its
  ``min_confidence``; its label entries then take precedence over the top level's, its
  exclusions add to the top level's, and its ``action`` can block or allow outright.
- When a backend says what it can see (an offline model sees a few categories), what the
  policy moderates outside that is *not evaluated*, never silently safe: its ``not_evaluated``
  setting (REVIEW by default) says what that costs.

Evaluation does no I/O and uses no clock or randomness.
"""

from __future__ import annotations

import functools
import os
import tomllib
import types
from collections.abc import Iterable, Mapping
from typing import Any, Literal, TypeAlias

import attrs

from safegen import _settings
from safegen.decision import (
    Action,
    ContentTypeMatch,
    Explanation,
    IgnoredLabel,
    IgnoreReason,
    NotEvaluated,
    PolicyDecision,
    PolicySource,
    Violation,
)
from safegen.errors import InvalidLabelError, PolicyError
from safegen.labels import ContentType, ModerationLabel
from safegen.taxonomy import REKOGNITION_V7, Category, Taxonomy

__all__ = ["ContentTypeRule", "EffectiveThresholds", "ModerationPolicy", "Thresholds"]

Path: TypeAlias = tuple[str, ...]
Setting: TypeAlias = Literal["block_at", "review_at"]
#: How a label entry may be written: a number (``block_at``), a table, or :class:`Thresholds`.
ThresholdsLike: TypeAlias = "Thresholds | float | Mapping[str, float | None]"
#: How label entries may be written: keyed by name, path or :class:`~safegen.Category`. (The
#: key type is Any so that a dict literal mixing entry styles type-checks; keys are checked
#: when the policy is built.)
LabelEntries: TypeAlias = "Mapping[Any, ThresholdsLike]"

_DEFAULT_BLOCK_AT = 50.0  # Rekognition's own default MinConfidence
_DEFAULT_MIN_CONFIDENCE = 50.0
_CACHE_LIMIT = 4096


def _mapping_eq_key(mapping: Mapping[Any, Any]) -> tuple[tuple[Any, Any], ...]:
    # Mappings are stored sorted, so their items compare and hash as values.
    return tuple(mapping.items())


@attrs.frozen(init=False)
class Thresholds:
    """The thresholds one policy entry sets; a setting left as ``None`` is inherited.

    :param block_at: confidence at or above which the label blocks the content.
    :param review_at: confidence at or above which (and below ``block_at``) the label sends
        the content to review.
    :raises PolicyError: a value is not a number from 0 to 100, neither is set, or
        ``review_at`` is above ``block_at``.
    """

    block_at: float | None
    review_at: float | None

    def __init__(self, block_at: float | None = None, review_at: float | None = None) -> None:
        block = _settings.optional_score(block_at, "block_at")
        review = _settings.optional_score(review_at, "review_at")
        if block is None and review is None:
            raise PolicyError("a label entry must set block_at, review_at or both")
        if block is not None and review is not None and review > block:
            raise PolicyError(f"review_at ({review:g}) must not be above block_at ({block:g})")
        self.__attrs_init__(block, review)

    def to_mapping(self) -> float | dict[str, float]:
        """Return the entry as written in a policy file: a bare number when only block_at."""
        if self.review_at is None and self.block_at is not None:
            return self.block_at
        settings = {"block_at": self.block_at, "review_at": self.review_at}
        return {setting: value for setting, value in settings.items() if value is not None}


def _thresholds(value: ThresholdsLike, where: str) -> Thresholds:
    """Read one label entry: a number (``block_at``), a table, or :class:`Thresholds`."""
    if isinstance(value, Thresholds):
        return value
    try:
        if isinstance(value, Mapping):
            _settings.reject_unknown_keys(value, ("block_at", "review_at"), where)
            return Thresholds(block_at=value.get("block_at"), review_at=value.get("review_at"))
        return Thresholds(block_at=value)
    except PolicyError as e:
        raise PolicyError(f"{where}: {e}") from None


def _label_entries(
    entries: object, taxonomy: Taxonomy, where: str
) -> types.MappingProxyType[Category, Thresholds]:
    resolved: dict[Category, Thresholds] = {}
    for key, value in _settings.table(entries, where).items():
        at = f'{where}."{key}"'
        category = _settings.category(key, taxonomy, at)
        if category in resolved:
            raise PolicyError(f"{at}: {category} is configured more than once")
        resolved[category] = _thresholds(value, at)
    return types.MappingProxyType(dict(sorted(resolved.items())))


@attrs.frozen(init=False)
class ContentTypeRule:
    """How the policy changes when the backend reports a content type (e.g. ``Animated``).

    :param min_confidence: the rule applies when the content type is reported at or above this.
    :param labels: label entries that take precedence over the top level's while the rule
        applies; keys are label names or paths, values thresholds (a number means ``block_at``).
    :param exclude: concepts not moderated while the rule applies, on top of the top level's.
    :param action: ``"block"``, ``"review"`` or ``"allow"`` (or an :class:`~safegen.Action`):
        what to do outright while the rule applies, whatever the labels.
    :param taxonomy: the taxonomy the label names are resolved in.
    """

    min_confidence: float
    labels: Mapping[Category, Thresholds] = attrs.field(eq=_mapping_eq_key)
    exclude: frozenset[Category]
    action: Action | None
    taxonomy: Taxonomy = attrs.field(repr=False, eq=False)

    def __init__(
        self,
        *,
        min_confidence: float = _DEFAULT_MIN_CONFIDENCE,
        labels: LabelEntries | None = None,
        exclude: Iterable[str | Category] | str = (),
        action: Action | Literal["block", "review", "allow"] | None = None,
        taxonomy: Taxonomy = REKOGNITION_V7,
    ) -> None:
        self.__attrs_init__(
            min_confidence=_settings.score(min_confidence, "min_confidence"),
            labels=_label_entries({} if labels is None else labels, taxonomy, "labels"),
            exclude=_settings.categories(exclude, taxonomy, "exclude"),
            action=_settings.action(action, "action"),
            taxonomy=taxonomy,
        )

    @classmethod
    def from_mapping(
        cls, mapping: Mapping[str, Any], *, taxonomy: Taxonomy = REKOGNITION_V7, where: str = ""
    ) -> ContentTypeRule:
        """Build a rule from a policy file's ``[content_types.NAME]`` table.

        :param where: where the table sits in the policy file, for error messages.
        """
        mapping = _settings.table(mapping, where)
        allowed = ("min_confidence", "labels", "exclude", "action")
        _settings.reject_unknown_keys(mapping, allowed, where)
        # Resolve here, where the table's place in the file is known, so that errors name it.
        min_confidence = mapping.get("min_confidence", _DEFAULT_MIN_CONFIDENCE)
        return cls(
            min_confidence=_settings.score(min_confidence, f"{where}.min_confidence"),
            labels=_label_entries(mapping.get("labels", {}), taxonomy, f"{where}.labels"),
            exclude=_settings.categories(mapping.get("exclude", ()), taxonomy, f"{where}.exclude"),
            action=_settings.action(mapping.get("action"), f"{where}.action"),
            taxonomy=taxonomy,
        )

    def to_mapping(self) -> dict[str, Any]:
        """Return the rule as a policy file's table."""
        out: dict[str, Any] = {"min_confidence": self.min_confidence}
        if self.labels:
            out["labels"] = {
                self.taxonomy.spelling(c): t.to_mapping() for c, t in self.labels.items()
            }
        if self.exclude:
            out["exclude"] = sorted(self.taxonomy.spelling(c) for c in self.exclude)
        if self.action is not None:
            out["action"] = self.action.value
        return out


def _content_type_rules(
    rules: object, taxonomy: Taxonomy
) -> types.MappingProxyType[str, ContentTypeRule]:
    resolved: dict[str, ContentTypeRule] = {}
    for name, rule in _settings.table(rules, "content_types").items():
        where = f"content_types.{name}"
        canonical = taxonomy.content_type(name) if isinstance(name, str) else None
        if canonical is None:
            known = ", ".join(taxonomy.content_types) or "none"
            raise PolicyError(f"{where}: unknown content type {name!r} (known: {known})")
        if canonical in resolved:
            raise PolicyError(f"{where}: content type {canonical} is configured more than once")
        if not isinstance(rule, ContentTypeRule):
            rule = ContentTypeRule.from_mapping(rule, taxonomy=taxonomy, where=where)
        elif rule.taxonomy is not taxonomy:
            raise PolicyError(f"{where}: the rule uses a different taxonomy than the policy")
        resolved[canonical] = rule
    return types.MappingProxyType(dict(sorted(resolved.items())))


class _Judges(dict[Path, "_Judge"]):
    """The judges for one set of applied content-type rules, by category path (a cache)."""

    def __init__(self, rule_names: tuple[str, ...]) -> None:
        super().__init__()
        self.rule_names = rule_names


@attrs.frozen
class _Step:
    """One category of a response shape: judged on the most confident of its reporters."""

    category: Category
    reporters: tuple[int, ...]  # indices of the labels that reported it
    descendants: int  # how many of the following steps lie under it
    judge: _Judge


@attrs.frozen
class _Judge:
    """How one category is judged under one set of applied rules (cached per policy)."""

    excluded_by: PolicySource | None
    block_at: float
    block_source: PolicySource
    review_at: float
    review_source: PolicySource


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


@attrs.frozen(init=False)
class ModerationPolicy:
    """What "unsafe" means for a platform: thresholds, exclusions and content-type rules.

    Build one from a policy file with :meth:`from_toml`, from plain data with
    :meth:`from_mapping`, or directly; label names are resolved (and checked) against
    *taxonomy* either way.

    :param block_at: the default threshold at or above which a label blocks the content.
    :param review_at: the default threshold at or above which a label sends the content to
        review; ``None`` for no review band.
    :param labels: per-label entries at any level, keyed by name or path; a number means
        ``block_at``, a table or :class:`Thresholds` may set both.
    :param exclude: concepts never moderated, with everything under them.
    :param content_types: rules keyed by content type name, as :class:`ContentTypeRule` or
        as tables in the policy-file format.
    :param not_evaluated: the action when the backend cannot see a category the policy
        moderates (see :meth:`blind_spots`): ``"review"`` (the default), ``"block"``, or
        ``"allow"`` for a policy that accepts the backend's blind spots. Exclude a category
        to say it does not matter at all.
    :param taxonomy: the label tree names are resolved in.
    :raises PolicyError: a setting is malformed or out of range; the message names it.
    :raises UnknownLabelError: a label name is unknown; the message suggests the closest.

    >>> policy = ModerationPolicy(labels={"Explicit Nudity": 60}, exclude=["Kissing on the Lips"])
    >>> policy.evaluate([ModerationLabel("Kissing on the Lips", 97.0)]).action
    <Action.ALLOW: 'allow'>
    """

    block_at: float
    review_at: float | None
    labels: Mapping[Category, Thresholds] = attrs.field(eq=_mapping_eq_key)
    exclude: frozenset[Category]
    content_types: Mapping[str, ContentTypeRule] = attrs.field(eq=_mapping_eq_key)
    not_evaluated: Action
    taxonomy: Taxonomy = attrs.field(repr=False, eq=False)
    _judges: dict[tuple[str, ...], _Judges] = attrs.field(repr=False, eq=False, hash=False)
    _plans: dict[tuple[object, ...], tuple[_Step, ...]] = attrs.field(
        repr=False, eq=False, hash=False
    )
    _blind: dict[tuple[object, ...], tuple[Category, ...]] = attrs.field(
        repr=False, eq=False, hash=False
    )

    def __init__(
        self,
        *,
        block_at: float = _DEFAULT_BLOCK_AT,
        review_at: float | None = None,
        labels: LabelEntries | None = None,
        exclude: Iterable[str | Category] | str = (),
        content_types: Mapping[str, ContentTypeRule | Mapping[str, Any]] | None = None,
        not_evaluated: Action | str = Action.REVIEW,
        taxonomy: Taxonomy = REKOGNITION_V7,
    ) -> None:
        blind_action = _settings.action(not_evaluated, "not_evaluated")
        if blind_action is None:
            raise PolicyError('not_evaluated: must be "block", "review" or "allow", got None')
        block = _settings.score(block_at, "block_at")
        review = _settings.optional_score(review_at, "review_at")
        if review is not None and review > block:
            raise PolicyError(f"review_at ({review:g}) must not be above block_at ({block:g})")
        self.__attrs_init__(
            block_at=block,
            review_at=review,
            labels=_label_entries({} if labels is None else labels, taxonomy, "labels"),
            exclude=_settings.categories(exclude, taxonomy, "exclude"),
            content_types=_content_type_rules(
                {} if content_types is None else content_types, taxonomy
            ),
            not_evaluated=blind_action,
            taxonomy=taxonomy,
            judges={},
            plans={},
            blind={},
        )

    # -- named constructors and the file format ------------------------------------------------

    @classmethod
    def from_mapping(
        cls, mapping: Mapping[str, Any], *, taxonomy: Taxonomy = REKOGNITION_V7
    ) -> ModerationPolicy:
        """Build a policy from plain data in the policy-file format (see ``docs/policies.rst``).

        :raises PolicyError: a setting is malformed, unknown or out of range; the message
            names it.
        :raises UnknownLabelError: a label name is unknown; the message suggests the closest.
        """
        mapping = _settings.table(mapping, "policy")
        allowed = ("block_at", "review_at", "exclude", "labels", "content_types", "not_evaluated")
        _settings.reject_unknown_keys(mapping, allowed, "policy")
        return cls(
            block_at=mapping.get("block_at", _DEFAULT_BLOCK_AT),
            review_at=mapping.get("review_at"),
            labels=mapping.get("labels"),
            exclude=mapping.get("exclude", ()),
            content_types=mapping.get("content_types"),
            not_evaluated=mapping.get("not_evaluated", Action.REVIEW),
            taxonomy=taxonomy,
        )

    @classmethod
    def from_toml(
        cls, path: str | os.PathLike[str], *, taxonomy: Taxonomy = REKOGNITION_V7
    ) -> ModerationPolicy:
        """Read a policy file (TOML; see ``docs/policies.rst``).

        :raises PolicyError: the file is not valid TOML or not a valid policy.
        :raises OSError: the file cannot be read.
        """
        with open(path, "rb") as f:
            try:
                data = tomllib.load(f)
            except tomllib.TOMLDecodeError as e:
                raise PolicyError(f"{os.fspath(path)}: not valid TOML: {e}") from None
        try:
            return cls.from_mapping(data, taxonomy=taxonomy)
        except PolicyError as e:
            e.args = (f"{os.fspath(path)}: {e}",)
            raise

    def to_mapping(self) -> dict[str, Any]:
        """Return the policy in the policy-file format; :meth:`from_mapping` reads it back."""
        out: dict[str, Any] = {"block_at": self.block_at}
        if self.review_at is not None:
            out["review_at"] = self.review_at
        if self.exclude:
            out["exclude"] = sorted(self.taxonomy.spelling(c) for c in self.exclude)
        if self.labels:
            out["labels"] = {
                self.taxonomy.spelling(c): t.to_mapping() for c, t in self.labels.items()
            }
        if self.content_types:
            out["content_types"] = {n: r.to_mapping() for n, r in self.content_types.items()}
        if self.not_evaluated is not Action.REVIEW:
            out["not_evaluated"] = self.not_evaluated.value
        return out

    # -- what adapters need -------------------------------------------------------------------

    @property
    def min_confidence(self) -> float:
        """The lowest threshold in play: ask the backend for nothing less confident.

        A label below every threshold can neither count nor explain an ancestor that counts
        (an explaining descendant is at least as confident as its ancestor), so filtering at
        this value never changes a decision. (One proviso, which Rekognition's responses
        meet: a label the taxonomy does not know is placed under its reported parent, so
        that parent must be reported at least as confidently as the label.)
        """
        scores = [self.block_at]
        if self.review_at is not None:
            scores.append(self.review_at)
        entries = [*self.labels.values()]
        for rule in self.content_types.values():
            entries.extend(rule.labels.values())
        for entry in entries:
            scores.extend(s for s in (entry.block_at, entry.review_at) if s is not None)
        return min(scores)

    # -- evaluation ----------------------------------------------------------------------------

    def thresholds_for(
        self, label: str | Category, content_types: Iterable[str] = ()
    ) -> EffectiveThresholds:
        """Return how *label* is judged, with *content_types* reported (their rules applied).

        :raises UnknownLabelError: *label* is not in the taxonomy.
        :raises PolicyError: a content type is not one the taxonomy knows.

        >>> policy = ModerationPolicy(review_at=40, labels={"Weapons": 80})
        >>> t = policy.thresholds_for("Weapons")
        >>> (t.block_at, str(t.block_source)), (t.review_at, str(t.review_source))
        ((80.0, 'labels."Weapons".block_at'), (40.0, 'review_at'))
        """
        category = _settings.category(label, self.taxonomy, "label")
        reported = [ContentType(name, 100.0) for name in content_types]
        for content_type in reported:
            if self.taxonomy.content_type(content_type.name) is None:
                raise PolicyError(
                    f"content type {content_type.name!r} is not one of "
                    f"{self.taxonomy.content_types}"
                )
        matches = self._matching_rules(tuple(reported)) if self.content_types else ()
        judges = self._judges_under(matches)
        judge = judges.get(category.path) or self._make_judge(category.path, judges)
        return EffectiveThresholds(
            category,
            judge.block_at,
            judge.block_source,
            judge.review_at,
            judge.review_source,
            judge.excluded_by,
        )

    def blind_spots(
        self, coverage: Iterable[str | Category], content_types: Iterable[ContentType] = ()
    ) -> tuple[Category, ...]:
        """Return what this policy moderates that a backend seeing only *coverage* cannot see.

        :param coverage: the categories the backend evaluates, each with everything under it.
        :param content_types: what the backend reported, for content-type rules' exclusions.
        :returns: the largest blind subtrees, in taxonomy order; excluded ones are left out.
        :raises UnknownLabelError: a coverage name is not in the taxonomy.

        >>> [c.name for c in ModerationPolicy(exclude=["Violence"]).blind_spots(
        ...     ["Explicit", "Non-Explicit Nudity of Intimate parts and Kissing",
        ...      "Swimwear or Underwear", "Visually Disturbing", "Drugs & Tobacco", "Alcohol",
        ...      "Rude Gestures", "Gambling", "Hate Symbols/Nazi Party"])]
        ['White Supremacy', 'Extremist']
        """
        content_types = _check_content_types(content_types)
        matches = self._matching_rules(content_types) if self.content_types else ()
        return self._blind_spots(tuple(coverage), matches)

    def _blind_spots(
        self, coverage: tuple[str | Category, ...], matches: tuple[ContentTypeMatch, ...]
    ) -> tuple[Category, ...]:
        key = (coverage, tuple(match.name for match in matches))
        cached = self._blind.get(key)
        if cached is not None:
            return cached
        seen = [_settings.category(name, self.taxonomy, "coverage") for name in coverage]
        judges = self._judges_under(matches)
        blind: list[Category] = []

        def walk(category: Category) -> None:
            path = category.path
            judge = judges.get(path) or judges.setdefault(path, self._make_judge(path, judges))
            if judge.excluded_by is not None or any(category.is_within(s) for s in seen):
                return
            if not any(s.is_within(category) for s in seen):
                blind.append(category)  # nothing under it is seen: the whole subtree is blind
                return
            for child in self.taxonomy.children(category):
                walk(child)

        for category in self.taxonomy:
            if category.level == 1:
                walk(category)
        if len(self._blind) >= _CACHE_LIMIT:
            self._blind.clear()
        result = self._blind[key] = tuple(blind)
        return result

    def evaluate(
        self,
        labels: Iterable[ModerationLabel],
        content_types: Iterable[ContentType] = (),
        *,
        coverage: Iterable[str | Category] | None = None,
    ) -> PolicyDecision:
        """Decide what to do with content a backend reported these labels for.

        The result does not depend on the order of *labels* or *content_types*. A category
        reported more than once is judged on its most confident report.

        :param coverage: what the backend can see, when it does not see the whole taxonomy
            (an offline model); what the policy moderates outside it is not evaluated and
            costs the policy's ``not_evaluated`` action. ``None`` (Rekognition) sees it all.
        :raises InvalidLabelError: an item is not a :class:`ModerationLabel` (or
            :class:`ContentType`).
        :raises UnknownLabelError: a *coverage* name is not in the taxonomy.
        """
        labels = tuple(labels)
        for label in labels:
            if not isinstance(label, ModerationLabel):
                raise InvalidLabelError(f"expected ModerationLabel, got {type(label).__name__}")
        content_types = _check_content_types(content_types)
        matches = self._matching_rules(content_types) if self.content_types else ()
        steps = self._plan(labels, matches)
        # The report each category is judged on: its only one, or its most confident.
        chosen = [
            labels[step.reporters[0]]
            if len(step.reporters) == 1
            else max((labels[i] for i in step.reporters), key=_report_key)
            for step in steps
        ]

        # Decide now; build the explanation objects only when someone reads them.
        counted: list[tuple[ModerationLabel, Category, Action, float, PolicySource]] = []
        skipped: list[_Skipped] = []
        action = Action.ALLOW
        for index, step in enumerate(steps):
            label, category, judge = chosen[index], step.category, step.judge
            if judge.excluded_by is not None:
                skipped.append(
                    (label, category, IgnoreReason.EXCLUDED, None, judge.excluded_by, None)
                )
                continue
            # The most confident descendant at least as confident as this label, if any.
            explainer = None
            for other in chosen[index + 1 : index + 1 + step.descendants]:
                if other.confidence >= label.confidence and (
                    explainer is None or other.confidence > explainer.confidence
                ):
                    explainer = other
            if explainer is not None:
                reason = IgnoreReason.EXPLAINED_BY_DESCENDANT
                skipped.append((label, category, reason, None, None, explainer))
            elif label.confidence >= judge.block_at:
                counted.append((label, category, Action.BLOCK, judge.block_at, judge.block_source))
                action = Action.BLOCK
            elif label.confidence >= judge.review_at:
                counted.append(
                    (label, category, Action.REVIEW, judge.review_at, judge.review_source)
                )
                if action is Action.ALLOW:
                    action = Action.REVIEW
            elif judge.review_at < judge.block_at:
                reason = IgnoreReason.BELOW_THRESHOLD
                skipped.append(
                    (label, category, reason, judge.review_at, judge.review_source, None)
                )
            else:
                reason = IgnoreReason.BELOW_THRESHOLD
                skipped.append((label, category, reason, judge.block_at, judge.block_source, None))

        not_evaluated = None
        if coverage is not None:
            blind = self._blind_spots(tuple(coverage), matches)
            if blind:
                not_evaluated = NotEvaluated(blind, self.not_evaluated)
                action = Action.strictest((action, self.not_evaluated))

        decided_by = None
        for match in matches:  # the strictest outright action wins; ties go to the first name
            if match.action is not None and (
                decided_by is None or match.action.severity > action.severity
            ):
                action, decided_by = match.action, match.name
        return PolicyDecision._deferred(
            action,
            functools.partial(_explain, counted, skipped),
            matches,
            decided_by,
            not_evaluated,
        )

    def _matching_rules(
        self, content_types: tuple[ContentType, ...]
    ) -> tuple[ContentTypeMatch, ...]:
        canonical = self.taxonomy.content_type
        strongest: dict[str | None, float] = {}
        for content_type in content_types:
            name, confidence = canonical(content_type.name), content_type.confidence
            if confidence > strongest.get(name, -1.0):
                strongest[name] = confidence
        matches = []
        for name, rule in self.content_types.items():  # sorted by name
            reported = strongest.get(name)
            if reported is not None and reported >= rule.min_confidence:
                matches.append(ContentTypeMatch(name, reported, rule.min_confidence, rule.action))
        return tuple(matches)

    def _plan(
        self, labels: tuple[ModerationLabel, ...], matches: tuple[ContentTypeMatch, ...]
    ) -> tuple[_Step, ...]:
        """Return how to judge a response of this shape (cached: shapes repeat).

        Everything that does not depend on confidences is worked out once per shape (the
        labels' names, parents and levels, and the content-type rules that applied): where
        each label sits, which reports are the same category, their order by path (in which
        a category's descendants directly follow it), and each category's thresholds.
        """
        rule_names = (matches[0].name,) if len(matches) == 1 else tuple(m.name for m in matches)
        key = (tuple([(label.name, label.parent, label.level) for label in labels]), rule_names)
        plan = self._plans.get(key)
        if plan is None:
            if len(self._plans) >= _CACHE_LIMIT:  # unknown labels make shapes unbounded
                self._plans.clear()
            plan = self._plans[key] = self._make_plan(labels, matches)
        return plan

    def _make_plan(
        self, labels: tuple[ModerationLabel, ...], matches: tuple[ContentTypeMatch, ...]
    ) -> tuple[_Step, ...]:
        judges = self._judges_under(matches)
        reporters: dict[Category, list[int]] = {}
        for index, category in enumerate(self.taxonomy.place_all(labels)):
            reporters.setdefault(category, []).append(index)
        ordered = sorted(reporters, key=lambda category: category.path)
        steps = []
        for position, category in enumerate(ordered):
            path, depth = category.path, len(category.path)
            descendants = 0
            for later in ordered[position + 1 :]:
                if later.path[:depth] != path:
                    break
                descendants += 1
            judge = judges.get(path) or judges.setdefault(path, self._make_judge(path, judges))
            steps.append(_Step(category, tuple(reporters[category]), descendants, judge))
        return tuple(steps)

    def _judges_under(self, matches: tuple[ContentTypeMatch, ...]) -> _Judges:
        """Return the judges (one per category path) for one set of applied rules."""
        rule_names = (matches[0].name,) if len(matches) == 1 else tuple(m.name for m in matches)
        judges = self._judges.get(rule_names)
        if judges is None:
            judges = self._judges[rule_names] = _Judges(rule_names)
        elif len(judges) >= _CACHE_LIMIT:  # unknown labels are unbounded; the tree is not
            judges.clear()
        return judges

    def _make_judge(self, path: Path, judges: _Judges) -> _Judge:
        rules = [(name, self.content_types[name]) for name in judges.rule_names]
        exclusions = [(None, self.exclude), *((name, rule.exclude) for name, rule in rules)]
        excluded_by = None
        for content_type, excluded in exclusions:
            hit = _most_specific(path, excluded)
            if hit is not None:
                spelling = self.taxonomy.spelling(hit)
                excluded_by = PolicySource("exclude", spelling, content_type)
                break
        block_at, block_source = self._setting(path, "block_at", rules) or (
            self.block_at,
            PolicySource("block_at"),
        )
        review = self._setting(path, "review_at", rules)
        if review is None and self.review_at is not None:
            review = (self.review_at, PolicySource("review_at"))
        # No review band, or an inherited review floor above this label's block_at: REVIEW
        # starts where BLOCK does, so the band is empty.
        review_at, review_source = (
            review if review is not None and review[0] <= block_at else (block_at, block_source)
        )
        return _Judge(excluded_by, block_at, block_source, review_at, review_source)

    def _setting(
        self, path: Path, setting: Setting, rules: list[tuple[str, ContentTypeRule]]
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
                found.append((value, PolicySource(setting, self.taxonomy.spelling(category), name)))
        if found:
            return min(found, key=lambda vs: vs[0])
        entry = _entry_for(path, setting, self.labels)
        if entry is not None:
            category, value = entry
            return value, PolicySource(setting, self.taxonomy.spelling(category))
        return None


def _check_content_types(content_types: Iterable[ContentType]) -> tuple[ContentType, ...]:
    content_types = tuple(content_types)
    for content_type in content_types:
        if not isinstance(content_type, ContentType):
            raise InvalidLabelError(f"expected ContentType, got {type(content_type).__name__}")
    return content_types


def _report_key(label: ModerationLabel) -> tuple[float, str, str, int]:
    """Order duplicate reports of one category so the choice never depends on input order."""
    return (label.confidence, label.name, label.parent or "", label.level or 0)


def _most_specific(path: Path, categories: frozenset[Category]) -> Category | None:
    for depth in range(len(path), 0, -1):
        candidate = Category(path[:depth])
        if candidate in categories:
            return candidate
    return None


def _entry_for(
    path: Path, setting: Setting, entries: Mapping[Category, Thresholds]
) -> tuple[Category, float] | None:
    for depth in range(len(path), 0, -1):
        category = Category(path[:depth])
        thresholds = entries.get(category)
        if thresholds is not None:
            value = getattr(thresholds, setting)
            if value is not None:
                return category, value
    return None


_Skipped: TypeAlias = tuple[
    ModerationLabel,
    Category,
    IgnoreReason,
    float | None,
    PolicySource | None,
    ModerationLabel | None,
]


def _explain(
    counted: list[tuple[ModerationLabel, Category, Action, float, PolicySource]],
    skipped: list[_Skipped],
) -> Explanation:
    violations = sorted((Violation(*c) for c in counted), key=_headline_first)
    return tuple(violations), tuple(IgnoredLabel(*s) for s in skipped)


def _headline_first(violation: Violation) -> tuple[int, float, Path]:
    return (-violation.action.severity, -violation.label.confidence, violation.category.path)
