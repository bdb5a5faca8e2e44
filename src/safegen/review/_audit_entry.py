"""The audit trail's entries: what one entry holds, how it is sealed, and how a stored one is read.

Import these names from :mod:`safegen.review.audit`, where they are documented. They live
here, below both the trail (:mod:`safegen.review.audit`) and its embedded logs
(``safegen.review._audit_logs``), so that neither imports the other back.
"""

from __future__ import annotations

import enum
import hashlib
import json
import math
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import attrs

from safegen.errors import SafegenError
from safegen.review.events import VerdictSummary

__all__ = [
    "EVENTS",
    "GENESIS",
    "MAX_ENTRY_BYTES",
    "AuditConflictError",
    "AuditEntry",
    "AuditError",
    "AuditFieldError",
    "AuditRecord",
    "AuditRepair",
    "ProblemKind",
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
