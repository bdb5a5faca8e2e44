"""Rekognition bulk analysis as a batch engine (:class:`BulkAnalysisEngine`).

The engine writes the batch's S3 images to manifests in S3 (at most 10,000 images a job, the
service's limit), starts one ``StartMediaAnalysisJob`` per manifest with the policy's
``MinConfidence`` (and an adapter, if any), polls ``GetMediaAnalysisJob`` with backoff (there
is no waiter and no SNS), then reads the job's ``results.json`` and ``manifest-summary.json``
from the keys the job names (``Results.S3Object.Name``, ``ManifestSummary.S3Object.Name``;
never built by hand). Each result line is judged by the policy exactly as
:class:`~safegen.ImageModerator` judges a ``DetectModerationLabels`` answer; each line the
summary lists as an error, and each image the job says nothing about, is a failed record
(fail closed).

Resuming: every job is recorded in the ledger as soon as it has started (before any wait),
and its ``ClientRequestToken`` is derived from what it analyses: the ledger's own identity (a
random id it keeps), the policy, and each object's ``source-ref`` with its content identity
(``ETag`` and size, from ``HeadObject``). So a run killed at any point and resumed re-attaches
to its job (by the ledger, or by the token if it died before the ledger heard of the job) and
never starts a duplicate, while a changed object, or another ledger, never re-attaches to a
job that analysed other content. A job still running when a run gives up waiting keeps its
images: later runs re-attach to it rather than start another. A job whose manifest or
outputs are gone is finished as a failure of its images, retried by a fresh job next run.
Two items naming one object are analysed once and each gets the result.

Bulk analysis is closed to new AWS customers (since 2026-04-30): an ``AccessDeniedException``
stops the run with :class:`BulkAnalysisUnavailableError`, whose one line suggests the
client-side engine (:class:`safegen.batch.ClientEngine`).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import attrs

from safegen import _checks
from safegen.aws._client import Call, instrument, perform
from safegen.aws._model import check_name, check_setting
from safegen.aws.rekognition import parse_moderation_response
from safegen.aws.video import Backoff
from safegen.batch import (
    REKOGNITION_S3_BYTES,
    TRANSIENT_CAUSES,
    BatchSummary,
    Item,
    Ledger,
    LedgerRecord,
    Tally,
    bounded_lines,
    failure_of,
    record_of,
    s3_ref,
)
from safegen.errors import (
    AccessDeniedError,
    ConfigurationError,
    MalformedResponseError,
    ServiceError,
    ThrottledError,
)
from safegen.image import ImageVerdict
from safegen.policy import ModerationPolicy
from safegen.reports import ImageReport, S3Object

__all__ = [
    "MAX_MANIFEST_IMAGES",
    "BulkAnalysisEngine",
    "BulkAnalysisUnavailableError",
    "BulkJob",
    "list_jobs",
]

#: The most images one bulk-analysis job takes.
MAX_MANIFEST_IMAGES = 10_000
_START, _GET, _LIST = "StartMediaAnalysisJob", "GetMediaAnalysisJob", "ListMediaAnalysisJobs"
_STARTED, _FINISHED = "bulk-job-started", "bulk-job-finished"  # the engine's ledger notes
_IDENTITY = "bulk-ledger"  # the note holding the ledger's own random id
_HEADS = 8  # HeadObject calls at a time
_ABSENT = "absent"  # the content identity of an object not there (or not readable)
_LIST_FROM = 50  # objects of one bucket in a chunk from which a listing is tried first
_RUNNING = frozenset({"CREATED", "QUEUED", "IN_PROGRESS"})
_RETRYABLE_JOB_FAILURES = frozenset({"INTERNAL_ERROR", "THROTTLED", "RESOURCE_NOT_READY"})
_MAX_RESULT_LINE = 1024 * 1024
_BLOCK = 64 * 1024


class BulkAnalysisUnavailableError(AccessDeniedError):
    """Rekognition bulk analysis refused this account: closed to it, or not allowed by IAM."""


@attrs.frozen
class BulkJob:
    """One bulk-analysis job, as ``ListMediaAnalysisJobs`` describes it.

    :param job_id: the ``JobId``.
    :param name: the ``JobName`` (``None`` if it has none).
    :param status: ``CREATED``, ``QUEUED``, ``IN_PROGRESS``, ``SUCCEEDED`` or ``FAILED``.
    :param failure: the ``FailureDetails.Code`` of a failed job.
    """

    job_id: str
    name: str | None
    status: str
    failure: str | None = None


def _unavailable(error: ServiceError) -> BulkAnalysisUnavailableError:
    return BulkAnalysisUnavailableError(
        "Rekognition bulk analysis is not available to this account (it is closed to new "
        "customers since 2026-04-30, or IAM does not allow it): use the client-side engine, "
        "safegen.batch.ClientEngine",
        service="rekognition",
        operation=error.operation,
        code=error.code,
    )


def _call(client: Any, operation: str, params: dict[str, Any]) -> Any:
    """Make one Rekognition call; an AccessDeniedException says the feature is closed."""
    try:
        answer = perform(client, Call("rekognition", operation, params))
    except AccessDeniedError as error:
        raise _unavailable(error) from error
    if not isinstance(answer, Mapping):
        raise MalformedResponseError(f"{operation}: expected an object")
    return answer


def list_jobs(client: Any, *, page_size: int = 100) -> Iterator[BulkJob]:
    """Yield every bulk-analysis job of the account, newest first (looping on ``NextToken``).

    :param client: a boto3 ``rekognition`` client.
    :param page_size: ``MaxResults``, 1 to 100.
    :raises ConfigurationError: *page_size* out of range.
    :raises BulkAnalysisUnavailableError: the account cannot use bulk analysis.
    """
    if type(page_size) is not int or not 1 <= page_size <= 100:
        raise ConfigurationError(f"page_size: 1 to 100, got {page_size!r}")
    client = instrument(client)
    params: dict[str, Any] = {"MaxResults": page_size}
    seen: set[str] = set()
    while True:
        page = _call(client, _LIST, params)
        jobs = page.get("MediaAnalysisJobs")
        if not isinstance(jobs, list):
            raise MalformedResponseError(f"{_LIST}: no MediaAnalysisJobs list")
        for job in jobs:
            failure = job.get("FailureDetails") or {}
            yield BulkJob(str(job.get("JobId")), job.get("JobName"), str(job.get("Status")),
                          failure.get("Code"))  # fmt: skip
        token = page.get("NextToken")
        if token is None:
            return
        if not isinstance(token, str) or token in seen:
            raise MalformedResponseError(f"{_LIST}: NextToken repeats or is not a string")
        seen.add(token)
        params["NextToken"] = token


def _chunk_size(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _checks.refuse(attribute, "must be a whole number")
    if not 1 <= value <= MAX_MANIFEST_IMAGES:
        raise _checks.refuse(attribute, f"1 to {MAX_MANIFEST_IMAGES:,} images a job")


def _adapter(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None:
        check_setting(value, service="rekognition", operation=_START,
                      member="OperationsConfig.DetectModerationLabels.ProjectVersion",
                      setting=attribute.name)  # fmt: skip


def _bucket(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    check_setting(value, service="rekognition", operation=_START, member="OutputConfig.S3Bucket",
                  setting=attribute.name)  # fmt: skip


def _prefix(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    check_setting(value, service="rekognition", operation=_START,
                  member="OutputConfig.S3KeyPrefix", setting=attribute.name)  # fmt: skip


@attrs.frozen(eq=False)
class _Chunk:
    """Up to 10,000 images of the batch that one job analyses."""

    name: str
    refs: dict[str, tuple[str, ...]]  # manifest source-ref -> the item refs naming it
    identities: dict[str, str] = attrs.field(factory=dict)  # item ref -> the source's identity

    def settled(self, ledger: Ledger, ref: str) -> bool:
        """Whether *ref* is done in *ledger* for the content identity its item had."""
        return ledger.is_done(ref, self.identities.get(ref))

    def stamped(self, record: LedgerRecord) -> LedgerRecord:
        """Return *record* carrying its item's content identity, when the source gave one."""
        identity = self.identities.get(record.ref)
        return record if identity is None else attrs.evolve(record, identity=identity)

    def item_refs(self) -> Iterator[str]:
        """Yield every item ref of the chunk."""
        for refs in self.refs.values():
            yield from refs


@attrs.frozen(eq=False)
class BulkAnalysisEngine:
    """Moderate S3 images with Rekognition bulk analysis: a ``safegen.batch`` engine.

    ``run(items, ledger)`` checks every item the ledger has not settled and returns the
    run's ``BatchSummary``; jobs an earlier run started and did not
    finish are re-attached to first. It raises :class:`BulkAnalysisUnavailableError` when
    the account cannot use bulk analysis.

    :param client: a boto3 ``rekognition`` client.
    :param s3: a boto3 ``s3`` client: manifests are written, results read, with it.
    :param policy: the policy results are judged by; its
        :attr:`~safegen.ModerationPolicy.min_confidence` is the jobs' ``MinConfidence``.
    :param bucket: where manifests and results go (in the client's region).
    :param prefix: the key prefix under *bucket* (``"safegen-bulk/"``).
    :param adapter_arn: a Custom Moderation adapter (``ProjectVersion``) to analyse with.
    :param chunk: images per job, at most 10,000.
    :param backoff: waits between polls (10 s rising to 60 s; a job not finished by its
        timeout leaves its images as retryable failures, and a resumed run re-attaches).
    :param start_attempts: starts tried when the concurrent-job cap is reached.
    :param sleep: how to wait (inject a fake in tests); :param clock: a monotonic clock.
    :param name: the engine's name in the ledger.
    """

    _client: Any = attrs.field(converter=instrument, repr=False)
    s3: Any = attrs.field(kw_only=True, converter=instrument, repr=False)
    policy: ModerationPolicy = attrs.field(
        kw_only=True, validator=_checks.instance_of(ModerationPolicy, what="a ModerationPolicy")
    )
    bucket: str = attrs.field(kw_only=True, validator=_bucket)
    prefix: str = attrs.field(default="safegen-bulk/", kw_only=True, validator=_prefix)
    adapter_arn: str | None = attrs.field(default=None, kw_only=True, validator=_adapter)
    chunk: int = attrs.field(default=MAX_MANIFEST_IMAGES, kw_only=True, validator=_chunk_size)
    backoff: Backoff = attrs.field(
        factory=lambda: Backoff(first=10.0, factor=1.5, most=60.0, timeout=24 * 3600.0),
        kw_only=True,
    )
    start_attempts: int = attrs.field(default=5, kw_only=True)
    sleep: Callable[[float], None] = attrs.field(default=time.sleep, kw_only=True, repr=False)
    clock: Callable[[], float] = attrs.field(default=time.monotonic, kw_only=True, repr=False)
    name: str = attrs.field(default="bulk", kw_only=True, validator=check_name)

    # -- the engine ------------------------------------------------------------------------

    def run(self, items: Iterable[Item], ledger: Ledger) -> BatchSummary:
        """Check every item the ledger has not settled; return this run's counts.

        Jobs an earlier run started and did not finish are re-attached to first.

        :raises BulkAnalysisUnavailableError: the account cannot use bulk analysis.
        """
        if ledger.policy_sha256 != self.policy.sha256:
            raise ConfigurationError(
                "policy: the ledger was opened with another policy than this engine judges by"
            )
        tally = Tally(already_done=0)
        identity = _ledger_identity(ledger)
        # Items of jobs re-attached here are counted there, once, and never sent again
        # while their job has not finished (a resumed run never starts a duplicate).
        handled: set[str] = set()
        for note in self._unfinished(ledger):
            handled.update(self._reattach(note, ledger, tally))
        seen: set[str] = set()
        pending: dict[str, list[str]] = {}
        identities: dict[str, str] = {}  # of the pending items whose source gave one
        for item in items:
            if item.ref in seen or item.ref in handled:
                continue
            seen.add(item.ref)
            if ledger.is_done(item.ref, item.identity):
                tally.already_done += 1
                continue
            cause = self._refusal(item)
            if cause is not None:
                record = failure_of(item.ref, cause, ledger, self.name)
                self._append(ledger, tally, attrs.evolve(record, identity=item.identity))
                continue
            assert isinstance(item.source, S3Object)
            pending.setdefault(s3_ref(item.source.bucket, item.source.key), []).append(item.ref)
            if item.identity is not None:
                identities[item.ref] = item.identity
            if len(pending) >= self.chunk:
                self._submit(pending, identities, identity, ledger, tally)
                pending, identities = {}, {}
        if pending:
            self._submit(pending, identities, identity, ledger, tally)
        ledger.flush()
        return tally.summary()

    def _refusal(self, item: Item) -> str | None:
        """Return why *item* cannot go to bulk analysis, as a cause code, or ``None``."""
        if item.problem is not None:
            return item.problem
        if not isinstance(item.source, S3Object):
            return "not_in_s3"  # bulk analysis reads images where they are in S3 only
        if item.source.version is not None:
            return "versioned_object"  # a manifest line cannot name a version
        if item.size is not None and item.size > REKOGNITION_S3_BYTES:
            return "too_large"
        return None

    def _submit(
        self,
        pending: dict[str, list[str]],
        identities: dict[str, str],
        identity: str,
        ledger: Ledger,
        tally: Tally,
    ) -> None:
        """Read each object's content identity, then analyse the chunk of those readable."""
        heads = self._heads(list(pending))
        known: dict[str, tuple[str, ...]] = {}
        contents: dict[str, str] = {}
        for source_ref, refs in pending.items():
            content = heads[source_ref]
            if isinstance(content, ServiceError):  # a transient failure: try again next run
                for ref in refs:
                    record = failure_of(ref, content.code, ledger, self.name, retryable=True)
                    self._append(ledger, tally, attrs.evolve(record, identity=identities.get(ref)))
                continue
            known[source_ref], contents[source_ref] = tuple(refs), content
        if known:
            chunk = self._chunk(known, contents, identity, ledger)
            mine = {ref: identities[ref] for ref in chunk.item_refs() if ref in identities}
            self._analyse(attrs.evolve(chunk, identities=mine), ledger, tally)

    def _heads(self, sources: list[str]) -> dict[str, str | ServiceError]:
        """Return each object's content identity (``ETag`` and size).

        Many objects of one bucket are read from a bounded listing of their common prefix
        (``ListObjectsV2`` gives the same ``ETag`` and size as ``HeadObject``, 1,000 a
        call); the rest with ``HeadObject``, a few calls at a time.
        """
        found: dict[str, str | ServiceError] = {}
        buckets: dict[str, list[str]] = {}
        for source_ref in sources:
            bucket, _, key = source_ref.removeprefix("s3://").partition("/")
            buckets.setdefault(bucket, []).append(key)
        for bucket, keys in buckets.items():
            if len(keys) >= _LIST_FROM:
                found.update(self._listed(bucket, keys))
        rest = [source_ref for source_ref in sources if source_ref not in found]
        if rest:
            with ThreadPoolExecutor(max_workers=min(_HEADS, len(rest))) as pool:
                found.update(zip(rest, pool.map(self._head, rest), strict=True))
        return found

    def _listed(self, bucket: str, keys: list[str]) -> dict[str, str]:
        """Return ``ETag`` and size of those of *keys* a bounded listing finds.

        The listing covers the keys' common prefix and stops after twice as many entries
        as keys (plus a page): what it did not reach is left to ``HeadObject``, as is
        everything when the listing is refused. A key a whole listing does not hold is
        not there (S3 lists what it holds, strongly consistent).
        """
        wanted = set(keys)
        prefix = os.path.commonprefix(keys)  # noqa: RUF071 (S3 prefixes are characters)
        params: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
        found: dict[str, str] = {}
        budget, seen = 2 * len(keys) + 1000, 0
        try:
            while seen < budget and len(found) < len(wanted):
                page = perform(self.s3, Call("s3", "ListObjectsV2", params))
                entries = page.get("Contents", []) if isinstance(page, Mapping) else []
                for entry in entries if isinstance(entries, list) else []:
                    seen += 1
                    key = entry.get("Key") if isinstance(entry, Mapping) else None
                    if isinstance(key, str) and key in wanted:
                        found[s3_ref(bucket, key)] = _content(entry.get("ETag"), entry.get("Size"))
                token = page.get("NextContinuationToken") if isinstance(page, Mapping) else None
                if not isinstance(token, str) or not token:  # listed whole: the rest is absent
                    found.update((s3_ref(bucket, k), _ABSENT) for k in wanted
                                 if s3_ref(bucket, k) not in found)  # fmt: skip
                    break
                params["ContinuationToken"] = token
        except ServiceError:
            pass  # not allowed to list, say: HeadObject reads them
        return found

    def _head(self, source_ref: str) -> str | ServiceError:
        """Return ``HeadObject``'s ``ETag`` and size of *source_ref* as one string.

        An object that is not there (or not readable) is named so: the job reports it as an
        error, and once it appears its identity differs. A transient failure is returned.
        """
        bucket, _, key = source_ref.removeprefix("s3://").partition("/")
        try:
            head = perform(self.s3, Call("s3", "HeadObject", {"Bucket": bucket, "Key": key}))
        except ServiceError as error:
            if error.code in TRANSIENT_CAUSES:
                return error
            return _ABSENT
        if not isinstance(head, Mapping):
            return _content(None, None)
        return _content(head.get("ETag"), head.get("ContentLength"))

    def _chunk(
        self,
        refs: dict[str, tuple[str, ...]],
        contents: Mapping[str, str],
        identity: str,
        ledger: Ledger,
    ) -> _Chunk:
        """Name a chunk by what it analyses, for which ledger, and how.

        The name (and so the ``ClientRequestToken`` and the manifest's key) covers the
        ledger's identity, the policy, and each object's ``source-ref``, content identity
        (``ETag``, size) and item refs: the same chunk resumed, the same name; a replaced
        object or another ledger, another name, so another job. A chunk whose images failed
        before (a failed job) is named anew (their attempt number moved on), so it is
        analysed again rather than re-attached to the failure.
        """
        digest = hashlib.sha256()
        for key in (identity, ledger.policy_sha256 or "", self.policy.sha256,
                    self.adapter_arn or "", repr(self.policy.min_confidence), self.bucket,
                    self.prefix):  # fmt: skip
            digest.update(key.encode() + b"\0")
        for source_ref, item_refs in refs.items():
            attempt = max(ledger.next_attempt(ref) for ref in item_refs)
            line = json.dumps([source_ref, contents[source_ref], sorted(item_refs), attempt])
            digest.update(line.encode() + b"\n")
        return _Chunk(digest.hexdigest()[:40], dict(refs))

    def _append(self, ledger: Ledger, tally: Tally, record: LedgerRecord) -> None:
        ledger.append(record)
        tally.add(record)

    # -- one job ---------------------------------------------------------------------------

    def _analyse(self, chunk: _Chunk, ledger: Ledger, tally: Tally) -> None:
        manifest = f"{self.prefix}manifests/{chunk.name}.jsonl"
        known = ledger.job(chunk.name)
        if known is not None:  # this very chunk was started by a run that died: re-attach
            self._finish(chunk, known, ledger, tally)
            return
        self._put(manifest, (json.dumps({"source-ref": s}) for s in chunk.refs))
        # The item refs, in manifest order, for a resumed run to record the results under.
        pairs = ([[ref, chunk.identities.get(ref)] for ref in refs] for refs in chunk.refs.values())
        self._put(_refs_key(manifest), (json.dumps(line) for line in pairs))
        try:
            job_id = self._start(chunk, manifest)
        except BulkAnalysisUnavailableError:
            raise
        except ServiceError as error:
            self._fail_all(chunk, ledger, tally, error.code, error.code in TRANSIENT_CAUSES)
            return
        except MalformedResponseError:
            self._fail_all(chunk, ledger, tally, "malformed_response", False)
            return
        ledger.note(_STARTED, name=chunk.name, job_id=job_id, manifest=manifest)
        ledger.record_job(chunk.name, job_id, manifest=manifest, images=len(chunk.refs))
        self._finish(chunk, job_id, ledger, tally)

    def _put(self, key: str, lines: Iterable[str]) -> None:
        body = "".join(line + "\n" for line in lines).encode()
        perform(self.s3, Call("s3", "PutObject", {"Bucket": self.bucket, "Key": key, "Body": body}))

    def _start(self, chunk: _Chunk, manifest: str) -> str:
        config: dict[str, Any] = {"MinConfidence": float(self.policy.min_confidence)}
        if self.adapter_arn is not None:
            config["ProjectVersion"] = self.adapter_arn
        request = {
            "JobName": f"safegen-{chunk.name[:32]}",
            "ClientRequestToken": f"sg-{chunk.name}",
            "OperationsConfig": {"DetectModerationLabels": config},
            "Input": {"S3Object": {"Bucket": self.bucket, "Name": manifest}},
            "OutputConfig": {"S3Bucket": self.bucket, "S3KeyPrefix": f"{self.prefix}results/"},
        }
        delays = self.backoff.delays()
        for attempt in range(1, max(1, int(self.start_attempts)) + 1):
            try:
                answer = _call(self._client, _START, request)
            except ThrottledError as error:
                if error.code != "LimitExceededException" or attempt >= self.start_attempts:
                    raise
                self.sleep(next(delays))
                continue
            job_id = answer.get("JobId")
            if not isinstance(job_id, str) or not job_id:
                raise MalformedResponseError(f"{_START}: no JobId in the answer")
            return job_id
        raise AssertionError("unreachable")  # pragma: no cover

    def _finish(self, chunk: _Chunk, job_id: str, ledger: Ledger, tally: Tally) -> None:
        """Wait for the job, record every image of the chunk, mark the job finished."""
        try:
            job = self._wait(job_id)
        except BulkAnalysisUnavailableError:
            raise
        except ServiceError as error:
            self._fail_all(chunk, ledger, tally, error.code, True)
            if error.code == "Timeout" or error.code in TRANSIENT_CAUSES:
                return  # not finished: a resumed run re-attaches to the job
            # The job is gone (ResourceNotFound: expired) or refused: its images are
            # retried by a fresh job, never re-attached to it for ever.
            ledger.note(_FINISHED, name=chunk.name, job_id=job_id, cause=error.code)
            return
        except MalformedResponseError:
            self._fail_all(chunk, ledger, tally, "malformed_response", True)
            ledger.note(_FINISHED, name=chunk.name, job_id=job_id, cause="malformed_response")
            return
        if job.get("Status") == "FAILED":
            failure = job.get("FailureDetails") or {}
            code = str(failure.get("Code") or "FAILED")
            self._fail_all(chunk, ledger, tally, f"job_{code}", code in _RETRYABLE_JOB_FAILURES)
        elif not self._read(chunk, job, ledger, tally):
            return  # its outputs could not be read for now: re-attached next run
        ledger.note(_FINISHED, name=chunk.name, job_id=job_id)

    def _wait(self, job_id: str) -> Any:
        began = self.clock()
        delays = self.backoff.delays()
        while True:
            try:
                job = _call(self._client, _GET, {"JobId": job_id})
                status = job.get("Status")
                if status not in _RUNNING:
                    if status not in ("SUCCEEDED", "FAILED"):
                        raise MalformedResponseError(f"{_GET}: unknown Status {status!r}")
                    return job
            except ServiceError as error:
                if error.code not in TRANSIENT_CAUSES:
                    raise
            delay = next(delays)
            if self.clock() - began + delay > self.backoff.timeout:
                message = f"job {job_id} did not finish within {self.backoff.timeout:g} s"
                raise ServiceError(message, service="rekognition", operation=_GET, code="Timeout")
            self.sleep(delay)

    def _fail_all(
        self, chunk: _Chunk, ledger: Ledger, tally: Tally, cause: str, retryable: bool
    ) -> None:
        cause = cause if _checks_code(cause) else "job_failed"
        for ref in chunk.item_refs():
            if not chunk.settled(ledger, ref):
                record = failure_of(ref, cause, ledger, self.name, retryable=retryable)
                self._append(ledger, tally, chunk.stamped(record))

    # -- reading the outputs ---------------------------------------------------------------

    def _read(self, chunk: _Chunk, job: Mapping[str, Any], ledger: Ledger, tally: Tally) -> bool:
        """Record every image of a SUCCEEDED job; return whether the job is finished with.

        Outputs that are gone or unreadable fail the images not yet recorded (retryable:
        a fresh job analyses them next run); a transient failure to read them leaves the
        job to be re-attached (``False``).
        """
        left = dict(chunk.refs)  # source-ref -> item refs, until a line speaks for them
        try:
            results = _output_key(job, "Results")
            summary = _output_key(job, "ManifestSummary")
        except MalformedResponseError:
            self._fail_all(chunk, ledger, tally, "malformed_response", False)
            return True
        try:
            for number, line in enumerate(self._lines(summary), start=1):
                self._summary(line, number, left, chunk, ledger, tally)
            for line in self._lines(results):
                self._result(line, left, chunk, ledger, tally)
        except BulkAnalysisUnavailableError:
            raise
        except ServiceError as error:
            transient = error.code in TRANSIENT_CAUSES
            self._fail_all(chunk, ledger, tally,
                           error.code if transient else "job_outputs_missing", True)  # fmt: skip
            return not transient
        except MalformedResponseError:
            self._fail_all(chunk, ledger, tally, "job_outputs_unreadable", True)
            return True
        for refs in left.values():  # the job said nothing about it: not checked
            for ref in refs:
                if not chunk.settled(ledger, ref):
                    record = failure_of(ref, "missing_from_results", ledger, self.name)
                    self._append(ledger, tally, chunk.stamped(record))
        return True

    def _lines(self, where: tuple[str, str]) -> Iterator[bytes]:
        bucket, key = where
        answer = perform(self.s3, Call("s3", "GetObject", {"Bucket": bucket, "Key": key}))
        body = answer["Body"]
        try:
            # Read in blocks: a line over the limit is refused without ever being held whole.
            for line in bounded_lines(body.iter_chunks(_BLOCK), _MAX_RESULT_LINE + 1):
                if line == b"\0":  # what bounded_lines yields for a line over the limit
                    raise MalformedResponseError(f"s3://{bucket}/{key}: a line over 1 MiB")
                if line.strip():
                    yield line.rstrip(b"\r\n")
        finally:
            body.close()

    def _summary(
        self,
        line: bytes,
        number: int,
        left: dict[str, tuple[str, ...]],
        chunk: _Chunk,
        ledger: Ledger,
        tally: Tally,
    ) -> None:
        try:
            data = json.loads(line)
        except ValueError:
            return  # a summary we cannot read: its images are "missing_from_results"
        errors = data.get("errors") if isinstance(data, dict) else None
        for error in errors if isinstance(errors, list) else []:
            if not isinstance(error, dict):
                continue
            refs = left.pop(str(error.get("source-ref")), ())
            code = str(error.get("code") or "manifest_error")
            cause = code if _checks_code(code) else "manifest_error"
            for ref in refs:
                if not chunk.settled(ledger, ref):
                    record = failure_of(ref, cause, ledger, self.name)
                    self._append(ledger, tally, chunk.stamped(record))

    def _result(
        self,
        line: bytes,
        left: dict[str, tuple[str, ...]],
        chunk: _Chunk,
        ledger: Ledger,
        tally: Tally,
    ) -> None:
        try:
            data = json.loads(line)
        except ValueError:
            return
        if not isinstance(data, dict):
            return
        # Only lines naming an object of this chunk's manifest count, each once.
        for ref in left.pop(str(data.get("source-ref")), ()):
            if not chunk.settled(ledger, ref):
                self._append(ledger, tally, chunk.stamped(self._judged(ref, data, ledger)))

    def _judged(self, ref: str, data: Mapping[str, Any], ledger: Ledger) -> LedgerRecord:
        """Judge one result line by the policy: the record of *ref*."""
        try:
            answer = data.get("detect-moderation-labels")
            response = parse_moderation_response(answer if isinstance(answer, Mapping) else {})
            report = ImageReport(
                labels=response.labels,
                content_types=response.content_types,
                model_version=response.model_version,
                adapter_version=response.project_version,
            )
            decision = self.policy.evaluate(report.labels, report.content_types)
        except MalformedResponseError:
            return failure_of(ref, "malformed_result", ledger, self.name)
        verdict = ImageVerdict(decision.action, decision, report, backend=self.name,
                               policy_sha256=self.policy.sha256,
                               policy_version=self.policy.version)  # fmt: skip
        return record_of(ref, verdict, ledger, self.name)

    # -- resuming --------------------------------------------------------------------------

    def _unfinished(self, ledger: Ledger) -> list[dict[str, Any]]:
        """Return the notes of jobs earlier runs started and did not finish, oldest first."""
        finished = {note.get("name") for note in ledger.notes(_FINISHED)}
        found: dict[str, dict[str, Any]] = {}
        for note in ledger.notes(_STARTED):
            name = note.get("name")
            if isinstance(name, str) and name not in finished:
                found.setdefault(name, note)
        return list(found.values())

    def _reattach(self, note: Mapping[str, Any], ledger: Ledger, tally: Tally) -> set[str]:
        """Finish a job an earlier run started: its images, from its manifest, get records.

        Return the item refs of the job (this run leaves them to it). A job whose manifest
        is gone or unreadable is noted finished: its images, still unsettled, come round
        in the run's items and are analysed afresh (or re-attached, by the ledger, to the
        same job when nothing about them changed).
        """
        name, job_id, manifest = note.get("name"), note.get("job_id"), note.get("manifest")
        if not (isinstance(name, str) and isinstance(job_id, str) and isinstance(manifest, str)):
            return set()
        try:
            chunk = _Chunk(name, *self._manifest(manifest))
        except BulkAnalysisUnavailableError:
            raise
        except (ServiceError, MalformedResponseError) as error:
            cause = getattr(error, "code", None) or "malformed_manifest"
            ledger.note(_FINISHED, name=name, job_id=job_id, cause="job_inputs_missing",
                        detail=cause if _checks_code(cause) else "unreadable")  # fmt: skip
            return set()
        self._finish(chunk, job_id, ledger, tally)
        return set(chunk.item_refs())

    def _manifest(self, manifest: str) -> tuple[dict[str, tuple[str, ...]], dict[str, str]]:
        """Read a chunk's manifest and its item refs back from S3.

        :raises MalformedResponseError: they are not the engine's, or do not match.
        :raises ServiceError: they cannot be read.
        """
        try:
            sources = [
                json.loads(line)["source-ref"] for line in self._lines((self.bucket, manifest))
            ]
            lines = self._lines((self.bucket, _refs_key(manifest)))
            pairs = [_refs_line(json.loads(line)) for line in lines]
        except (ValueError, TypeError, KeyError) as error:
            message = f"s3://{self.bucket}/{manifest}: not a manifest this engine wrote"
            raise MalformedResponseError(message) from error
        if len(pairs) != len(sources) or not all(isinstance(s, str) for s in sources):
            raise MalformedResponseError(f"s3://{self.bucket}/{manifest}: refs do not match")
        refs = {
            source: tuple(ref for ref, _ in line)
            for source, line in zip(sources, pairs, strict=True)
        }
        identities = {ref: found for line in pairs for ref, found in line if found is not None}
        return refs, identities


def _content(etag: object, size: object) -> str:
    """One object's content identity: its ``ETag`` and size, however they were read."""
    return f"{etag!s}:{size!s}"


def _refs_line(value: object) -> list[tuple[str, str | None]]:
    """Read one line of a ``.refs.jsonl``: ``[ref, identity]`` pairs.

    Older runs wrote a list of refs, or one ref: read as refs without an identity.
    """
    entries = [value] if isinstance(value, str) else value
    if not isinstance(entries, list) or not entries:
        raise ValueError("not a list of item refs")
    found: list[tuple[str, str | None]] = []
    for entry in entries:
        ref, identity = (entry, None) if isinstance(entry, str) else (entry[0], entry[1])
        if not isinstance(ref, str) or not (identity is None or isinstance(identity, str)):
            raise ValueError("not an item ref")
        found.append((ref, identity))
    return found


def _ledger_identity(ledger: Ledger) -> str:
    """Return the ledger's own random id (written as a note the first time it is asked).

    Chunk names include it, so a job one ledger started is never taken up by another.
    """
    for note in ledger.notes(_IDENTITY):
        found = note.get("id")
        if isinstance(found, str) and found:
            return found
    identity = secrets.token_hex(16)
    ledger.note(_IDENTITY, id=identity)
    return identity


def _refs_key(manifest: str) -> str:
    return manifest.removesuffix(".jsonl") + ".refs.jsonl"


def _checks_code(value: str) -> bool:
    return 1 <= len(value) <= 128 and all(c.isalnum() or c in "_.:-" for c in value)


def _output_key(job: Mapping[str, Any], member: str) -> tuple[str, str]:
    """Return ``(bucket, key)`` of a job's output, as the job names it."""
    output = job.get(member)
    s3 = output.get("S3Object") if isinstance(output, Mapping) else None
    bucket = s3.get("Bucket") if isinstance(s3, Mapping) else None
    key = s3.get("Name") if isinstance(s3, Mapping) else None
    if not isinstance(bucket, str) or not isinstance(key, str) or not bucket or not key:
        raise MalformedResponseError(f"{_GET}: a SUCCEEDED job names no {member}.S3Object")
    return bucket, key
