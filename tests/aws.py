"""AWS clients for tests: real botocore clients with fake credentials, never sent anywhere."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import attrs
import boto3


def fake_client(service: str) -> Any:
    """A boto3 client for *service* in us-east-1 with fake credentials (for Stubber or moto)."""
    factory: Any = boto3.client
    return factory(
        service,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def toxic_result(toxicity: float = 0.02, **scores: float) -> dict[str, Any]:
    """One ResultList item: all seven labels, as the service always returns them."""
    labels = [
        "PROFANITY",
        "HATE_SPEECH",
        "INSULT",
        "GRAPHIC",
        "HARASSMENT_OR_ABUSE",
        "SEXUAL",
        "VIOLENCE_OR_THREAT",
    ]
    return {
        "Labels": [{"Name": name, "Score": scores.get(name, 0.01)} for name in labels],
        "Toxicity": toxicity,
    }


class _RawBody:
    """Enough of urllib3's response for botocore to read a body from."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body

    def read(self, *_: Any) -> bytes:
        return self._body


def answering(
    service: str,
    body: bytes,
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> Any:
    """A real client whose every call gets *body* back, parsed by botocore's own parser.

    Nothing is sent: a ``before-send`` hook answers in place of the network, so signing,
    retries and the response parser all run as they do against AWS.
    """
    from botocore.awsrequest import AWSResponse
    from botocore.config import Config

    content_type = "application/json" if service in _REST_JSON else "application/x-amz-json-1.1"
    sent_headers = {"Content-Type": content_type, **(headers or {})}
    factory: Any = boto3.client
    client = factory(
        service,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
    )

    def send(request: Any, **_: Any) -> AWSResponse:
        return AWSResponse(request.url, status, sent_headers, _RawBody(body))  # type: ignore[arg-type]

    client.meta.events.register("before-send", send)
    return client


_REST_JSON = frozenset({"sagemaker-runtime", "bedrock-runtime"})


@attrs.define
class Clock:
    """A fake monotonic clock; sleeping moves it on and runs a hook (time passing, or a kill)."""

    now: float = 0.0
    slept: list[float] = attrs.Factory(list)
    hook: Callable[[], None] | None = None

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        if self.hook is not None:
            self.hook()

    def __call__(self) -> float:
        return self.now
