"""The review store: uploaded images, their moderation status, and the moves between areas.

Every transition is ordered so that a process killed at any step leaves each image in exactly
one area with a record that says which, or an *intent* in its record that
:meth:`ReviewStore.repair` finishes or rolls back:

* **put**: moderate (nothing written yet); create the record with a ``put`` intent (the image
  is not listed, not found, not deliverable); write the bytes to their area; commit the
  status. Repair commits when the bytes are there intact, else deletes them and the record.
* **a move** (approve a rejected or pending image, reject an approved one): write a ``move``
  intent (from this write on the image is not deliverable); copy the bytes to the target area;
  verify them there and mark the intent ``copied``; delete the source; commit. Repair rolls a
  ``begun`` move back unless the target holds the verified bytes, and always completes a
  ``copied`` one.
* **a status change in place** (reject a pending image): one conditional write.
* **remove**: write a ``remove`` intent; delete the bytes in both areas; leave a tombstone
  until the outbox is delivered; delete the record. Repair always completes a removal.

No byte is deleted before a conditional write that claims its record (a repair rewrites the
record it read first; a rollback is written down, phase ``undoing``, before the copy it
deletes; a stray copy is deleted under a ``sweep`` intent), so a writer or a repair working
from a stale read loses its claim and deletes nothing. A new record starts at a random
version, so versions never repeat for a key across removals.

Each commit also queues, in the same conditional write, the *outbox*: the audit entry, the
notification and (for bytes leaving the live area) the cache invalidation. They are delivered
after the commit; one that raises stays queued (a warning is logged, naming only the kind of
effect and the error's type) and is retried by the next change of the same image or by
:meth:`ReviewStore.repair`: delivery is at least once, in order per image and per kind. An
effect a hook refuses for good (a ``ValueError`` safegen error) is kept, marked failed, and
no longer blocks the effects after it.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import logging
import math
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol, cast

import attrs

from safegen.errors import (
    ConfigurationError,
    InvalidImageError,
    InvalidRequestError,
    SafegenError,
    ServiceError,
)
from safegen.policy import ModerationPolicy
from safegen.preflight import sniff_format
from safegen.review.audit import GENESIS, AuditEntry
from safegen.review.events import (
    AssetStatus,
    Invalidator,
    Notifier,
    StatusChange,
    VerdictSummary,
)
from safegen.review.ports import (
    Area,
    AssetExistsError,
    AssetNotFoundError,
    AuditSink,
    BlobStore,
    ConflictError,
    IntegrityError,
    Intent,
    NotDeliverableError,
    Record,
    StateStore,
    check_key,
    first_version,
)

if TYPE_CHECKING:
    from safegen.image import ImageVerdict

__all__ = [
    "DEFAULT_MAX_BYTES",
    "MAX_RECORD_BYTES",
    "MAX_TAKEDOWN_RECORD_BYTES",
    "Asset",
    "InvalidCursorError",
    "Moderates",
    "Page",
    "RepairReport",
    "ReviewStore",
]

_log = logging.getLogger("safegen.review")

DEFAULT_MAX_BYTES = 20 * 1024 * 1024
"""The largest image a store takes by default, in bytes (checked before anything is stored)."""

_MAX_LIST_LIMIT = 1000
_MAX_METADATA = 32
_MAX_METADATA_NAME = 128
_MAX_METADATA_VALUE = 1024
_MAX_METADATA_TOTAL = 8192  # characters in all names and values together
_MAX_TEXT = 2000  # an actor or a reason
MAX_RECORD_BYTES = 256 * 1024
"""The largest record a store writes (under DynamoDB's 400 KB item limit): a change that would
make a record larger, because its hooks owe many deliveries, waits until they are delivered.
Only changes that take an image *out* of delivery (reject, remove) may go past it, up to
:data:`MAX_TAKEDOWN_RECORD_BYTES`: a full queue refuses an approval, never a takedown."""
MAX_TAKEDOWN_RECORD_BYTES = 380 * 1024
"""The largest record a takedown (reject, remove) writes: above :data:`MAX_RECORD_BYTES`,
still under DynamoDB's 400 KB item limit. Approvals are refused from
:data:`MAX_RECORD_BYTES` on, so only takedowns and repair notes ever use the headroom."""
_RETRIES = 8  # conditional writes retried when only the outbox raced
_CONTENT_TYPES = {
    "JPEG": ("image/jpeg", ".jpg"),
    "PNG": ("image/png", ".png"),
    "GIF": ("image/gif", ".gif"),
    "WEBP": ("image/webp", ".webp"),
    "BMP": ("image/bmp", ".bmp"),
    "TIFF": ("image/tiff", ".tif"),
}


class InvalidCursorError(SafegenError, ValueError):
    """A ``list`` cursor this store did not hand out (or for another status)."""


class Moderates(Protocol):
    """Anything that moderates an image: an ``ImageModerator``, a ``Cascade``."""

    def moderate(self, image: bytes) -> ImageVerdict:
        """Moderate *image*; a failure is in the verdict."""
        ...


def _frozen_metadata(value: Mapping[str, str] | None) -> Mapping[str, str]:
    return MappingProxyType(dict(value or {}))


@attrs.frozen(kw_only=True)
class Asset:
    """One image in the store, as a reviewer or a web page sees it (never its bytes).

    :param key: its key.
    :param status: approved, pending or rejected.
    :param verdict: what moderation decided, or ``None`` when the store has no moderator.
    :param metadata: the uploader's text metadata.
    :param content_type: its media type, from its bytes (``image/png``...).
    :param size: its size in bytes.
    :param sha256: the SHA-256 of its bytes, hex.
    :param created: when it was uploaded (ISO 8601 UTC).
    :param updated: when its status last changed (ISO 8601 UTC).
    :param updated_by: who changed it last: ``"moderation"`` for an upload, else the reviewer.
    :param reason: the reviewer's reason for the last change, if any.
    """

    key: str
    status: AssetStatus
    verdict: VerdictSummary | None
    metadata: Mapping[str, str] = attrs.field(converter=_frozen_metadata)
    content_type: str
    size: int
    sha256: str
    created: str
    updated: str
    updated_by: str
    reason: str | None = None

    @classmethod
    def of(cls, record: Record) -> Asset:
        """Describe the committed *record* as an asset."""
        if record.status is None:
            raise AssetNotFoundError(record.key)
        return cls(
            key=record.key,
            status=record.status,
            verdict=None if record.verdict is None else _summary(record.verdict),
            metadata=record.metadata,
            content_type=record.content_type,
            size=record.size,
            sha256=record.sha256,
            created=record.created,
            updated=record.updated,
            updated_by=record.updated_by,
            reason=record.reason,
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the asset as plain JSON-ready data."""
        return {
            "key": self.key,
            "status": self.status.value,
            "verdict": None if self.verdict is None else self.verdict.to_dict(),
            "metadata": dict(self.metadata),
            "content_type": self.content_type,
            "size": self.size,
            "sha256": self.sha256,
            "created": self.created,
            "updated": self.updated,
            "updated_by": self.updated_by,
            "reason": self.reason,
        }


@attrs.frozen
class Page:
    """One page of :meth:`ReviewStore.list`.

    :param assets: the assets on this page, ordered by status then key.
    :param next: the cursor for the next page (pass it as ``after``), ``None`` on the last.
    """

    assets: tuple[Asset, ...]
    next: str | None = None


@attrs.frozen(kw_only=True)
class RepairReport:
    """What :meth:`ReviewStore.repair` did.

    :param completed: keys whose interrupted change was finished.
    :param rolled_back: keys whose interrupted change was undone (an upload that never
        finished is gone, as if it had not begun).
    :param strays: keys whose leftover copy in the area their record does not name was
        deleted.
    :param delivered: how many owed effects (audit entries, notifications, invalidations)
        were delivered.
    :param owed: keys that still owe effects (the hook still fails: it is retried next time).
    :param missing: keys whose bytes are in neither area (never left so by a transition).
    :param skipped: keys with a change younger than ``older_than``, left alone.
    :param swept: leftovers of interrupted writes removed.
    :param failed: keys holding an owed effect that failed for good (a hook refused it as
        invalid, e.g. text the audit trail cannot write): it is kept in the record, marked
        failed, and no longer blocks the effects after it; ``repair(retry_failed=True)``
        queues it again.
    :param problems: ``(key, what went wrong)`` for records repair could not handle this
        time (another writer changed them first, bytes larger than recorded, a storage
        error; ``"audit trail"`` for the trail's own repair); the rest were still repaired.
    """

    completed: tuple[str, ...] = ()
    rolled_back: tuple[str, ...] = ()
    strays: tuple[str, ...] = ()
    delivered: int = 0
    owed: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()
    swept: int = 0
    failed: tuple[str, ...] = ()
    problems: tuple[tuple[str, str], ...] = ()

    @property
    def clean(self) -> bool:
        """Whether the store needed nothing, owes nothing and holds no failed effect."""
        return not (
            self.completed
            or self.rolled_back
            or self.strays
            or self.owed
            or self.missing
            or self.skipped
            or self.failed
            or self.problems
        )


def _summary(data: Mapping[str, Any]) -> VerdictSummary:
    return VerdictSummary(**dict(data))


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _notifiers(value: Notifier | Sequence[Notifier]) -> tuple[Notifier, ...]:
    if callable(value):
        return (value,)
    return tuple(value)


def _positive_whole(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(f"{attribute.name}: a whole number of at least 1, got {value!r}")


def _seconds(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value < 0
    ):
        raise ConfigurationError(f"{attribute.name}: seconds, at least 0, got {value!r}")


def _flag(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, bool):
        raise ConfigurationError(f"{attribute.name}: True or False, got {value!r}")


def _moderator(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and not callable(getattr(value, "moderate", None)):
        raise ConfigurationError(f"{attribute.name}: needs a moderate(image) method")


def _text(name: str, value: object, *, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(f"{name}: a non-empty string, got {type(value).__name__}")
    if len(value) > _MAX_TEXT or "\x00" in value:
        raise ConfigurationError(f"{name}: at most {_MAX_TEXT:,} characters, no NUL")
    _utf8(name, value)
    return value


def _utf8(name: str, value: str) -> None:
    """Refuse text UTF-8 cannot encode (lone surrogates, e.g. from undecodable argv)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigurationError(f"{name}: not valid Unicode text (a lone surrogate)") from None


def _metadata(value: Mapping[str, str] | None) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigurationError("metadata: a mapping of strings to strings")
    if len(value) > _MAX_METADATA:
        raise ConfigurationError(f"metadata: at most {_MAX_METADATA} entries, got {len(value)}")
    out: dict[str, str] = {}
    entries = cast("Mapping[object, object]", value)
    for name, text in entries.items():
        if not isinstance(name, str) or not name or len(name) > _MAX_METADATA_NAME:
            raise ConfigurationError(
                f"metadata: names are strings of 1 to {_MAX_METADATA_NAME} characters"
            )
        _utf8("metadata name", name)
        if not isinstance(text, str) or len(text) > _MAX_METADATA_VALUE:
            raise ConfigurationError(
                f"metadata[{name!r}]: a string of at most {_MAX_METADATA_VALUE:,} characters"
            )
        _utf8(f"metadata[{name!r}]", text)
        out[name] = text
    if sum(len(name) + len(text) for name, text in out.items()) > _MAX_METADATA_TOTAL:
        raise ConfigurationError(
            f"metadata: at most {_MAX_METADATA_TOTAL:,} characters in all names and values"
        )
    return out


def _bounded(record: Record, *, takedown: bool = False) -> Record:
    """Return *record* if it may be written, else raise (it owes too many deliveries).

    A *takedown* (the image leaves delivery) may use the headroom up to
    :data:`MAX_TAKEDOWN_RECORD_BYTES`, so a full queue never keeps an image deliverable.
    """
    size = len(record.to_json().encode("utf-8"))
    if size > (MAX_TAKEDOWN_RECORD_BYTES if takedown else MAX_RECORD_BYTES):
        raise ConflictError(
            f"image {record.key!r} owes {len(record.outbox)} hook deliveries: deliver them "
            "(repair() once the audit trail, notifiers and invalidator work) before changing it"
        )
    return record


def _image_bytes(image: object, max_bytes: int) -> bytes:
    if not isinstance(image, bytes | bytearray | memoryview):
        raise InvalidImageError(
            f"image: bytes, bytearray or memoryview, got {type(image).__name__}", limit="type"
        )
    size = memoryview(image).nbytes
    if size == 0:
        raise InvalidImageError("image: no bytes", limit="empty")
    if size > max_bytes:
        raise InvalidImageError(
            f"image: {size:,} bytes, over the store's limit of {max_bytes:,}", limit="bytes"
        )
    return bytes(image)


def _encode_cursor(position: tuple[str, str]) -> str:
    raw = json.dumps(list(position), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str, status: AssetStatus | None) -> tuple[str, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        text_status, key = value
        check_key(key)
        listed = AssetStatus(text_status)
    except (ValueError, TypeError, UnicodeError, binascii.Error) as error:
        raise InvalidCursorError("after: not a cursor this store handed out") from error
    if status is not None and listed is not status:
        raise InvalidCursorError("after: a cursor from a list of another status")
    return listed.value, key


@attrs.frozen(kw_only=True)
class ReviewStore:
    """Uploaded images with a moderation status, a backup area, overrides and repair.

    Build one with :meth:`embedded` (a local directory and SQLite) or
    :func:`safegen.aws.review_store.aws_review_store` (S3 and DynamoDB), or from any
    :class:`~safegen.review.ports.BlobStore` and :class:`~safegen.review.ports.StateStore`.

    :param blobs: where the bytes are kept (a live and a backup area).
    :param state: where the records are kept (the authority; conditional writes).
    :param moderator: what judges an upload (anything with ``moderate(image)``); without one,
        every upload is pending, for a person to decide.
    :param audit: where every decision and override is appended (``None``: nowhere).
    :param notify: who hears about every status change.
    :param invalidate: what purges a key from a cache when its bytes leave the live area.
    :param pending_deliverable: keep pending images whose moderation succeeded and said
        REVIEW in the live area and deliver them (default ``False``: pending images wait in
        the backup area). Never an unchecked image: a failed check, a moderator that raised
        or answered garbage, or no moderator keeps it in the backup area.
    :param max_bytes: the largest image taken, checked before moderation or storage.
    :param grace: seconds a change may be in progress before :meth:`repair` touches it
        (so a repair running beside live writers leaves their changes alone).

    ``clock`` returns the current time (tests pass a fixed one).
    """

    blobs: BlobStore
    state: StateStore
    moderator: Moderates | None = attrs.field(default=None, validator=_moderator)
    audit: AuditSink | None = None
    notify: tuple[Notifier, ...] = attrs.field(default=(), converter=_notifiers)
    invalidate: Invalidator | None = None
    pending_deliverable: bool = attrs.field(default=False, validator=_flag)
    max_bytes: int = attrs.field(default=DEFAULT_MAX_BYTES, validator=_positive_whole)
    grace: float = attrs.field(default=60.0, validator=_seconds)
    clock: Callable[[], datetime] = _utcnow

    @classmethod
    def embedded(
        cls,
        directory: str | Path,
        *,
        moderator: Moderates | None = None,
        audit: AuditSink | None = None,
        notify: Notifier | Sequence[Notifier] = (),
        invalidate: Invalidator | None = None,
        pending_deliverable: bool = False,
        max_bytes: int = DEFAULT_MAX_BYTES,
        grace: float = 60.0,
    ) -> ReviewStore:
        """Open the store in *directory* (made if missing): images in files, records in SQLite.

        Needs nothing beyond the standard library. Several processes may share the directory.
        """
        from safegen.review.embedded import DirectoryBlobs, SQLiteState

        root = Path(directory)
        return cls(
            blobs=DirectoryBlobs.at(root),
            state=SQLiteState.at(root / "state.sqlite3"),
            moderator=moderator,
            audit=audit,
            notify=notify,
            invalidate=invalidate,
            pending_deliverable=pending_deliverable,
            max_bytes=max_bytes,
            grace=grace,
        )

    # --- reading -------------------------------------------------------------------------

    def get(self, key: str) -> Asset:
        """Return the image under *key*.

        :raises AssetNotFoundError: there is none (or its upload is unfinished).
        :raises InvalidKeyError: *key* is not a key a store can hold.
        """
        record = self.state.get(check_key(key))
        if record is None or record.status is None:
            raise AssetNotFoundError(key)
        return Asset.of(record)

    def list(
        self, *, status: AssetStatus | None = None, limit: int = 50, after: str | None = None
    ) -> Page:
        """Return one page of images, ordered by status (approved, pending, rejected) then key.

        :param status: only images with this status; all when ``None``.
        :param limit: at most this many (1 to 1,000).
        :param after: the ``next`` cursor of the previous page.
        :raises InvalidCursorError: *after* is not a cursor of this listing.
        """
        asked: object = status
        if asked is not None and not isinstance(asked, AssetStatus):
            raise ConfigurationError(f"status: an AssetStatus, got {status!r}")
        size: object = limit
        if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= _MAX_LIST_LIMIT:
            raise ConfigurationError(f"limit: a whole number from 1 to 1,000, got {limit!r}")
        position = None if after is None else _decode_cursor(after, status)
        records, last = self.state.page(status=status, limit=limit, after=position)
        assets = tuple(Asset.of(record) for record in records)
        return Page(assets, None if last is None else _encode_cursor(last))

    def deliverable(self, key: str) -> bool:
        """Whether the image under *key* may be delivered now.

        ``True`` only for a committed approved image (or a pending one whose moderation
        succeeded and said REVIEW, with ``pending_deliverable``) in the live area with no
        change in progress. ``False`` for everything else, including keys that are missing
        or could not exist.
        """
        try:
            record = self.state.get(check_key(key))
        except SafegenError:
            return False
        return record is not None and self._deliverable(record)

    def _deliverable(self, record: Record) -> bool:
        if record.intent is not None or record.area is not Area.LIVE:
            return False
        verdict = None if record.verdict is None else _summary(record.verdict)
        return self._live(record.status, verdict)

    def open(self, key: str, *, reviewer: bool = False) -> bytes:
        """Return the image's bytes, checked against its recorded SHA-256.

        :param reviewer: also open images that are not deliverable (for a reviewer's eyes).
        :raises AssetNotFoundError: there is no such image.
        :raises NotDeliverableError: it is not deliverable and *reviewer* is false.
        :raises IntegrityError: its bytes are missing or not the ones recorded.
        """
        record = self.state.get(check_key(key))
        if record is None or record.status is None:
            raise AssetNotFoundError(key)
        if not reviewer and not self._deliverable(record):
            raise NotDeliverableError(f"image {key!r} is {record.status.value}: not deliverable")
        areas = [record.area] if record.area is not None else []
        if record.intent is not None and record.intent.area is not None:
            areas.append(record.intent.area)
        for area in areas:
            data = self.blobs.read(area, key, max_bytes=record.size)
            if data is not None and hashlib.sha256(data).hexdigest() == record.sha256:
                return data
        raise IntegrityError(f"image {key!r}: its bytes are missing or altered")

    # --- changing ------------------------------------------------------------------------

    def put(
        self,
        image: bytes | bytearray | memoryview,
        *,
        key: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> Asset:
        """Moderate *image* and store it: ALLOW approved, REVIEW pending, BLOCK rejected.

        A check that failed (``verdict.failed``, even one configured ``fail_open``), a
        moderator that raised, or one that answered anything but an
        :class:`~safegen.ImageVerdict` makes the image pending, with the error in its
        verdict: never approved without a look, never delivered. The moderator's own timeouts
        bound how long this waits for it. The size limit and the format are checked before
        moderation; nothing is stored unless the upload completes (see :meth:`repair`).

        :param key: where to store it; a fresh random key with the format's extension when
            ``None``.
        :param metadata: text to keep with it (at most 32 entries).
        :raises InvalidImageError: not bytes, empty, over ``max_bytes``, or not an image format.
        :raises InvalidKeyError: *key* cannot be used.
        :raises AssetExistsError: an image with *key* is already stored (remove it first).
        """
        data = _image_bytes(image, self.max_bytes)
        kind = _CONTENT_TYPES.get(sniff_format(data) or "")
        if kind is None:
            raise InvalidImageError("image: not a known image format", limit="format")
        content_type, extension = kind
        key = f"{uuid.uuid4().hex}{extension}" if key is None else check_key(key)
        meta = _metadata(metadata)
        # A tombstone (a removed image still owing effects) is taken over, its outbox kept.
        existing = self.state.get(key)
        if existing is not None and existing.status is not None:
            raise AssetExistsError(f"an image with key {key!r} is already stored")
        if existing is not None and existing.intent is not None:
            raise ConflictError(
                f"key {key!r}: an upload or a removal is in progress"
                " (run repair() if a process died)"
            )
        summary, status = self._moderate(data)
        now = self._now()
        try:
            self._auditable("upload", key, by="moderation", reason=None, at=now, verdict=summary)
        except ValueError as error:  # a verdict the trail cannot record: a person decides
            _log.warning(
                "review: the verdict cannot be audited (%s); the upload is pending",
                type(error).__name__,
            )
            summary = VerdictSummary(
                action="review", error=f"the verdict cannot be audited ({type(error).__name__})"
            )
            status = AssetStatus.PENDING
        area = Area.LIVE if self._live(status, summary) else Area.BACKUP
        token = uuid.uuid4().hex  # this writer's claim on the change's effects
        effects = self._effects(
            "upload",
            key,
            before=None,
            after=status,
            by="moderation",
            reason=None,
            at=now,
            verdict=summary,
            invalidate=False,
            claim=token,
        )
        record = Record(
            key=key,
            version=first_version() if existing is None else existing.version + 1,
            outbox=() if existing is None else existing.outbox,
            status=None,
            area=None,
            verdict=None if summary is None else summary.to_dict(),
            metadata=meta,
            content_type=content_type,
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            created=now,
            updated=now,
            updated_by="moderation",
            intent=Intent(
                op="put", area=area, status=status, at=now, by="moderation", effects=effects
            ),
        )
        _bounded(record)
        if existing is None:
            self.state.create(record)
        else:
            self.state.update(record, expected_version=existing.version)
        try:
            self.blobs.write(area, key, data, content_type=content_type)
        except Exception:
            self._undo(record, area)
            raise
        committed = self._commit(record)
        try:
            self.state.update(committed, expected_version=record.version)
        except ConflictError:
            self._abandon(key, area, by="moderation")
            raise
        self._drain(key, mine=token)
        return Asset.of(committed)

    def approve(self, key: str, *, by: str, reason: str | None = None) -> Asset:
        """Approve the image: a rejected one is restored from backup, a pending one goes live.

        Approving an approved image changes nothing (no audit entry, no notification).

        :raises AssetNotFoundError: there is no such image.
        :raises ConflictError: another writer changed it first, or a change is in progress.
        """
        return self._decide(key, AssetStatus.APPROVED, by=by, reason=reason)

    def reject(self, key: str, *, by: str, reason: str | None = None) -> Asset:
        """Reject the image: its bytes leave the live area (and the cache) for the backup.

        Rejecting a rejected image changes nothing.

        :raises AssetNotFoundError: there is no such image.
        :raises ConflictError: another writer changed it first, or a change is in progress.
        """
        return self._decide(key, AssetStatus.REJECTED, by=by, reason=reason)

    def remove(self, key: str, *, by: str, reason: str | None = None) -> None:
        """Delete the image and its record (audited as ``"remove"``; purged from the cache).

        :raises AssetNotFoundError: there is no such image.
        :raises ConflictError: another writer changed it first, or a change is in progress.
        """
        key = check_key(key)
        actor = _text("by", by)
        why = _text("reason", reason, optional=True)
        assert actor is not None
        self._drain(key)
        record = self._settled(key)
        now = self._now()
        token = uuid.uuid4().hex  # this writer's claim on the change's effects
        effects = self._effects(
            "remove",
            key,
            before=record.status,
            after=None,
            by=actor,
            reason=why,
            at=now,
            verdict=None,
            invalidate=record.area is Area.LIVE,
            claim=token,
        )
        begun = attrs.evolve(
            record,
            version=record.version + 1,
            intent=Intent(
                op="remove", area=None, status=None, at=now, by=actor, reason=why, effects=effects
            ),
        )
        self.state.update(_bounded(begun, takedown=True), expected_version=record.version)
        self._finish_remove(begun)
        self._drain(key, mine=token)

    def repair(
        self,
        *,
        older_than: float | None = None,
        by: str = "repair",
        deep: bool = False,
        retry_failed: bool = False,
    ) -> RepairReport:
        """Finish or undo every change a crash interrupted, and deliver every owed effect.

        Walks every record, one page at a time. An intent older than *older_than* seconds (the
        store's ``grace`` by default; pass ``0`` when no other writer runs, e.g. at start-up)
        is completed or rolled back as the module's ordering says; owed audit entries,
        notifications and invalidations are retried. Each key repair changed gets an audit
        entry ``"repair"`` (actor *by*). Idempotent; safe to run again after a crash inside it.

        :param deep: also look for every image's bytes in both areas (two storage requests
            per image): delete a copy left in the area its record does not name, and report
            images whose bytes are nowhere. Transitions never leave such copies behind a
            settled record; a writer that lost a race to a repair and then died may.
        :param retry_failed: queue again the effects a hook refused for good (reported in
            ``failed``), e.g. once the audit trail accepts them; they are retried in order.

        The audit trail's own ``repair()`` (a torn last entry) runs first, when it has one.
        A record repair cannot handle this time (another writer changed it first, bytes
        larger than recorded, a storage error) is reported in ``problems``; the walk goes on.
        Every byte repair deletes is deleted only after a conditional write that claims the
        record, so two repairs (or a repair and a writer) running at once lose nothing.
        """
        wait = self.grace if older_than is None else older_than
        _seconds(self, attrs.fields(ReviewStore).grace, wait)
        actor = _text("by", by)
        assert actor is not None
        report: dict[str, list[str]] = {
            "completed": [],
            "rolled_back": [],
            "strays": [],
            "owed": [],
            "missing": [],
            "skipped": [],
        }
        delivered = 0
        problems: list[tuple[str, str]] = []
        fix_trail = getattr(self.audit, "repair", None)
        if callable(fix_trail):
            try:
                fix_trail()
            except Exception as error:  # reported; the store's own repair goes on
                problems.append(("audit trail", type(error).__name__))
        now = self.clock()
        failed: list[str] = []
        for record in self.state.scan():
            try:
                if retry_failed and any("failed" in e for e in record.outbox):
                    self._requeue(record.key)
                outcome = self._repair_one(record, now=now, wait=wait, by=actor, deep=deep)
                if outcome is not None:
                    report[outcome].append(record.key)
                if outcome is None and not record.outbox and record.status is not None:
                    continue  # nothing owed (a writer that queues more delivers it itself)
                done, left = self._drain(record.key, wait=wait)
            except SafegenError as error:  # this record waits for the next repair
                problems.append((record.key, f"{type(error).__name__}: {error}"))
                continue
            delivered += done
            if left:
                report["owed"].append(record.key)
            current = self.state.get(record.key)
            if current is not None and any("failed" in e for e in current.outbox):
                failed.append(record.key)
        swept = self.blobs.sweep()
        return RepairReport(
            completed=tuple(report["completed"]),
            rolled_back=tuple(report["rolled_back"]),
            strays=tuple(report["strays"]),
            delivered=delivered,
            owed=tuple(report["owed"]),
            missing=tuple(report["missing"]),
            skipped=tuple(report["skipped"]),
            swept=swept,
            failed=tuple(failed),
            problems=tuple(problems),
        )

    def _requeue(self, key: str) -> None:
        """Take the failed marks off *key*'s owed effects, so the drain retries them."""
        current = self.state.get(key)
        if current is None:
            return
        outbox = tuple(
            {n: v for n, v in e.items() if n not in ("failed", "failed_at")} for e in current.outbox
        )
        self.state.update(
            attrs.evolve(current, version=current.version + 1, outbox=outbox),
            expected_version=current.version,
        )

    # --- transitions, step by step ----------------------------------------------------------

    def _decide(self, key: str, target: AssetStatus, *, by: str, reason: str | None) -> Asset:
        key = check_key(key)
        actor = _text("by", by)
        why = _text("reason", reason, optional=True)
        assert actor is not None
        self._drain(key)
        record = self._settled(key)
        if record.status is target:
            return Asset.of(record)
        if target is AssetStatus.APPROVED:
            event = "restore" if record.status is AssetStatus.REJECTED else "approve"
        else:
            event = "reject"
        verdict = None if record.verdict is None else _summary(record.verdict)
        area = Area.LIVE if self._live(target, verdict) else Area.BACKUP
        takedown = target is not AssetStatus.APPROVED
        now = self._now()
        assert record.area is not None
        token = uuid.uuid4().hex  # this writer's claim on the change's effects
        effects = self._effects(
            event,
            key,
            before=record.status,
            after=target,
            by=actor,
            reason=why,
            at=now,
            verdict=verdict,
            invalidate=record.area is Area.LIVE and area is not Area.LIVE,
            claim=token,
        )
        if area is record.area:
            committed = attrs.evolve(
                record,
                version=record.version + 1,
                status=target,
                updated=now,
                updated_by=actor,
                reason=why,
                outbox=(*record.outbox, *effects),
            )
            self.state.update(
                _bounded(committed, takedown=takedown), expected_version=record.version
            )
        else:
            begun = attrs.evolve(
                record,
                version=record.version + 1,
                intent=Intent(
                    op="move",
                    area=area,
                    status=target,
                    at=now,
                    by=actor,
                    reason=why,
                    effects=effects,
                ),
            )
            self.state.update(_bounded(begun, takedown=takedown), expected_version=record.version)
            committed = self._move(begun, source=record.area)
        self._drain(key, mine=token)
        return Asset.of(committed)

    def _move(self, begun: Record, *, source: Area) -> Record:
        """Copy, verify, mark copied, delete the source, commit (each step crash-safe)."""
        assert begun.intent is not None
        assert begun.intent.area is not None
        target = begun.intent.area
        try:
            self.blobs.copy(begun.key, source=source, target=target)
            if not self._intact(begun, target):
                raise IntegrityError(
                    f"image {begun.key!r}: the copy in {target.value} is not intact"
                )
        except Exception:
            self._undo(begun, target)
            raise
        copied = attrs.evolve(
            begun, version=begun.version + 1, intent=attrs.evolve(begun.intent, phase="copied")
        )
        try:
            self.state.update(copied, expected_version=begun.version)
        except ConflictError:
            self._abandon(begun.key, target, by=begun.intent.by)
            raise
        return self._finish_move(copied, source=source)

    def _finish_move(self, copied: Record, *, source: Area) -> Record:
        self.blobs.delete(source, copied.key)
        committed = self._commit(copied)
        self.state.update(committed, expected_version=copied.version)
        return committed

    def _finish_remove(self, begun: Record) -> Record:
        self.blobs.delete(Area.LIVE, begun.key)
        self.blobs.delete(Area.BACKUP, begun.key)
        tombstone = self._commit(begun)
        self.state.update(tombstone, expected_version=begun.version)
        return tombstone

    def _finish_sweep(self, begun: Record) -> Record:
        """Delete the stray copy a claimed ``sweep`` intent names; keep the record as it was."""
        assert begun.intent is not None
        assert begun.intent.area is not None
        self.blobs.delete(begun.intent.area, begun.key)
        done = attrs.evolve(begun, version=begun.version + 1, intent=None)
        self.state.update(done, expected_version=begun.version)
        return done

    def _mark_undoing(self, record: Record) -> Record:
        """Claim the record's change for rolling back: no byte is deleted before this write."""
        assert record.intent is not None
        undoing = attrs.evolve(
            record, version=record.version + 1, intent=attrs.evolve(record.intent, phase="undoing")
        )
        self.state.update(undoing, expected_version=record.version)
        return undoing

    def _finish_undo(self, undoing: Record) -> None:
        """Roll back a claimed (``undoing``) put or move: delete its target copy, drop it."""
        assert undoing.intent is not None
        assert undoing.intent.area is not None
        self.blobs.delete(undoing.intent.area, undoing.key)
        if undoing.intent.op == "put":
            self._forget(undoing)
        else:
            self.state.update(
                attrs.evolve(undoing, version=undoing.version + 1, intent=None),
                expected_version=undoing.version,
            )

    def _claim(self, record: Record) -> Record:
        """Write *record* again one version up: a writer working from a stale read loses here."""
        claimed = attrs.evolve(record, version=record.version + 1)
        self.state.update(claimed, expected_version=record.version)
        return claimed

    def _commit(self, record: Record) -> Record:
        """Return the record as it is once its intent is done (the intent's effects queued)."""
        intent = record.intent
        assert intent is not None
        return attrs.evolve(
            record,
            version=record.version + 1,
            status=intent.status,
            area=intent.area,
            updated=intent.at,
            updated_by=intent.by,
            reason=intent.reason,
            intent=None,
            outbox=(*record.outbox, *intent.effects),
        )

    def _undo(self, begun: Record, target: Area) -> None:
        """Take the intent back after a step before the point of no return failed (best effort).

        The rollback is claimed (a conditional write) before any byte is deleted: if a repair
        took the change over first, this deletes nothing. What this cannot undo (the state
        store is down too) :meth:`repair` undoes later.
        """
        try:
            self._finish_undo(self._mark_undoing(begun))
        except Exception as error:
            _log.warning(
                "review: could not undo a failed change (%s); repair() will", type(error).__name__
            )

    def _forget(self, record: Record) -> None:
        """Take back an unfinished upload's record: gone, or a tombstone while it owes effects."""
        if record.outbox:
            self.state.update(
                attrs.evolve(
                    record, version=record.version + 1, status=None, area=None, intent=None
                ),
                expected_version=record.version,
            )
        else:
            self.state.delete(record.key, expected_version=record.version)

    def _abandon(self, key: str, area: Area, *, by: str) -> None:
        """After losing a race to :meth:`repair`: delete our copy unless a record wants it."""
        try:
            self._clear_stray(key, area, by=by)
        except SafegenError as error:  # deep repair finds what is left
            _log.warning("review: could not clear a copy (%s)", type(error).__name__)

    def _clear_stray(self, key: str, area: Area, *, by: str) -> bool:
        """Delete the copy of *key* in *area* if no record wants it; claim the record first.

        The claim is an intent written conditionally (a ``remove`` on a missing record or a
        tombstone, a ``sweep`` on a settled record), so no other writer can put bytes there
        between the check and the delete, and a crash leaves an intent repair finishes.

        :returns: whether a copy was deleted (or could have been).
        :raises ConflictError: another writer changed the record first (nothing deleted).
        """
        current = self.state.get(key)
        now = self._now()
        if current is None:
            claim = Record(
                key=key,
                version=first_version(),
                status=None,
                area=None,
                verdict=None,
                metadata={},
                content_type="application/octet-stream",
                size=0,
                sha256="",
                created=now,
                updated=now,
                updated_by=by,
                intent=Intent(op="remove", area=None, status=None, at=now, by=by),
            )
            self.state.create(claim)
            tombstone = self._finish_remove(claim)
            with contextlib.suppress(ConflictError):
                self.state.delete(key, expected_version=tombstone.version)
            return True
        if current.intent is not None or current.area is area:
            return False  # wanted, or its own change is in progress (repair finishes that)
        if current.status is None:  # a tombstone: finish the removal again
            begun = attrs.evolve(
                current,
                version=current.version + 1,
                intent=Intent(op="remove", area=None, status=None, at=now, by=by),
            )
            self.state.update(begun, expected_version=current.version)
            self._finish_remove(begun)
            return True
        begun = attrs.evolve(
            current,
            version=current.version + 1,
            intent=Intent(op="sweep", area=area, status=current.status, at=now, by=by),
        )
        self.state.update(begun, expected_version=current.version)
        self._finish_sweep(begun)
        return True

    def _repair_one(
        self, record: Record, *, now: datetime, wait: float, by: str, deep: bool
    ) -> str | None:
        intent = record.intent
        if intent is not None:
            if (now - _parse_iso(intent.at)).total_seconds() < wait:
                return "skipped"
            return self._resolve(record, intent, by=by)
        if not deep:
            return None
        if record.status is None:
            # A tombstone: make sure no bytes are left; the drain deletes it once delivered.
            if not any(self.blobs.exists(a, record.key) for a in Area):
                return None
            if self._clear_stray(record.key, Area.LIVE, by=by):
                self._note_repair(record.key, by, "deleted what a removal left")
                return "strays"
            return None
        assert record.area is not None
        if record.area is Area.LIVE and not self._deliverable(record):
            return self._take_out_of_live(record, by=by)
        other = Area.BACKUP if record.area is Area.LIVE else Area.LIVE
        here = self.blobs.exists(record.area, record.key)
        if self.blobs.exists(other, record.key):
            if not here:
                return "missing"
            if self._clear_stray(record.key, other, by=by):
                self._note_repair(record.key, by, f"deleted a stray copy in {other.value}")
                return "strays"
            return None
        return None if here else "missing"

    def _take_out_of_live(self, record: Record, *, by: str) -> str | None:
        """Move a settled image the live area may not hold to the backup (and purge it).

        Such a record was written before a rule tightened (e.g. a pending image whose check
        failed, kept live by an older ``pending_deliverable``); the move keeps its status,
        its reviewer and its reason.
        """
        if not self.blobs.exists(Area.LIVE, record.key):
            return "missing"
        effects: tuple[dict[str, Any], ...] = ()
        if self.invalidate is not None:
            effects = ({"id": uuid.uuid4().hex, "kind": "invalidate", "keys": [record.key]},)
        begun = attrs.evolve(
            record,
            version=record.version + 1,
            intent=Intent(
                op="move",
                area=Area.BACKUP,
                status=record.status,
                at=record.updated,
                by=record.updated_by,
                reason=record.reason,
                effects=effects,
            ),
        )
        self.state.update(begun, expected_version=record.version)
        self._move(begun, source=Area.LIVE)
        self._note_repair(record.key, by, "moved an undeliverable image out of the live area")
        return "completed"

    def _resolve(self, record: Record, intent: Intent, *, by: str) -> str:
        """Finish or roll back *record*'s intent; every byte deleted only after a claim.

        The first write claims the record (conditional on the version read), so a repair
        working from a stale read fails here, before it touches any byte; a rollback is then
        written down (phase ``undoing``) before the copy it deletes.
        """
        key = record.key
        record = self._claim(record)
        if intent.op == "remove":
            self._finish_remove(record)
            self._note_repair(key, by, "finished an interrupted removal")
            return "completed"
        if intent.op == "sweep":
            self._finish_sweep(record)
            self._note_repair(key, by, "finished deleting a stray copy")
            return "strays"
        assert intent.area is not None
        if intent.phase == "undoing":
            self._finish_undo(record)
            self._note_repair(key, by, f"undid an unfinished {intent.op}")
            return "rolled_back"
        if intent.op == "put":
            if self._intact(record, intent.area):
                self.state.update(self._commit(record), expected_version=record.version)
                self._note_repair(key, by, "finished an interrupted upload")
                return "completed"
            self._finish_undo(self._mark_undoing(record))
            self._note_repair(key, by, "undid an unfinished upload")
            return "rolled_back"
        source = record.area
        assert source is not None
        if intent.phase == "copied" or self._intact(record, intent.area):
            if intent.phase != "copied":
                copied = attrs.evolve(
                    record, version=record.version + 1, intent=attrs.evolve(intent, phase="copied")
                )
                self.state.update(copied, expected_version=record.version)
                record = copied
            self._finish_move(record, source=source)
            self._note_repair(key, by, f"finished an interrupted move to {intent.area.value}")
            return "completed"
        if not self.blobs.exists(source, key):
            return "missing"
        self._finish_undo(self._mark_undoing(record))
        self._note_repair(key, by, f"undid an unfinished move to {intent.area.value}")
        return "rolled_back"

    def _note_repair(self, key: str, by: str, reason: str) -> None:
        """Queue a ``repair`` audit entry on the record (delivered with the rest)."""
        if self.audit is None:
            return
        effect = self._audit_effect(
            "repair", key, by=by, reason=reason, at=self._now(), verdict=None
        )
        for _ in range(_RETRIES):
            current = self.state.get(key)
            if current is None:  # the record is gone (a rolled-back upload): no outbox
                try:
                    self._deliver(effect)
                except Exception as error:
                    _log.warning("review: a repair audit entry failed (%s)", type(error).__name__)
                return
            try:
                self.state.update(
                    attrs.evolve(
                        current, version=current.version + 1, outbox=(*current.outbox, effect)
                    ),
                    expected_version=current.version,
                )
                return
            except ConflictError:
                continue

    def _intact(self, record: Record, area: Area) -> bool:
        try:
            data = self.blobs.read(area, record.key, max_bytes=record.size)
        except IntegrityError:  # more bytes than recorded: not this image's
            return False
        return data is not None and hashlib.sha256(data).hexdigest() == record.sha256

    def _settled(self, key: str) -> Record:
        record = self.state.get(key)
        if record is None or record.status is None:
            raise AssetNotFoundError(key)
        if record.intent is not None:
            raise ConflictError(
                f"image {key!r} has a change in progress (run repair() if a process died)"
            )
        return record

    # --- moderation and effects ---------------------------------------------------------------

    def _moderate(self, data: bytes) -> tuple[VerdictSummary | None, AssetStatus]:
        if self.moderator is None:
            return None, AssetStatus.PENDING
        from safegen.image import ImageVerdict

        try:
            verdict: object = self.moderator.moderate(data)
            if not isinstance(verdict, ImageVerdict):
                _log.warning(
                    "review: the moderator answered %s, not an ImageVerdict; the upload is pending",
                    type(verdict).__name__,
                )
                return VerdictSummary(
                    action="review",
                    error=f"the moderator answered {type(verdict).__name__}, not an ImageVerdict",
                ), AssetStatus.PENDING
            policy = getattr(self.moderator, "policy", None)
            summary = VerdictSummary.of(
                verdict, policy if isinstance(policy, ModerationPolicy) else None
            )
        except Exception as error:  # a moderator should not raise: fail closed, to a person
            _log.warning(
                "review: the moderator raised %s; the upload is pending", type(error).__name__
            )
            return VerdictSummary(
                action="review", error=f"the moderator raised {type(error).__name__}"
            ), AssetStatus.PENDING
        if verdict.failed or summary.error is not None:
            return summary, AssetStatus.PENDING
        return summary, {
            "allow": AssetStatus.APPROVED,
            "review": AssetStatus.PENDING,
            "block": AssetStatus.REJECTED,
        }[summary.action]

    def _live(self, status: AssetStatus | None, verdict: VerdictSummary | None) -> bool:
        """Whether an image with *status* and *verdict* belongs in the live area.

        A pending image is live only with ``pending_deliverable`` *and* a successful REVIEW
        verdict: a failed check, a moderator that raised or answered garbage, and a store
        without a moderator are never delivered unseen.
        """
        return status is AssetStatus.APPROVED or (
            status is AssetStatus.PENDING
            and self.pending_deliverable
            and verdict is not None
            and verdict.action == "review"
            and verdict.error is None
        )

    def _auditable(
        self,
        event: str,
        key: str,
        *,
        by: str,
        reason: str | None,
        at: str,
        verdict: VerdictSummary | None,
    ) -> None:
        """Raise ValueError (nothing changed yet) if the audit trail could never write this."""
        if self.audit is None:
            return
        AuditEntry.seal(
            seq=0,
            event=event,
            key=key,
            actor=by,
            at=at,
            prev=GENESIS,
            verdict=verdict,
            reason=reason,
        )

    def _now(self) -> str:
        return _iso(self.clock())

    def _audit_effect(
        self,
        event: str,
        key: str,
        *,
        by: str,
        reason: str | None,
        at: str,
        verdict: VerdictSummary | None,
    ) -> dict[str, Any]:
        return {
            "id": uuid.uuid4().hex,
            "kind": "audit",
            "event": event,
            "key": key,
            "actor": by,
            "reason": reason,
            "at": at,
            "verdict": None if verdict is None else verdict.to_dict(),
        }

    def _effects(
        self,
        event: str,
        key: str,
        *,
        before: AssetStatus | None,
        after: AssetStatus | None,
        by: str,
        reason: str | None,
        at: str,
        verdict: VerdictSummary | None,
        invalidate: bool,
        claim: str,
    ) -> tuple[dict[str, Any], ...]:
        """Return the change's effects, claimed by its writer (*claim*) to deliver them.

        :raises ValueError: the audit trail could never write the entry (nothing changed).
        """
        self._auditable(event, key, by=by, reason=reason, at=at, verdict=verdict)
        effects: list[dict[str, Any]] = []
        if self.audit is not None:
            effects.append(
                self._audit_effect(event, key, by=by, reason=reason, at=at, verdict=verdict)
            )
        if self.notify and after is not None:
            effects.append(
                {
                    "id": uuid.uuid4().hex,
                    "kind": "notify",
                    "key": key,
                    "before": None if before is None else before.value,
                    "after": after.value,
                    "actor": by,
                    "reason": reason,
                    "at": at,
                }
            )
        if invalidate and self.invalidate is not None:
            effects.append({"id": uuid.uuid4().hex, "kind": "invalidate", "keys": [key]})
        return tuple({**effect, "claim": claim, "claimed": at} for effect in effects)

    def _deliver(self, effect: Mapping[str, Any]) -> None:
        kind = effect["kind"]
        if kind == "audit":
            if self.audit is None:
                raise ConfigurationError("an audit entry is owed but this store has no audit")
            verdict = effect.get("verdict")
            self.audit.append(
                effect["event"],
                key=effect["key"],
                actor=effect["actor"],
                verdict=None if verdict is None else _summary(verdict),
                reason=effect.get("reason"),
                at=effect.get("at"),
            )
        elif kind == "notify":
            if not self.notify:
                raise ConfigurationError("a notification is owed but this store has no notifier")
            change = StatusChange(
                key=effect["key"],
                before=None if effect["before"] is None else AssetStatus(effect["before"]),
                after=AssetStatus(effect["after"]),
                actor=effect["actor"],
                reason=effect.get("reason"),
                at=effect["at"],
            )
            for notifier in self.notify:
                notifier(change)
        elif kind == "invalidate":
            if self.invalidate is None:
                raise ConfigurationError("an invalidation is owed but this store has none")
            self.invalidate(list(effect["keys"]))
        else:
            raise ConfigurationError(f"an owed effect of an unknown kind {kind!r}")

    def _drain(
        self, key: str, *, mine: str | None = None, wait: float | None = None
    ) -> tuple[int, bool]:
        """Deliver the record's owed effects in order; return (delivered, some still owed).

        An effect is delivered by whoever holds its claim: the writer that committed it
        (*mine*), or a drainer that claimed it with a conditional write. A fresh claim of
        another writer is left alone, and so is every later effect of its kind, so each kind
        is delivered in order even when two writers drain one image at once. A claim older
        than *wait* seconds (the store's ``grace``) is a dead writer's and is taken over.
        """
        delivered, left, failed = 0, False, set[str]()
        for _ in range(_RETRIES):
            done, left, again = self._drain_once(
                key, mine=mine, wait=self.grace if wait is None else wait, failed=failed
            )
            delivered += done
            if not again:
                break
            mine = None  # a pass releases its claims; the next one claims anew
        return delivered, left

    def _drain_once(
        self, key: str, *, mine: str | None, wait: float, failed: set[str]
    ) -> tuple[int, bool, bool]:
        record = self.state.get(key)
        if record is None:
            return 0, False, False
        if not any("failed" not in e for e in record.outbox):
            if record.outbox:
                return 0, False, False  # only failed effects: kept, never dropped
            if record.status is None and record.intent is None:  # a tombstone owing nothing
                with contextlib.suppress(ConflictError):
                    self.state.delete(key, expected_version=record.version)
            return 0, False, False
        stale = self.clock() - timedelta(seconds=wait)
        take: set[str] = set()
        blocked = set(failed)
        for effect in record.outbox:
            if effect["kind"] in blocked or "failed" in effect:
                continue
            claim = effect.get("claim")
            if claim is None or claim == mine or _parse_iso(effect["claimed"]) <= stale:
                take.add(effect["id"])
            else:
                blocked.add(effect["kind"])  # another writer is delivering it: keep the order
        token = mine or uuid.uuid4().hex
        if any(e["id"] in take and e.get("claim") != token for e in record.outbox):
            at = self._now()
            claimed = attrs.evolve(
                record,
                version=record.version + 1,
                outbox=tuple(
                    {**e, "claim": token, "claimed": at} if e["id"] in take else e
                    for e in record.outbox
                ),
            )
            try:
                self.state.update(claimed, expected_version=record.version)
            except ConflictError:
                return 0, True, False  # another writer moved first: it delivers (or repair)
            record = claimed
        done: set[str] = set()
        dead: dict[str, str] = {}  # effects refused for good: id -> the error's type
        for effect in record.outbox:
            if effect["id"] not in take or effect["kind"] in failed:
                continue
            try:
                self._deliver(effect)
            except Exception as error:  # a hook failed: the change stands, the effect stays owed
                if _permanent(error):  # it can never be delivered: keep it, marked, and go on
                    dead[effect["id"]] = type(error).__name__
                    _log.warning(
                        "review: a %s hook refused an effect for good (%s); it is kept as "
                        "failed and no longer blocks the effects after it",
                        effect["kind"],
                        type(error).__name__,
                    )
                    continue
                failed.add(effect["kind"])
                _log.warning(
                    "review: a %s hook failed (%s); it stays owed for repair()",
                    effect["kind"],
                    type(error).__name__,
                )
                continue
            done.add(effect["id"])
        at = self._now()
        for _ in range(_RETRIES):
            current = self.state.get(key)
            if current is None:
                return len(done), False, False
            left = tuple(
                _dead(_released(e, token), dead[e["id"]], at)
                if e["id"] in dead
                else _released(e, token)
                for e in current.outbox
                if e["id"] not in done
            )
            owed = any("failed" not in e for e in left)
            try:
                if not left and current.status is None and current.intent is None:
                    self.state.delete(key, expected_version=current.version)
                elif left != current.outbox:
                    self.state.update(
                        attrs.evolve(current, version=current.version + 1, outbox=left),
                        expected_version=current.version,
                    )
            except ConflictError:
                continue
            return len(done), owed, bool(done or dead) and owed
        return len(done), True, False


def _permanent(error: Exception) -> bool:
    """Whether a hook's *error* says the effect can never be delivered, however often retried.

    A safegen error that is a :class:`ValueError` (the hook refused the effect's content:
    an :class:`~safegen.review.audit.AuditFieldError`, a service's
    :class:`~safegen.errors.InvalidRequestError`) or text that cannot be encoded. Not a
    :class:`~safegen.errors.ConfigurationError` (a store without the hook: another store
    delivers it), nor an outage, a throttle, a conflict or a denied permission (transient,
    or fixed by an operator): those stay owed, in order.
    """
    if isinstance(error, UnicodeError):
        return True
    if isinstance(error, ServiceError):
        return isinstance(error, InvalidRequestError)
    return (
        isinstance(error, SafegenError)
        and isinstance(error, ValueError)
        and not isinstance(error, ConfigurationError)
    )


def _dead(effect: Mapping[str, Any], error: str, at: str) -> Mapping[str, Any]:
    """Return *effect* marked as failed for good (kept in the record, skipped by drains)."""
    return {**effect, "failed": error, "failed_at": at}


def _released(effect: Mapping[str, Any], token: str) -> Mapping[str, Any]:
    """Return *effect* without *token*'s claim on it (so the next drainer need not wait)."""
    if effect.get("claim") != token:
        return effect
    return {name: value for name, value in effect.items() if name not in ("claim", "claimed")}
