"""The ``safegen`` command lines shown in the documentation are ones the real parser accepts.

The pages' Python examples run through Sybil (``docs/conftest.py``); shell blocks are not
Python, so their ``safegen ...`` commands are checked here against the command's own argument
parser: a renamed option or sub-command breaks this test, not a reader's first try.
"""

from __future__ import annotations

import itertools
import re
import shlex
from pathlib import Path

import pytest

from safegen import cli

ROOT = Path(__file__).resolve().parent.parent
_REST_SHELL = re.compile(r"^(\s*)\.\. code-block:: (console|sh|shell|bash)\s*$")
_MARKDOWN_FENCE = re.compile(r"^```(\w*)\s*$")
_OPERATORS = {"&&", "||", "|", ";", ">", ">>"}  # a redirection ends the arguments too
_CODE_BLOCK = re.compile(r"^\s*\.\. (?:code-block|code|sourcecode)::\s*(\S*)")
# What the suite does with each language a page's code block may be in.
_CHECKED = {
    "python": "run by Sybil (docs/conftest.py)",
    "toml": "parsed (docs/conftest.py)",
    "json": "parsed (docs/conftest.py)",
    "console": "safegen commands parsed (here)",
    "sh": "safegen commands parsed (here)",
    "shell": "safegen commands parsed (here)",
    "bash": "safegen commands parsed (here)",
}


def _rest_shell_lines(path: Path) -> list[tuple[int, str, bool]]:
    """Return (line number, text, is_console) for each line of the page's shell blocks."""
    found: list[tuple[int, str, bool]] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    for index, line in enumerate(lines):
        start = _REST_SHELL.match(line)
        if start is None:
            continue
        indent = len(start.group(1))
        for number, body in enumerate(lines[index + 1 :], start=index + 2):
            if body.strip() and len(body) - len(body.lstrip()) <= indent:
                break
            if body.strip():
                found.append((number, body.strip(), start.group(2) == "console"))
    return found


def _markdown_shell_lines(path: Path) -> list[tuple[int, str, bool]]:
    """Return (line number, text, is_console) for each line of the README's non-Python fences."""
    found: list[tuple[int, str, bool]] = []
    language: str | None = None
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        fence = _MARKDOWN_FENCE.match(line)
        if fence is not None:
            language = fence.group(1) if language is None else None
        elif language in {"sh", "shell", "bash", "console", "text"} and line.strip():
            found.append((number, line.strip(), language == "console"))
    return found


def _commands() -> list[tuple[str, list[str]]]:
    """Every ``safegen ...`` invocation in the docs' and the README's shell blocks, and where."""
    sources = [(page, _rest_shell_lines(page)) for page in sorted((ROOT / "docs").glob("*.rst"))]
    sources.append((ROOT / "README.md", _markdown_shell_lines(ROOT / "README.md")))
    commands = []
    for path, lines in sources:
        for number, text, console in lines:
            if console:
                if not text.startswith("$ "):
                    continue  # output, not a command
                text = text[2:]
            segment: list[str] = []
            for token in [*shlex.split(text, comments=True), ";"]:
                if token not in _OPERATORS:
                    segment.append(token)
                    continue
                if segment and Path(segment[0]).name == "safegen":
                    commands.append((f"{path.relative_to(ROOT)}:{number}", segment))
                segment = []
    return commands


def _exit_code(arguments: list[str]) -> int | str | None:
    """Parse *arguments* as ``safegen`` would; argparse exits 2 on a usage error."""
    try:
        cli._parser().parse_args(arguments)
    except SystemExit as exit:  # --help and --version exit 0 too
        return exit.code
    return 0


COMMANDS = _commands()


def test_the_docs_show_safegen_commands() -> None:
    """The scan finds commands the pages are known to show, so the check cannot go empty."""
    assert {"image", "prompt", "scan"} <= {command[1] for _, command in COMMANDS}


@pytest.mark.parametrize(
    "command",
    [pytest.param(command, id=f"{where}: {shlex.join(command)}") for where, command in COMMANDS],
)
def test_documented_command_parses(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """A command line shown in the docs is accepted by ``safegen``'s own argument parser."""
    assert _exit_code(command[1:]) == 0, capsys.readouterr().err


def test_every_code_block_is_run_or_checked() -> None:
    """No page has a code block in a language the suite neither runs nor checks (e.g. pycon)."""
    unchecked = [
        f"{page.name}:{number}: {block.group(1) or '(no language)'}"
        for page in sorted((ROOT / "docs").glob("*.rst"))
        for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), start=1)
        if (block := _CODE_BLOCK.match(line)) is not None and block.group(1) not in _CHECKED
    ]
    assert unchecked == []


# -- console examples: run, and their output compared ---------------------------------------

_OFFLINE_ONLY = {"aws", "cascade"}  # a --backend the suite cannot run offline
_TIMING = re.compile(r"\b\d+ ms\)")


def _console_blocks(path: Path) -> list[tuple[int, list[tuple[str, list[str]]]]]:
    """Each console block of a page: its line, and each command with the output shown after it."""
    blocks = []
    lines = path.read_text(encoding="utf-8").splitlines()
    for index, line in enumerate(lines):
        start = _REST_SHELL.match(line)
        if start is None or start.group(2) != "console":
            continue
        indent = len(start.group(1))
        body: list[str] = []
        for text in lines[index + 1 :]:
            if text.strip() and len(text) - len(text.lstrip()) <= indent:
                break
            body.append(text)
        while body and not body[-1].strip():
            body.pop()
        margin = min(len(t) - len(t.lstrip()) for t in body if t.strip())
        session: list[tuple[str, list[str]]] = []
        for text in (t[margin:] for t in body):
            if text.startswith("$ "):
                session.append((text[2:], []))
            elif session:
                session[-1][1].append(text.rstrip())
        for _, shown in session:
            while shown and not shown[-1]:
                shown.pop()
        blocks.append((index + 1, session))
    return blocks


def _sandbox(folder: Path) -> None:
    """The files the console examples name: a harmless picture, a folder of them, the examples.

    The pages say which examples need a clone of the repository (``examples/...``).
    """
    landscape = ROOT / "examples" / "images" / "landscape.png"
    (folder / "picture.png").write_bytes(landscape.read_bytes())
    (folder / "uploads").mkdir()
    for name in ("a.png", "b.png", "c.png"):
        (folder / "uploads" / name).write_bytes(landscape.read_bytes())
    (folder / "examples").mkdir()
    for name in ("policy.toml", "rekognition-response.json", "offline-policy.toml"):
        (folder / "examples" / name).write_bytes((ROOT / "examples" / name).read_bytes())


def _runnable(words: list[str]) -> bool:
    if not words or words[0] != "safegen" or words[1:2] == ["generate"]:
        return False
    return not any(
        word == "--backend" and value in _OFFLINE_ONLY for word, value in itertools.pairwise(words)
    )


def _run(words: list[str]) -> str:
    """Run ``safegen`` in this process; return what it printed (a ``> FILE`` is written)."""
    import contextlib
    import io

    target = None
    if ">" in words:
        target = words[words.index(">") + 1]
        words = words[: words.index(">")]
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        cli.main(words[1:])
    if target is not None:
        Path(target).write_text(out.getvalue(), encoding="utf-8")
        return ""
    return out.getvalue()


def _matches(shown: list[str], printed: list[str]) -> bool:
    """Whether the page shows what was printed: timings aside, and ``...`` for the rest."""
    printed = [_TIMING.sub("N ms)", line) for line in printed]
    shown = [_TIMING.sub("N ms)", line) for line in shown]
    if shown and shown[-1].strip() == "...":
        return printed[: len(shown) - 1] == shown[:-1]
    return printed == shown


CONSOLE_PAGES = sorted(page for page in (ROOT / "docs").glob("*.rst") if _console_blocks(page))


@pytest.mark.parametrize("page", CONSOLE_PAGES, ids=lambda page: page.name)
def test_console_examples_print_what_the_page_shows(
    page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each runnable ``$ safegen ...`` line prints the output shown under it (timings aside).

    Runnable: offline (no ``--backend aws``/``cascade``, no ``generate``), with the files
    :func:`_sandbox` makes. A command shown without output is run for its effect
    (``> mine.toml``) and not compared.
    """
    pytest.importorskip("onnxruntime")
    wrong = []
    for number, session in _console_blocks(page):
        folder = tmp_path / f"block-{number}"
        folder.mkdir()
        _sandbox(folder)
        monkeypatch.chdir(folder)
        for command, shown in session:
            words = shlex.split(command)
            if not _runnable(words):
                continue
            printed = _run(words).splitlines()
            if shown and not _matches(shown, printed):
                wrong.append(
                    f"{page.name}:{number}: $ {command}\n  shown:\n    "
                    + "\n    ".join(shown)
                    + "\n  printed:\n    "
                    + "\n    ".join(printed)
                )
    assert wrong == [], "\n".join(wrong)


def test_the_console_examples_compared_cover_every_command() -> None:
    """The comparison cannot go empty: image, scan, prompt, policy list and evaluate are shown."""
    compared = {
        shlex.split(command)[1]
        + (" " + shlex.split(command)[2] if shlex.split(command)[1] == "policy" else "")
        for page in CONSOLE_PAGES
        for _, session in _console_blocks(page)
        for command, shown in session
        if shown and _runnable(shlex.split(command))
    }
    assert {"image", "scan", "prompt", "policy list", "evaluate"} <= compared
