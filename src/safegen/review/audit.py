"""The audit trail: every decision and override, in a tamper-evident hash chain.

Each :class:`AuditEntry` records an event (an upload's verdict, an approval, a rejection, ...),
the asset's key, who acted, when, the :class:`~safegen.review.events.VerdictSummary` (labels,
action, model and adapter versions, the policy's version and hash) and the reviewer's reason,
plus ``prev``, the hash of the entry before it, and ``hash``, SHA-256 over the canonical JSON
of every other field. Never the image or a prompt: no field can hold bytes, and a verdict
summary has no place for either.

:meth:`AuditTrail.verify` walks the chain once, in bounded memory, and names the first entry
that was edited, removed, reordered, inserted or replaced. A hash chain alone cannot see
entries cut from its *end* (what is left is a valid, shorter chain): keep :meth:`AuditTrail.head`
somewhere the writer cannot rewrite, and pass it back as ``anchor``.

Where entries are kept is an :class:`AuditLog`: :class:`SQLiteAuditLog` and
:class:`JsonLinesAuditLog` here (kept in ``safegen.review._audit_logs``, the entries in
``safegen.review._audit_entry``: this module imports both and every name stays importable
from here), DynamoDB and S3 in :mod:`safegen.aws.audit`. Each appends one entry
atomically, and only if its ``seq`` is the next one and its ``prev`` is the current head's
hash, so two writers cannot fork the chain.

What a reader sees is what was hashed: a stored entry counts only in its canonical form (the
bytes the writer wrote, :meth:`AuditEntry.to_json`), so a duplicated member, an escape, a space
or a reordered member is an edit; and a log's index fields kept beside an entry (a row's key
column, an item's attributes) are checked against the entry by :meth:`AuditTrail.verify` and
never trusted by :meth:`AuditTrail.history`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

import attrs

from safegen.review._audit_entry import (
    _HEX,
    EVENTS,
    GENESIS,
    MAX_ENTRY_BYTES,
    AuditConflictError,
    AuditEntry,
    AuditError,
    AuditFieldError,
    AuditRecord,
    AuditRepair,
    ProblemKind,
    _links,
    _stored_digest,
)
from safegen.review._audit_logs import JsonLinesAuditLog, SQLiteAuditLog
from safegen.review.events import VerdictSummary

__all__ = [
    "EVENTS",
    "GENESIS",
    "MAX_ENTRY_BYTES",
    "AuditConflictError",
    "AuditEntry",
    "AuditError",
    "AuditFieldError",
    "AuditLog",
    "AuditProblem",
    "AuditRecord",
    "AuditRepair",
    "AuditReport",
    "AuditTrail",
    "JsonLinesAuditLog",
    "ProblemKind",
    "SQLiteAuditLog",
    "iso_utc",
    "verify_records",
]


def _utc_now() -> datetime:
    """Return the time now, in UTC (an :class:`AuditTrail`'s default clock)."""
    return datetime.now(UTC)


def iso_utc(moment: datetime) -> str:
    """Return *moment* as ISO 8601 UTC with microseconds (``2026-11-29T22:38:32.123456Z``).

    :raises ValueError: a naive *moment* (without a time zone).
    """
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("the audit trail's clock must return aware datetimes (UTC)")
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


@attrs.frozen(kw_only=True)
class AuditProblem:
    """The first bad entry: where it is, and why.

    :param kind: what is wrong.
    :param where: where it is stored (``"line 7"``, ``"row 6"``, ``"item 6"``).
    :param seq: the ``seq`` it claims, when it could be read.
    :param detail: one sentence saying what was found.
    """

    kind: ProblemKind
    where: str
    seq: int | None
    detail: str

    def to_dict(self) -> dict[str, Any]:
        """Return the problem as plain JSON-ready data."""
        return {
            "kind": self.kind.value,
            "where": self.where,
            "seq": self.seq,
            "detail": self.detail,
        }


@attrs.frozen(kw_only=True)
class AuditReport:
    """What :meth:`AuditTrail.verify` found.

    :param entries: how many entries verified before the first problem (all of them when none).
    :param head: the hash of the last entry that verified (``None``: none did).
    :param problem: the first problem, ``None`` when the chain verified.
    :param anchored: whether an anchor was given and found in the chain.
    """

    entries: int
    head: str | None
    problem: AuditProblem | None = None
    anchored: bool = False

    @property
    def ok(self) -> bool:
        """Whether the chain verified (no problem found)."""
        return self.problem is None

    def to_dict(self) -> dict[str, Any]:
        """Return the report as plain JSON-ready data."""
        return {
            "ok": self.ok,
            "entries": self.entries,
            "head": self.head,
            "anchored": self.anchored,
            "problem": None if self.problem is None else self.problem.to_dict(),
        }


@runtime_checkable
class AuditLog(Protocol):
    """Where a trail's entries are kept: appended atomically, read back in order."""

    def head(self) -> AuditEntry | None:
        """Return the last entry, ``None`` when the log is empty.

        :raises AuditError: the last entry cannot be read (see :meth:`repair`).
        """
        ...

    def append(self, entry: AuditEntry) -> bool:
        """Store *entry* if its ``seq`` is the next one and its ``prev`` is the head's hash.

        :returns: ``False`` (nothing written) when another writer got there first.
        """
        ...

    def records(self) -> Iterator[AuditRecord]:
        """Yield every stored entry in order, in bounded memory."""
        ...

    def for_key(self, key: str) -> Iterator[AuditEntry]:
        """Yield the readable entries about *key*, in order."""
        ...

    def repair(self) -> AuditRepair:
        """Complete or cut off an entry torn by a crash (never a complete entry)."""
        ...


def _peekable(records: Iterable[AuditRecord]) -> Iterator[tuple[AuditRecord, AuditRecord | None]]:
    iterator = iter(records)
    current = next(iterator, None)
    while current is not None:
        following = next(iterator, None)
        yield current, following
        current = following


def _seq_of(record: AuditRecord | None) -> int | None:
    seq = None if record is None or record.data is None else record.data.get("seq")
    return seq if type(seq) is int else None


def verify_records(records: Iterable[AuditRecord], *, anchor: str | None = None) -> AuditReport:
    """Walk *records* once and return what :meth:`AuditTrail.verify` reports.

    Each record's hash is checked against its fields *as stored* (so even a change that
    means the same, ``97`` for ``97.0``, is an edit), and the stored bytes must be the fields'
    canonical JSON (``AuditRecord.canonical``: no duplicated member, escape or space a
    reader could be misled by); then its ``seq`` and ``prev`` against the entry before, and
    the fields a log keeps beside it (``AuditRecord.index``) against its own. The
    fields' meaning is not checked here (:attr:`AuditRecord.entry` reads it): a sealed entry
    can only come from a writer, and a forged one inside the chain breaks a link.
    Memory stays bounded: one record and the one after it are held at a time.
    """
    count, prev_hash, last_seq = 0, GENESIS, -1
    anchored = False

    def report(kind: ProblemKind, record: AuditRecord, seq: int | None, detail: str) -> AuditReport:
        problem = AuditProblem(kind=kind, where=record.where, seq=seq, detail=detail)
        head = None if count == 0 else prev_hash
        return AuditReport(entries=count, head=head, problem=problem, anchored=anchored)

    for record, following in _peekable(records):
        data = record.data
        if data is None:
            kind = record.problem or ProblemKind.UNREADABLE
            return report(kind, record, None, record.detail or "the stored entry cannot be read")
        try:
            seq, prev, digest = _links(data)
        except ValueError as error:
            return report(ProblemKind.UNREADABLE, record, None, str(error))
        expected = last_seq + 1
        if _stored_digest(data) != digest:
            return report(
                ProblemKind.EDITED, record, seq, "its hash does not match its fields: it was edited"
            )
        if not record.canonical:
            return report(ProblemKind.EDITED, record, seq, f"{record.detail}: it was rewritten")
        if seq != expected:
            if count == 0 and seq > 0:
                return report(
                    ProblemKind.TRUNCATED_HEAD,
                    record,
                    seq,
                    f"the chain starts at seq {seq}: entries 0 to {seq - 1} were removed",
                )
            if seq > expected:
                nxt = _seq_of(following)
                if nxt is not None and nxt < seq:
                    return report(
                        ProblemKind.REORDERED,
                        record,
                        seq,
                        f"seq {seq} comes before seq {nxt}: entries were reordered",
                    )
                missing = f"seq {expected}" if seq == expected + 1 else f"seq {expected}-{seq - 1}"
                return report(
                    ProblemKind.REMOVED,
                    record,
                    seq,
                    f"expected seq {expected}: {missing} was removed",
                )
            if seq == last_seq:
                return report(
                    ProblemKind.INSERTED,
                    record,
                    seq,
                    f"a second entry with seq {seq}: one was inserted",
                )
            return report(
                ProblemKind.REORDERED,
                record,
                seq,
                f"seq {seq} comes after seq {last_seq}: entries were reordered",
            )
        if prev != prev_hash:
            before = "the chain's start" if count == 0 else f"entry {last_seq}'s hash"
            return report(
                ProblemKind.REPLACED,
                record,
                seq,
                f"its prev is not {before}: the entry before it was replaced, or the chain "
                "was re-linked",
            )
        if record.stored_seq is not None and record.stored_seq != seq:
            return report(
                ProblemKind.EDITED,
                record,
                seq,
                f"stored under seq {record.stored_seq} but its fields say {seq}: it was moved",
            )
        for name, value in record.index:
            if data.get(name) != value or type(value) is not type(data.get(name)):
                return report(
                    ProblemKind.EDITED,
                    record,
                    seq,
                    f"the {name} stored beside it is not its own {name}: the log's index was "
                    "edited (an image's history would hide it, or list it under another key)",
                )
        count, prev_hash, last_seq = count + 1, digest, seq
        anchored = anchored or digest == anchor
    head = None if count == 0 else prev_hash
    if anchor is not None and not anchored:
        problem = AuditProblem(
            kind=ProblemKind.TRUNCATED_TAIL,
            where="the end",
            seq=None,
            detail=f"no entry has the anchor hash {anchor[:16]}...: entries were cut from the "
            "end, or the chain was rewritten",
        )
        return AuditReport(entries=count, head=head, problem=problem)
    return AuditReport(entries=count, head=head, anchored=anchor is not None)


def _check_anchor(anchor: str | None) -> str | None:
    if anchor is None:
        return None
    text = anchor.strip().lower()
    if len(text) != 64 or not _HEX.issuperset(text):
        raise ValueError("anchor: must be an entry's hash, 64 hex digits (AuditTrail.head())")
    return text


def _a_log(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, AuditLog):
        raise ValueError(f"AuditTrail.log: {type(value).__name__} is not an AuditLog")


@attrs.frozen
class AuditTrail:
    """Append decisions to an :class:`AuditLog`, verify it, and read an asset's history.

    Its ``clock`` (keyword) returns the time of an entry given no ``at``: an aware
    ``datetime``, the time now in UTC by default, injectable for tests.

    :param log: where the entries are kept.
    :param attempts: how many times :meth:`append` re-reads the head when another writer
        appended first, before it raises :class:`AuditConflictError`.
    """

    log: AuditLog = attrs.field(validator=_a_log)
    clock: Callable[[], datetime] = attrs.field(default=_utc_now, kw_only=True)
    attempts: int = attrs.field(
        default=16,
        kw_only=True,
        validator=[attrs.validators.instance_of(int), attrs.validators.ge(1)],
    )

    @classmethod
    def sqlite(
        cls,
        path: str | os.PathLike[str],
        *,
        clock: Callable[[], datetime] = _utc_now,
        read_only: bool = False,
    ) -> AuditTrail:
        """Return a trail kept in the SQLite database at *path* (created when missing).

        :param read_only: open an existing trail to read it (verify, show, head): nothing is
            created or changed, and appends are refused.
        :raises AuditError: *read_only* and *path* is not an audit trail (missing, not an
            SQLite database, or without the audit table).
        """
        return cls(SQLiteAuditLog(path, read_only=read_only), clock=clock)

    @classmethod
    def jsonl(
        cls, path: str | os.PathLike[str], *, clock: Callable[[], datetime] = _utc_now
    ) -> AuditTrail:
        """Return a trail kept in the JSON Lines file at *path* (created when missing)."""
        return cls(JsonLinesAuditLog(path), clock=clock)

    def append(
        self,
        event: str,
        *,
        key: str,
        actor: str,
        verdict: VerdictSummary | None = None,
        reason: str | None = None,
        at: str | None = None,
    ) -> AuditEntry:
        """Append one entry after the current head and return it.

        :param event: one of :data:`EVENTS`.
        :param at: when, ISO 8601 UTC; ``None`` for the clock's time now.
        :raises AuditFieldError: a field out of its domain, naming it, such as text that
            UTF-8 cannot encode (a :class:`ValueError`; nothing is written).
        :raises AuditConflictError: other writers kept appending first.
        :raises AuditError: the log's last entry cannot be read (a torn line: :meth:`repair`).
        """
        when = iso_utc(self.clock()) if at is None else at
        for _ in range(self.attempts):
            head = self.log.head()
            entry = AuditEntry.seal(
                seq=0 if head is None else head.seq + 1,
                event=event,
                key=key,
                actor=actor,
                at=when,
                prev=GENESIS if head is None else head.hash,
                verdict=verdict,
                reason=reason,
            )
            if self.log.append(entry):
                return entry
        raise AuditConflictError(
            f"the audit log kept moving: {self.attempts} appends lost to other writers"
        )

    def head(self) -> str | None:
        """Return the last entry's hash, to keep apart as an anchor (``None``: empty)."""
        entry = self.log.head()
        return None if entry is None else entry.hash

    def verify(self, *, anchor: str | None = None) -> AuditReport:
        """Check the whole chain, in one pass and bounded memory; name the first bad entry.

        :param anchor: a hash :meth:`head` returned earlier, kept where the log's writer
            cannot change it. Without one, entries cut from the end cannot be seen.
        :raises ValueError: an anchor that is not 64 hex digits.
        """
        return verify_records(self.log.records(), anchor=_check_anchor(anchor))

    def history(self, key: str) -> list[AuditEntry]:
        """Return every readable entry about *key*, oldest first (no verification).

        Only entries whose own (hashed) ``key`` is *key*: a log's index is used to find them,
        never trusted to say whose they are.
        """
        return [entry for entry in self.log.for_key(key) if entry.key == key]

    def entries(self) -> Iterator[AuditEntry]:
        """Yield every readable entry in order (no verification: see :meth:`verify`)."""
        for record in self.log.records():
            entry = record.entry
            if entry is not None:
                yield entry

    def repair(self) -> AuditRepair:
        """Complete or cut off a last entry torn by a crash; never remove a complete one."""
        return self.log.repair()
