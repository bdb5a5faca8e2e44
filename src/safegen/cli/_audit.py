"""``safegen audit``: verify an audit trail, show one image's history, print or repair its head.

The trail is a file: ``--sqlite FILE``, ``--jsonl FILE``, or ``--store DIR`` for the one in a
review store's directory (``DIR/audit.sqlite3``, else ``DIR/audit.jsonl``). Nothing is
created or changed but by ``repair``: an SQLite trail is opened read-only, and a missing
trail, or an SQLite file without the audit table (say, a store's ``state.sqlite3``), is an
error (exit 3). Everything read from a trail is printed escaped
(:func:`~safegen.cli._files.printable`): a forged entry cannot drive the terminal.

Exit codes: 0 the chain verified (or the command did what it was asked); 1 ``verify`` found a
problem (an entry edited, removed, reordered, inserted or replaced, a torn or unreadable line,
the anchor missing); 2 usage; 3 the trail could not be read.
"""

from __future__ import annotations

import argparse
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

from safegen.cli._common import EXIT_ALLOWED, EXIT_FLAGGED, emit_json
from safegen.cli._files import CommandError, printable

if TYPE_CHECKING:
    from safegen.review.audit import AuditEntry, AuditTrail

__all__ = ["register"]

STORE_FILES = ("audit.sqlite3", "audit.jsonl")
"""The trail's file in a review store's directory, in the order ``--store`` looks for them."""


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser], epilog: str) -> None:
    """Add ``safegen audit`` and its actions to the top-level subcommands."""
    audit = commands.add_parser(
        "audit",
        help="verify the review store's audit trail, or show an image's history",
        description="Work with an audit trail (safegen.review.audit): verify its hash chain, "
        "show the history of one image, print its head to keep as an anchor.",
        epilog=epilog,
    )
    actions = audit.add_subparsers(dest="audit_command", required=True, metavar="ACTION")

    def action(name: str, help: str, run: object, description: str) -> argparse.ArgumentParser:
        sub = actions.add_parser(name, help=help, description=description, epilog=epilog)
        sub.set_defaults(run=run)
        where = sub.add_mutually_exclusive_group(required=True)
        where.add_argument("--store", metavar="DIR", help="a review store's directory")
        where.add_argument("--sqlite", metavar="FILE", help="a trail in SQLite")
        where.add_argument("--jsonl", metavar="FILE", help="a trail in JSON Lines")
        sub.add_argument("--json", action="store_true", help="print JSON Lines")
        sub.add_argument(
            "--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS
        )
        return sub

    verify = action(
        "verify",
        "check the hash chain; name the first bad entry",
        run_verify,
        "Check every entry's hash and link, in one pass. Exit 0 when the chain verifies, 1 "
        "naming the first entry edited, removed, reordered, inserted or replaced (or a torn "
        "or unreadable line). Entries cut from the end are found only with --anchor.",
    )
    verify.add_argument(
        "--anchor",
        metavar="HASH",
        type=_anchor,
        help="a head hash kept apart earlier (safegen audit head): it must still be in the chain",
    )
    show = action(
        "show",
        "print the history of one image",
        run_show,
        "Print every entry about KEY, oldest first (not verified: run verify for that).",
    )
    show.add_argument("key", metavar="KEY")
    action(
        "head",
        "print the last entry's hash, to keep apart as an anchor",
        run_head,
        "Print the hash of the last entry. Keep it where the trail's writer cannot change it "
        "(another account, a ticket, a signed mail); verify --anchor HASH then finds entries "
        "cut from the end, which a hash chain alone cannot.",
    )
    action(
        "repair",
        "cut off a JSON Lines entry torn by a crash",
        run_repair,
        "Remove a last line an interrupted append left unfinished, or add its newline if it "
        "is a whole entry. A complete line is never removed. SQLite needs no repair.",
    )


def _anchor(text: str) -> str:
    value = text.strip().lower()
    if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
        raise argparse.ArgumentTypeError("must be an entry's hash: 64 hex digits")
    return value


def _path(args: argparse.Namespace) -> tuple[Path, bool]:
    """Return the trail's file and whether it is JSON Lines; it must exist."""
    if args.store is not None:
        directory = Path(args.store)
        if not directory.is_dir():
            raise CommandError(f"no store directory: {printable(str(directory))}")
        for name in STORE_FILES:
            if (directory / name).is_file():
                return directory / name, name.endswith(".jsonl")
        raise CommandError(
            f"no audit trail in {printable(str(directory))} ({' or '.join(STORE_FILES)})"
        )
    path, jsonl = (Path(args.jsonl), True) if args.jsonl is not None else (Path(args.sqlite), False)
    if not path.is_file():
        raise CommandError(f"no audit trail at {printable(str(path))}")
    return path, jsonl


def _open(args: argparse.Namespace) -> tuple[Path, AuditTrail]:
    """Open the trail to read it: an SQLite trail read-only, and only if it is one."""
    from safegen.review.audit import AuditError, AuditTrail

    path, jsonl = _path(args)
    if jsonl:
        return path, AuditTrail.jsonl(path)
    try:
        trail = AuditTrail.sqlite(path, read_only=True)
        trail.log.head()
    except AuditError as error:  # its message names the file, and says why
        raise CommandError(printable(str(error))) from None
    except sqlite3.Error as error:
        raise CommandError(f"{printable(str(path))}: not an SQLite audit trail ({error})") from None
    return path, trail


def run_verify(args: argparse.Namespace) -> int:
    """Verify the chain; exit 1 naming the first problem."""
    path, trail = _open(args)
    try:
        report = trail.verify(anchor=args.anchor)
    except (OSError, sqlite3.Error) as error:
        raise CommandError(f"cannot read {printable(str(path))}: {error}") from None
    name = printable(str(path))
    if args.json:
        emit_json({"trail": str(path), **report.to_dict()})
    elif report.problem is None:
        anchored = "; the anchor is in it" if report.anchored else ""
        head = f"; head {report.head}" if report.head else ""
        print(f"{name}: OK, {report.entries:,} entries verified{head}{anchored}")
    else:
        problem = report.problem
        seq = "" if problem.seq is None else f" (seq {problem.seq})"
        print(
            f"{name}: FAILED at {printable(problem.where)}{seq}: {problem.kind.value}: "
            f"{printable(problem.detail)}"
        )
        print(f"{report.entries:,} entries verified before it")
    return EXIT_ALLOWED if report.ok else EXIT_FLAGGED


def _line(entry: AuditEntry) -> str:
    verdict = entry.verdict
    parts = [f"#{entry.seq}", entry.at, entry.event, f"by {printable(entry.actor)}"]
    if verdict is not None:
        labels = ", ".join(f"{printable(name)} {score:g}" for name, score in verdict.labels)
        parts.append(f"{verdict.action}" + (f" [{labels}]" if labels else ""))
        policy = verdict.policy_version or (verdict.policy_sha256 or "")[:12]
        if policy:
            parts.append(f"policy {printable(policy)}")
    if entry.reason is not None:
        parts.append(f"reason: {printable(entry.reason)}")
    return "  ".join(parts)


def run_show(args: argparse.Namespace) -> int:
    """Print one key's entries, oldest first."""
    path, trail = _open(args)
    try:
        history = trail.history(args.key)
    except (OSError, sqlite3.Error) as error:
        raise CommandError(f"cannot read {printable(str(path))}: {error}") from None
    if args.json:
        for entry in history:
            emit_json(entry.to_dict())
    elif not history:
        print(f"{printable(args.key)}: no entries")
    else:
        print(f"{printable(args.key)}: {len(history)} entries")
        for entry in history:
            print(f"  {_line(entry)}")
    return EXIT_ALLOWED


def run_head(args: argparse.Namespace) -> int:
    """Print the last entry's hash."""
    _, trail = _open(args)
    head = trail.head()
    if args.json:
        emit_json({"head": head})
    else:
        print(head if head is not None else "(empty: no entries)")
    return EXIT_ALLOWED


def run_repair(args: argparse.Namespace) -> int:
    """Complete or cut off a torn last line."""
    path, trail = _open(args)
    repaired = trail.repair()
    if args.json:
        emit_json({"trail": str(path), "action": repaired.action, "bytes": repaired.size})
    elif repaired.action == "none":
        print(f"{printable(str(path))}: nothing to repair")
    elif repaired.action == "completed":
        print(f"{printable(str(path))}: the last entry was whole but for its newline: added")
    else:
        print(f"{printable(str(path))}: a torn last line of {repaired.size} bytes cut off")
    return EXIT_ALLOWED
