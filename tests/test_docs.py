"""The ``safegen`` command lines shown in the documentation are ones the real parser accepts.

The pages' Python examples run through Sybil (``docs/conftest.py``); shell blocks are not
Python, so their ``safegen ...`` commands are checked here against the command's own argument
parser: a renamed option or sub-command breaks this test, not a reader's first try.
"""

from __future__ import annotations

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
