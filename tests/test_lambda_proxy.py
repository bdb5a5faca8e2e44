"""Tests of the shipped Lambda proxy example with real API Gateway event shapes and fakes."""

from __future__ import annotations

import base64
import importlib.util
import json
import logging
import os
import re
from pathlib import Path
from typing import Any

import pytest
from examples.lambda_proxy import handler as proxy

import safegen
from safegen import (
    ConfigurationError,
    ImageModerator,
    ImageReport,
    ModerationLabel,
    ModerationPolicy,
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
        ('{"prompt": "   "}', "prompt.* empty"),  # the wording is the library's
    ],
)
def test_bad_requests_are_400_with_a_clear_message(body: str, message: str) -> None:
    """Malformed bodies never reach the services."""
    status, payload = call(rest_event(body), fake_pipeline())
    assert status == 400
    assert re.search(message, payload["error"])


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


# -- class 10: every malformed event is a 4xx; a misconfiguration is a 5xx, logged -----------

NESTED = "[" * 30_000 + "]" * 30_000  # under the body limit, over any recursion limit
MALFORMED: list[tuple[object, int]] = [
    (None, 400),
    ([], 400),
    ("a string", 400),
    (42, 400),
    ({}, 400),
    ({"body": None}, 400),
    ({"body": {"prompt": "already an object"}}, 400),
    ({"body": ["prompt"]}, 400),
    ({"body": 3}, 400),
    ({"body": NESTED}, 400),
    ({"body": '{"prompt": ' + NESTED + "}"}, 400),
    ({"body": "!!not base64!!", "isBase64Encoded": True}, 400),
    ({"body": base64.b64encode(b'{"prompt": "caf\xe9"}').decode(), "isBase64Encoded": True}, 400),
    ({"body": '{"prompt": "x"}', "isBase64Encoded": "yes"}, 400),
    ({"body": '{"prompt": "x"}', "isBase64Encoded": True}, 400),  # not base64 at all
    ({"body": "\ud800"}, 400),
    ({"body": '{"prompt": "\\ud800"}'}, 400),
    ({"body": "x" * (proxy.MAX_BODY_BYTES + 1)}, 413),
    (
        {
            "body": base64.b64encode(b" " * (2 * proxy.MAX_BODY_BYTES)).decode(),
            "isBase64Encoded": True,
        },
        413,
    ),
    ({"body": '{"prompt": "x", "promt": "y"}'}, 400),
    ({"body": '{"prompt": null}'}, 400),
    ({"body": '{"prompt": "x", "negative_prompt": 3}'}, 400),
    ({"body": '{"prompt": "x", "images": true}'}, 400),
    ({"body": '{"prompt": "x", "images": 1e400}'}, 400),
    ({"body": '{"prompt": "x", "width": 1000000}'}, 400),
    ({"body": '{"prompt": "x", "seed": -1}'}, 400),
    ({"body": '{"prompt": "x", "seed": ' + "9" * 5000 + "}"}, 400),
    ({"body": "NaN"}, 400),
]


@pytest.mark.parametrize(("event", "status"), MALFORMED)
def test_every_malformed_event_is_a_4xx_with_a_short_reason(event: object, status: int) -> None:
    """Nothing about the event, its body or a field can make the proxy fail or blame itself."""
    generator = FakeGenerator([SAFE])
    pipeline = Pipeline(
        PromptModerator(rules=RuleFilter.default()), generator, ImageModerator(FakeImageBackend())
    )
    response = proxy.handler(event, None, pipeline=pipeline)
    assert response["statusCode"] == status
    body = json.loads(response["body"])
    assert set(body) == {"error"}
    assert 0 < len(body["error"]) <= 200
    assert generator.requests == ()


@pytest.mark.parametrize(
    ("fields", "status"),
    [({"images": 4}, 200), ({"images": 5}, 400), ({"width": 64, "seed": 0}, 200),
     ({"width": 63}, 400), ({"seed": 2_147_483_646}, 200), ({"seed": 2_147_483_647}, 400)],
)  # fmt: skip
def test_field_limits_are_inclusive(fields: dict[str, int], status: int) -> None:
    """Each bound is allowed at its edge and refused one past it."""
    event = rest_event(json.dumps({"prompt": "a lighthouse", **fields}))
    assert call(event, fake_pipeline(*[SAFE] * fields.get("images", 1)))[0] == status


VALID = {"SAFEGEN_GENERATOR": "sagemaker:sd-endpoint"}


def _bad_policies(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "latin1.toml").write_bytes(b"# caf\xe9\nblock_at = 50\n")
    (tmp_path / "deep.toml").write_text("a = " + "[" * 50_000 + "]" * 50_000 + "\n")
    (tmp_path / "dir.toml").mkdir()
    os.mkfifo(tmp_path / "fifo.toml")
    (tmp_path / "unknown.toml").write_text('[labels]\n"Weapon" = 50\n')
    names = ("latin1.toml", "deep.toml", "dir.toml", "fifo.toml", "unknown.toml", "none.toml")
    return {name: str(tmp_path / name) for name in names}


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({}, "SAFEGEN_GENERATOR"),
        ({"SAFEGEN_GENERATOR": "s3:bucket"}, "SAFEGEN_GENERATOR"),
        ({"SAFEGEN_GENERATOR": "sagemaker:"}, "SAFEGEN_GENERATOR"),
        ({"SAFEGEN_GENERATOR": "sagemaker:no spaces!"}, "SAFEGEN_GENERATOR"),
        ({**VALID, "SAFEGEN_MAX_IMAGES": "four"}, "SAFEGEN_MAX_IMAGES"),
        ({**VALID, "SAFEGEN_MAX_IMAGES": "0"}, "SAFEGEN_MAX_IMAGES"),
        ({**VALID, "SAFEGEN_MAX_IMAGES": "17"}, "SAFEGEN_MAX_IMAGES"),
        ({**VALID, "SAFEGEN_MAX_IMAGES": "\u0663"}, "SAFEGEN_MAX_IMAGES"),  # an Arabic 3
        ({**VALID, "SAFEGEN_SAGEMAKER_CODEC": "sdxl"}, "SAFEGEN_SAGEMAKER_CODEC"),
        ({**VALID, "SAFEGEN_TOXICITY": "yes"}, "SAFEGEN_TOXICITY"),
        ({**VALID, "SAFEGEN_ON_UNSAFE_IMAGE": "sepia"}, "SAFEGEN_ON_UNSAFE_IMAGE"),
        ({**VALID, "SAFEGEN_TOXICTY": "on"}, "SAFEGEN_TOXICTY"),  # misspelt: not silently off
    ],
)
def test_a_bad_setting_is_a_configuration_error_naming_it(env: dict[str, str], named: str) -> None:
    """Every environment value is validated before any request, and the error names it."""
    with pytest.raises(ConfigurationError, match=named):
        proxy.load_settings(env)


@pytest.mark.parametrize(
    "name", ["latin1.toml", "deep.toml", "dir.toml", "fifo.toml", "unknown.toml", "none.toml"]
)
def test_an_unusable_policy_file_is_a_configuration_error(tmp_path: Path, name: str) -> None:
    """SAFEGEN_POLICY that is not UTF-8, too deep, a directory, a FIFO, invalid or missing."""
    path = _bad_policies(tmp_path)[name]
    with pytest.raises(ConfigurationError, match="SAFEGEN_POLICY"):
        proxy.load_settings({**VALID, "SAFEGEN_POLICY": path})


def test_a_misconfigured_function_answers_500_and_logs_the_detail(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Found at cold start: every request gets a generic 500, the log gets the detail."""
    with caplog.at_level(logging.ERROR, logger="safegen.examples.lambda_proxy"):
        container = proxy._cold_start({**VALID, "SAFEGEN_MAX_IMAGES": "four"})
    assert "SAFEGEN_MAX_IMAGES must be a whole number" in caplog.text
    monkeypatch.setattr(proxy, "_container", container)
    for event in (rest_event('{"prompt": "a lighthouse"}'), None, {"body": "[" * 9}):
        response = proxy.handler(event, None)
        assert response["statusCode"] == 500
        message = json.loads(response["body"])["error"]
        assert "SAFEGEN" not in message
        assert "four" not in message


def test_a_configured_function_builds_its_pipeline_at_cold_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A valid environment builds the clients during init, and reads its limit from it."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    container = proxy._cold_start({**VALID, "SAFEGEN_MAX_IMAGES": "2"})
    assert container.pipeline is not None
    assert container.pipeline.generator.name == "sagemaker"
    monkeypatch.setattr(proxy, "_container", container)
    response = proxy.handler(rest_event('{"prompt": "x", "images": 3}'), None)
    assert response["statusCode"] == 400
    assert '"images" must be from 1 to 2' in json.loads(response["body"])["error"]


def test_an_unexpected_failure_is_a_generic_500(caplog: pytest.LogCaptureFixture) -> None:
    """A bug below the handler is the server's fault: 500, no traceback to the client."""

    class Broken:
        def run(self, prompt: str, **options: object) -> object:
            raise RuntimeError(f"failed on {prompt}")

    with caplog.at_level(logging.ERROR, logger="safegen.examples.lambda_proxy"):
        event = rest_event('{"prompt": "marker-5d1e a lighthouse"}')
        status, body = call(event, Broken())  # type: ignore[arg-type]
    assert status == 500
    assert body == {"error": "internal error"}
    assert "RuntimeError" in caplog.text  # where it failed is in the server's log ...
    assert "in run" in caplog.text
    assert "marker-5d1e" not in caplog.text  # ... but not what the message quoted


def _unforeseen() -> list[BaseException]:
    """Exceptions no settings code is written to raise, of many unrelated types."""

    class Unheard(Exception):
        pass

    return [
        OverflowError("int too large to convert to float"),
        RecursionError("maximum recursion depth exceeded"),
        KeyError("block_at"),
        MemoryError(),
        TypeError("'NoneType' object is not subscriptable"),
        AttributeError("no attribute 'items'"),
        ZeroDivisionError("division by zero"),
        UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"),
        LookupError("no such codec"),
        Unheard("from a dependency"),
    ]


@pytest.mark.parametrize("error", _unforeseen(), ids=lambda e: type(e).__name__)
def test_any_failure_at_cold_start_is_a_logged_generic_500(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, error: BaseException
) -> None:
    """Whatever reading the settings raises, the container starts and answers a generic 500."""

    def broken(env: object) -> proxy.Settings:
        raise error

    monkeypatch.setattr(proxy, "load_settings", broken)
    with caplog.at_level(logging.ERROR, logger="safegen.examples.lambda_proxy"):
        container = proxy._cold_start(VALID)
    assert container.settings is None
    assert type(error).__name__ in caplog.text  # the operators' log says what went wrong
    monkeypatch.setattr(proxy, "_container", container)
    for event in (rest_event('{"prompt": "a lighthouse"}'), None):
        response = proxy.handler(event, None)
        assert response["statusCode"] == 500
        assert json.loads(response["body"]) == {"error": proxy._MISCONFIGURED}


@pytest.mark.parametrize("error", _unforeseen(), ids=lambda e: type(e).__name__)
def test_any_failure_reading_the_policy_names_the_policy_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, error: BaseException
) -> None:
    """Whatever the policy parser or its validators raise is a ConfigurationError naming it."""

    def broken(path: object) -> ModerationPolicy:
        raise error

    policy = tmp_path / "policy.toml"
    policy.write_text("block_at = 50\n")
    monkeypatch.setattr(ModerationPolicy, "from_toml", broken)
    with pytest.raises(ConfigurationError, match=f"SAFEGEN_POLICY .*{type(error).__name__}"):
        proxy.load_settings({**VALID, "SAFEGEN_POLICY": str(policy)})


def _import_fresh() -> Any:
    """Import the handler module anew, as a Lambda container does when it starts."""
    spec = importlib.util.spec_from_file_location("cold_lambda_proxy", proxy.__file__)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    "policy_text",
    [
        "block_at = 1" + "0" * 400 + "\n",  # an integer no float can hold
        "review_at = 1e999\n",  # inf
        "[labels.Explicit]\nblock_at = -" + "9" * 5000 + "\n",
    ],
)
def test_a_policy_that_breaks_a_validator_never_breaks_the_import(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, policy_text: str
) -> None:
    """The module imports whatever the policy holds; every request is then a generic 500."""
    policy = tmp_path / "policy.toml"
    policy.write_text(policy_text)
    monkeypatch.setenv("SAFEGEN_GENERATOR", VALID["SAFEGEN_GENERATOR"])
    monkeypatch.setenv("SAFEGEN_POLICY", str(policy))
    cold = _import_fresh()
    response = cold.handler(rest_event('{"prompt": "a lighthouse"}'), None)
    assert response["statusCode"] == 500


def test_an_unforeseen_error_outside_the_policy_never_breaks_the_import(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Even a failure load_settings does not wrap (here: building the default policy) is a 500."""

    def exploding() -> ModerationPolicy:
        raise OverflowError("from a validator")

    monkeypatch.setattr(safegen, "ModerationPolicy", exploding)
    monkeypatch.setenv("SAFEGEN_GENERATOR", VALID["SAFEGEN_GENERATOR"])
    monkeypatch.delenv("SAFEGEN_POLICY", raising=False)
    cold = _import_fresh()
    assert cold._container.settings is None
    response = cold.handler(rest_event('{"prompt": "a lighthouse"}'), None)
    assert response["statusCode"] == 500
    assert json.loads(response["body"]) == {"error": proxy._MISCONFIGURED}
