"""Moderation as a job over many items: sources, a ledger that is the checkpoint, engines.

One model, several engines::

    items (directory_items, manifest_items, items_from, safegen.aws.s3.prefix_items)
        -> an Engine (ClientEngine here; safegen.batch.ray.RayEngine; bulk analysis)
        -> a Ledger (JSON Lines, local or S3): one final record per item, resumable
        -> a BatchSummary

Every engine skips what the ledger has settled and appends one final record per item, so a
run resumed after a crash, a ``kill -9`` or a throttling storm neither loses nor duplicates
an item. See ``docs/scale.rst``.
"""

from safegen.batch._engine import (
    REKOGNITION_S3_BYTES,
    TRANSIENT_CAUSES,
    ClientEngine,
    Engine,
    cause_of,
    failure_of,
    record_of,
)
from safegen.batch._ledger import (
    Ledger,
    LedgerBusyError,
    LedgerError,
    LedgerFileError,
    LedgerPolicyError,
    LedgerStorage,
    LocalLedgerFile,
    file_kind,
    now,
)
from safegen.batch._records import Item, LedgerRecord, Outcome, local_ref
from safegen.batch._sources import (
    IMAGE_SUFFIXES,
    REKOGNITION_SUFFIXES,
    bounded_lines,
    directory_items,
    items_from,
    local_identity,
    manifest_file,
    manifest_items,
    object_identity,
    parse_s3_url,
    s3_ref,
)
from safegen.batch._summary import BatchSummary, Tally

__all__ = [
    "IMAGE_SUFFIXES",
    "REKOGNITION_S3_BYTES",
    "REKOGNITION_SUFFIXES",
    "TRANSIENT_CAUSES",
    "BatchSummary",
    "ClientEngine",
    "Engine",
    "Item",
    "Ledger",
    "LedgerBusyError",
    "LedgerError",
    "LedgerFileError",
    "LedgerPolicyError",
    "LedgerRecord",
    "LedgerStorage",
    "LocalLedgerFile",
    "Outcome",
    "Tally",
    "bounded_lines",
    "cause_of",
    "directory_items",
    "failure_of",
    "file_kind",
    "items_from",
    "local_identity",
    "local_ref",
    "manifest_file",
    "manifest_items",
    "now",
    "object_identity",
    "parse_s3_url",
    "record_of",
    "s3_ref",
]
