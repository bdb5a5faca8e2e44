"""``safegen image FILE...`` and ``safegen scan DIR``: moderate pictures on disk."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import TextIO

from safegen.cli._common import EXIT_ERROR, emit_json, exit_code, image_moderator
from safegen.decision import Action
from safegen.image import ImageVerdict

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


def print_verdict(name: str, verdict: ImageVerdict, out: TextIO) -> None:
    """Two lines: what was decided about *name* and by whom, then why."""
    who = verdict.backend or "?"
    if verdict.escalation is not None:
        who += f", asked because {verdict.escalation}"
    label = "ERROR" if verdict.failed else verdict.action.value.upper()
    out.write(f"{label:<7} {name}  ({who}, {verdict.seconds * 1000:.0f} ms)\n")
    out.write(f"        {explain(verdict)}\n")


def record(path: str, verdict: ImageVerdict) -> dict[str, object]:
    """Return the JSON Lines record of one image."""
    return {"path": path, **verdict.to_dict()}


def run_image(args: argparse.Namespace) -> int:
    """Moderate the files named on the command line, in order."""
    moderator = image_moderator(args)
    actions, failures = [], 0
    for name in args.files:
        verdict = moderator.moderate(Path(name).read_bytes())
        actions.append(verdict.action)
        failures += verdict.failed
        if args.json:
            emit_json(record(name, verdict))
        else:
            print_verdict(name, verdict, sys.stdout)
    return exit_code(actions, failures=failures)


def _images_under(root: Path) -> Iterator[Path]:
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for file in sorted(files):
            if Path(file).suffix.lower() in IMAGE_SUFFIXES:
                yield Path(folder) / file


def _already_done(output: Path) -> set[str]:
    """Paths recorded by an earlier run, so that a re-run resumes where it stopped."""
    done: set[str] = set()
    if not output.exists():
        return done
    with output.open(encoding="utf-8") as f:
        for line in f:
            try:
                done.add(str(json.loads(line)["path"]))
            except (ValueError, KeyError, TypeError):
                continue  # a line cut short by an interrupted run: do that image again
    return done


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
    """Moderate every image under a directory, appending one JSON line per image."""
    root = Path(args.directory)
    if not root.is_dir():
        raise NotADirectoryError(20, "not a directory", args.directory)
    output = Path(args.output)
    done = _already_done(output)
    found = list(_images_under(root))
    todo = [path for path in found if str(path) not in done]
    skipped = len(found) - len(todo)
    moderator = image_moderator(args)
    counts: Counter[str] = Counter()
    progress = _Progress(len(todo), sys.stderr)

    def check(path: Path) -> tuple[Path, ImageVerdict]:
        return path, moderator.moderate(path.read_bytes())  # read in the worker: bounded memory

    with output.open("a", encoding="utf-8") as sink, ThreadPoolExecutor(args.workers) as pool:
        pending: set[Future[tuple[Path, ImageVerdict]]] = set()
        queue = iter(todo)
        while True:
            for path in queue:  # keep at most 2x workers images in flight
                pending.add(pool.submit(check, path))
                if len(pending) >= 2 * args.workers:
                    break
            if not pending:
                break
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:  # only this thread writes: no lock needed
                path, verdict = future.result()
                counts["error" if verdict.failed else verdict.action.value] += 1
                emit_json(record(str(path), verdict), sink)
                sink.flush()  # an interrupted scan keeps everything finished so far
                progress.step(counts)
    progress.close()
    _summary(counts, len(todo), skipped, output, as_json=args.json)
    if counts["error"]:
        return EXIT_ERROR
    return exit_code([Action(k) for k in counts if k != "error"])


def _summary(
    counts: Counter[str], scanned: int, skipped: int, output: Path, *, as_json: bool
) -> None:
    if as_json:
        emit_json(
            {
                "scanned": scanned,
                "skipped": skipped,
                "output": str(output),
                **{k: counts[k] for k in ("allow", "review", "block", "error")},
            }
        )
        return
    print(f"scanned {scanned} images; skipped {skipped} already in {output}")
    print(f"{'action':<8}{'images':>8}")
    for key in ("allow", "review", "block", "error"):
        print(f"{key:<8}{counts[key]:>8}")
