"""Audit trail properties: any single tampering anywhere is found; an untouched chain verifies."""

from __future__ import annotations

import json
import sqlite3
import string
import tempfile
from datetime import UTC
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from safegen.review.audit import (
    EVENTS,
    GENESIS,
    AuditEntry,
    AuditFieldError,
    AuditRecord,
    AuditTrail,
    JsonLinesAuditLog,
    ProblemKind,
    SQLiteAuditLog,
    iso_utc,
    verify_records,
)
from safegen.review.events import VerdictSummary

texts = st.text(string.ascii_letters + string.digits + "-_./ é", min_size=1, max_size=12)
hashes = st.text("0123456789abcdef", min_size=64, max_size=64)
times = st.datetimes(timezones=st.just(UTC)).map(iso_utc)
verdicts = st.none() | st.builds(
    VerdictSummary,
    action=st.sampled_from(["allow", "review", "block"]),
    labels=st.lists(
        st.tuples(texts, st.floats(0, 100, allow_nan=False, allow_infinity=False)), max_size=3
    ),
    model_version=st.none() | texts,
    policy_version=st.none() | texts,
    policy_sha256=st.none() | hashes,
)
FIELD_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "seq": st.integers(0, 40),
    "event": st.sampled_from(EVENTS),
    "key": texts,
    "actor": texts,
    "at": times,
    "verdict": verdicts,
    "reason": st.none() | texts,
    "prev": hashes,
    "hash": hashes,
}


@st.composite
def chains(draw: st.DrawFn, min_size: int = 0, max_size: int = 10) -> list[AuditEntry]:
    """Draw a valid chain of sealed entries."""
    entries: list[AuditEntry] = []
    for seq in range(draw(st.integers(min_size, max_size))):
        entries.append(
            AuditEntry.seal(
                seq=seq,
                event=draw(FIELD_VALUES["event"]),
                key=draw(texts),
                actor=draw(texts),
                at=draw(times),
                verdict=draw(verdicts),
                reason=draw(FIELD_VALUES["reason"]),
                prev=entries[-1].hash if entries else GENESIS,
            )
        )
    return entries


def records(entries: list[AuditEntry]) -> list[AuditRecord]:
    """Records as a log without stored positions would yield them."""
    return [AuditRecord.of(e, f"line {i + 1}") for i, e in enumerate(entries)]


def edited(draw: st.DrawFn, entry: AuditEntry) -> AuditEntry:
    """Return *entry* with one field changed to another valid value (not resealed)."""
    name = draw(st.sampled_from(sorted(FIELD_VALUES)))
    value = draw(FIELD_VALUES[name].filter(lambda v: v != getattr(entry, name)))
    return attrs.evolve(entry, **{name: value})


@given(chains())
def test_an_untouched_chain_always_verifies(entries: list[AuditEntry]) -> None:
    """Every valid chain verifies, counting all its entries; its head as anchor is found."""
    report = verify_records(records(entries))
    assert report.ok
    assert report.entries == len(entries)
    if entries:
        assert verify_records(records(entries), anchor=entries[-1].hash).anchored


@given(chains(min_size=1), st.data())
def test_any_single_edit_is_found_at_its_entry(
    entries: list[AuditEntry], data: st.DataObject
) -> None:
    """Changing any one field of any one entry (hash included) is EDITED at that entry."""
    index = data.draw(st.integers(0, len(entries) - 1))
    entries[index] = data.draw(st.composite(lambda draw: edited(draw, entries[index]))())
    report = verify_records(records(entries))
    assert report.problem is not None
    assert report.problem.kind is ProblemKind.EDITED
    assert report.problem.where == f"line {index + 1}"
    assert report.entries == index


@given(chains(min_size=1), st.data())
def test_an_edit_resealed_is_found_unless_it_is_the_last_without_an_anchor(
    entries: list[AuditEntry], data: st.DataObject
) -> None:
    """A forger who reseals an edited entry breaks the next link; the head needs the anchor."""
    index = data.draw(st.integers(0, len(entries) - 1))
    head = entries[-1].hash
    changed = data.draw(st.composite(lambda draw: edited(draw, entries[index]))())
    fields = {
        f: getattr(changed, f)
        for f in ("seq", "event", "key", "actor", "at", "verdict", "reason", "prev")
    }
    forged = AuditEntry.seal(**fields)
    if forged.hash == entries[index].hash:  # the drawn change was to the hash alone
        return
    linked = forged.seq == index and forged.prev == (entries[index - 1].hash if index else GENESIS)
    last = index == len(entries) - 1
    entries[index] = forged
    assert not verify_records(records(entries), anchor=head).ok
    assert verify_records(records(entries)).ok is (last and linked)


@given(chains(min_size=1), st.data())
def test_any_removal_is_found_and_the_last_with_an_anchor(
    entries: list[AuditEntry], data: st.DataObject
) -> None:
    """Removing any entry is found; removing the last one only with the old head as anchor."""
    index = data.draw(st.integers(0, len(entries) - 1))
    head = entries[-1].hash
    del entries[index]
    anchored = verify_records(records(entries), anchor=head)
    assert anchored.problem is not None
    assert anchored.entries == index
    plain = verify_records(records(entries))
    if index == len(entries):  # it was the last: what is left is a valid chain
        assert plain.ok
        assert anchored.problem.kind is ProblemKind.TRUNCATED_TAIL
    else:
        assert plain.problem is not None
        assert plain.problem.where == f"line {index + 1}"
        expected = ProblemKind.TRUNCATED_HEAD if index == 0 else ProblemKind.REMOVED
        assert plain.problem.kind is expected


@given(chains(min_size=2), st.data())
def test_any_swap_is_found_as_a_reordering(entries: list[AuditEntry], data: st.DataObject) -> None:
    """Exchanging any two entries is REORDERED at the first of them."""
    i = data.draw(st.integers(0, len(entries) - 2))
    j = data.draw(st.integers(i + 1, len(entries) - 1))
    entries[i], entries[j] = entries[j], entries[i]
    report = verify_records(records(entries))
    assert report.problem is not None
    assert report.problem.where == f"line {i + 1}"
    expected = ProblemKind.TRUNCATED_HEAD if i == 0 else ProblemKind.REORDERED
    assert report.problem.kind is expected


@st.composite
def intruders(draw: st.DrawFn, entries: list[AuditEntry], index: int) -> AuditEntry:
    """An entry a forger slips in at *index*: a copy, a well-linked forgery or anything."""
    well_linked = AuditEntry.seal(
        seq=index,
        event=draw(FIELD_VALUES["event"]),
        key=draw(texts),
        actor=draw(texts),
        at=draw(times),
        prev=entries[index - 1].hash if index else GENESIS,
    )
    anything = AuditEntry.seal(
        **{n: draw(FIELD_VALUES[n]) for n in ("seq", "event", "key", "actor", "at", "prev")}
    )
    return draw(st.sampled_from([well_linked, anything, *entries]))


@given(chains(min_size=1), st.data())
def test_any_insertion_before_the_head_is_found(
    entries: list[AuditEntry], data: st.DataObject
) -> None:
    """An entry (a copy or a forgery) inserted anywhere before the head is found at or after it."""
    index = data.draw(st.integers(0, len(entries) - 1))
    intruder = data.draw(intruders(entries, index))
    entries.insert(index, intruder)
    report = verify_records(records(entries))
    assert report.problem is not None
    assert report.entries in (index, index + 1)


# -- the same tampering on real files ------------------------------------------------------


def write_chain(trail: AuditTrail, entries: list[AuditEntry]) -> None:
    """Store *entries* through the log's own append."""
    for entry in entries:
        assert trail.log.append(entry)


MUTATIONS = ["edit", "remove", "swap", "insert"]


@settings(max_examples=40, suppress_health_check=[HealthCheck.too_slow])
@given(chains(min_size=2, max_size=6), st.sampled_from(MUTATIONS), st.data())
def test_tampering_with_a_json_lines_file_is_found(
    entries: list[AuditEntry], mutation: str, data: st.DataObject
) -> None:
    """Editing, removing (before the head), swapping or inserting lines in the file is found."""
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "audit.jsonl"
        trail = AuditTrail.jsonl(path)
        write_chain(trail, entries)
        assert trail.verify().ok
        lines = path.read_bytes().splitlines(keepends=True)
        i = data.draw(st.integers(0, len(lines) - 2))
        if mutation == "edit":
            line = lines[i]
            position = data.draw(st.integers(0, len(line) - 2))
            byte = data.draw(st.sampled_from(b"0123456789abcdefXYZ ,:{}"), label="byte")
            if line[position] == byte:
                return
            lines[i] = line[:position] + bytes([byte]) + line[position + 1 :]
        elif mutation == "remove":
            del lines[i]
        elif mutation == "swap":
            lines[i], lines[i + 1] = lines[i + 1], lines[i]
        else:
            lines.insert(i, data.draw(st.sampled_from(lines)))
        path.write_bytes(b"".join(lines))
        report = trail.verify()
        assert report.problem is not None
        assert report.entries <= i + 1


@settings(max_examples=30, suppress_health_check=[HealthCheck.too_slow])
@given(chains(min_size=2, max_size=6), st.sampled_from(["edit", "remove", "swap"]), st.data())
def test_tampering_with_sqlite_rows_is_found(
    entries: list[AuditEntry], mutation: str, data: st.DataObject
) -> None:
    """Editing a row's entry, deleting a row (before the head) or exchanging two rows is found."""
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "audit.sqlite3"
        log = SQLiteAuditLog(path)
        trail = AuditTrail(log)
        write_chain(trail, entries)
        i = data.draw(st.integers(0, len(entries) - 2))
        with sqlite3.connect(path) as db:
            if mutation == "edit":
                changed = data.draw(st.composite(lambda draw: edited(draw, entries[i]))())
                db.execute("UPDATE audit SET entry = ? WHERE seq = ?", (changed.to_json(), i))
            elif mutation == "remove":
                db.execute("DELETE FROM audit WHERE seq = ?", (i,))
            else:
                a, b = entries[i].to_json(), entries[i + 1].to_json()
                db.execute("UPDATE audit SET entry = ? WHERE seq = ?", (b, i))
                db.execute("UPDATE audit SET entry = ? WHERE seq = ?", (a, i + 1))
        report = trail.verify()
        log.close()
        assert report.problem is not None
        assert report.entries == i


# -- boundary examples ----------------------------------------------------------------------


def one_chain(n: int) -> list[AuditEntry]:
    """A fixed chain of *n* entries."""
    entries: list[AuditEntry] = []
    for seq in range(n):
        prev = entries[-1].hash if entries else GENESIS
        entries.append(
            AuditEntry.seal(
                seq=seq,
                event="upload",
                key=f"k{seq}",
                actor="m",
                at="2026-11-29T12:00:00Z",
                prev=prev,
            )
        )
    return entries


def test_an_empty_chain_verifies() -> None:
    """No entries: nothing to find, no head."""
    report = verify_records([])
    assert report.ok
    assert report.head is None


def test_a_one_entry_chain_verifies_and_its_edit_is_found() -> None:
    """One entry verifies; an edit of it is found; its removal only with the anchor."""
    (entry,) = one_chain(1)
    assert verify_records(records([entry])).ok
    bad = verify_records(records([attrs.evolve(entry, key="other")]))
    assert bad.problem is not None
    assert bad.problem.kind is ProblemKind.EDITED
    assert verify_records([]).ok
    gone = verify_records([], anchor=entry.hash)
    assert gone.problem is not None
    assert gone.problem.kind is ProblemKind.TRUNCATED_TAIL


@pytest.mark.parametrize("index", [0, 4])
def test_an_edit_of_the_first_or_last_entry_is_found(index: int) -> None:
    """Editing the first or the last entry of five is EDITED at it."""
    entries = one_chain(5)
    entries[index] = attrs.evolve(entries[index], actor="mallory")
    report = verify_records(records(entries))
    assert report.problem is not None
    assert report.problem.kind is ProblemKind.EDITED
    assert report.problem.seq == index


def test_a_first_entry_not_linked_to_genesis_is_replaced() -> None:
    """Entry 0 sealed with another prev is REPLACED at line 1 (a forged start)."""
    forged = AuditEntry.seal(
        seq=0, event="upload", key="k", actor="m", at="2026-11-29T12:00:00Z", prev="1" * 64
    )
    report = verify_records(records([forged]))
    assert report.problem is not None
    assert report.problem.kind is ProblemKind.REPLACED


def test_the_anchor_must_be_a_hash(tmp_path: Path) -> None:
    """verify(anchor=...) refuses something that is not 64 hex digits, and reads any case."""
    trail = AuditTrail(JsonLinesAuditLog(tmp_path / "a.jsonl"))
    write_chain(trail, one_chain(2))
    with pytest.raises(ValueError, match="anchor"):
        trail.verify(anchor="abc")
    head = trail.head()
    assert head is not None
    assert trail.verify(anchor=head.upper()).anchored


# -- crash repair: only the torn tail is ever touched -----------------------------------------


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(chains(min_size=0, max_size=4), st.binary(max_size=300), st.data())
def test_repair_touches_only_what_follows_the_last_newline(
    entries: list[AuditEntry], tail: bytes, data: st.DataObject
) -> None:
    """Whatever follows the chain, repair keeps every complete line; a torn one it removes."""
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "audit.jsonl"
        trail = AuditTrail.jsonl(path)
        write_chain(trail, entries)
        whole = path.read_bytes() if path.exists() else b""
        if data.draw(st.booleans(), label="a cut-short next entry"):
            following = (
                AuditEntry.seal(
                    seq=len(entries),
                    event="upload",
                    key="k",
                    actor="m",
                    at="2026-11-29T12:00:00Z",
                    prev=entries[-1].hash if entries else GENESIS,
                )
                .to_json()
                .encode()
            )
            tail = following[: data.draw(st.integers(1, len(following)))]
        path.write_bytes(whole + tail)
        complete = (whole + tail)[: (whole + tail).rfind(b"\n") + 1]
        trail.repair()
        after = path.read_bytes()
        assert after.startswith(complete)
        assert after == complete or after == whole + tail + b"\n"
        if b"\n" not in tail:
            assert trail.verify().ok


# -- what a reader sees is what was hashed (red team 15, items 8, 11 and 2) -----------------


def _rewrites(draw: st.DrawFn, line: bytes) -> bytes:
    """Return *line* (canonical, no newline) spelled another way that still parses."""
    data = json.loads(line)
    how = draw(st.sampled_from(["duplicate", "spaces", "escape", "order", "ascii", "number"]))
    if how == "duplicate":  # a first member a first-wins reader believes; json keeps the last
        name = draw(st.sampled_from(sorted(data)))
        forged = draw(texts | st.integers() | st.none())
        member = json.dumps({name: forged}, ensure_ascii=False, separators=(",", ":"))[1:-1]
        return b"{" + member.encode() + b"," + line[1:]
    if how == "spaces":
        return json.dumps(data, sort_keys=True, ensure_ascii=False).encode()
    if how == "escape":  # one character of the key as a \u escape
        key = data["key"]
        spelled = f'"\\u{ord(key[0]):04x}' + json.dumps(key[1:], ensure_ascii=False)[1:]
        plain = json.dumps(key, ensure_ascii=False)
        return line.replace(f'"key":{plain}'.encode(), f'"key":{spelled}'.encode(), 1)
    if how == "order":
        members = dict(reversed(list(data.items())))
        return json.dumps(members, ensure_ascii=False, separators=(",", ":")).encode()
    if how == "ascii":
        return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
    text = line.decode()  # "number": a float spelled with a trailing zero
    verdict = data["verdict"]
    if verdict is None or not verdict["labels"] or "e" in repr(verdict["labels"][0][1]):
        return line
    number = repr(verdict["labels"][0][1])
    return text.replace(f",{number}]", f",{number}0]", 1).encode()


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(chains(min_size=1, max_size=5), st.data())
def test_a_line_spelled_other_than_as_written_never_verifies_nor_reads(
    entries: list[AuditEntry], data: st.DataObject
) -> None:
    """Any JSON Lines entry rewritten in a non-canonical spelling is an edit and is not read."""
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "audit.jsonl"
        trail = AuditTrail.jsonl(path)
        write_chain(trail, entries)
        lines = path.read_bytes().splitlines()
        i = data.draw(st.integers(0, len(lines) - 1))
        rewritten = data.draw(st.composite(lambda draw: _rewrites(draw, lines[i]))())
        if rewritten == lines[i]:
            return
        lines[i] = rewritten
        path.write_bytes(b"".join(line + b"\n" for line in lines))
        report = trail.verify(anchor=entries[-1].hash)
        assert report.problem is not None
        assert report.problem.kind is ProblemKind.EDITED
        assert report.problem.where == f"line {i + 1}"
        assert i not in [entry.seq for entry in trail.entries()]
        assert i not in [entry.seq for entry in trail.history(entries[i].key)]


@settings(max_examples=40, suppress_health_check=[HealthCheck.too_slow])
@given(
    chains(min_size=1, max_size=5),
    st.sampled_from(["key", "hash", "prev"]),
    texts | hashes,
    st.data(),
)
def test_an_sqlite_index_column_edited_is_found_and_never_moves_an_entry(
    entries: list[AuditEntry], column: str, value: str, data: st.DataObject
) -> None:
    """Any row's key, hash or prev column changed: verify names the row; history is unmoved."""
    i = data.draw(st.integers(0, len(entries) - 1))
    if value == getattr(entries[i], column) or value in {e.prev for e in entries}:
        return
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "audit.sqlite3"
        log = SQLiteAuditLog(path)
        trail = AuditTrail(log)
        write_chain(trail, entries)
        with sqlite3.connect(path) as db:
            db.execute(f"UPDATE audit SET {column} = ? WHERE seq = ?", (value, i))
        report = trail.verify(anchor=entries[-1].hash)
        for key in {value, entries[i].key}:
            assert all(entry.key == key for entry in trail.history(key))
        expected = [e.seq for e in entries if e.key == entries[i].key]
        got = [e.seq for e in trail.history(entries[i].key)]
        assert got == (expected if column != "key" else [seq for seq in expected if seq != i])
        log.close()
        assert report.problem is not None
        assert report.problem.kind is ProblemKind.EDITED
        assert report.problem.where == f"row {i}"


SURROGATES = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
TEXT_FIELDS = [
    "key",
    "actor",
    "reason",
    "verdict.labels[0]",
    "verdict.model_version",
    "verdict.backend",
    "verdict.error",
    "verdict.policy_version",
]


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(TEXT_FIELDS), texts, SURROGATES, texts)
def test_text_utf8_cannot_encode_is_refused_naming_its_field_before_any_write(
    field: str, before: str, surrogate: str, after: str
) -> None:
    """A lone surrogate in any text field: AuditFieldError (a ValueError) naming it, no write."""
    bad = before + surrogate + after
    values: dict[str, Any] = {"key": "a.png", "actor": "ann", "reason": "fine"}
    verdict: dict[str, Any] = {"action": "block", "labels": [("nudity", 90.0)]}
    if field.startswith("verdict.labels"):
        verdict["labels"] = [(bad, 90.0)]
    elif field.startswith("verdict."):
        verdict[field.removeprefix("verdict.")] = bad
    else:
        values[field] = bad
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "audit.jsonl"
        trail = AuditTrail.jsonl(path)
        with pytest.raises(AuditFieldError) as caught:
            trail.append("reject", verdict=VerdictSummary(**verdict), **values)
        assert caught.value.field == field
        assert isinstance(caught.value, ValueError)
        assert "surrogate" in str(caught.value)
        assert not path.exists()
