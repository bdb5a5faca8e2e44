"""S3 for batches: prefix and manifest sources, the S3 form of the ledger, reads and moves.

A thin adapter: every call goes through the error choke point (:func:`aws_call`), so a
failure is a :class:`~safegen.errors.ServiceError` keeping S3's code. Listing is streamed
page by page (``ListObjectsV2``'s paginator), so memory does not grow with the prefix.
"""

from __future__ import annotations

from collections.abc import Iterator, Set
from typing import Any

from safegen.aws._errors import aws_call
from safegen.batch._engine import REKOGNITION_S3_BYTES
from safegen.batch._ledger import MAX_LINE_BYTES, Ledger, LedgerError
from safegen.batch._records import Item
from safegen.batch._sources import (
    MAX_MANIFEST_LINE,
    REKOGNITION_SUFFIXES,
    bounded_lines,
    manifest_items,
    object_identity,
    parse_s3_url,
    s3_ref,
    wanted_name,
)
from safegen.dataset import INFO_FILE, MAX_INFO_BYTES
from safegen.errors import ConfigurationError, InvalidImageError, ServiceError
from safegen.policy import ModerationPolicy
from safegen.reports import S3Object

__all__ = [
    "S3Dataset",
    "S3LedgerStorage",
    "fetcher",
    "manifest_object_items",
    "move_object",
    "object_identity",
    "open_ledger",
    "parse_s3_url",
    "prefix_items",
]


def prefix_items(
    client: Any,
    bucket: str,
    prefix: str = "",
    *,
    suffixes: Set[str] | None = REKOGNITION_SUFFIXES,
    max_bytes: int = REKOGNITION_S3_BYTES,
    page_size: int = 1000,
) -> Iterator[Item]:
    """Yield an item per object under *prefix*, as listed; moderate those named with *suffixes*.

    One page of the listing at a time (``ListObjectsV2``): nothing is downloaded. Every
    object is yielded, none dropped unseen: one whose extension is not in *suffixes*
    (case-insensitive; JPEG and PNG, what Rekognition reads, by default) is an item with
    ``problem="unsupported_type"`` and ``skip=True``, recorded as skipped and counted in
    the summary; ``suffixes=None`` moderates every object whatever its name. A key ending
    in ``/`` is a folder marker, not a file: one with content is skipped the same way
    (``"folder_key"``), an empty one is left out. An object over *max_bytes* by its listed
    size (15 MB, Rekognition's S3 limit, by default) comes with ``problem="too_large"``:
    it is recorded as not checked, never sent or read. Each item carries its
    :func:`~safegen.batch.object_identity`, so an object replaced under the same key is
    checked again.

    :raises ServiceError: the listing failed (no such bucket, access denied, ...).
    """
    wanted = None if suffixes is None else frozenset(suffix.lower() for suffix in suffixes)
    paginator = client.get_paginator("list_objects_v2")
    pages = iter(
        paginator.paginate(Bucket=bucket, Prefix=prefix, PaginationConfig={"PageSize": page_size})
    )
    while True:
        with aws_call("s3", "ListObjectsV2"):
            page = next(pages, None)
        if page is None:
            return
        for entry in page.get("Contents", ()):
            key = entry.get("Key")
            if not isinstance(key, str) or not key:
                continue
            size = entry.get("Size")
            size = size if isinstance(size, int) and size >= 0 else None
            ref = s3_ref(bucket, key)
            identity = object_identity(entry)
            if key.endswith("/"):
                if size != 0:
                    yield Item(ref, size=size, problem="folder_key", skip=True)
            elif not wanted_name(key.rsplit("/", 1)[-1], wanted):
                yield Item(ref, S3Object(bucket, key), size=size, problem="unsupported_type",
                           skip=True, identity=identity)  # fmt: skip
            elif size is not None and size > max_bytes:
                yield Item(ref, S3Object(bucket, key), size=size, problem="too_large",
                           identity=identity)  # fmt: skip
            else:
                yield Item(ref, S3Object(bucket, key), size=size, identity=identity)


def manifest_object_items(client: Any, url: str) -> Iterator[Item]:
    """Yield the items of a bulk-analysis manifest stored in S3, streamed a line at a time.

    See :func:`safegen.batch.manifest_items`: a bad line is an item that fails, not a crash.
    Read in blocks (:func:`safegen.batch.bounded_lines`): a line over
    ``MAX_MANIFEST_LINE`` is one bad line, never held in memory.

    :raises ServiceError: the manifest cannot be read.
    """
    bucket, key = parse_s3_url(url)
    with aws_call("s3", "GetObject"):
        body = client.get_object(Bucket=bucket, Key=key)["Body"]
    try:
        with aws_call("s3", "GetObject"):
            blocks = body.iter_chunks(64 * 1024)
            yield from manifest_items(bounded_lines(blocks, MAX_MANIFEST_LINE), name=url)
    finally:
        body.close()


def fetcher(client: Any) -> Any:
    """Return a function reading an :class:`~safegen.S3Object`'s bytes, at most a limit.

    For a local backend, which cannot read S3: ``ClientEngine(..., fetch=fetcher(s3))``.
    At most *limit* + 1 bytes are asked for (a ranged ``GetObject``).
    """

    def fetch(image: S3Object, limit: int) -> bytes:
        extra = {} if image.version is None else {"VersionId": image.version}
        with aws_call("s3", "GetObject"):
            response = client.get_object(
                Bucket=image.bucket, Key=image.key, Range=f"bytes=0-{limit}", **extra
            )
            data: bytes = response["Body"].read(limit + 1)
        if len(data) > limit:
            raise InvalidImageError(f"over {limit:,} bytes; not read", limit="bytes")
        return data

    return fetch


def move_object(
    client: Any, bucket: str, source: str, target: str, *, target_bucket: str | None = None
) -> None:
    """Move an object (to *target* in *target_bucket*, the same bucket by default).

    Copy it, then delete the original.

    A crash between the two leaves both (never neither): moving again completes it.
    A source that is gone with the target present counts as moved.

    :raises ServiceError: S3 refused the copy or the delete.
    """
    to_bucket = bucket if target_bucket is None else target_bucket
    try:
        with aws_call("s3", "CopyObject"):
            client.copy_object(
                Bucket=to_bucket, Key=target, CopySource={"Bucket": bucket, "Key": source}
            )
    except ServiceError as error:
        if error.code not in ("NoSuchKey", "404") or not _exists(client, to_bucket, target):
            raise
        return
    with aws_call("s3", "DeleteObject"):
        client.delete_object(Bucket=bucket, Key=source)


def _exists(client: Any, bucket: str, key: str) -> bool:
    try:
        with aws_call("s3", "HeadObject"):
            client.head_object(Bucket=bucket, Key=key)
    except ServiceError as error:
        if error.code in ("404", "NoSuchKey", "NotFound"):
            return False
        raise
    return True


def open_ledger(
    client: Any,
    url: str,
    *,
    policy: ModerationPolicy,
    engine: str,
    flush_every: int | None = None,
) -> Ledger:
    """Open (or create) the ledger at ``s3://bucket/key`` (see :class:`S3LedgerStorage`).

    As :meth:`safegen.batch.Ledger.open`, with *client* a boto3 S3 client.

    :raises ConfigurationError: *url* is not an ``s3://`` URL.
    """
    try:
        bucket, key = parse_s3_url(url)
    except ValueError:
        raise ConfigurationError(f"ledger: expected s3://bucket/key, got {url!r}") from None
    if not key.strip("/"):
        raise ConfigurationError(f"ledger: {url!r} names no key")
    storage = S3LedgerStorage(client, bucket, key)
    return Ledger.open(storage, policy=policy, engine=engine, flush_every=flush_every)


class S3LedgerStorage:
    """A ledger in S3: the lines of ``s3://bucket/key`` as numbered parts under ``key/``.

    S3 objects cannot be appended to, so each write is a new part
    (``key/0000000001.jsonl``, ...) written with ``If-None-Match: *``: a part is whole or
    absent (no torn line), and two runs writing one ledger cannot both write a part: the
    second gets a :class:`~safegen.batch.LedgerError` at its next write. The ledger
    batches records (``flush_every`` = 100 by default): a crash loses at most the
    records not yet written, and a resumed run checks those items again. Parts are read
    in blocks, a line at a time: a line over 1 MiB is refused, never held whole.
    """

    flush_every = 100

    def __init__(self, client: Any, bucket: str, key: str) -> None:
        self._client = client
        self._bucket = bucket
        self._prefix = key.rstrip("/") + "/"
        self._parts: list[str] = []
        self._next = 1

    @property
    def name(self) -> str:
        """The ledger's URL."""
        return s3_ref(self._bucket, self._prefix.rstrip("/"))

    def lines(self) -> Iterator[bytes]:
        """Yield the lines of every part, in order."""
        paginator = self._client.get_paginator("list_objects_v2")
        keys: list[str] = []
        with aws_call("s3", "ListObjectsV2"):
            for page in paginator.paginate(Bucket=self._bucket, Prefix=self._prefix):
                keys.extend(
                    entry["Key"]
                    for entry in page.get("Contents", ())
                    if entry["Key"].endswith(".jsonl")
                )
        numbered = sorted((_part_number(key), key) for key in keys)
        numbered = [(number, key) for number, key in numbered if number > 0]
        self._next = numbered[-1][0] + 1 if numbered else 1
        for _, key in numbered:
            with aws_call("s3", "GetObject"):
                body = self._client.get_object(Bucket=self._bucket, Key=key)["Body"]
            try:
                with aws_call("s3", "GetObject"):
                    yield from self._part_lines(body.iter_chunks(64 * 1024))
            finally:
                body.close()

    @staticmethod
    def _part_lines(blocks: Iterator[bytes]) -> Iterator[bytes]:
        """Yield a part's whole lines, read in blocks; refuse a line over ``MAX_LINE_BYTES``."""
        for line in bounded_lines(blocks, MAX_LINE_BYTES):
            if not line.endswith(b"\n"):
                if len(line) == 1 and line == b"\x00":  # bounded_lines' mark: too long
                    raise LedgerError(f"a line longer than {MAX_LINE_BYTES:,} bytes")
                continue  # no newline: not a whole line
            yield line

    def write(self, data: bytes) -> None:
        """Write *data* as the next part, only if no other run has written that part."""
        key = f"{self._prefix}{self._next:010d}.jsonl"
        try:
            with aws_call("s3", "PutObject"):
                self._client.put_object(Bucket=self._bucket, Key=key, Body=data, IfNoneMatch="*")
        except ServiceError as error:
            if error.code in ("PreconditionFailed", "ConditionalRequestConflict", "412"):
                raise LedgerError(
                    f"another run is writing to the ledger {self.name}: let it finish, or "
                    "choose another ledger"
                ) from None
            raise
        self._next += 1

    def close(self) -> None:
        """Nothing to release: S3 holds no lock."""


def _part_number(key: str) -> int:
    stem = key.rsplit("/", 1)[-1].removesuffix(".jsonl")
    return int(stem) if stem.isdigit() else 0


class S3Dataset:
    """A training dataset under an S3 prefix (see :mod:`safegen.dataset`).

    Images are listed as :func:`prefix_items` lists them (JPEG and PNG, 15 MB); moves are
    :func:`move_object` (copy, then delete), so an interrupted move is completed by moving
    again.

    :param client: a boto3 S3 client.
    :param url: ``"s3://bucket/prefix/"``.
    """

    def __init__(self, client: Any, url: str) -> None:
        self._client = client
        self.bucket, prefix = parse_s3_url(url)
        self.prefix = prefix if not prefix or prefix.endswith("/") else prefix + "/"

    @property
    def name(self) -> str:
        """The dataset's URL."""
        return s3_ref(self.bucket, self.prefix)

    def items(self) -> Iterator[Item]:
        """Yield the images under the prefix, a page at a time."""
        return prefix_items(self._client, self.bucket, self.prefix)

    def read_info(self) -> bytes | None:
        """Read ``dataset_info.json`` (bounded), or ``None`` when there is none."""
        try:
            with aws_call("s3", "GetObject"):
                response = self._client.get_object(
                    Bucket=self.bucket,
                    Key=self.prefix + INFO_FILE,
                    Range=f"bytes=0-{MAX_INFO_BYTES}",
                )
                data: bytes = response["Body"].read(MAX_INFO_BYTES + 1)
        except ServiceError as error:
            if error.code in ("NoSuchKey", "404"):
                return None
            raise
        return data

    def info_ref(self) -> str:
        """Return the info file's URL."""
        return s3_ref(self.bucket, self.prefix + INFO_FILE)

    def target(self, ref: str, prefix: str) -> str:
        """Return the image's URL under the quarantine *prefix* (an ``s3://`` URL).

        :raises ConfigurationError: the quarantine is inside the dataset, or not an S3 URL.
        """
        try:
            bucket, quarantine = parse_s3_url(prefix)
        except ValueError:
            raise ConfigurationError("quarantine: expected an s3:// URL") from None
        quarantine = quarantine if not quarantine or quarantine.endswith("/") else quarantine + "/"
        if bucket == self.bucket and quarantine.startswith(self.prefix):
            raise ConfigurationError("quarantine: must be outside the dataset's prefix")
        _, key = parse_s3_url(ref)
        return s3_ref(bucket, quarantine + key.removeprefix(self.prefix))

    def move(self, ref: str, to: str) -> None:
        """Move the object at *ref* to *to* (copy, then delete)."""
        bucket, key = parse_s3_url(ref)
        target_bucket, target = parse_s3_url(to)
        move_object(self._client, bucket, key, target, target_bucket=target_bucket)

    def delete(self, ref: str) -> None:
        """Delete the object at *ref* (gone already is success, as S3 says)."""
        bucket, key = parse_s3_url(ref)
        with aws_call("s3", "DeleteObject"):
            self._client.delete_object(Bucket=bucket, Key=key)
