"""The audit trail: sealed entries, the embedded logs, verification and crash repair."""

from __future__ import annotations

import itertools
import json
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import attrs
import pytest

from safegen.review.audit import (
    GENESIS,
    MAX_ENTRY_BYTES,
    AuditConflictError,
    AuditEntry,
    AuditError,
    AuditFieldError,
    AuditLog,
    AuditRecord,
    AuditRepair,
    AuditTrail,
    JsonLinesAuditLog,
    ProblemKind,
    SQLiteAuditLog,
    iso_utc,
    verify_records,
)
from safegen.review.events import VerdictSummary

VERDICT = VerdictSummary(
    action="block",
    labels=[("Explicit Nudity", 97.25)],
    model_version="7.0",
    backend="rekognition",
    policy_version="v3",
    policy_sha256="ab" * 32,
)


def fixed_clock() -> Callable[[], datetime]:
    """Return a clock that ticks one second a call from a fixed instant."""
    moments = iter(
        datetime(2026, 11, 29, 12, tzinfo=UTC) + timedelta(seconds=i) for i in range(10**6)
    )
    return lambda: next(moments)


@pytest.fixture(params=["sqlite", "jsonl"])
def make_trail(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], AuditTrail]:
    """Build trails on each embedded log, all in one temporary directory."""
    counter = iter(range(1000))

    def build() -> AuditTrail:
        n = next(counter)
        if request.param == "sqlite":
            return AuditTrail.sqlite(tmp_path / f"audit{n}.sqlite3", clock=fixed_clock())
        return AuditTrail.jsonl(tmp_path / f"audit{n}.jsonl", clock=fixed_clock())

    return build


def fill(trail: AuditTrail, n: int) -> list[AuditEntry]:
    """Append *n* entries of every kind about a few keys."""
    events = ["upload", "approve", "reject", "restore", "remove", "repair"]
    return [
        trail.append(
            events[i % len(events)],
            key=f"k{i % 3}.png",
            actor="moderation" if i % 2 == 0 else "alice",
            verdict=VERDICT if i % 2 == 0 else None,
            reason=None if i % 2 == 0 else f"reason {i}",
        )
        for i in range(n)
    ]


def test_append_links_each_entry_to_the_one_before(make_trail: Callable[[], AuditTrail]) -> None:
    """Each entry's prev is its predecessor's hash, the first's is GENESIS, seq counts up."""
    entries = fill(make_trail(), 5)
    assert [e.seq for e in entries] == [0, 1, 2, 3, 4]
    assert entries[0].prev == GENESIS
    assert all(b.prev == a.hash for a, b in itertools.pairwise(entries))
    assert all(e.sealed() for e in entries)


def test_an_untouched_chain_verifies_and_reports_its_head(
    make_trail: Callable[[], AuditTrail],
) -> None:
    """verify() passes an untouched chain, counting every entry; head() is the last hash."""
    trail = make_trail()
    entries = fill(trail, 7)
    report = trail.verify()
    assert report.ok
    assert report.entries == 7
    assert report.head == entries[-1].hash
    assert trail.head() == entries[-1].hash
    assert trail.verify(anchor=entries[3].hash).anchored


def test_empty_chain_verifies(make_trail: Callable[[], AuditTrail]) -> None:
    """An empty log verifies, with no head; an anchor against it is a truncated tail."""
    trail = make_trail()
    report = trail.verify()
    assert report.ok
    assert report.entries == 0
    assert report.head is None
    assert trail.head() is None
    problem = trail.verify(anchor="1" * 64).problem
    assert problem is not None
    assert problem.kind is ProblemKind.TRUNCATED_TAIL


def test_history_reads_one_keys_entries_in_order(make_trail: Callable[[], AuditTrail]) -> None:
    """history(KEY) is that key's entries, oldest first, and nothing else."""
    trail = make_trail()
    entries = fill(trail, 9)
    assert trail.history("k1.png") == [e for e in entries if e.key == "k1.png"]
    assert trail.history("nope") == []
    assert list(trail.entries()) == entries


def test_entries_read_back_equal_to_what_was_written(make_trail: Callable[[], AuditTrail]) -> None:
    """What a log returns is field for field the entry appended (the verdict included)."""
    trail = make_trail()
    written = trail.append("upload", key="a", actor="moderation", verdict=VERDICT)
    assert list(trail.entries()) == [written]
    assert written.verdict == VERDICT


def test_the_clock_gives_the_time_and_at_overrides_it(make_trail: Callable[[], AuditTrail]) -> None:
    """Without at, the injected clock's time in ISO 8601 UTC; with it, at as given."""
    trail = make_trail()
    assert trail.append("upload", key="a", actor="m").at == "2026-11-29T12:00:00.000000Z"
    assert trail.append("upload", key="a", actor="m", at="2026-01-01T00:00:00+00:00").at == (
        "2026-01-01T00:00:00+00:00"
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("event", "delete"),
        ("key", ""),
        ("actor", ""),
        ("reason", ""),
        ("at", "yesterday"),
        ("at", "2026-11-29T12:00:00"),  # naive: not UTC
        ("at", "2026-11-29T12:00:00+01:00"),
        ("key", b"bytes"),
        ("reason", b"\x89PNG"),
    ],
)
def test_bad_fields_are_refused_before_anything_is_written(
    make_trail: Callable[[], AuditTrail], field: str, value: object
) -> None:
    """An entry with a field out of its domain (bytes included) raises and writes nothing."""
    trail = make_trail()
    arguments: dict[str, object] = {"key": "a", "actor": "m", field: value}
    event = arguments.pop("event", "upload")
    with pytest.raises(ValueError, match=field):
        trail.append(event, **arguments)  # type: ignore[arg-type]
    assert trail.verify().entries == 0


def test_a_verdict_with_a_non_finite_confidence_is_refused(
    make_trail: Callable[[], AuditTrail],
) -> None:
    """NaN or infinite confidences have no canonical JSON: refused, not written."""
    trail = make_trail()
    with pytest.raises(ValueError, match="finite"):
        trail.append(
            "upload",
            key="a",
            actor="m",
            verdict=VerdictSummary(action="block", labels=[("x", float("nan"))]),
        )
    assert trail.head() is None


def stored_size(reason: str, seq: int = 0) -> int:
    """The stored size of an entry with *reason* (every other field fixed)."""
    at = "2026-11-29T12:00:00Z"
    entry = AuditEntry.seal(
        seq=seq, event="upload", key="a", actor="m", at=at, prev=GENESIS, reason=reason
    )
    return len(entry.to_json().encode())


def test_an_entry_over_the_size_limit_is_refused(make_trail: Callable[[], AuditTrail]) -> None:
    """An entry stored in exactly MAX_ENTRY_BYTES passes; one byte more is refused."""
    trail = make_trail()
    fits = "x" * (MAX_ENTRY_BYTES - stored_size("x") + 1)
    assert stored_size(fits) == MAX_ENTRY_BYTES
    trail.append("upload", key="a", actor="m", at="2026-11-29T12:00:00Z", reason=fits)
    with pytest.raises(ValueError, match="bytes as JSON"):
        trail.append("upload", key="a", actor="m", at="2026-11-29T12:00:00Z", reason=fits + "x")
    assert trail.verify().entries == 1
    assert trail.history("a")[0].reason == fits


def test_the_canonical_form_is_every_field_but_the_hash() -> None:
    """The hash is SHA-256 over sorted compact JSON of all other fields, prev included."""
    entry = AuditEntry.seal(
        seq=3,
        event="reject",
        key="k",
        actor="bob",
        at="2026-11-29T12:00:00Z",
        prev="a" * 64,
        reason="r",
    )
    data = json.loads(entry.canonical())
    assert set(data) == {"seq", "event", "key", "actor", "at", "verdict", "reason", "prev"}
    assert json.loads(entry.to_json())["hash"] == entry.hash
    assert not attrs.evolve(entry, prev="b" * 64).sealed()
    assert AuditEntry.from_json(entry.to_json()) == entry


def test_no_field_can_hold_bytes() -> None:
    """Every AuditEntry field is text, a number or a VerdictSummary: bytes are refused."""
    entry = AuditEntry.seal(
        seq=0, event="upload", key="k", actor="a", at="2026-11-29T12:00:00Z", prev=GENESIS
    )
    for field in attrs.fields(AuditEntry):
        with pytest.raises((ValueError, TypeError)):
            attrs.evolve(entry, **{field.name: b"\x89PNG\r\n"})  # type: ignore[arg-type]


# -- concurrency ----------------------------------------------------------------------------


def test_two_writers_cannot_fork_the_chain(make_trail: Callable[[], AuditTrail]) -> None:
    """Entries appended from several threads on separate handles still form one chain."""
    first = make_trail()
    log = first.log
    path = log.path  # type: ignore[attr-defined]
    kind: type[SQLiteAuditLog | JsonLinesAuditLog] = type(log)  # type: ignore[assignment]
    trails = [AuditTrail(kind(path)) for _ in range(4)]

    def work(trail: AuditTrail, n: int) -> None:
        for i in range(15):
            trail.append("upload", key=f"w{n}-{i}", actor="m")

    threads = [threading.Thread(target=work, args=(t, n)) for n, t in enumerate(trails)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    report = first.verify()
    assert report.ok
    assert report.entries == 60


def test_a_stale_entry_is_not_appended(make_trail: Callable[[], AuditTrail]) -> None:
    """A log refuses an entry whose seq or prev does not follow its head."""
    trail = make_trail()
    entries = fill(trail, 2)
    stale = AuditEntry.seal(
        seq=1, event="upload", key="x", actor="m", at="2026-11-29T12:00:00Z", prev=entries[0].hash
    )
    wrong_prev = AuditEntry.seal(
        seq=2, event="upload", key="x", actor="m", at="2026-11-29T12:00:00Z", prev=entries[0].hash
    )
    assert not trail.log.append(stale)
    assert not trail.log.append(wrong_prev)
    assert trail.verify().entries == 2


@attrs.define
class _Racing:
    """A log whose head is always one behind: every append loses the race."""

    inner: AuditLog

    def head(self) -> AuditEntry | None:
        return None

    def append(self, entry: AuditEntry) -> bool:
        return self.inner.append(entry)

    def records(self) -> Iterator[AuditRecord]:
        return self.inner.records()

    def for_key(self, key: str) -> Iterator[AuditEntry]:
        return self.inner.for_key(key)

    def repair(self) -> AuditRepair:
        return self.inner.repair()


def test_a_writer_that_keeps_losing_gives_up(make_trail: Callable[[], AuditTrail]) -> None:
    """After `attempts` lost races append raises AuditConflictError instead of looping."""
    trail = make_trail()
    fill(trail, 1)
    racing = AuditTrail(_Racing(trail.log), attempts=3)
    with pytest.raises(AuditConflictError, match="3 appends"):
        racing.append("upload", key="x", actor="m")


def test_a_trail_needs_a_log() -> None:
    """AuditTrail refuses something that is not an AuditLog."""
    with pytest.raises(ValueError, match="not an AuditLog"):
        AuditTrail(object())  # type: ignore[arg-type]


# -- JSON Lines after a crash ---------------------------------------------------------------


def jsonl_trail(tmp_path: Path, n: int) -> tuple[AuditTrail, Path, list[AuditEntry]]:
    """A JSON Lines trail with *n* entries."""
    path = tmp_path / "audit.jsonl"
    trail = AuditTrail.jsonl(path, clock=fixed_clock())
    return trail, path, fill(trail, n)


@pytest.mark.parametrize("cut", [1, 2, 40, -1])
def test_a_torn_last_line_is_reported_refused_and_cut_off(tmp_path: Path, cut: int) -> None:
    """A crash mid-append (any prefix of a line) is TORN at its line; repair cuts exactly it."""
    trail, path, entries = jsonl_trail(tmp_path, 3)
    whole = path.read_bytes()
    line = (
        AuditEntry.seal(
            seq=3,
            event="upload",
            key="z",
            actor="m",
            at="2026-11-29T12:00:00Z",
            prev=entries[-1].hash,
        ).to_json()
        + "\n"
    ).encode()
    torn = line[:cut] if cut > 0 else line[: len(line) - 3]
    path.write_bytes(whole + torn)
    report = trail.verify()
    assert report.problem is not None
    assert report.problem.kind is ProblemKind.TORN
    assert report.problem.where == "line 4"
    assert report.entries == 3
    with pytest.raises(AuditError, match="torn"):
        trail.append("upload", key="z", actor="m")
    repaired = trail.repair()
    assert repaired == AuditRepair(action="truncated", where=repaired.where, size=len(torn))
    assert path.read_bytes() == whole
    assert trail.verify().ok
    assert trail.repair().action == "none"


def test_a_whole_entry_missing_its_newline_is_completed_not_cut(tmp_path: Path) -> None:
    """A crash between the entry and its newline: repair adds the newline, keeping the entry."""
    trail, path, entries = jsonl_trail(tmp_path, 2)
    extra = AuditEntry.seal(
        seq=2,
        event="approve",
        key="z",
        actor="bob",
        at="2026-11-29T12:00:00Z",
        prev=entries[-1].hash,
    )
    with path.open("ab") as f:
        f.write(extra.to_json().encode())
    assert trail.verify().problem.kind is ProblemKind.TORN  # type: ignore[union-attr]
    assert trail.repair().action == "completed"
    assert trail.verify().entries == 3
    assert trail.head() == extra.hash


def test_repair_never_removes_a_complete_line(tmp_path: Path) -> None:
    """A damaged line that ends in a newline is not torn: repair leaves it, verify names it."""
    trail, path, _ = jsonl_trail(tmp_path, 3)
    lines = path.read_bytes().splitlines(keepends=True)
    lines[-1] = b'{"seq": 2, garbage\n'
    path.write_bytes(b"".join(lines))
    before = path.read_bytes()
    assert trail.repair().action == "none"
    assert path.read_bytes() == before
    report = trail.verify()
    assert report.problem is not None
    assert report.problem.kind is ProblemKind.UNREADABLE
    assert report.problem.where == "line 3"
    with pytest.raises(AuditError, match="cannot be read"):
        trail.append("upload", key="z", actor="m")


def test_a_torn_first_line_is_cut_to_an_empty_log(tmp_path: Path) -> None:
    """A crash during the very first append leaves an empty, verifiable log after repair."""
    path = tmp_path / "audit.jsonl"
    path.write_bytes(b'{"actor":"m","at":')
    trail = AuditTrail.jsonl(path)
    assert trail.verify().problem.where == "line 1"  # type: ignore[union-attr]
    assert trail.repair().action == "truncated"
    assert path.read_bytes() == b""
    assert trail.verify().ok


def test_an_overlong_line_is_unreadable_without_being_held(tmp_path: Path) -> None:
    """A line longer than MAX_ENTRY_BYTES is one unreadable record, and reading goes on."""
    trail, path, _ = jsonl_trail(tmp_path, 1)
    with path.open("ab") as f:
        f.write(b"x" * (3 * MAX_ENTRY_BYTES) + b"\n")
    records = list(trail.log.records())
    assert [r.problem for r in records] == [None, ProblemKind.UNREADABLE]
    assert records[1].where == "line 2"


def test_appends_are_durable_lines(tmp_path: Path) -> None:
    """Every append is one complete line on disk when append returns (fsync'd, newline-ended)."""
    _trail, path, entries = jsonl_trail(tmp_path, 4)
    lines = path.read_bytes().split(b"\n")
    assert lines[-1] == b""
    assert [AuditEntry.from_json(x) for x in lines[:-1]] == entries


def test_sqlite_rows_moved_under_another_seq_are_edited(tmp_path: Path) -> None:
    """A row whose stored seq disagrees with its sealed fields is reported as edited."""
    trail = AuditTrail.sqlite(tmp_path / "a.sqlite3", clock=fixed_clock())
    fill(trail, 3)
    log = trail.log
    assert isinstance(log, SQLiteAuditLog)
    log._connection.execute("UPDATE audit SET seq = 7 WHERE seq = 2")
    report = trail.verify()
    assert report.problem is not None
    assert report.problem.kind is ProblemKind.EDITED
    assert report.problem.where == "row 7"


def test_iso_utc_refuses_a_naive_clock() -> None:
    """A clock returning naive datetimes is refused rather than guessed at."""
    assert iso_utc(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2026-01-02T03:04:05.000000Z"
    with pytest.raises(ValueError, match="aware"):
        iso_utc(datetime(2026, 1, 2))


def test_jsonl_head_of_a_missing_file_is_none(tmp_path: Path) -> None:
    """A log that was never written to has no head, no records and nothing to repair."""
    log = JsonLinesAuditLog(tmp_path / "none.jsonl")
    assert log.head() is None
    assert list(log.records()) == []
    assert log.repair().action == "none"
    assert not os.path.exists(log.path)


def test_verify_checks_the_stored_form_itself(make_trail: Callable[[], AuditTrail]) -> None:
    """Stored JSON that means the same but is not what was sealed (97 for 97.0) is EDITED."""
    trail = make_trail()
    trail.append(
        "upload", key="a", actor="m", verdict=VerdictSummary(action="block", labels=[("x", 97.0)])
    )
    record = next(iter(trail.log.records()))
    assert record.data is not None
    data = {**record.data, "verdict": {**record.data["verdict"], "labels": [["x", 97]]}}
    report = verify_records([AuditRecord(where="line 1", data=data)])
    assert report.problem is not None
    assert report.problem.kind is ProblemKind.EDITED
    assert AuditRecord(where="line 1", data=data).entry is not None  # it still reads


@pytest.mark.parametrize(
    ("change", "detail"),
    [
        ({"seq": "0"}, "seq"),
        ({"seq": -1}, "seq"),
        ({"prev": "xyz"}, "prev"),
        ({"hash": "A" * 64}, "hash"),
        ({"extra": 1}, "unknown"),
    ],
)
def test_links_that_cannot_be_read_are_unreadable(change: dict[str, object], detail: str) -> None:
    """A stored seq, prev or hash of the wrong kind, or an unknown field, is UNREADABLE there."""
    entry = AuditEntry.seal(
        seq=0, event="upload", key="k", actor="m", at="2026-11-29T12:00:00Z", prev=GENESIS
    )
    report = verify_records([AuditRecord(where="line 1", data={**entry.to_dict(), **change})])
    assert report.problem is not None
    assert report.problem.kind is ProblemKind.UNREADABLE
    assert detail in report.problem.detail


@pytest.mark.parametrize("text", [b"", b"[]", b"nul", b"\xff\xfe", "x" * (MAX_ENTRY_BYTES + 3), 7])
def test_records_read_anything_without_raising(text: object) -> None:
    """AuditRecord.read turns anything that is not a JSON object into an UNREADABLE record."""
    record = AuditRecord.read(text, "line 9")
    assert record.problem is ProblemKind.UNREADABLE
    assert record.entry is None
    with pytest.raises(AuditError, match="line 9"):
        record.read_entry()


def test_the_hash_member_is_what_to_json_adds() -> None:
    """seal() sizes an entry as its canonical form plus the hash member: to_json's length."""
    entry = AuditEntry.seal(
        seq=12,
        event="upload",
        key="k",
        actor="m",
        at="2026-11-29T12:00:00Z",
        prev=GENESIS,
        verdict=VERDICT,
    )
    assert len(entry.to_json().encode()) == len(entry.canonical()) + len('"hash":"",') + 64
    assert entry.verdict is not None
    assert json.loads(entry.canonical())["verdict"] == entry.verdict.to_dict()


def test_one_sqlite_log_shared_by_threads(tmp_path: Path) -> None:
    """Threads appending through one SQLiteAuditLog (one connection) and reading meanwhile."""
    trail = AuditTrail.sqlite(tmp_path / "shared.sqlite3")
    failures: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(20):
                trail.append("upload", key=f"t{n}-{i}", actor="m")
                trail.verify()
        except BaseException as error:  # reported below
            failures.append(error)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert trail.verify().entries == 80


def test_reading_while_appending_in_the_same_thread(make_trail: Callable[[], AuditTrail]) -> None:
    """Appending while a read of the log is under way neither deadlocks nor fails."""
    trail = make_trail()
    fill(trail, 3)
    seen = 0
    for _ in trail.entries():
        seen += 1
        if seen == 1:
            trail.append("upload", key="during", actor="m")
    assert seen in (3, 4)
    assert trail.verify().entries == 4


# -- red team 15: index columns, stored spelling, read-only opening, text UTF-8 cannot hold ---


def test_sqlite_key_column_edits_neither_hide_nor_plant_entries(tmp_path: Path) -> None:
    """Rows moved between histories by the key column: verify names the row; history holds."""
    path = tmp_path / "audit.sqlite3"
    trail = AuditTrail.sqlite(path)
    trail.append("upload", key="a.png", actor="moderation")
    trail.append("restore", key="a.png", actor="mallory", reason="looks fine to me")
    trail.append("reject", key="b.png", actor="bob", reason="weapon")
    anchor = trail.head()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE audit SET key = 'zz-hidden' WHERE seq = 1")
        db.execute("UPDATE audit SET key = 'a.png' WHERE seq = 2")
    report = AuditTrail.sqlite(path).verify(anchor=anchor)
    assert report.problem is not None
    assert (report.problem.kind, report.problem.where) == (ProblemKind.EDITED, "row 1")
    assert "key" in report.problem.detail
    assert [(e.seq, e.key) for e in trail.history("a.png")] == [(0, "a.png")]
    assert trail.history("zz-hidden") == []


def test_a_duplicated_member_is_an_edit_and_never_read(tmp_path: Path) -> None:
    """A line naming actor twice (first-wins readers see the forgery) does not verify or read."""
    path = tmp_path / "audit.jsonl"
    trail = AuditTrail.jsonl(path)
    trail.append("upload", key="a.png", actor="moderation")
    trail.append("restore", key="a.png", actor="alice", reason="fine")
    lines = path.read_text().splitlines(keepends=True)
    lines[1] = lines[1].replace('{"actor":"alice"', '{"actor":"mallory","actor":"alice"', 1)
    path.write_text("".join(lines))
    problem = trail.verify().problem
    assert problem is not None
    assert (problem.kind, problem.where) == (ProblemKind.EDITED, "line 2")
    assert "'actor' appears twice" in problem.detail
    assert [e.actor for e in trail.history("a.png")] == ["moderation"]
    with pytest.raises(AuditError, match="not stored as written"):
        trail.append("reject", key="a.png", actor="bob")  # never chained after a rewritten head


@pytest.mark.parametrize(
    ("stored", "why"),
    [
        (b'{"a":1 }', "canonical"),
        (b'{"b":1,"a":2}', "canonical"),
        (b'{"a":"\\u0066"}', "canonical"),
        (b'{"a":"\\/"}', "canonical"),
        (b'{"a":1.50}', "canonical"),
        (b'{"a":1E2}', "canonical"),
        (b'{"a":NaN}', "NaN"),
        (b'{"a":-Infinity}', "NaN"),
        (b'{"a":1,"a":1}', "twice"),
    ],
)
def test_stored_spellings_other_than_the_canonical_are_refused(stored: bytes, why: str) -> None:
    """Spaces, order, escapes, number spellings, NaN, duplicates: not canonical, not read."""
    record = AuditRecord.read(stored, "line 1")
    assert record.data is not None
    assert not record.canonical
    assert why in record.detail
    assert record.entry is None


@pytest.mark.parametrize(
    "stored", [b"\xef\xbb\xbf{}", b'{"a":"\xed\xa0\x80"}', '{"a":"\ud800"}', "{}".encode("utf-16")]
)
def test_stored_text_that_is_not_utf8_is_unreadable(stored: str | bytes) -> None:
    """A BOM, CESU-8 surrogates, UTF-16, or a lone surrogate in stored text: unreadable."""
    assert AuditRecord.read(stored, "row 0").problem is ProblemKind.UNREADABLE


def test_a_canonical_line_reads_exactly() -> None:
    """The boundary: the writer's own bytes are canonical, and é stays a literal character."""
    entry = AuditEntry.seal(
        seq=0,
        event="upload",
        key="café.png",
        actor="moderation",
        at="2026-11-29T12:00:00.000000Z",
        verdict=VERDICT,
        prev=GENESIS,
    )
    record = AuditRecord.read(entry.to_json().encode(), "line 1")
    assert record.canonical
    assert record.entry == entry


def test_read_only_opening_never_creates_or_changes_a_file(tmp_path: Path) -> None:
    """read_only: another SQLite file is refused untouched; a real trail reads; appends refused."""
    other = tmp_path / "state.sqlite3"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE records (key TEXT)")
    before = other.read_bytes()
    with pytest.raises(AuditError, match="no audit table"):
        AuditTrail.sqlite(other, read_only=True)
    assert other.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.sqlite3"]
    with pytest.raises(AuditError, match="no such file"):
        AuditTrail.sqlite(tmp_path / "missing.sqlite3", read_only=True)
    assert not (tmp_path / "missing.sqlite3").exists()
    garbage = tmp_path / "garbage.sqlite3"
    garbage.write_bytes(b"not a database, just bytes" * 100)
    with pytest.raises(AuditError, match="not an SQLite audit trail"):
        AuditTrail.sqlite(garbage, read_only=True)
    path = tmp_path / "audit.sqlite3"
    fill(AuditTrail.sqlite(path), 3)
    reader = AuditTrail.sqlite(path, read_only=True)
    assert reader.verify().entries == 3
    with pytest.raises(AuditError, match="read-only"):
        reader.append("upload", key="a.png", actor="moderation")
    assert reader.verify().entries == 3


def test_an_audit_table_of_another_shape_is_refused(tmp_path: Path) -> None:
    """An SQLite file whose audit table is not a trail's: refused, read-only or not."""
    path = tmp_path / "x.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE audit (id INTEGER, note TEXT)")
    for read_only in (True, False):
        with pytest.raises(AuditError, match="columns"):
            AuditTrail.sqlite(path, read_only=read_only)


@pytest.mark.parametrize("field", ["key", "actor", "reason"])
def test_a_lone_surrogate_is_refused_naming_the_field(field: str, tmp_path: Path) -> None:
    """A Latin-1 argv byte (a lone surrogate): AuditFieldError naming the field, no row."""
    trail = AuditTrail.sqlite(tmp_path / "audit.sqlite3")
    values = {"key": "a.png", "actor": "ann", "reason": "ok", field: "caf\udce9 sign"}
    with pytest.raises(AuditFieldError, match=f"AuditEntry.{field}: not valid UTF-8") as caught:
        trail.append("reject", key=values["key"], actor=values["actor"], reason=values["reason"])
    assert caught.value.field == field
    assert trail.head() is None


def test_the_split_modules_stay_importable_from_the_audit_module() -> None:
    """The split keeps every public name where callers import it, the same objects."""
    from safegen.review import _audit_entry, _audit_logs, audit

    assert audit.SQLiteAuditLog is _audit_logs.SQLiteAuditLog
    assert audit.JsonLinesAuditLog is _audit_logs.JsonLinesAuditLog
    assert audit.AuditEntry is _audit_entry.AuditEntry
    assert all(hasattr(audit, name) for name in audit.__all__)
    assert set(_audit_entry.__all__) | set(_audit_logs.__all__) <= set(audit.__all__)


def test_an_oversized_entry_is_refused_naming_its_largest_field(tmp_path: Path) -> None:
    """One byte over MAX_ENTRY_BYTES: AuditFieldError naming the field that made it so."""
    trail = AuditTrail.jsonl(tmp_path / "audit.jsonl")
    fits = "x" * (MAX_ENTRY_BYTES - stored_size("x") + 1)
    with pytest.raises(AuditFieldError, match="bytes as JSON") as caught:
        trail.append("upload", key="a", actor="m", at="2026-11-29T12:00:00Z", reason=fits + "x")
    assert caught.value.field == "reason"
    assert not (tmp_path / "audit.jsonl").exists()
