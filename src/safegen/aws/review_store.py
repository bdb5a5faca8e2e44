"""The review store on AWS: image bytes in S3, records in DynamoDB.

* :class:`S3Blobs`: the live and the backup area are two prefixes of one bucket or two
  buckets (they may not overlap). A move is ``CopyObject`` then, only after the copy is
  verified and recorded, ``DeleteObject`` (the store orders the steps). Server-side encryption
  settings are passed to every ``PutObject`` and ``CopyObject``.
* :class:`DynamoState`: one item per image (``key``, ``version``, ``body``, and ``status``
  once committed). Every write is a ``PutItem`` or ``DeleteItem`` with a
  ``ConditionExpression`` on ``version``, so two reviewers cannot both win. Listing by status
  queries a global secondary index (partition ``status``, sort ``key``): a page costs what it
  returns, in key order, where a filtered ``Scan`` would read the whole table for every page.
  Items without a ``status`` (uploads in progress, removals) are not in the sparse index.
  The index is eventually consistent: an image may show in its new list a moment late; ``get``,
  ``deliverable`` and ``open`` read the table itself, strongly consistent.

Build a store with :func:`aws_review_store`; make the table with :func:`create_review_table`
(or the CloudFormation in the "Moderating uploads" guide).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import attrs
from botocore.exceptions import ClientError

from safegen.aws._client import instrument, make_client
from safegen.aws._errors import aws_call
from safegen.errors import ConfigurationError
from safegen.review.events import AssetStatus, Invalidator, Notifier
from safegen.review.ports import (
    LISTING_ORDER,
    Area,
    AssetExistsError,
    AuditSink,
    ConflictError,
    IntegrityError,
    Record,
    check_key,
)
from safegen.review.store import DEFAULT_MAX_BYTES, Moderates, ReviewStore

if TYPE_CHECKING:
    from collections.abc import Sequence

    import boto3

__all__ = [
    "DEFAULT_INDEX",
    "DynamoState",
    "S3Blobs",
    "S3Location",
    "aws_review_store",
    "create_review_table",
]

DEFAULT_INDEX = "status-key"
"""The name of the global secondary index :class:`DynamoState` lists by status with."""

_ENCRYPTION = frozenset(
    {"ServerSideEncryption", "SSEKMSKeyId", "SSEKMSEncryptionContext", "BucketKeyEnabled"}
)
_MISSING = frozenset({"NoSuchKey", "404", "NotFound"})
_CONDITION = "ConditionalCheckFailedException"


def _prefix(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str) or (value and not value.endswith("/")):
        raise ConfigurationError(f"{attribute.name}: empty or ending with '/', got {value!r}")
    if value:
        check_key(value[:-1])


def _name(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str) or not value:
        raise ConfigurationError(f"{attribute.name}: a non-empty name, got {value!r}")


@attrs.frozen(kw_only=True)
class S3Location:
    """A bucket and a prefix in it (``""`` or ending with ``/``)."""

    bucket: str = attrs.field(validator=_name)
    prefix: str = attrs.field(default="", validator=_prefix)

    def object_key(self, key: str) -> str:
        """Return the S3 object key of an image's *key* here."""
        return self.prefix + check_key(key)

    def overlaps(self, other: S3Location) -> bool:
        """Whether an object could be in both locations."""
        return self.bucket == other.bucket and (
            self.prefix.startswith(other.prefix) or other.prefix.startswith(self.prefix)
        )


def _encryption(_: object, attribute: attrs.Attribute[Any], value: Mapping[str, Any]) -> None:
    unknown = set(value) - _ENCRYPTION
    if unknown:
        raise ConfigurationError(
            f"{attribute.name}: only {sorted(_ENCRYPTION)} are passed to S3, got {sorted(unknown)}"
        )


def _apart(instance: S3Blobs, _: attrs.Attribute[Any], value: S3Location) -> None:
    if instance.live.overlaps(value):
        raise ConfigurationError(
            "backup: the live and backup areas overlap (same bucket, one prefix inside the other)"
        )


@attrs.frozen(kw_only=True)
class S3Blobs:
    """The live and backup areas in S3.

    :param client: a boto3 S3 client.
    :param live: where deliverable images are (what a CDN may serve).
    :param backup: where the others are; never under the live prefix, nor it under this.
    :param encryption: ``ServerSideEncryption``, ``SSEKMSKeyId``, ``SSEKMSEncryptionContext``,
        ``BucketKeyEnabled``, passed to every ``PutObject`` and ``CopyObject``.
    """

    client: Any = attrs.field(converter=instrument)
    live: S3Location
    backup: S3Location = attrs.field(validator=_apart)
    encryption: Mapping[str, Any] = attrs.field(factory=dict, validator=_encryption)

    def _at(self, area: Area) -> S3Location:
        return self.live if area is Area.LIVE else self.backup

    def write(self, area: Area, key: str, data: bytes, *, content_type: str) -> None:
        """``PutObject`` (atomic: a reader sees the whole object or none)."""
        where = self._at(area)
        with aws_call("s3", "PutObject"):
            self.client.put_object(
                Bucket=where.bucket,
                Key=where.object_key(key),
                Body=data,
                ContentType=content_type,
                **self.encryption,
            )

    def read(self, area: Area, key: str, *, max_bytes: int) -> bytes | None:
        """``GetObject``; ``None`` when there is no such object."""
        where = self._at(area)
        with aws_call("s3", "GetObject"):
            try:
                response = self.client.get_object(Bucket=where.bucket, Key=where.object_key(key))
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") in _MISSING:
                    return None
                raise
            body = response["Body"]
            try:
                if int(response.get("ContentLength", 0)) > max_bytes:
                    raise IntegrityError(f"image {key!r}: more bytes stored than recorded")
                data: bytes = body.read(max_bytes + 1)
            finally:
                body.close()
        if len(data) > max_bytes:
            raise IntegrityError(f"image {key!r}: more bytes stored than recorded")
        return data

    def exists(self, area: Area, key: str) -> bool:
        """``HeadObject``."""
        where = self._at(area)
        with aws_call("s3", "HeadObject"):
            try:
                self.client.head_object(Bucket=where.bucket, Key=where.object_key(key))
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") in _MISSING:
                    return False
                raise
        return True

    def copy(self, key: str, *, source: Area, target: Area) -> None:
        """``CopyObject`` (server side; the content type is copied with it)."""
        origin, where = self._at(source), self._at(target)
        with aws_call("s3", "CopyObject"):
            self.client.copy_object(
                Bucket=where.bucket,
                Key=where.object_key(key),
                CopySource={"Bucket": origin.bucket, "Key": origin.object_key(key)},
                MetadataDirective="COPY",
                **self.encryption,
            )

    def delete(self, area: Area, key: str) -> None:
        """``DeleteObject`` (deleting a missing object succeeds in S3)."""
        where = self._at(area)
        with aws_call("s3", "DeleteObject"):
            self.client.delete_object(Bucket=where.bucket, Key=where.object_key(key))

    def sweep(self) -> int:
        """Return 0: S3 writes leave no partial objects.

        (Abort stale multipart uploads with a bucket lifecycle rule.)
        """
        return 0


def _code(error: ClientError) -> str | None:
    code = error.response.get("Error", {}).get("Code")
    return code if isinstance(code, str) else None


@attrs.frozen(kw_only=True)
class DynamoState:
    """Records in a DynamoDB table, written conditionally on their version.

    :param client: a boto3 DynamoDB client.
    :param table: the table (partition key ``key``, a string).
    :param index: the global secondary index on ``status`` (partition) and ``key`` (sort),
        projecting all attributes.
    """

    client: Any = attrs.field(converter=instrument)
    table: str = attrs.field(validator=_name)
    index: str = attrs.field(default=DEFAULT_INDEX, validator=_name)

    def _item(self, record: Record) -> dict[str, Any]:
        item: dict[str, Any] = {
            "key": {"S": record.key},
            "version": {"N": str(record.version)},
            "body": {"S": record.to_json()},
        }
        if record.status is not None:
            item["status"] = {"S": record.status.value}
        return item

    def get(self, key: str) -> Record | None:
        """``GetItem``, strongly consistent."""
        with aws_call("dynamodb", "GetItem"):
            response = self.client.get_item(
                TableName=self.table, Key={"key": {"S": key}}, ConsistentRead=True
            )
        item = response.get("Item")
        return None if item is None else Record.from_json(item["body"]["S"])

    def create(self, record: Record) -> None:
        """``PutItem`` if no item has the key."""
        with aws_call("dynamodb", "PutItem"):
            try:
                self.client.put_item(
                    TableName=self.table,
                    Item=self._item(record),
                    ConditionExpression="attribute_not_exists(#k)",
                    ExpressionAttributeNames={"#k": "key"},
                )
            except ClientError as error:
                if _code(error) == _CONDITION:
                    raise AssetExistsError(
                        f"an image with key {record.key!r} is already stored"
                    ) from None
                raise

    def update(self, record: Record, *, expected_version: int) -> None:
        """``PutItem`` if the stored item has *expected_version*."""
        with aws_call("dynamodb", "PutItem"):
            try:
                self.client.put_item(
                    TableName=self.table,
                    Item=self._item(record),
                    ConditionExpression="#v = :v",
                    ExpressionAttributeNames={"#v": "version"},
                    ExpressionAttributeValues={":v": {"N": str(expected_version)}},
                )
            except ClientError as error:
                if _code(error) == _CONDITION:
                    raise ConflictError(
                        f"image {record.key!r} was changed by another writer"
                    ) from None
                raise

    def delete(self, key: str, *, expected_version: int) -> None:
        """``DeleteItem`` if the stored item has *expected_version*."""
        with aws_call("dynamodb", "DeleteItem"):
            try:
                self.client.delete_item(
                    TableName=self.table,
                    Key={"key": {"S": key}},
                    ConditionExpression="#v = :v",
                    ExpressionAttributeNames={"#v": "version"},
                    ExpressionAttributeValues={":v": {"N": str(expected_version)}},
                )
            except ClientError as error:
                if _code(error) == _CONDITION:
                    raise ConflictError(f"image {key!r} was changed by another writer") from None
                raise

    def _query(self, status: str, after: str | None, wanted: int) -> list[Record]:
        records: list[Record] = []
        condition = "#s = :s" if after is None else "#s = :s AND #k > :k"
        values: dict[str, Any] = {":s": {"S": status}}
        if after is not None:
            values[":k"] = {"S": after}
        start: dict[str, Any] | None = None
        while len(records) < wanted:
            extra = {} if start is None else {"ExclusiveStartKey": start}
            with aws_call("dynamodb", "Query"):
                response = self.client.query(
                    TableName=self.table,
                    IndexName=self.index,
                    KeyConditionExpression=condition,
                    ExpressionAttributeNames={"#s": "status", **({"#k": "key"} if after else {})},
                    ExpressionAttributeValues=values,
                    Limit=wanted - len(records),
                    **extra,
                )
            records.extend(Record.from_json(item["body"]["S"]) for item in response["Items"])
            start = response.get("LastEvaluatedKey")
            if not start:
                break
        return records

    def page(
        self, *, status: AssetStatus | None, limit: int, after: tuple[str, str] | None
    ) -> tuple[list[Record], tuple[str, str] | None]:
        """``Query`` the status index, one status after another in listing order."""
        order = [status] if status is not None else list(LISTING_ORDER)
        if after is not None:
            first = AssetStatus(after[0])
            order = order[order.index(first) :] if first in order else []
        found: list[Record] = []
        for listed in order:
            start = after[1] if after is not None and after[0] == listed.value else None
            found.extend(self._query(listed.value, start, limit + 1 - len(found)))
            if len(found) > limit:
                break
        records = found[:limit]
        last = records[-1] if len(found) > limit else None
        return records, None if last is None or last.status is None else (
            last.status.value,
            last.key,
        )

    def scan(self) -> Iterator[Record]:
        """``Scan`` the table, strongly consistent, page by page."""
        start: dict[str, Any] | None = None
        while True:
            extra = {} if start is None else {"ExclusiveStartKey": start}
            with aws_call("dynamodb", "Scan"):
                response = self.client.scan(TableName=self.table, ConsistentRead=True, **extra)
            for item in response["Items"]:
                yield Record.from_json(item["body"]["S"])
            start = response.get("LastEvaluatedKey")
            if not start:
                return


def create_review_table(client: Any, table: str, *, index: str = DEFAULT_INDEX) -> None:
    """Create the DynamoDB table (on demand) and its status index, and wait until it is active.

    For tests and quick starts; production tables belong in infrastructure code (the guide
    shows the CloudFormation).
    """
    with aws_call("dynamodb", "CreateTable"):
        client.create_table(
            TableName=table,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[
                {"AttributeName": "key", "AttributeType": "S"},
                {"AttributeName": "status", "AttributeType": "S"},
            ],
            KeySchema=[{"AttributeName": "key", "KeyType": "HASH"}],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": index,
                    "KeySchema": [
                        {"AttributeName": "status", "KeyType": "HASH"},
                        {"AttributeName": "key", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
        )
        client.get_waiter("table_exists").wait(TableName=table)


def aws_review_store(
    *,
    bucket: str,
    table: str,
    live_prefix: str = "live/",
    backup_prefix: str = "backup/",
    backup_bucket: str | None = None,
    encryption: Mapping[str, Any] | None = None,
    index: str = DEFAULT_INDEX,
    session: boto3.Session | None = None,
    region_name: str | None = None,
    s3_client: Any = None,
    dynamodb_client: Any = None,
    moderator: Moderates | None = None,
    audit: AuditSink | None = None,
    notify: Notifier | Sequence[Notifier] = (),
    invalidate: Invalidator | None = None,
    pending_deliverable: bool = False,
    max_bytes: int = DEFAULT_MAX_BYTES,
    grace: float = 60.0,
) -> ReviewStore:
    """Build a :class:`~safegen.review.store.ReviewStore` on S3 and DynamoDB.

    :param bucket: the live area's bucket (and the backup's unless *backup_bucket*).
    :param table: the DynamoDB table (see :func:`create_review_table`).
    :param live_prefix: the live area's prefix (``""`` or ending with ``/``).
    :param backup_prefix: the backup area's prefix; the two areas may not overlap.
    :param backup_bucket: a separate bucket for the backup area.
    :param encryption: server-side encryption settings for every object written.
    :param s3_client: an S3 client to use instead.
    :param dynamodb_client: a DynamoDB client to use instead.

    Clients are made from ``session`` (boto3's default session when ``None``) in
    ``region_name``, unless given. The other parameters are
    :class:`~safegen.review.store.ReviewStore`'s.
    """
    s3 = s3_client or make_client("s3", session, region_name=region_name, max_attempts=5)
    dynamodb = dynamodb_client or make_client(
        "dynamodb", session, region_name=region_name, max_attempts=5
    )
    blobs = S3Blobs(
        client=s3,
        live=S3Location(bucket=bucket, prefix=live_prefix),
        backup=S3Location(bucket=backup_bucket or bucket, prefix=backup_prefix),
        encryption=dict(encryption or {}),
    )
    return ReviewStore(
        blobs=blobs,
        state=DynamoState(client=dynamodb, table=table, index=index),
        moderator=moderator,
        audit=audit,
        notify=notify,
        invalidate=invalidate,
        pending_deliverable=pending_deliverable,
        max_bytes=max_bytes,
        grace=grace,
    )
