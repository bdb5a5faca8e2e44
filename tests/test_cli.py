"""Tests of the `safegen` command."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import re
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from safegen import ImageModerator, presets
from safegen.cli import _files, _images, _presets, main
from safegen.cli._common import choose_policy
from safegen.cli._files import printable
from safegen.testing import FakeImageBackend
from tests.strategies import make_image

EXAMPLES = Path(__file__).parent.parent / "examples"
POLICY = str(EXAMPLES / "policy.toml")
RESPONSE = str(EXAMPLES / "rekognition-response.json")


def test_evaluate_prints_the_decision_and_its_reasons(capsys: pytest.CaptureFixture[str]) -> None:
    """The README's main job: REVIEW, with the violation and every ignored label explained."""
    assert main(["evaluate", POLICY, RESPONSE]) == 1  # REVIEW: something was flagged
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "REVIEW  (model 7.0)"
    assert "  content type Animated at 88.4 >= 80: its rule applies" in lines
    assert (
        "  review: Swimwear or Underwear / Female Swimwear or Underwear at 71.3 >= 60 "
        '(labels."Female Swimwear or Underwear".review_at)'
    ) in lines
    assert any('excluded (exclude "Kissing on the Lips")' in line for line in lines)
    assert any('excluded (content_types.Animated.exclude "Weapons")' in line for line in lines)


def test_evaluate_json_is_the_decisions_stable_form(capsys: pytest.CaptureFixture[str]) -> None:
    """--json prints the decision's to_dict() plus the model version."""
    assert main(["evaluate", POLICY, RESPONSE, "--json"]) == 1
    payload = json.loads(capsys.readouterr().out)
    assert payload["action"] == "review"
    assert payload["model_version"] == "7.0"
    assert [v["label"]["name"] for v in payload["violations"]] == ["Female Swimwear or Underwear"]


def test_evaluate_reads_the_response_from_stdin(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`-` reads the response from standard input, for piping from the AWS CLI."""
    monkeypatch.setattr(sys, "stdin", io.StringIO(Path(RESPONSE).read_text()))
    assert main(["evaluate", POLICY, "-"]) == 1
    assert capsys.readouterr().out.startswith("REVIEW")


@pytest.mark.parametrize(
    ("policy_text", "response_text", "message"),
    [
        ('[labels]\n"Suggestive" = 1\n', "{}", "Rekognition v6 label"),
        ("block_at = 50\n", "not json", "Expecting value"),
        (
            "block_at = 50\n",
            '{"ModerationModelVersion": "7.0", "ModerationLabels": 3}',
            "ModerationLabels",
        ),
    ],
)
def test_bad_input_exits_3_with_one_clear_line(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    policy_text: str,
    response_text: str,
    message: str,
) -> None:
    """Bad files end with exit code 3 (could not check) and one line on stderr."""
    (tmp_path / "p.toml").write_text(policy_text)
    (tmp_path / "r.json").write_text(response_text)
    assert main(["evaluate", str(tmp_path / "p.toml"), str(tmp_path / "r.json")]) == 3
    err = capsys.readouterr().err
    assert err.startswith("safegen: error: ")
    assert message in err
    assert "Traceback" not in err


def test_a_missing_file_exits_3(capsys: pytest.CaptureFixture[str]) -> None:
    """A path that does not exist is reported, not raised."""
    assert main(["evaluate", "/nonexistent/policy.toml", RESPONSE]) == 3
    assert capsys.readouterr().err == (
        "safegen: error: policy file /nonexistent/policy.toml: cannot read: "
        "No such file or directory\n"
    )


def test_python_dash_m_safegen_runs_the_command() -> None:
    """`python -m safegen` is the same command as the console script."""
    done = subprocess.run(
        [sys.executable, "-m", "safegen", "evaluate", POLICY, RESPONSE],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert done.stdout.startswith("REVIEW")


def test_scan_progress_draws_on_a_terminal_only() -> None:
    import io
    from collections import Counter

    from safegen.cli._images import _Progress

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal, pipe = Terminal(), io.StringIO()
    for stream in (terminal, pipe):
        progress = _Progress(4, stream)
        for done in range(1, 5):
            progress.step(Counter(allow=done))
        progress.close()
    assert pipe.getvalue() == ""
    frames = terminal.getvalue().split("\r")
    assert frames[-1].startswith("[" + "#" * 30 + "] 4/4 ")
    assert "allow 4 review 0 block 0 error 0" in frames[-1]


# -- class 9: scan survives every file a directory can hold ------------------------------------

PICTURE = make_image(seed=1)


@pytest.fixture
def fake_moderator(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every image subcommand judges with a fake backend that finds nothing (ALLOW)."""
    moderator = ImageModerator(FakeImageBackend())
    monkeypatch.setattr(_images, "image_moderator", lambda args, chosen: moderator)


@contextlib.contextmanager
def never_blocked_by(fifo: Path) -> Iterator[None]:
    """Unblock anything stuck opening *fifo* after a minute, so a regression fails, not hangs."""
    done = threading.Event()

    def rescue() -> None:
        if not done.wait(60):
            with contextlib.suppress(OSError):
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))

    watchdog = threading.Thread(target=rescue, daemon=True)
    watchdog.start()
    try:
        yield
    finally:
        done.set()
        watchdog.join()


def read_records(output: Path) -> list[dict[str, object]]:
    """Every line of a results file, each of which must be a JSON object."""
    text = output.read_bytes().decode("utf-8")
    assert text == "" or text.endswith("\n")
    return [json.loads(line) for line in text.split("\n")[:-1]]  # JSON Lines: \n only


def keys(records: list[dict[str, object]]) -> list[bytes]:
    """The file each record names, as bytes on disk."""
    out = []
    for record in records:
        encoded = record.get("path_base64")
        out.append(base64.b64decode(str(encoded)) if encoded else os.fsencode(str(record["path"])))
    return out


def test_scan_records_every_odd_file_and_goes_on(
    fake_moderator: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """Links, loops, FIFOs, sockets, devices and odd names become "could not check" records."""
    with tempfile.TemporaryDirectory(dir="/tmp") as short:  # a socket path must be short
        root = Path(short) / "d"
        (root / "sub").mkdir(parents=True)
        (root / "good.png").write_bytes(PICTURE)
        (root / "sub" / "deep.png").write_bytes(PICTURE)
        (root / "dangling.png").symlink_to(root / "nowhere.png")
        (root / "loop1.png").symlink_to(root / "loop2.png")
        (root / "loop2.png").symlink_to(root / "loop1.png")
        (root / "self.png").symlink_to(root / "self.png")
        (root / "sub" / "up").symlink_to(root)  # a walk that follows it never ends
        (root / "dir.png").symlink_to(root / "sub")
        (root / "zero.png").symlink_to("/dev/zero")  # reading it never ends either
        os.mkfifo(root / "fifo.png")
        server = socket.socket(socket.AF_UNIX)
        server.bind(str(root / "sock.png"))
        weird = os.fsencode(str(root)) + b"/not-utf8-\xff\xfe.png"
        with open(weird, "wb") as f:
            f.write(PICTURE)
        output = Path(short) / "results.jsonl"
        try:
            with never_blocked_by(root / "fifo.png"):
                code = main(["scan", str(root), "-o", str(output), "--json"])
        finally:
            server.close()
        records = read_records(output)
    summary = json.loads(capsys.readouterr().out)
    by_name = {os.path.basename(k): r for k, r in zip(keys(records), records, strict=True)}
    assert len(by_name) == len(records) == 11
    assert code == 3  # something could not be checked
    assert summary["scanned"] == 11
    assert summary["error"] == 8
    assert summary["allow"] == 3
    for name in (b"good.png", b"deep.png", b"not-utf8-\xff\xfe.png"):
        assert by_name[name]["action"] == "allow"
        assert by_name[name]["error"] is None
    reasons = {
        b"dangling.png": "No such file",
        b"loop1.png": "symbolic links",
        b"loop2.png": "symbolic links",
        b"self.png": "symbolic links",
        b"dir.png": "a directory",
        b"zero.png": "a character device",
        b"fifo.png": "a FIFO",
        b"sock.png": "a socket",
    }
    for name, reason in reasons.items():
        if name == b"sock.png" and name not in by_name:
            continue  # pragma: no cover - a filesystem without sockets
        assert by_name[name]["action"] == "block", name
        assert reason in str(by_name[name]["error"]), name
    assert by_name[b"not-utf8-\xff\xfe.png"]["path"] == str(root) + "/not-utf8-\\xff\\xfe.png"


def test_a_scan_over_a_non_utf8_name_resumes_by_its_exact_bytes(
    fake_moderator: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A name that is not UTF-8 is recorded with its bytes, and a re-run skips it."""
    root = tmp_path / "d"
    root.mkdir()
    for raw in (b"a\xff.png", b"a\\xff.png"):  # the second is the first's escaped spelling
        with open(os.fsencode(str(root)) + b"/" + raw, "wb") as f:
            f.write(PICTURE)
    output = tmp_path / "r.jsonl"
    assert main(["scan", str(root), "-o", str(output), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["scanned"] == 2
    assert sorted(os.path.basename(k) for k in keys(read_records(output))) == [
        b"a\\xff.png",
        b"a\xff.png",
    ]
    assert main(["scan", str(root), "-o", str(output), "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert (again["scanned"], again["skipped"]) == (0, 2)


def test_unreadable_vanished_and_changing_files_are_records(
    fake_moderator: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Permission denied, gone after listing, and changed while read: each is a record."""
    root = tmp_path / "d"
    root.mkdir()
    for name in ("denied.png", "gone.png", "growing.png", "ok.png"):
        (root / name).write_bytes(PICTURE)
    real_open, real_read, real_stat = os.open, os.read, os.stat

    def guarded_open(path: str, flags: int, mode: int = 0o777) -> int:
        if str(path).endswith("denied.png"):  # root ignores chmod 000: refuse like EACCES
            raise PermissionError(13, "Permission denied", path)
        return real_open(path, flags, mode)

    gone: list[str] = []
    grown: list[int] = []

    def vanishing_stat(path: str, *args: object, **kwargs: object) -> os.stat_result:
        if str(path).endswith("gone.png") and not gone:
            gone.append(path)
            os.unlink(path)  # deleted between the listing and the look
        return real_stat(path, *args, **kwargs)  # type: ignore[arg-type]

    def growing_read(fd: int, size: int) -> bytes:
        if not grown and os.readlink(f"/proc/self/fd/{fd}").endswith("growing.png"):
            grown.append(fd)
            with open(root / "growing.png", "ab") as f:  # another process appends
                f.write(b"more")
        return real_read(fd, size)

    monkeypatch.setattr(os, "open", guarded_open)
    monkeypatch.setattr(os, "stat", vanishing_stat)
    monkeypatch.setattr(os, "read", growing_read)
    output = tmp_path / "r.jsonl"
    assert main(["scan", str(root), "-o", str(output), "--json"]) == 3
    summary = json.loads(capsys.readouterr().out)
    assert (summary["scanned"], summary["error"], summary["allow"]) == (4, 3, 1)
    errors = {Path(str(r["path"])).name: str(r["error"]) for r in read_records(output)}
    assert "Permission denied" in errors["denied.png"]
    assert "No such file" in errors["gone.png"]
    assert "changed while being read" in errors["growing.png"]
    assert errors["ok.png"] == "None"


@pytest.mark.parametrize(("limit_offset", "checked"), [(0, True), (-1, False)])
def test_the_byte_limit_is_inclusive_and_read_at_most_once_over(
    fake_moderator: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    limit_offset: int,
    checked: bool,
) -> None:
    """A file of exactly --max-bytes is checked; one byte over is refused unread."""
    picture = tmp_path / "p.png"
    picture.write_bytes(PICTURE)
    read: list[int] = []
    real_read = os.read

    def counting_read(fd: int, size: int) -> bytes:
        data = real_read(fd, size)
        read.append(len(data))
        return data

    monkeypatch.setattr(os, "read", counting_read)
    limit = len(PICTURE) + limit_offset
    code = main(["image", str(picture), "--max-bytes", str(limit), "--json"])
    assert code == (0 if checked else 3)
    assert sum(read) == (len(PICTURE) if checked else 0)


def test_a_huge_sparse_file_is_never_read(
    fake_moderator: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 64 GB file is refused from its size alone, and a file that grows is cut at limit + 1."""
    huge = tmp_path / "huge.png"
    with open(huge, "wb") as f:
        f.truncate(64 * 1024**3)
    with pytest.raises(_files.UnreadableFileError, match="over the 1,000 allowed; not read"):
        _files.read_regular(str(huge), limit=1000)
    # A file that passes the look and then grows is read up to limit + 1 bytes, no further.
    small = tmp_path / "small.png"
    small.write_bytes(b"x" * 10)
    read: list[int] = []
    real_read = os.read

    def read_after_growth(fd: int, size: int) -> bytes:
        if not read:
            with open(small, "ab") as f:
                f.write(b"y" * 10_000_000)
        data = real_read(fd, size)
        read.append(len(data))
        return data

    monkeypatch.setattr(os, "read", read_after_growth)
    with pytest.raises(_files.UnreadableFileError, match="grew over the 1,000 bytes"):
        _files.read_regular(str(small), limit=1000)
    assert sum(read) == 1001


def test_image_over_many_files_keeps_every_verdict(
    fake_moderator: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One missing, one FIFO, one directory among good files: every file gets its verdict."""
    good = tmp_path / "good.png"
    good.write_bytes(PICTURE)
    fifo = tmp_path / "fifo.png"
    os.mkfifo(fifo)
    names = [str(good), str(tmp_path / "missing.png"), str(fifo), str(tmp_path), str(good)]
    with never_blocked_by(fifo):
        code = main(["image", *names, "--json"])
    assert code == 3
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["path"] for r in records] == names
    assert [r["action"] for r in records] == ["allow", "block", "block", "block", "allow"]
    assert [r["error"] is None for r in records] == [True, False, False, False, True]


def test_a_file_name_cannot_forge_a_verdict_line(
    fake_moderator: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Newlines, carriage returns and escape sequences in a name are printed escaped."""
    forged = tmp_path / "x\nALLOW   forged.png\r\x1b[2Kok \u202e.png"
    forged.write_bytes(b"not an image")
    assert main(["image", str(forged)]) == 0  # the fake backend reads no pixels
    out = capsys.readouterr().out
    lines = out.splitlines()[1:]  # after the policy line
    assert len(lines) == 2
    assert lines[0].startswith("ALLOW   ")
    assert "forged.png" in lines[0]
    assert "\\nALLOW   forged.png\\r\\x1b[2Kok \\u202e.png" in lines[0]
    assert "\r" not in out
    assert "\x1b" not in out
    assert "\u202e" not in out


@pytest.mark.parametrize(
    ("content", "line"),
    [
        (b"not json\n", 1),
        (b'{"path": "a.png", "action": "allow"}\n\xff\xfe\n', 2),
        (b'{"path": 3, "action": "allow"}\n', 1),
        (b'{"path": "a.png"}\n', 1),
        (b"[1, 2]\n", 1),
        (b"[" * 100_000 + b"]" * 100_000 + b"\n", 1),
        (b'{"path": "a.png", "action": "allow", "path_base64": "%%%"}\n', 1),
        (
            b'{"path": "a.png", "action": "allow"}\nnot json\n{"path": "b", "action": "allow"}\n',
            2,
        ),
        (b'{"path": "a.png", "action": "allow"}\n' * 2 + b"x" * (2 * 1024 * 1024), 3),
        (b"hello", 1),  # a last line without newline is repaired only if it begins a record
    ],
)
def test_a_corrupted_results_file_is_one_clear_error(
    fake_moderator: None,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    content: bytes,
    line: int,
) -> None:
    """Not JSON, not UTF-8, the wrong shape, nested too deep: one line naming file and line."""
    root = tmp_path / "d"
    root.mkdir()
    (root / "a.png").write_bytes(PICTURE)
    output = tmp_path / "results.jsonl"
    output.write_bytes(content)
    assert main(["scan", str(root), "-o", str(output)]) == 3
    err = capsys.readouterr().err
    assert err.startswith(f"safegen: error: {output} line {line}: ")
    assert err.count("\n") == 1
    assert output.read_bytes() == content  # nothing repaired, nothing appended


def test_resuming_after_a_cut_line_repairs_the_file(
    fake_moderator: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The cut last line is truncated away before appending; that image is done again."""
    root = tmp_path / "d"
    root.mkdir()
    for name in ("a.png", "b.png"):
        (root / name).write_bytes(PICTURE)
    output = tmp_path / "r.jsonl"
    assert main(["scan", str(root), "-o", str(output)]) == 0
    whole = output.read_bytes()
    first, second = whole.splitlines(keepends=True)
    output.write_bytes(first + second[: len(second) // 2])  # killed while writing b
    assert main(["scan", str(root), "-o", str(output), "--json"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["scanned"] == 1
    records = read_records(output)
    assert sorted(Path(str(r["path"])).name for r in records) == ["a.png", "b.png"]
    # A complete last record without its newline is kept, and the next record starts a line.
    output.write_bytes(first.rstrip(b"\n"))
    assert main(["scan", str(root), "-o", str(output)]) == 0
    assert len(read_records(output)) == 2


def test_a_special_results_file_is_refused_unopened(
    fake_moderator: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A FIFO given as --output is an error, not a hang."""
    root = tmp_path / "d"
    root.mkdir()
    fifo = tmp_path / "out.jsonl"
    os.mkfifo(fifo)
    with never_blocked_by(fifo):
        assert main(["scan", str(root), "-o", str(fifo)]) == 3
    assert capsys.readouterr().err == (
        f"safegen: error: the results file {fifo} is a FIFO, not a regular file\n"
    )
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


# -- class 6 in the command: policy and response files that cannot be read --------------------


def _policy_cases(tmp_path: Path) -> dict[str, tuple[str, str]]:
    """Policy files no parser should see, each with what its error line must say."""
    (tmp_path / "latin1.toml").write_bytes(b"# caf\xe9\nblock_at = 50\n")
    (tmp_path / "deep.toml").write_text("a = " + "[" * 50_000 + "]" * 50_000 + "\n")
    (tmp_path / "a-dir.toml").mkdir()
    os.mkfifo(tmp_path / "fifo.toml")
    return {
        "latin1.toml": ("latin1.toml", "UTF-8"),
        "deep.toml": ("deep.toml", "deep"),
        "a-dir.toml": ("a-dir.toml", "directory"),
        "fifo.toml": ("fifo.toml", "FIFO"),
        "missing.toml": ("missing.toml", "No such file"),
    }


@pytest.mark.parametrize(
    "name", ["latin1.toml", "deep.toml", "a-dir.toml", "fifo.toml", "missing.toml"]
)
@pytest.mark.parametrize("command", ["check", "image", "evaluate"])
def test_an_unusable_policy_file_is_one_line_and_exit_3(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    command: str,
) -> None:
    """Not UTF-8, nested too deep, a directory, a FIFO, missing: one line naming the file."""
    cases = _policy_cases(tmp_path)
    policy = str(tmp_path / name)
    argv = {
        "check": ["policy", "check", policy],
        "image": ["image", str(EXAMPLES / "images" / "landscape.png"), "--policy", policy],
        "evaluate": ["evaluate", policy, RESPONSE],
    }[command]
    with never_blocked_by(tmp_path / "fifo.toml"):
        assert main(argv) == 3
    err = capsys.readouterr().err
    shown, reason = cases[name]
    assert err.startswith("safegen: error: ")
    assert shown in err, err
    assert reason in err, err
    assert err.count("\n") == 1
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "not JSON (nested too deeply)"),
        (b'{"ModerationLabels": [], "x": "\xff"}', "not UTF-8"),
        (b'{"n": ' + b"9" * 5000 + b"}", "not JSON safegen can read"),
        (b"ModerationLabels: []", "not JSON: "),
    ],
)
def test_an_unusable_response_file_is_one_line_and_exit_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, message: str
) -> None:
    """A saved response that is not JSON the parser can hold is one line, exit 3."""
    response = tmp_path / "r.json"
    response.write_bytes(content)
    assert main(["evaluate", POLICY, str(response)]) == 3
    err = capsys.readouterr().err
    assert err.startswith(f"safegen: error: response file {response}: {message}")
    assert err.count("\n") == 1


# -- resuming: a cut last line, a directory spelled another way, two scans at once -------------

RECORD_START = b'{"path": '


@pytest.mark.parametrize(
    "tail",
    [RECORD_START[:n] for n in range(len(RECORD_START) + 1)]  # every cut within the start
    + [RECORD_START + b'"', b" ", b"\t \r", b"\r", b"   \t"],  # one past it; blank lines
)
def test_a_last_line_cut_within_its_first_bytes_is_repaired(
    fake_moderator: None, tmp_path: Path, capsys: pytest.CaptureFixture[str], tail: bytes
) -> None:
    """A last line cut anywhere in a record's beginning, or left blank, is truncated away."""
    root = tmp_path / "d"
    root.mkdir()
    for name in ("a.png", "b.png"):
        (root / name).write_bytes(PICTURE)
    output = tmp_path / "r.jsonl"
    assert main(["scan", str(root), "-o", str(output)]) == 0
    first = output.read_bytes().splitlines(keepends=True)[0]
    output.write_bytes(first + tail)  # killed within the second record's first bytes
    capsys.readouterr()
    assert main(["scan", str(root), "-o", str(output), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["scanned"] == 1
    assert sorted(os.path.basename(k) for k in keys(read_records(output))) == [b"a.png", b"b.png"]


@pytest.mark.parametrize("tail", [b'{"pb', b'x{"path": ', b' {"path": ', b"[", b'{"path":\t'])
def test_a_last_line_that_cannot_begin_a_record_is_refused(
    fake_moderator: None, tmp_path: Path, capsys: pytest.CaptureFixture[str], tail: bytes
) -> None:
    """Only a beginning of a record counts as cut: anything else is refused, untouched."""
    root = tmp_path / "d"
    root.mkdir()
    (root / "a.png").write_bytes(PICTURE)
    output = tmp_path / "r.jsonl"
    output.write_bytes(tail)
    assert main(["scan", str(root), "-o", str(output)]) == 3
    assert capsys.readouterr().err.startswith(f"safegen: error: {output} line 1: ")
    assert output.read_bytes() == tail


def _spellings(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """Ways to name the directory tmp_path/d: (the working directory, the argument)."""
    (tmp_path / "sub").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "d")
    (tmp_path / "sub" / "up").symlink_to(tmp_path)
    return {
        "relative": (tmp_path, "d"),
        "dot": (tmp_path, "./d"),
        "slash": (tmp_path, "d//"),
        "absolute": (tmp_path, str(tmp_path / "d")),
        "dotdot": (tmp_path, "sub/../d"),
        "other cwd": (tmp_path / "sub", "../d"),
        "linked dir": (tmp_path, "link/"),
        "through a link": (tmp_path / "sub", "up/d"),
        "root cwd": (Path("/"), str(tmp_path / "link" / ".." / "d")),
    }


@pytest.mark.parametrize(
    "spelling",
    [
        "relative",
        "dot",
        "slash",
        "absolute",
        "dotdot",
        "other cwd",
        "linked dir",
        "through a link",
        "root cwd",
    ],
)
def test_a_re_run_skips_what_is_done_however_the_directory_is_spelled(
    fake_moderator: None,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    spelling: str,
) -> None:
    """Records name canonical paths: any spelling of the same directory finds them done."""
    root = tmp_path / "d"
    (root / "deep").mkdir(parents=True)
    for name in ("a.png", "deep/b.png", "odd\\xff.png"):
        (root / name).write_bytes(PICTURE)
    (root / "alias.png").symlink_to(root / "a.png")  # a link is its own file, not its target
    output = tmp_path / "r.jsonl"
    monkeypatch.chdir(tmp_path)
    assert main(["scan", "d", "-o", str(output), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["scanned"] == 4
    cwd, argument = _spellings(tmp_path)[spelling]
    monkeypatch.chdir(cwd)
    assert main(["scan", argument, "-o", str(output), "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert (again["scanned"], again["skipped"]) == (0, 4)
    paths = sorted(str(r["path"]) for r in read_records(output))
    assert paths == sorted(
        str(root / n) for n in ("a.png", "alias.png", "deep/b.png", "odd\\xff.png")
    )


def test_a_results_file_with_relative_paths_still_resumes(
    fake_moderator: None,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Records written as typed (relative, by earlier versions) are read from the cwd."""
    root = tmp_path / "d"
    root.mkdir()
    for name in ("a.png", "b.png"):
        (root / name).write_bytes(PICTURE)
    output = tmp_path / "r.jsonl"
    policy = json.dumps(choose_policy(None, backend="local").to_dict())
    output.write_text(
        f'{{"path": "d/a.png", "action": "allow", "error": null, "policy": {policy}}}\n'
        f'{{"path": "./d/../d/b.png", "action": "allow", "error": null, "policy": {policy}}}\n'
    )
    monkeypatch.chdir(tmp_path)
    assert main(["scan", str(root), "-o", str(output), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["skipped"] == 2


def test_a_second_scan_into_a_locked_results_file_fails_at_once(
    fake_moderator: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """While another run holds the results file, a scan exits 3 in one line and writes nothing."""
    import fcntl

    root = tmp_path / "d"
    root.mkdir()
    (root / "a.png").write_bytes(PICTURE)
    output = tmp_path / "r.jsonl"
    output.write_bytes(b'{"path": "x", "action": "allow"}\n{"pa')  # a cut line, not repaired
    with output.open("rb") as holder:
        fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert main(["scan", str(root), "-o", str(output)]) == 3
    assert capsys.readouterr().err == (
        f"safegen: error: another safegen scan is writing to {output}: "
        "let it finish, or choose another --output\n"
    )
    assert output.read_bytes() == b'{"path": "x", "action": "allow"}\n{"pa'


def test_the_results_file_is_locked_for_the_whole_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A scan started while another is checking images is refused; each image is done once."""
    root = tmp_path / "d"
    root.mkdir()
    for n in range(6):
        (root / f"{n}.png").write_bytes(PICTURE)
    output = tmp_path / "r.jsonl"
    inner: list[int] = []
    started = threading.Event()
    real = ImageModerator(FakeImageBackend())

    class StartsAnotherScan:
        def moderate(self, data: bytes) -> object:
            if not started.is_set():  # in the middle of the first run: a second run, once
                started.set()
                inner.append(main(["scan", str(root), "-o", str(output)]))
            return real.moderate(data)

    monkeypatch.setattr(_images, "image_moderator", lambda args, chosen: StartsAnotherScan())
    assert main(["scan", str(root), "-o", str(output), "--workers", "1"]) == 0
    assert inner == [3]
    assert "another safegen scan is writing to" in capsys.readouterr().err
    assert sorted(keys(read_records(output))) == sorted(
        os.fsencode(str(root / f"{n}.png")) for n in range(6)
    )


# -- presets: --policy NAME|FILE, policy list and show ----------------------------------------


def test_without_policy_the_default_preset_follows_the_backend() -> None:
    """Offline the default is the offline preset; with Rekognition (aws, cascade) general."""
    from safegen import presets
    from safegen.cli._common import choose_policy

    for backend, name in (("local", "offline"), ("aws", "general"), ("cascade", "general")):
        chosen = choose_policy(None, backend=backend)
        assert (chosen.name, chosen.preset, chosen.default) == (name, True, True)
        assert chosen.policy is presets.load(name)
        assert str(chosen) == f"{name} (preset, the default)"


def test_policy_takes_a_preset_name_and_a_file_that_exists_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A preset's name is the preset, unless a file of that name exists: then it is the file."""
    from safegen import presets
    from safegen.cli._common import choose_policy

    monkeypatch.chdir(tmp_path)
    assert choose_policy("strict").policy is presets.load("strict")
    (tmp_path / "strict").write_text('not_evaluated = "allow"\n', encoding="utf-8")
    chosen = choose_policy("strict")
    assert (chosen.preset, str(chosen)) == (False, "strict (file)")
    assert chosen.policy.not_evaluated.value == "allow"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("genral", r"^policy genral: no such file, and unknown preset 'genral'; did you mean "),
        ("zzz", r"^policy zzz: no such file, and unknown preset 'zzz' \(presets: explicit, "),
        ("mine.toml", r"^policy file mine\.toml: "),
        ("dir/general", r"^policy file dir/general: "),
    ],
)
def test_a_policy_that_is_neither_a_file_nor_a_preset_is_one_line(
    value: str,
    expected: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A plain word gets the closest preset; a path-like value is a missing file; exit 3."""
    monkeypatch.chdir(tmp_path)
    assert main(["image", "a.png", "--policy", value]) == 3
    captured = capsys.readouterr()
    assert captured.out == ""
    assert len(captured.err.splitlines()) == 1
    assert re.match(expected, captured.err.removeprefix("safegen: error: "))


def test_policy_list_names_every_preset_with_its_description(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Policy list prints one line per preset; --json one record each, with its defaults."""
    from safegen import presets

    assert main(["policy", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    for name in presets.names():
        assert f"{name:<8}  {presets.describe(name)}" in lines
    assert main(["policy", "list", "--json"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["name"] for r in records] == list(presets.names())
    defaults = {r["name"]: r["default_for"] for r in records}
    assert defaults["offline"] == ["local"]
    assert defaults["general"] == ["aws", "cascade"]


def test_policy_show_prints_the_file_a_user_starts_from(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Show prints the TOML with its comments; saved, it reads back as the same policy."""
    from safegen import ModerationPolicy, presets

    for name in presets.names():
        assert main(["policy", "show", name]) == 0
        shown = capsys.readouterr().out
        assert shown == presets.text(name)
        mine = tmp_path / f"{name}.toml"
        mine.write_text(shown, encoding="utf-8")
        assert ModerationPolicy.from_toml(mine) == presets.load(name)
    assert main(["policy", "show", "strct"]) == 3
    assert "did you mean 'strict'?" in capsys.readouterr().err


def test_policy_check_and_evaluate_take_a_preset_name(capsys: pytest.CaptureFixture[str]) -> None:
    """Policy check NAME validates a preset and prints its table; evaluate judges by one."""
    assert main(["policy", "check", "general"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("general: valid.")
    assert 'exclude "Gambling"' in out
    response = str(Path(__file__).parent.parent / "examples" / "rekognition-response.json")
    assert main(["evaluate", "explicit", response]) == 0  # nothing explicit in it
    assert main(["evaluate", "strict", response]) == 1


def test_a_gap_that_decides_says_how_to_accept_or_close_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """REVIEW for what the backend cannot see: one more line; a file policy gets its own fix."""
    blind = ImageModerator(FakeImageBackend(coverage=["Explicit"]), None)
    monkeypatch.setattr(
        _images, "image_moderator", lambda args, chosen: attrs.evolve(blind, policy=chosen.policy)
    )
    picture = tmp_path / "a.png"
    picture.write_bytes(b"bytes")
    assert main(["image", str(picture), "--policy", "general"]) == 1
    hint = capsys.readouterr().out.splitlines()[-1].strip()
    assert hint.startswith(
        "to accept what fake cannot see: safegen policy show general > mine.toml, "
        'set not_evaluated = "allow" in it; to check it: --backend cascade or aws'
    )
    mine = tmp_path / "mine.toml"
    mine.write_text("review_at = 40\n", encoding="utf-8")
    assert main(["image", str(picture), "--policy", str(mine)]) == 1
    hint = capsys.readouterr().out.splitlines()[-1].strip()
    assert hint.startswith(f'to accept what fake cannot see: not_evaluated = "allow" in {mine};')
    # A violation that decides on its own, or a gap that allows: no such line.
    assert main(["image", str(picture), "--policy", "offline"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 3
    assert main(["image", str(picture), "--policy", "strict"]) == 1  # the gap reviews
    out = capsys.readouterr().out
    assert out.splitlines()[1].startswith("REVIEW")
    assert "safegen policy show strict > mine.toml" in out  # strict's thresholds kept
    assert "--policy offline" not in out


def test_a_broken_pipe_stops_without_a_message_in_process(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A BrokenPipeError while printing is exit 141 and nothing on standard error."""

    def closed(args: object) -> int:
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(_presets, "run_list", closed)
    assert main(["policy", "list"]) == 141
    assert capsys.readouterr().err == ""


# -- the prompt side of a policy (helper "prompt-policy") ---------------------------------------

PROMPT_POLICY = """
[prompts]
review_at = 30
fail_open = ["comprehend-toxicity"]
[prompts.labels]
HATE_SPEECH = 40
[prompts.categories]
drugs = { action = "block", mild = "review" }
hate = "allow"
brand = { action = "review", terms = ["acme"] }
"""


@pytest.fixture
def prompt_policy(tmp_path: Path) -> str:
    path = tmp_path / "prompts.toml"
    path.write_text(PROMPT_POLICY, encoding="utf-8")
    return str(path)


def test_policy_check_prints_the_prompt_side(
    prompt_policy: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The prompt table: each category's action per severity and the setting, then thresholds."""
    assert main(["policy", "check", prompt_policy]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    assert rows["drugs"].split()[1:3] == ["block", "review"]
    assert "prompts.categories.drugs.action; prompts.categories.drugs.mild" in rows["drugs"]
    assert rows["hate"].split()[1:3] == ["allow", "allow"]
    assert rows["brand"].split()[1:3] == ["review", "review"]
    assert "default: severe terms block" in rows["sexual"]
    assert rows["HATE_SPEECH"].split()[1:3] == ["30", "40"]
    assert "fail_open: comprehend-toxicity" in out


def test_policy_check_json_has_the_prompt_side(
    prompt_policy: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """--json: categories with action and source per severity, and label thresholds."""
    assert main(["policy", "check", prompt_policy, "--json"]) == 0
    prompts = json.loads(capsys.readouterr().out)["prompts"]
    drugs = next(c for c in prompts["categories"] if c["name"] == "drugs")
    assert drugs["mild"]["action"] == "review"
    assert drugs["mild"]["source"] == "prompts.categories.drugs.mild"
    hate = next(row for row in prompts["labels"] if row["label"] == "HATE_SPEECH")
    assert (hate["block_at"], hate["review_at"]) == (40.0, 30.0)
    assert prompts["fail_open"] == ["comprehend-toxicity"]


def test_prompt_is_judged_by_the_policys_prompt_section(
    prompt_policy: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """With --policy, prompt judges by its [prompts]: an allowed category passes, a term reviews."""
    assert main(["prompt", "a swastika", "--policy", prompt_policy]) == 0
    assert main(["prompt", "an acme poster", "--policy", prompt_policy, "--json"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("ALLOW")
    assert "prompts.toml (file)" in out[0]
    payload = json.loads(out[-1])
    assert payload["action"] == "review"
    assert payload["findings"][0]["reason"] == "prompts.categories.brand"
    assert payload["policy"]["source"] == "file"
    assert main(["prompt", "a swastika"]) == 1  # without --policy: the shipped lists block it


def test_one_exit_code_table_for_the_code_and_both_pages() -> None:
    """docs/exit-codes.inc lists the codes the command defines; quickstart and cli include it."""
    from safegen.cli import EXIT_ALLOWED, EXIT_ERROR, EXIT_FLAGGED, EXIT_PIPE, EXIT_USAGE

    docs = Path(__file__).parent.parent / "docs"
    table = (docs / "exit-codes.inc").read_text(encoding="utf-8")
    codes = [int(code) for code in re.findall(r"^   \* - (\d+)$", table, re.MULTILINE)]
    assert codes == [EXIT_ALLOWED, EXIT_FLAGGED, EXIT_USAGE, EXIT_ERROR, EXIT_PIPE]
    for page in ("quickstart.rst", "cli.rst"):
        text = (docs / page).read_text(encoding="utf-8")
        assert text.count(".. include:: exit-codes.inc") == 1
        stated = re.findall(r"exit(?:s| code| status| with status)? (\d+)", text)
        assert stated, page
        assert {int(code) for code in stated} <= set(codes), page


# -- issue 12 red team: --policy precedence, resuming by policy, output, messages --------------


def _in_the_way(path: Path, kind: str) -> None:
    """Put something that is not a regular file at *path*."""
    if kind == "directory":
        path.mkdir()
    elif kind == "dangling link":
        path.symlink_to(path.parent / "nowhere")
    elif kind == "link loop":
        path.symlink_to(path)
    elif kind == "link to a directory":
        (path.parent / "elsewhere").mkdir(exist_ok=True)
        path.symlink_to(path.parent / "elsewhere")
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "socket":
        server = socket.socket(socket.AF_UNIX)
        server.bind(str(path))
        server.close()


NOT_REGULAR = ["directory", "dangling link", "link loop", "link to a directory", "fifo", "socket"]


@pytest.mark.parametrize("kind", NOT_REGULAR)
def test_a_preset_name_is_the_preset_whatever_else_is_in_the_way(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only a regular file (or a link to one) hides a preset; ./NAME names the path instead."""
    from safegen import presets

    monkeypatch.chdir(tmp_path)
    for name in presets.names():
        _in_the_way(tmp_path / name, kind)
        chosen = choose_policy(name)
        assert (chosen.preset, chosen.policy) == (True, presets.load(name))
        with pytest.raises(_files.CommandError, match=rf"^policy file \./{name}: "):
            choose_policy(f"./{name}")


@pytest.mark.parametrize("how", ["file", "link to a file"])
def test_a_regular_file_named_like_a_preset_is_the_file(
    how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A regular file, reached directly or through a link, wins over the preset of its name."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "real.toml").write_text("block_at = 77\n", encoding="utf-8")
    if how == "file":
        (tmp_path / "general").write_text("block_at = 77\n", encoding="utf-8")
    else:
        (tmp_path / "general").symlink_to(tmp_path / "real.toml")
    chosen = choose_policy("general")
    assert (chosen.preset, chosen.policy.block_at) == (False, 77)


def _scan(root: Path, output: Path, *extra: str) -> int:
    return main(["scan", str(root), "-o", str(output), "--json", *extra])


@pytest.fixture
def scanned_dir(fake_moderator: None, tmp_path: Path) -> tuple[Path, Path]:
    """Three pictures and the results file of a scan of them with the default policy."""
    root = tmp_path / "d"
    root.mkdir()
    for n in range(3):
        (root / f"{n}.png").write_bytes(PICTURE)
    output = tmp_path / "r.jsonl"
    assert _scan(root, output) == 0
    return root, output


@pytest.mark.parametrize("first", ["offline", "general", "strict", "explicit"])
@pytest.mark.parametrize("second", ["offline", "general", "strict", "explicit"])
def test_a_re_run_resumes_only_with_the_policy_that_judged_the_records(
    fake_moderator: None,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    first: str,
    second: str,
) -> None:
    """Another policy is refused in one line, file untouched; the same one skips what is done."""
    root = tmp_path / "d"
    root.mkdir()
    for n in range(3):
        (root / f"{n}.png").write_bytes(PICTURE)
    output = tmp_path / "r.jsonl"
    assert _scan(root, output, "--policy", first) == 0
    records = read_records(output)
    assert {r["policy"]["name"] for r in records} == {first}  # type: ignore[index]
    before = output.read_bytes()
    capsys.readouterr()
    code = _scan(root, output, "--policy", second)
    captured = capsys.readouterr()
    if first == second:
        assert code == 0
        assert json.loads(captured.out)["skipped"] == 3
    else:
        assert code == 3
        assert output.read_bytes() == before
        assert captured.out == ""
        assert captured.err.count("\n") == 1
        assert f"holds 3 results judged by another policy ({first} (preset))" in captured.err
        assert "choose another --output" in captured.err
        text = main(["scan", str(root), "-o", str(output), "--policy", second])
        assert (text, capsys.readouterr().out) == (3, "")  # not even the policy line


def test_an_edited_policy_file_of_the_same_name_is_another_policy(
    scanned_dir: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The policy is compared by content: the same file name with other settings is refused."""
    root, _ = scanned_dir
    mine, output = tmp_path / "mine.toml", tmp_path / "mine.jsonl"
    mine.write_text("block_at = 60\n", encoding="utf-8")
    assert _scan(root, output, "--policy", str(mine)) == 0
    mine.write_text("block_at = 60\n# a comment changes nothing\n", encoding="utf-8")
    assert _scan(root, output, "--policy", str(mine)) == 0  # same content: resumes
    mine.write_text("block_at = 61\n", encoding="utf-8")
    capsys.readouterr()
    assert _scan(root, output, "--policy", str(mine)) == 3
    assert "as it was then" in capsys.readouterr().err


def test_records_that_do_not_name_their_policy_are_not_skipped_silently(
    scanned_dir: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """A results file whose records carry no policy (an earlier version's) is refused."""
    root, output = scanned_dir
    records = read_records(output)
    for record in records:
        del record["policy"]
    output.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    assert _scan(root, output) == 3
    assert "(a policy the records do not name)" in capsys.readouterr().err


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e999", "-2e308"])
def test_a_record_with_a_number_that_is_not_finite_is_damaged(
    scanned_dir: tuple[Path, Path], capsys: pytest.CaptureFixture[str], number: str
) -> None:
    """NaN or an infinite number in a record is no record safegen wrote: refused, by line."""
    root, output = scanned_dir
    lines = output.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[1] = lines[1].replace('"seconds": ', f'"seconds": {number}, "was": ', 1)
    output.write_text("".join(lines), encoding="utf-8")
    before = output.read_bytes()
    assert _scan(root, output) == 3
    assert f"r.jsonl line 2: not JSON ({number} is " in capsys.readouterr().err
    assert output.read_bytes() == before


def _option_strings(parser: object) -> dict[str, list[str] | None]:
    """Every option a parser takes, with its choices."""
    actions = parser._actions  # type: ignore[attr-defined]
    return {s: a.choices for a in actions for s in a.option_strings}


def _subparsers() -> dict[str, object]:
    """Every command that runs something, by its words (``policy check``)."""
    import argparse

    from safegen.cli import _parser

    found: dict[str, object] = {}

    def walk(parser: argparse.ArgumentParser, words: str) -> None:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            found[words.strip()] = parser
        for sub in subs:
            for name, child in sub.choices.items():
                walk(child, f"{words} {name}")

    walk(_parser(), "")
    return found


@pytest.mark.parametrize("code", ["NoRegionError", "NoCredentialsError"])
@pytest.mark.parametrize("command", sorted(_subparsers()))
def test_an_error_suggests_only_options_the_command_has(command: str, code: str) -> None:
    """Every --option (and --backend value) a message suggests is one the command accepts."""
    from safegen.cli._common import describe
    from safegen.errors import ServiceError

    parser = _subparsers()[command]
    import argparse

    from safegen.cli._common import suggestions

    actions = parser._actions  # type: ignore[attr-defined]
    parsed = argparse.Namespace(
        **{a.dest: a.default for a in actions if a.dest != "help"},
        **parser._defaults,  # type: ignore[attr-defined]
    )
    error = ServiceError("it failed", service="aws", operation="Op", code=code)
    line = describe(error, **suggestions(parsed))
    options = _option_strings(parser)
    for option, value in re.findall(r"(--[a-z][a-z-]*)(?: ([a-z]+))?", line):
        assert option in options, (command, line)
        choices = options[option]
        if value and choices is not None:
            assert value in choices, (command, line)


def test_generate_without_a_region_does_not_suggest_the_local_backend(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Through main: generate (no local backend) and image (with one) get their own advice."""
    from safegen.cli import _generate
    from safegen.errors import ServiceError

    def no_region(*args: object, **kwargs: object) -> object:
        raise ServiceError("no region", service="aws", operation="x", code="NoRegionError")

    monkeypatch.setattr(_generate, "run_generate", no_region)
    monkeypatch.setattr("safegen.cli._common._rekognition", no_region)
    assert main(["generate", "a cat", "--endpoint", "e"]) == 3
    assert "--backend local" not in capsys.readouterr().err
    assert main(["image", "x.png", "--backend", "aws"]) == 3
    assert "--backend local" in capsys.readouterr().err


def test_every_json_output_is_one_line_per_record(
    fake_moderator: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--json prints JSON Lines everywhere, and each result carries the policy (evaluate too)."""
    picture = tmp_path / "a.png"
    picture.write_bytes(PICTURE)
    runs = {
        ("evaluate", "general", RESPONSE): 1,
        ("evaluate", POLICY, RESPONSE): 1,
        ("policy", "list"): len(presets.names()),
        ("policy", "check", "strict"): 1,
        ("prompt", "a cat", "--policy", "general"): 1,
        ("image", str(picture), str(picture)): 2,
        ("scan", str(tmp_path), "-o", str(tmp_path / "r.jsonl")): 1,
    }
    for argv, count in runs.items():
        main([*argv, "--json"])
        lines = capsys.readouterr().out.splitlines()
        assert len(lines) == count, argv
        payloads = [json.loads(line) for line in lines]
        if argv[0] in ("evaluate", "prompt", "image", "scan"):
            for payload in payloads:
                assert set(payload["policy"]) == {"name", "source", "sha256"}, argv


class _Published(io.StringIO):
    """A stream whose reader sees only what was flushed."""

    def __init__(self) -> None:
        super().__init__()
        self.published: list[str] = []

    def flush(self) -> None:
        self.published.append(self.getvalue())


@pytest.mark.parametrize("command", ["image", "scan"])
def test_each_line_reaches_the_reader_as_it_is_written(
    command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The policy line is out before the first image is checked, each verdict before the next."""
    for n in range(3):
        (tmp_path / f"{n}.png").write_bytes(PICTURE)
    stream = _Published()
    seen: list[str] = []
    real = ImageModerator(FakeImageBackend())

    class Watching:
        def moderate(self, data: bytes) -> object:
            seen.append(stream.published[-1] if stream.published else "")
            return real.moderate(data)

    monkeypatch.setattr(_images, "image_moderator", lambda args, chosen: Watching())
    monkeypatch.setattr(sys, "stdout", stream)
    files = sorted(str(p) for p in tmp_path.glob("*.png"))
    argv = [command, *files] if command == "image" else ["scan", str(tmp_path), "--workers", "1"]
    if command == "scan":
        argv += ["-o", str(tmp_path / "r.jsonl")]
    assert main(argv) == 0
    assert seen[0].startswith("policy: offline (preset, the default)\n")
    if command == "image":  # two lines per picture, each flushed before the next is checked
        assert [s.count("\n") for s in seen] == [1, 3, 5]


@pytest.mark.parametrize("command", ["image", "image-json", "scan", "policy"])
def test_a_pipe_closed_from_the_start_ends_the_run_before_any_check(
    command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nobody reading: exit 141 at the first write (or look), nothing checked, nothing said."""
    for n in range(4):
        (tmp_path / f"{n}.png").write_bytes(PICTURE)
    checked: list[bytes] = []
    real = ImageModerator(FakeImageBackend())

    class Counting:
        def moderate(self, data: bytes) -> object:
            checked.append(data)
            return real.moderate(data)

    monkeypatch.setattr(_images, "image_moderator", lambda args, chosen: Counting())
    read, write = os.pipe()
    os.close(read)
    stream = os.fdopen(write, "w")
    monkeypatch.setattr(sys, "stdout", stream)
    files = sorted(str(p) for p in tmp_path.glob("*.png"))
    argv = {
        "image": ["image", *files],
        "image-json": ["image", *files, "--json"],
        "scan": ["scan", str(tmp_path), "-o", str(tmp_path / "r.jsonl")],
        "policy": ["policy", "show", "general"],
    }[command]
    try:
        assert main(argv) == 141
    finally:
        with contextlib.suppress(OSError):
            stream.close()
    assert checked == []


def test_a_reader_that_goes_away_stops_a_scan_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`scan | head -1`: once the reader has gone, no further image is checked."""
    for n in range(12):
        (tmp_path / f"{n:02}.png").write_bytes(PICTURE)
    read, write = os.pipe()
    checked: list[bytes] = []
    real = ImageModerator(FakeImageBackend())

    class HeadReadsOneLine:
        def moderate(self, data: bytes) -> object:
            if not checked:  # head has printed its line and exited
                os.close(read)
            checked.append(data)
            return real.moderate(data)

    monkeypatch.setattr(_images, "image_moderator", lambda args, chosen: HeadReadsOneLine())
    stream = os.fdopen(write, "w")
    monkeypatch.setattr(sys, "stdout", stream)
    try:
        code = main(["scan", str(tmp_path), "-o", str(tmp_path / "r.jsonl"), "--workers", "1"])
    finally:
        with contextlib.suppress(OSError):
            stream.close()
    assert code == 141
    assert 1 <= len(checked) <= 2  # the one in hand and at most one already in flight


@pytest.mark.parametrize(
    "argv",
    [
        ["policy", "show", "general"],
        ["policy", "list", "--json"],
        ["prompt", "a cat"],
        ["image", "NAME"],
        ["evaluate", "general", RESPONSE],
    ],
)
def test_a_full_disk_is_a_writing_error_not_a_reading_one(
    argv: list[str],
    fake_moderator: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Standard output on a full device: "cannot write the output: ...", exit 3, no traceback."""
    (tmp_path / "a.png").write_bytes(PICTURE)
    argv = [str(tmp_path / "a.png") if a == "NAME" else a for a in argv]
    full = open("/dev/full", "w")  # noqa: SIM115 - closed below
    monkeypatch.setattr(sys, "stdout", full)
    try:
        assert main(argv) == 3
    finally:
        with contextlib.suppress(OSError):
            full.close()
    assert capsys.readouterr().err == (
        "safegen: error: cannot write the output: No space left on device\n"
    )


def test_no_standard_output_at_all_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Started with standard output closed (sys.stdout is None): one line, exit 3."""
    monkeypatch.setattr(sys, "stdout", None)
    assert main(["policy", "list"]) == 3
    assert capsys.readouterr().err == (
        "safegen: error: cannot write the output: standard output is closed\n"
    )


def test_a_closed_standard_output_in_a_real_process_is_one_line(tmp_path: Path) -> None:
    """`safegen image x.png >&-`: one error line on standard error, no traceback."""
    picture = tmp_path / "a.png"
    picture.write_bytes(PICTURE)
    result = subprocess.run(
        [sys.executable, "-m", "safegen", "policy", "show", "general"],
        stdin=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=lambda: os.close(1),
        check=False,
        text=True,
    )
    assert result.returncode == 3
    assert result.stderr == "safegen: error: cannot write the output: standard output is closed\n"


ESCAPED_ONCE = st.text(st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=12).filter(
    lambda t: "\0" not in t
)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=ESCAPED_ONCE)
def test_an_error_line_escapes_what_was_typed_exactly_once(
    value: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--policy VALUE` that is nothing: the line shows printable(VALUE), never escaped twice."""
    for typed, prefix in (
        (f"no-such-dir/{value}", "policy file "),
        (f"zz{value}".replace("/", "").replace(".", ""), "policy "),
    ):
        capsys.readouterr()
        assert main(["prompt", "a cat", f"--policy={typed}"]) == 3
        err = capsys.readouterr().err
        assert err.startswith(f"safegen: error: {prefix}{printable(typed)}: "), err
        assert err.count("\n") == 1
        assert not any(unicodedata.category(char) in _files._HIDDEN for char in err[:-1])


@pytest.mark.parametrize(
    ("data", "said"),
    [
        (b"\xef\xbb\xbfblock_at = 50\n", "starts with a byte-order mark (BOM)"),
        ("block_at = 50\n".encode("utf-16"), "looks like UTF-16"),
        ("block_at = 50\n".encode("utf-16-be"), "looks like UTF-16"),
        ("block_at = 50\n".encode("utf-16-le"), "looks like UTF-16"),
        ("block_at = 50\n".encode("utf-32"), "looks like UTF-32"),
    ],
)
@pytest.mark.parametrize("what", ["policy", "response"])
def test_a_file_saved_in_another_encoding_says_which(
    data: bytes, said: str, what: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A BOM, UTF-16 or UTF-32 (PowerShell 5's ">") is named, with "save it as UTF-8"."""
    path = tmp_path / "saved"
    path.write_bytes(data)
    policy, response = (str(path), RESPONSE) if what == "policy" else ("general", str(path))
    argv = ["evaluate", policy, response]
    assert main(argv) == 3
    err = capsys.readouterr().err
    assert said in err
    assert "save it as UTF-8" in err
    assert err.count("\n") == 1


@pytest.mark.parametrize("preset", ["explicit", "general", "strict", "offline"])
def test_prompt_names_the_categories_its_policy_does_not_check(
    preset: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """What a policy allows is said, text and JSON; a term of a named category is never flagged."""
    from safegen import presets
    from safegen.prompt import PromptModerator
    from safegen.prompt_policy import SHIPPED_CATEGORIES
    from safegen.text.terms import default_terms

    policy = presets.load(preset)
    assert main(["prompt", "a cat", "--policy", preset, "--json"]) == 0
    named = json.loads(capsys.readouterr().out)["not_checked"]
    assert main(["prompt", "a cat", "--policy", preset]) == 0
    out = capsys.readouterr().out
    if named:
        assert f"not checked: {', '.join(named)} (allow in" in out
    else:
        assert "not checked" not in out
    moderator = PromptModerator.from_policy(policy)
    for category in SHIPPED_CATEGORIES:
        terms = [t for t, c, s in default_terms() if c == category and s == "severe"][:5]
        for term in terms:
            flagged = any(
                f.category == category and f.action.value != "allow"
                for f in moderator.moderate(term).findings
            )
            assert not (flagged and category in named), (preset, term)
    if preset == "explicit":
        assert {"self_harm", "violence", "hate"} <= set(named)
