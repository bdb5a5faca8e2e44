"""The prompt side of a moderation policy: what the rules and the classifiers' scores call for.

A :class:`PromptPolicy` is the ``[prompts]`` table of a policy file (``docs/prompts.rst``). It
says, for each term category (the shipped lists' and the platform's own), what a match of a
severe and of a mild term calls for, and how a classifier's score (Comprehend toxicity labels,
custom classes) is judged on the same 0-100 scale as the image side's labels. It judges:

- a rule match (category, severity, negated) with :meth:`PromptPolicy.judge_match`;
- a classifier's score for a label with :meth:`PromptPolicy.judge_score`;

each to a :class:`PromptJudgement`: the action and the setting that decided it, named as the
policy file names it (``prompts.categories.drugs.mild``).

Semantics in short: a shipped category not configured keeps its default (severe terms block,
mild terms review); a negated match (``"no nudity"``) calls for at most REVIEW; a score at or
above ``block_at`` blocks, at or above ``review_at`` (and below ``block_at``) goes to review,
each setting from the label's entry, else the section's default. This module is pure: no I/O
beyond reading the shipped term lists, no AWS.
"""

from __future__ import annotations

import difflib
import functools
import re
import types
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeAlias, runtime_checkable

import attrs

from safegen import _numbers, _settings
from safegen._thresholds import Thresholds, read_thresholds
from safegen.decision import Action
from safegen.errors import PolicyError
from safegen.text import RuleFilter, RuleMatch, Term
from safegen.text.terms import CATEGORIES, default_terms

if TYPE_CHECKING:
    from safegen.ports import TextClassifier

__all__ = [
    "GUARDRAIL_KINDS",
    "SHIPPED_CATEGORIES",
    "TERM_FILTER_CACHE_SIZE",
    "TOXICITY_LABELS",
    "ClassifierThresholds",
    "GuardrailSetting",
    "PolicyConfigurable",
    "PromptCategory",
    "PromptJudgement",
    "PromptPolicy",
]

#: Amazon Comprehend DetectToxicContent's labels, plus ``"TOXICITY"`` for its overall score.
TOXICITY_LABELS = (
    "GRAPHIC",
    "HARASSMENT_OR_ABUSE",
    "HATE_SPEECH",
    "INSULT",
    "PROFANITY",
    "SEXUAL",
    "VIOLENCE_OR_THREAT",
    "TOXICITY",
)
#: The categories of the shipped term lists (a policy may configure them without terms).
SHIPPED_CATEGORIES: tuple[str, ...] = tuple(
    dict.fromkeys(("sexual", "suggestive", "violence", "hate", "drugs", "self_harm", *CATEGORIES))
)
SEVERE, MILD = "severe", "mild"
_DEFAULT_BLOCK_AT = 50.0
_CATEGORY_SETTINGS = ("action", "mild", "terms", "mild_terms")
_SETTINGS = (
    "on_failure",
    "fail_open",
    "allow",
    "remove",
    "block_at",
    "review_at",
    "labels",
    "classes",
    "categories",
    "guardrail",
)
#: The kinds a guardrail finding's label starts with (``content:SEXUAL``, ``pii:EMAIL``); with
#: ``detected:`` before them for a detection the guardrail did not act on. Labels only: what
#: makes a finding the guardrail's decision is its ``decision``, never its label's shape.
GUARDRAIL_KINDS = (
    "content",
    "topic",
    "word",
    "pii",
    "regex",
    "grounding",
    "reasoning",
    "guardrail",
)
_GUARDRAIL_SETTINGS = ("id", "version", "action", "detected")
# ApplyGuardrail's own patterns for guardrailIdentifier and guardrailVersion (botocore's model).
_GUARDRAIL_ID = re.compile(
    r"[a-z0-9]+|arn:aws(-[^:]+)?:bedrock:[a-z0-9-]{1,20}:[0-9]{12}:guardrail/[a-z0-9]+"
)
_GUARDRAIL_ID_CHARS = 2048
_GUARDRAIL_VERSION = re.compile(r"[1-9][0-9]{0,7}|DRAFT")

ActionLike: TypeAlias = "Action | Literal['block', 'review', 'allow']"
#: How a category may be written: an action for all its terms, a table, or :class:`PromptCategory`.
CategoryLike: TypeAlias = "PromptCategory | ActionLike | Mapping[str, Any]"


def _mapping_eq_key(mapping: Mapping[Any, Any]) -> tuple[tuple[Any, Any], ...]:
    return tuple(mapping.items())  # stored sorted: items compare and hash as values


def _suggest(value: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(value, list(known), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


# -- reading settings: every failure is a PolicyError naming its place -------------------------


def _action(value: object, where: str) -> Action | None:
    return _settings.action(value, where)


def _strings(value: object, where: str) -> tuple[str, ...]:
    """Read a list of non-empty strings (a lone string is a list of one)."""
    if isinstance(value, str):
        value = (value,)
    if not isinstance(value, Iterable) or isinstance(value, Mapping | bytes):
        raise PolicyError(f"{where}: must be a list of strings, got {_numbers.show(value)}")
    out = []
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item.strip():
            raise PolicyError(
                f"{where}[{i}]: must be a non-empty string, got {_numbers.show(item)}"
            )
        out.append(item)
    return tuple(out)


def _terms(value: object, category: str, severity: str, where: str) -> tuple[str, ...]:
    terms = _strings(value, where)
    for i, text in enumerate(terms):
        try:
            RuleFilter([Term(text, category, severity=severity)])
        except PolicyError as error:
            raise PolicyError(f"{where}[{i}]: {_after_place(error)}") from None
    return tuple(sorted(set(terms)))


def _after_place(error: PolicyError) -> str:
    """Return the rule engine's message without its own place (``terms: ...``)."""
    message = str(error)
    head, sep, rest = message.partition(": ")
    return rest if sep and head in ("terms", "allow") else message


# -- one term category --------------------------------------------------------------------------


def _category_action(value: object) -> Action | None:
    return _action(value, "action")


def _category_mild(value: object) -> Action | None:
    return _action(value, "mild")


def _severe_terms(value: object) -> tuple[str, ...]:
    return _terms(value, "custom", SEVERE, "terms")


def _mild_terms(value: object) -> tuple[str, ...]:
    return _terms(value, "custom", MILD, "mild_terms")


@attrs.frozen(kw_only=True)
class PromptCategory:
    """How the rules treat one term category.

    :param action: what a match of a severe term calls for: ``"block"``, ``"review"`` or
        ``"allow"`` (not flagged at all); ``None`` for the default, BLOCK.
    :param mild: what a match of a mild term calls for; ``None`` for *action* when it is set,
        else the default, REVIEW.
    :param terms: severe terms of the platform's own, added to the category.
    :param mild_terms: mild terms of the platform's own.
    :raises PolicyError: an action or a term that cannot be used; the message names it.
    """

    action: Action | None = attrs.field(default=None, converter=_category_action)
    mild: Action | None = attrs.field(default=None, converter=_category_mild)
    terms: tuple[str, ...] = attrs.field(default=(), converter=_severe_terms)
    mild_terms: tuple[str, ...] = attrs.field(default=(), converter=_mild_terms)

    @classmethod
    def from_mapping(cls, value: CategoryLike, *, name: str, where: str) -> PromptCategory:
        """Read a category as written in a policy file: an action, or a table.

        :param name: the category's name (its terms are checked in it).
        :param where: the category's place in the file, for error messages.
        """
        if isinstance(value, PromptCategory):
            return value
        if not isinstance(value, Mapping):
            action = _action(value, where)
            return cls(action=action)
        _settings.reject_unknown_keys(value, _CATEGORY_SETTINGS, where)
        return cls(
            action=_action(value.get("action"), f"{where}.action"),
            mild=_action(value.get("mild"), f"{where}.mild"),
            terms=_terms(value.get("terms", ()), name, SEVERE, f"{where}.terms"),
            mild_terms=_terms(value.get("mild_terms", ()), name, MILD, f"{where}.mild_terms"),
        )

    def to_mapping(self) -> str | dict[str, Any]:
        """Return the category as written in a policy file: a bare action when that is all."""
        if self.action is not None and self.mild is None and not self.terms and not self.mild_terms:
            return self.action.value
        out: dict[str, Any] = {}
        if self.action is not None:
            out["action"] = self.action.value
        if self.mild is not None:
            out["mild"] = self.mild.value
        if self.terms:
            out["terms"] = list(self.terms)
        if self.mild_terms:
            out["mild_terms"] = list(self.mild_terms)
        return out

    def decide(self, severity: str, where: str) -> tuple[Action, str]:
        """Return what a match of a term of *severity* calls for, and the setting that says so.

        :param where: the category's place (``prompts.categories.NAME``).
        """
        if severity == MILD:
            if self.mild is not None:
                return self.mild, f"{where}.mild"
            if self.action is not None:
                return self.action, where
            return Action.REVIEW, "default: mild terms review"
        if self.action is not None:
            return self.action, where if self.mild is None else f"{where}.action"
        return Action.BLOCK, "default: severe terms block"


_DEFAULT_CATEGORY = PromptCategory()


# -- what the policy decides --------------------------------------------------------------------


@attrs.frozen
class PromptJudgement:
    """What the policy decides about one finding, and which setting decided it.

    :param action: ``ALLOW``, ``REVIEW`` or ``BLOCK``.
    :param source: the setting that decided, as the policy file names it
        (``prompts.categories.drugs.mild``, ``prompts.labels."HATE_SPEECH".block_at``), or the
        default that applied (``default: severe terms block``).
    :param negated: the match was negated, so its category's action was capped at REVIEW.

    >>> str(PromptJudgement(Action.REVIEW, "prompts.categories.sexual", negated=True))
    'review (prompts.categories.sexual; negated: at most review)'
    """

    action: Action
    source: str
    negated: bool = False

    @property
    def reason(self) -> str:
        """The source, and the cap when the match was negated."""
        return f"{self.source}; negated: at most review" if self.negated else self.source

    def __str__(self) -> str:
        return f"{self.action.value} ({self.reason})"


@attrs.frozen
class ClassifierThresholds:
    """How a classifier's score for one label is judged, and where each setting came from.

    :param label: the label or class name.
    :param block_at: the score at or above which it blocks.
    :param block_source: the setting behind *block_at*.
    :param review_at: the score at or above which it goes to review; equal to *block_at*
        when there is no review band.
    :param review_source: the setting behind *review_at*.
    """

    label: str
    block_at: float
    block_source: str
    review_at: float
    review_source: str

    def as_thresholds(self) -> Thresholds:
        """Return the two settings as a :class:`~safegen.Thresholds` entry."""
        return Thresholds(block_at=self.block_at, review_at=self.review_at)


@runtime_checkable
class PolicyConfigurable(Protocol):
    """A classifier that can judge at a prompt policy's thresholds (and so report what they need).

    A classifier reports only what passes its own thresholds; :meth:`PromptModerator.from_policy
    <safegen.PromptModerator.from_policy>` asks one that has this method for a copy judging at
    the policy's, so that no score the policy counts is filtered out before it is judged.
    """

    def with_policy(self, policy: PromptPolicy) -> TextClassifier:
        """Return a copy of this classifier that judges at *policy*'s thresholds."""
        ...


# -- a Bedrock guardrail --------------------------------------------------------------------------


def _guardrail_id(value: object) -> str:
    where = "prompts.guardrail.id"
    if not isinstance(value, str) or not value:
        raise PolicyError(f"{where}: must be a guardrail ID or ARN, got {_numbers.show(value)}")
    if len(value) > _GUARDRAIL_ID_CHARS or not _GUARDRAIL_ID.fullmatch(value):
        raise PolicyError(
            f"{where}: {value[:80]!r} is not a guardrail ID (lower-case letters and digits) or "
            "a guardrail ARN (arn:aws:bedrock:REGION:ACCOUNT:guardrail/ID)"
        )
    return value


def _guardrail_version(value: object) -> str:
    where = "prompts.guardrail.version"
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)  # version = 1 reads as version = "1"
    if not isinstance(value, str) or not _GUARDRAIL_VERSION.fullmatch(value):
        raise PolicyError(
            f'{where}: must be a published version ("1" to "99999999") or "DRAFT", got '
            f"{_numbers.show(value)}"
        )
    return value


def _intervention(value: object) -> Action:
    action = _action(value, "prompts.guardrail.action")
    if action is None or action is Action.ALLOW:
        raise PolicyError(
            'prompts.guardrail.action: must be "block" or "review" (an intervention is a '
            f"finding), got {_numbers.show(value)}"
        )
    return action


def _detected(value: object) -> Action:
    action = _action(value, "prompts.guardrail.detected")
    if action is None:
        raise PolicyError('prompts.guardrail.detected: must be "block", "review" or "allow"')
    return action


@attrs.frozen(kw_only=True)
class GuardrailSetting:
    """The Amazon Bedrock guardrail a policy names: ``[prompts.guardrail]``.

    :param id: the guardrail's ID or ARN.
    :param version: its published version (``"1"``; a TOML integer is read as one) or
        ``"DRAFT"``.
    :param action: what an intervention (anything the guardrail blocked or masked) calls
        for: ``"block"`` (default) or ``"review"``.
    :param detected: what a detection the guardrail did not act on (a filter in detect
        mode) calls for: ``"allow"`` (default: a note only), ``"review"`` or ``"block"``.
    :raises PolicyError: a setting the service would refuse, or an unknown one; the message
        names its place (``prompts.guardrail.version``).

    >>> GuardrailSetting.from_mapping({"id": "abc123", "version": 2}).to_mapping()
    {'id': 'abc123', 'version': '2'}
    """

    id: str = attrs.field(converter=_guardrail_id)
    version: str = attrs.field(converter=_guardrail_version)
    action: Action = attrs.field(default=Action.BLOCK, converter=_intervention)
    detected: Action = attrs.field(default=Action.ALLOW, converter=_detected)

    @classmethod
    def from_mapping(cls, value: object) -> GuardrailSetting:
        """Read ``[prompts.guardrail]`` as written in a policy file.

        :raises PolicyError: a setting is missing, malformed or unknown.
        """
        if isinstance(value, GuardrailSetting):
            return value
        table = _settings.table(value, "prompts.guardrail")
        _settings.reject_unknown_keys(table, _GUARDRAIL_SETTINGS, "prompts.guardrail")
        for required in ("id", "version"):
            if required not in table:
                raise PolicyError(
                    f"prompts.guardrail.{required}: missing (the guardrail needs both)"
                )
        return cls(
            id=table["id"],
            version=table["version"],
            action=table.get("action", Action.BLOCK),
            detected=table.get("detected", Action.ALLOW),
        )

    def to_mapping(self) -> dict[str, str]:
        """Return the table as a policy file writes it: settings not at default."""
        out = {"id": self.id, "version": self.version}
        if self.action is not Action.BLOCK:
            out["action"] = self.action.value
        if self.detected is not Action.ALLOW:
            out["detected"] = self.detected.value
        return out


def _guardrail(value: object) -> GuardrailSetting | None:
    return None if value is None else GuardrailSetting.from_mapping(value)


# -- the section ----------------------------------------------------------------------------------


def _on_failure(value: object) -> Action:
    action = _action(value, "prompts.on_failure")
    if action is None or action is Action.ALLOW:
        raise PolicyError(
            'prompts.on_failure: must be "block" or "review" (name the check in fail_open '
            f"to let its failure pass), got {_numbers.show(value)}"
        )
    return action


def _fail_open(value: object) -> frozenset[str]:
    return frozenset(_strings(value, "prompts.fail_open"))


def _allow(value: object) -> tuple[str, ...]:
    entries = _strings(value, "prompts.allow")
    for i, entry in enumerate(entries):
        try:
            RuleFilter(allow=[entry])
        except PolicyError as error:
            raise PolicyError(f"prompts.allow[{i}]: {_after_place(error)}") from None
    return tuple(sorted(set(entries)))


@functools.cache
def _shipped_texts() -> dict[str, str]:
    return {text.casefold(): text for text, _, _ in default_terms()}


def _remove(value: object) -> tuple[str, ...]:
    entries = _strings(value, "prompts.remove")
    shipped = _shipped_texts()
    for i, entry in enumerate(entries):
        if entry.casefold() not in shipped:
            raise PolicyError(
                f"prompts.remove[{i}]: {entry!r} is not in the shipped term lists"
                + _suggest(entry.casefold(), shipped)
            )
    return tuple(sorted({e.casefold() for e in entries}))


def _block_at(value: object) -> float:
    return _settings.score(value, "prompts.block_at")


def _review_at(value: object) -> float | None:
    return _settings.optional_score(value, "prompts.review_at")


def _review_not_above_block(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and value > instance.block_at:
        raise PolicyError(
            f"prompts.review_at: {value:g} must not be above prompts.block_at "
            f"({instance.block_at:g})"
        )


def _entry_name(key: object, where: str) -> str:
    if not isinstance(key, str) or not key.strip():
        raise PolicyError(
            f"{where}: a label name must be a non-empty string, got {_numbers.show(key)}"
        )
    return key


def _label_name(key: object, where: str) -> str:
    """Read a Comprehend toxicity label, exactly: a misspelt one never passes as a class."""
    name = _entry_name(key, where)
    if name in TOXICITY_LABELS:
        return name
    upper = name.upper()
    close = [label for label in TOXICITY_LABELS if upper in label or label in upper]
    close += difflib.get_close_matches(upper, TOXICITY_LABELS, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise PolicyError(
        f"{where}: {name!r} is not a Comprehend toxicity label{hint} (known: "
        f"{', '.join(TOXICITY_LABELS)}; a custom classifier's class goes in [prompts.classes])"
    )


def _thresholds_by_name(
    value: object, where: str, name_of: Callable[[object, str], str]
) -> types.MappingProxyType[str, Thresholds]:
    resolved: dict[str, Thresholds] = {}
    for key, entry in _settings.table({} if value is None else value, where).items():
        at = f'{where}."{key}"' if isinstance(key, str) else where
        resolved[name_of(key, at)] = read_thresholds(entry, at)
    return types.MappingProxyType(dict(sorted(resolved.items())))


def _labels(value: object) -> types.MappingProxyType[str, Thresholds]:
    return _thresholds_by_name(value, "prompts.labels", _label_name)


def _classes(value: object) -> types.MappingProxyType[str, Thresholds]:
    return _thresholds_by_name(value, "prompts.classes", _entry_name)


def _categories(value: object) -> types.MappingProxyType[str, PromptCategory]:
    resolved: dict[str, PromptCategory] = {}
    table = _settings.table({} if value is None else value, "prompts.categories")
    for name, setting in table.items():
        if not isinstance(name, str) or not name.strip():
            raise PolicyError(
                "prompts.categories: a category name must be a non-empty string, got "
                f"{_numbers.show(name)}"
            )
        where = f"prompts.categories.{name}"
        category = PromptCategory.from_mapping(setting, name=name, where=where)
        if name not in SHIPPED_CATEGORIES and not (category.terms or category.mild_terms):
            raise PolicyError(
                f"{where}: not a shipped category{_suggest(name, SHIPPED_CATEGORIES)} "
                f"(shipped: {', '.join(SHIPPED_CATEGORIES)}); a category of your own needs "
                "terms or mild_terms"
            )
        resolved[name] = category
    return types.MappingProxyType(dict(sorted(resolved.items())))


@attrs.frozen(kw_only=True, cache_hash=True)
class PromptPolicy:
    """The prompt side of a policy: term categories' actions, word lists, classifier thresholds.

    Build one from a policy file's ``[prompts]`` table with :meth:`from_mapping` (or as
    ``prompts`` of a :class:`~safegen.ModerationPolicy`), or directly. Every
    setting is checked however it is built; errors name the place (``prompts.block_at``).

    :param categories: per category name, an action for all its terms (``"block"``,
        ``"review"``, ``"allow"``), a table (``action`` for severe terms, ``mild`` for mild
        ones, ``terms`` and ``mild_terms`` to add) or a :class:`PromptCategory`. A shipped
        category not listed keeps its default: severe terms block, mild terms review. A
        category of the platform's own must have terms.
    :param allow: words and phrases that never count (on top of the shipped innocent phrases).
    :param remove: shipped terms not to use, as written in the lists.
    :param block_at: the score (0-100) at or above which a classifier's label blocks.
    :param review_at: the score at or above which it goes to review; ``None`` for no band.
    :param labels: per Comprehend toxicity label (:data:`safegen.aws.TOXICITY_LABELS`; any
        other name is refused, with the closest suggested), a number (``block_at``), a table or a
        :class:`~safegen.Thresholds`, over the defaults.
    :param classes: the same, per class of a custom classifier (any name). A class named
        like a toxicity label is judged by that label's entry.
    :param on_failure: ``"block"`` (default) or ``"review"``: what a check that cannot run
        (and is not in *fail_open*) calls for.
    :param fail_open: names of checks whose failure counts as safe.
    :param guardrail: the Amazon Bedrock guardrail to check prompts with
        (``[prompts.guardrail]``, a table or a
        :class:`~safegen.prompt_policy.GuardrailSetting`); ``None`` for none.
        :meth:`BedrockGuardrail.from_policy <safegen.aws.guardrails.BedrockGuardrail.from_policy>`
        builds the check from it.
    :raises PolicyError: a setting is malformed, unknown or out of range; the message names
        it and suggests the closest known name.

    >>> policy = PromptPolicy(categories={"drugs": {"action": "block", "mild": "review"}})
    >>> str(policy.judge_term("drugs", "mild"))
    'review (prompts.categories.drugs.mild)'
    >>> str(PromptPolicy(review_at=30).judge_score("INSULT", 42.0))
    'review (prompts.review_at)'
    """

    categories: Mapping[str, PromptCategory] = attrs.field(
        default=None, converter=_categories, eq=_mapping_eq_key
    )
    allow: tuple[str, ...] = attrs.field(default=(), converter=_allow)
    remove: tuple[str, ...] = attrs.field(default=(), converter=_remove)
    block_at: float = attrs.field(default=_DEFAULT_BLOCK_AT, converter=_block_at)
    review_at: float | None = attrs.field(
        default=None, converter=_review_at, validator=_review_not_above_block
    )
    labels: Mapping[str, Thresholds] = attrs.field(
        default=None, converter=_labels, eq=_mapping_eq_key
    )
    classes: Mapping[str, Thresholds] = attrs.field(
        default=None, converter=_classes, eq=_mapping_eq_key
    )
    on_failure: Action = attrs.field(default=Action.BLOCK, converter=_on_failure)
    fail_open: frozenset[str] = attrs.field(default=(), converter=_fail_open)
    guardrail: GuardrailSetting | None = attrs.field(default=None, converter=_guardrail)

    # -- the file format --------------------------------------------------------------------------

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any]) -> PromptPolicy:
        """Build the section from a policy file's ``[prompts]`` table (see ``docs/prompts.rst``).

        :raises PolicyError: a setting is malformed, unknown or out of range; the message
            names it.
        """
        mapping = _settings.table(mapping, "prompts")
        _settings.reject_unknown_keys(mapping, _SETTINGS, "prompts")
        return cls(
            categories=mapping.get("categories"),
            allow=mapping.get("allow", ()),
            remove=mapping.get("remove", ()),
            block_at=mapping.get("block_at", _DEFAULT_BLOCK_AT),
            review_at=mapping.get("review_at"),
            labels=mapping.get("labels"),
            classes=mapping.get("classes"),
            on_failure=mapping.get("on_failure", Action.BLOCK),
            fail_open=mapping.get("fail_open", ()),
            guardrail=mapping.get("guardrail"),
        )

    def to_mapping(self) -> dict[str, Any]:
        """Return the section as a policy file's ``[prompts]`` table: settings not at default.

        :meth:`from_mapping` reads it back to an equal policy.
        """
        out: dict[str, Any] = {}
        if self.on_failure is not Action.BLOCK:
            out["on_failure"] = self.on_failure.value
        if self.fail_open:
            out["fail_open"] = sorted(self.fail_open)
        if self.allow:
            out["allow"] = list(self.allow)
        if self.remove:
            out["remove"] = list(self.remove)
        if self.block_at != _DEFAULT_BLOCK_AT:
            out["block_at"] = self.block_at
        if self.review_at is not None:
            out["review_at"] = self.review_at
        if self.labels:
            out["labels"] = {label: t.to_mapping() for label, t in self.labels.items()}
        if self.classes:
            out["classes"] = {name: t.to_mapping() for name, t in self.classes.items()}
        if self.categories:
            out["categories"] = {name: c.to_mapping() for name, c in self.categories.items()}
        if self.guardrail is not None:
            out["guardrail"] = self.guardrail.to_mapping()
        return out

    # -- judging ----------------------------------------------------------------------------------

    def category(self, name: str) -> PromptCategory:
        """Return how category *name* is configured (the default for one not listed)."""
        return self.categories.get(name, _DEFAULT_CATEGORY)

    def judge_term(self, category: str, severity: str, *, negated: bool = False) -> PromptJudgement:
        """Decide what a match of a term of *category* and *severity* calls for.

        :param negated: the prompt negates the term: the action is capped at REVIEW.
        """
        action, source = self.category(category).decide(severity, f"prompts.categories.{category}")
        if negated and action is Action.BLOCK:
            return PromptJudgement(Action.REVIEW, source, negated=True)
        return PromptJudgement(action, source)

    def judge_match(self, match: RuleMatch) -> PromptJudgement:
        """Decide what a rule match calls for: its category's action for its severity."""
        return self.judge_term(match.category, match.severity, negated=match.negated)

    def thresholds_for(self, label: str) -> ClassifierThresholds:
        """Return how a classifier's score for *label* is judged: its entry over the defaults.

        A Comprehend toxicity label's entry is in ``labels``, any other name's in ``classes``.

        An inherited review threshold above the label's own ``block_at`` leaves it no review
        band, as on the image side.
        """
        table = "labels" if label in TOXICITY_LABELS else "classes"
        entry = (self.labels if table == "labels" else self.classes).get(label)
        where = f'prompts.{table}."{label}"'
        if entry is not None and entry.block_at is not None:
            block: tuple[float, str] = (entry.block_at, f"{where}.block_at")
        else:
            block = (self.block_at, "prompts.block_at")
        review: tuple[float, str] | None = None
        if entry is not None and entry.review_at is not None:
            review = (entry.review_at, f"{where}.review_at")
        elif self.review_at is not None:
            review = (self.review_at, "prompts.review_at")
        if review is None or review[0] > block[0]:
            review = block
        return ClassifierThresholds(label, block[0], block[1], review[0], review[1])

    def judge_score(self, label: str, score: float) -> PromptJudgement:
        """Decide what a classifier's *score* (0-100) for *label* calls for.

        Only scores: a finding the service itself decided (a guardrail's, whose
        ``decision`` is set) is judged by ``judge_decision``, whatever its label says.
        """
        t = self.thresholds_for(label)
        if score >= t.block_at:
            return PromptJudgement(Action.BLOCK, t.block_source)
        if score >= t.review_at:
            return PromptJudgement(Action.REVIEW, t.review_source)
        lowest = t.review_source if t.review_at < t.block_at else t.block_source
        return PromptJudgement(Action.ALLOW, f"below {lowest}")

    def judge_decision(self, decision: str, action: Action) -> PromptJudgement | None:
        """Decide what a finding the service itself decided calls for; never less than *action*.

        :param decision: the finding's ``decision``: ``"intervened"`` (the guardrail acted)
            or ``"detected"`` (it flagged without acting).
        :param action: what the check that reported it said (``REVIEW`` or ``BLOCK``).
        :returns: the stricter of *action* and ``prompts.guardrail.action`` (for an
            intervention) or ``prompts.guardrail.detected`` (for a detection), when that
            setting is stricter; ``None`` when the finding stands as reported (no
            ``[prompts.guardrail]``, or its setting is not stricter). Never ``ALLOW``: no
            policy turns what a guardrail decided into a pass.
        """
        guardrail = self.guardrail
        if guardrail is None:
            return None
        if decision == "intervened":
            setting, source = guardrail.action, "prompts.guardrail.action"
        else:
            setting, source = guardrail.detected, "prompts.guardrail.detected"
        if Action.strictest((setting, action)) is action:
            return None
        return PromptJudgement(setting, source)

    # -- what the rules need ----------------------------------------------------------------------

    def own_terms(self) -> tuple[Term, ...]:
        """Return the terms the policy adds, each in its category with its severity."""
        return tuple(_own_terms(tuple(self.categories.items())))

    def rule_filter(self) -> RuleFilter:
        """Return one filter with every term the policy uses: the shipped lists, adjusted.

        Shipped terms minus ``remove``, plus the categories' own terms, with
        ``allow`` (and the shipped innocent phrases). For a look at the terms in use;
        moderation scans with :meth:`rule_filters`.
        """
        return _rule_filter(tuple(self.categories.items()), self.allow, self.remove)

    def rule_filters(self) -> tuple[tuple[Action, RuleFilter], ...]:
        """Return one filter per action its terms call for (BLOCK first), ALLOW left out.

        In each, the shipped terms of the other actions (and those removed or allowed) stay
        as shadows: a word that spells one is not read as another term plus an ending
        (``sexy`` is not ``sex`` plus ``-y``). Within a filter a longer match hides a shorter
        one only when at least as strict (same category and severity or higher, not negated
        unless the shorter one is); apart, a longer term calling for less cannot hide a
        shorter one calling for more, so adding a term or raising an action never loosens a
        verdict.
        """
        return _rule_filters(tuple(self.categories.items()), self.allow, self.remove)


# The filters depend only on the term settings: cached on them, so policies that differ in
# thresholds share them (building one compiles every shipped term, a second or more).
#: How many term settings' compiled filters are kept: as many as a moderator keeps compiled
#: per-request policies (``safegen.image.POLICY_CACHE_SIZE``), so none of those misses here.
TERM_FILTER_CACHE_SIZE = 32
_TermSettings: TypeAlias = tuple[tuple[str, PromptCategory], ...]


def _action_of(categories: _TermSettings, category: str, severity: str) -> Action:
    configured = dict(categories).get(category, _DEFAULT_CATEGORY)
    return configured.decide(severity, "")[0]


def _own_terms(categories: _TermSettings) -> list[Term]:
    return [
        Term(text, name, severity=severity)
        for name, category in categories
        for severity, texts in ((SEVERE, category.terms), (MILD, category.mild_terms))
        for text in texts
    ]


@functools.lru_cache(maxsize=TERM_FILTER_CACHE_SIZE)
def _rule_filter(
    categories: _TermSettings, allow: tuple[str, ...], remove: tuple[str, ...]
) -> RuleFilter:
    return RuleFilter.default(add=_own_terms(categories), remove=remove, allow=allow)


@functools.lru_cache(maxsize=TERM_FILTER_CACHE_SIZE)
def _rule_filters(
    categories: _TermSettings, allow: tuple[str, ...], remove: tuple[str, ...]
) -> tuple[tuple[Action, RuleFilter], ...]:
    shipped: dict[Action, set[str]] = {Action.BLOCK: set(), Action.REVIEW: set()}
    for text, category, severity in default_terms():
        folded = text.casefold()
        action = _action_of(categories, category, severity)
        if folded not in remove and action is not Action.ALLOW:
            shipped[action].add(folded)
    own: dict[Action, list[Term]] = {Action.BLOCK: [], Action.REVIEW: []}
    for term in _own_terms(categories):
        action = _action_of(categories, term.category, term.severity)
        if action is not Action.ALLOW:
            own[action].append(term)
    every = set(_shipped_texts())
    return tuple(
        (
            action,
            RuleFilter.default(
                add=own[action], remove=sorted(every - shipped[action]), allow=allow
            ),
        )
        for action in (Action.BLOCK, Action.REVIEW)
        if shipped[action] or own[action]
    )
