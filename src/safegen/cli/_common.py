"""What every subcommand shares: exit codes, the policy, the backends, and plain errors."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import TYPE_CHECKING, Any, TextIO

import attrs

from safegen import presets
from safegen.cli._files import (
    MAX_TEXT_BYTES,
    CommandError,
    UnreadableFileError,
    one_line,
    printable,
    read_regular,
)
from safegen.cli._output import OutputError
from safegen.decision import Action
from safegen.errors import (
    AccessDeniedError,
    InvalidImageError,
    LocalModelError,
    PolicyError,
    SafegenError,
    ServiceError,
)
from safegen.image import ImageModerator
from safegen.policy import ModerationPolicy
from safegen.preflight import Preflight

if TYPE_CHECKING:
    from safegen.cascade import Cascade

EXIT_ALLOWED = 0
"""Everything checked was allowed."""
EXIT_FLAGGED = 1
"""Something was blocked or sent to review."""
EXIT_USAGE = 2
"""The command line was wrong (argparse's own code)."""
EXIT_ERROR = 3
"""Something could not be checked: no credentials, no region, a missing endpoint, an
unreadable file, a missing model."""


def exit_code(actions: list[Action], *, failures: int = 0) -> int:
    """Return the documented exit code for a run that decided *actions*."""
    if failures:
        return EXIT_ERROR
    return EXIT_ALLOWED if all(a is Action.ALLOW for a in actions) else EXIT_FLAGGED


#: The preset each backend uses when ``--policy`` is not given. Offline, ``offline``: the
#: model sees explicit content only, and a harmless picture must not go to review for what
#: it cannot see. With Rekognition, which sees everything, ``general``.
DEFAULT_PRESETS = {"local": "offline", "aws": "general", "cascade": "general"}


@attrs.frozen
class ChosenPolicy:
    """The policy a command judges by, and where it came from (to say so in the output).

    :param policy: the policy.
    :param name: the preset's name, or the file as given on the command line.
    :param preset: whether *name* is a preset (else a file).
    :param default: whether it was chosen because ``--policy`` was not given.

    Its ``sha256`` is the fingerprint of the policy's content (:func:`fingerprint`): what a
    scan's records carry, so a re-run can tell another policy from the same one.
    """

    policy: ModerationPolicy
    name: str
    preset: bool
    default: bool = False
    sha256: str = attrs.field(init=False, repr=False)
    """The policy's content fingerprint (:func:`fingerprint`)."""

    @sha256.default
    def _fingerprint(self) -> str:
        return fingerprint(self.policy)

    def __str__(self) -> str:
        if not self.preset:
            return f"{printable(self.name)} (file)"
        return f"{self.name} (preset{', the default' if self.default else ''})"

    def to_dict(self) -> dict[str, object]:
        """Return where the policy came from and its content's fingerprint, for JSON output."""
        return {
            "name": self.name,
            "source": "preset" if self.preset else "file",
            "sha256": self.sha256,
        }


def _looks_like_a_path(value: str) -> bool:
    separators = {os.sep, "/"} | ({os.altsep} if os.altsep else set())
    return any(sep in value for sep in separators) or "." in value


def choose_policy(value: str | None, *, backend: str = "aws") -> ChosenPolicy:
    """Resolve ``--policy``: a regular file, else a preset name; none: the backend's default.

    In this order, so that every value has one reading:

    1. a value that names a regular file (or a link to one) is that file, even when it is
       also a preset's name;
    2. a preset's name is that preset, even when something else of that name is in the way
       (a directory, a dangling link, a FIFO): ``./general`` names the path instead;
    3. anything else is a file to read (and its error) if it exists or looks like a path
       (a separator or a dot), else an unknown preset with the closest name suggested.

    :raises SafegenError: the policy file is not a valid policy.
    :raises CommandError: the file cannot be read, or the value is neither a file nor a preset.
    """
    if value is None:
        name = DEFAULT_PRESETS.get(backend, "general")
        return ChosenPolicy(presets.load(name), name, preset=True, default=True)
    if _is_regular_file(value):
        return ChosenPolicy(_read_policy_file(value), value, preset=False)
    if value in presets.names():
        return ChosenPolicy(presets.load(value), value, preset=True)
    if _lexists(value) or _looks_like_a_path(value):
        return ChosenPolicy(_read_policy_file(value), value, preset=False)
    try:
        return ChosenPolicy(presets.load(value), value, preset=True)
    except PolicyError as error:
        raise CommandError(f"policy {printable(value)}: no such file, and {error}") from None


def _is_regular_file(value: str) -> bool:
    try:
        return os.path.isfile(value)
    except ValueError:  # a NUL in the name
        return False


def _lexists(value: str) -> bool:
    try:
        return os.path.lexists(value)
    except ValueError:
        return False


def fingerprint(policy: ModerationPolicy) -> str:
    """Return what identifies a policy's content (:attr:`ModerationPolicy.sha256`)."""
    return policy.sha256


def load_policy(value: str | None) -> ModerationPolicy | None:
    """Read ``--policy`` (a file or a preset name), or ``None`` when it was not given.

    :raises SafegenError: the policy is not valid (from :meth:`ModerationPolicy.from_toml`).
    :raises CommandError: the file cannot be read as a policy file at all, or the value is
        neither a file nor a preset (see :func:`choose_policy`).
    """
    return None if value is None else choose_policy(value).policy


_UTF8_BOM = b"\xef\xbb\xbf"
_WIDE_BOMS = (
    (b"\xff\xfe\x00\x00", "UTF-32"),
    (b"\x00\x00\xfe\xff", "UTF-32"),
    (b"\xff\xfe", "UTF-16"),
    (b"\xfe\xff", "UTF-16"),
)


def encoding_problem(data: bytes) -> str | None:
    """Say why *data* is not plain UTF-8 text as an editor may have saved it, else ``None``.

    A byte-order mark (which TOML and JSON refuse, and editors on Windows add) and UTF-16
    or UTF-32 (what Windows PowerShell 5 writes with ``>``) are named, with what to do; a
    UTF-16 text without a mark is recognised by the zero byte beside each ASCII character.
    """
    for bom, name in _WIDE_BOMS:
        if data.startswith(bom):
            return f"looks like {name} (it starts with a {name} byte-order mark); save it as UTF-8"
    if len(data) >= 2 and (data[0] == 0) != (data[1] == 0):
        return "looks like UTF-16 (a zero byte beside each character); save it as UTF-8"
    if data.startswith(_UTF8_BOM):
        return "starts with a byte-order mark (BOM); save it as UTF-8 without a BOM"
    return None


def _read_policy_file(path: str) -> ModerationPolicy:
    shown = printable(path)
    try:  # look before opening: a FIFO given as the policy would block the open forever
        problem = encoding_problem(read_regular(path, limit=MAX_TEXT_BYTES))
        if problem is not None:
            raise CommandError(f"policy file {shown}: {problem}")
        return ModerationPolicy.from_toml(path)
    except SafegenError:
        raise
    except UnreadableFileError as error:
        raise CommandError(f"policy file {shown}: {error}") from None
    except UnicodeDecodeError as error:
        raise CommandError(f"policy file {shown}: not UTF-8 (byte {error.start + 1})") from None
    except RecursionError:
        raise CommandError(f"policy file {shown}: nested too deeply") from None
    except OSError as error:
        raise CommandError(f"policy file {shown}: cannot read: {error.strerror}") from None
    except ValueError as error:  # what a TOML parser may raise besides its own error
        raise CommandError(f"policy file {shown}: not valid TOML: {error}") from None


def read_text_input(name: str, what: str) -> str:
    """Read a small text file (or standard input for ``-``) as UTF-8, bounded in size.

    :raises CommandError: it cannot be read, is too large, or is not UTF-8 (a byte-order
        mark and UTF-16 are named: :func:`encoding_problem`).
    """
    shown = "standard input" if name == "-" else f"{what} {printable(name)}"
    try:
        if name == "-":
            stream = getattr(sys.stdin, "buffer", None)  # None: replaced by a text stream
            data = (
                stream.read(MAX_TEXT_BYTES + 1)
                if stream is not None
                else sys.stdin.read(MAX_TEXT_BYTES + 1).encode("utf-8", "surrogateescape")
            )
            if len(data) > MAX_TEXT_BYTES:
                raise UnreadableFileError(f"over the {MAX_TEXT_BYTES:,} bytes allowed")
        else:
            data = read_regular(name, limit=MAX_TEXT_BYTES)
        problem = encoding_problem(data)
        if problem is not None:
            raise CommandError(f"{shown}: {problem}")
        return data.decode("utf-8")
    except UnreadableFileError as error:
        raise CommandError(f"{shown}: {error}") from None
    except UnicodeDecodeError as error:
        raise CommandError(f"{shown}: not UTF-8 (byte {error.start + 1})") from None


def image_moderator(args: argparse.Namespace, chosen: ChosenPolicy) -> ImageModerator | Cascade:
    """Build what ``--backend`` asks for, judged by *chosen* (see :func:`choose_policy`).

    Offline, the model's calibrated thresholds go under the policy's own label entries
    (:func:`safegen.local.recommended_policy`).
    """
    policy = chosen.policy
    if args.backend == "aws":
        return ImageModerator(_rekognition(args), policy, preflight=Preflight(repair=True))
    local = _local_backend(args)
    if args.backend == "cascade":
        from safegen.cascade import Cascade

        aws = ImageModerator(_rekognition(args), policy, preflight=Preflight(repair=True))
        return Cascade(local, aws)
    from safegen.local import recommended_policy

    return ImageModerator(local, recommended_policy(local, policy))


def _local_backend(args: argparse.Namespace) -> Any:
    from safegen.local import Ensemble, NudeNet, OpenNSFW

    if args.nudenet:
        return Ensemble([OpenNSFW(), NudeNet()])
    return OpenNSFW()


def _rekognition(args: argparse.Namespace) -> Any:
    from safegen.aws import RekognitionModerator

    return RekognitionModerator.from_session(region_name=args.region)


def add_backend_options(parser: argparse.ArgumentParser, *, local: bool = True) -> None:
    """Add the options every moderating subcommand takes."""
    parser.set_defaults(offline=local)  # what describe() may suggest
    choices = ["local", "aws", "cascade"] if local else ["aws", "cascade"]
    parser.add_argument(
        "--backend",
        choices=choices,
        default=choices[0],
        help="local: offline models, no AWS (default); aws: Amazon Rekognition; cascade: "
        "local first, Rekognition when unsure"
        if local
        else "who moderates the images",
    )
    default = "offline with --backend local, general otherwise" if local else "general"
    parser.add_argument(
        "--policy",
        metavar="NAME|FILE",
        help=f"a preset (safegen policy list) or a policy file (TOML); default: {default}",
    )
    parser.add_argument(
        "--nudenet",
        action="store_true",
        help="add NudeNet to the offline models (AGPL-3.0; needs safegen[nudenet])",
    )
    parser.add_argument("--region", help="the AWS region (default: your AWS configuration's)")


def describe(error: BaseException, *, region: bool = False, offline: bool = False) -> str:
    """One line a person can act on, for any error the commands expect.

    A message suggests only what the command has: ``--region`` when *region*, ``--backend
    local`` when *offline* (:func:`suggestions` says which, from the parsed arguments).
    Every message is escaped exactly once: a :class:`CommandError` where it was built
    (:func:`printable` on each name in it); the library's errors show values with ``repr``,
    so only what a terminal would act on is escaped (:func:`one_line`); the rest here, with
    :func:`printable`. :func:`~safegen.cli.main` prints the line as it is.
    """
    local = " or use --backend local" if offline else ""
    if isinstance(error, ServiceError):
        code = error.code or ""
        if code == "NoRegionError":
            offline_too = " (or use --backend local)" if offline else ""
            how = "pass --region or set AWS_DEFAULT_REGION" if region else "set AWS_DEFAULT_REGION"
            return f"no AWS region: {how}{offline_too}"
        if code in (
            "NoCredentialsError",
            "UnrecognizedClientException",
            "InvalidSignatureException",
        ):
            return f"no usable AWS credentials: configure them (aws configure, AWS_PROFILE){local}"
        if isinstance(error, AccessDeniedError):
            return one_line(f"AWS refused {error.operation}: {error.message}")
        if code == "ValidationError" and "ndpoint" in error.message:
            return one_line(f"SageMaker endpoint not found: {error.message}")
        return one_line(f"{error.service} {error.operation} failed ({code}): {error}")
    if isinstance(error, CommandError):
        return str(error)
    if isinstance(error, SafegenError):  # the library shows values with repr(): escaped once
        return one_line(str(error))
    return printable(_describe_other(error))


def suggestions(args: argparse.Namespace) -> dict[str, bool]:
    """Say which remedies the command that parsed *args* has, for :func:`describe`."""
    return {"region": hasattr(args, "region"), "offline": getattr(args, "offline", False)}


def _describe_other(error: BaseException) -> str:
    if isinstance(error, OutputError):
        return f"cannot write the output: {error}"
    if isinstance(error, LocalModelError):
        return f"offline model unavailable: {error}"
    if isinstance(error, InvalidImageError):
        return f"unsupported image: {error}"
    if isinstance(error, FileNotFoundError):
        return f"no such file: {error.filename}"
    if isinstance(error, IsADirectoryError):
        return f"is a directory: {error.filename} (use safegen scan for directories)"
    if isinstance(error, OSError):
        return f"cannot read {error.filename or 'a file'}: {error.strerror or error}"
    if isinstance(error, json.JSONDecodeError):  # each reader names its source; a stray one
        return f"an input is not JSON: {error}"
    if isinstance(error, UnicodeError):
        return f"not valid text: {error}"
    if isinstance(error, RecursionError):
        return "an input is nested too deeply"
    return f"{type(error).__name__}: {error}"


def emit_json(payload: object, out: TextIO | None = None) -> None:
    """Print one JSON document on one line (JSON Lines), always valid UTF-8.

    Text that cannot be UTF-8 (a stray surrogate) is written as a JSON escape instead.
    """
    text = json.dumps(payload, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(payload)
    (sys.stdout if out is None else out).write(text + "\n")
