"""Amazon Bedrock Guardrails (``ApplyGuardrail``) as a prompt check and as an image backend.

Comprehend's prompt-safety classifier is closed to new customers; AWS suggests Bedrock
Guardrails instead. A guardrail is configured in Bedrock (content filters, denied topics, word
filters, sensitive information, contextual grounding); safegen applies it to the prompt, or to
an image, with ``ApplyGuardrail`` and turns every assessment into a finding or a label:

- :class:`BedrockGuardrail` satisfies :class:`safegen.ports.TextClassifier`. Everything the
  guardrail acted on (``BLOCKED``, ``ANONYMIZED``) is a finding calling for the policy's
  ``prompts.guardrail.action`` (``BLOCK`` by default), labelled by kind and type
  (``content:SEXUAL``, ``topic:<topic name>``, ``word:custom``, ``word:PROFANITY``,
  ``pii:EMAIL``, ``regex:<name>``, ``grounding:RELEVANCE``), never by the words that matched.
  An intervention with no assessment to show for it is a finding too (``guardrail:intervened``).
  What a filter detected without acting on it is judged by ``prompts.guardrail.detected``.
  Each finding's ``decision`` (``"intervened"``, ``"detected"``) marks it as the service's
  decision, not a score: no moderator judges it below its action, whatever the policy.
- :class:`BedrockGuardrailImageBackend` satisfies :class:`safegen.ports.ImageBackend` for a
  guardrail with image content filters: each filter's confidence becomes a moderation label
  the policy judges (see :data:`IMAGE_LABELS`), a filter the guardrail acted on at 100, and the
  report's ``coverage`` names only the categories of the filters that reported, so the rest of
  the policy is *not evaluated*, never safe.

A content filter's confidence is a level, not a probability; it is put on safegen's 0-100
scale by :data:`CONFIDENCE_SCORES`. A service failure (throttled past retries, access denied,
a guardrail or version that does not exist) raises a :class:`~safegen.errors.ServiceError`
through the one choke point, so the check fails closed; an answer that cannot clear the prompt
(a shape botocore's model does not have, an unknown action or level, an answer that does not
say all of the prompt was guarded, no named image filter reporting, ``0 of 0`` guarded, an
image intervention no filter shows) raises :class:`~safegen.errors.MalformedResponseError`.
The guardrail's output (the masked prompt) and its ``actionReason`` are never read into a
result or a log.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Self

import attrs

from safegen.aws._client import Call, Exchange, instrument, make_client, run
from safegen.aws._convert import renamed, strict_converter, structure
from safegen.aws._model import check_name
from safegen.decision import Action
from safegen.errors import (
    ConfigurationError,
    InvalidImageError,
    MalformedResponseError,
    PolicyError,
)
from safegen.labels import ModerationLabel
from safegen.preflight import Preflight, sniff_format
from safegen.prompt_policy import GuardrailSetting, PromptPolicy
from safegen.reports import ImageReport, ImageSource, PromptFinding, S3Object, TextReport

if TYPE_CHECKING:
    import boto3

__all__ = [
    "CONFIDENCE_SCORES",
    "IMAGE_FILTERS",
    "IMAGE_LABELS",
    "BedrockGuardrail",
    "BedrockGuardrailImageBackend",
]

_SERVICE, _OPERATION = "bedrock-runtime", "ApplyGuardrail"
#: A content filter's confidence level on safegen's 0-100 scale (a level, not a probability).
CONFIDENCE_SCORES: Mapping[str, float] = {"NONE": 0.0, "LOW": 33.0, "MEDIUM": 67.0, "HIGH": 100.0}
#: The content filter types a guardrail can apply to images.
IMAGE_FILTERS = ("HATE", "INSULTS", "SEXUAL", "VIOLENCE", "MISCONDUCT", "PROMPT_ATTACK")
#: Each image content filter as the moderation label it reports, and the taxonomy category it
#: covers (``None``: no v7 category matches it; the label is reported and placed as unknown).
IMAGE_LABELS: Mapping[str, tuple[str, str | None]] = {
    "SEXUAL": ("Explicit", "Explicit"),
    "VIOLENCE": ("Violence", "Violence"),
    "HATE": ("Hate Symbols", "Hate Symbols"),
    "INSULTS": ("Rude Gestures", "Rude Gestures"),
    "MISCONDUCT": ("Guardrail Misconduct", None),
    "PROMPT_ATTACK": ("Guardrail Prompt Attack", None),
}
_IMAGE_BYTES = 4 * 1024 * 1024  # ApplyGuardrail's image limits: 4 MB, 8,000 x 8,000 pixels
_IMAGE_SIDE = 8000
_ACTED = frozenset({"BLOCKED", "ANONYMIZED"})
_ITEM_ACTIONS = frozenset({"BLOCKED", "ANONYMIZED", "NONE"})


def _strict_bool(value: object, _: type) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"expected a boolean, got {value!r}")
    return value


# -- the answer, as botocore's model shapes it ----------------------------------------------------


@attrs.frozen
class _Filter:
    type: str
    confidence: str
    action: str
    strength: str | None = None
    detected: bool | None = None


@attrs.frozen
class _Topic:
    name: str
    action: str
    detected: bool | None = None


@attrs.frozen
class _Word:
    match: str
    action: str
    type: str | None = None
    detected: bool | None = None


@attrs.frozen
class _Regex:
    action: str
    name: str | None = None
    match: str | None = None
    detected: bool | None = None


@attrs.frozen
class _Grounding:
    type: str
    threshold: float
    score: float
    action: str
    detected: bool | None = None


@attrs.frozen
class _Content:
    filters: list[_Filter]


@attrs.frozen
class _Topics:
    topics: list[_Topic]


@attrs.frozen
class _Words:
    custom: list[_Word]
    managed: list[_Word]


@attrs.frozen
class _Sensitive:
    pii: list[_Word]
    regexes: list[_Regex]


@attrs.frozen
class _GroundingPolicy:
    filters: list[_Grounding] | None = None


@attrs.frozen
class _Counted:
    guarded: int | None = None
    total: int | None = None


@attrs.frozen
class _Coverage:
    text: _Counted | None = None
    images: _Counted | None = None


@attrs.frozen
class _Metrics:
    coverage: _Coverage | None = None


@attrs.frozen
class _Assessment:
    content: _Content | None = None
    topics: _Topics | None = None
    words: _Words | None = None
    sensitive: _Sensitive | None = None
    grounding: _GroundingPolicy | None = None
    reasoning: dict[str, Any] | None = None
    metrics: _Metrics | None = None


@attrs.frozen
class _Answer:
    action: str
    assessments: list[_Assessment]
    coverage: _Coverage | None = None


_converter = strict_converter()
_converter.register_structure_hook(bool, _strict_bool)
renamed(_converter, _Filter, strength="filterStrength")
renamed(_converter, _Words, custom="customWords", managed="managedWordLists")
renamed(_converter, _Sensitive, pii="piiEntities")
renamed(_converter, _Coverage, text="textCharacters")
renamed(_converter, _Metrics, coverage="guardrailCoverage")
renamed(
    _converter,
    _Assessment,
    content="contentPolicy",
    topics="topicPolicy",
    words="wordPolicy",
    sensitive="sensitiveInformationPolicy",
    grounding="contextualGroundingPolicy",
    reasoning="automatedReasoningPolicy",
    metrics="invocationMetrics",
)
renamed(_converter, _Answer, coverage="guardrailCoverage")


def _answer(raw: object) -> _Answer:
    if not isinstance(raw, Mapping):
        raise MalformedResponseError(f"{_OPERATION}: the answer is not an object")
    for required in ("action", "assessments"):
        if raw.get(required) is None:
            raise MalformedResponseError(f"{_OPERATION}: no {required} (missing or null)")
    answer = structure(_converter, raw, _Answer, _OPERATION)
    if answer.action not in ("NONE", "GUARDRAIL_INTERVENED"):
        raise MalformedResponseError(f"{_OPERATION}: unknown action {answer.action[:40]!r}")
    return answer


def _unguarded(answer: _Answer, kind: str, *, required: bool) -> None:
    """Refuse an answer that does not say it guarded everything that was sent.

    Something was always sent (an empty prompt is never), so a count of nothing guarded
    (``0 of 0``), or part left unguarded, cannot clear it. With *required*, an answer that
    gives no count at all cannot either.
    """
    what = "characters" if kind == "text" else "images"
    places = [answer.coverage, *(a.metrics.coverage for a in answer.assessments if a.metrics)]
    counted_once = False
    for coverage in places:
        counted = None if coverage is None else getattr(coverage, kind)
        if counted is None or counted.guarded is None or counted.total is None:
            continue
        counted_once = True
        if counted.total < 1 or counted.guarded < counted.total:
            raise MalformedResponseError(
                f"{_OPERATION}: guarded {counted.guarded} of {counted.total} {what}; what was "
                "sent was not all evaluated, so it cannot be cleared"
            )
    if required and not counted_once:
        raise MalformedResponseError(
            f"{_OPERATION}: no guardrailCoverage for the {what} sent; an answer that does not "
            "say the input was guarded cannot clear it"
        )


def _level(value: str, where: str) -> float:
    score = CONFIDENCE_SCORES.get(value)
    if score is None:
        raise MalformedResponseError(f"{_OPERATION}: {where}: unknown confidence {value[:40]!r}")
    return score


def _fraction(value: float, where: str) -> float:
    if not 0.0 <= value <= 1.0:  # NaN fails this too
        raise MalformedResponseError(f"{_OPERATION}: {where}: {value!r} is not between 0 and 1")
    return value * 100.0


def _span(text: str, match: str | None) -> tuple[int, int] | None:
    """Where the guardrail's match is in the prompt (first occurrence), if it is there as such."""
    if not match:
        return None
    start = text.find(match)
    if start < 0:
        start = text.casefold().find(match.casefold())
        if start < 0 or len(text.casefold()) != len(text):
            return None
    return start, start + len(match)


@attrs.frozen
class _Item:
    """One assessment entry, as the findings need it."""

    label: str
    category: str
    score: float
    action: str
    detected: bool | None
    detail: str
    span: tuple[int, int] | None = None


def _items(answer: _Answer, text: str) -> list[_Item]:
    """Every assessment entry of *answer*, in the order the service gave them."""
    items: list[_Item] = []
    for number, assessment in enumerate(answer.assessments):
        at = f"assessments[{number}]"
        for f in assessment.content.filters if assessment.content else ():
            detail = f"confidence {f.confidence}" + (
                f", filter strength {f.strength}" if f.strength else ""
            )
            score = _level(f.confidence, f"{at}.contentPolicy {f.type}")
            items.append(
                _Item(f"content:{f.type}", "content-filter", score, f.action, f.detected, detail)
            )
        topics = assessment.topics.topics if assessment.topics else ()
        items.extend(
            _Item(f"topic:{t.name}", "denied-topic", 100.0, t.action, t.detected, "")
            for t in topics
        )
        if assessment.words:
            for w in assessment.words.custom:
                span = _span(text, w.match)
                items.append(
                    _Item("word:custom", "word-policy", 100.0, w.action, w.detected, "", span)
                )
            for w in assessment.words.managed:
                span = _span(text, w.match)
                label = f"word:{w.type or 'managed'}"
                items.append(_Item(label, "word-policy", 100.0, w.action, w.detected, "", span))
        if assessment.sensitive:
            for p in assessment.sensitive.pii:
                span = _span(text, p.match)
                label = f"pii:{p.type or 'unknown'}"
                items.append(
                    _Item(label, "sensitive-information", 100.0, p.action, p.detected, "", span)
                )
            for r in assessment.sensitive.regexes:
                span = _span(text, r.match)
                label = f"regex:{r.name or 'unnamed'}"
                items.append(
                    _Item(label, "sensitive-information", 100.0, r.action, r.detected, "", span)
                )
        grounding = assessment.grounding.filters if assessment.grounding else None
        for g in grounding or ():
            where = f"{at}.contextualGroundingPolicy {g.type}"
            score = _fraction(g.score, where)
            detail = f"score {score:g} against threshold {_fraction(g.threshold, where):g}"
            label = f"grounding:{g.type}"
            items.append(_Item(label, "contextual-grounding", score, g.action, g.detected, detail))
        if assessment.reasoning:
            # Automated reasoning findings have no action of their own; the answer's says.
            items.append(
                _Item("reasoning:assessed", "automated-reasoning", 100.0, "NONE", None, "")
            )
    return items


# -- the prompt check ---------------------------------------------------------------------------


def _identifier(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    try:
        GuardrailSetting(id=value, version="1")
    except PolicyError as error:
        raise ConfigurationError(f"{attribute.name}: {_after_place(error)}") from None


def _version(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str):
        raise ConfigurationError(f"{attribute.name}: expected a string such as '1' or 'DRAFT'")
    try:
        GuardrailSetting(id="x", version=value)
    except PolicyError as error:
        raise ConfigurationError(f"{attribute.name}: {_after_place(error)}") from None


def _after_place(error: Exception) -> str:
    return str(error).partition(": ")[2] or str(error)


def _intervention(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not Action.BLOCK and value is not Action.REVIEW:
        raise ConfigurationError(f"{attribute.name}: must be Action.BLOCK or Action.REVIEW")


def _detected(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, Action):
        raise ConfigurationError(f"{attribute.name}: must be an Action")


@attrs.frozen(eq=False)
class _Guardrail:
    """The settings and the ApplyGuardrail exchange the sync and async checks share."""

    _client: Any = attrs.field(converter=instrument, repr=False)
    guardrail_id: str = attrs.field(validator=_identifier)
    guardrail_version: str = attrs.field(validator=_version)
    action: Action = attrs.field(default=Action.BLOCK, kw_only=True, validator=_intervention)
    detected: Action = attrs.field(default=Action.ALLOW, kw_only=True, validator=_detected)
    name: str = attrs.field(default="bedrock-guardrail", kw_only=True, validator=check_name)
    setting: str = attrs.field(default="", kw_only=True, repr=False)

    @property
    def guardrail(self) -> str:
        """The guardrail as ``ID:VERSION``, as findings name it."""
        return f"{self.guardrail_id}:{self.guardrail_version}"

    def with_policy(self, policy: PromptPolicy) -> Self:
        """Return a copy acting as *policy*'s ``[prompts.guardrail]`` says (same client, name).

        A policy that names no guardrail leaves the check as it is (itself): a per-request
        policy without ``[prompts.guardrail]`` keeps the moderator's guardrail.

        :raises ConfigurationError: *policy* is not a PromptPolicy.
        """
        if getattr(policy, "guardrail", False) is None:
            return self
        setting = _setting(policy)
        return attrs.evolve(
            self,
            guardrail_id=setting.id,
            guardrail_version=setting.version,
            action=setting.action,
            detected=setting.detected,
            setting="prompts.guardrail",
        )

    def _classify(self, text: str) -> Exchange[TextReport]:
        if not text.strip():
            return TextReport(notes=("nothing to classify: the prompt is empty",))
        raw = yield self._call([{"text": {"text": text}}])
        answer = _answer(raw)
        _unguarded(answer, "text", required=True)
        return self._report(answer, text)

    def _call(self, content: list[dict[str, Any]]) -> Call:
        params = {
            "guardrailIdentifier": self.guardrail_id,
            "guardrailVersion": self.guardrail_version,
            "source": "INPUT",
            "content": content,
            "outputScope": "FULL",  # every assessment, acted on or not, with its confidence
        }
        return Call(_SERVICE, _OPERATION, params)

    def _report(self, answer: _Answer, text: str) -> TextReport:
        findings: list[PromptFinding] = []
        notes: list[str] = []
        for item in _items(answer, text):
            if item.action not in _ITEM_ACTIONS or item.action in _ACTED:
                acted = (
                    item.action if item.action in _ACTED else f"unknown action {item.action[:40]!r}"
                )
                findings.append(
                    self._finding(item, self.action, self._place("action"), acted, "intervened")
                )
            elif item.detected:
                if self.detected is Action.ALLOW:
                    notes.append(f"{self.name}: {item.label} detected, not acted on")
                else:
                    where = self._place("detected")
                    detection = attrs.evolve(item, label=f"detected:{item.label}")
                    findings.append(
                        self._finding(detection, self.detected, where, "detected", "detected")
                    )
        interventions = [f for f in findings if f.decision == "intervened"]
        if answer.action == "GUARDRAIL_INTERVENED" and not interventions:
            findings.append(
                PromptFinding(
                    self.name,
                    "guardrail:intervened",
                    100.0,
                    self.action,
                    "guardrail",
                    reason=f"{self._place('action')} (guardrail {self.guardrail} intervened "
                    "with no assessment to show)",
                    decision="intervened",
                )
            )
        return TextReport(tuple(findings), tuple(notes))

    def _place(self, key: str) -> str:
        """Name the setting *key*: in the policy file, or the constructor's keyword."""
        return f"{self.setting}.{key}" if self.setting else key

    def _finding(
        self, item: _Item, action: Action, where: str, what: str, decision: str
    ) -> PromptFinding:
        detail = f"; {item.detail}" if item.detail else ""
        return PromptFinding(
            self.name,
            item.label,
            item.score,
            action,
            item.category,
            item.span,
            reason=f"{where} (guardrail {self.guardrail} {what}{detail})",
            decision=decision,
        )


def _setting(policy: object) -> GuardrailSetting:
    if not isinstance(policy, PromptPolicy):
        raise ConfigurationError(f"policy: expected a PromptPolicy, got {type(policy).__name__}")
    if policy.guardrail is None:
        raise ConfigurationError("policy: it names no guardrail ([prompts.guardrail] id, version)")
    return policy.guardrail


@attrs.frozen(eq=False)
class BedrockGuardrail(_Guardrail):
    """An Amazon Bedrock guardrail (``ApplyGuardrail``, source ``INPUT``) as a prompt check.

    Every assessment the guardrail acted on (blocked, or masked: ``ANONYMIZED``) is a finding
    calling for *action*; one it only detected calls for *detected* (``ALLOW``: a note only).
    An intervention with no assessment to show is a ``guardrail:intervened`` finding. Findings
    are labelled by kind and type (see :mod:`safegen.aws.guardrails`) with the setting that
    decided them as ``reason``; a word or PII match has the ``span`` where it is in the
    prompt, never its text. The guardrail's masked output is never read.

    :param client: a boto3 ``bedrock-runtime`` client (see :meth:`from_session`).
    :param guardrail_id: the guardrail's ID or ARN.
    :param guardrail_version: its version: ``"1"``, ... or ``"DRAFT"``.
    :param action: what an intervention calls for: ``BLOCK`` (default) or ``REVIEW``.
    :param detected: what a detection not acted on calls for (``ALLOW`` by default).
    :param name: the check's name in verdicts and ``fail_open``.
    :raises ConfigurationError: an ID or version the service would refuse, an action that
        is not one, or a name that is not a non-empty string.
    """

    @classmethod
    def from_session(
        cls,
        guardrail_id: str,
        guardrail_version: str,
        session: boto3.Session | None = None,
        *,
        region_name: str | None = None,
        max_attempts: int = 5,
        action: Action = Action.BLOCK,
        detected: Action = Action.ALLOW,
        name: str = "bedrock-guardrail",
    ) -> BedrockGuardrail:
        """Build the check with a client that retries throttling (botocore standard mode).

        :param max_attempts: attempts in all, the first included. The other keywords are the
            constructor's.
        """
        client = make_client(_SERVICE, session, region_name=region_name, max_attempts=max_attempts)
        return cls(
            client, guardrail_id, guardrail_version, action=action, detected=detected, name=name
        )

    @classmethod
    def from_policy(
        cls,
        policy: PromptPolicy,
        *,
        client: Any = None,
        session: boto3.Session | None = None,
        region_name: str | None = None,
        max_attempts: int = 5,
        name: str = "bedrock-guardrail",
    ) -> BedrockGuardrail:
        """Build the check a policy's ``[prompts.guardrail]`` names.

        :param policy: the prompt policy (``ModerationPolicy.prompts``).
        :param client: a ``bedrock-runtime`` client; else one is made from *session*.
        :raises ConfigurationError: the policy names no guardrail.
        """
        setting = _setting(policy)
        if client is None:
            client = make_client(
                _SERVICE, session, region_name=region_name, max_attempts=max_attempts
            )
        return cls(
            client,
            setting.id,
            setting.version,
            action=setting.action,
            detected=setting.detected,
            name=name,
            setting="prompts.guardrail",
        )

    def classify(self, text: str) -> TextReport:
        """Apply the guardrail to *text*.

        :raises ServiceError: the call failed (throttled past retries, access denied, no
            such guardrail or version: ``ResourceNotFoundException``).
        :raises MalformedResponseError: an answer that cannot clear the prompt.
        """
        return run(self._client, self._classify(text))


# -- the image backend --------------------------------------------------------------------------


def _filters(value: Iterable[str]) -> frozenset[str]:
    if isinstance(value, str) or not isinstance(value, Collection) or not value:
        raise ConfigurationError(
            f"image_filters: name the guardrail's image content filters, some of {IMAGE_FILTERS}"
        )
    unknown = sorted(str(v) for v in value if v not in IMAGE_FILTERS)
    if unknown:
        raise ConfigurationError(f"image_filters: unknown {unknown}; known: {IMAGE_FILTERS}")
    return frozenset(value)


def _image_bytes(image: ImageSource) -> tuple[bytes, str]:
    if isinstance(image, S3Object):
        raise InvalidImageError(
            "ApplyGuardrail takes image bytes, not an S3 object: read it first", limit="type"
        )
    if not isinstance(image, bytes | bytearray | memoryview):
        raise InvalidImageError(f"expected image bytes, got {type(image).__name__}", limit="type")
    data = bytes(image)
    if not data:
        raise InvalidImageError("the image is empty (0 bytes)", limit="empty")
    if len(data) > _IMAGE_BYTES:
        raise InvalidImageError(
            f"the image is {len(data):,} bytes; a guardrail takes at most {_IMAGE_BYTES:,} "
            "(use BedrockGuardrailImageBackend.preflight(repair=True))",
            limit="bytes",
        )
    fmt = sniff_format(data)
    if fmt not in ("JPEG", "PNG"):
        raise InvalidImageError(
            f"a guardrail takes JPEG or PNG images, this is {fmt or 'not an image format'} "
            "(use BedrockGuardrailImageBackend.preflight(repair=True) to convert it)",
            limit="format",
        )
    return data, fmt.lower()


@attrs.frozen(eq=False)
class _GuardrailImages:
    """The settings and the exchange the sync and async image backends share."""

    _client: Any = attrs.field(converter=instrument, repr=False)
    guardrail_id: str = attrs.field(validator=_identifier)
    guardrail_version: str = attrs.field(validator=_version)
    image_filters: frozenset[str] = attrs.field(kw_only=True, converter=_filters)
    name: str = attrs.field(default="bedrock-guardrail", kw_only=True, validator=check_name)

    @property
    def coverage(self) -> tuple[str, ...]:
        """The taxonomy categories the configured image filters see at most.

        A report's ``coverage`` is narrower when a filter does not report on an image: only
        the filters that did saw it. Empty for ``MISCONDUCT`` and ``PROMPT_ATTACK`` alone
        (they match no category): everything the policy moderates is then not evaluated.
        """
        return tuple(
            sorted(
                category for f in self.image_filters if (category := IMAGE_LABELS[f][1]) is not None
            )
        )

    @staticmethod
    def preflight(*, repair: bool = True) -> Preflight:
        """Return a :class:`~safegen.Preflight` with ApplyGuardrail's image limits.

        Give it to the :class:`~safegen.ImageModerator` so other formats (GIF, WEBP, ...)
        are converted and large images scaled down before they are sent.
        """
        return Preflight(
            repair=repair, target_format="PNG", max_bytes=_IMAGE_BYTES, max_side=_IMAGE_SIDE
        )

    def _detect(self, image: ImageSource, min_confidence: float) -> Exchange[ImageReport]:
        data, fmt = _image_bytes(image)
        content = [{"image": {"format": fmt, "source": {"bytes": data}}}]
        params = {
            "guardrailIdentifier": self.guardrail_id,
            "guardrailVersion": self.guardrail_version,
            "source": "INPUT",
            "content": content,
            "outputScope": "FULL",
        }
        answer = _answer((yield Call(_SERVICE, _OPERATION, params)))
        _unguarded(answer, "images", required=False)
        guardrail = f"guardrail {self.guardrail_id}:{self.guardrail_version}"
        best: dict[str, float] = {}
        acted: dict[str, str] = {}  # filter type -> the level it acted at
        for number, assessment in enumerate(answer.assessments):
            for f in assessment.content.filters if assessment.content else ():
                score = _level(f.confidence, f"assessments[{number}].contentPolicy {f.type}")
                if f.type not in self.image_filters:
                    continue
                best[f.type] = max(score, best.get(f.type, 0.0))
                if f.action != "NONE":  # BLOCKED, or an action we do not know: acted on
                    acted[f.type] = f.confidence[:40]
        if not best:
            raise MalformedResponseError(
                f"{_OPERATION}: none of the image filters {sorted(self.image_filters)} reported; "
                "the image was not evaluated, so it cannot be cleared"
            )
        if answer.action == "GUARDRAIL_INTERVENED" and not acted:
            raise MalformedResponseError(
                f"{_OPERATION}: {guardrail} intervened on nothing the image filters show; the "
                "image cannot be cleared"
            )
        # What the guardrail acted on is its decision: reported at full confidence, whatever
        # the level and min_confidence; the level is in the warnings.
        labels = [
            ModerationLabel(IMAGE_LABELS[kind][0], 100.0 if kind in acted else score, level=1)
            for kind, score in sorted(best.items())
            if kind in acted or (score > 0 and score >= min_confidence)
        ]
        warnings = tuple(
            f"{guardrail} acted on {kind} (confidence {level})"
            for kind, level in sorted(acted.items())
        )
        # Only the filters that reported saw the image: the rest is not evaluated.
        coverage = sorted(
            category for kind in best if (category := IMAGE_LABELS[kind][1]) is not None
        )
        return ImageReport(labels, model_version=guardrail, warnings=warnings, coverage=coverage)


@attrs.frozen(eq=False)
class BedrockGuardrailImageBackend(_GuardrailImages):
    """A Bedrock guardrail's image content filters as an image backend.

    The image's bytes (JPEG or PNG, at most 4 MB) are sent as a guardrail image block.
    Each filter in *image_filters* reports its confidence (:data:`CONFIDENCE_SCORES`) as the
    label of :data:`IMAGE_LABELS`: ``SEXUAL`` as ``Explicit``, ``VIOLENCE`` as
    ``Violence``, ``HATE`` as ``Hate Symbols``, ``INSULTS`` as ``Rude Gestures`` (v7
    top-level categories, judged by the policy like Rekognition's); ``MISCONDUCT`` and
    ``PROMPT_ATTACK`` match no v7 category and are reported as labels of their own. The
    report's ``coverage`` is the categories those filters see: whatever else the policy
    moderates (swimwear, drugs, alcohol, gambling, non-explicit nudity, disturbing images)
    is *not evaluated*, never safe. A confidence of ``NONE`` reports no label. A filter the
    guardrail acted on (``BLOCKED``) is its decision: a label at 100 whatever its level and
    ``min_confidence`` (the level in the report's warnings). Only the named filters that
    reported on the image count as its coverage; none reporting, ``0 of 0`` images guarded,
    or an intervention no named filter shows raises
    :class:`~safegen.errors.MalformedResponseError`.

    :param client: a boto3 ``bedrock-runtime`` client.
    :param guardrail_id: the guardrail's ID or ARN.
    :param guardrail_version: its version.
    :param image_filters: the content filters the guardrail applies to images (some of
        :data:`IMAGE_FILTERS`): as configured in Bedrock, since a filter that is not
        configured reports nothing and must not count as coverage.
    :param name: the backend's name in verdicts.
    :raises ConfigurationError: no or unknown filters, an ID or version the service would
        refuse.
    """

    @classmethod
    def from_session(
        cls,
        guardrail_id: str,
        guardrail_version: str,
        session: boto3.Session | None = None,
        *,
        image_filters: Collection[str],
        region_name: str | None = None,
        max_attempts: int = 5,
        name: str = "bedrock-guardrail",
    ) -> BedrockGuardrailImageBackend:
        """Build the backend with a client that retries throttling (botocore standard mode)."""
        client = make_client(_SERVICE, session, region_name=region_name, max_attempts=max_attempts)
        return cls(client, guardrail_id, guardrail_version, image_filters=image_filters, name=name)

    def detect(self, image: ImageSource, *, min_confidence: float) -> ImageReport:
        """Apply the guardrail's image filters to *image*.

        :raises InvalidImageError: not JPEG or PNG bytes of at most 4 MB.
        :raises ServiceError: the call failed.
        :raises MalformedResponseError: an answer that cannot clear the image.
        """
        return run(self._client, self._detect(image, min_confidence))
