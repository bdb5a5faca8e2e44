"""The engine seam and the client-side engine (:class:`ClientEngine`)."""

from __future__ import annotations

import os
import queue
import re
import stat
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import attrs

from safegen import _checks
from safegen.batch._ledger import Ledger, now
from safegen.batch._records import Item, LedgerRecord
from safegen.batch._summary import BatchSummary, Tally
from safegen.errors import ConfigurationError
from safegen.reports import S3Object

if TYPE_CHECKING:
    from safegen.cascade import Cascade
    from safegen.image import ImageModerator, ImageVerdict

REKOGNITION_S3_BYTES = 15 * 1024 * 1024
"""Rekognition's limit for an image it reads from S3 (15 MB): larger ones are not sent."""

#: Cause codes of failures that pass: a resumed run checks those items again.
TRANSIENT_CAUSES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestThrottledException",
        "ProvisionedThroughputExceededException",
        "LimitExceededException",
        "InternalServerException",
        "InternalServerError",
        "InternalFailure",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "ResourceUnavailableException",
        "ResourceNotReadyException",
        "EndpointConnectionError",
        "ConnectionClosedError",
        "ConnectTimeoutError",
        "ReadTimeoutError",
        "ConnectionError",
        "ProtocolError",
        "ResponseParserError",
        "TimeoutError",
    }
)
_THROTTLING = frozenset(c for c in TRANSIENT_CAUSES if "Throttl" in c or "Exceeded" in c)
_CAUSE = re.compile(r"failed \(([A-Za-z0-9_.:\-]{1,128})\)")
_PACED_ATTEMPTS = 3


@runtime_checkable
class Engine(Protocol):
    """Moderates a batch: every item not in ``ledger.done`` gets exactly one final record."""

    def run(self, items: Iterable[Item], ledger: Ledger) -> BatchSummary:
        """Check *items*, skipping those the ledger has settled; return the counts."""
        ...


def cause_of(error: str | None) -> str:
    """Return a verdict error's cause code (``"ThrottlingException"``), never its free text."""
    if error is None:
        return "unknown"
    found = _CAUSE.search(error)
    return found.group(1) if found else "check_failed"


def record_of(item_ref: str, verdict: ImageVerdict, ledger: Ledger, engine: str) -> LedgerRecord:
    """Turn a verdict into the ledger record of *item_ref* (labels as taxonomy paths).

    A checked record names the policy the *verdict* says judged it, never merely the
    ledger's: a decision by any other policy (or by one the verdict does not name) is
    recorded as failed (``policy_mismatch``), so the ledger cannot claim a policy that did
    not decide. A failed verdict decided nothing: it keeps its cause.
    """
    report = verdict.report
    if not verdict.failed and verdict.policy_sha256 != ledger.policy_sha256:
        return failure_of(item_ref, "policy_mismatch", ledger, engine)
    base = LedgerRecord(
        item_ref,
        "checked",
        verdict.action.value,
        policy_sha256=ledger.policy_sha256,
        policy_version=ledger.policy_version,
        engine=engine,
        attempt=ledger.next_attempt(item_ref),
        at=now(),
        model_version=None if report is None else report.model_version,
    )
    if verdict.failed:
        cause = cause_of(verdict.error)
        return attrs.evolve(
            base, outcome="failed", error=cause, retryable=cause in TRANSIENT_CAUSES
        )
    decision = verdict.decision
    labels = () if decision is None else ("/".join(v.category.path) for v in decision.violations)
    return attrs.evolve(base, labels=sorted(set(labels)))


def failure_of(
    item_ref: str,
    cause: str,
    ledger: Ledger,
    engine: str,
    *,
    retryable: bool = False,
    action: str = "block",
) -> LedgerRecord:
    """Return the record of an item that could not be checked, for *cause* (a code)."""
    return LedgerRecord(
        item_ref,
        "failed",
        action,
        error=cause,
        policy_sha256=ledger.policy_sha256,
        policy_version=ledger.policy_version,
        engine=engine,
        attempt=ledger.next_attempt(item_ref),
        at=now(),
        retryable=retryable,
    )


def skipped_of(item_ref: str, reason: str, ledger: Ledger, engine: str) -> LedgerRecord:
    """Return the record of an item its source deliberately does not moderate (*reason*)."""
    return LedgerRecord(
        item_ref,
        "skipped",
        None,
        error=reason,
        policy_sha256=ledger.policy_sha256,
        policy_version=ledger.policy_version,
        engine=engine,
        attempt=ledger.next_attempt(item_ref),
        at=now(),
    )


def unchecked_of(item: Item, ledger: Ledger, engine: str, max_bytes: int) -> LedgerRecord | None:
    """Return the record of an item settled without a check (skipped, or failed as listed).

    ``None`` when the item is to be checked.
    """
    if item.skip and item.problem is not None:
        return skipped_of(item.ref, item.problem, ledger, engine)
    if item.problem is not None or (item.size is not None and item.size > max_bytes):
        return failure_of(item.ref, item.problem or "too_large", ledger, engine)
    return None


class _UnreadableError(Exception):
    """A local file that cannot be read; the message is a cause code."""


def read_local(path: Path, limit: int) -> bytes:
    """Read a regular file of at most *limit* bytes (never more than *limit* + 1).

    :raises _UnreadableError: with a cause code (``not_a_file``, ``too_large``, ...).
    """
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        raise _UnreadableError("unreadable") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise _UnreadableError("not_a_file")
        chunks, total = [], 0
        while total <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
    except OSError:
        raise _UnreadableError("unreadable") from None
    finally:
        os.close(fd)
    if total > limit:
        raise _UnreadableError("too_large")
    return b"".join(chunks)


_END = object()


def _ahead(items: Iterable[Item], size: int) -> Iterator[Item]:
    """Yield *items*, drawn up to *size* ahead by a thread (a slow listing overlaps the checks).

    An exception in the source is raised here, where the item would have been; when the
    consumer stops early, the thread stops at its next item.
    """
    buffer: queue.Queue[object] = queue.Queue(maxsize=size)
    stop = threading.Event()

    def fill() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        buffer.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            buffer.put(_END)
        except BaseException as error:  # handed to the consumer, raised there
            buffer.put(error)

    thread = threading.Thread(target=fill, name="safegen-batch-source", daemon=True)
    thread.start()
    try:
        while True:
            got = buffer.get()
            if got is _END:
                return
            if isinstance(got, BaseException):
                raise got
            yield got  # type: ignore[misc]
    finally:
        stop.set()


class _Pacer:
    """At most *per_second* starts a second, evenly spaced, across threads."""

    def __init__(self, per_second: float) -> None:
        self._interval = 1.0 / per_second
        self._next = time.monotonic()
        self._lock = threading.Lock()

    def wait(self) -> None:
        with self._lock:
            current = time.monotonic()
            start = max(current, self._next)
            self._next = start + self._interval
        if start > current:
            time.sleep(start - current)


def _positive_int(_: object, attribute: attrs.Attribute[int], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(f"{attribute.name}: must be a whole number >= 1")


def _rate(_: object, attribute: attrs.Attribute[float | None], value: object) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1e6:
        raise ConfigurationError(f"{attribute.name}: must be a positive number of requests")


def _moderator(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not callable(getattr(value, "moderate", None)):
        raise ConfigurationError(
            f"{attribute.name}: expected an ImageModerator or a Cascade, got {type(value).__name__}"
        )


@attrs.frozen
class ClientEngine:
    """Moderate a batch from this process: a moderator, paced to a quota, a few at a time.

    Items are drawn from the source as they are needed (at most ``2 * workers`` in flight),
    so memory does not grow with the number of items. Each outcome is appended to the
    ledger as it completes.

    :param moderator: an :class:`~safegen.ImageModerator` or a :class:`~safegen.Cascade`.
        Each image is judged by the ledger's policy (``moderate(image,
        policy=ledger.policy)``), whatever the moderator's own, so every record names the
        policy that decided it.
    :param workers: images checked at a time.
    :param per_second: start at most this many checks a second, evenly spaced (the
        backend's quota, e.g. Rekognition's TPS); a check throttled anyway waits a turn
        again, 3 tries in all, then is recorded as a retryable failure.
    :param max_bytes: an item larger than this (by its listed size, or as read) is recorded
        as failed (``too_large``) without being sent: 15 MB, Rekognition's S3 limit, by
        default.
    :param fetch: read an :class:`~safegen.S3Object`'s bytes (for a local backend, which
        cannot read S3); without it, S3 objects go to the backend as they are (Rekognition
        reads them in place).
    :param name: the engine's name in the ledger.
    :param prefetch: items drawn from the source ahead of the checks, by a thread of their
        own, so that listing the next page of an S3 prefix never stalls the checks (and the
        quota goes unused). Memory stays bounded by it.
    """

    moderator: ImageModerator | Cascade = attrs.field(validator=_moderator)
    workers: int = attrs.field(default=4, kw_only=True, validator=_positive_int)
    per_second: float | None = attrs.field(default=None, kw_only=True, validator=_rate)
    max_bytes: int = attrs.field(
        default=REKOGNITION_S3_BYTES, kw_only=True, validator=_positive_int
    )
    fetch: Callable[[S3Object, int], bytes] | None = attrs.field(
        default=None, kw_only=True, validator=_checks.optional(attrs.validators.is_callable())
    )
    name: str = attrs.field(default="client", kw_only=True)
    prefetch: int = attrs.field(default=1000, kw_only=True, validator=_positive_int)

    def run(self, items: Iterable[Item], ledger: Ledger) -> BatchSummary:
        """Check every item the ledger has not settled; return this run's counts.

        An item is skipped when the ledger has a final record for its ref made for the
        same content identity (:meth:`Ledger.is_done`); each record carries the item's
        identity, so a file replaced under the same name is checked again.

        Memory: at most ``2 * workers`` items in flight, whatever the source's size; the
        ledger keeps the refs it has settled, with their identities (about 200 bytes each).
        """
        tally = Tally(already_done=0)
        pacer = None if self.per_second is None else _Pacer(self.per_second)
        in_flight: set[str] = set()
        todo = self._todo(_ahead(items, self.prefetch), ledger, tally, in_flight)
        with ThreadPoolExecutor(self.workers, thread_name_prefix="safegen-batch") as pool:
            pending: dict[Future[LedgerRecord], Item] = {}
            while True:
                for item in todo:
                    in_flight.add(item.ref)
                    pending[pool.submit(self._check, item, ledger, pacer)] = item
                    if len(pending) >= 2 * self.workers:
                        break
                if not pending:
                    break
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    item = pending.pop(future)
                    in_flight.discard(item.ref)
                    record = attrs.evolve(future.result(), identity=item.identity)
                    ledger.append(record)
                    tally.add(record)
        ledger.flush()
        return tally.summary()

    def _todo(
        self, items: Iterable[Item], ledger: Ledger, tally: Tally, in_flight: set[str]
    ) -> Iterator[Item]:
        for item in items:
            if ledger.is_done(item.ref, item.identity):
                tally.already_done += 1  # an earlier run's, or a duplicate in the source
                continue
            if item.ref in in_flight:  # a duplicate being checked right now: once is enough
                continue
            record = unchecked_of(item, ledger, self.name, self.max_bytes)
            if record is not None:
                ledger.append(attrs.evolve(record, identity=item.identity))
                tally.add(record)
                continue
            yield item

    def _check(self, item: Item, ledger: Ledger, pacer: _Pacer | None) -> LedgerRecord:
        try:
            image = self._image(item)
        except _UnreadableError as error:
            return failure_of(item.ref, str(error), ledger, self.name)
        except Exception as error:  # reading S3 failed: a cause code, never the message
            cause = str(getattr(error, "code", type(error).__name__))
            cause = cause if re.fullmatch(r"[A-Za-z0-9_.:\-]{1,128}", cause) else "read_failed"
            transient = cause in TRANSIENT_CAUSES
            return failure_of(item.ref, cause, ledger, self.name, retryable=transient)
        for turn in range(_PACED_ATTEMPTS):
            if pacer is not None:
                pacer.wait()
            try:
                verdict = self.moderator.moderate(image, policy=ledger.policy)
            except Exception as error:  # a moderator that raises must not lose the others
                return failure_of(item.ref, type(error).__name__, ledger, self.name)
            if not verdict.failed or pacer is None or turn == _PACED_ATTEMPTS - 1:
                break
            if cause_of(verdict.error) not in _THROTTLING:
                break
        return record_of(item.ref, verdict, ledger, self.name)

    def _image(self, item: Item) -> bytes | S3Object:
        source = item.source
        if isinstance(source, Path):
            return read_local(source, self.max_bytes)
        if isinstance(source, S3Object):
            if self.fetch is None:
                return source
            return self.fetch(source, self.max_bytes)
        if source is None:
            raise _UnreadableError("no_source")
        if len(source) > self.max_bytes:
            raise _UnreadableError("too_large")
        return source
