"""Amazon Comprehend as prompt classifiers: toxicity detection and custom classifier endpoints.

Both satisfy :class:`safegen.ports.TextClassifier`, report scores on safegen's 0-100 scale
(Comprehend's are 0-1), and turn every botocore failure into a :class:`~safegen.SafegenError`
that keeps the AWS error code. Throttling is retried by botocore itself: build the client with
``Config(retries={"mode": "standard", ...})``, as :meth:`from_session` does.
"""

from __future__ import annotations

import types
from collections.abc import Collection, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Self

import attrs

from safegen._thresholds import Thresholds, ThresholdsLike
from safegen.aws._client import Call, Exchange, instrument, make_client, run
from safegen.aws._convert import renamed, strict_converter, structure
from safegen.aws._model import check_name, check_setting
from safegen.decision import Action
from safegen.errors import ConfigurationError, MalformedResponseError, PolicyError
from safegen.prompt import PromptFinding, TextReport
from safegen.prompt_policy import TOXICITY_LABELS, PromptPolicy
from safegen.text.segment import split

if TYPE_CHECKING:
    import boto3
    from types_boto3_comprehend.type_defs import TextSegmentTypeDef

__all__ = ["TOXICITY_LABELS", "ComprehendClassifier", "ComprehendToxicity"]

# DetectToxicContent: at most 10 segments a call, each at most 1 KB of UTF-8 (10 KB in all).
_SEGMENT_BYTES = 1024
_SEGMENTS_PER_CALL = 10
# ClassifyDocument: text of at most 10,000 characters and 10 KB of UTF-8.
_DOCUMENT_CHARS = 10_000
_DOCUMENT_BYTES = 10 * 1024
_NOT_ENGLISH_SHARE = 0.8  # below this share of ASCII letters, a prompt is probably not English


@attrs.frozen
class _Score:
    name: str
    score: float


@attrs.frozen
class _ToxicResult:
    labels: list[_Score]
    toxicity: float


@attrs.frozen
class _ToxicResponse:
    results: list[_ToxicResult]


@attrs.frozen
class _ClassifyResponse:
    classes: list[_Score] | None = None
    labels: list[_Score] | None = None


_converter = strict_converter()
renamed(_converter, _Score, name="Name", score="Score")
renamed(_converter, _ToxicResult, labels="Labels", toxicity="Toxicity")
renamed(_converter, _ToxicResponse, results="ResultList")
renamed(_converter, _ClassifyResponse, classes="Classes", labels="Labels")


def _percent(score: float, where: str) -> float:
    if not 0.0 <= score <= 1.0:  # NaN fails this too
        raise MalformedResponseError(f"{where}: score {score!r} is not between 0 and 1")
    return score * 100.0


def _finding(
    source: str, label: str, score: float, thresholds: Thresholds, span: tuple[int, int]
) -> PromptFinding | None:
    block_at = thresholds.block_at if thresholds.block_at is not None else 100.0
    review_at = thresholds.review_at if thresholds.review_at is not None else block_at
    if score >= block_at:
        return PromptFinding(source, label, score, Action.BLOCK, span=span)
    if score >= review_at:
        return PromptFinding(source, label, score, Action.REVIEW, span=span)
    return None


def _entry(value: ThresholdsLike, where: str) -> Thresholds:
    """Read one thresholds entry: a number (block at), a mapping, or :class:`Thresholds`."""
    if isinstance(value, Thresholds):
        return value
    try:
        if isinstance(value, Mapping):
            unknown = sorted(set(value) - {"block_at", "review_at"})
            if unknown:
                raise PolicyError(f"unknown setting(s) {unknown}; known: block_at, review_at")
            return Thresholds(block_at=value.get("block_at"), review_at=value.get("review_at"))
        return Thresholds(block_at=value)
    except PolicyError as error:
        raise PolicyError(f"{where}: {error}") from None


def _toxicity_entries(
    entries: Mapping[str, ThresholdsLike] | None,
) -> types.MappingProxyType[str, Thresholds]:
    if entries is None:
        entries = {}
    if not isinstance(entries, Mapping):
        raise PolicyError(f"thresholds: expected a mapping, got {type(entries).__name__}")
    read: dict[str, Thresholds] = {}
    for label, value in entries.items():
        if label not in TOXICITY_LABELS:
            raise PolicyError(f"thresholds: unknown label {label!r}; known: {TOXICITY_LABELS}")
        read[label] = _entry(value, f"thresholds.{label}")
    return types.MappingProxyType(read)


def _score_setting(_: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    # Thresholds checks the range and the order; its PolicyError names the setting.
    if value is not None:
        Thresholds(**{attribute.name: value})


def _review_not_above_block(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    _score_setting(instance, attribute, value)
    Thresholds(block_at=instance.block_at, review_at=value)


def _entries_fit(
    instance: Any, attribute: attrs.Attribute[Any], value: Mapping[str, Thresholds]
) -> None:
    # attrs runs validators once every field is set, so the defaults are there to merge with.
    for label in value:
        try:
            instance.thresholds_for(label)
        except PolicyError as error:
            raise PolicyError(f"thresholds.{label} with the defaults: {error}") from None


def _class_entries(
    entries: Mapping[str, ThresholdsLike] | None,
) -> types.MappingProxyType[str, Thresholds]:
    if entries is None:
        entries = {}
    if not isinstance(entries, Mapping):
        raise PolicyError(f"thresholds: expected a mapping, got {type(entries).__name__}")
    read: dict[str, Thresholds] = {}
    for label, value in entries.items():
        name: object = label
        if not isinstance(name, str) or not name:
            raise PolicyError("thresholds: a class name must be a non-empty string")
        read[label] = _entry(value, f"thresholds.{label}")
    return types.MappingProxyType(read)


def _merged(entry: Thresholds | None, block_at: float, review_at: float | None) -> Thresholds:
    """Return *entry* over the defaults."""
    if entry is None:
        return Thresholds(block_at=block_at, review_at=review_at)
    block = entry.block_at if entry.block_at is not None else block_at
    review = entry.review_at if entry.review_at is not None else review_at
    return Thresholds(block_at=block, review_at=review)


def _policy_entries(policy: PromptPolicy, labels: Iterable[str]) -> dict[str, Thresholds]:
    """Every label's thresholds as *policy* resolves them (no review band: review = block)."""
    if not isinstance(policy, PromptPolicy):
        raise ConfigurationError(f"policy: expected a PromptPolicy, got {type(policy).__name__}")
    return {label: policy.thresholds_for(label).as_thresholds() for label in labels}


@attrs.frozen(eq=False)
class _Toxicity:
    """The settings and the DetectToxicContent exchange both checks share."""

    _client: Any = attrs.field(converter=instrument, repr=False)
    thresholds: types.MappingProxyType[str, Thresholds] = attrs.field(
        default=None, kw_only=True, converter=_toxicity_entries, validator=_entries_fit
    )
    block_at: float = attrs.field(default=50.0, kw_only=True, validator=_score_setting)
    review_at: float | None = attrs.field(
        default=None, kw_only=True, validator=_review_not_above_block
    )
    name: str = attrs.field(default="comprehend-toxicity", kw_only=True, validator=check_name)

    def thresholds_for(self, label: str) -> Thresholds:
        """Return the thresholds that judge *label*: its entry over the defaults."""
        return _merged(self.thresholds.get(label), self.block_at, self.review_at)

    def with_policy(self, policy: PromptPolicy) -> Self:
        """Return a copy judging every label at *policy*'s thresholds (same client and name).

        :raises ConfigurationError: *policy* is not a :class:`~safegen.PromptPolicy`.
        """
        return attrs.evolve(
            self,
            thresholds=_policy_entries(policy, TOXICITY_LABELS),
            block_at=policy.block_at,
            review_at=policy.review_at,
        )

    def _classify(self, text: str) -> Exchange[TextReport]:
        """Cut *text* into segments, ten to a call; judge each label's highest score."""
        if not text.strip():
            return TextReport(notes=("nothing to classify: the prompt is empty",))
        segments = split(text, max_bytes=_SEGMENT_BYTES)
        best: dict[str, tuple[float, tuple[int, int]]] = {}
        for first in range(0, len(segments), _SEGMENTS_PER_CALL):
            batch = segments[first : first + _SEGMENTS_PER_CALL]
            scored = yield from _toxic_call(text, batch)
            for (start, end), scores in zip(batch, scored, strict=True):
                for label, score in scores.items():
                    if score > best.get(label, (-1.0, (0, 0)))[0]:
                        best[label] = (score, (start, end))
        findings = []
        for label in sorted(best, key=_label_order):
            score, span = best[label]
            found = _finding(self.name, label, score, self.thresholds_for(label), span)
            if found is not None:
                findings.append(found)
        notes = []
        if not _looks_english(text):
            notes.append(
                "DetectToxicContent supports English only; this prompt does not look "
                "English, so its scores may not mean much"
            )
        if len(segments) > 1:
            calls = -(-len(segments) // _SEGMENTS_PER_CALL)
            notes.append(f"checked as {len(segments)} segments in {calls} call(s)")
        return TextReport(tuple(findings), tuple(notes))


@attrs.frozen(eq=False)
class ComprehendToxicity(_Toxicity):
    """Amazon Comprehend ``DetectToxicContent`` as a prompt check.

    A prompt longer than one segment is cut on word boundaries into segments of at most 1 KB
    (UTF-8), ten to a call; each label's highest score counts, with the span of its segment.
    The service supports English only, so it is always asked in English; a prompt that does
    not look English gets a note in the verdict saying its scores may not mean much.

    Only a well-formed answer passes: one result per segment sent, each with its overall
    ``Toxicity`` and a score for every one of the seven labels, every score from 0 to 1. Any
    other answer raises :class:`~safegen.errors.MalformedResponseError` (the check fails
    closed). A label the service adds later is judged by the default thresholds.

    :param client: a boto3 ``comprehend`` client (see :meth:`from_session`).
    :param thresholds: per label (any of :data:`TOXICITY_LABELS`), a number (block at) or
        ``{"block_at": ..., "review_at": ...}``, on 0-100.
    :param block_at: the threshold for labels without an entry.

    :meth:`with_policy` returns a copy judging at a :class:`~safegen.PromptPolicy`'s
    thresholds (what :meth:`PromptModerator.from_policy <safegen.PromptModerator.from_policy>`
    uses).
    :param review_at: the review threshold for labels without one; ``None`` for none.
    :param name: the check's name in verdicts.
    :raises PolicyError: an unknown label or a threshold out of range (thresholds are policy).
    :raises ConfigurationError: a name that is not a non-empty string.
    """

    @classmethod
    def from_session(
        cls,
        session: boto3.Session | None = None,
        *,
        region_name: str | None = None,
        max_attempts: int = 5,
        thresholds: Mapping[str, ThresholdsLike] | None = None,
        block_at: float = 50.0,
        review_at: float | None = None,
        name: str = "comprehend-toxicity",
    ) -> ComprehendToxicity:
        """Build the check with a client that retries throttling (botocore standard mode).

        :param max_attempts: attempts in all, the first included.

        The other keywords are the constructor's.
        """
        client = make_client(
            "comprehend", session, region_name=region_name, max_attempts=max_attempts
        )
        return cls(client, thresholds=thresholds, block_at=block_at, review_at=review_at, name=name)

    def classify(self, text: str) -> TextReport:
        """Score *text* with DetectToxicContent.

        :raises ServiceError: the call failed (throttled past retries, access denied, ...).
        :raises MalformedResponseError: the response is not a well-formed answer to the request.
        """
        return run(self._client, self._classify(text))


def _toxic_call(text: str, batch: list[tuple[int, int]]) -> Exchange[list[dict[str, float]]]:
    segments: list[TextSegmentTypeDef] = [{"Text": text[start:end]} for start, end in batch]
    raw = yield Call(
        "comprehend", "DetectToxicContent", {"TextSegments": segments, "LanguageCode": "en"}
    )
    if not isinstance(raw, Mapping) or "ResultList" not in raw:
        raise MalformedResponseError("DetectToxicContent: no ResultList (missing or null)")
    response = structure(_converter, raw, _ToxicResponse, "DetectToxicContent")
    if len(response.results) != len(batch):
        raise MalformedResponseError(
            f"DetectToxicContent: {len(response.results)} results for {len(batch)} segments"
        )
    return [_toxic_scores(result, i) for i, result in enumerate(response.results)]


def _toxic_scores(result: _ToxicResult, index: int) -> dict[str, float]:
    """Return one result's scores on 0-100, by label; every known label must be there."""
    where = f"DetectToxicContent ResultList[{index}]"
    scores = {"TOXICITY": _percent(result.toxicity, f"{where} Toxicity")}
    for scored in result.labels:
        if scored.name == "TOXICITY":
            raise MalformedResponseError(f"{where}: TOXICITY is not a label of its own")
        score = _percent(scored.score, f"{where} {scored.name}")
        scores[scored.name] = max(score, scores.get(scored.name, score))
    missing = [label for label in TOXICITY_LABELS if label not in scores]
    if missing:
        raise MalformedResponseError(f"{where}: no score for {', '.join(missing)}")
    return scores


def _label_order(label: str) -> tuple[int, str]:
    known = TOXICITY_LABELS.index(label) if label in TOXICITY_LABELS else len(TOXICITY_LABELS)
    return known, label


def _endpoint_arn(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    check_setting(
        value,
        service="comprehend",
        operation="ClassifyDocument",
        member="EndpointArn",
        setting=attribute.name,
    )


def _unsafe_classes(values: object) -> frozenset[str]:
    if isinstance(values, str) or not isinstance(values, Collection) or not values:
        raise ConfigurationError(
            "unsafe_classes: name the classes that mean unsafe, as a collection"
        )
    if not all(isinstance(v, str) and v for v in values):
        raise ConfigurationError("unsafe_classes: every class name must be a non-empty string")
    return frozenset(values)


@attrs.frozen(eq=False)
class _Classifier:
    """The settings and the ClassifyDocument exchange both checks share."""

    _client: Any = attrs.field(converter=instrument, repr=False)
    endpoint_arn: str = attrs.field(validator=_endpoint_arn)
    unsafe_classes: frozenset[str] = attrs.field(kw_only=True, converter=_unsafe_classes)
    block_at: float = attrs.field(default=50.0, kw_only=True, validator=_score_setting)
    review_at: float | None = attrs.field(
        default=None, kw_only=True, validator=_review_not_above_block
    )
    name: str = attrs.field(default="comprehend-classifier", kw_only=True, validator=check_name)
    thresholds: types.MappingProxyType[str, Thresholds] = attrs.field(
        default=None, kw_only=True, converter=_class_entries, validator=_entries_fit
    )

    def thresholds_for(self, label: str) -> Thresholds:
        """Return the thresholds that judge class *label*: its entry over the defaults."""
        return _merged(self.thresholds.get(label), self.block_at, self.review_at)

    def with_policy(self, policy: PromptPolicy) -> Self:
        """Return a copy judging each unsafe class at *policy*'s thresholds.

        :raises ConfigurationError: *policy* is not a :class:`~safegen.PromptPolicy`.
        """
        return attrs.evolve(
            self,
            thresholds=_policy_entries(policy, sorted(self.unsafe_classes)),
            block_at=policy.block_at,
            review_at=policy.review_at,
        )

    def _classify(self, text: str) -> Exchange[TextReport]:
        """Classify *text* in pieces within the limits; judge each unsafe class's highest score."""
        if not text.strip():
            return TextReport(notes=("nothing to classify: the prompt is empty",))
        pieces = split(text, max_bytes=_DOCUMENT_BYTES, max_chars=_DOCUMENT_CHARS)
        best: dict[str, tuple[float, tuple[int, int]]] = {}
        for start, end in pieces:
            raw = yield Call(
                "comprehend",
                "ClassifyDocument",
                {"Text": text[start:end], "EndpointArn": self.endpoint_arn},
            )
            for label, score in self._unsafe_scores(raw).items():
                if score > best.get(label, (-1.0,))[0]:
                    best[label] = (score, (start, end))
        findings = [
            found
            for label, (score, span) in sorted(best.items())
            if (found := _finding(self.name, label, score, self.thresholds_for(label), span))
            is not None
        ]
        notes = (f"checked in {len(pieces)} pieces",) if len(pieces) > 1 else ()
        return TextReport(tuple(findings), notes)

    def _unsafe_scores(self, raw: object) -> dict[str, float]:
        """Return the unsafe classes' scores (0-100) in one answer, refusing any other shape."""
        if not isinstance(raw, Mapping):
            raise MalformedResponseError("ClassifyDocument: the answer is not an object")
        response = structure(_converter, raw, _ClassifyResponse, "ClassifyDocument")
        scored = [*(response.classes or ()), *(response.labels or ())]
        if not scored:  # absent, null or empty: e.g. a body that was not JSON
            raise MalformedResponseError("ClassifyDocument: no Classes or Labels scored")
        scores: dict[str, float] = {}
        for item in scored:
            score = _percent(item.score, f"ClassifyDocument {item.name}")
            scores[item.name] = max(score, scores.get(item.name, score))
        missing = sorted(self.unsafe_classes - set(scores))
        if missing:
            raise MalformedResponseError(
                f"ClassifyDocument: the answer does not score {missing}, so it cannot clear them"
            )
        return {label: scores[label] for label in self.unsafe_classes}


@attrs.frozen(eq=False)
class ComprehendClassifier(_Classifier):
    """A Comprehend custom classifier endpoint (``ClassifyDocument``) as a prompt check.

    This is the seed architecture's custom toxicity classifier. Prompts over the service's
    limit (10,000 characters, 10 KB) are classified in pieces, cut on word boundaries; the
    highest score of an unsafe class counts. Works with multi-class (``Classes``) and
    multi-label (``Labels``) models.

    Only a well-formed answer passes: a non-empty ``Classes`` or ``Labels`` list that scores
    every one of *unsafe_classes*, each score from 0 to 1. An answer that never names an
    unsafe class cannot say it is absent, so it raises
    :class:`~safegen.errors.MalformedResponseError` (the check fails closed); a class name
    misspelt in *unsafe_classes* therefore fails every call rather than passing every prompt.

    :param client: a boto3 ``comprehend`` client (see :meth:`from_session`).
    :param endpoint_arn: the classifier endpoint's ARN
        (``arn:aws:comprehend:REGION:ACCOUNT:document-classifier-endpoint/NAME``).
    :param unsafe_classes: the class or label names that mean unsafe, e.g. ``{"TOXIC"}``.
    :param block_at: the score (0-100) at or above which an unsafe class blocks.
    :param review_at: the score at or above which it sends the prompt to review.
    :param thresholds: per unsafe class, a number (block at) or ``{"block_at": ...,
        "review_at": ...}`` over *block_at* and *review_at*.
    :param name: the check's name in verdicts.
    :raises ConfigurationError: no unsafe classes, or an ARN the service would refuse.
    :raises PolicyError: a threshold out of range (thresholds are policy).
    """

    @classmethod
    def from_session(
        cls,
        endpoint_arn: str,
        session: boto3.Session | None = None,
        *,
        unsafe_classes: Collection[str],
        region_name: str | None = None,
        max_attempts: int = 5,
        block_at: float = 50.0,
        review_at: float | None = None,
        name: str = "comprehend-classifier",
    ) -> ComprehendClassifier:
        """Build the check with a client that retries throttling (botocore standard mode).

        :param max_attempts: attempts in all, the first included.

        The other keywords are the constructor's.
        """
        client = make_client(
            "comprehend", session, region_name=region_name, max_attempts=max_attempts
        )
        return cls(
            client,
            endpoint_arn,
            unsafe_classes=unsafe_classes,
            block_at=block_at,
            review_at=review_at,
            name=name,
        )

    def classify(self, text: str) -> TextReport:
        """Score *text* with the endpoint.

        :raises ServiceUnavailableError: the endpoint is not in service
            (``ResourceUnavailableException``) or the service is down.
        :raises ServiceError: any other failed call.
        :raises MalformedResponseError: an answer that does not score every unsafe class.
        """
        return run(self._client, self._classify(text))


def _looks_english(text: str) -> bool:
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return True
    return sum(c.isascii() for c in letters) / len(letters) >= _NOT_ENGLISH_SHARE
