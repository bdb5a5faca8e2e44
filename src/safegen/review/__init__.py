"""Upload moderation as a service: statuses, backup, overrides, an audit trail, a review page.

The review page itself (:mod:`safegen.review.web`) needs the ``review`` extra and is imported
only when asked for.
"""

from safegen.review.audit import (
    AuditConflictError,
    AuditEntry,
    AuditError,
    AuditFieldError,
    AuditLog,
    AuditProblem,
    AuditReport,
    AuditTrail,
    JsonLinesAuditLog,
    ProblemKind,
    SQLiteAuditLog,
)
from safegen.review.config import StoreConfig
from safegen.review.events import AssetStatus, Invalidator, Notifier, StatusChange, VerdictSummary
from safegen.review.notify import Callback, FanOut, NotificationError
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
    "AuditConflictError",
    "AuditEntry",
    "AuditError",
    "AuditFieldError",
    "AuditLog",
    "AuditProblem",
    "AuditReport",
    "AuditSink",
    "AuditTrail",
    "BlobStore",
    "Callback",
    "ConflictError",
    "FanOut",
    "IntegrityError",
    "InvalidCursorError",
    "InvalidKeyError",
    "Invalidator",
    "JsonLinesAuditLog",
    "Moderates",
    "NotDeliverableError",
    "NotificationError",
    "Notifier",
    "Page",
    "ProblemKind",
    "RepairReport",
    "ReviewStore",
    "SQLiteAuditLog",
    "StateStore",
    "StatusChange",
    "StorageError",
    "StoreConfig",
    "VerdictSummary",
    "check_key",
]
