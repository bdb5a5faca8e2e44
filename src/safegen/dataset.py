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

import errno
import hashlib
import json
import os
import shutil
import stat
import sys
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
    local_identity,
    now,
)
from safegen.batch._sources import IMAGE_SUFFIXES
from safegen.errors import ConfigurationError, InvalidPromptError, SafegenError, ServiceError

if TYPE_CHECKING:
    from safegen.prompt import PromptModerator

__all__ = [
    "INFO_FILE",
    "NOT_AN_IMAGE",
    "DatasetError",
    "DatasetMoveError",
    "DatasetReport",
    "DatasetStore",
    "LocalDataset",
    "check_dataset",
    "default_ledger",
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

NOT_AN_IMAGE = "not_an_image"
"""The failure code of a dataset file that is not an image safegen can check.

A trainer reads every file of the dataset's folder, so such a file is never skipped: it is
recorded as failed (action ``block``), and the dataset is not clean.
"""

Operation = Literal["quarantine", "restore", "remove"]


class DatasetError(SafegenError):
    """A dataset, its ledger or a move cannot be handled as asked (the message says why)."""


class DatasetMoveError(DatasetError):
    """Some moves of a :func:`quarantine`, :func:`remove` or :func:`restore` failed.

    Every other move was made; each failed one is recorded in the ledger (its intent closed,
    so the ledger is never left stuck) and listed here.

    :param done: how many moves were made in this call.
    :param failures: ``(ref, reason)`` for each move that failed.
    """

    def __init__(self, done: int, failures: tuple[tuple[str, str], ...]) -> None:
        self.done = done
        self.failures = failures
        shown = ", ".join(f"{os.path.basename(ref)} ({why})" for ref, why in failures[:3])
        more = f" and {len(failures) - 3} more" if len(failures) > 3 else ""
        super().__init__(
            f"{len(failures)} moves failed (the rest were made): {shown}{more}; see the ledger"
        )


def _classified(
    ref: str, source: Any, size: int | None, max_bytes: int | None, identity: str | None
) -> Item:
    """Return the item of an image to check (by its name), else a :data:`NOT_AN_IMAGE` one."""
    name = ref.rsplit("/", 1)[-1].rsplit(os.sep, 1)[-1]
    if os.path.splitext(name)[1].lower() not in IMAGE_SUFFIXES:
        return Item(ref, size=size, problem=NOT_AN_IMAGE, identity=identity)
    if max_bytes is not None and size is not None and size > max_bytes:
        return Item(ref, size=size, problem="too_large", identity=identity)
    return Item(ref, source, size=size, identity=identity)


def _local_files(root: str, info_ref: str) -> Iterator[Item]:
    """Yield every file under *root* (sorted, never through a link to a directory)."""
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as listing:
                entries = sorted(listing, key=lambda entry: entry.name)
        except OSError:
            yield Item(folder, problem="unlistable")
            continue
        folders = []
        for entry in entries:
            ref = os.path.join(folder, entry.name)
            try:
                if entry.is_dir(follow_symlinks=False):
                    folders.append(ref)
                    continue
                info = entry.stat()
            except OSError:
                yield Item(ref, problem="unreadable")
                continue
            if ref != info_ref:  # identity: a file replaced under its name is checked again
                yield _classified(ref, Path(ref), info.st_size, None, local_identity(info))
        stack.extend(reversed(folders))


def _s3_files(store: Any) -> Iterator[Item]:
    """Yield every object under an :class:`~safegen.aws.s3.S3Dataset`'s prefix, as listed."""
    from safegen.aws._errors import aws_call
    from safegen.batch import object_identity
    from safegen.batch._engine import REKOGNITION_S3_BYTES
    from safegen.reports import S3Object

    info = store.prefix + INFO_FILE
    pages = iter(
        store._client.get_paginator("list_objects_v2").paginate(
            Bucket=store.bucket, Prefix=store.prefix
        )
    )
    while True:
        with aws_call("s3", "ListObjectsV2"):
            page = next(pages, None)
        if page is None:
            return
        for entry in page.get("Contents", ()):
            key, size = entry.get("Key"), entry.get("Size")
            size = size if isinstance(size, int) and size >= 0 else None
            if not isinstance(key, str) or key == info or (key.endswith("/") and not size):
                continue  # the info file; an empty folder marker
            source = S3Object(store.bucket, key)
            identity = object_identity(entry)
            ref = f"s3://{store.bucket}/{key}"
            yield _classified(ref, source, size, REKOGNITION_S3_BYTES, identity)


def _dataset_items(store: DatasetStore) -> Iterator[Item]:
    """Every file of the dataset (but its info file): an image to check, or a failure.

    Listed here, with no filter, for the stores safegen has; another store's
    :meth:`~DatasetStore.items` is trusted to do the same.
    """
    if isinstance(store, LocalDataset):
        return store.items()
    s3 = sys.modules.get("safegen.aws.s3")
    if s3 is not None and isinstance(store, s3.S3Dataset):
        return _s3_files(store)
    return store.items()


def _base(name: str) -> str:
    """Return the dataset's location with one trailing separator (its refs start with it)."""
    sep = "/" if name.startswith("s3://") else os.sep
    return name if name.endswith(sep) else name + sep


def _inside(store: DatasetStore, ref: str) -> bool:
    return ref.startswith(_base(store.name))


def _namespace(store: DatasetStore, prefix: str) -> str:
    """Return the dataset's own sub-prefix of a quarantine *prefix* (no mixing there)."""
    key = "safegen-" + hashlib.sha256(store.name.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    if prefix.startswith("s3://"):
        return (prefix if prefix.endswith("/") else prefix + "/") + key + "/"
    return os.path.join(prefix, key)


def default_ledger(store: DatasetStore) -> str:
    """Return the default ledger of a dataset: next to it (never in it), named after it.

    ``data/`` has ``data.safegen-dataset.jsonl`` beside it (an S3 prefix likewise), so two
    datasets never share a ledger by default.

    :raises DatasetError: the dataset is a whole bucket or ``/`` (nowhere beside it).
    """
    name = store.name
    if name.startswith("s3://"):
        trimmed = name.rstrip("/")
        if trimmed.count("/") < 3:
            raise DatasetError("a dataset at a bucket's root has no default ledger: give --ledger")
        return trimmed + ".safegen-dataset.jsonl"
    trimmed = name.rstrip(os.sep)
    if not trimmed:
        raise DatasetError("a dataset at / has no default ledger: give --ledger")
    return trimmed + ".safegen-dataset.jsonl"


def _bind(store: DatasetStore, ledger: Ledger) -> None:
    """Bind the ledger to this dataset (first use), or refuse one bound to another."""
    bound = {str(note.get("root")) for note in ledger.notes("dataset")}
    if not bound:
        ledger.note("dataset", root=store.name)
    elif bound != {store.name}:
        raise DatasetError(
            f"the ledger {ledger.name} belongs to another dataset ({sorted(bound)[0]}), not "
            f"{store.name}: choose this dataset's own ledger"
        )


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

        At most ``MAX_INFO_BYTES`` + 1 bytes are read.
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
        """Yield every file under the directory but ``dataset_info.json``.

        A trainer reads them all: an image is checked; any other file is an item with
        ``problem=`` :data:`NOT_AN_IMAGE` (recorded as failed, never skipped).
        """
        return _local_files(self.root, self.info_ref())

    def read_info(self) -> bytes | None:
        """Read ``dataset_info.json`` (bounded), or ``None`` when there is none.

        Opened without blocking (a FIFO never hangs) and read only if it is a regular file.

        :raises DatasetError: it is not a regular file (a directory, a FIFO, a device), or
            it cannot be read.
        """
        flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(self.info_ref(), flags)
        except FileNotFoundError:
            return None
        except OSError as error:
            raise DatasetError(f"{INFO_FILE}: cannot be read ({error.strerror})") from None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise DatasetError(f"{INFO_FILE}: not a regular file")
            chunks: list[bytes] = []
            left = MAX_INFO_BYTES + 1
            while left > 0:
                chunk = os.read(fd, min(left, 65536))
                if not chunk:
                    break
                chunks.append(chunk)
                left -= len(chunk)
            return b"".join(chunks)
        except OSError as error:
            raise DatasetError(f"{INFO_FILE}: cannot be read ({error.strerror})") from None
        finally:
            os.close(fd)

    def info_ref(self) -> str:
        """Return the info file's path."""
        return os.path.join(self.root, INFO_FILE)

    def target(self, ref: str, prefix: str) -> str:
        """Return the image's path under the quarantine directory, as in the dataset.

        The prefix is resolved whole (links included) before it is compared.

        :raises ConfigurationError: the quarantine and the dataset overlap (one inside the
            other, through links or not): a re-check would find the quarantined images
            again, or a move would stay in the dataset.
        :raises DatasetError: *ref* is not under the dataset.
        """
        quarantine = os.path.realpath(prefix)
        if os.path.commonpath([quarantine, self.root]) in (quarantine, self.root):
            raise ConfigurationError("quarantine: must be outside the dataset's directory")
        if not _inside(self, ref):
            raise DatasetError("not a file of this dataset")
        return os.path.join(quarantine, os.path.relpath(ref, self.root))

    def move(self, ref: str, to: str) -> None:
        """Move the file; done already (*ref* gone, *to* there) is success.

        Never replaces a file: a hard link then an unlink (a copy to a new file across
        filesystems), so an existing *to* is refused, however it got there.

        :raises DatasetError: *to* exists already (nothing is moved).
        :raises FileNotFoundError: neither *ref* nor *to* is there.
        """
        if not os.path.lexists(ref) and os.path.lexists(to):
            return
        os.makedirs(os.path.dirname(to), exist_ok=True)
        try:
            _place(ref, to)
        except FileExistsError:
            raise DatasetError("the destination exists already: not overwritten") from None
        os.unlink(ref)
        _sync_directory(os.path.dirname(to))
        _sync_directory(os.path.dirname(ref))

    def delete(self, ref: str) -> None:
        """Delete the file; gone already is success."""
        try:
            os.unlink(ref)
        except FileNotFoundError:
            return
        _sync_directory(os.path.dirname(ref))


def _place(ref: str, to: str) -> None:
    """Put a copy of *ref* at *to*, refusing (``FileExistsError``) an existing *to*."""
    if os.path.islink(ref):
        os.symlink(os.readlink(ref), to)
        return
    try:
        os.link(ref, to, follow_symlinks=False)
    except OSError as error:
        if error.errno not in (errno.EXDEV, errno.EPERM, errno.ENOTSUP, errno.EMLINK):
            raise
        with open(ref, "rb") as source, open(to, "xb") as target:
            shutil.copyfileobj(source, target)
            target.flush()
            os.fsync(target.fileno())


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
        ``dataset_info.json`` (said in ``notes``).
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
    text: str | None
    problem: str | None
    try:
        raw = store.read_info()
    except DatasetError:
        text, problem = None, "info_not_a_file"
    else:
        text, problem = _prompt_text(raw)
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
        try:
            verdict = prompts.moderate(text)
        except InvalidPromptError:  # too long, say: a finding, not the end of the check
            verdict = None
        if verdict is None:
            record = LedgerRecord(
                ref,
                "failed",
                "block",
                error="prompt_invalid",
                **common,  # type: ignore[arg-type]
            )
        else:
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

    :param engine: the batch engine for the images; default: a :class:`~safegen.batch.ClientEngine`
        over *images* (an :class:`~safegen.ImageModerator` or :class:`~safegen.Cascade`).
    :param prompts: judges the instance prompt.
    :param ledger: results and checkpoint; a resumed check skips what is done. It is
        bound to this dataset on first use (a ``dataset`` note naming it); the report
        takes only records of refs under this dataset.

    Every file of the dataset but ``dataset_info.json`` is accounted for: checked as an
    image, or recorded as failed (:data:`NOT_AN_IMAGE`), as a trainer reads them all. An
    instance prompt that cannot be checked (too long, an info file that is not a regular
    file) is a failed, blocked record; the images are still checked.

    :raises DatasetError: the ledger belongs to another dataset.
    """
    if engine is None:
        if images is None:
            raise ConfigurationError("check_dataset: give an engine or an image moderator")
        engine = ClientEngine(images)
    _bind(store, ledger)
    notes = []
    prompt, problem = _check_prompt(store, prompts, ledger)
    if problem is not None:
        notes.append(problem)
    summary = engine.run(_dataset_items(store), ledger)
    return DatasetReport(
        dataset=store.name,
        summary=summary,
        prompt=prompt,
        flagged=tuple(r for r in ledger.flagged() if _inside(store, r.ref)),
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


def _state(
    ledger: Ledger, store: DatasetStore
) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """Return each ref's last completed move, and the intents a crash left unfinished.

    Only this dataset's refs. An intent is closed by its ``done`` or its ``failed`` note,
    so a repeated pair is harmless. A ``remove`` an older version recorded under the
    quarantined copy's name counts for the image it was.
    """
    settled: dict[str, dict[str, Any]] = {}
    open_intents: dict[tuple[str, str], dict[str, Any]] = {}
    held: dict[str, str] = {}  # quarantined copy -> the image it was
    for note in ledger.notes("move"):
        ref = str(note.get("ref"))
        if note.get("op") == "remove" and ref in held:
            ref = held[ref]
        if not _inside(store, ref):
            continue
        key = (ref, str(note.get("op")))
        if note.get("phase") == "intent":
            open_intents[key] = {**note, "ref": ref}
        elif note.get("phase") in ("done", "failed"):
            open_intents.pop(key, None)
            if note.get("phase") == "done":
                settled[ref] = {**note, "ref": ref}
                if note.get("op") == "quarantine" and isinstance(note.get("to"), str):
                    held[str(note["to"])] = ref
    return settled, list(open_intents.values())


def _refuse_taken(store: DatasetStore, source: str, target: str) -> None:
    """On S3 (a copy replaces a key): refuse a move whose source and target both exist.

    A local store refuses by itself (:meth:`LocalDataset.move`). Checked just before the
    copy: a key written in between is still replaced (S3 has no exclusive copy).
    """
    s3 = sys.modules.get("safegen.aws.s3")
    if s3 is None or not isinstance(store, s3.S3Dataset):
        return
    if _s3_exists(store, target) and _s3_exists(store, source):
        raise DatasetError("the destination exists already: not overwritten")


def _s3_exists(store: Any, url: str) -> bool:
    from safegen.aws._errors import aws_call
    from safegen.batch import parse_s3_url

    bucket, key = parse_s3_url(url)
    try:
        with aws_call("s3", "HeadObject"):
            store._client.head_object(Bucket=bucket, Key=key)
    except ServiceError as error:
        if error.code in ("NoSuchKey", "404", "NotFound"):
            return False
        raise
    return True


def _gone(error: BaseException) -> bool:
    """Whether a move failed for good: its file is gone, or its destination is taken."""
    if isinstance(error, (FileNotFoundError, DatasetError)):
        return True
    return isinstance(error, ServiceError) and error.code in ("NoSuchKey", "404")


def _do(store: DatasetStore, ledger: Ledger, op: Operation, ref: str, to: str | None) -> str | None:
    """Make one move, recorded before and after; return why it failed for good, or ``None``.

    A move that cannot ever be made (its file gone, its destination taken) closes its
    intent with a ``failed`` note: the ledger is never left with an intent no run can
    complete. Any other error (a transient one) leaves the intent open for the next run.
    """
    ledger.note("move", op=op, ref=ref, to=to, phase="intent")
    try:
        if op == "remove":  # the quarantined copy when there is one, else the image
            store.delete(to if to is not None else ref)
        elif op == "quarantine":
            assert to is not None
            _refuse_taken(store, ref, to)
            store.move(ref, to)
        else:  # restore: back from where it was quarantined
            assert to is not None
            _refuse_taken(store, to, ref)
            store.move(to, ref)
    except (OSError, SafegenError) as error:
        if not _gone(error):
            raise
        reason = "destination_exists" if isinstance(error, DatasetError) else "file_gone"
        ledger.note("move", op=op, ref=ref, to=to, phase="failed", reason=reason)
        return reason
    ledger.note("move", op=op, ref=ref, to=to, phase="done")
    return None


def _complete(store: DatasetStore, ledger: Ledger) -> list[tuple[str, str]]:
    """Finish every move a crash interrupted (each is idempotent); return the failures."""
    _, pending = _state(ledger, store)
    failures = []
    for note in pending:
        why = _do(store, ledger, note["op"], note["ref"], note.get("to"))
        if why is not None:
            failures.append((str(note["ref"]), why))
    return failures


def _finish(done: int, failures: list[tuple[str, str]]) -> int:
    if failures:
        raise DatasetMoveError(done, tuple(failures))
    return done


def _check_report(store: DatasetStore, ledger: Ledger, report: DatasetReport) -> None:
    _bind(store, ledger)
    if report.dataset != store.name:
        raise DatasetError(f"the report is of another dataset ({report.dataset})")


def quarantine(store: DatasetStore, ledger: Ledger, report: DatasetReport, prefix: str) -> int:
    """Move every flagged image under the dataset's own sub-prefix of *prefix*.

    Return how many moved in this call. Write the report first (:func:`write_report`).
    Each move is recorded before and after; moves a crash interrupted are completed first.
    Nothing is ever overwritten; datasets quarantined to one *prefix* do not mix (each has
    its own sub-prefix). Undo with :func:`restore`.

    :raises DatasetError: the ledger or the report is of another dataset.
    :raises DatasetMoveError: some moves failed for good (the others were made).
    """
    _check_report(store, ledger, report)
    where = _namespace(store, prefix)
    for place in (prefix, where):  # refuse an overlapping prefix before any move
        store.target(store.info_ref(), place)
    failures = _complete(store, ledger)
    settled, _ = _state(ledger, store)
    moved = 0
    for record in report.images_flagged:
        last = settled.get(record.ref)
        if not _inside(store, record.ref):
            continue
        if last is not None and last.get("op") in ("quarantine", "remove"):
            continue
        why = _do(store, ledger, "quarantine", record.ref, store.target(record.ref, where))
        if why is None:
            moved += 1
        else:
            failures.append((record.ref, why))
    return _finish(moved, failures)


def remove(store: DatasetStore, ledger: Ledger, report: DatasetReport) -> int:
    """Delete every flagged image (no undo); return how many in this call.

    Write the report first (:func:`write_report`): it is the only trace of what was removed.
    A quarantined image's copy is deleted; the remove is recorded under the image's ref,
    so a second call removes (and counts) nothing again.

    :raises DatasetError: the ledger or the report is of another dataset.
    :raises DatasetMoveError: some deletes failed for good (the others were made).
    """
    _check_report(store, ledger, report)
    failures = _complete(store, ledger)
    settled, _ = _state(ledger, store)
    removed = 0
    for record in report.images_flagged:
        last = settled.get(record.ref)
        if not _inside(store, record.ref):
            continue
        if last is not None and last.get("op") == "remove":
            continue
        held = str(last["to"]) if last is not None and last.get("op") == "quarantine" else None
        why = _do(store, ledger, "remove", record.ref, held)
        if why is None:
            removed += 1
        else:
            failures.append((record.ref, why))
    return _finish(removed, failures)


def restore(store: DatasetStore, ledger: Ledger) -> int:
    """Move every quarantined image of this dataset back where it was; return how many.

    Completes any move a crash interrupted first, so an interrupted quarantine is undone
    as a whole. An image that was removed, or whose place is taken by a new file (never
    overwritten), is a failure of its own; the others are restored.

    :raises DatasetError: the ledger is of another dataset.
    :raises DatasetMoveError: some images could not be restored (the others were).
    """
    _bind(store, ledger)
    failures = _complete(store, ledger)
    settled, _ = _state(ledger, store)
    restored = 0
    for ref, note in sorted(settled.items()):
        if note.get("op") == "remove" and note.get("to") is not None:
            failures.append((ref, "removed"))
        elif note.get("op") == "quarantine":
            why = _do(store, ledger, "restore", ref, str(note["to"]))
            if why is None:
                restored += 1
            else:
                failures.append((ref, why))
    return _finish(restored, failures)
