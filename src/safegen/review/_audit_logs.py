"""The embedded audit logs: SQLite and JSON Lines (:mod:`safegen.review.audit`'s storage).

Import them from :mod:`safegen.review.audit`, where they are documented; this module only
keeps the storage apart from the chain and its verification. It reads entries through
``safegen.review._audit_entry``, never through :mod:`safegen.review.audit` (which imports
this module): the import graph has no circle.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs

from safegen.review._audit_entry import (
    GENESIS,
    MAX_ENTRY_BYTES,
    AuditEntry,
    AuditError,
    AuditRecord,
    AuditRepair,
    ProblemKind,
    _links,
    _stored_digest,
)

__all__ = ["JsonLinesAuditLog", "SQLiteAuditLog"]

_log = logging.getLogger("safegen.review.audit")

# -- SQLite ---------------------------------------------------------------------------------

_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY,
    key TEXT NOT NULL,
    hash TEXT NOT NULL,
    prev TEXT NOT NULL UNIQUE,
    entry TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_by_key ON audit (key, seq);
"""
_COLUMNS = frozenset({"seq", "key", "hash", "prev", "entry"})


def _check_schema(connection: sqlite3.Connection, path: Path, *, missing_ok: bool) -> None:
    """Raise :class:`AuditError` unless the database holds an audit table of this shape.

    :param missing_ok: no audit table at all is fine (a writer creates it).
    """
    try:
        columns = {
            row[0] for row in connection.execute("SELECT name FROM pragma_table_info('audit')")
        }
    except sqlite3.DatabaseError as error:  # "file is not a database", and the like
        raise AuditError(f"{path}: not an SQLite audit trail ({error})") from None
    if not columns and missing_ok:
        return
    if not columns:
        raise AuditError(f"{path}: not an audit trail (no audit table)")
    if columns != _COLUMNS:
        raise AuditError(
            f"{path}: not an audit trail (its audit table has the columns "
            f"{', '.join(sorted(columns))}, not {', '.join(sorted(_COLUMNS))})"
        )


@attrs.frozen
class SQLiteAuditLog:
    """An :class:`AuditLog` in one table of an SQLite database (WAL, synchronous FULL).

    An append is one ``BEGIN IMMEDIATE`` transaction that checks the head first; ``seq`` is
    the primary key and ``prev`` is unique, so not even a writer that skips the check can
    fork the chain. :meth:`for_key` finds rows through the ``key`` column's index but yields
    only entries whose own key matches; :meth:`records` hands the ``key``, ``hash`` and
    ``prev`` columns to :meth:`AuditTrail.verify`, which checks them against the entry. The
    database is the file at ``path``, created when missing.

    :param read_only: open an existing trail only to read it: nothing is created or changed
        (not even the journal mode), :meth:`append` raises :class:`AuditError`.
    :raises AuditError: the file is not an audit trail: with *read_only*, missing, not an
        SQLite database or without the ``audit`` table; else an ``audit`` table of another
        shape.
    """

    path: Path = attrs.field(converter=Path)
    read_only: bool = attrs.field(default=False, kw_only=True)
    _connection: sqlite3.Connection = attrs.field(init=False, repr=False, eq=False)
    _lock: threading.Lock = attrs.field(init=False, repr=False, eq=False, factory=threading.Lock)

    @_connection.default
    def _connect(self) -> sqlite3.Connection:
        if self.read_only:
            if not self.path.is_file():
                raise AuditError(f"{self.path}: no audit trail (no such file)")
            connection = sqlite3.connect(
                f"{self.path.resolve().as_uri()}?mode=ro",
                uri=True,
                isolation_level=None,
                check_same_thread=False,
            )
        else:
            connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            connection.execute("PRAGMA busy_timeout=10000")
            _check_schema(connection, self.path, missing_ok=not self.read_only)
            if not self.read_only:  # only once it is known to be a trail, or a new one
                connection.execute("PRAGMA journal_mode=WAL")
                connection.execute("PRAGMA synchronous=FULL")
                connection.executescript(_SCHEMA)
        except sqlite3.DatabaseError as error:
            connection.close()
            raise AuditError(f"{self.path}: not an SQLite audit trail ({error})") from None
        except BaseException:
            connection.close()
            raise
        return connection

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._connection.close()

    def head(self) -> AuditEntry | None:
        """Return the last entry, ``None`` when the log is empty."""
        with self._lock:
            row = self._connection.execute(
                "SELECT seq, entry FROM audit ORDER BY seq DESC LIMIT 1"
            ).fetchone()
        if row is None:
            return None
        return AuditRecord.read(row[1], f"row {row[0]}", row[0]).read_entry()

    def append(self, entry: AuditEntry) -> bool:
        """Store *entry* if it follows the head; ``False`` when another writer got there first.

        Safe from several threads: they take turns on the one connection.

        :raises AuditError: the log was opened read-only.
        """
        if self.read_only:
            raise AuditError(f"{self.path}: opened read-only, nothing can be appended")
        with self._lock:
            connection = self._connection
            connection.execute("BEGIN IMMEDIATE")
            try:
                row = connection.execute(
                    "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1"
                ).fetchone()
                expected = (0, GENESIS) if row is None else (row[0] + 1, row[1])
                if (entry.seq, entry.prev) != expected:
                    connection.execute("ROLLBACK")
                    return False
                connection.execute(
                    "INSERT INTO audit (seq, key, hash, prev, entry) VALUES (?, ?, ?, ?, ?)",
                    (entry.seq, entry.key, entry.hash, entry.prev, entry.to_json()),
                )
            except sqlite3.IntegrityError:
                connection.execute("ROLLBACK")
                return False
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")
            return True

    def _rows(self, query: str, *parameters: object) -> Iterator[tuple[Any, ...]]:
        """Run a read on a connection of its own (read-only), so appends go on meanwhile."""
        connection = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            yield from connection.execute(query, parameters)
        finally:
            connection.close()

    def records(self) -> Iterator[AuditRecord]:
        """Yield every row in ``seq`` order (one read transaction: a consistent snapshot)."""
        rows = self._rows("SELECT seq, key, hash, prev, entry FROM audit ORDER BY seq")
        for seq, key, digest, prev, text in rows:
            index = (("key", key), ("hash", digest), ("prev", prev))
            yield AuditRecord.read(text, f"row {seq}", seq, index=index)

    def for_key(self, key: str) -> Iterator[AuditEntry]:
        """Yield the readable entries whose own key is *key*, in order (found by the index).

        A row whose ``key`` column says *key* but whose entry does not is skipped (and logged,
        without its content): :meth:`AuditTrail.verify` names it.
        """
        rows = self._rows("SELECT seq, entry FROM audit WHERE key = ? ORDER BY seq", key)
        for seq, text in rows:
            entry = AuditRecord.read(text, f"row {seq}", seq).entry
            if entry is None:
                continue
            if entry.key != key or entry.seq != seq:
                _log.warning("audit: row %d's key column is not its entry's key: run verify", seq)
                continue
            yield entry

    def repair(self) -> AuditRepair:
        """Nothing to do: SQLite's transactions leave no torn entry."""
        return AuditRepair(action="none")


# -- JSON Lines -----------------------------------------------------------------------------

_BLOCK = 64 * 1024


@contextlib.contextmanager
def _locked(path: Path, mode: int) -> Iterator[int]:
    fd = os.open(path, mode | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield fd
    finally:
        os.close(fd)  # closing releases the lock


def _tail(fd: int) -> tuple[int, int, int]:
    """Return (start of the last complete line, end of it, file size).

    The end is just past its newline; anything after it is a torn line. Equal start and end
    mean there is no complete line.
    """
    size = os.fstat(fd).st_size
    end = _last_newline(fd, size, 0)
    if end < 0:
        return 0, 0, size
    floor = end - (MAX_ENTRY_BYTES + 2)
    start = _last_newline(fd, end, floor)
    if start < 0:  # the file's first line, or one too long to be an entry (read as unreadable)
        start = max(floor, -1)
    return start + 1, end + 1, size


def _last_newline(fd: int, before: int, floor: int) -> int:
    """Return the offset of the last newline below *before* (not below *floor*), else -1."""
    position = before
    floor = max(floor, 0)
    while position > floor:
        low = max(floor, position - _BLOCK)
        block = os.pread(fd, position - low, low)
        found = block.rfind(b"\n")
        if found >= 0:
            return low + found
        position = low
    return -1


@attrs.frozen
class JsonLinesAuditLog:
    """An :class:`AuditLog` in a JSON Lines file: one canonical JSON entry a line.

    Each append takes an exclusive lock on the file, checks the last line is the head, writes
    the new line in one ``write`` to the end, and calls ``fsync`` before returning. A crash can
    leave only the last line torn: :meth:`records` reports it as :attr:`ProblemKind.TORN`,
    :meth:`append` refuses to write after it, and :meth:`repair` cuts it off (or completes it,
    if only its newline is missing). :meth:`for_key` reads the whole file. The log is the file
    at ``path``, created by the first append.
    """

    path: Path = attrs.field(converter=Path)

    def _last(self, fd: int) -> AuditEntry | None:
        start, end, size = _tail(fd)
        if end != size:
            raise AuditError(
                f"{self.path}: the last line is torn ({size - end} bytes after the last "
                "newline, a crash during an append): run repair() first"
            )
        if start == end:
            return None
        line = os.pread(fd, end - start - 1, start)  # without its newline
        record = AuditRecord.read(line, f"{self.path}: the last line")
        return record.read_entry()

    def head(self) -> AuditEntry | None:
        """Return the last entry, ``None`` when the log is empty.

        :raises AuditError: the last line is torn or unreadable.
        """
        if not self.path.exists():
            return None
        with _locked(self.path, os.O_RDONLY) as fd:
            return self._last(fd)

    def append(self, entry: AuditEntry) -> bool:
        """Store *entry* if it follows the head; ``False`` when another writer got there first.

        :raises AuditError: the last line is torn or unreadable (see :meth:`repair`).
        """
        line = (entry.to_json() + "\n").encode("utf-8")
        with _locked(self.path, os.O_RDWR | os.O_APPEND) as fd:
            head = self._last(fd)
            expected = (0, GENESIS) if head is None else (head.seq + 1, head.hash)
            if (entry.seq, entry.prev) != expected:
                return False
            written = os.write(fd, line)
            if written != len(line):  # a full disk: cut the partial line off again
                os.ftruncate(fd, os.fstat(fd).st_size - written)
                raise AuditError(f"{self.path}: only {written} of {len(line)} bytes written")
            os.fsync(fd)
        return True

    def records(self) -> Iterator[AuditRecord]:
        """Yield every line in order; a last line without its newline is torn."""
        if not self.path.exists():
            return
        with self.path.open("rb") as file:
            number = 0
            while True:
                line = file.readline(MAX_ENTRY_BYTES + 2)
                if not line:
                    return
                number += 1
                where = f"line {number}"
                if not line.endswith(b"\n"):
                    if len(line) <= MAX_ENTRY_BYTES + 1:  # at the end of the file
                        yield AuditRecord(
                            where=where,
                            problem=ProblemKind.TORN,
                            detail=f"the last line is torn ({len(line)} bytes, no newline): "
                            "an append was cut short; repair() removes it",
                        )
                        return
                    while line and not line.endswith(b"\n"):  # skip the rest of it
                        line = file.readline(_BLOCK)
                    yield AuditRecord(
                        where=where,
                        problem=ProblemKind.UNREADABLE,
                        detail=f"longer than {MAX_ENTRY_BYTES:,} bytes",
                    )
                    continue
                yield AuditRecord.read(line[:-1], where)  # as stored, but for its newline

    def for_key(self, key: str) -> Iterator[AuditEntry]:
        """Yield the readable entries about *key*, in order (reads the whole file)."""
        for record in self.records():
            entry = record.entry
            if entry is not None and entry.key == key:
                yield entry

    def repair(self) -> AuditRepair:
        """Cut off a torn last line, or give it its newline if it is a whole entry that chains.

        Only bytes after the last newline are ever touched: a complete line is never removed.
        """
        if not self.path.exists():
            return AuditRepair(action="none")
        with _locked(self.path, os.O_RDWR) as fd:
            start, end, size = _tail(fd)
            if end == size:
                return AuditRepair(action="none")
            torn = size - end
            where = f"{self.path}: the {torn} bytes after byte {end}"
            if torn <= MAX_ENTRY_BYTES and self._completes(fd, start, end, size):
                os.pwrite(fd, b"\n", size)
                os.fsync(fd)
                return AuditRepair(action="completed", where=where, size=1)
            os.ftruncate(fd, end)
            os.fsync(fd)
            return AuditRepair(action="truncated", where=where, size=torn)

    @staticmethod
    def _completes(fd: int, start: int, end: int, size: int) -> bool:
        """Whether the torn tail is a whole, sealed entry that follows the last complete line."""
        tail = AuditRecord.read(os.pread(fd, size - end, end), "the tail")
        if tail.data is None or tail.entry is None:
            return False
        seq, prev, digest = _links(tail.data)
        if _stored_digest(tail.data) != digest:
            return False
        if start == end:
            return seq == 0 and prev == GENESIS
        last = AuditRecord.read(os.pread(fd, end - start - 1, start), "the last line")
        if last.data is None:
            return False
        try:
            last_seq, _, last_hash = _links(last.data)
        except ValueError:
            return False
        return seq == last_seq + 1 and prev == last_hash
