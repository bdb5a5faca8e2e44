"""The batch layer: items, the ledger (the checkpoint), the client-side engine, the summary."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from safegen import ImageModerator, ModerationLabel, ModerationPolicy, S3Object
from safegen.batch import (
    BatchSummary,
    ClientEngine,
    Engine,
    Item,
    Ledger,
    LedgerError,
    LedgerPolicyError,
    LedgerRecord,
    Tally,
    directory_items,
    items_from,
    manifest_items,
)
from safegen.errors import ThrottledError
from safegen.testing import FakeImageBackend

POLICY = ModerationPolicy()


def _record(ref: str, ledger: Ledger, **changes: Any) -> LedgerRecord:
    base = LedgerRecord(
        ref,
        "checked",
        "allow",
        policy_sha256=ledger.policy_sha256,
        policy_version=ledger.policy_version,
        attempt=ledger.next_attempt(ref),
    )
    return attrs.evolve(base, **changes)


def _lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def _items(path: Path) -> list[dict[str, object]]:
    return [line for line in _lines(path) if line["kind"] == "item"]


def test_a_record_survives_reopening(tmp_path: Path) -> None:
    """What one run appends is done for the next."""
    where = tmp_path / "ledger.jsonl"
    with Ledger.open(where, policy=POLICY, engine="client") as ledger:
        ledger.append(_record("a", ledger))
    with Ledger.open(where, policy=POLICY, engine="client") as again:
        assert again.done == {"a"}
        assert again.resumed == 1
        assert again.is_done("a")


def test_a_second_final_record_is_refused(tmp_path: Path) -> None:
    """No ref is ever recorded twice: the ledger refuses a second final record."""
    with Ledger.open(tmp_path / "l.jsonl", policy=POLICY, engine="client") as ledger:
        ledger.append(_record("a", ledger))
        with pytest.raises(LedgerError, match="final record already"):
            ledger.append(_record("a", ledger))


def test_a_retryable_failure_is_not_final(tmp_path: Path) -> None:
    """A throttled item is recorded, and checked again by the next run."""
    where = tmp_path / "l.jsonl"
    with Ledger.open(where, policy=POLICY, engine="client") as ledger:
        failed = _record("a", ledger, outcome="failed", action="block", error="Throttling")
        ledger.append(attrs.evolve(failed, retryable=True))
        assert not ledger.is_done("a")
    with Ledger.open(where, policy=POLICY, engine="client") as again:
        assert again.done == frozenset()
        again.append(_record("a", again))
        assert [r["attempt"] for r in _items(where)] == [1, 2]


@pytest.mark.parametrize("cut", [1, 5, 20, -1])
def test_a_torn_last_line_is_cut_and_redone(tmp_path: Path, cut: int) -> None:
    """A record cut short by a crash (no newline) is dropped; its item is not done."""
    where = tmp_path / "l.jsonl"
    with Ledger.open(where, policy=POLICY, engine="client") as ledger:
        ledger.append(_record("a", ledger))
        line = json.dumps(_record("b", ledger).to_dict()).encode()
    with where.open("ab") as stream:
        stream.write(line[:cut])
    with Ledger.open(where, policy=POLICY, engine="client") as again:
        assert again.done == {"a"}
        again.append(_record("b", again))
    assert [r["ref"] for r in _items(where)] == ["a", "b"]


def test_a_damaged_line_inside_is_refused(tmp_path: Path) -> None:
    """A complete line that is not a ledger line is not skipped over: it is refused."""
    where = tmp_path / "l.jsonl"
    where.write_bytes(b'{"kind": "item", "ref": 3}\n')
    with pytest.raises(LedgerError, match="line 1"):
        Ledger.open(where, policy=POLICY, engine="client")


def test_another_policy_is_refused(tmp_path: Path) -> None:
    """Resuming with another policy would skip items it never judged: refused."""
    where = tmp_path / "l.jsonl"
    Ledger.open(where, policy=POLICY, engine="client").close()
    stricter = attrs.evolve(POLICY, version="v2")
    with pytest.raises(LedgerPolicyError, match="another policy"):
        Ledger.open(where, policy=stricter, engine="client")


def test_two_runs_cannot_share_a_ledger(tmp_path: Path) -> None:
    """The ledger is locked while open: a second run fails at once."""
    where = tmp_path / "l.jsonl"
    with (
        Ledger.open(where, policy=POLICY, engine="client"),
        pytest.raises(LedgerError, match="another run"),
    ):
        Ledger.open(where, policy=POLICY, engine="client")


def test_a_job_is_found_again_after_reopening(tmp_path: Path) -> None:
    """An engine's job id outlives the run, so a resumed run re-attaches to it."""
    where = tmp_path / "l.jsonl"
    with Ledger.open(where, policy=POLICY, engine="bulk") as ledger:
        assert ledger.job("chunk-1") is None
        ledger.record_job("chunk-1", "job-123", token="t1")
    with Ledger.open(where, policy=POLICY, engine="bulk") as again:
        assert again.job("chunk-1") == "job-123"
        assert again.job_details("chunk-1") == {"token": "t1"}


def _images(root: Path, count: int) -> list[Path]:
    root.mkdir(parents=True, exist_ok=True)
    paths = [root / f"{index:03d}.png" for index in range(count)]
    for path in paths:
        path.write_bytes(b"image " + path.name.encode())
    return paths


def test_the_engine_records_every_item_once_and_resumes(tmp_path: Path) -> None:
    """Each file gets one record; a second run checks nothing again."""
    _images(tmp_path / "d", 7)
    (tmp_path / "d" / "notes.txt").write_text("not an image")
    backend = FakeImageBackend()
    engine = ClientEngine(ImageModerator(backend, POLICY), workers=3)
    assert isinstance(engine, Engine)
    where = tmp_path / "l.jsonl"
    with Ledger.open(where, policy=POLICY, engine="client") as ledger:
        summary = engine.run(directory_items(tmp_path / "d"), ledger)
    assert summary.checked == 7
    assert summary.actions["allow"] == 7
    assert summary.skips == {"unsupported_type": 1}  # notes.txt: seen, never read
    with Ledger.open(where, policy=POLICY, engine="client") as ledger:
        again = engine.run(directory_items(tmp_path / "d"), ledger)
    assert again.total == 0
    assert again.already_done == 8
    assert len(backend.calls) == 7
    assert len({r["ref"] for r in _items(where)}) == 8


_NAMES = st.lists(
    st.text(st.sampled_from("abcXY.-_ "), min_size=1, max_size=12).filter(
        lambda name: name not in (".", "..")
    ),
    min_size=1,
    max_size=8,
    unique_by=str.lower,
)


@settings(max_examples=40, deadline=None)
@given(_NAMES, st.sampled_from([None, frozenset({".png"}), frozenset({".PNG", ".a"})]))
def test_every_file_of_a_directory_gets_one_record(
    names: list[str], suffixes: frozenset[str] | None
) -> None:
    """Whatever the names and the extensions taken, every file is recorded once: none dropped."""
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "d"
        root.mkdir()
        for name in names:
            (root / name).write_bytes(b"bytes of " + name.encode())
        backend = FakeImageBackend()
        with Ledger.open(Path(folder) / "l.jsonl", policy=POLICY, engine="client") as ledger:
            summary = ClientEngine(ImageModerator(backend, POLICY)).run(
                directory_items(root, suffixes=suffixes), ledger
            )
            records = _items(Path(folder) / "l.jsonl")
    assert sorted(Path(str(r["ref"])).name for r in records) == sorted(names)
    taken = {name for name in names if suffixes is None or
             os.path.splitext(name)[1].lower() in {s.lower() for s in suffixes}}  # fmt: skip
    assert summary.checked == len(taken) == len(backend.calls)
    assert summary.skipped == len(names) - len(taken) == sum(summary.skips.values())
    for record in records:
        if Path(str(record["ref"])).name not in taken:
            assert record["outcome"] == "skipped"
            assert record["error"] == "unsupported_type"


def test_a_skipped_item_needs_its_reason() -> None:
    """An item marked skip without a reason is refused (a skip is never silent)."""
    with pytest.raises(ValueError, match="reason"):
        Item("a", skip=True)


def test_an_over_size_item_is_recorded_and_never_read(tmp_path: Path) -> None:
    """An item listed over the limit fails as too_large without being read or sent."""
    backend = FakeImageBackend()
    engine = ClientEngine(ImageModerator(backend, POLICY), max_bytes=100)
    items = [
        Item("s3://b/big.png", S3Object("b", "big.png"), size=101),
        Item("s3://b/edge.png", S3Object("b", "edge.png"), size=100),
    ]
    with Ledger.open(tmp_path / "l.jsonl", policy=POLICY, engine="client") as ledger:
        summary = engine.run(items, ledger)
    assert summary.failures == {"too_large": 1}
    assert [call.image for call in backend.calls] == [S3Object("b", "edge.png")]


def test_a_throttled_check_is_retryable_and_labels_are_paths(tmp_path: Path) -> None:
    """Throttling is recorded by its code as retryable; a violation by its taxonomy path."""
    weapons = FakeImageBackend([ModerationLabel("Weapons", 99.0, parent="Violence")])
    throttled = FakeImageBackend(
        error=ThrottledError("slow down", service="rekognition", operation="D", code="Throttling")
    )
    where = tmp_path / "l.jsonl"
    with Ledger.open(where, policy=POLICY, engine="client") as ledger:
        ClientEngine(ImageModerator(weapons, POLICY)).run([Item("a", b"x")], ledger)
        summary = ClientEngine(ImageModerator(throttled, POLICY)).run([Item("b", b"y")], ledger)
    first, second = _items(where)
    assert first["labels"] == ["Violence/Weapons"]
    assert first["action"] == "block"
    assert second["error"] == "Throttling"
    assert second["retryable"] is True
    assert summary.retryable == 1
    assert "slow down" not in where.read_text()  # the cause's code, never its text


def test_bad_manifest_lines_are_failures_not_crashes() -> None:
    """Each manifest line is judged alone: a bad one is an item that fails."""
    lines = [
        '{"source-ref": "s3://bucket/a.jpg"}',
        "not json",
        '{"source-ref": "https://example.com/x.jpg"}',
        '{"source-ref": "s3://bucket/"}',
        "",
        '["source-ref"]',
        '{"source-ref": "s3://bucket/b.png"}',
    ]
    items = list(manifest_items(lines, name="m"))
    assert [item.problem for item in items] == [None] + ["bad_manifest_line"] * 4 + [None]
    assert items[0].source == S3Object("bucket", "a.jpg")
    assert items[1].ref == "m#line=2"


def test_items_from_names_each_kind_stably(tmp_path: Path) -> None:
    """S3 objects by URL, bytes by content, paths canonically; a bare string is refused."""
    (path,) = _images(tmp_path, 1)
    refs = [item.ref for item in items_from([S3Object("b", "k.png"), b"abc", path])]
    assert refs[0] == "s3://b/k.png"
    assert refs[1].startswith("sha256:")
    assert refs[2] == str(path.resolve())
    with pytest.raises(TypeError):
        list(items_from(["a-name"]))  # type: ignore[list-item]


def test_summary_counts_and_renders() -> None:
    """The summary counts actions, top-level labels once per item, and failures by cause."""
    tally = Tally(already_done=2)
    tally.add(LedgerRecord("a", "checked", "block", labels=["Violence/Weapons", "Violence/Gore"]))
    tally.add(LedgerRecord("b", "failed", "block", error="too_large"))
    summary = tally.summary()
    assert summary == BatchSummary(
        actions={"block": 2},
        labels={"Violence": 1},
        failures={"too_large": 1},
        checked=1,
        failed=1,
        already_done=2,
    )
    assert summary.to_dict()["actions"] == {"allow": 0, "review": 0, "block": 2}
    assert "too_large 1" in summary.render()
    assert summary.flagged


def test_a_source_that_fails_midway_raises_after_recording_what_came_before(
    tmp_path: Path,
) -> None:
    """The source is read ahead by a thread: its error still reaches the caller, in order."""

    def source() -> Iterator[Item]:
        yield Item("a", b"x")
        yield Item("b", b"y")
        raise OSError("listing failed")

    engine = ClientEngine(ImageModerator(FakeImageBackend(), POLICY), workers=1)
    where = tmp_path / "l.jsonl"
    with (
        Ledger.open(where, policy=POLICY, engine="client") as ledger,
        pytest.raises(OSError, match="listing failed"),
    ):
        engine.run(source(), ledger)
    with Ledger.open(where, policy=POLICY, engine="client") as again:
        assert again.done <= {"a", "b"}


_THRESHOLD = st.floats(min_value=1.0, max_value=99.0).map(lambda value: round(value, 1))


@settings(max_examples=40, deadline=None)
@given(_THRESHOLD, _THRESHOLD, st.floats(min_value=0.0, max_value=100.0), st.booleans())
def test_a_record_is_decided_by_the_ledgers_policy_whatever_the_moderators(
    ledger_block: float, moderator_block: float, confidence: float, cascade: bool
) -> None:
    """The engine judges by the ledger's policy: the record is what that policy alone says."""
    from safegen import Cascade

    ledgers = ModerationPolicy(review_at=ledger_block, block_at=ledger_block, version="ledger")
    theirs = ModerationPolicy(review_at=moderator_block, block_at=moderator_block, version="own")
    backend = FakeImageBackend([ModerationLabel("Weapons", confidence, parent="Violence")])
    moderator: Any = ImageModerator(backend, theirs)
    if cascade:
        moderator = Cascade(backend, ImageModerator(backend, theirs), first_policy=theirs)
    alone = ImageModerator(backend, ledgers).moderate(b"image").action.value
    with tempfile.TemporaryDirectory() as folder:
        where = Path(folder) / "l.jsonl"
        with Ledger.open(where, policy=ledgers, engine="client") as ledger:
            ClientEngine(moderator).run([Item("a", b"image")], ledger)
        (record,) = _items(where)
    assert (record["outcome"], record["action"]) == ("checked", alone)
    assert (record["policy_sha256"], record["policy_version"]) == (ledgers.sha256, "ledger")


class _OwnPolicyOnly:
    """A moderator that ignores the policy it is asked to judge by."""

    def __init__(self, policy: ModerationPolicy) -> None:
        self._inner = ImageModerator(FakeImageBackend(), policy)

    def moderate(self, image: bytes, *, policy: ModerationPolicy | None = None) -> Any:
        return self._inner.moderate(image)


def test_a_verdict_of_another_policy_is_a_failure_not_a_decision(tmp_path: Path) -> None:
    """A verdict naming another policy than the ledger's is recorded as policy_mismatch."""
    other = ModerationPolicy(block_at=99.0, review_at=99.0, version="other")
    with Ledger.open(tmp_path / "l.jsonl", policy=POLICY, engine="client") as ledger:
        moderator: Any = _OwnPolicyOnly(other)
        summary = ClientEngine(moderator).run([Item("a", b"x")], ledger)
        assert [record.error for record in ledger.flagged()] == ["policy_mismatch"]
    assert summary.failures == {"policy_mismatch": 1}
    (record,) = _items(tmp_path / "l.jsonl")
    assert (record["outcome"], record["action"]) == ("failed", "block")


def _weapons_if_unsafe(image: object) -> Any:
    from safegen.reports import ImageReport

    unsafe = isinstance(image, bytes) and image.startswith(b"unsafe")
    labels = [ModerationLabel("Weapons", 99.0, parent="Violence")] if unsafe else []
    return ImageReport(labels=tuple(labels))


@settings(max_examples=25, deadline=None)
@given(st.lists(st.sampled_from([b"safe..", b"unsafe", None]), min_size=1, max_size=5))
def test_a_replaced_file_is_checked_again_and_its_last_record_is_current(
    contents: list[bytes | None],
) -> None:
    """Runs over one ledger while a file is rewritten (same size, mtime set back): never stale."""
    with tempfile.TemporaryDirectory() as folder:
        root, where = Path(folder) / "d", Path(folder) / "l.jsonl"
        root.mkdir()
        image = root / "img.png"
        image.write_bytes(b"safe..")
        stamp = image.stat().st_mtime_ns
        backend = FakeImageBackend(respond=_weapons_if_unsafe)
        engine = ClientEngine(ImageModerator(backend, POLICY))
        for content in [None, *contents]:  # None: run again without touching the file
            if content is not None:
                image.write_bytes(content)
                os.utime(image, ns=(stamp, stamp))  # the old mtime: only size/ctime differ
            with Ledger.open(where, policy=POLICY, engine="client") as ledger:
                engine.run(directory_items(root), ledger)
                flagged = [record.ref for record in ledger.flagged()]
            assert flagged == ([str(image)] if image.read_bytes() == b"unsafe" else [])
        checked_after_change = sum(1 for content in contents if content is not None)
        assert len(backend.calls) == 1 + checked_after_change


def test_an_unchanged_file_is_skipped_and_a_second_record_for_it_refused(tmp_path: Path) -> None:
    """Same identity: done, and a second final record is refused; another identity supersedes."""
    with Ledger.open(tmp_path / "l.jsonl", policy=POLICY, engine="client") as ledger:
        ledger.append(_record("a", ledger, identity="v1"))
        assert ledger.is_done("a", "v1")
        assert ledger.is_done("a")
        assert not ledger.is_done("a", "v2")
        with pytest.raises(LedgerError):
            ledger.append(_record("a", ledger, identity="v1"))
        ledger.append(_record("a", ledger, identity="v2", action="block"))
        assert [record.identity for record in ledger.flagged()] == ["v2"]
    with Ledger.open(tmp_path / "l.jsonl", policy=POLICY, engine="client") as again:
        assert again.is_done("a", "v2")
        assert not again.is_done("a", "v1")
        assert not again.is_done("b")
