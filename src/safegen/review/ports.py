"""The ports a review store stands on, the record it keeps, and its errors.

A store keeps each image's bytes in one of two *areas* of a :class:`BlobStore` (``live``: what
may be delivered; ``backup``: what may not) and one :class:`Record` per image in a
:class:`StateStore`. The state store is the authority: every write to it is conditional on the
record's ``version``, so two writers cannot both win. A change that moves bytes first writes
its *intent* into the record; :meth:`~safegen.review.store.ReviewStore.repair` completes or rolls
back any intent a crash left behind. Effects outside the store (the audit trail, notifiers,
the cache invalidator) are queued in the record's *outbox* in the same write that commits the
change, and delivered after it, so a failure or a crash there loses nothing.
"""

from __future__ import annotations

import enum
import json
import re
import secrets
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import attrs

from safegen.errors import SafegenError
from safegen.review.events import AssetStatus

if TYPE_CHECKING:
    from safegen.review.events import VerdictSummary

__all__ = [
    "LISTING_ORDER",
    "MAX_KEY_LENGTH",
    "Area",
    "AssetExistsError",
    "AssetNotFoundError",
    "AuditSink",
    "BlobStore",
    "ConflictError",
    "IntegrityError",
    "Intent",
    "InvalidKeyError",
    "NotDeliverableError",
    "Record",
    "StateStore",
    "StorageError",
    "check_key",
    "first_version",
]

LISTING_ORDER: tuple[AssetStatus, ...] = (
    AssetStatus.APPROVED,
    AssetStatus.PENDING,
    AssetStatus.REJECTED,
)
"""The order :meth:`StateStore.page` lists statuses in, when it lists them all."""

MAX_KEY_LENGTH = 256
"""The longest key a store takes, in characters (all ASCII, so also in bytes)."""

_KEY_CHARS = re.compile(r"[A-Za-z0-9._\-/]+")
_SEGMENT_START = re.compile(r"[A-Za-z0-9_]")


class InvalidKeyError(SafegenError, ValueError):
    """A key a store will not use: its message names the rule it broke.

    :ivar rule: ``"type"``, ``"empty"``, ``"length"``, ``"characters"`` or ``"segment"``.
    """

    def __init__(self, message: str, *, rule: str) -> None:
        super().__init__(message)
        self.rule = rule


class AssetNotFoundError(SafegenError, KeyError):
    """No image with this key is in the store (or it is still being uploaded or removed)."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key

    def __str__(self) -> str:
        return f"no image with key {self.key!r} in the review store"


class ConflictError(SafegenError):
    """Another writer changed the image first, or a change of it is still in progress.

    The change asked for was not made. Read the image again
    (:meth:`~safegen.review.store.ReviewStore.get`) and decide again; a change left in progress
    by a crash is finished by :meth:`~safegen.review.store.ReviewStore.repair`.
    """


class AssetExistsError(ConflictError):
    """An image with this key is already in the store: keys are never silently replaced."""


class NotDeliverableError(SafegenError, PermissionError):
    """The image exists but may not be delivered (rejected, pending, or changing)."""


class StorageError(SafegenError):
    """A backend could not read or write (a full disk, a locked database, a lost connection).

    The change asked for did not happen, or
    :meth:`~safegen.review.store.ReviewStore.repair` finishes or undoes it.
    AWS failures are :class:`~safegen.ServiceError` instead, with the service's error code.
    """


class IntegrityError(SafegenError):
    """The bytes stored for an image are not the bytes recorded for it (or are missing)."""


def check_key(key: object) -> str:
    """Return *key* if a store may use it, else raise :class:`InvalidKeyError`.

    A key is 1 to :data:`MAX_KEY_LENGTH` ASCII letters, digits, ``.``, ``_``, ``-`` and ``/``;
    ``/`` separates segments, and each segment is non-empty and starts with a letter, a digit or
    ``_`` (so no ``.``, ``..``, hidden name, leading ``/``, ``//`` or trailing ``/``). No NUL,
    no backslash, no space, no percent sign, no non-ASCII look-alike. A key names an object
    inside a store's area and can never reach outside it.

    >>> check_key("uploads/2026/cat.png")
    'uploads/2026/cat.png'
    """
    if not isinstance(key, str):
        raise InvalidKeyError(f"key: a string, got {type(key).__name__}", rule="type")
    if not key:
        raise InvalidKeyError("key: empty", rule="empty")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidKeyError(
            f"key: {len(key):,} characters, over the limit of {MAX_KEY_LENGTH}", rule="length"
        )
    if _KEY_CHARS.fullmatch(key) is None:
        raise InvalidKeyError(
            "key: only ASCII letters, digits, '.', '_', '-' and '/' are allowed",
            rule="characters",
        )
    for segment in key.split("/"):
        if not segment or _SEGMENT_START.match(segment) is None:
            raise InvalidKeyError(
                "key: each '/'-separated segment must be non-empty and start with a letter, "
                "a digit or '_'",
                rule="segment",
            )
    return key


def first_version() -> int:
    """Return the version of a new record: a random 62-bit number.

    Versions only go up within one record; starting each new record (a key uploaded again
    after its removal) at a random point makes a ``(key, version)`` pair recur with
    probability about 2**-62, so a writer holding a record of an earlier image of the key
    cannot win a conditional write against the new one.
    """
    return secrets.randbits(62)


class Area(enum.Enum):
    """Where an image's bytes are kept."""

    LIVE = "live"
    """What may be delivered (a CDN may serve this area)."""
    BACKUP = "backup"
    """What may not be delivered: rejected images, and pending ones unless configured."""


@attrs.frozen(kw_only=True)
class Intent:
    """A change that moves bytes, written into the record before any byte moves.

    :param op: ``"put"``, ``"move"``, ``"remove"``, or ``"sweep"`` (a repair deleting a
        stray copy in ``area`` that the record does not name; the record is otherwise kept).
    :param phase: ``"begun"``; ``"copied"`` once a move's bytes are verified at the
        target (from then on the move is only ever completed, never rolled back); or
        ``"undoing"`` once a writer or a repair has claimed the change to roll it back (from
        then on it is only ever rolled back). Bytes are deleted only after the conditional
        write that claims the change this way, so a writer working from a stale read loses
        its claim and deletes nothing.
    :param area: where the bytes will be when the change is done (``None`` for a removal;
        for a sweep, the area whose copy is deleted).
    :param status: the status when it is done (``None`` for a removal).
    :param at: when the change began (ISO 8601 UTC).
    :param by: who asked for it.
    :param reason: why, in the reviewer's words.
    :param effects: what to queue in the outbox when it is done (audit, notify, invalidate).
    """

    op: str = attrs.field(validator=attrs.validators.in_(("put", "move", "remove", "sweep")))
    phase: str = attrs.field(
        default="begun", validator=attrs.validators.in_(("begun", "copied", "undoing"))
    )
    area: Area | None
    status: AssetStatus | None
    at: str
    by: str
    reason: str | None = None
    effects: tuple[Mapping[str, Any], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Return the intent as plain JSON-ready data."""
        return {
            "op": self.op,
            "phase": self.phase,
            "area": None if self.area is None else self.area.value,
            "status": None if self.status is None else self.status.value,
            "at": self.at,
            "by": self.by,
            "reason": self.reason,
            "effects": [dict(effect) for effect in self.effects],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Intent:
        """Read an intent written by :meth:`to_dict`."""
        return cls(
            op=data["op"],
            phase=data.get("phase", "begun"),
            area=None if data["area"] is None else Area(data["area"]),
            status=None if data["status"] is None else AssetStatus(data["status"]),
            at=data["at"],
            by=data["by"],
            reason=data.get("reason"),
            effects=tuple(data.get("effects", ())),
        )


@attrs.frozen(kw_only=True)
class Record:
    """What a state store keeps about one image: the authority on where its bytes are.

    :param key: the image's key.
    :param version: bumped by every write; every write is conditional on it. A new record
        starts at a random 62-bit number (:func:`first_version`), so a key removed and
        uploaded again never repeats a version a stale reader may hold.
    :param status: the committed status; ``None`` while the image is being uploaded, and
        for a removed image's tombstone (kept until its outbox is delivered).
    :param area: where the bytes are (``None`` while uploading, or once removed).
    :param verdict: what moderation decided, as
        :meth:`~safegen.review.events.VerdictSummary.to_dict` data.
    :param metadata: the uploader's text metadata.
    :param content_type: the image's media type, from its bytes.
    :param size: the number of bytes.
    :param sha256: the SHA-256 of the bytes, hex.
    :param created: when it was uploaded (ISO 8601 UTC).
    :param updated: when its status last changed.
    :param updated_by: who changed it last (``"moderation"`` for an upload).
    :param reason: why, in the reviewer's words.
    :param intent: a change in progress, or ``None``.
    :param outbox: effects owed to the audit trail, notifiers and the invalidator, in order.
    """

    key: str
    version: int
    status: AssetStatus | None
    area: Area | None
    verdict: Mapping[str, Any] | None
    metadata: Mapping[str, str]
    content_type: str
    size: int
    sha256: str
    created: str
    updated: str
    updated_by: str
    reason: str | None = None
    intent: Intent | None = None
    outbox: tuple[Mapping[str, Any], ...] = ()

    def to_json(self) -> str:
        """Return the record as one JSON document (what the backends store)."""
        return json.dumps(
            {
                "key": self.key,
                "version": self.version,
                "status": None if self.status is None else self.status.value,
                "area": None if self.area is None else self.area.value,
                "verdict": None if self.verdict is None else dict(self.verdict),
                "metadata": dict(self.metadata),
                "content_type": self.content_type,
                "size": self.size,
                "sha256": self.sha256,
                "created": self.created,
                "updated": self.updated,
                "updated_by": self.updated_by,
                "reason": self.reason,
                "intent": None if self.intent is None else self.intent.to_dict(),
                "outbox": [dict(effect) for effect in self.outbox],
            },
            sort_keys=True,
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> Record:
        """Read a record written by :meth:`to_json`.

        :raises IntegrityError: the stored text is not such a record (damaged or edited).
        """
        try:
            return cls._from_data(json.loads(text))
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise IntegrityError(
                f"a stored review record cannot be read ({type(error).__name__})"
            ) from None

    @classmethod
    def _from_data(cls, data: Any) -> Record:
        return cls(
            key=data["key"],
            version=int(data["version"]),
            status=None if data["status"] is None else AssetStatus(data["status"]),
            area=None if data["area"] is None else Area(data["area"]),
            verdict=data["verdict"],
            metadata=data["metadata"],
            content_type=data["content_type"],
            size=int(data["size"]),
            sha256=data["sha256"],
            created=data["created"],
            updated=data["updated"],
            updated_by=data["updated_by"],
            reason=data["reason"],
            intent=None if data["intent"] is None else Intent.from_dict(data["intent"]),
            outbox=tuple(data["outbox"]),
        )


@runtime_checkable
class BlobStore(Protocol):
    """Bytes by area and key. Each write is atomic: a reader sees all the bytes or none."""

    def write(self, area: Area, key: str, data: bytes, *, content_type: str) -> None:
        """Store *data* under *key* in *area*, replacing any bytes there."""
        ...

    def read(self, area: Area, key: str, *, max_bytes: int) -> bytes | None:
        """Return the bytes under *key* in *area*, or ``None`` when there are none.

        :raises IntegrityError: more than *max_bytes* are stored there.
        """
        ...

    def exists(self, area: Area, key: str) -> bool:
        """Whether *area* holds bytes under *key*."""
        ...

    def copy(self, key: str, *, source: Area, target: Area) -> None:
        """Copy the bytes under *key* from *source* to *target* (atomic at the target)."""
        ...

    def delete(self, area: Area, key: str) -> None:
        """Delete the bytes under *key* in *area*; nothing there is not an error."""
        ...

    def sweep(self) -> int:
        """Remove leftovers of interrupted writes (temporary files); return how many."""
        ...


@runtime_checkable
class StateStore(Protocol):
    """One :class:`Record` per key; every write conditional, so concurrent writers conflict."""

    def get(self, key: str) -> Record | None:
        """Return the record for *key* (strongly consistent), or ``None``."""
        ...

    def create(self, record: Record) -> None:
        """Store a new record.

        :raises AssetExistsError: a record with its key exists.
        """
        ...

    def update(self, record: Record, *, expected_version: int) -> None:
        """Replace the record with *record* if the stored one has *expected_version*.

        :raises ConflictError: the stored record has another version, or is gone.
        """
        ...

    def delete(self, key: str, *, expected_version: int) -> None:
        """Delete the record if it still has *expected_version*.

        :raises ConflictError: the stored record has another version, or is gone.
        """
        ...

    def page(
        self, *, status: AssetStatus | None, limit: int, after: tuple[str, str] | None
    ) -> tuple[list[Record], tuple[str, str] | None]:
        """Return up to *limit* records with a status, ordered by ``(status, key)``.

        :param status: only this status, or every status (in the order approved, pending,
            rejected) when ``None``. Records without a status (uploads in progress,
            tombstones) are never listed.
        :param after: the ``(status, key)`` of the last record of the previous page.
        :returns: the records and the ``(status, key)`` to continue after, or ``None`` at
            the end.
        """
        ...

    def scan(self) -> Iterator[Record]:
        """Return every record, in no particular order (what a repair walks)."""
        ...


@runtime_checkable
class AuditSink(Protocol):
    """Where a store appends its decisions: ``safegen.review.audit.AuditTrail``, or any alike."""

    def append(
        self,
        event: str,
        *,
        key: str,
        actor: str,
        verdict: VerdictSummary | None = None,
        reason: str | None = None,
        at: str | None = None,
    ) -> object:
        """Append one entry; raise when it could not be appended."""
        ...
