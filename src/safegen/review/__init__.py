"""Upload moderation as a service: statuses, backup, overrides, an audit trail, a review page."""

from safegen.review.events import AssetStatus, Invalidator, Notifier, StatusChange, VerdictSummary
from safegen.review.ports import (
    Area,
    AssetExistsError,
    AssetNotFoundError,
    AuditSink,
    BlobStore,
    ConflictError,
    IntegrityError,
    InvalidKeyError,
    NotDeliverableError,
    StateStore,
    StorageError,
    check_key,
)
from safegen.review.store import (
    Asset,
    InvalidCursorError,
    Moderates,
    Page,
    RepairReport,
    ReviewStore,
)

__all__ = [
    "Area",
    "Asset",
    "AssetExistsError",
    "AssetNotFoundError",
    "AssetStatus",
    "AuditSink",
    "BlobStore",
    "ConflictError",
    "IntegrityError",
    "InvalidCursorError",
    "InvalidKeyError",
    "Invalidator",
    "Moderates",
    "NotDeliverableError",
    "Notifier",
    "Page",
    "RepairReport",
    "ReviewStore",
    "StateStore",
    "StatusChange",
    "StorageError",
    "VerdictSummary",
    "check_key",
]
