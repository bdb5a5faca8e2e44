"""``safegen image FILE...`` and ``safegen scan DIR``: moderate pictures on disk."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from safegen.cli._common import (
    EXIT_ERROR,
    ChosenPolicy,
    choose_policy,
    emit_json,
    exit_code,
    image_moderator,
)
from safegen.cli._files import (
    CommandError,
    Found,
    Judged,
    PathKeys,
    UnreadableFileError,
    files_under,
    open_results,
    path_fields,
    printable,
    read_regular,
)
from safegen.cli._output import check_reader
from safegen.decision import Action
from safegen.image import ImageVerdict

if TYPE_CHECKING:
    from safegen.cascade import Cascade
    from safegen.image import ImageModerator

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff"})


def explain(verdict: ImageVerdict) -> str:
    """Say why the verdict is what it is, in one line."""
    if verdict.error is not None:
        return f"could not be checked: {verdict.error}"
    decision = verdict.decision
    if decision is None:  # pragma: no cover - a verdict without an error has a decision
        return ""
    reasons = [str(v) for v in decision.violations]
    if decision.decided_by is not None:
        reasons.insert(0, f"decided by the {decision.decided_by} content-type rule")
    gap = decision.not_evaluated
    if gap is not None:
        names = [c.name for c in gap.categories]
        shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        reasons.append(f"{gap.action.value}: {verdict.backend} cannot see {shown} (not_evaluated)")
    if not reasons:
        labels = verdict.report.labels if verdict.report is not None else ()
        top = max(labels, key=lambda label: label.confidence, default=None)
        highest = f" (highest: {top.name} {top.confidence:.1f})" if top is not None else ""
        return f"nothing reached a threshold{highest}"
    more = f" (+{len(reasons) - 1} more; --json for all)" if len(reasons) > 1 else ""
    return reasons[0] + more


def gap_decided(verdict: ImageVerdict) -> bool:
    """Whether what the backend cannot see (``not_evaluated``) made the verdict what it is.

    True when the gap's action is the verdict's, stricter than ALLOW, and no violation or
    content-type rule reached it on its own.
    """
    decision = verdict.decision
    if verdict.failed or decision is None or decision.not_evaluated is None:
        return False
    action = decision.not_evaluated.action
    return (
        action is decision.action
        and action is not Action.ALLOW
        and decision.decided_by is None
        and all(v.action.severity < action.severity for v in decision.violations)
    )


def gap_hint(verdict: ImageVerdict, chosen: ChosenPolicy | None) -> str | None:
    """One line on how to accept or close the gap, when the gap decided the verdict.

    Accepting the gap never means a looser policy: a file gets ``not_evaluated = "allow"``
    in that file; a preset is copied first (``safegen policy show NAME > mine.toml``), so
    its thresholds stay.
    """
    if not gap_decided(verdict):
        return None
    backend = verdict.backend or "the backend"
    if chosen is not None and not chosen.preset:
        accept = f'not_evaluated = "allow" in {chosen.name}'
    else:
        name = chosen.name if chosen is not None else "general"
        accept = f'safegen policy show {name} > mine.toml, set not_evaluated = "allow" in it'
    return (
        f"to accept what {backend} cannot see: {accept}; to check it: --backend cascade or "
        "aws; or exclude those categories"
    )


def print_verdict(
    name: str, verdict: ImageVerdict, out: TextIO, chosen: ChosenPolicy | None = None
) -> None:
    """Two lines: what was decided about *name* and by whom, then why.

    A third line, when what the backend cannot see decided the verdict, says how to accept
    or close that gap (:func:`gap_hint`). The name and the reasons are printed escaped
    (:func:`printable`), so that no file name can forge a line.
    """
    who = verdict.backend or "not checked"
    if verdict.escalation is not None:
        who += f", asked because {verdict.escalation}"
    label = "ERROR" if verdict.failed else verdict.action.value.upper()
    out.write(
        f"{label:<7} {printable(name)}  ({printable(who)}, {verdict.seconds * 1000:.0f} ms)\n"
    )
    out.write(f"        {printable(explain(verdict))}\n")
    hint = gap_hint(verdict, chosen)
    if hint is not None:
        out.write(f"        {printable(hint)}\n")


def record(
    path: str, verdict: ImageVerdict, chosen: ChosenPolicy | None = None
) -> dict[str, object]:
    """Return the JSON Lines record of one image (``path_base64`` too for a non-UTF-8 name).

    With *chosen*, the record says which policy judged it (``policy``: name and source).
    """
    extra = {} if chosen is None else {"policy": chosen.to_dict()}
    return {**path_fields(path), **verdict.to_dict(), **extra}


def not_checked(reason: str) -> ImageVerdict:
    """Return the verdict of a file that could not be checked: blocked, with the reason."""
    return ImageVerdict(Action.BLOCK, error=reason)


def check_file(moderator: ImageModerator | Cascade, found: Found, *, limit: int) -> ImageVerdict:
    """Read and moderate one file; whatever goes wrong is in the verdict, never raised."""
    if found.problem is not None:
        return not_checked(found.problem)
    try:
        data = read_regular(found.path, limit=limit)
    except UnreadableFileError as error:
        return not_checked(str(error))
    try:
        return moderator.moderate(data)
    except Exception as error:  # a moderator that raises must not lose the other files
        return not_checked(f"the check failed: {type(error).__name__}: {error}")


def run_image(args: argparse.Namespace) -> int:
    """Moderate the files named on the command line, in order; one failure stops nothing.

    The text output begins with the policy in force (``policy: offline (preset, the
    default)``); each JSON record carries it.
    """
    chosen = choose_policy(args.policy, backend=args.backend)
    moderator = image_moderator(args, chosen)
    if not args.json:
        print(f"policy: {chosen}")
    actions, failures = [], 0
    for name in args.files:
        check_reader()  # nobody reads the output any more (| head): stop before the next
        verdict = check_file(moderator, Found(name), limit=args.max_bytes)
        actions.append(verdict.action)
        failures += verdict.failed
        if args.json:
            emit_json(record(name, verdict, chosen))
        else:
            print_verdict(name, verdict, sys.stdout, chosen)
    return exit_code(actions, failures=failures)


class _Progress:
    """A one-line progress bar on a terminal; silent anywhere else."""

    def __init__(self, total: int, stream: TextIO) -> None:
        self.total, self.stream, self.done = total, stream, 0
        self.enabled = stream.isatty()
        self.started = time.monotonic()

    def step(self, counts: Counter[str]) -> None:
        self.done += 1
        if not self.enabled:
            return
        width = 30
        filled = width * self.done // max(1, self.total)
        rate = self.done / max(1e-9, time.monotonic() - self.started)
        tally = " ".join(f"{k} {counts[k]}" for k in ("allow", "review", "block", "error"))
        self.stream.write(
            f"\r[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} "
            f"{rate:.1f}/s  {tally}"
        )
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")


def run_scan(args: argparse.Namespace) -> int:
    """Moderate every image under a directory, appending one JSON line per image.

    Each record carries the policy that judged it (name, source and fingerprint); a re-run
    with another policy (by content, see :func:`_refuse_another_policy`) is refused rather
    than skipping files it never judged. The text output begins with the policy line.

    Every file becomes a record: one that cannot be read (a dangling link, a FIFO, a file
    over ``--max-bytes``, ...) is recorded as not checked, and the scan goes on. Records name
    files by their canonical path (:class:`PathKeys`), so a re-run skips what is done
    however the directory is spelled; the output is locked for the whole run, so a second
    scan into it fails at once instead of doing the same work twice.
    """
    if not Path(args.directory).is_dir():
        raise NotADirectoryError(20, "not a directory", args.directory)
    root = os.fsdecode(os.path.realpath(args.directory))
    output = Path(args.output)
    chosen = choose_policy(args.policy, backend=args.backend)
    moderator = image_moderator(args, chosen)  # a configuration error touches no results file
    keys = PathKeys()
    counts: Counter[str] = Counter()

    def check(item: Found) -> tuple[Found, ImageVerdict]:
        # Read in the worker: at most 2x workers images in memory.
        return item, check_file(moderator, item, limit=args.max_bytes)

    with open_results(output, keys) as (done, sink), ThreadPoolExecutor(args.workers) as pool:
        _refuse_another_policy(done, chosen, output)
        if not args.json:
            print(f"policy: {chosen}")  # before any image, flushed: | head -1 has it at once
        found = list(files_under(root, IMAGE_SUFFIXES))
        todo = [item for item in found if keys(item.path) not in done]
        skipped = len(found) - len(todo)
        progress = _Progress(len(todo), sys.stderr)
        pending: set[Future[tuple[Found, ImageVerdict]]] = set()
        queue = iter(todo)
        while True:
            check_reader()  # nobody reads the output any more (| head): stop now
            for item in queue:  # keep at most 2x workers images in flight
                pending.add(pool.submit(check, item))
                if len(pending) >= 2 * args.workers:
                    break
            if not pending:
                break
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:  # only this thread writes: no lock needed
                item, verdict = future.result()
                counts["error" if verdict.failed else verdict.action.value] += 1
                emit_json(record(item.path, verdict, chosen), sink)
                sink.flush()  # an interrupted scan keeps everything finished so far
                progress.step(counts)
    progress.close()
    _summary(counts, len(todo), skipped, output, chosen, as_json=args.json)
    if counts["error"]:
        return EXIT_ERROR
    return exit_code([Action(k) for k in counts if k != "error"])


def _refuse_another_policy(done: dict[bytes, Judged], chosen: ChosenPolicy, output: Path) -> None:
    """Refuse to resume a results file whose records another policy judged.

    Records are skipped by file, so resuming with another policy would silently judge
    nothing. The policy is compared by content (its fingerprint), not by name: an edited
    file of the same name is another policy. A record that does not say (an earlier
    version's) counts as another policy.

    :raises CommandError: a record was judged by another policy (one line: which, and what
        to do).
    """
    other = next((judged for judged in done.values() if judged.sha256 != chosen.sha256), None)
    if other is None:
        return
    count = sum(judged.sha256 != chosen.sha256 for judged in done.values())
    same_name = other.policy is not None and other.policy.get("name") == chosen.name
    which = f"{other}, as it was then" if same_name else str(other)
    raise CommandError(
        f"{printable(str(output))} holds {count} results judged by another policy ({which}), "
        f"not {chosen}: they would be skipped unjudged; choose another --output (or resume "
        "with the policy they were judged by)"
    )


def _summary(
    counts: Counter[str],
    scanned: int,
    skipped: int,
    output: Path,
    chosen: ChosenPolicy,
    *,
    as_json: bool,
) -> None:
    if as_json:
        emit_json(
            {
                "scanned": scanned,
                "skipped": skipped,
                "output": path_fields(str(output))["path"],
                "policy": chosen.to_dict(),
                **{k: counts[k] for k in ("allow", "review", "block", "error")},
            }
        )
        return
    print(f"scanned {scanned} images; skipped {skipped} already in {printable(str(output))}")
    print(f"{'action':<8}{'images':>8}")
    for key in ("allow", "review", "block", "error"):
        print(f"{key:<8}{counts[key]:>8}")
