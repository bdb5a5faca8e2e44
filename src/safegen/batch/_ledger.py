"""The ledger: a batch's results, one JSON line per event, and its checkpoint.

A ledger is append-only JSON Lines. Every line is an object with a ``kind``:

``item``
    a :class:`~safegen.batch.LedgerRecord`: what happened to one item.
``run``
    a run began (engine, policy): written when the ledger is opened.
``job``
    an engine's long-running job (a Rekognition bulk-analysis job, say), so a resumed run
    re-attaches to it (:meth:`Ledger.job`) instead of starting a duplicate.
anything else
    an engine's or a tool's own notes (:meth:`Ledger.note`), such as the training-data
    filter's moves (intent, then done).

Where the lines live is a :class:`LedgerStorage`: a local file (:class:`LocalLedgerFile`:
locked while open; each record written before :meth:`Ledger.append` returns, so a killed
process loses none; ``fsync``-ed at most a second apart while records come, and on close)
or S3 (:class:`safegen.aws.s3.S3LedgerStorage`, appended in small batches of conditional
writes). Whatever a crash loses was never recorded, so it is checked again: lost work, never
a lost or duplicated item. A line without its newline at the end of a local file is what a crash
mid-write leaves: it is cut away when the ledger is opened, and its item is checked again.
"""

from __future__ import annotations

import datetime
import fcntl
import json
import math
import os
import stat
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from collections.abc import Set as AbstractSet
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, runtime_checkable

from safegen.batch._records import LedgerRecord
from safegen.errors import SafegenError
from safegen.policy import ModerationPolicy

MAX_LINE_BYTES = 1024 * 1024
"""The longest ledger line read: a longer one is not a line safegen wrote."""


class LedgerError(SafegenError):
    """A ledger that cannot be used: locked by another run, damaged, or misused."""


class LedgerPolicyError(LedgerError):
    """A ledger resumed with another policy than the one its records were judged by."""


@runtime_checkable
class LedgerStorage(Protocol):
    """Where a ledger's lines live; :class:`LocalLedgerFile` and the S3 form implement it."""

    @property
    def name(self) -> str:
        """Where the ledger is, for messages (``"s3://bucket/key"``, a path)."""

    def lines(self) -> Iterator[bytes]:
        """Yield the complete lines written so far, oldest first (a torn last one left out)."""

    def write(self, data: bytes) -> None:
        """Append *data* (whole lines) durably: when this returns, they survive a crash."""

    def close(self) -> None:
        """Release the storage (and its lock)."""


def _not_finite(text: str) -> float:
    raise ValueError(f"{text} is not a number")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of range")
    return value


class LedgerBusyError(LedgerError):
    """Another run holds the ledger's lock."""


class LedgerFileError(LedgerError):
    """A local ledger path that cannot be used.

    :ivar reason: why, in a few words (``"a FIFO, not a regular file"``,
        ``"cannot open: Permission denied"``), without the path.
    """

    def __init__(self, shown: str, reason: str) -> None:
        super().__init__(f"the ledger {shown}: {reason}")
        self.reason = reason


def file_kind(mode: int) -> str | None:
    """Say what a file that is not a regular file is (``"a FIFO"``); ``None`` for a regular one."""
    if stat.S_ISREG(mode):
        return None
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    ):
        if test(mode):
            return name
    return "not a regular file"


Tail = Callable[[bytes], bool]
"""Decides about a last line without its newline: ``True`` keep it (a newline is added),
``False`` cut it away; raise to refuse the file."""


class LocalLedgerFile:
    """A ledger in a local file, locked (``flock``) for as long as it is open.

    Looked at (``stat``) before it is opened, and opened only if it is a regular file or
    missing (then created), never blocking (a FIFO swapped in is refused too). A last line
    without its newline is a crash mid-write: cut away (see :meth:`lines`). Each
    :meth:`write` reaches the file at once, so a killed process (even ``kill -9``) loses
    nothing written; a write is ``fsync``-ed when *sync_seconds* have passed since the last
    ``fsync``, and :meth:`close` syncs, so a power cut loses at most the records since the
    last ``fsync``, which a resumed run checks again. ``sync_seconds=0`` syncs every write.
    ``safegen scan`` keeps its results in one of these too.

    :raises LedgerFileError: the path is not a regular file, or cannot be opened or locked.
    :raises LedgerBusyError: another run holds its lock.
    """

    def __init__(self, path: str | os.PathLike[str], *, sync_seconds: float = 1.0) -> None:
        self._path = Path(path)
        self._sync_seconds = sync_seconds
        self._synced = time.monotonic()
        shown = os.fsdecode(self._path)
        try:
            kind = file_kind(os.stat(self._path).st_mode)
        except FileNotFoundError:
            kind = None
        except OSError as error:
            raise LedgerFileError(shown, f"cannot read: {error.strerror}") from None
        if kind is not None:
            raise LedgerFileError(shown, f"{kind}, not a regular file")
        flags = os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_NONBLOCK
        flags |= getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOCTTY", 0)
        try:
            self._fd = os.open(self._path, flags, 0o666)
        except OSError as error:
            raise LedgerFileError(shown, f"cannot open: {error.strerror}") from None
        try:
            kind = file_kind(os.fstat(self._fd).st_mode)  # replaced after the look
            if kind is not None:
                raise LedgerFileError(shown, f"{kind}, not a regular file")
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise LedgerBusyError(
                    f"another run is writing to the ledger {shown}: let it finish, or choose "
                    "another ledger"
                ) from None
            except OSError as error:  # a filesystem without locks: refuse rather than risk it
                raise LedgerFileError(shown, f"cannot lock: {error.strerror}") from None
        except BaseException:
            os.close(self._fd)
            raise

    @property
    def name(self) -> str:
        """The path, as given."""
        return os.fsdecode(self._path)

    def fileno(self) -> int:
        """Return the open file's descriptor (it holds the lock)."""
        return self._fd

    def lines(self, tail: Tail | None = None) -> Iterator[bytes]:
        """Yield the complete lines, oldest first; repair the last one if it has no newline.

        A last line without its newline is cut away (the file truncated before it), unless
        *tail* says to keep it (then it gets its newline, and is yielded). A line longer
        than ``MAX_LINE_BYTES`` is refused.

        :raises LedgerError: a line is too long (or *tail*'s own error).
        """
        offset = 0
        with open(self._fd, "rb", closefd=False) as stream:
            stream.seek(0)
            while line := stream.readline(MAX_LINE_BYTES + 1):
                if len(line) > MAX_LINE_BYTES:
                    raise LedgerError(f"a line longer than {MAX_LINE_BYTES:,} bytes")
                if not line.endswith(b"\n"):
                    if tail is not None and tail(line):
                        os.write(self._fd, b"\n")  # O_APPEND: at the end
                        yield line + b"\n"
                    else:
                        os.ftruncate(self._fd, offset)  # torn by a crash: redo that item
                    os.fsync(self._fd)
                    return
                offset += len(line)
                yield line

    def write(self, data: bytes) -> None:
        """Append *data*; ``fsync`` it if the last ``fsync`` is *sync_seconds* old."""
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        if time.monotonic() - self._synced >= self._sync_seconds:
            os.fsync(self._fd)
            self._synced = time.monotonic()

    def close(self) -> None:
        """``fsync`` and close the file, which releases the lock."""
        if self._fd >= 0:
            try:
                os.fsync(self._fd)
            finally:
                os.close(self._fd)
                self._fd = -1


class _DoneView(AbstractSet[str]):
    """A read-only view of a ledger's settled refs."""

    def __init__(self, done: set[str], lock: threading.RLock) -> None:
        self._set, self._lock = done, lock

    def __contains__(self, ref: object) -> bool:
        with self._lock:
            return ref in self._set

    def __iter__(self) -> Iterator[str]:
        with self._lock:
            return iter(list(self._set))

    def __len__(self) -> int:
        with self._lock:
            return len(self._set)

    def __repr__(self) -> str:
        return f"<{len(self)} refs done>"


def now() -> str:
    """Return the current time in UTC, ISO 8601, to the second: a record's ``at``."""
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def _storage(where: str | os.PathLike[str] | LedgerStorage) -> LedgerStorage:
    if isinstance(where, LedgerStorage):
        return where
    if isinstance(where, str) and where.startswith("s3://"):
        raise LedgerError(
            f"{where}: open an S3 ledger with safegen.aws.s3.open_ledger(client, url, ...)"
        )
    return LocalLedgerFile(where)


class Ledger:
    """A batch's results and checkpoint: open it, skip :attr:`done`, :meth:`append` the rest.

    Open with :meth:`open`; use as a context manager (closing flushes what is buffered and
    releases the lock). Thread-safe. :meth:`append` refuses a second final record for a ref,
    so no item is ever recorded twice, whichever engine writes.
    """

    def __init__(
        self,
        storage: LedgerStorage,
        *,
        policy: ModerationPolicy,
        engine: str,
        flush_every: int = 1,
    ) -> None:
        self._storage = storage
        self.policy = policy
        """The policy this run judges by: engines hand it to the moderator with each check."""
        self.policy_sha256 = policy.sha256
        self.policy_version = policy.version
        self.engine = engine
        self._flush_every = max(1, flush_every)
        self._lock = threading.RLock()
        self._pending: list[bytes] = []
        self._done: set[str] = set()
        self._identities: dict[str, str | None] = {}  # the current final record's, per ref
        self._flagged: dict[str, LedgerRecord] = {}
        self._attempts: dict[str, int] = {}
        self._jobs: dict[str, tuple[str, dict[str, Any]]] = {}
        self._notes: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.resumed = 0
        """How many items earlier runs settled (in :attr:`done` when this run began)."""
        self._closed = False

    @classmethod
    def open(
        cls,
        where: str | os.PathLike[str] | LedgerStorage,
        *,
        policy: ModerationPolicy,
        engine: str,
        flush_every: int | None = None,
    ) -> Ledger:
        """Open (or create) the ledger at *where* and read what earlier runs recorded.

        :param where: a local path, or a :class:`LedgerStorage` (for S3:
            :func:`safegen.aws.s3.open_ledger`).
        :param policy: the policy this run judges by; a ledger whose records another
            policy judged is refused.
        :param engine: the engine's name, recorded on the ``run`` line.
        :param flush_every: write every this many lines at once. Default: 1 for a local
            file (each record written at once, ``fsync``-ed a second apart at most), 100
            for S3 (one object per batch). Records not yet written when the process dies
            are checked again on resume.
        :raises LedgerPolicyError: the ledger holds records of another policy.
        :raises LedgerError: it is locked by another run, or a line is not one safegen
            wrote (naming the line).
        """
        storage = _storage(where)
        if flush_every is None:
            flush_every = getattr(storage, "flush_every", 1)
        ledger = cls(storage, policy=policy, engine=engine, flush_every=flush_every)
        try:
            ledger._load()
            ledger._write_line({"kind": "run", "engine": engine, **ledger._policy(), "at": now()})
            ledger.flush()
        except BaseException:
            storage.close()
            raise
        return ledger

    def _policy(self) -> dict[str, Any]:
        return {"policy_sha256": self.policy_sha256, "policy_version": self.policy_version}

    def _load(self) -> None:
        name = self._storage.name
        for number, line in enumerate(self._storage.lines(), start=1):
            if not line.strip():
                continue
            try:
                data = json.loads(line, parse_constant=_not_finite, parse_float=_finite)
                if (
                    not isinstance(data, dict)
                    or not isinstance(data.get("kind"), str)
                    or not data["kind"]
                ):
                    raise ValueError("not a ledger line")
                self._read(data)
            except LedgerPolicyError:
                raise
            except (ValueError, TypeError, RecursionError) as error:
                reason = type(error).__name__ if not isinstance(error, ValueError) else "damaged"
                raise LedgerError(
                    f"{name} line {number}: not a ledger line safegen wrote ({reason}); move "
                    "it aside or choose another ledger"
                ) from None
        self.resumed = len(self._done)

    def _read(self, data: dict[str, Any]) -> None:
        kind = data["kind"]
        record = LedgerRecord.from_dict(data) if kind == "item" else None
        if kind == "run" and not isinstance(data.get("policy_sha256"), str):
            raise ValueError("a run line without its policy")
        if kind in ("item", "run"):
            theirs = data.get("policy_sha256")
            if theirs != self.policy_sha256:
                raise LedgerPolicyError(
                    f"{self._storage.name} holds results judged by another policy "
                    f"(version {data.get('policy_version')!s}, sha256 {str(theirs)[:12]}), not "
                    f"this one (version {self.policy_version!s}, sha256 "
                    f"{self.policy_sha256[:12]}): they would be skipped unjudged; choose another "
                    "ledger, or resume with the policy they were judged by"
                )
        if record is not None:
            self._settle(record)
        elif kind == "job":
            name, job_id = data.get("name"), data.get("job_id")
            details = data.get("details", {})
            if not isinstance(name, str) or not isinstance(job_id, str):
                raise ValueError("a job line without its name and id")
            self._jobs[name] = (job_id, details if isinstance(details, dict) else {})
        elif kind != "run":
            self._notes[kind].append(data)

    @property
    def name(self) -> str:
        """Where the ledger is."""
        return self._storage.name

    @property
    def done(self) -> AbstractSet[str]:
        """The refs with a final record: skip these.

        A live, read-only view (``ref in ledger.done`` costs O(1), nothing is copied); it
        grows as records are appended.
        """
        return _DoneView(self._done, self._lock)

    def is_done(self, ref: str, identity: str | None = None) -> bool:
        """Whether *ref* has a final record (for *identity*, when the source knows it).

        With an *identity* (the item's ``identity``), the ref is done only if
        its current final record was made for that same identity: a replaced file (another
        size, time, ETag) is not done, and is checked again. A record made without an
        identity cannot vouch for one, so it does not settle an item that has one.
        """
        with self._lock:
            if ref not in self._done:
                return False
            return identity is None or self._identities.get(ref) == identity

    def next_attempt(self, ref: str) -> int:
        """Return the ``attempt`` number for the next record of *ref*."""
        with self._lock:
            return self._attempts.get(ref, 0) + 1

    def append(self, record: LedgerRecord) -> None:
        """Record what happened to an item; written at once (locally; S3 in batches).

        A final record for a ref settled under another content identity supersedes the
        earlier one (the file was replaced): the ref keeps exactly one *current* final
        record, the last.

        :raises LedgerError: *ref* has a final record already for this identity (no item is
            recorded twice), or the record names another policy than the ledger's.
        """
        if record.policy_sha256 != self.policy_sha256:
            raise LedgerError(f"{record.ref!r}: a record of another policy than the ledger's")
        with self._lock:
            if record.ref in self._done and (
                record.identity is None or record.identity == self._identities.get(record.ref)
            ):
                raise LedgerError(f"{record.ref!r} has a final record already")
            self._write_line(record.to_dict())
            self._settle(record)

    def _settle(self, record: LedgerRecord) -> None:
        if record.final:  # a settled ref needs no attempt count: no record follows
            self._attempts.pop(record.ref, None)
            self._done.add(record.ref)
            if record.identity is None:
                self._identities.pop(record.ref, None)
            else:
                self._identities[record.ref] = record.identity
            if record.action not in (None, "allow"):
                self._flagged[record.ref] = record
            else:  # superseding a flagged record of replaced content
                self._flagged.pop(record.ref, None)
        else:
            self._attempts[record.ref] = max(self._attempts.get(record.ref, 0), record.attempt)

    def flagged(self) -> tuple[LedgerRecord, ...]:
        """Return the final records whose action is not ``allow``, sorted by ref.

        Blocked, for review, or not checked; kept in memory as they are read and written.
        """
        with self._lock:
            return tuple(self._flagged[ref] for ref in sorted(self._flagged))

    def job(self, name: str) -> str | None:
        """Return the id of the job recorded as *name*, or ``None``: re-attach, not restart."""
        with self._lock:
            found = self._jobs.get(name)
            return None if found is None else found[0]

    def job_details(self, name: str) -> Mapping[str, Any]:
        """Return what was recorded with the job *name* (empty when there is none)."""
        with self._lock:
            found = self._jobs.get(name)
            return {} if found is None else dict(found[1])

    def record_job(self, name: str, job_id: str, **details: Any) -> None:
        """Record the job *name* started as *job_id* (written and flushed at once).

        A later record under the same name replaces it (a new chunk, a finished job).
        """
        with self._lock:
            line = {"kind": "job", "name": name, "job_id": job_id, "details": details}
            self._write_line({**line, "at": now()})
            self.flush()
            self._jobs[name] = (job_id, dict(details))

    def note(self, kind: str, **fields: Any) -> None:
        """Write a line of an engine's or a tool's own *kind* (flushed at once).

        :raises LedgerError: *kind* is one of the ledger's own (``item``, ``run``, ``job``).
        """
        if kind in ("item", "run", "job") or not kind:
            raise LedgerError(f"{kind!r} is not a kind of note")
        with self._lock:
            data = {"kind": kind, **fields, "at": now()}
            self._write_line(data)
            self.flush()
            self._notes[kind].append(data)

    def notes(self, kind: str) -> list[dict[str, Any]]:
        """Return the notes of *kind*, oldest first (this run's as well as earlier ones')."""
        with self._lock:
            return [dict(note) for note in self._notes.get(kind, ())]

    def _write_line(self, data: Mapping[str, Any]) -> None:
        if self._closed:
            raise LedgerError(f"the ledger {self.name} is closed")
        line = json.dumps(data, ensure_ascii=True, allow_nan=False, separators=(",", ":"))
        self._pending.append(line.encode("ascii") + b"\n")
        if len(self._pending) >= self._flush_every:
            self.flush()

    def flush(self) -> None:
        """Write what is buffered, durably."""
        with self._lock:
            if self._pending:
                data = b"".join(self._pending)
                self._pending.clear()
                self._storage.write(data)

    def close(self) -> None:
        """Flush and release the storage; idempotent."""
        with self._lock:
            if self._closed:
                return
            try:
                self.flush()
            finally:
                self._closed = True
                self._storage.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def records(where: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """Yield every line of a local ledger as an object, without locking it (for reports)."""
    with open(where, "rb") as stream:
        for line in stream:
            if line.endswith(b"\n") and line.strip():
                yield json.loads(line)
