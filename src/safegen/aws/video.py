"""Amazon Rekognition stored-video moderation: ``StartContentModeration`` as a video backend.

:class:`RekognitionVideo` starts a job for a video in S3 (``MinConfidence`` from the policy,
an idempotent ``ClientRequestToken``, an optional ``JobTag`` and SNS ``NotificationChannel``),
waits for it (polling ``GetContentModeration`` with backoff, or reading the SNS message from
an SQS queue with :class:`SqsCompletion`, confirmed by one ``GetContentModeration`` call, and
polled every few waits anyway so a noisy queue cannot hide the notice), then reads every page
of ``GetContentModeration``
(there is no paginator: it loops on ``NextToken``). ``LimitExceededException`` (too many
concurrent jobs) is a queueing signal: the start waits and tries again, a bounded number of
times. A video over 10 GB is refused before any job starts (``HeadObject``), and the
service's own refusal (``VideoTooLargeException``: over 10 GB or 6 hours) is an
:class:`~safegen.video.InvalidVideoError`, not a failed check.

The job's token covers the object's content identity (``ETag``, size and ``VersionId`` from
that ``HeadObject``), so a video replaced at the same key is a new job, never the old one's
results; in a versioned bucket the job is pinned to the version read, and the verdict names
the ``ETag``/``VersionId`` it judged.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from safegen import _checks
from safegen.aws._client import Call, instrument, make_client, perform
from safegen.aws._convert import make_converter, structure
from safegen.aws._model import check_name, check_setting
from safegen.errors import (
    MalformedResponseError,
    ServiceError,
    ThrottledError,
)
from safegen.labels import ContentType, ModerationLabel
from safegen.reports import S3Object
from safegen.video import (
    MAX_VIDEO_BYTES,
    Aggregation,
    InvalidVideoError,
    VideoDetection,
    VideoJobError,
    VideoReport,
)

if TYPE_CHECKING:
    import boto3

__all__ = ["Backoff", "Notification", "RekognitionVideo", "SqsCompletion", "job_token"]

_converter = make_converter()
_GET = "GetContentModeration"
_START = "StartContentModeration"
_PAGE = 1000  # GetContentModeration's largest page
_POLL_EVERY = 3  # waiting by SQS, ask GetContentModeration every this many waits anyway
_STATUSES = frozenset({"SUCCEEDED", "FAILED", "ERROR"})  # a completion notice's statuses


def _positive(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise _checks.refuse(attribute, f"must be a number > 0, got {value!r}")


@attrs.frozen
class Backoff:
    """How long to wait between polls, and when to give up.

    The first wait is *first* seconds, each next one *factor* times longer, at most *most*;
    a wait that would pass *timeout* seconds in all is not taken.

    >>> import itertools
    >>> list(itertools.islice(Backoff(first=5, factor=2, most=30).delays(), 5))
    [5.0, 10.0, 20.0, 30.0, 30.0]
    """

    first: float = attrs.field(default=5.0, validator=_positive)
    factor: float = attrs.field(default=2.0, validator=_positive)
    most: float = attrs.field(default=60.0, validator=_positive)
    timeout: float = attrs.field(default=6 * 3600.0, validator=_positive)

    def delays(self) -> Iterator[float]:
        """Yield the waits, one per poll, for ever (the caller watches the timeout)."""
        delay = float(self.first)
        while True:
            yield min(delay, float(self.most))
            delay = min(delay * self.factor, float(self.most))


def _check_member(member: str) -> Callable[[object, attrs.Attribute[Any], object], None]:
    def check(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if value is not None:
            check_setting(value, service="rekognition", operation=_START, member=member,
                          setting=attribute.name)  # fmt: skip

    return check


@attrs.frozen
class Notification:
    """Where Rekognition publishes a job's completion: an SNS topic, and the role it uses.

    :param topic_arn: the SNS topic (with the ``AmazonRekognitionServiceRole`` policy, its
        name must start with ``AmazonRekognition``).
    :param role_arn: the IAM role Rekognition assumes to publish.
    :raises ConfigurationError: an ARN that does not match botocore's pattern.
    """

    topic_arn: str = attrs.field(validator=_check_member("NotificationChannel.SNSTopicArn"))
    role_arn: str = attrs.field(validator=_check_member("NotificationChannel.RoleArn"))


@attrs.frozen(eq=False)
class SqsCompletion:
    """Wait for a job by reading its SNS message from an SQS queue subscribed to the topic.

    Only this job's notice is deleted. Every other message (other jobs' notices, anything
    that is not a Rekognition notice from the topic) is left for its owner: held out of
    sight while this look goes on (so the next receive reaches past it), then made visible
    again. A look is bounded (*look* receives of up to 10 messages); the waiting backend
    also asks ``GetContentModeration`` itself every few waits and confirms any notice with
    it, so neither a queue full of others' messages nor a forged notice decides anything.

    :param client: a boto3 ``sqs`` client.
    :param queue_url: the queue subscribed to the :class:`Notification` topic.
    :param wait_seconds: SQS long polling for a look's first receive (0 to 20).
    :param look: receives per look (each up to 10 messages).
    :param hold_seconds: how long others' messages stay out of sight during a look at most
        (if this process dies mid-look); they are released when the look ends.
    :param topic_arn: when given, an SNS envelope from any other topic is not a notice.
    """

    _client: Any = attrs.field(converter=instrument, repr=False)
    queue_url: str = attrs.field(validator=check_name)
    wait_seconds: int = attrs.field(default=20)
    look: int = attrs.field(default=5, kw_only=True, validator=_positive)
    hold_seconds: int = attrs.field(default=30, kw_only=True, validator=_positive)
    topic_arn: str | None = attrs.field(default=None, kw_only=True)

    def status(self, job_id: str) -> str | None:
        """Return the job's status if its notice is among the next messages, else ``None``."""
        held: list[str] = []
        try:
            for turn in range(int(self.look)):
                messages = self._receive(self.wait_seconds if turn == 0 else 0)
                if not messages:
                    return None
                for message in messages:
                    receipt = message.get("ReceiptHandle") if isinstance(message, Mapping) else None
                    if not isinstance(receipt, str):
                        continue
                    notice = _notice(message.get("Body"), self.topic_arn)
                    if notice is None or notice["JobId"] != job_id:  # someone else's
                        held.append(receipt)
                        continue
                    perform(self._client, Call("sqs", "DeleteMessage", {
                        "QueueUrl": self.queue_url, "ReceiptHandle": receipt}))  # fmt: skip
                    return str(notice["Status"])
            return None
        finally:
            self._release(held)

    def _receive(self, wait: int) -> list[Any]:
        answer = perform(self._client, Call("sqs", "ReceiveMessage", {
            "QueueUrl": self.queue_url, "MaxNumberOfMessages": 10, "WaitTimeSeconds": wait,
            "VisibilityTimeout": int(self.hold_seconds)}))  # fmt: skip
        messages = answer.get("Messages", []) if isinstance(answer, Mapping) else []
        return messages if isinstance(messages, list) else []

    def _release(self, receipts: list[str]) -> None:
        """Make others' messages visible again for their owners (else they reappear anyway)."""
        for receipt in receipts:
            release = {"QueueUrl": self.queue_url, "ReceiptHandle": receipt,
                       "VisibilityTimeout": 0}  # fmt: skip
            try:
                perform(self._client, Call("sqs", "ChangeMessageVisibility", release))
            except ServiceError:  # it shows again when its hold ends: nothing is lost
                continue


def _notice(body: object, topic_arn: str | None = None) -> dict[str, Any] | None:
    """Read Rekognition's completion notice from an SQS body (an SNS envelope, or raw).

    An envelope must be an SNS ``Notification`` (from *topic_arn*, when given) whose
    ``Message`` is the notice; the notice must name the API, a JobId and a known status.
    """
    try:
        outer = json.loads(body) if isinstance(body, str) and len(body) <= 262_144 else None
        if isinstance(outer, dict) and "Message" in outer:  # an SNS envelope
            if outer.get("Type", "Notification") != "Notification":
                return None
            if topic_arn is not None and outer.get("TopicArn") != topic_arn:
                return None
            inner = outer["Message"]
            notice = json.loads(inner) if isinstance(inner, str) else None
        else:  # raw message delivery
            notice = outer
    except (ValueError, RecursionError):
        return None
    if (
        isinstance(notice, dict)
        and notice.get("API") == _START
        and isinstance(notice.get("JobId"), str)
        and notice.get("Status") in _STATUSES
    ):
        return notice
    return None


def job_token(
    video: S3Object, request: Mapping[str, Any], identity: Mapping[str, Any] | None = None
) -> str:
    """Return the ``ClientRequestToken`` for starting *request* on *video*.

    The same request on the same content gives the same token (so a repeated start
    re-attaches to its job), any change another.

    :param identity: the object's content identity (``ETag``, size, ``VersionId`` from
        ``HeadObject``): a video replaced at the same key gets another token, so another job.
    """
    blob = json.dumps(
        {
            "video": [video.bucket, video.key, video.version],
            "request": request,
            "identity": dict(identity or {}),
        },
        sort_keys=True,
        default=str,
    )
    return "sg-" + hashlib.sha256(blob.encode()).hexdigest()[:61]


def _tag(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None:
        check_setting(value, service="rekognition", operation=_START, member="JobTag",
                      setting=attribute.name)  # fmt: skip


def _completion(instance: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and not isinstance(value, SqsCompletion):
        raise _checks.refuse(attribute, f"expected an SqsCompletion or None, got {value!r}")
    if value is not None and instance.notification is None:
        raise _checks.refuse(attribute, "an SQS queue needs a notification topic to hear from")


def _sort_by(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value not in ("TIMESTAMP", "NAME"):
        raise _checks.refuse(attribute, f"TIMESTAMP or NAME, got {value!r}")


@attrs.frozen(eq=False)
class RekognitionVideo:
    """Rekognition ``StartContentModeration`` as a :class:`~safegen.video.VideoBackend`.

    :param client: a boto3 ``rekognition`` client (see :meth:`from_session`).
    :param s3: a boto3 ``s3`` client to read the video's size before starting (``HeadObject``);
        ``None`` leaves the size to the service.
    :param notification: publish the completion to this SNS topic.
    :param completion: wait by reading the SNS message from this SQS queue; ``None`` polls
        ``GetContentModeration``.
    :param job_tag: the ``JobTag`` sent with each job (it comes back in the SNS message).
    :param backoff: the waits between polls (and between starts refused for the job cap).
    :param start_attempts: starts tried when the concurrent-job cap is reached.
    :param sort_by: ``"TIMESTAMP"`` (default) or ``"NAME"``; the verdict does not depend on it.
    :param sleep: how to wait (inject a fake in tests).
    :param clock: a monotonic clock in seconds (for the backoff's timeout).
    :param name: the backend's name in verdicts.
    """

    _client: Any = attrs.field(converter=instrument, repr=False)
    s3: Any = attrs.field(default=None, kw_only=True, repr=False)
    notification: Notification | None = attrs.field(default=None, kw_only=True)
    completion: SqsCompletion | None = attrs.field(
        default=None, kw_only=True, validator=_completion
    )
    job_tag: str | None = attrs.field(default=None, kw_only=True, validator=_tag)
    backoff: Backoff = attrs.field(factory=Backoff, kw_only=True)
    start_attempts: int = attrs.field(default=5, kw_only=True, validator=_positive)
    sort_by: str = attrs.field(default="TIMESTAMP", kw_only=True, validator=_sort_by)
    sleep: Callable[[float], None] = attrs.field(default=time.sleep, kw_only=True, repr=False)
    clock: Callable[[], float] = attrs.field(default=time.monotonic, kw_only=True, repr=False)
    name: str = attrs.field(default="rekognition-video", kw_only=True, validator=check_name)

    @classmethod
    def from_session(
        cls,
        session: boto3.Session | None = None,
        *,
        region_name: str | None = None,
        max_attempts: int = 5,
        **settings: Any,
    ) -> RekognitionVideo:
        """Build the backend with Rekognition and S3 clients from *session*.

        :param settings: the constructor's keywords.
        """
        client = make_client(
            "rekognition", session, region_name=region_name, max_attempts=max_attempts
        )
        if "s3" not in settings:
            settings["s3"] = make_client(
                "s3", session, region_name=region_name, max_attempts=max_attempts
            )
        return cls(client, **settings)

    # -- the port --------------------------------------------------------------------------

    def analyse(
        self, video: S3Object, *, min_confidence: float, aggregate: Aggregation = "SEGMENTS"
    ) -> VideoReport:
        """Start a job for *video*, wait for it, and read every page of its results.

        :raises InvalidVideoError: the video is over 10 GB (checked first) or the service
            refused it as too large or too long.
        :raises VideoJobError: the job failed, or did not finish within the backoff's timeout.
        :raises ServiceError: a call failed; :raises MalformedResponseError: an unreadable answer.
        """
        head = self._head(video)
        _check_size(video, head)
        identity = _identity(head)
        version = identity.get("VersionId")
        if video.version is None and version is not None:  # judge exactly the version read
            video = S3Object(video.bucket, video.key, version)
        job_id = self.start(video, min_confidence=min_confidence, identity=identity)
        self.wait(job_id)
        report = self.results(job_id, aggregate=aggregate)
        return attrs.evolve(report, etag=identity.get("ETag"), version_id=video.version)

    # -- the steps -------------------------------------------------------------------------

    def check_size(self, video: S3Object) -> int | None:
        """Return the video's size from ``HeadObject`` (``None`` without an S3 client).

        :raises InvalidVideoError: it is over :data:`~safegen.video.MAX_VIDEO_BYTES`.
        """
        return _check_size(video, self._head(video))

    def _head(self, video: S3Object) -> Mapping[str, Any] | None:
        """Return ``HeadObject``'s answer for *video* (``None`` without an S3 client)."""
        if self.s3 is None:
            return None
        params = {"Bucket": video.bucket, "Key": video.key}
        if video.version is not None:
            params["VersionId"] = video.version
        head = perform(instrument(self.s3), Call("s3", "HeadObject", params))
        return head if isinstance(head, Mapping) else {}

    def request(self, video: S3Object, *, min_confidence: float) -> dict[str, Any]:
        """Return the ``StartContentModeration`` parameters, the token left out."""
        s3: dict[str, str] = {"Bucket": video.bucket, "Name": video.key}
        if video.version is not None:
            s3["Version"] = video.version
        request: dict[str, Any] = {"Video": {"S3Object": s3},
                                   "MinConfidence": float(min_confidence)}  # fmt: skip
        if self.job_tag is not None:
            request["JobTag"] = self.job_tag
        if self.notification is not None:
            request["NotificationChannel"] = {
                "SNSTopicArn": self.notification.topic_arn,
                "RoleArn": self.notification.role_arn,
            }
        return request

    def start(
        self,
        video: S3Object,
        *,
        min_confidence: float,
        token: str | None = None,
        identity: Mapping[str, Any] | None = None,
    ) -> str:
        """Start (or re-attach to) the job for *video*; return its JobId.

        The ``ClientRequestToken`` is :func:`job_token` of the request and the object's
        content identity unless given, so starting the same video (same bytes) with the
        same settings again returns the same job, and a video replaced at the same key a
        new one. The identity is read with ``HeadObject`` unless given; with neither an S3
        client nor a *video* version, nothing says which content the job would be about,
        so no token is sent (a fresh job each time). ``LimitExceededException`` waits (the
        backoff) and tries again, up to ``start_attempts`` starts.

        :raises InvalidVideoError: the service refused the video (``VideoTooLargeException``).
        """
        request = self.request(video, min_confidence=min_confidence)
        if identity is None and token is None:
            identity = _identity(self._head(video))
        if token is None and (identity or video.version is not None):
            token = job_token(video, request, identity)
        if token is not None:
            request["ClientRequestToken"] = token
        delays = self.backoff.delays()
        for attempt in range(1, int(self.start_attempts) + 1):
            try:
                answer = perform(self._client, Call("rekognition", _START, request))
            except ThrottledError as error:
                if error.code != "LimitExceededException" or attempt == self.start_attempts:
                    raise
                self.sleep(next(delays))
                continue
            except ServiceError as error:
                if error.code == "VideoTooLargeException":
                    raise InvalidVideoError(
                        f"video: s3://{video.bucket}/{video.key} is over Rekognition's "
                        f"limits for stored video (10 GB, 6 hours): {error.message}",
                        limit="service",
                    ) from error
                raise
            job_id = answer.get("JobId") if isinstance(answer, Mapping) else None
            if not isinstance(job_id, str) or not job_id:
                raise MalformedResponseError(f"{_START}: no JobId in the answer")
            return job_id
        raise AssertionError("unreachable")  # pragma: no cover

    def wait(self, job_id: str) -> None:
        """Wait until the job has finished (by SQS if configured, else by polling).

        :raises VideoJobError: the job did not finish before the backoff's timeout.
        """
        began = self.clock()
        delays = self.backoff.delays()
        for turn in itertools.count(1):
            if self.completion is None:
                ask = True
            else:  # a notice is confirmed; a noisy queue does not stop the polls
                ask = self.completion.status(job_id) is not None or turn % _POLL_EVERY == 0
            if ask and self._poll(job_id) != "IN_PROGRESS":
                return
            delay = next(delays)
            if self.clock() - began + delay > self.backoff.timeout:
                raise VideoJobError(
                    f"job {job_id} did not finish within {self.backoff.timeout:g} s",
                    job_id=job_id,
                    code="Timeout",
                    operation=_GET,
                )
            self.sleep(delay)

    def _poll(self, job_id: str) -> str:
        page = self._get({"JobId": job_id, "MaxResults": 1})
        return _status(page, job_id)

    def _get(self, params: dict[str, Any]) -> Mapping[str, Any]:
        answer = perform(self._client, Call("rekognition", _GET, params))
        if not isinstance(answer, Mapping):
            raise MalformedResponseError(f"{_GET}: expected an object")
        return answer

    def results(self, job_id: str, *, aggregate: Aggregation = "SEGMENTS") -> VideoReport:
        """Read every page of a finished job's results into a report.

        :raises VideoJobError: the job failed (or is not finished: never read as "nothing
            found").
        :raises MalformedResponseError: a page that is not of the documented shape.
        """
        params: dict[str, Any] = {"JobId": job_id, "MaxResults": _PAGE,
                                  "SortBy": self.sort_by, "AggregateBy": aggregate}  # fmt: skip
        detections: list[VideoDetection] = []
        seen: set[str] = set()
        model_version = duration = None
        while True:
            page = self._get(params)
            status = _status(page, job_id)
            if status != "SUCCEEDED":
                raise VideoJobError(
                    f"job {job_id} is {status}, not finished: its results cannot be read",
                    job_id=job_id,
                    code=status,
                    operation=_GET,
                )
            model_version, duration = _page_facts(page, aggregate, model_version)
            detections.extend(_detection(item, aggregate, index)
                              for index, item in enumerate(_labels(page)))  # fmt: skip
            token = page.get("NextToken")
            if token is None:
                break
            if not isinstance(token, str) or token in seen:
                raise MalformedResponseError(f"{_GET}: NextToken repeats or is not a string")
            seen.add(token)
            params["NextToken"] = token
        return VideoReport(detections, aggregate, model_version, duration, job_id)


def _check_size(video: S3Object, head: Mapping[str, Any] | None) -> int | None:
    size = head.get("ContentLength") if head is not None else None
    if isinstance(size, int) and size > MAX_VIDEO_BYTES:
        raise InvalidVideoError(
            f"video: s3://{video.bucket}/{video.key} is {size} bytes; Rekognition "
            f"analyses stored videos of at most {MAX_VIDEO_BYTES} bytes (10 GB)",
            limit="bytes",
        )
    return size if isinstance(size, int) else None


def _identity(head: Mapping[str, Any] | None) -> dict[str, Any]:
    """Return the object's content identity from ``HeadObject``: ``ETag``, size, version."""
    found: dict[str, Any] = {}
    for member in ("ETag", "ContentLength", "VersionId"):
        value = head.get(member) if head is not None else None
        if isinstance(value, str | int) and not isinstance(value, bool) and value != "null":
            found[member] = value
    return found


def _status(page: Mapping[str, Any], job_id: str) -> str:
    status = page.get("JobStatus")
    if status == "FAILED":
        message = page.get("StatusMessage")
        raise VideoJobError(
            f"job {job_id} failed: {message if isinstance(message, str) else 'no message'}",
            job_id=job_id,
            code="FAILED",
            operation=_GET,
        )
    if status not in ("IN_PROGRESS", "SUCCEEDED"):
        raise MalformedResponseError(f"{_GET}: JobStatus {status!r} is not a known status")
    return str(status)


def _page_facts(
    page: Mapping[str, Any], aggregate: str, known: str | None
) -> tuple[str, int | None]:
    """Return the page's model version and duration; refuse a page not of this request."""
    version = page.get("ModerationModelVersion")
    if not isinstance(version, str) or not version:
        raise MalformedResponseError(f"{_GET}: no ModerationModelVersion, so not an answer")
    if known is not None and version != known:
        raise MalformedResponseError(f"{_GET}: pages disagree on the model version")
    meta = page.get("GetRequestMetadata")
    if isinstance(meta, Mapping) and meta.get("AggregateBy", aggregate) != aggregate:
        raise MalformedResponseError(f"{_GET}: answered {meta.get('AggregateBy')}, not {aggregate}")
    video = page.get("VideoMetadata")
    duration = video.get("DurationMillis") if isinstance(video, Mapping) else None
    return version, duration if isinstance(duration, int) else None


def _labels(page: Mapping[str, Any]) -> list[Any]:
    items = page.get("ModerationLabels")
    if not isinstance(items, list):
        raise MalformedResponseError(f"{_GET}: no ModerationLabels list, so nothing is known")
    return items


def _detection(item: object, aggregate: str, index: int) -> VideoDetection:
    where = f"ModerationLabels[{index}]"
    if not isinstance(item, Mapping):
        raise MalformedResponseError(f"{_GET}: {where} is not an object")
    label = structure(_converter, item.get("ModerationLabel"), ModerationLabel,
                      f"{where}.ModerationLabel")  # fmt: skip
    types = item.get("ContentTypes", [])
    if not isinstance(types, list):
        raise MalformedResponseError(f"{_GET}: {where}.ContentTypes is not a list")
    content = tuple(structure(_converter, t, ContentType, f"{where}.ContentTypes[{i}]")
                    for i, t in enumerate(types))  # fmt: skip
    start, end = item.get("StartTimestampMillis"), item.get("EndTimestampMillis")
    if aggregate == "SEGMENTS" and (start is None or end is None):
        raise MalformedResponseError(f"{_GET}: {where} has no segment (SEGMENTS asked)")
    return VideoDetection(label, item.get("Timestamp", start), start, end, content)
