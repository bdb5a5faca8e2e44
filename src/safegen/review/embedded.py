"""The embedded backend: images in a local directory, records in SQLite. Needs nothing else.

Layout of a store's directory::

    live/ab/ab12...   the bytes of deliverable images
    backup/cd/cd34... the bytes of rejected (and pending) images
    tmp/              writes in progress (renamed into place when complete)
    state.sqlite3     one row per image: key, status, version, the record as JSON

A file's name is the SHA-256 of its key, so no key, however hostile, names a path outside its
area (and two keys never collide on a case-insensitive file system). Every write goes to
``tmp/``, is flushed to disk, and is renamed into place; the directory is flushed after a
rename or a delete. Records are written in SQLite transactions conditional on their version.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import attrs

from safegen.review.events import AssetStatus
from safegen.review.ports import (
    Area,
    AssetExistsError,
    ConflictError,
    IntegrityError,
    Record,
    StorageError,
    check_key,
)

__all__ = ["DirectoryBlobs", "SQLiteState"]

_T = TypeVar("_T")
_CHUNK = 1024 * 1024
_SCAN_PAGE = 500


def _storage(action: str, call: Callable[[], _T]) -> _T:
    try:
        return call()
    except (OSError, sqlite3.Error) as error:
        raise StorageError(f"review store: {action} failed ({type(error).__name__})") from error


def _sync_directory(path: Path) -> None:
    if os.name != "posix":  # pragma: no cover - Windows cannot open a directory
        return
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


@attrs.frozen(kw_only=True)
class DirectoryBlobs:
    """Image bytes in ``live/`` and ``backup/`` under ``root`` (the store's directory).

    :param sweep_after: seconds after which a temporary file is a leftover that
        :meth:`sweep` removes (younger ones may be another process's write in progress).
    """

    root: Path = attrs.field(converter=Path)
    sweep_after: float = 3600.0

    @classmethod
    def at(cls, root: str | Path) -> DirectoryBlobs:
        """Open the blobs under *root*, making its directories if missing."""
        blobs = cls(root=Path(root))

        def run() -> None:
            for name in ("live", "backup", "tmp"):
                (blobs.root / name).mkdir(parents=True, exist_ok=True)

        _storage("making the store's directories", run)
        return blobs

    def path(self, area: Area, key: str) -> Path:
        """Where the bytes of *key* in *area* are kept (always inside ``root/<area>``)."""
        digest = hashlib.sha256(check_key(key).encode("ascii")).hexdigest()
        return self.root / area.value / digest[:2] / digest

    def _temporary(self) -> Path:
        return self.root / "tmp" / f"{uuid.uuid4().hex}.tmp"

    def _place(self, temporary: Path, final: Path) -> None:
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(temporary, final)
        _sync_directory(final.parent)

    def write(self, area: Area, key: str, data: bytes, *, content_type: str) -> None:
        """Write *data* to a temporary file, flush it, rename it into place."""
        final = self.path(area, key)

        def run() -> None:
            temporary = self._temporary()
            try:
                with temporary.open("wb") as out:
                    out.write(data)
                    out.flush()
                    os.fsync(out.fileno())
                self._place(temporary, final)
            finally:
                temporary.unlink(missing_ok=True)

        _storage("writing an image", run)

    def read(self, area: Area, key: str, *, max_bytes: int) -> bytes | None:
        """Return the bytes, ``None`` when absent; refuse more than *max_bytes*."""
        path = self.path(area, key)

        def run() -> bytes | None:
            try:
                with path.open("rb") as source:
                    data = source.read(max_bytes + 1)
            except FileNotFoundError:
                return None
            if len(data) > max_bytes:
                raise IntegrityError(f"image {key!r}: more bytes stored than recorded")
            return data

        return _storage("reading an image", run)

    def exists(self, area: Area, key: str) -> bool:
        """Whether the file is there."""
        path = self.path(area, key)
        return _storage("looking for an image", path.is_file)

    def copy(self, key: str, *, source: Area, target: Area) -> None:
        """Copy through a temporary file renamed into place."""
        origin, final = self.path(source, key), self.path(target, key)

        def run() -> None:
            temporary = self._temporary()
            try:
                with origin.open("rb") as data, temporary.open("wb") as out:
                    while chunk := data.read(_CHUNK):
                        out.write(chunk)
                    out.flush()
                    os.fsync(out.fileno())
                self._place(temporary, final)
            finally:
                temporary.unlink(missing_ok=True)

        _storage("copying an image", run)

    def delete(self, area: Area, key: str) -> None:
        """Delete the file (absent is fine) and flush its directory."""
        path = self.path(area, key)

        def run() -> None:
            if path.exists():
                path.unlink(missing_ok=True)
                _sync_directory(path.parent)

        _storage("deleting an image", run)

    def sweep(self) -> int:
        """Delete temporary files older than ``sweep_after`` seconds; return how many."""

        def run() -> int:
            cutoff = time.time() - self.sweep_after
            swept = 0
            for leftover in (self.root / "tmp").glob("*.tmp"):
                with contextlib.suppress(FileNotFoundError):
                    if leftover.stat().st_mtime <= cutoff:
                        leftover.unlink()
                        swept += 1
            return swept

        return _storage("sweeping temporary files", run)


_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS records ("
    " key TEXT PRIMARY KEY, status TEXT, version INTEGER NOT NULL, body TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS records_by_status ON records (status, key)",
)


@attrs.frozen(kw_only=True)
class SQLiteState:
    """Records in one SQLite file; every write a transaction conditional on the version.

    Each call opens its own connection (safe across threads and processes) with
    ``synchronous=FULL`` in WAL mode: a committed write survives a crash of the process or
    of the machine.

    ``path`` is the database file.

    :param timeout: seconds to wait for another writer's lock.
    """

    path: Path = attrs.field(converter=Path)
    timeout: float = 30.0

    @classmethod
    def at(cls, path: str | Path) -> SQLiteState:
        """Open the state in *path*, making its table if missing."""
        state = cls(path=Path(path))

        def run() -> None:
            state.path.parent.mkdir(parents=True, exist_ok=True)
            with state._connect() as db:
                db.execute("PRAGMA journal_mode=WAL")
                for statement in _SCHEMA:
                    db.execute(statement)

        _storage("opening the state database", run)
        return state

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
        try:
            db.execute("PRAGMA synchronous=FULL")
            yield db
        finally:
            db.close()

    def _query(self, sql: str, parameters: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        def run() -> list[tuple[Any, ...]]:
            with self._connect() as db:
                return db.execute(sql, parameters).fetchall()

        return _storage("reading the state database", run)

    def _write(self, sql: str, parameters: tuple[Any, ...]) -> int:
        def run() -> int:
            with self._connect() as db:
                return db.execute(sql, parameters).rowcount

        return _storage("writing the state database", run)

    def get(self, key: str) -> Record | None:
        """Return the record for *key*, or ``None``."""
        rows = self._query("SELECT body FROM records WHERE key = ?", (key,))
        return Record.from_json(rows[0][0]) if rows else None

    def create(self, record: Record) -> None:
        """Insert *record*.

        :raises ~safegen.review.ports.AssetExistsError: its key is taken.
        """
        try:
            self._write(
                "INSERT INTO records (key, status, version, body) VALUES (?, ?, ?, ?)",
                (record.key, _status(record), record.version, record.to_json()),
            )
        except StorageError as error:
            if isinstance(error.__cause__, sqlite3.IntegrityError):
                raise AssetExistsError(
                    f"an image with key {record.key!r} is already stored"
                ) from None
            raise

    def update(self, record: Record, *, expected_version: int) -> None:
        """Replace the row if its version is *expected_version*.

        :raises ~safegen.review.ports.ConflictError: it is not (or the row is gone).
        """
        changed = self._write(
            "UPDATE records SET status = ?, version = ?, body = ? WHERE key = ? AND version = ?",
            (_status(record), record.version, record.to_json(), record.key, expected_version),
        )
        if changed != 1:
            raise ConflictError(f"image {record.key!r} was changed by another writer")

    def delete(self, key: str, *, expected_version: int) -> None:
        """Delete the row if its version is *expected_version*.

        :raises ~safegen.review.ports.ConflictError: it is not (or the row is gone).
        """
        changed = self._write(
            "DELETE FROM records WHERE key = ? AND version = ?", (key, expected_version)
        )
        if changed != 1:
            raise ConflictError(f"image {key!r} was changed by another writer")

    def page(
        self, *, status: AssetStatus | None, limit: int, after: tuple[str, str] | None
    ) -> tuple[list[Record], tuple[str, str] | None]:
        """Up to *limit* records ordered by (status, key); the statuses sort as listed."""
        start = after or ("", "")
        if status is None:
            rows = self._query(
                "SELECT status, key, body FROM records WHERE status IS NOT NULL"
                " AND (status, key) > (?, ?) ORDER BY status, key LIMIT ?",
                (*start, limit + 1),
            )
        else:
            rows = self._query(
                "SELECT status, key, body FROM records WHERE status = ? AND key > ?"
                " ORDER BY key LIMIT ?",
                (status.value, start[1], limit + 1),
            )
        records = [Record.from_json(body) for _, _, body in rows[:limit]]
        last = (rows[limit - 1][0], rows[limit - 1][1]) if len(rows) > limit else None
        return records, last

    def scan(self) -> Iterator[Record]:
        """Every record, in pages of a few hundred (bounded memory)."""
        after = ""
        while True:
            rows = self._query(
                "SELECT key, body FROM records WHERE key > ? ORDER BY key LIMIT ?",
                (after, _SCAN_PAGE),
            )
            for _, body in rows:
                yield Record.from_json(body)
            if len(rows) < _SCAN_PAGE:
                return
            after = rows[-1][0]


def _status(record: Record) -> str | None:
    return None if record.status is None else record.status.value
