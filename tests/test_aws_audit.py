"""The audit trail on DynamoDB and S3 (moto): one chain, conditional appends, tampering found."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.stub import Stubber
from moto import mock_aws

from safegen.aws.audit import DynamoDBAuditLog, S3AuditLog, create_audit_table
from safegen.errors import ConfigurationError, ServiceError
from safegen.review.audit import GENESIS, AuditEntry, AuditError, AuditTrail, ProblemKind
from safegen.review.events import VerdictSummary
from tests.aws import fake_client

VERDICT = VerdictSummary(action="review", labels=[("Suggestive", 71.5)], policy_sha256="cd" * 32)


@pytest.fixture
def aws() -> Iterator[None]:
    """Every AWS call in the test goes to moto."""
    with mock_aws():
        yield


def dynamodb_log(chain: str = "audit") -> DynamoDBAuditLog:
    """A DynamoDB log on a fresh moto table (made once per test)."""
    client = fake_client("dynamodb")
    if "audit" not in client.list_tables()["TableNames"]:
        create_audit_table(client, "audit")
    return DynamoDBAuditLog("audit", chain=chain, client=client)


def s3_log() -> S3AuditLog:
    """An S3 log on a fresh moto bucket."""
    client = fake_client("s3")
    if not client.list_buckets()["Buckets"]:
        client.create_bucket(Bucket="audit-bucket")
    return S3AuditLog("audit-bucket", prefix="trail/", client=client)


LOGS: dict[str, Callable[[], Any]] = {"dynamodb": dynamodb_log, "s3": s3_log}


@pytest.fixture(params=sorted(LOGS))
def trail(request: pytest.FixtureRequest, aws: None) -> AuditTrail:
    """A trail on each AWS form."""
    return AuditTrail(LOGS[request.param]())


def fill(trail: AuditTrail, n: int) -> list[AuditEntry]:
    """Append *n* entries about three keys."""
    return [
        trail.append(
            "upload" if i % 2 == 0 else "reject",
            key=f"k{i % 3}",
            actor="moderation" if i % 2 == 0 else "bob",
            verdict=VERDICT if i % 2 == 0 else None,
            reason=None if i % 2 == 0 else "no",
        )
        for i in range(n)
    ]


def test_appends_form_a_chain_that_verifies(trail: AuditTrail) -> None:
    """Entries read back equal, linked, in order; verify passes; head() is the last hash."""
    entries = fill(trail, 5)
    assert list(trail.entries()) == entries
    report = trail.verify(anchor=entries[-1].hash)
    assert report.ok
    assert report.entries == 5
    assert report.anchored
    assert trail.head() == entries[-1].hash


def test_an_empty_log_verifies(trail: AuditTrail) -> None:
    """No entries: verifies, no head."""
    assert trail.verify().ok
    assert trail.head() is None


def test_history_of_one_key(trail: AuditTrail) -> None:
    """Show KEY's history: that key's entries in order, and no other."""
    entries = fill(trail, 7)
    assert trail.history("k1") == [e for e in entries if e.key == "k1"]
    assert trail.history("none") == []


def test_a_stale_append_is_refused(trail: AuditTrail) -> None:
    """An entry for a taken seq is not written (a conditional write); the chain stays whole."""
    entries = fill(trail, 3)
    stale = AuditEntry.seal(
        seq=2, event="upload", key="x", actor="m", at="2026-11-29T12:00:00Z", prev=entries[1].hash
    )
    assert not trail.log.append(stale)
    assert trail.verify().entries == 3
    assert list(trail.entries())[2] == entries[2]


def test_many_paginated_entries_verify(trail: AuditTrail) -> None:
    """A chain read back over several pages keeps its order (S3 lists 1,000 a page; moto too)."""
    fill(trail, 30)
    assert trail.verify().entries == 30


def test_dynamodb_refuses_a_forked_prev(aws: None) -> None:
    """DynamoDB checks the item before holds prev: a free seq with a wrong prev is refused."""
    log = dynamodb_log()
    trail = AuditTrail(log)
    entries = fill(trail, 2)
    fork = AuditEntry.seal(
        seq=2, event="upload", key="x", actor="m", at="2026-11-29T12:00:00Z", prev=entries[0].hash
    )
    assert not log.append(fork)
    good = AuditEntry.seal(
        seq=2, event="upload", key="x", actor="m", at="2026-11-29T12:00:00Z", prev=entries[1].hash
    )
    assert log.append(good)


def test_dynamodb_chains_in_one_table_are_apart(aws: None) -> None:
    """Two chains in one table each verify and have their own histories."""
    one, two = AuditTrail(dynamodb_log("one")), AuditTrail(dynamodb_log("two"))
    fill(one, 3)
    fill(two, 2)
    assert one.verify().entries == 3
    assert two.verify().entries == 2
    assert len(one.history("k0")) == 1
    assert len(two.history("k0")) == 1


def test_dynamodb_an_edited_item_is_found(aws: None) -> None:
    """Rewriting an item's entry (say, the actor) outside the trail is EDITED at that item."""
    log = dynamodb_log()
    trail = AuditTrail(log)
    entries = fill(trail, 4)
    data = entries[1].to_dict() | {"actor": "mallory"}
    log._client.update_item(
        TableName="audit",
        Key={"chain": {"S": "audit"}, "seq": {"N": "1"}},
        UpdateExpression="SET entry = :e",
        ExpressionAttributeValues={":e": {"S": json.dumps(data)}},
    )
    problem = trail.verify().problem
    assert problem is not None
    assert problem.kind is ProblemKind.EDITED
    assert problem.where == "item 1"


def test_dynamodb_a_deleted_item_is_found(aws: None) -> None:
    """Deleting an item before the head is REMOVED; deleting the head needs the anchor."""
    log = dynamodb_log()
    trail = AuditTrail(log)
    entries = fill(trail, 4)
    key = {"chain": {"S": "audit"}, "seq": {"N": "3"}}
    log._client.delete_item(TableName="audit", Key=key)
    assert trail.verify().ok
    tail = trail.verify(anchor=entries[-1].hash).problem
    assert tail is not None
    assert tail.kind is ProblemKind.TRUNCATED_TAIL
    log._client.delete_item(TableName="audit", Key={**key, "seq": {"N": "1"}})
    removed = trail.verify().problem
    assert removed is not None
    assert removed.kind is ProblemKind.REMOVED
    assert removed.where == "item 2"


def test_dynamodb_an_item_without_an_entry_is_unreadable(aws: None) -> None:
    """An item with no entry attribute is UNREADABLE where it is, and head() refuses it."""
    log = dynamodb_log()
    trail = AuditTrail(log)
    fill(trail, 1)
    log._client.put_item(TableName="audit", Item={"chain": {"S": "audit"}, "seq": {"N": "1"}})
    problem = trail.verify().problem
    assert problem is not None
    assert problem.kind is ProblemKind.UNREADABLE
    with pytest.raises(AuditError, match="cannot be read"):
        trail.append("upload", key="x", actor="m")


def test_dynamodb_errors_keep_their_code(aws: None) -> None:
    """A table that does not exist is a ServiceError with DynamoDB's code, not a botocore error."""
    log = DynamoDBAuditLog("missing", client=fake_client("dynamodb"))
    with pytest.raises(ServiceError) as caught:
        AuditTrail(log).append("upload", key="x", actor="m")
    assert caught.value.code == "ResourceNotFoundException"


def test_dynamodb_throttled_transactions_are_errors_not_races() -> None:
    """A transaction cancelled for throttling raises; only condition failures are lost races."""
    client = fake_client("dynamodb")
    entry = AuditEntry.seal(
        seq=1, event="upload", key="x", actor="m", at="2026-11-29T12:00:00Z", prev=GENESIS
    )
    with Stubber(client) as stub:
        stub.add_client_error(
            "transact_write_items",
            "TransactionCanceledException",
            response_meta={},
            modeled_fields={"CancellationReasons": [{"Code": "None"}, {"Code": "ThrottlingError"}]},
        )
        stub.add_client_error(
            "transact_write_items",
            "TransactionCanceledException",
            modeled_fields={
                "CancellationReasons": [{"Code": "ConditionalCheckFailed"}, {"Code": "None"}]
            },
        )
        log = DynamoDBAuditLog("audit", client=client)
        with pytest.raises(ServiceError) as caught:
            log.append(entry)
        assert caught.value.code == "TransactionCanceledException"
        assert log.append(entry) is False


def test_s3_a_deleted_object_is_found(aws: None) -> None:
    """Deleting an entry object before the head is REMOVED at the next one."""
    log = s3_log()
    trail = AuditTrail(log)
    fill(trail, 4)
    log._client.delete_object(Bucket="audit-bucket", Key="trail/00000000000000000001.json")
    problem = trail.verify().problem
    assert problem is not None
    assert problem.kind is ProblemKind.REMOVED
    assert problem.where == "object trail/00000000000000000002.json"


def test_s3_an_object_moved_to_another_seq_is_found(aws: None) -> None:
    """An entry copied over another seq's object is found (reordered or edited)."""
    log = s3_log()
    trail = AuditTrail(log)
    entries = fill(trail, 4)
    log._client.put_object(
        Bucket="audit-bucket",
        Key="trail/00000000000000000001.json",
        Body=entries[2].to_json().encode(),
    )
    assert not trail.verify().ok


def test_s3_a_stale_head_hint_is_corrected_by_the_listing(aws: None) -> None:
    """A head hint left behind (a writer stopped before updating it) still finds the real head."""
    log = s3_log()
    trail = AuditTrail(log)
    fill(trail, 3)
    log._client.put_object(Bucket="audit-bucket", Key="trail/head", Body=b"0")
    assert trail.append("upload", key="x", actor="m").seq == 3
    log._client.put_object(Bucket="audit-bucket", Key="trail/head", Body=b"garbage")
    assert trail.append("upload", key="x", actor="m").seq == 4
    assert trail.verify().entries == 5


def test_s3_an_oversized_object_is_unreadable(aws: None) -> None:
    """An object larger than an entry can be is UNREADABLE without being read."""
    log = s3_log()
    trail = AuditTrail(log)
    fill(trail, 1)
    log._client.put_object(
        Bucket="audit-bucket", Key="trail/00000000000000000001.json", Body=b"x" * 70_000
    )
    problem = trail.verify().problem
    assert problem is not None
    assert problem.kind is ProblemKind.UNREADABLE


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda c: DynamoDBAuditLog("a", client=c), "table"),
        (lambda c: DynamoDBAuditLog("audit", chain="", client=c), "chain"),
        (lambda c: S3AuditLog("Bad_Bucket", client=c), "bucket"),
        (lambda c: S3AuditLog("bucket", prefix="audit", client=c), "prefix"),
    ],
)
def test_settings_are_checked_when_built(build: Callable[[Any], Any], match: str) -> None:
    """A table, chain, bucket or prefix AWS would refuse is refused when the log is built."""
    with pytest.raises(ConfigurationError, match=match):
        build(fake_client("s3"))


# -- red team 15: index attributes and stored spellings ------------------------------------


@pytest.mark.parametrize("attribute", ["key", "hash"])
@pytest.mark.parametrize("value", ["k0", "hidden", "ab" * 32])
def test_dynamodb_an_index_attribute_edited_is_found_and_moves_no_entry(
    aws: None, attribute: str, value: str
) -> None:
    """An item's key or hash attribute changed: verify names the item; no history moves."""
    log = dynamodb_log()
    trail = AuditTrail(log)
    entries = fill(trail, 4)  # entry 1 is about k1
    log._client.update_item(
        TableName="audit",
        Key={"chain": {"S": "audit"}, "seq": {"N": "1"}},
        UpdateExpression="SET #a = :v",
        ExpressionAttributeNames={"#a": attribute},
        ExpressionAttributeValues={":v": {"S": value}},
    )
    report = trail.verify(anchor=entries[-1].hash)
    assert report.problem is not None
    assert (report.problem.kind, report.problem.where) == (ProblemKind.EDITED, "item 1")
    assert attribute in report.problem.detail
    for key in ("k0", "k1", "hidden", value):
        assert all(entry.key == key for entry in trail.history(key))
    assert 1 not in [entry.seq for entry in trail.history("k0")]


def test_dynamodb_an_entry_spelled_other_than_as_written_is_found(aws: None) -> None:
    """The same fields with a duplicated member first: EDITED, and not in the history."""
    log = dynamodb_log()
    trail = AuditTrail(log)
    entries = fill(trail, 3)
    forged = '{"actor":"mallory",' + entries[1].to_json()[1:]
    log._client.update_item(
        TableName="audit",
        Key={"chain": {"S": "audit"}, "seq": {"N": "1"}},
        UpdateExpression="SET entry = :e",
        ExpressionAttributeValues={":e": {"S": forged}},
    )
    problem = trail.verify().problem
    assert problem is not None
    assert (problem.kind, problem.where) == (ProblemKind.EDITED, "item 1")
    assert "appears twice" in problem.detail
    assert 1 not in [entry.seq for entry in trail.history(entries[1].key)]


def test_s3_an_object_spelled_other_than_as_written_is_found(aws: None) -> None:
    """An entry object rewritten with spaces (same fields, same hash): EDITED at that object."""
    log = s3_log()
    trail = AuditTrail(log)
    entries = fill(trail, 3)
    log._client.put_object(
        Bucket="audit-bucket",
        Key="trail/00000000000000000001.json",
        Body=json.dumps(entries[1].to_dict(), sort_keys=True).encode(),
    )
    problem = trail.verify(anchor=entries[-1].hash).problem
    assert problem is not None
    assert (problem.kind, problem.where) == (
        ProblemKind.EDITED,
        "object trail/00000000000000000001.json",
    )
    assert 1 not in [entry.seq for entry in trail.history(entries[1].key)]


def test_s3_a_head_hint_past_the_real_head_does_not_block_appends(aws: None) -> None:
    """A hint edited beyond the last object: head() still finds it, appends go on."""
    log = s3_log()
    trail = AuditTrail(log)
    entries = fill(trail, 3)
    log._client.put_object(Bucket="audit-bucket", Key="trail/head", Body=b"99999")
    assert trail.head() == entries[-1].hash
    assert trail.append("upload", key="x", actor="m").seq == 3
    assert trail.verify().entries == 4
