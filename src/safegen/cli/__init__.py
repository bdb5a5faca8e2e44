"""The ``safegen`` command: moderation from a terminal, offline by default.

Each subcommand prints what was decided and why, a line or two per item, or JSON Lines
with ``--json``. Exit codes: 0 everything allowed; 1 something blocked or sent to review;
2 a usage error; 3 something could not be checked (no credentials, no region, an endpoint
not found, an unreadable file, a missing model). Errors are one line; ``--debug`` shows the
traceback. See ``docs/cli.rst``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

import safegen
from safegen.cli import (
    _audit,
    _batch,
    _generate,
    _images,
    _policy,
    _presets,
    _prompt,
    _review,
    _video,
)
from safegen.cli._common import (
    EXIT_ALLOWED,
    EXIT_ERROR,
    EXIT_FLAGGED,
    EXIT_USAGE,
    add_backend_options,
    describe,
    suggestions,
)
from safegen.cli._files import MAX_FILE_BYTES
from safegen.cli._output import line_flushed

__all__ = ["EXIT_ALLOWED", "EXIT_ERROR", "EXIT_FLAGGED", "EXIT_PIPE", "EXIT_USAGE", "main"]

EXIT_PIPE = 141
"""The output pipe was closed (``| head``): stop silently, as a shell reports SIGPIPE."""

_EPILOG = (
    "exit codes: 0 allowed; 1 blocked or review; 2 usage error; 3 could not check "
    "(credentials, region, endpoint, file, model, policy)"
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="safegen",
        description="Moderation for generative-image applications, offline or on AWS.",
        epilog=_EPILOG,
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    parser.add_argument("--version", action="version", version=f"safegen {safegen.__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(
        name: str, help: str, run: object, description: str | None = None
    ) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=description or help, epilog=_EPILOG)
        sub.set_defaults(run=run)
        sub.add_argument("--json", action="store_true", help="print JSON Lines")
        sub.add_argument(
            "--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS
        )
        return sub

    image = command(
        "image",
        "moderate image files",
        _images.run_image,
        "Moderate image files, offline by default, and say what was decided and why.",
    )
    image.add_argument("files", nargs="+", metavar="FILE")
    _add_max_bytes(image)
    add_backend_options(image)

    scan = command(
        "scan",
        "moderate every image under a directory (resumable)",
        _images.run_scan,
        "Moderate every image under DIR, writing one JSON line per image to --output. A "
        "re-run skips the images already in the output, however DIR is spelled, so an "
        "interrupted scan resumes. The output is locked while a scan writes to it.",
    )
    scan.add_argument("directory", metavar="DIR")
    scan.add_argument(
        "--output", "-o", default="safegen-scan.jsonl", help="JSON Lines results (appended)"
    )
    scan.add_argument("--workers", type=_positive, default=2, help="images at a time (2)")
    _add_max_bytes(scan)
    add_backend_options(scan)

    prompt = command(
        "prompt",
        "moderate a prompt",
        _prompt.run_prompt,
        "Moderate a prompt with the forbidden-term filter (and Amazon Comprehend's toxicity "
        "detection with --backend aws). TEXT - reads standard input.",
    )
    prompt.add_argument("text", metavar="TEXT")
    prompt.set_defaults(offline=True)  # --backend local is the prompt's default
    prompt.add_argument(
        "--backend",
        choices=["local", "aws"],
        default="local",
        help="local: the term filter only (default); aws: plus Amazon Comprehend",
    )
    prompt.add_argument(
        "--policy", metavar="POLICY", help="judge by this policy's [prompts] (a preset or a file)"
    )
    prompt.add_argument("--region", help="the AWS region (default: your AWS configuration's)")

    policy = commands.add_parser("policy", help="work with presets and policy files")
    policy_commands = policy.add_subparsers(dest="policy_command", required=True, metavar="ACTION")
    check = policy_commands.add_parser(
        "check",
        help="validate a policy (a file or a preset) and print the thresholds in force",
        description="Validate a policy file (or a preset) and print, for every category, the "
        "thresholds in force and the entry that set them.",
        epilog=_EPILOG,
    )
    check.set_defaults(run=_policy.run_check)
    check.add_argument("file", metavar="NAME|FILE", help="a preset's name or a policy file")
    check.add_argument("--content-type", help="show the thresholds while this type applies")
    check.add_argument("--json", action="store_true", help="print JSON")
    check.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS
    )

    listing = policy_commands.add_parser(
        "list",
        help="list the presets shipped with safegen",
        description="List the presets (policies shipped with safegen), one line each.",
        epilog=_EPILOG,
    )
    listing.set_defaults(run=_presets.run_list)
    listing.add_argument("--json", action="store_true", help="print JSON Lines")
    show = policy_commands.add_parser(
        "show",
        help="print a preset as a policy file (TOML) to start your own from",
        description="Print a preset as a policy file, comments included: "
        "safegen policy show general > mine.toml, edit, then --policy mine.toml.",
        epilog=_EPILOG,
    )
    show.set_defaults(run=_presets.run_show)
    show.add_argument("name", metavar="NAME", help="the preset (safegen policy list)")
    for sub in (check, listing, show):
        if sub is not check:
            sub.add_argument(
                "--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS
            )

    generate = command(
        "generate",
        "generate images on SageMaker, moderated end to end",
        _generate.run_generate,
        "Check the prompt (terms and Comprehend), generate on a SageMaker JumpStart "
        "endpoint, moderate every image (Rekognition, or the cascade), save what may be shown.",
    )
    generate.add_argument("prompt", metavar="PROMPT")
    generate.add_argument("--endpoint", required=True, help="the SageMaker endpoint's name")
    generate.add_argument(
        "--codec",
        choices=["txt2img", "stability"],
        default="txt2img",
        help="the endpoint's container: JumpStart txt2img (SD 1.x/2.x, default) or Stability",
    )
    generate.add_argument("--images", type=_positive, default=1, help="how many (1)")
    generate.add_argument("--seed", type=int, help="the first seed")
    generate.add_argument("--out", default=".", help="where to save the images (.)")
    generate.add_argument(
        "--on-unsafe", choices=["blur", "withhold", "warn", "regenerate"], default="blur"
    )
    add_backend_options(generate, local=False)

    evaluate = command(
        "evaluate",
        "judge a saved Rekognition response against a policy file",
        _policy.run_evaluate,
        "Judge a saved Rekognition DetectModerationLabels response (JSON) against a policy "
        "file (TOML) and print the decision with its reasons.",
    )
    evaluate.add_argument(
        "policy", metavar="POLICY", help="a preset's name or a policy file (TOML)"
    )
    evaluate.add_argument(
        "response", help="the DetectModerationLabels response (JSON); - for stdin"
    )
    _review.register(commands, _EPILOG)
    _audit.register(commands, _EPILOG)
    _batch.register(commands, _EPILOG)
    _video.register(commands, _EPILOG)
    return parser


def _add_max_bytes(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--max-bytes",
        type=_positive,
        default=MAX_FILE_BYTES,
        metavar="N",
        help=f"do not read a file larger than N bytes ({MAX_FILE_BYTES:,}): it is not checked",
    )


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


# Loggers that write what goes over the wire (bodies, headers, credentials) at DEBUG.
_WIRE_LOGGERS = ("botocore", "boto3", "urllib3", "s3transfer")


def _configure_logging(debug: bool) -> logging.Handler | None:
    """Send safegen's own log to standard error with ``--debug``; never the AWS wire logs.

    ``--debug`` turns on DEBUG for the ``safegen`` logger hierarchy only: botocore, boto3,
    urllib3 and s3transfer stay at WARNING whatever the flag, since at DEBUG they print
    request bodies (prompts, images in base64) and signed headers. Return the handler added,
    for :func:`main` to remove.
    """
    for name in _WIRE_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    log = logging.getLogger("safegen")
    if not debug:  # what the library logs is in the verdicts already: keep to one line
        if not any(isinstance(h, logging.NullHandler) for h in log.handlers):
            log.addHandler(logging.NullHandler())
        return None
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    return handler


def _closed_pipe() -> int:
    """Stop writing to a closed standard output: no message, no traceback at exit.

    What is still buffered would fail again when the interpreter flushes at exit, so the
    output is pointed at the null device first (the recipe of Python's ``signal`` docs).
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # standard output is not a file (replaced, as in tests)
        pass
    return EXIT_PIPE


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the process exit code."""
    args = _parser().parse_args(argv)
    handler = _configure_logging(args.debug)
    try:
        with line_flushed():  # each line flushed: a closed pipe shows at the next line
            code: int = args.run(args)
            sys.stdout.flush()
    except BrokenPipeError:
        return _closed_pipe()
    except KeyboardInterrupt:
        print("safegen: interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        if args.debug:
            raise
        # describe() escapes each message exactly once (see there): printed as it is.
        if sys.stderr is not None:
            print(
                f"safegen: error: {describe(error, **suggestions(args))}",
                file=sys.stderr,
            )
        return EXIT_ERROR
    finally:
        if handler is not None:
            log = logging.getLogger("safegen")
            log.removeHandler(handler)
            log.setLevel(logging.NOTSET)
    return code
