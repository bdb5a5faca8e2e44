"""``safegen batch SOURCE`` and ``safegen dataset check|restore``: moderation at scale.

``batch`` runs an engine (client-side, or Ray) over a directory, an S3 prefix or a
bulk-analysis manifest, into a ledger (:mod:`safegen.batch`); ``dataset`` is the
training-data filter (:mod:`safegen.dataset`). Both resume from their ledger.
"""

from __future__ import annotations

import argparse
import functools
import os
from pathlib import Path
from typing import Any

from safegen.cli._common import (
    EXIT_ALLOWED,
    EXIT_ERROR,
    EXIT_FLAGGED,
    ChosenPolicy,
    add_backend_options,
    choose_policy,
    emit_json,
    image_moderator,
)
from safegen.cli._files import CommandError, printable

_MANIFEST_SUFFIXES = (".jsonl", ".manifest")


def s3_client(args: argparse.Namespace) -> Any:
    """Return a boto3 S3 client for ``--region`` (tests replace this)."""
    import boto3

    factory: Any = boto3.client
    return factory("s3", region_name=getattr(args, "region", None))


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser], epilog: str) -> None:
    """Add ``safegen batch`` and ``safegen dataset`` to the top-level subcommands."""
    batch = commands.add_parser(
        "batch",
        help="moderate a directory, an S3 prefix or a manifest into a ledger (resumable)",
        description="Moderate every image of SOURCE: a directory, s3://bucket/prefix, or a "
        'bulk-analysis manifest (JSON Lines of {"source-ref": "s3://..."}, local or in S3). '
        "Each outcome is appended to --ledger, which is the checkpoint: a re-run skips "
        "what is done and retries what failed for a transient cause.",
        epilog=epilog,
    )
    batch.set_defaults(run=run_batch)
    batch.add_argument("source", metavar="SOURCE")
    batch.add_argument("--manifest", action="store_true", help="SOURCE is a manifest")
    _common(batch, default_ledger="safegen-batch.jsonl")
    batch.add_argument(
        "--engine", choices=["client", "ray"], default="client", help="who runs it (client)"
    )

    dataset = commands.add_parser(
        "dataset",
        help="check a fine-tuning dataset: flag, quarantine or remove unsafe images",
        description="The training-data filter: moderate a dataset's images and its "
        "dataset_info.json instance prompt.",
        epilog=epilog,
    )
    actions = dataset.add_subparsers(dest="dataset_command", required=True, metavar="ACTION")
    check = actions.add_parser(
        "check",
        help="moderate every image and the instance prompt; report (and act)",
        description="Moderate every image of DATASET (a directory or s3://bucket/prefix) and "
        "its instance prompt, write the report (--report), then act: flag only (the "
        "default), --quarantine PREFIX (moved, reversible with 'dataset restore'), or "
        "--remove --yes (deleted after the report is written). Every move is recorded in "
        "the ledger before and after, so an interrupted run is completed by running it again.",
        epilog=epilog,
    )
    check.set_defaults(run=run_dataset_check)
    check.add_argument("dataset", metavar="DATASET")
    _common(check, default_ledger=None)
    check.add_argument(
        "--report", default="safegen-dataset-report.json", help="the report (JSON), written first"
    )
    act = check.add_mutually_exclusive_group()
    act.add_argument("--quarantine", metavar="PREFIX", help="move flagged images under PREFIX")
    act.add_argument("--remove", action="store_true", help="delete flagged images (with --yes)")
    check.add_argument("--yes", action="store_true", help="confirm --remove")

    back = actions.add_parser(
        "restore",
        help="move quarantined images back",
        description="Move every image a 'dataset check --quarantine' moved back where it "
        "was, completing first any move an interruption left half done.",
        epilog=epilog,
    )
    back.set_defaults(run=run_dataset_restore)
    back.add_argument("dataset", metavar="DATASET")
    _common(back, default_ledger=None)


def _common(parser: argparse.ArgumentParser, *, default_ledger: str | None) -> None:
    shown = default_ledger or "DATASET.safegen-dataset.jsonl, beside the dataset: its own"
    parser.add_argument(
        "--ledger", default=default_ledger, help=f"results and checkpoint ({shown})"
    )
    parser.add_argument("--workers", type=_positive, default=4, help="images at a time (4)")
    parser.add_argument(
        "--per-second", type=float, default=None, help="at most this many checks a second"
    )
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS
    )
    add_backend_options(parser)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _needs_s3(*where: str) -> bool:
    return any(value.startswith("s3://") for value in where)


def _open_ledger(args: argparse.Namespace, chosen: ChosenPolicy, engine: str, s3: Any) -> Any:
    if args.ledger.startswith("s3://"):
        from safegen.aws.s3 import open_ledger

        return open_ledger(s3, args.ledger, policy=chosen.policy, engine=engine)
    from safegen.batch import Ledger

    return Ledger.open(args.ledger, policy=chosen.policy, engine=engine)


def _engine(args: argparse.Namespace, chosen: ChosenPolicy, s3: Any) -> Any:
    from safegen.batch import ClientEngine

    moderator = image_moderator(args, chosen)
    fetch = None
    if args.backend == "local" and s3 is not None:
        from safegen.aws.s3 import fetcher

        fetch = fetcher(s3)
    if getattr(args, "engine", "client") == "ray":
        from safegen.batch.ray import RayEngine

        fetch_build = None if fetch is None else functools.partial(_actor_fetch, args)
        build = functools.partial(_actor_moderator, args)
        return RayEngine(build, workers=args.workers, fetch=fetch_build)
    return ClientEngine(moderator, workers=args.workers, per_second=args.per_second, fetch=fetch)


def _actor_moderator(args: argparse.Namespace) -> Any:
    """Build the moderator inside a Ray actor (a picklable recipe, not a pickled model)."""
    return image_moderator(args, choose_policy(args.policy, backend=args.backend))


def _actor_fetch(args: argparse.Namespace) -> Any:
    """Build the S3 reader inside a Ray actor."""
    from safegen.aws.s3 import fetcher

    return fetcher(s3_client(args))


def _items(args: argparse.Namespace, s3: Any) -> Any:
    from safegen.batch import directory_items, manifest_file, parse_s3_url

    source: str = args.source
    manifest = args.manifest or source.endswith(_MANIFEST_SUFFIXES)
    if source.startswith("s3://"):
        from safegen.aws.s3 import manifest_object_items, prefix_items

        if manifest:
            return manifest_object_items(s3, source)
        try:
            bucket, prefix = parse_s3_url(source)
        except ValueError as error:
            raise CommandError(f"{printable(source)}: {error}") from None
        return prefix_items(s3, bucket, prefix)
    if manifest:
        if not os.path.isfile(source):
            raise CommandError(f"{printable(source)}: no such manifest file")
        return manifest_file(source)
    if not Path(source).is_dir():
        raise CommandError(f"{printable(source)}: not a directory (nor s3://, nor a manifest)")
    return directory_items(source)


def _exit(summary: Any, flagged: tuple[Any, ...]) -> int:
    """Exit code of the whole ledger: every settled item, this run's and earlier runs'.

    3 when something could not be checked (this run, or a failed record left by an earlier
    one), else 1 when anything is blocked or for review, else 0.
    """
    if summary.failed or any(record.outcome == "failed" for record in flagged):
        return EXIT_ERROR
    return EXIT_FLAGGED if flagged or summary.flagged else EXIT_ALLOWED


def run_batch(args: argparse.Namespace) -> int:
    """Run an engine over SOURCE into the ledger; print the summary."""
    chosen = choose_policy(args.policy, backend=args.backend)
    s3 = s3_client(args) if _needs_s3(args.source, args.ledger) else None
    engine = _engine(args, chosen, s3)  # a configuration error touches no ledger
    items = _items(args, s3)
    with _open_ledger(args, chosen, args.engine, s3) as ledger:
        if not args.json:
            print(f"policy: {chosen}")
        summary = engine.run(items, ledger)
        flagged = ledger.flagged()
    total = {
        "flagged": len(flagged),
        "failed": sum(record.outcome == "failed" for record in flagged),
    }
    if args.json:
        emit_json(
            {
                "ledger": args.ledger,
                "policy": chosen.to_dict(),
                **summary.to_dict(),
                "ledger_total": total,
            }
        )
    else:
        print(summary.render())
        print(
            f"ledger: {printable(args.ledger)} (in all: {total['flagged']} flagged, "
            f"{total['failed']} not checked)"
        )
    return _exit(summary, flagged)


def _store(args: argparse.Namespace, s3: Any) -> Any:
    if args.dataset.startswith("s3://"):
        from safegen.aws.s3 import S3Dataset

        try:
            return S3Dataset(s3, args.dataset)
        except ValueError as error:
            raise CommandError(f"{printable(args.dataset)}: {error}") from None
    from safegen.dataset import LocalDataset

    return LocalDataset(args.dataset)


def _dataset_ledger(args: argparse.Namespace, store: Any) -> None:
    """Default the ledger to the dataset's own, and keep our files out of the dataset.

    A trainer reads every file of the dataset's folder: a ledger or a report written into
    it would be trained on (and found by the next check), so it is refused.
    """
    from safegen.dataset import DatasetError, default_ledger

    if args.ledger is None:
        try:
            args.ledger = default_ledger(store)
        except DatasetError as error:
            raise CommandError(str(error)) from None
    if args.dataset.startswith("s3://"):
        return
    root = store.root + os.sep
    for option, path in (("--ledger", args.ledger), ("--report", getattr(args, "report", None))):
        if path and not path.startswith("s3://") and os.path.realpath(path).startswith(root):
            raise CommandError(f"{option} is inside the dataset (a trainer would read it)")


def run_dataset_check(args: argparse.Namespace) -> int:
    """Check a dataset; write the report; then flag, quarantine or remove."""
    from safegen.dataset import check_dataset, quarantine, remove, write_report
    from safegen.prompt import PromptModerator

    if args.remove and not args.yes:
        raise CommandError(
            "--remove deletes the flagged images and cannot be undone: add --yes (the report "
            "is written first), or use --quarantine PREFIX instead"
        )
    chosen = choose_policy(args.policy, backend=args.backend)
    where = (args.dataset, args.ledger or "", args.quarantine or "")
    s3 = s3_client(args) if _needs_s3(*where) else None
    store = _store(args, s3)
    _dataset_ledger(args, store)
    if s3 is None and _needs_s3(args.ledger):
        s3 = s3_client(args)
    engine = _engine(args, chosen, s3)
    prompts = PromptModerator.from_policy(chosen.policy)
    if args.quarantine:
        store.target(store.info_ref(), args.quarantine)  # refuse a bad prefix before any work
    with _open_ledger(args, chosen, "client", s3) as ledger:
        if not args.json:
            print(f"policy: {chosen}")
        report = check_dataset(store, engine=engine, prompts=prompts, ledger=ledger)
        write_report(report, args.report)
        moved = removed = 0
        if args.quarantine:
            moved = quarantine(store, ledger, report, args.quarantine)
        elif args.remove:
            removed = remove(store, ledger, report)
    if args.json:
        emit_json({**report.to_dict(), "quarantined": moved, "removed": removed})
    else:
        _print_report(report, args, moved, removed)
    if report.summary.failed or any(r.outcome == "failed" for r in report.flagged):
        return EXIT_ERROR
    return EXIT_ALLOWED if report.clean else EXIT_FLAGGED


def _print_report(report: Any, args: argparse.Namespace, moved: int, removed: int) -> None:
    print(report.summary.render())
    prompt = report.prompt
    if prompt is None:
        print("instance prompt: no dataset_info.json")
    else:
        why = f" ({', '.join(prompt.labels) or prompt.error})" if prompt.action != "allow" else ""
        print(f"instance prompt: {prompt.action}{printable(why)}")
    for record in report.images_flagged[:20]:
        reason = ", ".join(record.labels) or record.error or ""
        print(f"{str(record.action).upper():<7} {printable(record.ref)}  {printable(reason)}")
    if len(report.images_flagged) > 20:
        print(f"... and {len(report.images_flagged) - 20} more in {printable(args.report)}")
    print(f"report: {printable(args.report)}")
    if args.quarantine:
        print(f"quarantined {moved} images under {printable(args.quarantine)}")
    elif args.remove:
        print(f"removed {removed} images")


def run_dataset_restore(args: argparse.Namespace) -> int:
    """Move quarantined images back."""
    from safegen.dataset import restore

    chosen = choose_policy(args.policy, backend=args.backend)
    s3 = s3_client(args) if _needs_s3(args.dataset, args.ledger or "") else None
    store = _store(args, s3)
    _dataset_ledger(args, store)
    with _open_ledger(args, chosen, "client", s3) as ledger:
        restored = restore(store, ledger)
    if args.json:
        emit_json({"restored": restored, "ledger": args.ledger})
    else:
        print(f"restored {restored} images")
    return EXIT_ALLOWED
