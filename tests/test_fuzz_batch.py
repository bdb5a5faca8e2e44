"""Properties of the batch layer: the ledger survives any cut, a manifest line never crashes."""

from __future__ import annotations

import json
import tempfile
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from safegen import ModerationPolicy
from safegen.batch import (
    Ledger,
    LedgerError,
    LedgerRecord,
    bounded_lines,
    manifest_file,
    manifest_items,
)
from safegen.batch._sources import MAX_MANIFEST_LINE

POLICY = ModerationPolicy()

refs = st.text(min_size=1, max_size=40)  # any text: non-ASCII, controls, lone surrogates
entries = st.lists(
    st.tuples(refs, st.sampled_from(["checked", "failed", "skipped"]), st.booleans()),
    max_size=12,
)


def _record(ref: str, outcome: str, retryable: bool) -> LedgerRecord:
    action = None if outcome == "skipped" else "block"
    return LedgerRecord(ref, outcome, action, error="Throttling" if outcome == "failed" else None,  # type: ignore[arg-type]
                        retryable=retryable and outcome == "failed",
                        policy_sha256=POLICY.sha256)  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(entries, st.data())
def test_a_ledger_cut_at_any_byte_opens_with_exactly_the_whole_lines_done(
    written: list[tuple[str, str, bool]], data: st.DataObject
) -> None:
    """Cut after any byte (a crash mid-write): it opens, and done is what whole lines settled."""
    with tempfile.TemporaryDirectory() as folder:
        where = Path(folder) / "l.jsonl"
        with Ledger.open(where, policy=POLICY, engine="client") as ledger:
            for ref, outcome, retryable in written:
                if not ledger.is_done(ref):
                    ledger.append(_record(ref, outcome, retryable))
        raw = where.read_bytes()
        cut = data.draw(st.integers(min_value=0, max_value=len(raw)))
        where.write_bytes(raw[:cut])
        whole = raw[:cut][: raw[:cut].rfind(b"\n") + 1]
        expected = {
            line["ref"]
            for line in map(json.loads, whole.splitlines())
            if line["kind"] == "item" and not (line["outcome"] == "failed" and line["retryable"])
        }
        with Ledger.open(where, policy=POLICY, engine="client") as again:
            assert again.done == expected
        assert where.read_bytes().startswith(whole)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=80), st.binary(max_size=80)), max_size=8))
def test_any_manifest_line_is_an_item_or_skipped_blank(lines: list[str | bytes]) -> None:
    """Every non-blank line gives exactly one item; nothing raises."""
    items = list(manifest_items(lines, name="m"))
    blank = sum(
        not (line.decode("utf-8", "replace") if isinstance(line, bytes) else line).strip()
        for line in lines
    )
    assert len(items) == len(lines) - blank
    for item in items:
        assert item.problem in (None, "bad_manifest_line")
        assert (item.problem is None) == (item.source is not None)


def _leaves() -> st.SearchStrategy[object]:
    return st.none() | st.booleans() | st.integers() | st.text(max_size=10)


@settings(max_examples=150, deadline=None)
@given(st.recursive(
    _leaves(),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.sampled_from(["kind", "ref", "name", "job_id", "x"]), inner, max_size=4),
    max_leaves=12,
))  # fmt: skip
def test_a_foreign_line_is_refused_as_a_ledger_error(value: object) -> None:
    """A line safegen did not write is refused as a LedgerError naming it; a note is kept."""
    line = {"kind": "item", **value} if isinstance(value, dict) else value
    kind = line.get("kind") if isinstance(line, dict) else None
    a_note = isinstance(kind, str) and bool(kind) and kind not in ("item", "run", "job")
    a_job = (
        kind == "job"
        and isinstance(line, dict)
        and isinstance(line.get("name"), str)
        and isinstance(line.get("job_id"), str)
    )
    with tempfile.TemporaryDirectory() as folder:
        where = Path(folder) / "l.jsonl"
        where.write_text(json.dumps(line) + "\n")
        if a_note or a_job:
            Ledger.open(where, policy=POLICY, engine="client").close()
        else:
            with pytest.raises(LedgerError, match="line 1"):
                Ledger.open(where, policy=POLICY, engine="client")


_LINE = st.binary(max_size=40).map(lambda data: data.replace(b"\n", b""))


@settings(max_examples=100, deadline=None)
@given(st.lists(_LINE, max_size=8), st.booleans(), st.integers(1, 50), st.integers(1, 64))
def test_bounded_lines_splits_like_splitlines_and_refuses_long_lines(
    lines: list[bytes], last_newline: bool, block: int, limit: int
) -> None:
    """Any blocking of any lines: each line as it is if it fits *limit*, else one bad line."""
    data = b"\n".join(lines) + (b"\n" if last_newline and lines else b"")
    blocks = [data[at : at + block] for at in range(0, len(data), block)]
    got = list(bounded_lines(blocks, limit))
    pieces = data.split(b"\n")  # lines end at a newline only (a lone CR is content)
    whole = [piece + b"\n" for piece in pieces[:-1]] + ([pieces[-1]] if pieces[-1] else [])
    assert got == [line if len(line) <= limit else b"\x00" for line in whole]


@pytest.mark.parametrize("extra", [-1, 0, 1])
def test_a_manifest_line_at_the_limit(tmp_path: Path, extra: int) -> None:
    """A line of exactly MAX_MANIFEST_LINE bytes (newline included) is read; one more is bad."""
    ref = b'{"source-ref": "s3://bucket/a.png"}'
    line = ref + b" " * (MAX_MANIFEST_LINE + extra - len(ref) - 1) + b"\n"
    (tmp_path / "m.jsonl").write_bytes(line + b'{"source-ref": "s3://bucket/b.png"}\n')
    items = list(manifest_file(tmp_path / "m.jsonl"))
    first = "s3://bucket/a.png" if extra <= 0 else f"{tmp_path / 'm.jsonl'}#line=1"
    assert [item.ref for item in items] == [first, "s3://bucket/b.png"]


def test_a_huge_manifest_line_is_never_held_in_memory(tmp_path: Path) -> None:
    """A 16 MiB line without a newline until its end: one bad line, memory flat."""
    where = tmp_path / "m.jsonl"
    with open(where, "wb") as out:
        for _ in range(256):
            out.write(b"x" * 65536)
        out.write(b'\n{"source-ref": "s3://bucket/b.png"}\n')
    tracemalloc.start()
    try:
        items = list(manifest_file(where))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [item.problem for item in items] == ["bad_manifest_line", None]
    assert peak < 4 * MAX_MANIFEST_LINE  # the old reader held the whole 16 MiB line
