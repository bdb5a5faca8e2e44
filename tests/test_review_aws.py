"""The review store's contract on AWS (S3 and DynamoDB, emulated by moto), and the AWS parts."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest
from moto import mock_aws

from safegen.aws.review_store import (
    DynamoState,
    S3Blobs,
    S3Location,
    aws_review_store,
    create_review_table,
)
from safegen.errors import ConfigurationError, ServiceError
from safegen.review import Area, AssetStatus, BlobStore, InvalidKeyError, StateStore
from tests.aws import fake_client
from tests.review_contract import ReviewContract, Stub, image

BUCKET = "uploads"
BACKUP_BUCKET = "uploads-backup"


class Aws:
    """Fresh ports: a new table and new prefixes (live in one bucket, backup in another)."""

    def __init__(self, s3: Any, dynamodb: Any) -> None:
        self.s3, self.dynamodb = s3, dynamodb
        self.counter = itertools.count()

    def fresh(self) -> tuple[BlobStore, StateStore]:
        """New, empty ports."""
        n = next(self.counter)
        create_review_table(self.dynamodb, f"review-{n}")
        blobs = S3Blobs(
            client=self.s3,
            live=S3Location(bucket=BUCKET, prefix=f"s{n}/live/"),
            backup=S3Location(bucket=BACKUP_BUCKET if n % 2 else BUCKET, prefix=f"s{n}/backup/"),
            encryption={"ServerSideEncryption": "AES256"},
        )
        return blobs, DynamoState(client=self.dynamodb, table=f"review-{n}")

    def blob_count(self, blobs: BlobStore) -> int:
        """Objects under the two areas' prefixes."""
        assert isinstance(blobs, S3Blobs)
        total = 0
        for where in (blobs.live, blobs.backup):
            pages = self.s3.get_paginator("list_objects_v2").paginate(
                Bucket=where.bucket, Prefix=where.prefix
            )
            total += sum(len(page.get("Contents", [])) for page in pages)
        return total


@pytest.fixture(scope="module")
def aws() -> Iterator[Aws]:
    """Moto's S3 and DynamoDB with the two buckets (one module-wide mock: tables are cheap)."""
    with mock_aws():
        s3, dynamodb = fake_client("s3"), fake_client("dynamodb")
        for name in (BUCKET, BACKUP_BUCKET):
            s3.create_bucket(Bucket=name)
        yield Aws(s3, dynamodb)


class TestAwsContract(ReviewContract):
    """The shared contract, on S3 and DynamoDB."""

    @pytest.fixture
    def backend(self, aws: Aws) -> Aws:
        """The module's emulated AWS."""
        return aws


def test_encryption_is_passed_to_every_write(aws: Aws) -> None:
    """Objects written and copied carry the configured server-side encryption."""
    blobs, state = aws.fresh()
    assert isinstance(blobs, S3Blobs)
    from safegen.review import ReviewStore

    store = ReviewStore(blobs=blobs, state=state, moderator=Stub("block"))
    store.put(image(1), key="k.png")
    store.approve("k.png", by="ann")
    head = aws.s3.head_object(Bucket=blobs.live.bucket, Key=blobs.live.object_key("k.png"))
    assert head["ServerSideEncryption"] == "AES256"
    assert head["ContentType"] == "image/png"


def test_object_keys_stay_under_their_prefix() -> None:
    """An image's object key is its area's prefix plus a checked key: never outside it."""
    where = S3Location(bucket="b", prefix="live/")
    assert where.object_key("a/b.png") == "live/a/b.png"
    with pytest.raises(InvalidKeyError):
        where.object_key("../backup/x.png")


@pytest.mark.parametrize(
    ("live", "backup"),
    [("live/", "live/backup/"), ("", "backup/"), ("a/", "a/")],
)
def test_overlapping_areas_refused(live: str, backup: str) -> None:
    """Live and backup areas in one bucket may not contain one another."""
    with pytest.raises(ConfigurationError, match="overlap"):
        S3Blobs(
            client=object(),
            live=S3Location(bucket="b", prefix=live),
            backup=S3Location(bucket="b", prefix=backup),
        )


def test_unknown_encryption_setting_refused() -> None:
    """Only server-side encryption settings may be passed through."""
    with pytest.raises(ConfigurationError, match="ACL"):
        S3Blobs(
            client=object(),
            live=S3Location(bucket="b", prefix="live/"),
            backup=S3Location(bucket="b", prefix="backup/"),
            encryption={"ACL": "public-read"},
        )


def test_aws_errors_are_safegen_errors(aws: Aws) -> None:
    """A missing bucket or table is a ServiceError, never a bare botocore error."""
    store = aws_review_store(
        bucket="no-such-bucket",
        table="no-such-table",
        s3_client=aws.s3,
        dynamodb_client=aws.dynamodb,
    )
    with pytest.raises(ServiceError):
        store.get("k.png")
    with pytest.raises(ServiceError):
        store.blobs.exists(Area.LIVE, "k.png")


def test_aws_review_store_builds_a_working_store(aws: Aws) -> None:
    """The named constructor wires S3 and DynamoDB into a store that works end to end."""
    create_review_table(aws.dynamodb, "built")
    store = aws_review_store(
        bucket=BUCKET,
        table="built",
        live_prefix="built/live/",
        backup_prefix="built/backup/",
        s3_client=aws.s3,
        dynamodb_client=aws.dynamodb,
        moderator=Stub("review"),
    )
    store.put(image(1), key="k.png")
    assert [a.status for a in store.list().assets] == [AssetStatus.PENDING]
