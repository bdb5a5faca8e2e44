"""Amazon Comprehend as prompt classifiers: toxicity detection and custom classifier endpoints.

Both satisfy :class:`safegen.ports.TextClassifier`, report scores on safegen's 0-100 scale
(Comprehend's are 0-1), and turn every botocore failure into a :class:`~safegen.SafegenError`
that keeps the AWS error code. Throttling is retried by botocore itself: build the client with
``Config(retries={"mode": "standard", ...})``, as :meth:`from_session` does.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from safegen.aws._client import make_client
from safegen.aws._convert import renamed, strict_converter, structure
from safegen.aws._errors import aws_call
from safegen.decision import Action
from safegen.errors import MalformedResponseError, PolicyError
from safegen.policy import Thresholds, ThresholdsLike, _thresholds
from safegen.prompt import PromptFinding, TextReport
from safegen.text.segment import split

if TYPE_CHECKING:
    import boto3
    from types_boto3_comprehend import ComprehendClient
    from types_boto3_comprehend.type_defs import TextSegmentTypeDef

__all__ = ["TOXICITY_LABELS", "ComprehendClassifier", "ComprehendToxicity"]

#: DetectToxicContent's labels, plus ``"TOXICITY"`` for its overall score.
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
    classes: list[_Score] = attrs.Factory(list)
    labels: list[_Score] = attrs.Factory(list)


_converter = strict_converter()
renamed(_converter, _Score, name="Name", score="Score")
renamed(_converter, _ToxicResult, labels="Labels", toxicity="Toxicity")
renamed(_converter, _ToxicResponse, results="ResultList")
renamed(_converter, _ClassifyResponse, classes="Classes", labels="Labels")


def _percent(score: float, where: str) -> float:
    if not 0.0 <= score <= 1.0:
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


class ComprehendToxicity:
    """Amazon Comprehend ``DetectToxicContent`` as a prompt check.

    A prompt longer than one segment is cut on word boundaries into segments of at most 1 KB
    (UTF-8), ten to a call; each label's highest score counts, with the span of its segment.
    The service supports English only, so it is always asked in English; a prompt that does
    not look English gets a note in the verdict saying its scores may not mean much.

    :param client: a boto3 ``comprehend`` client (see :meth:`from_session`).
    :param thresholds: per label (any of :data:`TOXICITY_LABELS`), a number (block at) or
        ``{"block_at": ..., "review_at": ...}``, on 0-100.
    :param block_at: the threshold for labels without an entry.
    :param review_at: the review threshold for labels without one; ``None`` for none.
    :param name: the check's name in verdicts.
    :raises PolicyError: an unknown label or a threshold out of range.
    """

    def __init__(
        self,
        client: ComprehendClient | Any,
        *,
        thresholds: Mapping[str, ThresholdsLike] | None = None,
        block_at: float = 50.0,
        review_at: float | None = None,
        name: str = "comprehend-toxicity",
    ) -> None:
        default = Thresholds(block_at=block_at, review_at=review_at)
        self._thresholds = dict.fromkeys(TOXICITY_LABELS, default)
        for label, value in (thresholds or {}).items():
            if label not in TOXICITY_LABELS:
                raise PolicyError(f"thresholds: unknown label {label!r}; known: {TOXICITY_LABELS}")
            entry = _thresholds(value, f"thresholds.{label}")
            self._thresholds[label] = Thresholds(
                block_at=entry.block_at if entry.block_at is not None else default.block_at,
                review_at=entry.review_at if entry.review_at is not None else default.review_at,
            )
        self._client = client
        self._name = name

    @classmethod
    def from_session(
        cls,
        session: boto3.Session | None = None,
        *,
        region_name: str | None = None,
        max_attempts: int = 5,
        **options: Any,
    ) -> ComprehendToxicity:
        """Build the check with a client that retries throttling (botocore standard mode).

        :param max_attempts: attempts in all, the first included.
        :param options: passed to the constructor (thresholds, name, ...).
        """
        client = make_client(
            "comprehend", session, region_name=region_name, max_attempts=max_attempts
        )
        return cls(client, **options)

    @property
    def name(self) -> str:
        """The check's name in verdicts."""
        return self._name

    def classify(self, text: str) -> TextReport:
        """Score *text* with DetectToxicContent.

        :raises ServiceError: the call failed (throttled past retries, access denied, ...).
        :raises MalformedResponseError: the response does not match the request.
        """
        if not text.strip():
            return TextReport(notes=("nothing to classify: the prompt is empty",))
        segments = split(text, max_bytes=_SEGMENT_BYTES)
        best: dict[str, tuple[float, tuple[int, int]]] = {}
        for first in range(0, len(segments), _SEGMENTS_PER_CALL):
            batch = segments[first : first + _SEGMENTS_PER_CALL]
            for (start, end), result in zip(batch, self._call(text, batch), strict=True):
                scores = [(s.name, s.score) for s in result.labels]
                scores.append(("TOXICITY", result.toxicity))
                for label, raw in scores:
                    score = _percent(raw, f"DetectToxicContent {label}")
                    if label in self._thresholds and score > best.get(label, (-1.0, (0, 0)))[0]:
                        best[label] = (score, (start, end))
        findings = []
        for label in TOXICITY_LABELS:
            if label in best:
                score, span = best[label]
                found = _finding(self._name, label, score, self._thresholds[label], span)
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

    def _call(self, text: str, batch: list[tuple[int, int]]) -> list[_ToxicResult]:
        segments: list[TextSegmentTypeDef] = [{"Text": text[start:end]} for start, end in batch]
        with aws_call("comprehend", "DetectToxicContent"):
            raw = self._client.detect_toxic_content(TextSegments=segments, LanguageCode="en")
        response = structure(_converter, raw, _ToxicResponse, "DetectToxicContent")
        if len(response.results) != len(batch):
            raise MalformedResponseError(
                f"DetectToxicContent: {len(response.results)} results for {len(batch)} segments"
            )
        return response.results


class ComprehendClassifier:
    """A Comprehend custom classifier endpoint (``ClassifyDocument``) as a prompt check.

    This is the seed architecture's custom toxicity classifier. Prompts over the service's
    limit (10,000 characters, 10 KB) are classified in pieces, cut on word boundaries; the
    highest score of an unsafe class counts. Works with multi-class (``Classes``) and
    multi-label (``Labels``) models.

    :param client: a boto3 ``comprehend`` client (see :meth:`from_session`).
    :param endpoint_arn: the classifier endpoint's ARN
        (``arn:aws:comprehend:REGION:ACCOUNT:document-classifier-endpoint/NAME``).
    :param unsafe_classes: the class or label names that mean unsafe, e.g. ``{"TOXIC"}``.
    :param block_at: the score (0-100) at or above which an unsafe class blocks.
    :param review_at: the score at or above which it sends the prompt to review.
    :param name: the check's name in verdicts.
    :raises PolicyError: no unsafe classes, a malformed ARN, or a threshold out of range.
    """

    def __init__(
        self,
        client: ComprehendClient | Any,
        endpoint_arn: str,
        *,
        unsafe_classes: Collection[str],
        block_at: float = 50.0,
        review_at: float | None = None,
        name: str = "comprehend-classifier",
    ) -> None:
        if ":document-classifier-endpoint/" not in endpoint_arn or not endpoint_arn.startswith(
            "arn:"
        ):
            raise PolicyError(f"endpoint_arn: not a document classifier endpoint: {endpoint_arn!r}")
        if isinstance(unsafe_classes, str) or not unsafe_classes:
            raise PolicyError("unsafe_classes: name the classes that mean unsafe, as a collection")
        self._thresholds = Thresholds(block_at=block_at, review_at=review_at)
        self._client = client
        self._endpoint_arn = endpoint_arn
        self._unsafe = frozenset(unsafe_classes)
        self._name = name

    @classmethod
    def from_session(
        cls,
        endpoint_arn: str,
        session: boto3.Session | None = None,
        *,
        region_name: str | None = None,
        max_attempts: int = 5,
        **options: Any,
    ) -> ComprehendClassifier:
        """Build the check with a client that retries throttling (botocore standard mode)."""
        client = make_client(
            "comprehend", session, region_name=region_name, max_attempts=max_attempts
        )
        return cls(client, endpoint_arn, **options)

    @property
    def name(self) -> str:
        """The check's name in verdicts."""
        return self._name

    def classify(self, text: str) -> TextReport:
        """Score *text* with the endpoint.

        :raises ServiceUnavailableError: the endpoint is not in service
            (``ResourceUnavailableException``) or the service is down.
        :raises ServiceError: any other failed call.
        """
        if not text.strip():
            return TextReport(notes=("nothing to classify: the prompt is empty",))
        pieces = split(text, max_bytes=_DOCUMENT_BYTES, max_chars=_DOCUMENT_CHARS)
        best: dict[str, tuple[float, tuple[int, int]]] = {}
        for start, end in pieces:
            with aws_call("comprehend", "ClassifyDocument"):
                raw = self._client.classify_document(
                    Text=text[start:end], EndpointArn=self._endpoint_arn
                )
            if "Classes" not in raw and "Labels" not in raw:  # e.g. a body that was not JSON
                raise MalformedResponseError("ClassifyDocument: neither Classes nor Labels")
            response = structure(_converter, raw, _ClassifyResponse, "ClassifyDocument")
            for scored in [*response.classes, *response.labels]:
                score = _percent(scored.score, f"ClassifyDocument {scored.name}")
                if scored.name in self._unsafe and score > best.get(scored.name, (-1.0,))[0]:
                    best[scored.name] = (score, (start, end))
        findings = [
            found
            for label, (score, span) in sorted(best.items())
            if (found := _finding(self._name, label, score, self._thresholds, span)) is not None
        ]
        notes = (f"checked in {len(pieces)} pieces",) if len(pieces) > 1 else ()
        return TextReport(tuple(findings), notes)


def _looks_english(text: str) -> bool:
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return True
    return sum(c.isascii() for c in letters) / len(letters) >= _NOT_ENGLISH_SHARE
