"""The training-data filter: check a fine-tuning dataset before training on it.

A dataset is a directory (local, or an S3 prefix) of images plus ``dataset_info.json``
(``{"instance_prompt": "..."}``), as DreamBooth fine-tuning takes it. :func:`check_dataset`
moderates every image (through a batch engine, into a ledger) and the instance prompt, and
returns a :class:`DatasetReport`. Then, by choice:

- flag: write the report, change nothing (the default);
- :func:`quarantine`: move the flagged images under a quarantine prefix (undo with
  :func:`restore`);
- :func:`remove`: delete them (no undo: only after the report is written).

The dataset is never left half-changed: the report is written before anything moves, and
each move is recorded in the ledger before it is made (``intent``) and after (``done``).
Every operation first completes any move a crash interrupted, so an interrupted run is
completed by running it again, or undone by :func:`restore`.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import attrs

from safegen.batch import (
    BatchSummary,
    ClientEngine,
    Engine,
    Item,
    Ledger,
    LedgerRecord,
    directory_items,
    local_ref,
    now,
)
from safegen.errors import ConfigurationError

if TYPE_CHECKING:
    from safegen.prompt import PromptModerator

__all__ = [
    "INFO_FILE",
    "DatasetReport",
    "DatasetStore",
    "LocalDataset",
    "check_dataset",
    "quarantine",
    "remove",
    "restore",
    "write_report",
]

INFO_FILE = "dataset_info.json"
"""The file naming the dataset's instance prompt."""
MAX_INFO_BYTES = 1024 * 1024
"""The largest ``dataset_info.json`` read."""
PROMPT_SUFFIX = "#instance_prompt"
"""The instance prompt's ref: the info file's, with this suffix."""

Operation = Literal["quarantine", "restore", "remove"]


@runtime_checkable
class DatasetStore(Protocol):
    """Where a dataset lives: a local directory, or an S3 prefix.

    :class:`LocalDataset` and :class:`safegen.aws.s3.S3Dataset` implement it.
    """

    @property
    def name(self) -> str:
        """The dataset's location, for reports."""

    def items(self) -> Iterator[Item]:
        """Yield the dataset's images, streamed."""

    def read_info(self) -> bytes | None:
        """Return ``dataset_info.json``'s bytes, or ``None`` when there is none.

        At most :data:`MAX_INFO_BYTES` + 1 bytes are read.
        """

    def info_ref(self) -> str:
        """Return the ref of ``dataset_info.json``."""

    def target(self, ref: str, prefix: str) -> str:
        """Return where the image *ref* goes under the quarantine *prefix*."""

    def move(self, ref: str, to: str) -> None:
        """Move *ref* to *to*; done already (*ref* gone, *to* there) is success."""

    def delete(self, ref: str) -> None:
        """Delete *ref*; gone already is success."""


class LocalDataset:
    """A dataset in a local directory; refs are canonical paths (see ``local_ref``)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        if not Path(root).is_dir():
            raise ConfigurationError(f"dataset: {os.fsdecode(root)!r} is not a directory")
        self.root = os.path.realpath(root)

    @property
    def name(self) -> str:
        """The directory's real path."""
        return self.root

    def items(self) -> Iterator[Item]:
        """Yield the images under the directory (not ``dataset_info.json``)."""
        return directory_items(self.root)

    def read_info(self) -> bytes | None:
        """Read ``dataset_info.json`` (bounded), or ``None`` when there is none."""
        try:
            with open(os.path.join(self.root, INFO_FILE), "rb") as stream:
                return stream.read(MAX_INFO_BYTES + 1)
        except FileNotFoundError:
            return None

    def info_ref(self) -> str:
        """Return the info file's path."""
        return os.path.join(self.root, INFO_FILE)

    def target(self, ref: str, prefix: str) -> str:
        """Return the image's path under the quarantine directory, as in the dataset.

        :raises ConfigurationError: the quarantine is inside the dataset (a re-check would
            find the quarantined images again).
        """
        quarantine = local_ref(prefix.rstrip(os.sep) or os.sep)
        if os.path.commonpath([quarantine, self.root]) == self.root:
            raise ConfigurationError("quarantine: must be outside the dataset's directory")
        return os.path.join(quarantine, os.path.relpath(ref, self.root))

    def move(self, ref: str, to: str) -> None:
        """Move the file (a rename when on one filesystem); done already is success."""
        if not os.path.lexists(ref) and os.path.lexists(to):
            return
        os.makedirs(os.path.dirname(to), exist_ok=True)
        shutil.move(ref, to)
        _sync_directory(os.path.dirname(to))
        _sync_directory(os.path.dirname(ref))

    def delete(self, ref: str) -> None:
        """Delete the file; gone already is success."""
        try:
            os.unlink(ref)
        except FileNotFoundError:
            return
        _sync_directory(os.path.dirname(ref))


def _sync_directory(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@attrs.frozen
class DatasetReport:
    """What checking a dataset found.

    :param dataset: where the dataset is.
    :param summary: the images' counts (this run's; ``already_done`` from earlier runs).
    :param prompt: the instance prompt's record; ``None`` when there is no
        ``dataset_info.json`` (said in :attr:`notes`).
    :param flagged: every image (and the prompt) whose action is not ``allow``: blocked,
        for review, or not checked.
    :param policy_sha256: the judging policy's fingerprint.
    :param policy_version: its version.
    :param notes: what else to know (no info file, no instance prompt in it).
    """

    dataset: str
    summary: BatchSummary
    prompt: LedgerRecord | None
    flagged: tuple[LedgerRecord, ...]
    policy_sha256: str
    policy_version: str | None = None
    notes: tuple[str, ...] = ()

    @property
    def images_flagged(self) -> tuple[LedgerRecord, ...]:
        """The flagged images (the instance prompt left out)."""
        return tuple(r for r in self.flagged if not r.ref.endswith(PROMPT_SUFFIX))

    @property
    def clean(self) -> bool:
        """Whether every image and the prompt were checked and allowed."""
        return not self.flagged

    def to_dict(self) -> dict[str, Any]:
        """Return the report as plain JSON-ready data (refs, actions, label paths, codes)."""

        def entry(record: LedgerRecord) -> dict[str, Any]:
            return {
                "ref": record.ref,
                "outcome": record.outcome,
                "action": record.action,
                "labels": list(record.labels),
                "error": record.error,
            }

        return {
            "dataset": self.dataset,
            "policy_sha256": self.policy_sha256,
            "policy_version": self.policy_version,
            "summary": self.summary.to_dict(),
            "prompt": None if self.prompt is None else entry(self.prompt),
            "flagged": [entry(record) for record in self.flagged],
            "notes": list(self.notes),
        }


def _prompt_text(raw: bytes | None) -> tuple[str | None, str | None]:
    """Return the instance prompt, or a note code on why there is none to check."""
    if raw is None:
        return None, "no_info_file"
    if len(raw) > MAX_INFO_BYTES:
        return None, "info_too_large"
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        return None, "info_not_json"
    prompt = data.get("instance_prompt") if isinstance(data, dict) else None
    if not isinstance(prompt, str):
        return None, "no_instance_prompt"
    return prompt, None


def _check_prompt(
    store: DatasetStore, prompts: PromptModerator, ledger: Ledger
) -> tuple[LedgerRecord | None, str | None]:
    ref = store.info_ref() + PROMPT_SUFFIX
    text, problem = _prompt_text(store.read_info())
    if problem == "no_info_file":
        return None, problem
    common = {
        "policy_sha256": ledger.policy_sha256,
        "policy_version": ledger.policy_version,
        "engine": "prompt",
        "attempt": ledger.next_attempt(ref),
        "at": now(),
    }
    if text is None:  # an info file that does not say: fail closed
        record = LedgerRecord(ref, "failed", "block", error=problem, **common)  # type: ignore[arg-type]
    else:
        verdict = prompts.moderate(text)
        labels = sorted({finding.category or finding.source for finding in verdict.findings})
        failed = bool(verdict.failed)
        record = LedgerRecord(
            ref,
            "failed" if failed else "checked",
            verdict.action.value,
            labels=labels,
            error="prompt_check_failed" if failed else None,
            **common,  # type: ignore[arg-type]
        )
    if not ledger.is_done(ref):
        ledger.append(record)
    return record, None


def check_dataset(
    store: DatasetStore,
    *,
    engine: Engine | None = None,
    images: Any = None,
    prompts: PromptModerator,
    ledger: Ledger,
) -> DatasetReport:
    """Moderate every image of the dataset and its instance prompt; change nothing.

    :param engine: the batch engine for the images; default: a :class:`ClientEngine`
        over *images* (an :class:`~safegen.ImageModerator` or :class:`~safegen.Cascade`).
    :param prompts: judges the instance prompt.
    :param ledger: results and checkpoint; a resumed check skips what is done.
    """
    if engine is None:
        if images is None:
            raise ConfigurationError("check_dataset: give an engine or an image moderator")
        engine = ClientEngine(images)
    notes = []
    prompt, problem = _check_prompt(store, prompts, ledger)
    if problem is not None:
        notes.append(problem)
    summary = engine.run(store.items(), ledger)
    return DatasetReport(
        dataset=store.name,
        summary=summary,
        prompt=prompt,
        flagged=ledger.flagged(),
        policy_sha256=ledger.policy_sha256,
        policy_version=ledger.policy_version,
        notes=tuple(notes),
    )


def write_report(report: DatasetReport, path: str | os.PathLike[str]) -> None:
    """Write the report as JSON, atomically (a temporary file, ``fsync``, then a rename)."""
    target = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(target))
    fd, temporary = tempfile.mkstemp(dir=folder, prefix=".safegen-report-", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            json.dump(report.to_dict(), stream, indent=2, ensure_ascii=True)
            stream.write("\n")
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, target)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
    _sync_directory(folder)


def _state(ledger: Ledger) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """Return each ref's last completed move, and the intents a crash left unfinished."""
    settled: dict[str, dict[str, Any]] = {}
    open_intents: dict[tuple[str, str], dict[str, Any]] = {}
    for note in ledger.notes("move"):
        key = (str(note.get("ref")), str(note.get("op")))
        if note.get("phase") == "intent":
            open_intents[key] = note
        elif note.get("phase") == "done":
            open_intents.pop(key, None)
            settled[key[0]] = note
    return settled, list(open_intents.values())


def _do(store: DatasetStore, ledger: Ledger, op: Operation, ref: str, to: str | None) -> None:
    ledger.note("move", op=op, ref=ref, to=to, phase="intent")
    if op == "remove":
        store.delete(ref)
    elif op == "quarantine":
        assert to is not None
        store.move(ref, to)
    else:  # restore: back from where it was quarantined
        assert to is not None
        store.move(to, ref)
    ledger.note("move", op=op, ref=ref, to=to, phase="done")


def _complete(store: DatasetStore, ledger: Ledger) -> int:
    """Finish every move a crash interrupted (each is idempotent); return how many."""
    _, pending = _state(ledger)
    for note in pending:
        _do(store, ledger, note["op"], note["ref"], note.get("to"))
    return len(pending)


def quarantine(store: DatasetStore, ledger: Ledger, report: DatasetReport, prefix: str) -> int:
    """Move every flagged image under *prefix*; return how many moved in this call.

    Write the report first (:func:`write_report`). Each move is recorded before and after;
    moves a crash interrupted are completed first. Undo with :func:`restore`.
    """
    _complete(store, ledger)
    settled, _ = _state(ledger)
    moved = 0
    for record in report.images_flagged:
        last = settled.get(record.ref)
        if last is not None and last.get("op") in ("quarantine", "remove"):
            continue
        _do(store, ledger, "quarantine", record.ref, store.target(record.ref, prefix))
        moved += 1
    return moved


def remove(store: DatasetStore, ledger: Ledger, report: DatasetReport) -> int:
    """Delete every flagged image (no undo); return how many in this call.

    Write the report first (:func:`write_report`): it is the only trace of what was removed.
    """
    _complete(store, ledger)
    settled, _ = _state(ledger)
    removed = 0
    for record in report.images_flagged:
        last = settled.get(record.ref)
        if last is not None and last.get("op") == "remove":
            continue
        if last is not None and last.get("op") == "quarantine":
            _do(store, ledger, "remove", str(last["to"]), None)
        else:
            _do(store, ledger, "remove", record.ref, None)
        removed += 1
    return removed


def restore(store: DatasetStore, ledger: Ledger) -> int:
    """Move every quarantined image back where it was; return how many.

    Completes any move a crash interrupted first, so an interrupted quarantine is undone
    as a whole.
    """
    _complete(store, ledger)
    settled, _ = _state(ledger)
    restored = 0
    for ref, note in sorted(settled.items()):
        if note.get("op") == "quarantine":
            _do(store, ledger, "restore", ref, str(note["to"]))
            restored += 1
    return restored
