"""Tests of the shipped Lambda proxy example with real API Gateway event shapes and fakes."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from examples.lambda_proxy import handler as proxy

from safegen import (
    ImageModerator,
    ImageReport,
    ModerationLabel,
    Pipeline,
    PromptModerator,
    RuleFilter,
)
from safegen.image import ImageSource
from safegen.testing import FakeGenerator, FakeImageBackend
from tests.strategies import make_image

SAFE, UNSAFE = make_image(seed=1), make_image(seed=2)


def rest_event(body: str, *, encoded: bool = False) -> dict[str, Any]:
    """An API Gateway REST API (v1) proxy event, as Lambda receives it."""
    return {
        "resource": "/generate",
        "path": "/generate",
        "httpMethod": "POST",
        "headers": {"Content-Type": "application/json"},
        "multiValueHeaders": {"Content-Type": ["application/json"]},
        "queryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": "/generate",
            "httpMethod": "POST",
            "stage": "prod",
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
        },
        "body": base64.b64encode(body.encode()).decode() if encoded else body,
        "isBase64Encoded": encoded,
    }


def http_event(body: str) -> dict[str, Any]:
    """An API Gateway HTTP API (v2) event."""
    return {
        "version": "2.0",
        "routeKey": "POST /generate",
        "rawPath": "/generate",
        "rawQueryString": "",
        "headers": {"content-type": "application/json"},
        "requestContext": {"http": {"method": "POST", "path": "/generate"}, "stage": "$default"},
        "body": body,
        "isBase64Encoded": False,
    }


def labels_for(image: ImageSource) -> ImageReport:
    labels = (ModerationLabel("Explicit", 97.0, level=1),) if image == UNSAFE else ()
    return ImageReport(labels=labels, model_version="7.0")


def fake_pipeline(*images: bytes) -> Pipeline:
    return Pipeline(
        PromptModerator(rules=RuleFilter.default()),
        FakeGenerator(images or [SAFE]),
        ImageModerator(FakeImageBackend(respond=labels_for)),
    )


def call(event: dict[str, Any], pipeline: Pipeline) -> tuple[int, dict[str, Any]]:
    response = proxy.handler(event, None, pipeline=pipeline)
    assert response["headers"] == {"Content-Type": "application/json"}
    return response["statusCode"], json.loads(response["body"])


def test_a_safe_request_returns_the_images_in_base64() -> None:
    """200 with each image's status and bytes, from a REST API event."""
    status, body = call(
        rest_event('{"prompt": "a lighthouse", "images": 2, "seed": 3}'),
        fake_pipeline(SAFE, UNSAFE),
    )
    assert status == 200
    assert [i["status"] for i in body["images"]] == ["safe", "redacted"]
    assert base64.b64decode(body["images"][0]["data_base64"]) == SAFE


def test_http_api_events_and_base64_bodies_are_read_too() -> None:
    """HTTP API v2 events, and bodies API Gateway passed base64-encoded."""
    assert call(http_event('{"prompt": "a lighthouse"}'), fake_pipeline())[0] == 200
    assert call(rest_event('{"prompt": "a lighthouse"}', encoded=True), fake_pipeline())[0] == 200


def test_an_unsafe_prompt_is_422_with_the_reason() -> None:
    """Rejected prompts are not server errors: 422 and the warning."""
    status, body = call(rest_event('{"prompt": "a g0r3 scene"}'), fake_pipeline())
    assert status == 422
    assert body["status"] == "rejected"
    assert "gore" in body["warnings"][0]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("not json", "must be JSON"),
        ("[1, 2]", '"prompt" string'),
        ('{"prompt": 3}', '"prompt" string'),
        ('{"prompt": "x", "images": 50}', '"images" must be from 1 to 4'),
        ('{"prompt": "x", "seed": "7"}', '"seed" must be an integer'),
        ('{"prompt": "   "}', "prompt must be a non-empty string"),
    ],
)
def test_bad_requests_are_400_with_a_clear_message(body: str, message: str) -> None:
    """Malformed bodies never reach the services."""
    status, payload = call(rest_event(body), fake_pipeline())
    assert status == 400
    assert message in payload["error"]


def test_a_failed_generator_is_502() -> None:
    """The upstream failed: 502, no images."""
    from safegen.errors import ServiceUnavailableError

    down = ServiceUnavailableError(
        "down", service="sagemaker-runtime", operation="InvokeEndpoint", code="ServiceUnavailable"
    )
    pipeline = Pipeline(None, FakeGenerator(error=down), ImageModerator(FakeImageBackend()))
    status, body = call(rest_event('{"prompt": "x"}'), pipeline)
    assert status == 502
    assert body["images"] == []


def test_the_pipeline_is_built_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """SAFEGEN_GENERATOR picks the generator; nothing is called while building."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    env = {
        "SAFEGEN_GENERATOR": "bedrock:amazon.nova-canvas-v1:0",
        "SAFEGEN_TOXICITY": "on",
        "SAFEGEN_ON_UNSAFE_IMAGE": "regenerate",
    }
    pipeline = proxy.build_pipeline(env)
    assert pipeline.generator.name == "bedrock"
    assert pipeline.on_unsafe_image == "regenerate"
    assert pipeline.prompt_moderator is not None
    assert [c.name for c in pipeline.prompt_moderator.classifiers] == ["comprehend-toxicity"]
    with pytest.raises(ValueError, match="SAFEGEN_GENERATOR"):
        proxy.build_pipeline({})
