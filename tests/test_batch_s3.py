"""Batches over S3 (moto): prefix and manifest sources, the S3 ledger, reads and moves."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from moto import mock_aws

from safegen import ImageModerator, ModerationPolicy, S3Object
from safegen.aws.s3 import (
    S3LedgerStorage,
    fetcher,
    manifest_object_items,
    move_object,
    open_ledger,
    prefix_items,
)
from safegen.batch import ClientEngine, Item, Ledger, LedgerError, LedgerRecord
from safegen.errors import ServiceError
from safegen.testing import FakeImageBackend
from tests.aws import fake_client

POLICY = ModerationPolicy()
BUCKET = "batch-bucket"


@pytest.fixture
def s3() -> Iterator[Any]:
    """An S3 client on a fresh moto bucket."""
    with mock_aws():
        client = fake_client("s3")
        client.create_bucket(Bucket=BUCKET)
        yield client


def test_a_prefix_is_listed_page_by_page_and_filtered(s3: Any) -> None:
    """Only images under the prefix, over several pages; an over-size one is marked, not read."""
    for index in range(7):
        s3.put_object(Bucket=BUCKET, Key=f"in/{index}.jpg", Body=b"x" * 10)
    s3.put_object(Bucket=BUCKET, Key="in/notes.txt", Body=b"x")
    s3.put_object(Bucket=BUCKET, Key="in/big.PNG", Body=b"x" * 101)
    s3.put_object(Bucket=BUCKET, Key="in/edge.png", Body=b"x" * 100)
    s3.put_object(Bucket=BUCKET, Key="out/0.jpg", Body=b"x")
    items = list(prefix_items(s3, BUCKET, "in/", max_bytes=100, page_size=2))
    assert len(items) == 10
    notes = next(item for item in items if item.ref.endswith("notes.txt"))
    assert (notes.problem, notes.skip) == ("unsupported_type", True)
    big = next(item for item in items if item.ref.endswith("big.PNG"))
    assert big.problem == "too_large"
    assert big.size == 101
    edge = next(item for item in items if item.ref.endswith("edge.png"))
    assert edge.problem is None
    assert edge.source == S3Object(BUCKET, "in/edge.png")


def test_every_object_of_a_prefix_is_listed_none_dropped(s3: Any, tmp_path: Any) -> None:
    """Objects Rekognition does not take are skipped records, counted; suffixes=None takes all."""
    keys = ["d/ok.png", "d/a.webp", "d/b.gif", "d/c.BMP", "d/noext", "d/x.png.bak", "d/dir/"]
    for key in keys:
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"" if key.endswith("/") else b"data")
    s3.put_object(Bucket=BUCKET, Key="d/marker/", Body=b"x")  # a "folder" holding bytes
    backend = FakeImageBackend()
    with Ledger.open(tmp_path / "l.jsonl", policy=POLICY, engine="client") as ledger:
        summary = ClientEngine(ImageModerator(backend, POLICY)).run(
            prefix_items(s3, BUCKET, "d/", page_size=2), ledger
        )
    assert summary.checked == 1
    assert summary.skips == {"folder_key": 1, "unsupported_type": 5}
    everything = list(prefix_items(s3, BUCKET, "d/", suffixes=None))
    assert sorted(item.ref for item in everything if not item.skip) == sorted(
        f"s3://{BUCKET}/{key}" for key in keys if not key.endswith("/")
    )


def test_an_object_replaced_under_its_key_is_checked_again(s3: Any, tmp_path: Any) -> None:
    """A re-run over one ledger checks an overwritten object again, and only that one."""
    for key in ("p/a.png", "p/b.png"):
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"first")
    backend = FakeImageBackend()
    engine = ClientEngine(ImageModerator(backend, POLICY))
    for change in (None, "p/a.png"):
        if change is not None:
            s3.put_object(Bucket=BUCKET, Key=change, Body=b"other")  # same size, new bytes
        with Ledger.open(tmp_path / "l.jsonl", policy=POLICY, engine="client") as ledger:
            engine.run(prefix_items(s3, BUCKET, "p/"), ledger)
    assert [call.image for call in backend.calls][2:] == [S3Object(BUCKET, "p/a.png")]


def test_a_missing_bucket_is_a_service_error(s3: Any) -> None:
    """A listing S3 refuses is a ServiceError with S3's code, not a botocore error."""
    with pytest.raises(ServiceError) as caught:
        list(prefix_items(s3, "no-such-bucket", ""))
    assert caught.value.code == "NoSuchBucket"


def test_a_manifest_in_s3_is_streamed_with_bad_lines_as_failures(s3: Any) -> None:
    """A manifest object's good lines are items; its bad ones are failures with a line number."""
    body = '{"source-ref": "s3://batch-bucket/a.jpg"}\n{oops\n{"source-ref": "s3://bkt/c.png"}\n'
    s3.put_object(Bucket=BUCKET, Key="manifest.jsonl", Body=body.encode())
    items = list(manifest_object_items(s3, f"s3://{BUCKET}/manifest.jsonl"))
    assert [item.problem for item in items] == [None, "bad_manifest_line", None]
    assert items[1].ref == f"s3://{BUCKET}/manifest.jsonl#line=2"


def test_the_s3_ledger_resumes_and_refuses_a_second_writer(s3: Any) -> None:
    """Parts are written whole; a reopened ledger has them; a stale second writer is refused."""
    where = f"s3://{BUCKET}/runs/ledger.jsonl"
    with open_ledger(s3, where, policy=POLICY, engine="client") as ledger:
        ledger.append(LedgerRecord("s3://x/a.png", "checked", "allow",
                                   policy_sha256=POLICY.sha256))  # fmt: skip
    with open_ledger(s3, where, policy=POLICY, engine="client") as again:
        assert again.done == {"s3://x/a.png"}
    first = Ledger.open(S3LedgerStorage(s3, BUCKET, "runs/ledger.jsonl"), policy=POLICY,
                        engine="client", flush_every=1)  # fmt: skip
    second = Ledger.open(S3LedgerStorage(s3, BUCKET, "runs/ledger.jsonl"), policy=POLICY,
                         engine="client", flush_every=1)  # fmt: skip
    second.append(LedgerRecord("s3://x/b.png", "checked", "allow", policy_sha256=POLICY.sha256))
    with pytest.raises(LedgerError, match="another run"):
        first.append(LedgerRecord("s3://x/c.png", "checked", "allow", policy_sha256=POLICY.sha256))


def test_a_local_backend_reads_s3_bytes_within_the_limit(s3: Any) -> None:
    """With fetch, a local backend gets the bytes; an object over the limit is not checked."""
    s3.put_object(Bucket=BUCKET, Key="a.png", Body=b"a" * 100)
    s3.put_object(Bucket=BUCKET, Key="b.png", Body=b"b" * 101)
    backend = FakeImageBackend()
    engine = ClientEngine(ImageModerator(backend, POLICY), max_bytes=100, fetch=fetcher(s3))
    items = [Item(f"s3://{BUCKET}/{k}", S3Object(BUCKET, k)) for k in ("a.png", "b.png")]
    with open_ledger(s3, f"s3://{BUCKET}/l", policy=POLICY, engine="client") as ledger:
        summary = engine.run(items, ledger)
    assert [call.image for call in backend.calls] == [b"a" * 100]
    assert summary.checked == 1
    assert summary.failed == 1


def test_a_move_completes_after_a_crash_between_copy_and_delete(s3: Any) -> None:
    """Moving twice (a crash after the copy) ends with the object moved, once."""
    s3.put_object(Bucket=BUCKET, Key="d/x.png", Body=b"x")
    s3.copy_object(Bucket=BUCKET, Key="q/x.png", CopySource={"Bucket": BUCKET, "Key": "d/x.png"})
    move_object(s3, BUCKET, "d/x.png", "q/x.png")  # the rerun of the interrupted move
    move_object(s3, BUCKET, "d/x.png", "q/x.png")  # and once more: nothing left to do
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]]
    assert keys == ["q/x.png"]
    assert json.dumps(keys)  # plain data


class _HugePartBody:
    """A ledger part: one good line, then a 16 MiB line, produced a block at a time."""

    def iter_chunks(self, size: int = 1024) -> Iterator[bytes]:
        yield b'{"kind":"note"}\n'
        for _ in range(256):
            yield b"x" * 65536

    def read(self, amount: int | None = None) -> bytes:
        return b"".join(self.iter_chunks())

    def close(self) -> None:
        """Nothing to release."""


class _OnePartClient:
    """Just enough of an S3 client to list and read one ledger part."""

    def get_paginator(self, name: str) -> Any:
        class _Pages:
            def paginate(self, **kwargs: Any) -> list[dict[str, Any]]:
                return [{"Contents": [{"Key": "l/0000000001.jsonl"}]}]

        return _Pages()

    def get_object(self, **kwargs: Any) -> dict[str, Any]:
        return {"Body": _HugePartBody()}


def test_an_s3_ledger_part_with_a_huge_line_is_refused_without_holding_it() -> None:
    """A planted line over 1 MiB in an S3 ledger part: refused (LedgerError), memory flat."""
    import tracemalloc

    storage = S3LedgerStorage(_OnePartClient(), BUCKET, "l")
    tracemalloc.start()
    try:
        with pytest.raises(LedgerError, match="longer than"):
            list(storage.lines())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * 1024 * 1024  # the old reader held the whole 16 MiB part
