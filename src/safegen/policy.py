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

import hashlib
import importlib
import json
import os
import tomllib
import types
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

import attrs

from safegen import _evaluator, _numbers, _settings
from safegen._evaluator import EffectiveThresholds
from safegen._thresholds import Thresholds, ThresholdsLike, read_thresholds
from safegen._thresholds import review_at_setting as _review_at
from safegen._thresholds import review_not_above_block as _review_not_above_block
from safegen.decision import Action, PolicyDecision
from safegen.errors import PolicyError
from safegen.labels import ContentType, ModerationLabel
from safegen.taxonomy import REKOGNITION_V7, Category, Taxonomy

if TYPE_CHECKING:
    from safegen.prompt_policy import PromptPolicy

__all__ = ["ContentTypeRule", "EffectiveThresholds", "ModerationPolicy", "Thresholds"]

#: How label entries may be written: keyed by name, path or :class:`~safegen.Category`. (The
#: key type is Any so that a dict literal mixing entry styles type-checks; keys are checked
#: when the policy is built.)
LabelEntries: TypeAlias = "Mapping[Any, ThresholdsLike]"

_DEFAULT_BLOCK_AT = 50.0  # Rekognition's own default MinConfidence
_DEFAULT_MIN_CONFIDENCE = 50.0
#: The largest policy file :meth:`ModerationPolicy.from_toml` reads (a real one is a few KB).
MAX_POLICY_FILE_BYTES = 1 << 20


def _mapping_eq_key(mapping: Mapping[Any, Any]) -> tuple[tuple[Any, Any], ...]:
    # Mappings are stored sorted, so their items compare and hash as values.
    return tuple(mapping.items())


# -- converters and validators: every setting is checked however the object is made ----------


def _block_at(value: float) -> float:
    return _settings.score(value, "block_at")


def _min_confidence(value: float) -> float:
    return _settings.score(value, "min_confidence")


def _outright(value: Action | Literal["block", "review", "allow"] | None) -> Action | None:
    return _settings.action(value, "action")


def _not_evaluated(value: Action | str) -> Action:
    action = _settings.action(value, "not_evaluated")
    if action is None:
        raise PolicyError('not_evaluated: must be "block", "review" or "allow", got None')
    return action


_MAX_VERSION_CHARS = 100


def _version(value: object) -> str | None:
    if value is None:
        return None
    if (
        not isinstance(value, str)
        or not 0 < len(value) <= _MAX_VERSION_CHARS
        or not value.isprintable()
        or value.strip() != value
    ):
        raise PolicyError(
            f"version: must be a printable string of 1 to {_MAX_VERSION_CHARS} characters"
            f" without surrounding spaces, got {_numbers.show(value)}"
        )
    return value


def _prompts(value: object) -> PromptPolicy:
    # Imported here: the prompt section builds on this module's Thresholds.
    from safegen.prompt_policy import PromptPolicy

    if value is None:
        return PromptPolicy()
    if isinstance(value, PromptPolicy):
        return value
    return PromptPolicy.from_mapping(_settings.table(value, "prompts"))


def _a_taxonomy(value: object) -> Taxonomy:
    if not isinstance(value, Taxonomy):
        raise PolicyError(f"taxonomy: must be a Taxonomy, got {_numbers.show(value)}")
    return value


def _taxonomy(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    _a_taxonomy(value)


def _taxonomy_key(value: Taxonomy) -> str:
    return value.fingerprint


def _taxonomy_of(instance: Any) -> Taxonomy:
    """Return the taxonomy names resolve in, checked (converters run before validators)."""
    return _a_taxonomy(instance.taxonomy)


def _labels(value: object, instance: Any) -> types.MappingProxyType[Category, Thresholds]:
    return _label_entries({} if value is None else value, _taxonomy_of(instance), "labels")


def _exclude(value: object, instance: Any) -> frozenset[Category]:
    return _settings.categories(value, _taxonomy_of(instance), "exclude")


def _rules(value: object, instance: Any) -> types.MappingProxyType[str, ContentTypeRule]:
    return _content_type_rules({} if value is None else value, _taxonomy_of(instance))


def _label_entries(
    entries: object, taxonomy: Taxonomy, where: str
) -> types.MappingProxyType[Category, Thresholds]:
    resolved: dict[Category, Thresholds] = {}
    for key, value in _settings.table(entries, where).items():
        at = f'{where}."{key}"' if isinstance(key, str) else f"{where}.{_numbers.show(key)}"
        category = _settings.category(key, taxonomy, at)
        if category in resolved:
            raise PolicyError(f"{at}: {category} is configured more than once")
        resolved[category] = read_thresholds(value, at)
    return types.MappingProxyType(dict(sorted(resolved.items())))


@attrs.frozen(kw_only=True)
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

    # The taxonomy comes first: the label converters below resolve names in it.
    # Compared by what it resolves names to, so two policies judging by different trees differ.
    taxonomy: Taxonomy = attrs.field(
        default=REKOGNITION_V7, repr=False, eq=_taxonomy_key, validator=_taxonomy
    )
    min_confidence: float = attrs.field(default=_DEFAULT_MIN_CONFIDENCE, converter=_min_confidence)
    labels: Mapping[Category, Thresholds] = attrs.field(
        default=None,
        converter=attrs.Converter(_labels, takes_self=True),  # type: ignore[misc]
        eq=_mapping_eq_key,
    )
    exclude: frozenset[Category] = attrs.field(
        default=(),
        converter=attrs.Converter(_exclude, takes_self=True),  # type: ignore[misc]
    )
    action: Action | None = attrs.field(default=None, converter=_outright)

    @classmethod
    def from_mapping(
        cls, mapping: Mapping[str, Any], *, taxonomy: Taxonomy = REKOGNITION_V7, where: str = ""
    ) -> ContentTypeRule:
        """Build a rule from a policy file's ``[content_types.NAME]`` table.

        :param where: where the table sits in the policy file, for error messages.
        """
        _a_taxonomy(taxonomy)
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
        where = f"content_types.{name if isinstance(name, str) else _numbers.show(name)}"
        canonical = taxonomy.content_type(name) if isinstance(name, str) else None
        if canonical is None:
            known = ", ".join(taxonomy.content_types) or "none"
            raise PolicyError(
                f"{where}: unknown content type {_numbers.show(name)} (known: {known})"
            )
        if canonical in resolved:
            raise PolicyError(f"{where}: content type {canonical} is configured more than once")
        if not isinstance(rule, ContentTypeRule):
            rule = ContentTypeRule.from_mapping(rule, taxonomy=taxonomy, where=where)
        elif rule.taxonomy is not taxonomy:
            raise PolicyError(f"{where}: the rule uses a different taxonomy than the policy")
        resolved[canonical] = rule
    return types.MappingProxyType(dict(sorted(resolved.items())))


@attrs.frozen(kw_only=True, cache_hash=True)
class ModerationPolicy:
    """What "unsafe" means for a platform: thresholds, exclusions and content-type rules.

    Build one from a policy file with :meth:`from_toml`, from plain data with
    :meth:`from_mapping`, or directly; label names are resolved (and checked) against
    *taxonomy* either way. Every setting is checked by a converter or validator, so
    ``attrs.evolve(policy, block_at=30)`` checks the new value too.

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
    :param prompts: how prompts are judged (the policy file's ``[prompts]`` section).
    :param version: the policy's own name for this revision (``"2026-11-29"``, ``"v3"``), recorded
        beside :attr:`sha256` wherever a decision is kept; ``None`` when the file has none.
    :param taxonomy: the label tree names are resolved in.
    :raises PolicyError: a setting is malformed or out of range; the message names it.
    :raises UnknownLabelError: a label name is unknown; the message suggests the closest.

    >>> policy = ModerationPolicy(labels={"Explicit Nudity": 60}, exclude=["Kissing on the Lips"])
    >>> policy.evaluate([ModerationLabel("Kissing on the Lips", 97.0)]).action
    <Action.ALLOW: 'allow'>
    """

    # The taxonomy comes first: the label converters below resolve names in it.
    # Compared by what it resolves names to, so two policies judging by different trees differ.
    taxonomy: Taxonomy = attrs.field(
        default=REKOGNITION_V7, repr=False, eq=_taxonomy_key, validator=_taxonomy
    )
    block_at: float = attrs.field(default=_DEFAULT_BLOCK_AT, converter=_block_at)
    review_at: float | None = attrs.field(
        default=None, converter=_review_at, validator=_review_not_above_block
    )
    labels: Mapping[Category, Thresholds] = attrs.field(
        default=None,
        converter=attrs.Converter(_labels, takes_self=True),  # type: ignore[misc]
        eq=_mapping_eq_key,
    )
    exclude: frozenset[Category] = attrs.field(
        default=(),
        converter=attrs.Converter(_exclude, takes_self=True),  # type: ignore[misc]
    )
    content_types: Mapping[str, ContentTypeRule] = attrs.field(
        default=None,
        converter=attrs.Converter(_rules, takes_self=True),  # type: ignore[misc]
        eq=_mapping_eq_key,
    )
    not_evaluated: Action = attrs.field(default=Action.REVIEW, converter=_not_evaluated)
    prompts: PromptPolicy = attrs.field(default=None, converter=_prompts)
    #: The policy's own name for this revision (the policy file's ``version``), or ``None``.
    version: str | None = attrs.field(default=None, converter=_version)
    # Derived from the settings above, so attrs.evolve recomputes it.
    _sha256: str = attrs.field(init=False, eq=False, repr=False)

    @_sha256.default
    def _fingerprint(self) -> str:
        settings: dict[str, Any] = self.to_mapping()
        if self.taxonomy.fingerprint != REKOGNITION_V7.fingerprint:
            # The file names labels; the tree says what they mean. (The default tree is implied,
            # so fingerprints of ordinary policies do not change with this.)
            settings = {"policy": settings, "taxonomy": self.taxonomy.fingerprint}
        canonical = json.dumps(settings, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    @property
    def sha256(self) -> str:
        """What identifies the policy's content: the SHA-256 of its policy-file mapping.

        Two policies with the same settings (and :attr:`version`) over the same taxonomy have the
        same ``sha256`` whatever they are called; an edited file keeps its name but not its
        ``sha256``, and the same file read against another taxonomy gets another.
        """
        return self._sha256

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
        _a_taxonomy(taxonomy)
        mapping = _settings.table(mapping, "policy")
        allowed = (
            "block_at",
            "review_at",
            "exclude",
            "labels",
            "content_types",
            "not_evaluated",
            "prompts",
            "version",
        )
        _settings.reject_unknown_keys(mapping, allowed, "policy")
        try:
            return cls(
                block_at=mapping.get("block_at", _DEFAULT_BLOCK_AT),
                review_at=mapping.get("review_at"),
                labels=mapping.get("labels"),
                exclude=mapping.get("exclude", ()),
                content_types=mapping.get("content_types"),
                not_evaluated=mapping.get("not_evaluated", Action.REVIEW),
                prompts=mapping.get("prompts"),
                version=mapping.get("version"),
                taxonomy=taxonomy,
            )
        except PolicyError:
            raise
        except (RecursionError, MemoryError, TypeError, ValueError, AttributeError) as e:
            # Data no policy file can hold (unhashable or self-referencing values, say).
            raise PolicyError(f"policy: cannot be read as a policy ({type(e).__name__})") from e

    @classmethod
    def preset(cls, name: str) -> ModerationPolicy:
        """Return the policy shipped under *name* (``safegen policy list`` names them).

        :raises PolicyError: no preset has that name.
        """
        # The shipped policy files sit above this module (they are read as policies), so
        # they are looked up by name when asked for, not imported: no import circle.
        presets = importlib.import_module("safegen.presets")
        policy: ModerationPolicy = presets.load(name)
        return policy

    @classmethod
    def from_toml(
        cls, path: str | os.PathLike[str], *, taxonomy: Taxonomy = REKOGNITION_V7
    ) -> ModerationPolicy:
        """Read a policy file (TOML, UTF-8, at most 1 MiB; see ``docs/policies.rst``).

        :raises PolicyError: the file cannot be read (missing, a directory, too large), is not
            UTF-8 TOML, or is not a valid policy; the message names the file.
        """
        try:
            name = os.fsdecode(path)
        except TypeError:
            raise PolicyError(f"policy file: expected a path, got {type(path).__name__}") from None
        try:
            with open(path, "rb") as f:
                raw = f.read(MAX_POLICY_FILE_BYTES + 1)
        except OSError as e:
            raise PolicyError(f"{name}: cannot read the policy file: {e.strerror or e}") from e
        except ValueError as e:  # a NUL in the path
            raise PolicyError(f"{name!r}: cannot read the policy file: {e}") from e
        if len(raw) > MAX_POLICY_FILE_BYTES:
            raise PolicyError(
                f"{name}: larger than {MAX_POLICY_FILE_BYTES:,} bytes; not a policy file"
            )
        try:
            data = tomllib.loads(raw.decode("utf-8"))
        except UnicodeDecodeError as e:
            raise PolicyError(f"{name}: not valid TOML: not UTF-8 (byte {e.start})") from None
        except tomllib.TOMLDecodeError as e:
            raise PolicyError(f"{name}: not valid TOML: {e}") from None
        except (RecursionError, MemoryError) as e:
            raise PolicyError(f"{name}: not valid TOML: nested too deeply") from e
        try:
            return cls.from_mapping(data, taxonomy=taxonomy)
        except PolicyError as e:
            e.args = (f"{name}: {e}",)
            raise

    def to_mapping(self) -> dict[str, Any]:
        """Return the policy in the policy-file format; :meth:`from_mapping` reads it back."""
        out: dict[str, Any] = {} if self.version is None else {"version": self.version}
        out["block_at"] = self.block_at
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
        prompts = self.prompts.to_mapping()
        if prompts:
            out["prompts"] = prompts
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

    # -- evaluation (the engine is safegen._evaluator) ------------------------------------------

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
        return _evaluator.thresholds_for(self, label, content_types)

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
        return _evaluator.blind_spots(self, coverage, content_types)

    def evaluate(
        self,
        labels: Iterable[ModerationLabel],
        content_types: Iterable[ContentType] = (),
        *,
        coverage: Iterable[str | Category] | None = None,
    ) -> PolicyDecision:
        """Decide what to do with content a backend reported these labels for.

        The result does not depend on the order of *labels* or *content_types*. A category
        reported more than once is judged on its most confident report. A label is placed
        where the taxonomy puts its name, whatever parent or level it was reported with.

        :param coverage: what the backend can see, when it does not see the whole taxonomy
            (an offline model); what the policy moderates outside it is not evaluated and
            costs the policy's ``not_evaluated`` action. ``None`` (Rekognition) sees it all.
        :raises InvalidLabelError: an item is not a :class:`ModerationLabel` (or
            :class:`ContentType`).
        :raises UnknownLabelError: a *coverage* name is not in the taxonomy.
        """
        return _evaluator.evaluate(self, labels, content_types, coverage)
