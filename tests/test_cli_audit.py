"""``safegen audit verify|show|head|repair``: exit codes, output, escaping, no trail created."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from safegen.cli import main
from safegen.review.audit import AuditTrail
from safegen.review.events import VerdictSummary


def make(path: Path, n: int = 3) -> AuditTrail:
    """A trail at *path* (SQLite, or JSON Lines by suffix) with *n* entries."""
    trail = AuditTrail.jsonl(path) if path.suffix == ".jsonl" else AuditTrail.sqlite(path)
    verdict = VerdictSummary(
        action="block", labels=[("Explicit Nudity", 99.0)], policy_version="v2"
    )
    for i in range(n):
        trail.append(
            "upload" if i % 2 == 0 else "approve",
            key="cat.png" if i != 1 else "dog.png",
            actor="moderation" if i % 2 == 0 else "alice",
            verdict=verdict if i % 2 == 0 else None,
            reason=None if i % 2 == 0 else "fine",
        )
    return trail


@pytest.fixture(params=["audit.sqlite3", "audit.jsonl"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """A store directory holding a three-entry trail of each form."""
    make(tmp_path / request.param)
    return tmp_path


def test_verify_ok_exits_0_and_prints_the_head(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An untouched trail: exit 0, the entry count and the head hash."""
    jsonl = store / "audit.jsonl"
    trail = (
        AuditTrail.jsonl(jsonl) if jsonl.exists() else AuditTrail.sqlite(store / "audit.sqlite3")
    )
    head = trail.head()
    assert main(["audit", "verify", "--store", str(store)]) == 0
    out = capsys.readouterr().out
    assert "OK, 3 entries verified" in out
    assert str(head) in out


def test_verify_edited_exits_1_naming_the_entry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An edited line: exit 1, FAILED at that line, edited."""
    path = tmp_path / "audit.jsonl"
    make(path)
    lines = path.read_text().splitlines(keepends=True)
    lines[1] = lines[1].replace('"alice"', '"mallory"')
    path.write_text("".join(lines))
    assert main(["audit", "verify", "--jsonl", str(path)]) == 1
    out = capsys.readouterr().out
    assert "FAILED at line 2 (seq 1): edited" in out
    assert "1 entries verified before it" in out


def test_verify_json_is_the_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--json prints the report as one JSON line, the problem included."""
    path = tmp_path / "audit.jsonl"
    make(path)
    lines = path.read_text().splitlines(keepends=True)
    path.write_text(lines[0] + lines[2])
    assert main(["audit", "verify", "--jsonl", str(path), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False
    assert report["problem"]["kind"] == "removed"
    assert report["problem"]["where"] == "line 2"


def test_verify_anchor_finds_a_cut_tail(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """With the old head as --anchor, a removed last entry is exit 1 (truncated-tail)."""
    path = tmp_path / "audit.jsonl"
    head = make(path).head()
    assert head is not None
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:-1]))
    assert main(["audit", "verify", "--jsonl", str(path)]) == 0
    assert main(["audit", "verify", "--jsonl", str(path), "--anchor", head]) == 1
    assert "truncated-tail" in capsys.readouterr().out


def test_verify_a_bad_anchor_is_a_usage_error(store: Path) -> None:
    """--anchor that is not 64 hex digits is exit 2, like any usage error."""
    with pytest.raises(SystemExit) as caught:
        main(["audit", "verify", "--store", str(store), "--anchor", "abc"])
    assert caught.value.code == 2


def test_a_missing_trail_is_exit_3_and_not_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A trail that does not exist is an error (exit 3), and nothing is created in its place."""
    for option in ("--sqlite", "--jsonl"):
        assert main(["audit", "verify", option, str(tmp_path / "nope")]) == 3
    assert main(["audit", "verify", "--store", str(tmp_path)]) == 3
    assert list(tmp_path.iterdir()) == []
    assert "no audit trail" in capsys.readouterr().err


def test_a_file_that_is_not_sqlite_is_exit_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--sqlite on a text file: one line saying so, exit 3."""
    path = tmp_path / "audit.sqlite3"
    path.write_text("not a database, but long enough to have a header of sorts " * 10)
    assert main(["audit", "verify", "--sqlite", str(path)]) == 3
    assert "not an SQLite audit trail" in capsys.readouterr().err


def test_show_prints_one_keys_history(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Show KEY lists that key's entries with actor, action, labels and policy; not others'."""
    assert main(["audit", "show", "cat.png", "--store", str(store)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("cat.png: 2 entries")
    assert "#0" in out
    assert "#2" in out
    assert "#1" not in out
    assert "block [Explicit Nudity 99]" in out
    assert "policy v2" in out


def test_show_json_is_one_entry_a_line(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Show --json prints each entry's full form, hash included."""
    assert main(["audit", "show", "dog.png", "--store", str(store), "--json"]) == 0
    (entry,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert entry["reason"] == "fine"
    assert len(entry["hash"]) == 64


def test_show_escapes_what_the_trail_holds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A key, actor or reason with terminal escapes is printed escaped, never raw."""
    path = tmp_path / "audit.sqlite3"
    trail = AuditTrail.sqlite(path)
    trail.append("reject", key="k\x1b[2J", actor="eve\x1b]0;x\x07", reason="line\nbreak")
    assert main(["audit", "show", "k\x1b[2J", "--sqlite", str(path)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out
    assert "\x07" not in out
    assert out.count("\n") == 2


def test_show_of_an_unknown_key(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A key with no entries says so, exit 0."""
    assert main(["audit", "show", "nope", "--store", str(store)]) == 0
    assert "nope: no entries" in capsys.readouterr().out


def test_head_and_repair(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Head prints the anchor; repair cuts a torn line so verify passes again."""
    path = tmp_path / "audit.jsonl"
    head = make(path).head()
    assert main(["audit", "head", "--jsonl", str(path)]) == 0
    assert capsys.readouterr().out.strip() == head
    with path.open("a") as f:
        f.write('{"actor":"mod')
    assert main(["audit", "verify", "--jsonl", str(path)]) == 1
    assert "torn" in capsys.readouterr().out
    assert main(["audit", "repair", "--jsonl", str(path)]) == 0
    assert "13 bytes cut off" in capsys.readouterr().out
    assert main(["audit", "verify", "--jsonl", str(path), "--anchor", str(head)]) == 0


def test_one_trail_option_is_required() -> None:
    """No --store/--sqlite/--jsonl, or two of them, is a usage error."""
    for argv in (["audit", "verify"], ["audit", "verify", "--sqlite", "a", "--jsonl", "b"]):
        with pytest.raises(SystemExit) as caught:
            main(argv)
        assert caught.value.code == 2


@pytest.mark.parametrize("action", ["verify", "show", "head", "repair"])
def test_an_sqlite_file_that_is_not_a_trail_is_exit_3_and_left_as_it_was(
    action: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A store's state.sqlite3 given as a trail: exit 3, 'no audit table', not one byte changed."""
    import sqlite3

    state = tmp_path / "state.sqlite3"
    with sqlite3.connect(state) as db:
        db.execute("CREATE TABLE records (key TEXT PRIMARY KEY, record TEXT)")
    before = state.read_bytes()
    extra = ["a.png"] if action == "show" else []
    assert main(["audit", action, *extra, "--sqlite", str(state)]) == 3
    assert "not an audit trail (no audit table)" in capsys.readouterr().err
    assert state.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.sqlite3"]
