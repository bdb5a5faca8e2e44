r"""Status changes to SNS and EventBridge, and purges of rejected images from CloudFront.

:class:`SNSNotifier` and :class:`EventBridgeNotifier` are
:class:`~safegen.review.events.Notifier`\\ s; :class:`CloudFrontInvalidator` is an
:class:`~safegen.review.events.Invalidator`. Messages carry the
:class:`~safegen.review.events.StatusChange` only (:func:`~safegen.review.notify.change_message`:
key, statuses, actor, reason, time), never the image. Every failure is a
:class:`~safegen.errors.ServiceError` keeping the AWS error code, raised through the one
choke point (:mod:`safegen.aws._errors`), so a store knows the change was not delivered.

Each adapter's logic is an exchange (:mod:`safegen.aws._client`), so an async driver can run
the same requests and checks.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import attrs

from safegen.aws._client import Call, Exchange, instrument, make_client, run
from safegen.aws._errors import translate
from safegen.errors import ConfigurationError, MalformedResponseError
from safegen.review.events import StatusChange
from safegen.review.notify import change_message

if TYPE_CHECKING:
    import boto3

__all__ = ["CloudFrontInvalidator", "EventBridgeNotifier", "SNSNotifier"]

_TOPIC_ARN = re.compile(r"arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?")
_BUS = re.compile(r"[/.\-_A-Za-z0-9]{1,256}|arn:aws[a-z-]*:events:[a-z0-9-]+:\d{12}:event-bus/.+")
_DISTRIBUTION = re.compile(r"[A-Z0-9]{1,32}")
# CloudFront: at most 3,000 file paths in progress per distribution (15 with wildcards).
MAX_INVALIDATION_PATHS = 3000


def _matches(pattern: re.Pattern[str], what: str) -> Any:
    def check(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if not isinstance(value, str) or not pattern.fullmatch(value):
            raise ConfigurationError(
                f"{type(instance).__name__}.{attribute.name}: {value!r} is not {what}"
            )

    return check


def _text(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str) or not value.strip() or len(value) > 256:
        raise ConfigurationError(
            f"{type(instance).__name__}.{attribute.name}: must be text of 1 to 256 characters"
        )


def _message(change: StatusChange) -> str:
    if not isinstance(change, StatusChange):
        raise TypeError(f"expected a StatusChange, got {type(change).__name__}")
    return json.dumps(change_message(change), sort_keys=True, separators=(",", ":"))


@attrs.frozen
class SNSNotifier:
    """Publish each status change to an SNS topic, as JSON.

    The message is the change (:func:`~safegen.review.notify.change_message`); message
    attributes ``status`` (the new status) and ``previous`` (the old one, ``"none"`` for an
    upload) let a subscription's filter policy pick, say, rejections only. A FIFO topic
    (``.fifo``) gets one message group per key, so an image's changes arrive in order, and
    a deduplication id from the message.

    :param topic_arn: the topic.
    :param client: a boto3 ``sns`` client (see :meth:`from_session`).
    :param name: the notifier's name in a :class:`~safegen.review.notify.FanOut` failure.
    :raises ConfigurationError: a topic ARN that is not one.
    """

    topic_arn: str = attrs.field(validator=_matches(_TOPIC_ARN, "an SNS topic ARN"))
    _client: Any = attrs.field(kw_only=True, converter=instrument, repr=False)
    name: str = attrs.field(default="sns", kw_only=True, validator=_text)

    @classmethod
    def from_session(
        cls,
        topic_arn: str,
        session: boto3.Session | None = None,
        *,
        region_name: str | None = None,
        max_attempts: int = 5,
        name: str = "sns",
    ) -> SNSNotifier:
        """Build the notifier with a client that retries throttling (botocore standard mode)."""
        client = make_client("sns", session, region_name=region_name, max_attempts=max_attempts)
        return cls(topic_arn, client=client, name=name)

    def _exchange(self, change: StatusChange) -> Exchange[str]:
        """Yield the Publish call for *change*; return the message id."""
        message = _message(change)
        params: dict[str, Any] = {
            "TopicArn": self.topic_arn,
            "Message": message,
            "MessageAttributes": {
                "status": {"DataType": "String", "StringValue": change.after.value},
                "previous": {
                    "DataType": "String",
                    "StringValue": "none" if change.before is None else change.before.value,
                },
            },
        }
        if self.topic_arn.endswith(".fifo"):
            params["MessageGroupId"] = hashlib.sha256(change.key.encode()).hexdigest()
            params["MessageDeduplicationId"] = hashlib.sha256(message.encode()).hexdigest()
        response = yield Call("sns", "Publish", params)
        message_id = response.get("MessageId") if isinstance(response, dict) else None
        if not isinstance(message_id, str) or not message_id:
            raise MalformedResponseError("SNS Publish answered without a MessageId")
        return message_id

    def __call__(self, change: StatusChange) -> None:
        """Publish *change*; raise :class:`~safegen.errors.ServiceError` when SNS refused it."""
        run(self._client, self._exchange(change))


@attrs.frozen
class EventBridgeNotifier:
    """Put each status change on an EventBridge bus as an event.

    The event's ``detail`` is the change (:func:`~safegen.review.notify.change_message`), so
    a rule can match on ``detail.after``. PutEvents can accept a request and still fail its
    entry (``FailedEntryCount``): that is a failure too, raised with the entry's error code.

    :param bus: the event bus's name or ARN (``"default"``).
    :param source: the events' ``source`` (``"com.example.uploads"``).
    :param detail_type: the events' ``detail-type``.
    :param client: a boto3 ``events`` client (see :meth:`from_session`).
    :param name: the notifier's name in a :class:`~safegen.review.notify.FanOut` failure.
    :raises ConfigurationError: a setting EventBridge would refuse.
    """

    bus: str = attrs.field(validator=_matches(_BUS, "an event bus name or ARN"))
    source: str = attrs.field(validator=_text)
    detail_type: str = attrs.field(validator=_text)
    _client: Any = attrs.field(kw_only=True, converter=instrument, repr=False)
    name: str = attrs.field(default="eventbridge", kw_only=True, validator=_text)

    @classmethod
    def from_session(
        cls,
        bus: str,
        source: str,
        detail_type: str,
        session: boto3.Session | None = None,
        *,
        region_name: str | None = None,
        max_attempts: int = 5,
        name: str = "eventbridge",
    ) -> EventBridgeNotifier:
        """Build the notifier with a client that retries throttling (botocore standard mode)."""
        client = make_client("events", session, region_name=region_name, max_attempts=max_attempts)
        return cls(bus, source, detail_type, client=client, name=name)

    def _exchange(self, change: StatusChange) -> Exchange[str]:
        """Yield the PutEvents call for *change*; return the event id."""
        entry = {
            "EventBusName": self.bus,
            "Source": self.source,
            "DetailType": self.detail_type,
            "Detail": _message(change),
        }
        response = yield Call("events", "PutEvents", {"Entries": [entry]})
        entries = response.get("Entries") if isinstance(response, dict) else None
        failed = response.get("FailedEntryCount", 0) if isinstance(response, dict) else None
        if not isinstance(entries, list) or len(entries) != 1 or not isinstance(failed, int):
            raise MalformedResponseError("EventBridge PutEvents answered without one entry")
        result = entries[0] if isinstance(entries[0], dict) else {}
        if failed or result.get("ErrorCode") or not result.get("EventId"):
            code = str(result.get("ErrorCode") or "FailedEntry")
            message = str(result.get("ErrorMessage") or "the event was not put on the bus")
            raise _entry_error(code, message, "events", "PutEvents")
        return str(result["EventId"])

    def __call__(self, change: StatusChange) -> None:
        """Put *change* on the bus; raise :class:`~safegen.errors.ServiceError` if it failed."""
        run(self._client, self._exchange(change))


def _entry_error(code: str, message: str, service: str, operation: str) -> Exception:
    """Return the error of a failed entry, as the choke point maps the same error code."""
    from botocore.exceptions import ClientError

    error = ClientError({"Error": {"Code": code, "Message": message}}, operation)
    return translate(error, service=service, operation=operation)


def _prefix(value: object) -> str:
    if not isinstance(value, str) or not value.startswith("/"):
        raise ConfigurationError("CloudFrontInvalidator.path_prefix: must start with /")
    if "*" in value or any(ord(c) < 0x21 or ord(c) == 0x7F for c in value):
        raise ConfigurationError(
            "CloudFrontInvalidator.path_prefix: no wildcard, space or control character"
        )
    return value if value.endswith("/") else value + "/"


@attrs.frozen
class CloudFrontInvalidator:
    """Purge the cached copies of images no longer deliverable from a CloudFront distribution.

    Each key becomes the path ``path_prefix + quote(key)``: percent-encoded as a browser
    requests it (RFC 3986's unreserved characters and ``/`` kept), so a key can never be a
    wildcard (``*`` is ``%2A``) or reach outside the prefix by its spelling. Keys are
    deduplicated and sent in batches of at most *batch* paths, each with a fresh
    ``CallerReference``.

    :param distribution_id: the distribution.
    :param path_prefix: where the store's live images are served from (``"/images/"``).
    :param batch: paths per CreateInvalidation (CloudFront allows 3,000 in progress).
    :param client: a boto3 ``cloudfront`` client (see :meth:`from_session`).
    :raises ConfigurationError: a setting CloudFront would refuse.
    """

    distribution_id: str = attrs.field(
        validator=_matches(_DISTRIBUTION, "a CloudFront distribution id")
    )
    path_prefix: str = attrs.field(default="/", kw_only=True, converter=_prefix)
    batch: int = attrs.field(default=1000, kw_only=True)
    _client: Any = attrs.field(kw_only=True, converter=instrument, repr=False)

    @batch.validator
    def _batch(self, attribute: attrs.Attribute[int], value: object) -> None:
        if type(value) is not int or not 1 <= value <= MAX_INVALIDATION_PATHS:
            raise ConfigurationError(
                f"CloudFrontInvalidator.batch: from 1 to {MAX_INVALIDATION_PATHS}, got {value!r}"
            )

    @classmethod
    def from_session(
        cls,
        distribution_id: str,
        session: boto3.Session | None = None,
        *,
        path_prefix: str = "/",
        batch: int = 1000,
        max_attempts: int = 5,
    ) -> CloudFrontInvalidator:
        """Build the invalidator with a client that retries throttling (botocore standard mode)."""
        client = make_client("cloudfront", session, region_name=None, max_attempts=max_attempts)
        return cls(distribution_id, path_prefix=path_prefix, batch=batch, client=client)

    def paths(self, keys: Sequence[str]) -> list[str]:
        """Return the invalidation paths of *keys*, deduplicated, in first-seen order.

        :raises ValueError: a key that is not a non-empty string, or has a ``.`` or ``..``
            segment (a browser would request another path).
        """
        seen: dict[str, None] = {}
        for key in keys:
            if not key or not isinstance(key, str):
                raise ValueError("CloudFrontInvalidator: every key must be a non-empty string")
            if any(part in (".", "..") for part in key.split("/")):
                raise ValueError(
                    "CloudFrontInvalidator: a key with a . or .. segment has no path of its own"
                )
            seen[self.path_prefix + quote(key, safe="/")] = None
        return list(seen)

    def _exchange(self, keys: Sequence[str]) -> Exchange[list[str]]:
        """Yield the CreateInvalidation calls for *keys*; return the invalidation ids."""
        paths = self.paths(keys)
        ids: list[str] = []
        for start in range(0, len(paths), self.batch):
            items = paths[start : start + self.batch]
            batch = {
                "Paths": {"Quantity": len(items), "Items": items},
                "CallerReference": f"safegen-{uuid.uuid4()}",
            }
            response = yield Call(
                "cloudfront",
                "CreateInvalidation",
                {"DistributionId": self.distribution_id, "InvalidationBatch": batch},
            )
            invalidation = response.get("Invalidation") if isinstance(response, dict) else None
            ident = invalidation.get("Id") if isinstance(invalidation, dict) else None
            if not isinstance(ident, str) or not ident:
                raise MalformedResponseError("CloudFront answered without an invalidation id")
            ids.append(ident)
        return ids

    def __call__(self, keys: Sequence[str]) -> None:
        """Invalidate *keys*; raise :class:`~safegen.errors.ServiceError` if a batch failed.

        Batches before a failed one stay requested (CloudFront has no undo).
        """
        run(self._client, self._exchange(keys))
