"""Where a batch's items come from: a directory, a bulk-analysis manifest, any iterable.

Every source is a generator: it yields items as it finds them and never lists everything
first, so memory does not grow with the number of items (one directory's entries at a time).
S3 prefixes and S3 manifests are in :mod:`safegen.aws.s3`.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Set
from pathlib import Path
from typing import Any

from safegen.batch._records import MAX_REF_CHARS, Item, local_ref
from safegen.reports import S3Object

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff"})
"""The extensions a directory walk moderates by default (case-insensitive)."""
REKOGNITION_SUFFIXES = frozenset({".png", ".jpg", ".jpeg"})
"""What Rekognition reads from S3: JPEG and PNG."""
MAX_MANIFEST_LINE = 64 * 1024
"""The longest manifest line read; a longer one is a bad line."""
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")


def parse_s3_url(url: str) -> tuple[str, str]:
    """Split ``"s3://bucket/key"`` into bucket and key (the key may be empty).

    :raises ValueError: not an S3 URL with a valid bucket name.
    """
    if not url.startswith("s3://"):
        raise ValueError("not an s3:// URL")
    bucket, _, key = url[5:].partition("/")
    if not _BUCKET.match(bucket):
        raise ValueError("not a valid bucket name")
    return bucket, key


def s3_ref(bucket: str, key: str) -> str:
    """Return the ref of an S3 object: ``"s3://bucket/key"``."""
    return f"s3://{bucket}/{key}"


def directory_items(
    root: str | os.PathLike[str],
    *,
    suffixes: Set[str] | None = IMAGE_SUFFIXES,
    max_bytes: int | None = None,
) -> Iterator[Item]:
    """Yield an item for every file under *root*, sorted; moderate those named with *suffixes*.

    Every file is yielded, none dropped unseen: one whose extension is not in *suffixes*
    (case-insensitive) is an item with ``problem="unsupported_type"`` and ``skip=True``,
    which an engine records as skipped (never read) and counts in the summary.
    ``suffixes=None`` moderates every file whatever its name (a file that is not an
    image then fails to decode: recorded as failed), as a training-data check needs.

    The walk is iterative and never follows a link to a directory (no loops). Refs are
    canonical paths (:func:`~safegen.batch.local_ref`), so a re-run names the same files
    however *root* is spelled. A file over *max_bytes* (by its size on disk) comes with
    ``problem="too_large"`` and is never read; one that cannot be looked at comes with
    ``problem="unreadable"``. A directory that cannot be listed is an item with
    ``problem="unlistable"`` (its ref is the directory's). Each file's item carries its
    :func:`local_identity`, so a file replaced under the same name is checked again.
    """
    wanted = _lowered(suffixes)
    stack = [os.path.realpath(root)]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as listing:
                entries = sorted(listing, key=lambda entry: entry.name)
        except OSError:
            yield Item(local_ref(folder), problem="unlistable")
            continue
        folders = []
        for entry in entries:
            try:
                is_folder = entry.is_dir(follow_symlinks=False)
            except OSError:
                is_folder = False
            if is_folder:
                folders.append(entry.path)
                continue
            ref = os.path.join(folder, entry.name)
            if not wanted_name(entry.name, wanted):
                yield Item(ref, problem="unsupported_type", skip=True)
                continue
            try:
                info = entry.stat()
            except OSError:
                yield Item(ref, problem="unreadable")
                continue
            size, identity = info.st_size, local_identity(info)
            if max_bytes is not None and size > max_bytes:
                yield Item(ref, size=size, problem="too_large", identity=identity)
            else:
                yield Item(ref, Path(ref), size=size, identity=identity)
        stack.extend(reversed(folders))


def local_identity(info: os.stat_result) -> str:
    """Return a local file's content identity from its ``stat``: size, times and inode.

    ``ctime_ns`` changes with any write and cannot be set back, so a file rewritten in
    place with its old size and ``mtime`` still gets a new identity.
    """
    return f"local:{info.st_size}:{info.st_mtime_ns}:{info.st_ctime_ns}:{info.st_ino}"


def object_identity(entry: Mapping[str, Any]) -> str | None:
    """Return an S3 object's content identity from its listing entry: ETag, size, modified.

    ``None`` when the entry has no ETag. Any overwrite changes the last-modified time, so
    a replaced object is checked again even when its new ETag happened to repeat.
    """
    etag, size, modified = entry.get("ETag"), entry.get("Size"), entry.get("LastModified")
    if not isinstance(etag, str) or not etag:
        return None
    when = modified.isoformat() if isinstance(modified, datetime.datetime) else str(modified)
    return f"s3:{etag.strip(chr(34))[:128]}:{size}:{when}"[:256]


def _lowered(suffixes: Set[str] | None) -> frozenset[str] | None:
    return None if suffixes is None else frozenset(suffix.lower() for suffix in suffixes)


def wanted_name(name: str, suffixes: Set[str] | None) -> bool:
    """Whether a file named *name* is moderated: *suffixes* (lower case) ``None`` takes all."""
    return suffixes is None or os.path.splitext(name)[1].lower() in suffixes


def manifest_items(lines: Iterable[bytes | str], *, name: str = "manifest") -> Iterator[Item]:
    """Yield an item per line of a bulk-analysis manifest (``{"source-ref": "s3://..."}``).

    Each line is checked on its own: a line that is not a JSON object with a
    ``source-ref`` naming an S3 object becomes an item with ``problem="bad_manifest_line"``
    (ref ``"<name>#line=N"``), recorded as a failure; the rest go on. Blank lines are
    skipped.
    """
    for number, raw in enumerate(lines, start=1):
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        if not text.strip():
            continue
        item = _manifest_item(text)
        if item is None:
            item = Item(f"{name}#line={number}", problem="bad_manifest_line")
        yield item


def _manifest_item(text: str) -> Item | None:
    if len(text) > MAX_MANIFEST_LINE:
        return None
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return None
    ref = data.get("source-ref") if isinstance(data, dict) else None
    if not isinstance(ref, str) or len(ref) > MAX_REF_CHARS:
        return None
    try:
        bucket, key = parse_s3_url(ref)
    except ValueError:
        return None
    if not key or key.endswith("/"):
        return None
    return Item(ref, S3Object(bucket, key))


_READ = 64 * 1024
_TOO_LONG = b"\x00"  # not JSON: manifest_items makes it a bad line


def manifest_file(path: str | os.PathLike[str]) -> Iterator[Item]:
    """Yield the items of a local manifest file, a line at a time (:func:`manifest_items`).

    Read in fixed-size blocks (:func:`bounded_lines`): a line longer than
    ``MAX_MANIFEST_LINE`` is one bad line, never held in memory.
    """
    with open(path, "rb") as stream:
        blocks = iter(lambda: stream.read(_READ), b"")
        yield from manifest_items(bounded_lines(blocks), name=os.fsdecode(path))


def bounded_lines(blocks: Iterable[bytes], limit: int = MAX_MANIFEST_LINE) -> Iterator[bytes]:
    """Split a stream of byte *blocks* into lines of at most *limit* bytes (newline included).

    A longer line is yielded as a single NUL byte (not JSON: :func:`manifest_items`
    records it as a bad line) and skipped up to its newline without being kept: memory is
    at most *limit* plus one block, however long a line is. The last line may lack its newline.
    """
    buffer = bytearray()
    over = False
    for block in blocks:
        start = 0
        while (end := block.find(b"\n", start)) >= 0:
            if over or len(buffer) + end + 1 - start > limit:
                yield _TOO_LONG
            else:
                buffer += block[start : end + 1]
                yield bytes(buffer)
            buffer.clear()
            over = False
            start = end + 1
        if not over:
            buffer += block[start:]
            if len(buffer) > limit:
                over = True
                buffer.clear()
    if over:
        yield _TOO_LONG
    elif buffer:
        yield bytes(buffer)


def items_from(images: Iterable[Item | S3Object | bytes | os.PathLike[str]]) -> Iterator[Item]:
    """Yield an item for each of *images*.

    Items as they are, S3 objects by their URL (with their version as identity, when
    given), local paths by their canonical path (with their :func:`local_identity`), bytes
    by their content (``"sha256:<hex>"``, which is its identity).

    :raises TypeError: a value that is none of these (a ``str`` is ambiguous: wrap a file
        name in :class:`~pathlib.Path`).
    """
    for image in images:
        if isinstance(image, Item):
            yield image
        elif isinstance(image, S3Object):
            identity = None if image.version is None else f"s3:version={image.version}"
            yield Item(s3_ref(image.bucket, image.key), image, identity=identity)
        elif isinstance(image, bytes):
            yield Item("sha256:" + hashlib.sha256(image).hexdigest(), image, size=len(image))
        elif isinstance(image, os.PathLike):
            ref = local_ref(image)
            try:
                identity = local_identity(os.stat(ref))
            except OSError:
                identity = None  # recorded as unreadable when its turn comes
            yield Item(ref, Path(ref), identity=identity)
        else:
            raise TypeError(
                f"expected an Item, S3Object, bytes or a Path, got {type(image).__name__}"
            )
