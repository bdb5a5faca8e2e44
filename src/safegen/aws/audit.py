r"""The audit trail on AWS: a DynamoDB table, or one S3 object per entry.

Both are :class:`~safegen.review.audit.AuditLog`\\ s, so an
:class:`~safegen.review.audit.AuditTrail` verifies them as it does the embedded forms.

- :class:`DynamoDBAuditLog`: one item per entry (partition ``chain``, sort ``seq``). An append
  is one ``TransactWriteItems``: a ``Put`` conditional on the ``seq`` being free, and a
  ``ConditionCheck`` that the item before it holds ``prev`` as its hash. Two writers cannot
  fork the chain even if one skips :class:`~safegen.review.audit.AuditTrail`. A global
  secondary index on ``key`` serves :meth:`DynamoDBAuditLog.for_key` (``safegen audit show``),
  which yields only entries whose own key matches; the ``key`` and ``hash`` attributes kept
  beside each entry are checked against it by :meth:`~safegen.review.audit.AuditTrail.verify`.
- :class:`S3AuditLog`: one object per entry, ``<prefix><seq, 20 digits>.json``, written with
  ``If-None-Match: *``, so two writers cannot both write one ``seq``. S3 cannot check the
  previous object in the same request: a writer derives ``prev`` from the head it read, and a
  stale head means a taken ``seq``, so the honest race is lost, not forked; a forged ``prev``
  is what :meth:`~safegen.review.audit.AuditTrail.verify` finds. Finding one key's history
  reads every entry (S3 has no index): prefer DynamoDB when ``show`` matters.

Every failure is a :class:`~safegen.errors.ServiceError` keeping the AWS error code.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import attrs

from safegen.aws._client import instrument, make_client
from safegen.aws._errors import aws_call
from safegen.errors import ConfigurationError, SafegenError
from safegen.review.audit import (
    MAX_ENTRY_BYTES,
    AuditEntry,
    AuditRecord,
    AuditRepair,
    ProblemKind,
)

if TYPE_CHECKING:
    import boto3

__all__ = ["DynamoDBAuditLog", "S3AuditLog", "create_audit_table"]

_log = logging.getLogger(__name__)
_TABLE = re.compile(r"[a-zA-Z0-9_.-]{3,255}")
_INDEX = "by-key"


def _matches(pattern: re.Pattern[str], what: str) -> Any:
    def check(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if not isinstance(value, str) or not pattern.fullmatch(value):
            raise ConfigurationError(
                f"{type(instance).__name__}.{attribute.name}: {value!r} is not {what}"
            )

    return check


def _chain(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str) or not value or len(value) > 1024:
        raise ConfigurationError(f"{type(instance).__name__}.chain: 1 to 1,024 characters")


def _lost_race(error: Exception) -> bool:
    """Whether a DynamoDB write failed only because another writer got there first."""
    from botocore.exceptions import ClientError

    if not isinstance(error, ClientError):
        return False
    code = error.response.get("Error", {}).get("Code")
    if code == "ConditionalCheckFailedException":
        return True
    if code != "TransactionCanceledException":
        return False
    reasons: list[Any] = list(error.response.get("CancellationReasons") or [])
    codes = {r.get("Code") for r in reasons if isinstance(r, dict)} - {"None", None}
    return bool(codes) and codes <= {"ConditionalCheckFailed", "TransactionConflict"}


def _string(item: dict[str, Any], name: str) -> object:
    """Return an item's string attribute *name*, or what stands there (``None``: absent)."""
    value = item.get(name)
    return value.get("S", value) if isinstance(value, dict) else value


def _item_record(item: dict[str, Any], where_seq: str) -> AuditRecord:
    """Read an item: its ``entry`` attribute, with the ``seq``, ``key`` and ``hash`` beside it.

    The ``key`` (which the by-key index serves) and ``hash`` (which the next append's
    condition reads) are kept beside the entry: they go to verify as the record's index, to
    be checked against the entry's own.
    """
    stored = item.get("seq", {}).get("N")
    seq = int(stored) if isinstance(stored, str) and stored.isdigit() else None
    where = f"item {stored if seq is not None else where_seq}"
    index = (("key", _string(item, "key")), ("hash", _string(item, "hash")))
    return AuditRecord.read(item.get("entry", {}).get("S"), where, seq, index=index)


def create_audit_table(client: Any, table: str, *, index: str = _INDEX) -> None:
    """Create a table for :class:`DynamoDBAuditLog` (on-demand billing) and wait for it.

    Partition key ``chain`` (S), sort key ``seq`` (N), and a global secondary index *index*
    on ``key`` (S) and ``seq``. Deploying with CloudFormation or Terraform, declare the same.
    """
    schema = [
        {"AttributeName": "chain", "AttributeType": "S"},
        {"AttributeName": "seq", "AttributeType": "N"},
        {"AttributeName": "key", "AttributeType": "S"},
    ]
    with aws_call("dynamodb", "CreateTable"):
        client.create_table(
            TableName=table,
            AttributeDefinitions=schema,
            KeySchema=[
                {"AttributeName": "chain", "KeyType": "HASH"},
                {"AttributeName": "seq", "KeyType": "RANGE"},
            ],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": index,
                    "KeySchema": [
                        {"AttributeName": "key", "KeyType": "HASH"},
                        {"AttributeName": "seq", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        client.get_waiter("table_exists").wait(TableName=table)


@attrs.frozen
class DynamoDBAuditLog:
    """An :class:`~safegen.review.audit.AuditLog` in a DynamoDB table (see the module).

    :param table: the table (:func:`create_audit_table` makes one).
    :param chain: the chain's name: one table can hold several trails.
    :param index: the global secondary index on ``key``.
    :param client: a boto3 ``dynamodb`` client (see :meth:`from_session`).
    :raises ConfigurationError: a table name DynamoDB would refuse.
    """

    table: str = attrs.field(validator=_matches(_TABLE, "a DynamoDB table name"))
    chain: str = attrs.field(default="audit", kw_only=True, validator=_chain)
    index: str = attrs.field(
        default=_INDEX, kw_only=True, validator=_matches(_TABLE, "an index name")
    )
    _client: Any = attrs.field(kw_only=True, converter=instrument, repr=False)

    @classmethod
    def from_session(
        cls,
        table: str,
        session: boto3.Session | None = None,
        *,
        chain: str = "audit",
        index: str = _INDEX,
        region_name: str | None = None,
        max_attempts: int = 5,
    ) -> DynamoDBAuditLog:
        """Build the log with a client that retries throttling (botocore standard mode)."""
        client = make_client(
            "dynamodb", session, region_name=region_name, max_attempts=max_attempts
        )
        return cls(table, chain=chain, index=index, client=client)

    def _key(self, seq: int) -> dict[str, Any]:
        return {"chain": {"S": self.chain}, "seq": {"N": str(seq)}}

    def head(self) -> AuditEntry | None:
        """Return the last entry (a strongly consistent read), ``None`` when there is none.

        :raises AuditError: the last item is not an entry.
        """
        with aws_call("dynamodb", "Query"):
            response = self._client.query(
                TableName=self.table,
                KeyConditionExpression="chain = :c",
                ExpressionAttributeValues={":c": {"S": self.chain}},
                ScanIndexForward=False,
                Limit=1,
                ConsistentRead=True,
            )
        items = response.get("Items") or []
        if not items:
            return None
        return _item_record(items[0], "last").read_entry()

    def append(self, entry: AuditEntry) -> bool:
        """Store *entry* if its ``seq`` is free and the item before holds its ``prev``.

        :returns: ``False`` when another writer got there first (nothing written).
        """
        item = {
            **self._key(entry.seq),
            "key": {"S": entry.key},
            "hash": {"S": entry.hash},
            "entry": {"S": entry.to_json()},
        }
        put = {
            "TableName": self.table,
            "Item": item,
            "ConditionExpression": "attribute_not_exists(seq)",
        }
        from botocore.exceptions import ClientError

        if entry.seq == 0:
            with aws_call("dynamodb", "PutItem"):
                try:
                    self._client.put_item(**put)
                except ClientError as error:
                    if _lost_race(error):
                        return False
                    raise
            return True
        check = {
            "TableName": self.table,
            "Key": self._key(entry.seq - 1),
            "ConditionExpression": "#h = :prev",
            "ExpressionAttributeNames": {"#h": "hash"},
            "ExpressionAttributeValues": {":prev": {"S": entry.prev}},
        }
        with aws_call("dynamodb", "TransactWriteItems"):
            try:
                self._client.transact_write_items(
                    TransactItems=[{"ConditionCheck": check}, {"Put": put}]
                )
            except ClientError as error:
                if _lost_race(error):
                    return False
                raise
        return True

    def _pages(self, **query: Any) -> Iterator[dict[str, Any]]:
        paginator = self._client.get_paginator("query")
        with aws_call("dynamodb", "Query"):
            pages = iter(paginator.paginate(TableName=self.table, **query))
        while True:
            with aws_call("dynamodb", "Query"):
                page = next(pages, None)
            if page is None:
                return
            yield from page.get("Items") or []

    def records(self) -> Iterator[AuditRecord]:
        """Yield every item in ``seq`` order (strongly consistent, a page at a time)."""
        items = self._pages(
            KeyConditionExpression="chain = :c",
            ExpressionAttributeValues={":c": {"S": self.chain}},
            ConsistentRead=True,
        )
        for number, item in enumerate(items):
            yield _item_record(item, f"#{number}")

    def for_key(self, key: str) -> Iterator[AuditEntry]:
        """Yield *key*'s readable entries in order, through the key index.

        The index is eventually consistent: an entry a moment old may not be there yet. An
        item whose ``key`` attribute says *key* but whose entry does not is skipped (and
        logged without its content): verify names it.
        """
        items = self._pages(
            IndexName=self.index,
            KeyConditionExpression="#k = :k",
            FilterExpression="chain = :c",
            ExpressionAttributeNames={"#k": "key"},
            ExpressionAttributeValues={":k": {"S": key}, ":c": {"S": self.chain}},
        )
        for item in items:
            record = _item_record(item, "?")
            entry = record.entry
            if entry is None:
                continue
            if entry.key != key or entry.seq != record.stored_seq:
                _log.warning("audit: an item's key attribute is not its entry's key: run verify")
                continue
            yield entry

    def repair(self) -> AuditRepair:
        """Nothing to do: a DynamoDB write is whole or absent."""
        return AuditRepair(action="none")


_OBJECT = re.compile(r"(\d{20})\.json")


def _prefix(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str) or len(value) > 900 or (value and not value.endswith("/")):
        raise ConfigurationError("S3AuditLog.prefix: empty, or a key prefix ending in /")


@attrs.frozen
class S3AuditLog:
    """An :class:`~safegen.review.audit.AuditLog` as one S3 object per entry (see the module).

    A small ``<prefix>head`` object remembers the last ``seq`` written, so finding the head
    lists only what came after it; it is a hint (the listing is the truth), written after
    each entry. A hint past the real head (edited, or from a log cut short) is ignored: the
    whole listing is read.

    :param bucket: the bucket.
    :param prefix: the entries' key prefix, ending in ``/`` (``"audit/"``), or empty.
    :param client: a boto3 ``s3`` client (see :meth:`from_session`).
    """

    bucket: str = attrs.field(
        validator=_matches(re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]"), "an S3 bucket name")
    )
    prefix: str = attrs.field(default="audit/", kw_only=True, validator=_prefix)
    _client: Any = attrs.field(kw_only=True, converter=instrument, repr=False)

    @classmethod
    def from_session(
        cls,
        bucket: str,
        session: boto3.Session | None = None,
        *,
        prefix: str = "audit/",
        region_name: str | None = None,
        max_attempts: int = 5,
    ) -> S3AuditLog:
        """Build the log with a client that retries throttling (botocore standard mode)."""
        client = make_client("s3", session, region_name=region_name, max_attempts=max_attempts)
        return cls(bucket, prefix=prefix, client=client)

    def _name(self, seq: int) -> str:
        return f"{self.prefix}{seq:020d}.json"

    def _get(self, key: str) -> bytes | None:
        from botocore.exceptions import ClientError

        with aws_call("s3", "GetObject"):
            try:
                response = self._client.get_object(Bucket=self.bucket, Key=key)
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                    return None
                raise
            if int(response.get("ContentLength", 0)) > MAX_ENTRY_BYTES + 1:
                return b"\x00"  # too long to be an entry: unreadable, not read
            body: bytes = response["Body"].read()
            return body

    def _names(self, start_after: str | None = None) -> Iterator[tuple[str, int]]:
        paginator = self._client.get_paginator("list_objects_v2")
        options: dict[str, Any] = {"Bucket": self.bucket, "Prefix": self.prefix}
        if start_after is not None:
            options["StartAfter"] = start_after
        with aws_call("s3", "ListObjectsV2"):
            pages = iter(paginator.paginate(**options))
        while True:
            with aws_call("s3", "ListObjectsV2"):
                page = next(pages, None)
            if page is None:
                return
            for item in page.get("Contents") or []:
                name = item["Key"]
                found = _OBJECT.fullmatch(name[len(self.prefix) :])
                if found is not None:
                    yield name, int(found.group(1))

    def _record(self, name: str, seq: int) -> AuditRecord:
        where = f"object {name}"
        body = self._get(name)
        if body is None:
            return AuditRecord(
                where=where, problem=ProblemKind.UNREADABLE, detail="gone", stored_seq=seq
            )
        return AuditRecord.read(body, where, seq)

    def head(self) -> AuditEntry | None:
        """Return the last entry, ``None`` when there is none.

        :raises AuditError: the last object is not an entry.
        """
        hint = self._get(f"{self.prefix}head")
        start = None
        if hint is not None and hint.isdigit() and len(hint) <= 20:
            start = self._name(int(hint) - 1) if int(hint) > 0 else None
        last: tuple[str, int] | None = None
        for last in self._names(start):  # noqa: B007 - the loop finds the last one
            pass
        if last is None and start is not None:  # a hint past the real head: list it all
            for last in self._names():  # noqa: B007
                pass
        if last is None:
            return None
        return self._record(*last).read_entry()

    def append(self, entry: AuditEntry) -> bool:
        """Write *entry* if no object holds its ``seq`` yet (``If-None-Match: *``).

        :returns: ``False`` when another writer got there first (nothing written).
        """
        from botocore.exceptions import ClientError

        with aws_call("s3", "PutObject"):
            try:
                self._client.put_object(
                    Bucket=self.bucket,
                    Key=self._name(entry.seq),
                    Body=entry.to_json().encode("utf-8"),
                    ContentType="application/json",
                    IfNoneMatch="*",
                )
            except ClientError as error:
                code = error.response.get("Error", {}).get("Code")
                if code in ("PreconditionFailed", "ConditionalRequestConflict", "412"):
                    return False
                raise
        try:  # only a hint: the entry is written, whatever happens to it
            with aws_call("s3", "PutObject"):
                self._client.put_object(
                    Bucket=self.bucket, Key=f"{self.prefix}head", Body=str(entry.seq).encode()
                )
        except SafegenError as error:
            _log.warning("the audit log's head hint was not updated (%s)", type(error).__name__)
        return True

    def records(self) -> Iterator[AuditRecord]:
        """Yield every entry object in ``seq`` order (S3 lists keys in order)."""
        for name, seq in self._names():
            yield self._record(name, seq)

    def for_key(self, key: str) -> Iterator[AuditEntry]:
        """Yield *key*'s readable entries in order (reads every entry: S3 has no index)."""
        for record in self.records():
            entry = record.entry
            if entry is not None and entry.key == key:
                yield entry

    def repair(self) -> AuditRepair:
        """Nothing to do: an S3 object is written whole or not at all."""
        return AuditRepair(action="none")
