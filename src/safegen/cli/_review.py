"""``safegen review``: serve the review page, and list, approve or reject from a script.

Credentials never come from the command line (``ps`` would show them): ``--token-file`` or
the environment (``SAFEGEN_REVIEW_TOKEN_FILE``, ``SAFEGEN_REVIEW_TOKEN``). The web stack is
imported only when ``serve`` runs, so the rest of the CLI works without the ``review`` extra.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from safegen.cli._common import EXIT_ALLOWED
from safegen.cli._files import CommandError, printable
from safegen.errors import ConfigurationError
from safegen.review.config import CONFIG_NAME
from safegen.review.events import AssetStatus

if TYPE_CHECKING:
    from safegen.review.audit import AuditTrail
    from safegen.review.store import ReviewStore

__all__ = ["register"]

DEFAULT_AUDIT = "audit.sqlite3"
"""The audit trail's file in the store's directory when ``--audit`` is not given."""


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser], epilog: str) -> None:
    """Add ``safegen review`` and its actions to the top-level subcommands."""
    review = commands.add_parser(
        "review",
        help="the review store: serve the reviewers' page, list, approve, reject",
        description="Work with a review store (safegen.review): serve the page reviewers use, "
        "or list, approve and reject images from a script.",
        epilog=epilog,
    )
    actions = review.add_subparsers(dest="review_command", required=True, metavar="ACTION")

    def action(name: str, help: str, run: object, description: str) -> argparse.ArgumentParser:
        # No abbreviations: a mistyped --token SECRET must not be read as --token-file.
        sub = actions.add_parser(
            name, help=help, description=description, epilog=epilog, allow_abbrev=False
        )
        sub.set_defaults(run=run)
        sub.add_argument("--store", metavar="DIR", help="the store's directory")
        sub.add_argument(
            "--config",
            metavar="FILE",
            help="the store's configuration, the one the application reads (TOML: where the "
            "store is, its CloudFront distribution, SNS topic, EventBridge bus; default: "
            f"DIR/{CONFIG_NAME} if it exists)",
        )
        sub.add_argument(
            "--no-hooks",
            action="store_true",
            help="decide on a store that has no configuration, knowing that no cache is purged "
            "and nobody is notified (refused otherwise)",
        )
        sub.add_argument(
            "--audit",
            metavar="FILE",
            help=f"the audit trail: SQLite, or JSON Lines if it ends .jsonl (default: "
            f"DIR/{DEFAULT_AUDIT}, or DIR/audit.jsonl if only that exists)",
        )
        sub.add_argument(
            "--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS
        )
        return sub

    serve = action(
        "serve",
        "serve the review page (needs safegen[review])",
        run_serve,
        "Serve the review page with uvicorn. Reviewers sign in with the credentials in "
        "--token-file, SAFEGEN_REVIEW_TOKEN_FILE or SAFEGEN_REVIEW_TOKEN (never given on the "
        "command line); without any, it refuses to start. Binds 127.0.0.1 by default: put it "
        "behind a TLS proxy to reach it from elsewhere.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="the address to bind (127.0.0.1)")
    serve.add_argument("--port", type=_port, default=8000, help="the port (8000)")
    serve.add_argument(
        "--token-file",
        metavar="FILE",
        help="the reviewers' credentials: one shared token, or name:secret lines",
    )
    serve.add_argument(
        "--access-log", action="store_true", help="log each request (paths and keys, no bodies)"
    )

    listing = action(
        "list",
        "list the images with a status",
        run_list,
        "List the images with a status, one line each (JSON Lines with --json).",
    )
    listing.add_argument(
        "--status", choices=[s.value for s in AssetStatus], default=AssetStatus.PENDING.value
    )
    listing.add_argument("--limit", type=_positive, default=50, help="at most this many (50)")
    listing.add_argument("--json", action="store_true", help="print JSON Lines")

    for name, verb in (("approve", "Approve"), ("reject", "Reject")):
        decide = action(
            name,
            f"{name} an image",
            run_decide,
            f"{verb} the image under KEY, recording --by and --reason in the audit trail.",
        )
        decide.set_defaults(decision=name)
        decide.add_argument("key", metavar="KEY")
        decide.add_argument("--by", required=True, help="who decides (the audit's actor)")
        decide.add_argument("--reason", help="why, in a sentence")
        decide.add_argument("--json", action="store_true", help="print the asset as JSON")

    hashing = actions.add_parser(
        "hash-password",
        help="hash a reviewer's password for a credentials file",
        description="Read a password (from the terminal, not echoed, or one line of standard "
        "input) and print a scrypt hash to put after 'name:' in the credentials file.",
        epilog=epilog,
    )
    hashing.set_defaults(run=run_hash_password)
    hashing.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS
    )


def _port(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 1-65535, got {value}")
    return value


def _positive(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 1000:
        raise argparse.ArgumentTypeError(f"must be 1-1000, got {value}")
    return value


def _open(args: argparse.Namespace, *, decides: bool) -> tuple[ReviewStore, AuditTrail | None]:
    """Open the store as its configuration says, as the application does.

    A store opened without the application's hooks would reject an image that stays in the
    CDN's cache and that nobody hears about: without a configuration, a command that decides
    is refused unless ``--no-hooks`` says the store has none.
    """
    from safegen.review.audit import AuditTrail
    from safegen.review.config import StoreConfig
    from safegen.review.store import ReviewStore

    directory = None if args.store is None else Path(args.store)
    if directory is not None and not directory.is_dir():
        raise CommandError(f"no store directory: {printable(str(directory))}")
    config_path = Path(args.config) if args.config else None
    if config_path is None and directory is not None and (directory / CONFIG_NAME).is_file():
        config_path = directory / CONFIG_NAME
    if config_path is None and directory is None:
        raise CommandError("name the store: --store DIR or --config FILE")
    if config_path is not None and args.no_hooks:
        raise CommandError(
            f"--no-hooks with a configuration ({printable(str(config_path))}): the configuration "
            "says which hooks the store has"
        )
    if config_path is None:
        assert directory is not None
        if decides and not args.no_hooks:
            raise CommandError(
                f"the store has no configuration ({CONFIG_NAME} in its directory, or --config): "
                "a decision made here would purge no CDN cache and notify nobody, whatever the "
                "application's own store does. Write the configuration the application reads "
                "(docs: The review page), or pass --no-hooks if the store has no hooks"
            )
        store = ReviewStore.embedded(directory, audit=_default_audit(args, directory))
        return store, store.audit if isinstance(store.audit, AuditTrail) else None
    config = StoreConfig.from_file(config_path)
    if directory is not None and (
        config.directory is None or Path(config.directory).resolve() != directory.resolve()
    ):
        raise CommandError(f"--store is not the directory {printable(str(config_path))} configures")
    audit = _audit_at(Path(args.audit)) if args.audit else None
    if audit is None and config.audit is None and config.directory is not None:
        audit = _default_audit(args, Path(config.directory))
    store = config.open(audit=audit)
    return store, store.audit if isinstance(store.audit, AuditTrail) else None


def _audit_at(path: Path) -> AuditTrail:
    from safegen.review.audit import AuditTrail

    return AuditTrail.jsonl(path) if path.suffix == ".jsonl" else AuditTrail.sqlite(path)


def _default_audit(args: argparse.Namespace, directory: Path) -> AuditTrail:
    if args.audit:
        return _audit_at(Path(args.audit))
    # as safegen audit --store reads it: audit.sqlite3, else an existing audit.jsonl
    jsonl = directory / "audit.jsonl"
    if jsonl.exists() and not (directory / DEFAULT_AUDIT).exists():
        return _audit_at(jsonl)
    return _audit_at(directory / DEFAULT_AUDIT)


def _warn_without_hooks(args: argparse.Namespace, store: ReviewStore) -> None:
    if args.no_hooks:
        return
    if store.invalidate is None:
        print(
            "safegen: WARNING: this store has no invalidator: a rejected image is not purged "
            "from any CDN cache (configure [cloudfront] if the application's store has one)",
            file=sys.stderr,
        )
    if not store.notify:
        print(
            "safegen: WARNING: this store has no notifier: nobody hears about a decision "
            "(configure [sns] or [eventbridge] if the application's store has one)",
            file=sys.stderr,
        )


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def run_serve(args: argparse.Namespace) -> int:
    """Serve the review page until interrupted."""
    try:
        import uvicorn

        from safegen.review.web import ReviewerCredentials, create_app
    except ImportError:
        raise CommandError(
            "the review page needs its extra: pip install 'safegen[review]'"
        ) from None
    credentials = (
        ReviewerCredentials.from_file(args.token_file)
        if args.token_file
        else ReviewerCredentials.from_environment()
    )
    store, audit = _open(args, decides=True)
    _warn_without_hooks(args, store)
    app = create_app(store, audit=audit, credentials=credentials)
    if not _loopback(args.host):
        print(
            f"safegen: serving on {printable(args.host)}, not loopback: reviewers' secrets "
            "and images cross the network; serve it behind TLS (docs: The review page)",
            file=sys.stderr,
        )
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        access_log=args.access_log,
        server_header=False,
        proxy_headers=True,  # from the addresses in FORWARDED_ALLOW_IPS (127.0.0.1) only
        log_level="info",
    )
    return EXIT_ALLOWED


def run_list(args: argparse.Namespace) -> int:
    """Print one page of the images with a status."""
    store, _ = _open(args, decides=False)
    page = store.list(status=AssetStatus(args.status), limit=args.limit)
    for asset in page.assets:
        if args.json:
            print(json.dumps(asset.to_dict(), sort_keys=True))
        else:
            action = "-" if asset.verdict is None else asset.verdict.action
            print(f"{asset.status.value.upper():9}{asset.key}  ({action}, {asset.updated_by})")
    return EXIT_ALLOWED


def run_decide(args: argparse.Namespace) -> int:
    """Approve or reject one image."""
    store, _ = _open(args, decides=True)
    _warn_without_hooks(args, store)
    decide = store.approve if args.decision == "approve" else store.reject
    asset = decide(args.key, by=args.by, reason=args.reason)
    if args.json:
        print(json.dumps(asset.to_dict(), sort_keys=True))
    else:
        print(f"{asset.status.value.upper():9}{asset.key}  (by {printable(args.by)})")
    return EXIT_ALLOWED


def run_hash_password(args: argparse.Namespace) -> int:
    """Print a scrypt hash of a password read without echo (or from a pipe)."""
    import getpass

    from safegen.review.web import hash_password

    if sys.stdin.isatty():
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            raise ConfigurationError("the two passwords differ")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    print(hash_password(password))
    return EXIT_ALLOWED
