"""What the command reads from disk, read without trusting it, and names printed safely.

A directory can hold anything: dangling links, link loops, FIFOs (opening one for reading
blocks until a writer comes), sockets, devices, files that vanish between listing and
reading, files far too large, files that change while being read, names that are not UTF-8.
Everything here looks before it opens (``stat``), opens only regular files, reads at most the
limit plus one byte, and turns every failure into a short reason that names no file, so the
caller can record it and go on. :func:`printable` makes any name safe to print on one line.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import math
import os
import stat
import unicodedata
from collections.abc import Iterator, Mapping, Set
from pathlib import Path
from typing import TextIO

import attrs

from safegen.batch._ledger import (
    LedgerBusyError,
    LedgerError,
    LedgerFileError,
    LocalLedgerFile,
    file_kind,
)

MAX_FILE_BYTES = 50 * 1024 * 1024
"""The largest image file read by default (``--max-bytes``): anything larger is not read."""
MAX_TEXT_BYTES = 10 * 1024 * 1024
"""The largest policy file or saved response read."""
MAX_RECORD_BYTES = 1024 * 1024
"""The longest line of a results file: a longer one is not a record safegen wrote."""
_CHUNK = 1024 * 1024
_ACTIONS = frozenset({"allow", "review", "block"})
_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
# Control, format (bidi overrides), surrogate, private-use, unassigned, line/paragraph seps.
_HIDDEN = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


class CommandError(Exception):
    """A failure the person at the terminal can act on, said in one line."""


class UnreadableFileError(Exception):
    """A file that cannot be checked; the message says why, without naming the file."""


def printable(text: str) -> str:
    r"""Return *text* on one line, with nothing a terminal would act on.

    Backslashes, control and format characters (newlines, carriage returns, escape
    sequences, bidi overrides) and line separators are written as backslash escapes; bytes
    of a name that are not UTF-8 (decoded by Python with ``surrogateescape``) as ``\xNN``.
    Distinct texts stay distinct.

    >>> printable("a\nALLOW   b.png")
    'a\\nALLOW   b.png'
    """
    if text.isprintable() and "\\" not in text:
        return text
    out = []
    for char in text:
        code = ord(char)
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif 0xDC80 <= code <= 0xDCFF:  # one byte of a name that is not UTF-8
            out.append(f"\\x{code - 0xDC00:02x}")
        elif unicodedata.category(char) in _HIDDEN:
            if code < 0x80:
                out.append(f"\\x{code:02x}")
            elif code < 0x10000:
                out.append(f"\\u{code:04x}")
            else:
                out.append(f"\\U{code:08x}")
        else:
            out.append(char)
    return "".join(out)


def one_line(text: str) -> str:
    r"""Return *text* with what a terminal would act on escaped, and nothing else.

    As :func:`printable`, but a backslash stays as it is: for a message whose values were
    escaped already (by ``repr``), which :func:`printable` would escape a second time. Text
    that :func:`printable` returned comes back unchanged.

    >>> one_line("unknown preset 'a\\x1b'\x1b[2J")
    "unknown preset 'a\\x1b'\\x1b[2J"
    """
    if text.isprintable():
        return text
    return "\\".join(printable(part) for part in text.split("\\"))


def path_key(path: str) -> bytes:
    """Return the file name as the bytes on disk: what identifies a file across runs."""
    return os.fsencode(path)


def path_fields(path: str) -> dict[str, str]:
    r"""Return a record's ``path`` (and ``path_base64`` when the name is not UTF-8).

    ``path`` is always valid Unicode; a name that is not UTF-8 shows its stray bytes as
    ``\xNN`` there, and its exact bytes are in ``path_base64``.
    """
    raw = path_key(path)
    try:
        return {"path": raw.decode("utf-8")}
    except UnicodeDecodeError:
        return {
            "path": raw.decode("utf-8", "backslashreplace"),
            "path_base64": base64.b64encode(raw).decode("ascii"),
        }


def _reason(error: OSError) -> str:
    return f"cannot read: {error.strerror or type(error).__name__}"


def check_regular(path: str, *, limit: int) -> os.stat_result:
    """Return the file's status if it is a regular file of at most *limit* bytes.

    Links are followed; nothing is opened.

    :raises UnreadableFileError: it is missing, a dangling link or a loop, not a regular
        file, or over the limit.
    """
    try:
        status = os.stat(path)
    except OSError as error:
        raise UnreadableFileError(_reason(error)) from None
    except ValueError:  # a NUL in the name
        raise UnreadableFileError("cannot read: not a file name") from None
    kind = file_kind(status.st_mode)
    if kind is not None:
        raise UnreadableFileError(f"not a regular file ({kind}); not opened")
    if status.st_size > limit:
        raise UnreadableFileError(
            f"{status.st_size:,} bytes is over the {limit:,} allowed; not read"
        )
    return status


def read_regular(path: str, *, limit: int) -> bytes:
    """Read a regular file of at most *limit* bytes, never more than *limit* + 1 bytes.

    :raises UnreadableFileError: see :func:`check_regular`; also when the file cannot be
        opened or read, was replaced by something else between the look and the open, or
        changed size while being read.
    """
    before = check_regular(path, limit=limit)
    # O_NONBLOCK: should a FIFO be swapped in after the look, opening it does not block.
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as error:
        raise UnreadableFileError(_reason(error)) from None
    try:
        opened = os.fstat(fd)
        if not stat.S_ISREG(opened.st_mode) or (opened.st_dev, opened.st_ino) != (
            before.st_dev,
            before.st_ino,
        ):
            raise UnreadableFileError("replaced while being opened; not read")
        chunks: list[bytes] = []
        total = 0
        while total <= limit:
            chunk = os.read(fd, min(_CHUNK, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        after = os.fstat(fd)
    except OSError as error:
        raise UnreadableFileError(_reason(error)) from None
    finally:
        os.close(fd)
    if total > limit:
        raise UnreadableFileError(f"grew over the {limit:,} bytes allowed while being read")
    if (
        total != opened.st_size
        or after.st_size != opened.st_size
        or after.st_mtime_ns != opened.st_mtime_ns
    ):
        raise UnreadableFileError("changed while being read; not checked")
    return b"".join(chunks)


@attrs.frozen
class Found:
    """A file to check, or a directory that could not be listed (with the reason)."""

    path: str
    problem: str | None = None


def files_under(root: str, suffixes: Set[str]) -> Iterator[Found]:
    """Yield every file under *root* whose name ends in one of *suffixes*, in sorted order.

    The walk is iterative (any depth) and never follows a link to a directory, so a link
    cannot make it loop; a link to a file, a dangling link or a FIFO named like an image is
    yielded, for :func:`read_regular` to refuse. A directory that cannot be listed is
    yielded with its reason.
    """
    stack = [str(Path(root))]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as listing:
                entries = sorted(listing, key=lambda entry: entry.name)
        except OSError as error:
            yield Found(folder, f"could not list the directory: {error.strerror or error}")
            continue
        folders = []
        for entry in entries:
            try:
                is_folder = entry.is_dir(follow_symlinks=False)
            except OSError:
                is_folder = False
            if is_folder:
                folders.append(entry.path)
            elif os.path.splitext(entry.name)[1].lower() in suffixes:
                yield Found(entry.path)
        stack.extend(reversed(folders))


class _BadRecordError(Exception):
    """A results line that is not a record safegen wrote."""


def _not_finite(text: str) -> float:
    raise _BadRecordError(f"not JSON ({text} is not a number)")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999: a number JSON can write, but not a finite one
        raise _BadRecordError(f"not JSON ({text} is out of range)")
    return value


@attrs.frozen
class Judged:
    """What an earlier scan recorded about a file: which policy judged it.

    :param policy: the record's ``policy`` (``name``, ``source``, ``sha256``), or ``None``
        when the record does not say (written by an earlier version).
    """

    policy: Mapping[str, object] | None

    @property
    def sha256(self) -> object:
        """The policy's fingerprint, or ``None`` when the record does not carry one."""
        return None if self.policy is None else self.policy.get("sha256")

    def __str__(self) -> str:
        if self.policy is None or not isinstance(self.policy.get("name"), str):
            return "a policy the records do not name"
        return f"{printable(str(self.policy['name']))} ({self.policy.get('source', 'file')})"


def _record_key(line: bytes) -> tuple[bytes, Judged]:
    """Return the file a results line records, as bytes on disk, and what judged it."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as error:
        raise _BadRecordError(f"not UTF-8 (byte {error.start + 1})") from None
    try:  # NaN, Infinity and 1e999 are no record safegen writes: a damaged line
        data = json.loads(text, parse_constant=_not_finite, parse_float=_finite)
    except RecursionError:
        raise _BadRecordError("not JSON (nested too deeply)") from None
    except _BadRecordError:
        raise
    except ValueError as error:
        detail = error.msg if isinstance(error, json.JSONDecodeError) else "a value out of range"
        raise _BadRecordError(f"not JSON ({detail})") from None
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("path"), str)
        or data.get("action") not in _ACTIONS
    ):
        raise _BadRecordError('not a scan record (a JSON object with "path" and "action")')
    policy = data.get("policy")
    judged = Judged(policy if isinstance(policy, dict) else None)
    return _path_of(data), judged


def _path_of(data: dict[str, object]) -> bytes:
    encoded = data.get("path_base64")
    if encoded is not None:
        if not isinstance(encoded, str):
            raise _BadRecordError('"path_base64" is not base64')
        try:
            return base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise _BadRecordError('"path_base64" is not base64') from None
    path = data["path"]
    assert isinstance(path, str)  # checked by the caller
    try:
        return path_key(path)
    except UnicodeEncodeError:
        raise _BadRecordError('"path" is not a file name') from None


_RECORD_START = b'{"path": '  # how every record safegen writes begins


def _could_be_cut(line: bytes) -> bool:
    """Whether *line*, a last line without its newline, is the beginning of a record.

    An interruption can cut a record after any byte: what is left is empty, blank, a
    prefix of how every record begins, or that beginning and some of the rest.
    """
    return not line.strip() or line.startswith(_RECORD_START) or _RECORD_START.startswith(line)


class PathKeys:
    """A file's identity across runs, however its directory was spelled: its canonical path.

    The key of ``DIR/NAME`` is the real path of ``DIR`` (links, ``.`` and ``..`` resolved,
    made absolute against the current directory) joined with ``NAME`` as it is on disk: the
    name itself is not resolved, so a link is its own file, not its target. ``scan d``,
    ``scan ./d/``, ``scan $PWD/d`` and ``scan link-to-d`` name the same files. A record
    written with a relative path (as earlier versions wrote them) is resolved against the current
    directory, the only reading of it that was ever matched. One real-path lookup per
    directory: this object remembers them, for one run.
    """

    def __init__(self) -> None:
        self._real: dict[bytes, bytes] = {}

    def __call__(self, path: str | bytes) -> bytes:
        """Return the key of *path* (a name from the walk, or a record's bytes)."""
        raw = os.fsencode(path)
        head, tail = os.path.split(raw)
        real = self._real.get(head)
        if real is None:
            real = self._real[head] = os.path.realpath(head or b".")
        return os.path.join(real, tail)


def _unresumable(shown: str, number: int, error: Exception) -> CommandError:
    reason = str(error).removeprefix("a line ")
    return CommandError(
        f"{shown} line {number}: {reason}; it is not a results file safegen can resume: "
        "move it aside or choose another --output"
    )


def _read_done(results: LocalLedgerFile, shown: str, keys: PathKeys) -> dict[bytes, Judged]:
    """Read the records in the open results file; repair a cut or unterminated last line.

    The file's mechanics (the lock, the repair of the last line) are the library ledger's
    (:class:`safegen.batch.LocalLedgerFile`); what a record is, is the scan's: a complete
    last record without its newline is kept, any beginning of one is cut away, anything else
    refused.
    """

    def tail(line: bytes) -> bool:
        try:
            _record_key(line)
        except _BadRecordError:
            if not _could_be_cut(line):
                raise
            return False
        return True

    done: dict[bytes, Judged] = {}
    lines = results.lines(tail)
    number = 0
    while True:
        try:
            line = next(lines, None)
        except (_BadRecordError, LedgerError) as error:
            raise _unresumable(shown, number + 1, error) from None
        except OSError as error:
            raise CommandError(f"cannot read the results file {shown}: {error.strerror}") from None
        if line is None:
            return done
        number += 1
        if line.strip():
            try:
                key, judged = _record_key(line)
            except _BadRecordError as error:
                raise _unresumable(shown, number, error) from None
            done[keys(key)] = judged


def _opened(output: Path, shown: str) -> LocalLedgerFile:
    """Open and lock the results file, each refusal said as the scan says it."""
    try:
        return LocalLedgerFile(output)
    except LedgerBusyError:
        raise CommandError(
            f"another safegen scan is writing to {shown}: let it finish, or choose another --output"
        ) from None
    except LedgerFileError as error:
        verb, colon, why = error.reason.partition(": ")
        if colon and verb.startswith("cannot "):
            raise CommandError(f"{verb} the results file {shown}: {why}") from None
        raise CommandError(f"the results file {shown} is {error.reason}") from None


@contextlib.contextmanager
def open_results(output: Path, keys: PathKeys) -> Iterator[tuple[dict[bytes, Judged], TextIO]]:
    """Open *output* to append records, locked for as long as the block runs.

    Yields the keys (see :class:`PathKeys`) of the files an earlier scan recorded, each with
    the policy that judged it (:class:`Judged`), and the text stream to append to. The file
    is created if missing and locked (``flock``, exclusive) before it is read, so two scans
    can never both append to it. A last line cut short by an interrupted run (no newline,
    and any beginning of a record, even an empty or blank one) is truncated away, so that
    image is done again; a complete last line without its newline gets one. Nothing is
    repaired unless every other line is a record.

    :raises CommandError: *output* is not a regular file, another scan holds its lock, or a
        line is not a record safegen wrote (naming the file and the line).
    """
    shown = printable(str(output))
    results = _opened(output, shown)
    try:
        done = _read_done(results, shown, keys)
        sink = os.fdopen(os.dup(results.fileno()), "a", encoding="utf-8")
    except BaseException:
        results.close()
        raise
    try:
        with sink:
            yield done, sink
    finally:
        results.close()  # closing the file releases the lock
