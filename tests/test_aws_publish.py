"""Notifiers and the CloudFront invalidator: moto end to end, Stubber where moto cannot fail."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

import pytest
from botocore.stub import Stubber
from moto import mock_aws

from safegen.aws.publish import CloudFrontInvalidator, EventBridgeNotifier, SNSNotifier
from safegen.errors import (
    ConfigurationError,
    InvalidRequestError,
    MalformedResponseError,
    ServiceError,
    ThrottledError,
)
from safegen.review.events import AssetStatus, StatusChange
from safegen.review.notify import Callback, FanOut, NotificationError, change_message
from tests.aws import fake_client

CHANGE = StatusChange(
    key="uploads/cat.png",
    before=AssetStatus.APPROVED,
    after=AssetStatus.REJECTED,
    actor="alice",
    reason="not a cat",
    at="2026-11-29T12:00:00.000000Z",
)
UPLOAD = StatusChange(
    key="new.png",
    before=None,
    after=AssetStatus.PENDING,
    actor="moderation",
    at="2026-11-29T12:00:00Z",
)


@pytest.fixture
def aws() -> Iterator[None]:
    """Every AWS call in the test goes to moto."""
    with mock_aws():
        yield


def queue(name: str) -> tuple[Any, str, str]:
    """Create an SQS queue; return the client, its URL and its ARN."""
    sqs = fake_client("sqs")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    return sqs, url, arn


def received(sqs: Any, url: str) -> list[dict[str, Any]]:
    """Every message body waiting on the queue, parsed."""
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in messages]


# -- SNS --------------------------------------------------------------------------------------


def test_sns_publishes_the_change_and_its_statuses_as_attributes(aws: None) -> None:
    """A subscribed queue gets the change as JSON, with status attributes for filtering."""
    sns = fake_client("sns")
    topic = sns.create_topic(Name="uploads")["TopicArn"]
    sqs, url, arn = queue("all")
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    SNSNotifier(topic, client=sns)(CHANGE)
    (envelope,) = received(sqs, url)
    assert json.loads(envelope["Message"]) == change_message(CHANGE)
    assert envelope["MessageAttributes"]["status"]["Value"] == "rejected"
    assert envelope["MessageAttributes"]["previous"]["Value"] == "approved"


def test_sns_filter_policies_can_pick_one_status(aws: None) -> None:
    """A subscription filtering on status=rejected hears the rejection and not the upload."""
    sns = fake_client("sns")
    topic = sns.create_topic(Name="uploads")["TopicArn"]
    sqs, url, arn = queue("rejections")
    sns.subscribe(
        TopicArn=topic,
        Protocol="sqs",
        Endpoint=arn,
        Attributes={
            "FilterPolicy": json.dumps({"status": ["rejected"]}),
            "RawMessageDelivery": "true",
        },
    )
    notifier = SNSNotifier(topic, client=sns)
    notifier(UPLOAD)
    notifier(CHANGE)
    assert received(sqs, url) == [change_message(CHANGE)]


def test_sns_upload_has_no_previous_status(aws: None) -> None:
    """A new upload's message says before is null and its previous attribute is none."""
    sns = fake_client("sns")
    topic = sns.create_topic(Name="uploads")["TopicArn"]
    sqs, url, arn = queue("q")
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    SNSNotifier(topic, client=sns)(UPLOAD)
    (envelope,) = received(sqs, url)
    assert json.loads(envelope["Message"])["before"] is None
    assert envelope["MessageAttributes"]["previous"]["Value"] == "none"


def test_sns_fifo_topics_group_by_key(aws: None) -> None:
    """A FIFO topic gets a message group and a deduplication id (SNS refuses it otherwise)."""
    sns = fake_client("sns")
    topic = sns.create_topic(Name="uploads.fifo", Attributes={"FifoTopic": "true"})["TopicArn"]
    SNSNotifier(topic, client=sns)(CHANGE)  # raises if the ids were missing


def test_sns_failures_are_service_errors(aws: None) -> None:
    """Publishing to a topic that does not exist raises a ServiceError keeping the code."""
    sns = fake_client("sns")
    with pytest.raises(ServiceError) as caught:
        SNSNotifier("arn:aws:sns:us-east-1:123456789012:missing", client=sns)(CHANGE)
    assert caught.value.code == "NotFound"
    assert caught.value.operation == "Publish"


def test_sns_message_carries_the_change_only() -> None:
    """The Publish request holds the change's six fields and its statuses, nothing more."""
    client = fake_client("sns")
    topic = "arn:aws:sns:us-east-1:123456789012:t"
    with Stubber(client) as stub:
        stub.add_response(
            "publish",
            {"MessageId": "m-1"},
            {
                "TopicArn": topic,
                "Message": json.dumps(
                    change_message(CHANGE), sort_keys=True, separators=(",", ":")
                ),
                "MessageAttributes": {
                    "status": {"DataType": "String", "StringValue": "rejected"},
                    "previous": {"DataType": "String", "StringValue": "approved"},
                },
            },
        )
        SNSNotifier(topic, client=client)(CHANGE)
    assert set(change_message(CHANGE)) == {"key", "before", "after", "actor", "reason", "at"}


@pytest.mark.parametrize(
    "arn", ["", "uploads", "arn:aws:sqs:us-east-1:123456789012:q", "arn:aws:sns:us-east-1:12:t"]
)
def test_sns_refuses_what_is_not_a_topic_arn(arn: str) -> None:
    """A topic ARN is checked when the notifier is built, not at the first change."""
    with pytest.raises(ConfigurationError, match="topic ARN"):
        SNSNotifier(arn, client=fake_client("sns"))


# -- EventBridge ----------------------------------------------------------------------------


def test_eventbridge_puts_the_change_where_a_rule_sends_it(aws: None) -> None:
    """A rule matching detail.after=rejected forwards the event, detail = the change, to SQS."""
    pytest.importorskip("jsonpath_ng", reason="moto's EventBridge rules need moto[events]")
    events = fake_client("events")
    sqs, url, arn = queue("events")
    events.put_rule(
        Name="rejections",
        EventPattern=json.dumps({"source": ["example.uploads"], "detail": {"after": ["rejected"]}}),
    )
    events.put_targets(Rule="rejections", Targets=[{"Id": "q", "Arn": arn}])
    notifier = EventBridgeNotifier(
        "default", "example.uploads", "Asset status changed", client=events
    )
    notifier(UPLOAD)
    notifier(CHANGE)
    (event,) = received(sqs, url)
    assert event["detail"] == change_message(CHANGE)
    assert event["source"] == "example.uploads"
    assert event["detail-type"] == "Asset status changed"


def stubbed_events(response: dict[str, Any]) -> tuple[Any, Stubber]:
    """An events client whose one PutEvents answers *response*."""
    client = fake_client("events")
    stub = Stubber(client)
    stub.add_response("put_events", response)
    stub.activate()
    return client, stub


@pytest.mark.parametrize(
    ("code", "error"),
    [
        ("ThrottlingException", ThrottledError),
        ("InternalFailure", ServiceError),
        ("AccessDeniedException", ServiceError),
    ],
)
def test_eventbridge_a_failed_entry_is_a_failure(code: str, error: type[Exception]) -> None:
    """PutEvents accepted but its one entry failed (FailedEntryCount 1): raised, with its code."""
    client, stub = stubbed_events(
        {"FailedEntryCount": 1, "Entries": [{"ErrorCode": code, "ErrorMessage": "no"}]}
    )
    with pytest.raises(error) as caught:
        EventBridgeNotifier("default", "s", "d", client=client)(CHANGE)
    assert isinstance(caught.value, ServiceError)
    assert caught.value.code == code
    stub.assert_no_pending_responses()


@pytest.mark.parametrize(
    "response",
    [{"FailedEntryCount": 0, "Entries": []}, {"FailedEntryCount": 0, "Entries": [{}, {}]}],
)
def test_eventbridge_an_answer_without_its_entry_is_malformed(response: dict[str, Any]) -> None:
    """An answer that does not account for the one entry sent is not taken as delivery."""
    client, _ = stubbed_events(response)
    with pytest.raises(MalformedResponseError):
        EventBridgeNotifier("default", "s", "d", client=client)(CHANGE)


def test_eventbridge_an_entry_without_an_event_id_is_a_failure() -> None:
    """FailedEntryCount 0 but no EventId: not delivered, as far as anyone can tell."""
    client, _ = stubbed_events({"FailedEntryCount": 0, "Entries": [{}]})
    with pytest.raises(ServiceError, match="not put"):
        EventBridgeNotifier("default", "s", "d", client=client)(CHANGE)


def test_eventbridge_a_missing_bus_is_a_failure(aws: None) -> None:
    """A bus that does not exist fails the delivery (moto's answer or its failed entry)."""
    with pytest.raises(ServiceError):
        EventBridgeNotifier("nope", "s", "d", client=fake_client("events"))(CHANGE)


# -- CloudFront -------------------------------------------------------------------------------


def distribution() -> tuple[Any, str]:
    """A moto CloudFront distribution; return the client and its id."""
    client = fake_client("cloudfront")
    config = {
        "CallerReference": "test",
        "Comment": "",
        "Enabled": True,
        "Origins": {
            "Quantity": 1,
            "Items": [
                {
                    "Id": "o",
                    "DomainName": "bucket.s3.amazonaws.com",
                    "S3OriginConfig": {"OriginAccessIdentity": ""},
                }
            ],
        },
        "DefaultCacheBehavior": {"TargetOriginId": "o", "ViewerProtocolPolicy": "allow-all"},
    }
    ident = client.create_distribution(DistributionConfig=config)["Distribution"]["Id"]
    return client, ident


def invalidated(client: Any, ident: str) -> list[list[str]]:
    """The paths of every invalidation of the distribution, oldest first."""
    summaries = client.list_invalidations(DistributionId=ident)["InvalidationList"].get("Items", [])
    batches = [
        client.get_invalidation(DistributionId=ident, Id=s["Id"])["Invalidation"][
            "InvalidationBatch"
        ]
        for s in summaries
    ]
    return sorted((b["Paths"].get("Items", []) for b in batches), key=len, reverse=True)


def test_cloudfront_invalidates_each_key_under_the_prefix(aws: None) -> None:
    """Keys become /prefix/quoted-key paths in one invalidation; duplicates are sent once."""
    client, ident = distribution()
    CloudFrontInvalidator(ident, path_prefix="/images", client=client)(
        ["a.png", "b/c.png", "a.png"]
    )
    assert invalidated(client, ident) == [["/images/a.png", "/images/b/c.png"]]


def test_cloudfront_keys_are_quoted_so_none_is_a_wildcard(aws: None) -> None:
    """A key with *, spaces, ?, # or non-ASCII is percent-encoded and decodes back to itself."""
    client, ident = distribution()
    keys = ["*", "a*.png", "sp ace?.png", "h#sh%41.png", "café.png"]
    invalidator = CloudFrontInvalidator(ident, path_prefix="/i/", client=client)
    paths = invalidator.paths(keys)
    assert all("*" not in p and " " not in p and "?" not in p and "#" not in p for p in paths)
    assert [unquote(p.removeprefix("/i/")) for p in paths] == keys
    invalidator(keys)
    assert invalidated(client, ident) == [paths]


@pytest.mark.parametrize("key", ["..", "a/../b", "./a", "a/."])
def test_cloudfront_refuses_dot_segments(key: str) -> None:
    """A key with a . or .. segment names no path of its own (a browser collapses it)."""
    with pytest.raises(ValueError, match="segment"):
        CloudFrontInvalidator("E123", client=fake_client("cloudfront")).paths([key])


def test_cloudfront_batches_with_unique_caller_references() -> None:
    """2,001 keys in batches of 1,000 are three requests, each with its own CallerReference."""
    client = fake_client("cloudfront")
    sent: list[dict[str, Any]] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        sent.append(params["InvalidationBatch"])

    client.meta.events.register("provide-client-params.cloudfront.CreateInvalidation", record)
    with Stubber(client) as stub:
        for n in range(3):
            stub.add_response(
                "create_invalidation",
                {
                    "Invalidation": {
                        "Id": f"I{n}",
                        "Status": "InProgress",
                        "CreateTime": "2026-11-29T12:00:00Z",
                        "InvalidationBatch": {"Paths": {"Quantity": 0}, "CallerReference": "x"},
                    }
                },
            )
        invalidator = CloudFrontInvalidator("E123", client=client)
        ids = run_exchange(invalidator, [f"k{i}" for i in range(2001)])
    assert ids == ["I0", "I1", "I2"]
    assert [b["Paths"]["Quantity"] for b in sent] == [1000, 1000, 1]
    assert len({b["CallerReference"] for b in sent}) == 3


def run_exchange(invalidator: CloudFrontInvalidator, keys: list[str]) -> list[str]:
    """Run the invalidator's exchange and return the invalidation ids."""
    from safegen.aws._client import run

    return run(invalidator._client, invalidator._exchange(keys))


def test_cloudfront_no_keys_no_call() -> None:
    """Nothing to invalidate makes no request (a stubbed client with no responses would fail)."""
    client = fake_client("cloudfront")
    with Stubber(client):
        CloudFrontInvalidator("E123", client=client)([])


@pytest.mark.parametrize("batch", [0, 3001, 1.5])
def test_cloudfront_batch_limits(batch: Any) -> None:
    """A batch outside 1..3000 (CloudFront's in-progress limit) is refused when built."""
    with pytest.raises(ConfigurationError, match="batch"):
        CloudFrontInvalidator("E123", batch=batch, client=fake_client("cloudfront"))


@pytest.mark.parametrize("prefix", ["images", "/im*", "/a b/"])
def test_cloudfront_prefix_is_a_plain_path(prefix: str) -> None:
    """The prefix starts with / and holds no wildcard or space."""
    with pytest.raises(ConfigurationError, match="path_prefix"):
        CloudFrontInvalidator("E123", path_prefix=prefix, client=fake_client("cloudfront"))


def test_cloudfront_unknown_distribution_is_a_service_error(aws: None) -> None:
    """A distribution that does not exist raises a ServiceError with CloudFront's code."""
    with pytest.raises(ServiceError) as caught:
        CloudFrontInvalidator("EDOESNOTEXIST", client=fake_client("cloudfront"))(["a"])
    assert caught.value.code == "NoSuchDistribution"


def test_cloudfront_too_many_paths_is_an_invalid_request() -> None:
    """CloudFront's TooManyInvalidationsInProgress keeps its code through the choke point."""
    client = fake_client("cloudfront")
    with Stubber(client) as stub:
        stub.add_client_error(
            "create_invalidation", "TooManyInvalidationsInProgress", http_status_code=400
        )
        with pytest.raises(ServiceError) as caught:
            CloudFrontInvalidator("E123", client=client)(["a"])
    assert caught.value.code == "TooManyInvalidationsInProgress"
    assert not isinstance(caught.value, InvalidRequestError)


# -- fan-out ----------------------------------------------------------------------------------


def test_fan_out_delivers_to_all_and_names_who_failed(aws: None) -> None:
    """One failing notifier (a missing SNS topic) does not keep the change from the others."""
    heard: list[StatusChange] = []
    missing = SNSNotifier("arn:aws:sns:us-east-1:123456789012:missing", client=fake_client("sns"))
    fan = FanOut([Callback(heard.append, name="first"), missing, Callback(heard.append)])
    delivery = fan.deliver(CHANGE)
    assert heard == [CHANGE, CHANGE]
    assert delivery.delivered == ("first", "2:Callback")
    assert [name for name, _ in delivery.failed] == ["sns"]
    with pytest.raises(NotificationError, match="1 of 3 notifiers failed: sns") as caught:
        fan(CHANGE)
    assert isinstance(caught.value.__cause__, ServiceError)


def test_callback_hears_only_the_statuses_it_listens_for() -> None:
    """Callback(statuses=...) calls its function for changes to those statuses only."""
    heard: list[StatusChange] = []
    notifier = Callback(heard.append, statuses=[AssetStatus.REJECTED])
    notifier(UPLOAD)
    notifier(CHANGE)
    assert heard == [CHANGE]


def test_fan_out_refuses_what_cannot_be_called() -> None:
    """A FanOut of something that is not callable is refused when built."""
    with pytest.raises(ValueError, match="not a notifier"):
        FanOut([Callback(print), "sns"])  # type: ignore[list-item]


def test_fan_out_logs_names_and_types_only(caplog: pytest.LogCaptureFixture) -> None:
    """A failure's log line names the notifier and the exception type, never its message."""

    def leaky(change: StatusChange) -> None:
        raise RuntimeError(f"secret {change.reason}")

    FanOut([Callback(leaky, name="leaky")]).deliver(CHANGE)
    assert "leaky" in caplog.text
    assert "RuntimeError" in caplog.text
    assert "secret" not in caplog.text
    assert "not a cat" not in caplog.text
