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
:class:`JsonLinesAuditLog` here (kept in ``safegen.review._audit_logs``), DynamoDB and S3 in
:mod:`safegen.aws.audit`. Each appends one entry
atomically, and only if its ``seq`` is the next one and its ``prev`` is the current head's
hash, so two writers cannot fork the chain.

What a reader sees is what was hashed: a stored entry counts only in its canonical form (the
bytes the writer wrote, :meth:`AuditEntry.to_json`), so a duplicated member, an escape, a space
or a reordered member is an edit; and a log's index fields kept beside an entry (a row's key
column, an item's attributes) are checked against the entry by :meth:`AuditTrail.verify` and
never trusted by :meth:`AuditTrail.history`.
"""

from __future__ import annotations

import enum
import hashlib
import json
import math
import os
import re
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import attrs

from safegen.errors import SafegenError
from safegen.review.events import VerdictSummary

if TYPE_CHECKING:  # at run time, module __getattr__ below imports them on first use
    from safegen.review._audit_logs import JsonLinesAuditLog, SQLiteAuditLog

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

EVENTS = ("upload", "approve", "reject", "restore", "remove", "repair")
"""The events an audit entry may record."""

GENESIS = "0" * 64
"""The ``prev`` of the first entry: no entry comes before it."""

MAX_ENTRY_BYTES = 64 * 1024
"""The largest entry as stored (:meth:`AuditEntry.to_json`, UTF-8): a longer one is refused
when appended and read as unreadable, so reading a log never holds more of one line."""

_FIELDS = ("seq", "event", "key", "actor", "at", "verdict", "reason", "prev")
_HEX = frozenset("0123456789abcdef")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_NAMES = frozenset({*_FIELDS, "hash"})


class AuditError(SafegenError):
    """The audit trail could not be written as asked (its log is damaged or busy)."""


class AuditConflictError(AuditError):
    """Another writer appended first, again and again: the entry was not written."""


class AuditFieldError(AuditError, ValueError):
    """A field an entry cannot hold (nothing was written); ``field`` names it.

    It is a :class:`ValueError` too, as every field out of its domain always was.

    :param field: the field, as ``"reason"`` or ``"verdict.model_version"``.
    :param message: what is wrong with it.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"AuditEntry.{field}: {message}")
        self.field = field


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


def _check_text(field: str, value: object, *, empty: bool = False) -> None:
    """Refuse anything but a string that UTF-8 can encode (non-empty unless *empty*)."""
    if not isinstance(value, str) or not (value or empty):
        raise AuditFieldError(field, "must be a non-empty string" if not empty else "a string")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        raise AuditFieldError(
            field,
            f"not valid UTF-8 text: a lone surrogate at character {error.start} (a byte that "
            "was not UTF-8, decoded with surrogateescape); nothing was written",
        ) from None


def _text(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    _check_text(attribute.name, value)


def _optional_text(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None:
        _text(instance, attribute, value)


def _utc_time(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    _text(instance, attribute, value)
    assert isinstance(value, str)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise AuditFieldError("at", f"{value!r} is not an ISO 8601 time") from None
    if moment.utcoffset() != UTC.utcoffset(None):
        raise AuditFieldError("at", f"{value!r} is not in UTC (end it with Z or +00:00)")


def _digest(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if type(value) is not str or _HEX64.fullmatch(value) is None:
        raise AuditFieldError(attribute.name, "must be 64 lower-case hex digits")


def _seq(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if type(value) is not int or value < 0:
        raise AuditFieldError("seq", f"must be an integer at least 0, got {value!r}")


_VERDICT_NAMES = tuple(field.name for field in attrs.fields(VerdictSummary))
_VERDICT_TEXTS = tuple(name for name in _VERDICT_NAMES if name not in ("action", "labels"))


def _verdict(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """Require a verdict summary whose every text is UTF-8, every confidence finite."""
    if value is None:
        return
    if not isinstance(value, VerdictSummary):
        raise AuditFieldError("verdict", "must be a VerdictSummary or None")
    _check_text("verdict.action", value.action)
    for number, (name, confidence) in enumerate(value.labels):
        _check_text(f"verdict.labels[{number}]", name, empty=True)
        if type(confidence) is not float or not math.isfinite(confidence):
            raise AuditFieldError(
                f"verdict.labels[{number}]", "every label confidence must be a finite number"
            )
    for name in _VERDICT_TEXTS:
        text = getattr(value, name)
        if text is not None:
            _check_text(f"verdict.{name}", text, empty=True)


_HASH_MEMBER_BYTES = len('"hash":"",') + 64


def _verdict_dict(verdict: VerdictSummary) -> dict[str, Any]:
    """:meth:`VerdictSummary.to_dict`'s data, built without ``attrs.asdict`` (a hot path)."""
    out = {name: getattr(verdict, name) for name in _VERDICT_NAMES}
    out["labels"] = [[name, confidence] for name, confidence in verdict.labels]
    return out


# One encoder, built once: json.dumps with options builds a new one each call (a hot path).
_ENCODER = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)


def _canonical(data: dict[str, Any]) -> bytes:
    return _ENCODER.encode(data).encode("utf-8")


@attrs.frozen(kw_only=True)
class AuditEntry:
    """One link of the chain: what happened to which asset, who did it, when, and why.

    Every field is text, a number or a :class:`~safegen.review.events.VerdictSummary`: none
    can hold image bytes, and nothing here has a place for a prompt.

    :param seq: its position, from 0.
    :param event: one of :data:`EVENTS`.
    :param key: the asset's key in the store.
    :param actor: who acted: ``"moderation"`` for an upload's check, else the reviewer.
    :param at: when, ISO 8601 in UTC.
    :param verdict: what moderation decided, for the events that carry a verdict.
    :param reason: why, in the reviewer's words.
    :param prev: the previous entry's ``hash`` (:data:`GENESIS` for the first).
    :param hash: SHA-256 (hex) of the canonical JSON of every other field; an entry read back
        from a log keeps the hash it was stored with, so :meth:`sealed` tells an edit.
    """

    seq: int = attrs.field(validator=_seq)
    event: str = attrs.field(validator=attrs.validators.in_(EVENTS))
    key: str = attrs.field(validator=_text)
    actor: str = attrs.field(validator=_text)
    at: str = attrs.field(validator=_utc_time)
    verdict: VerdictSummary | None = attrs.field(default=None, validator=_verdict)
    reason: str | None = attrs.field(default=None, validator=_optional_text)
    prev: str = attrs.field(validator=_digest)
    hash: str = attrs.field(validator=_digest)

    @classmethod
    def seal(
        cls,
        *,
        seq: int,
        event: str,
        key: str,
        actor: str,
        at: str,
        prev: str,
        verdict: VerdictSummary | None = None,
        reason: str | None = None,
    ) -> AuditEntry:
        """Build an entry with its hash computed over the other fields.

        :raises AuditFieldError: a field out of its domain, or an entry over
            :data:`MAX_ENTRY_BYTES` (naming its largest field); a :class:`ValueError`.
        """
        draft = cls(
            seq=seq,
            event=event,
            key=key,
            actor=actor,
            at=at,
            verdict=verdict,
            reason=reason,
            prev=prev,
            hash=GENESIS,
        )
        body = draft.canonical()
        size = len(body) + _HASH_MEMBER_BYTES  # what to_json() adds: "hash":"<64 hex>",
        if size > MAX_ENTRY_BYTES:
            fields = draft.fields()
            largest = max(fields, key=lambda name: len(_ENCODER.encode(fields[name])))
            raise AuditFieldError(
                largest,
                f"the entry would be {size:,} bytes as JSON, over the {MAX_ENTRY_BYTES:,} "
                f"allowed ({largest} is its largest field)",
            )
        # The draft was validated and has not left this method: seal it in place rather
        # than validate every field a second time (appends and benchmarks feel it).
        object.__setattr__(draft, "hash", hashlib.sha256(body).hexdigest())
        return draft

    def fields(self) -> dict[str, Any]:
        """Return every field but ``hash``, as plain JSON-ready data."""
        return {
            "seq": self.seq,
            "event": self.event,
            "key": self.key,
            "actor": self.actor,
            "at": self.at,
            "verdict": None if self.verdict is None else _verdict_dict(self.verdict),
            "reason": self.reason,
            "prev": self.prev,
        }

    def canonical(self) -> bytes:
        """Return the bytes ``hash`` is computed over: sorted, compact UTF-8 JSON."""
        return _canonical(self.fields())

    def computed_hash(self) -> str:
        """Return the hash the fields give now (equal to ``hash`` unless edited)."""
        return hashlib.sha256(self.canonical()).hexdigest()

    def sealed(self) -> bool:
        """Return whether ``hash`` matches the fields (``False``: the entry was edited)."""
        return self.computed_hash() == self.hash

    def to_dict(self) -> dict[str, Any]:
        """Return the entry as plain JSON-ready data, ``hash`` included."""
        return {**self.fields(), "hash": self.hash}

    def to_json(self) -> str:
        """Return the entry as one line of canonical JSON (no newline)."""
        return _canonical(self.to_dict()).decode("utf-8")

    @classmethod
    def from_dict(cls, data: object) -> AuditEntry:
        """Read an entry back from :meth:`to_dict`'s form.

        :raises ValueError: not an entry (a field missing, unknown, or out of its domain).
        """
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        if data.keys() != _NAMES:
            missing, extra = sorted(_NAMES - set(data)), sorted(set(data) - _NAMES)
            raise ValueError(f"fields missing {missing}, unknown {extra}")
        verdict = data["verdict"]
        if verdict is not None:
            if not isinstance(verdict, dict):
                raise ValueError("verdict: not a JSON object")
            try:
                verdict = VerdictSummary(**verdict)
            except TypeError as error:
                raise ValueError(f"verdict: {error}") from None
        return cls(**{**data, "verdict": verdict})

    @classmethod
    def from_json(cls, text: str | bytes) -> AuditEntry:
        """Read an entry back from :meth:`to_json`'s form.

        :raises ValueError: not JSON, or not an entry.
        """
        if len(text) > MAX_ENTRY_BYTES + 2:
            raise ValueError(f"longer than {MAX_ENTRY_BYTES:,} bytes")
        try:
            data = json.loads(text)
        except (ValueError, RecursionError) as error:
            raise ValueError(f"not JSON ({error})") from None
        return cls.from_dict(data)


class ProblemKind(enum.Enum):
    """Why :meth:`AuditTrail.verify` stopped at an entry."""

    EDITED = "edited"
    """Its hash does not match its fields (or it is stored under another position)."""
    REMOVED = "removed"
    """Entries before it are missing: its ``seq`` skips ahead."""
    REORDERED = "reordered"
    """It is out of order: a later entry comes before an earlier one."""
    INSERTED = "inserted"
    """A second entry claims a ``seq`` already used."""
    REPLACED = "replaced"
    """Its ``prev`` is not the previous entry's hash: that one was replaced by a forgery, or
    the chain was re-linked around a change."""
    TRUNCATED_HEAD = "truncated-head"
    """The chain does not start at ``seq`` 0: its first entries were removed."""
    TRUNCATED_TAIL = "truncated-tail"
    """No entry has the anchor's hash: entries were cut from the end, or the chain rewritten."""
    TORN = "torn"
    """The last line was cut short (a crash during an append): :meth:`AuditTrail.repair`."""
    UNREADABLE = "unreadable"
    """A stored entry that is not an entry (not JSON, a field missing or out of its domain)."""


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


@attrs.frozen(kw_only=True, eq=False)
class AuditRecord:
    """One stored entry as a log reads it: its fields as stored, or why they could not be read.

    :meth:`AuditTrail.verify` checks the stored fields themselves (the hash is over them), so
    a log parses JSON and nothing more; :attr:`entry` reads them as an :class:`AuditEntry`.

    :param where: where it is stored, in the log's own words (``"line 3"``).
    :param data: the stored entry, parsed from its JSON; ``None`` when it could not be.
    :param problem: why it could not be read (:attr:`ProblemKind.TORN` or
        :attr:`ProblemKind.UNREADABLE`), ``None`` when it could.
    :param detail: the reason, in one sentence.
    :param stored_seq: the position the log keeps it under, for logs that keep one apart
        from the entry (a row's or an item's ``seq``).
    :param canonical: whether the entry is stored exactly as a writer writes it (its
        canonical JSON, :meth:`AuditEntry.to_json`); ``False``: it was rewritten, and
        ``detail`` says how. :meth:`AuditTrail.verify` reports it as edited, and
        :attr:`entry` does not read it.
    :param index: the fields a log keeps *beside* the entry, as ``(name, value)`` pairs (a
        row's ``key``, ``hash`` and ``prev`` columns, an item's ``key`` and ``hash``
        attributes): :meth:`AuditTrail.verify` requires each to equal the entry's own.
    """

    where: str
    data: dict[str, Any] | None = None
    problem: ProblemKind | None = None
    detail: str = ""
    stored_seq: int | None = None
    canonical: bool = True
    index: tuple[tuple[str, object], ...] = ()

    @classmethod
    def read(
        cls,
        text: object,
        where: str,
        stored_seq: int | None = None,
        *,
        index: Iterable[tuple[str, object]] = (),
    ) -> AuditRecord:
        """Parse one stored entry's JSON (text or UTF-8 bytes, no newline) into a record.

        Text that is not UTF-8, not a JSON object, or longer than :data:`MAX_ENTRY_BYTES`, is a
        record with :attr:`ProblemKind.UNREADABLE`, never an exception. A JSON object that is
        not byte for byte its canonical form (a duplicated member, an escape where the writer
        writes the character, a space, members out of order, ``1.50`` for ``1.5``, ``NaN``) is
        a record whose ``canonical`` is ``False``.

        :param index: see ``index``.
        """
        problem, pairs = None, tuple(index)
        if not isinstance(text, str | bytes):
            problem = "not text"
        elif len(text) > MAX_ENTRY_BYTES + 2:
            problem = f"longer than {MAX_ENTRY_BYTES:,} bytes"
        else:
            try:
                string = text.decode("utf-8") if isinstance(text, bytes) else text
                if isinstance(text, str):
                    text.encode("utf-8")  # no lone surrogate: the bytes could not be stored
            except (UnicodeEncodeError, UnicodeDecodeError) as error:
                problem = f"not UTF-8 ({error.reason} at {error.start})"
            else:
                try:
                    data = json.loads(string)
                except (ValueError, RecursionError) as error:
                    problem = f"not JSON ({error})"
                else:
                    if isinstance(data, dict):
                        why = _not_canonical(data, string)
                        return cls(
                            where=where,
                            data=data,
                            stored_seq=stored_seq,
                            canonical=why is None,
                            detail=why or "",
                            index=pairs,
                        )
                    problem = "not a JSON object"
        return cls(
            where=where,
            problem=ProblemKind.UNREADABLE,
            detail=f"not an audit entry: {problem}",
            stored_seq=stored_seq,
            index=pairs,
        )

    @classmethod
    def of(cls, entry: AuditEntry, where: str, stored_seq: int | None = None) -> AuditRecord:
        """Return the record a log would read back for *entry*."""
        return cls(where=where, data=entry.to_dict(), stored_seq=stored_seq)

    @property
    def entry(self) -> AuditEntry | None:
        """The stored fields read as an entry; ``None`` when they are not one.

        ``None`` too when they are not stored in their canonical form: a reader could see
        other values than the ones hashed.
        """
        if self.data is None or not self.canonical:
            return None
        try:
            return AuditEntry.from_dict(self.data)
        except ValueError:
            return None

    def read_entry(self) -> AuditEntry:
        """Return :attr:`entry`, or raise :class:`AuditError` saying why it is not one."""
        if self.data is None:
            raise AuditError(f"{self.where} cannot be read ({self.detail})")
        if not self.canonical:
            raise AuditError(f"{self.where} is not stored as written ({self.detail})")
        try:
            return AuditEntry.from_dict(self.data)
        except ValueError as error:
            raise AuditError(f"{self.where} cannot be read ({error})") from None


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``object_pairs_hook`` that refuses a member named twice (readers disagree on which wins)."""
    data: dict[str, Any] = {}
    for name, value in pairs:
        if name in data:
            raise ValueError(f"the member {name!r} appears twice")
        data[name] = value
    return data


def _not_canonical(data: dict[str, Any], stored: str) -> str | None:
    """Return why *stored* (which parses to *data*) is not its canonical JSON; ``None`` if it is.

    The writer only ever writes the canonical form, and the hash is over it: any other
    spelling (even one that means the same) is a rewrite, and some (a duplicated member) make
    readers disagree on what the entry says.
    """
    try:
        if _ENCODER.encode(data) == stored:
            return None
    except (ValueError, RecursionError):
        return "not stored as written: a number that is not finite (NaN or Infinity)"
    try:
        json.loads(stored, object_pairs_hook=_unique_members)
    except ValueError as error:
        return f"not stored as written: {error}"
    return (
        "not stored as written: its JSON is not in canonical form (sorted members, no spaces, "
        "characters unescaped, numbers as written)"
    )


@attrs.frozen(kw_only=True)
class AuditRepair:
    """What :meth:`AuditTrail.repair` did.

    :param action: ``"none"`` (nothing torn), ``"completed"`` (a whole entry missing only its
        newline got it) or ``"truncated"`` (a torn last line was cut off).
    :param where: where, in the log's words.
    :param size: the bytes removed (or added).
    """

    action: str = attrs.field(validator=attrs.validators.in_(("none", "completed", "truncated")))
    where: str = ""
    size: int = 0


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


def _links(data: dict[str, Any]) -> tuple[int, str, str]:
    """Return a stored entry's seq, prev and hash, checked; raise ValueError if any is wrong."""
    if data.keys() != _NAMES:
        missing, extra = sorted(_NAMES - set(data)), sorted(set(data) - _NAMES)
        raise ValueError(f"not an audit entry: fields missing {missing}, unknown {extra}")
    seq, prev, digest = data["seq"], data["prev"], data["hash"]
    if type(seq) is not int or seq < 0:
        raise ValueError(f"not an audit entry: seq {seq!r} is not an integer at least 0")
    for name, value in (("prev", prev), ("hash", digest)):
        if type(value) is not str or _HEX64.fullmatch(value) is None:
            raise ValueError(f"not an audit entry: {name} is not 64 lower-case hex digits")
    return seq, prev, digest


def _stored_digest(data: dict[str, Any]) -> str:
    """Return the hash the stored fields give (every field but ``hash``, canonical JSON)."""
    try:
        body = _canonical({name: value for name, value in data.items() if name != "hash"})
    except ValueError:  # NaN or infinity: no canonical form, so no sealed entry has it
        return ""
    return hashlib.sha256(body).hexdigest()


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
        from safegen.review._audit_logs import SQLiteAuditLog

        return cls(SQLiteAuditLog(path, read_only=read_only), clock=clock)

    @classmethod
    def jsonl(
        cls, path: str | os.PathLike[str], *, clock: Callable[[], datetime] = _utc_now
    ) -> AuditTrail:
        """Return a trail kept in the JSON Lines file at *path* (created when missing)."""
        from safegen.review._audit_logs import JsonLinesAuditLog

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


def __getattr__(name: str) -> object:
    """Import the embedded logs on first use (they import this module: no import cycle)."""
    if name in ("JsonLinesAuditLog", "SQLiteAuditLog"):
        from safegen.review import _audit_logs

        return getattr(_audit_logs, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
