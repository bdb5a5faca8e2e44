"""Reliability: every check under every fault, through botocore's real stack, on loopback.

The emulator serves real HTTP on 127.0.0.1; clients retry in botocore's standard mode with
short timeouts so the whole matrix stays within seconds. Nothing here depends on chance or on
the clock: faults are certain or scripted, the quota runs on a fake clock, and botocore's
retry back-off is counted instead of slept.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import botocore.endpoint
import pytest
from botocore.config import Config

from safegen import (
    Action,
    ImageModerator,
    Pipeline,
    PromptModerator,
    RuleFilter,
    SafegenError,
)
from safegen.aws import (
    BedrockGenerator,
    ComprehendClassifier,
    ComprehendToxicity,
    RekognitionModerator,
    SageMakerGenerator,
)
from safegen.aws._model import operation_model
from safegen.testing import AWSEmulator, FakeImageBackend, Faults

ENDPOINT = "arn:aws:comprehend:us-east-1:123456789012:document-classifier-endpoint/toxicity"
FAULTS = {
    "throttled past retries": Faults(throttle_rate=1.0),
    "5xx": Faults(error_rate=1.0),
    "timeout": Faults(hang_rate=1.0, hang_seconds=1.0),
    "dropped connection": Faults(drop_rate=1.0),
    "malformed body": Faults(malformed_rate=1.0),
    "answer of the wrong shape": Faults(),  # with WRONG_SHAPE scripted as the answer
}
# Well-formed JSON, wrong shape: what a truncated or misrouted answer looks like.
WRONG_SHAPE: dict[str, Any] = {
    "DetectModerationLabels": {"ModerationModelVersion": "7.0", "ContentTypes": []},
    "DetectToxicContent": {"ResultList": []},
    "ClassifyDocument": {"Classes": [{"Name": "SAFE", "Score": 0.99}]},
    "InvokeEndpoint": {"generated_images": []},
    "InvokeModel": {"error": None},
}
CLIENT: dict[str, Any] = {
    "retries": {"mode": "standard", "total_max_attempts": 2},
    "read_timeout": 0.3,
    "connect_timeout": 0.5,
}


class FakeClock:
    """A monotonic clock that moves only when a test moves it."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def aws(clock: FakeClock) -> Iterator[AWSEmulator]:
    with AWSEmulator(seed=11, clock=clock) as emulator:
        yield emulator


@pytest.fixture
def retry_sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Botocore's back-off between retries, recorded instead of slept."""
    slept: list[float] = []

    class Time:
        @staticmethod
        def sleep(seconds: float) -> None:
            slept.append(seconds)

    monkeypatch.setattr(botocore.endpoint, "time", Time)
    return slept


def inject(aws: AWSEmulator, operation: str, fault: str) -> None:
    """Set *fault* on *operation*; the wrong-shape fault is a scripted answer."""
    aws.faults(operation, FAULTS[fault])
    if fault == "answer of the wrong shape":
        aws.respond(operation, WRONG_SHAPE[operation])


def prompt_check(kind: str, aws: AWSEmulator) -> tuple[str, Any]:
    client = aws.client("comprehend", **CLIENT)
    if kind == "comprehend":
        return "DetectToxicContent", ComprehendToxicity(client)
    return "ClassifyDocument", ComprehendClassifier(client, ENDPOINT, unsafe_classes={"UNSAFE"})


@pytest.mark.parametrize("fault", list(FAULTS))
@pytest.mark.parametrize("kind", ["comprehend", "classifier"])
@pytest.mark.parametrize("fail_open", [False, True])
def test_prompt_checks_never_allow_when_they_fail(
    aws: AWSEmulator, kind: str, fault: str, fail_open: bool
) -> None:
    """A failing Comprehend check blocks, names itself, and allows only when fail_open."""
    operation, check = prompt_check(kind, aws)
    inject(aws, operation, fault)
    opened = {check.name} if fail_open else set()
    verdict = PromptModerator(classifiers=[check], fail_open=opened).moderate("a calm lake")
    (failed,) = verdict.failed
    assert failed.name == check.name
    assert failed.error
    assert verdict.action is (Action.ALLOW if fail_open else Action.BLOCK)


@pytest.mark.parametrize("fault", list(FAULTS))
@pytest.mark.parametrize("fail_open", [False, True])
def test_image_moderation_never_allows_when_it_fails(
    aws: AWSEmulator, fault: str, fail_open: bool
) -> None:
    """A failing Rekognition blocks with its error, and allows only when fail_open."""
    inject(aws, "DetectModerationLabels", fault)
    backend = RekognitionModerator(aws.client("rekognition", **CLIENT))
    verdict = ImageModerator(backend, fail_open=fail_open).moderate(b"\xff\xd8\xff image")
    assert verdict.failed
    assert (verdict.error or "").startswith("rekognition: ")
    assert verdict.action is (Action.ALLOW if fail_open else Action.BLOCK)


@pytest.mark.parametrize("fault", list(FAULTS))
@pytest.mark.parametrize("kind", ["sagemaker", "bedrock"])
def test_a_failing_generator_returns_no_image(aws: AWSEmulator, kind: str, fault: str) -> None:
    """The pipeline reports the failed generation, with the service named, and no images."""
    if kind == "sagemaker":
        operation, service = "InvokeEndpoint", "sagemaker-runtime"
        generator: Any = SageMakerGenerator(aws.client(service, **CLIENT), "sd")
    else:
        operation, service = "InvokeModel", "bedrock-runtime"
        generator = BedrockGenerator(aws.client(service, **CLIENT), "amazon.nova-canvas-v1:0")
    inject(aws, operation, fault)
    result = Pipeline(None, generator, ImageModerator(FakeImageBackend())).run("a lake")
    assert result.status == "failed"
    assert result.images == ()
    assert service in result.warnings[0] or operation in result.warnings[0]


@pytest.mark.parametrize("kind", ["sagemaker", "bedrock"])
def test_the_emulators_default_generators_answer_what_was_asked(
    aws: AWSEmulator, kind: str
) -> None:
    """Unscripted, the emulated endpoints return the images asked for, in the codec's shape."""
    if kind == "sagemaker":
        generator: Any = SageMakerGenerator(aws.client("sagemaker-runtime", **CLIENT), "sd")
    else:
        generator = BedrockGenerator(
            aws.client("bedrock-runtime", **CLIENT), "amazon.nova-canvas-v1:0"
        )
    result = Pipeline(None, generator, ImageModerator(FakeImageBackend())).run("a lake", images=2)
    assert result.status == "ok"
    assert len(result.images) == 2


def test_throttling_below_the_retry_budget_always_gets_through(
    aws: AWSEmulator, retry_sleeps: list[float]
) -> None:
    """Five throttled answers, six attempts per image: every image gets through, after retries."""
    aws.faults("DetectModerationLabels", Faults(script=("throttle",) * 5))
    client = aws.client("rekognition", retries={"mode": "standard", "total_max_attempts": 6})
    verdicts = ImageModerator(RekognitionModerator(client)).moderate_many([b"x"] * 30)
    assert [v.failed for v in verdicts] == [False] * 30
    counts = aws.counts("DetectModerationLabels")
    assert (counts.throttled, counts.answered, counts.received) == (5, 30, 35)
    assert len(retry_sleeps) == 5


def test_throttling_past_the_retry_budget_fails_after_exactly_that_many_attempts(
    aws: AWSEmulator, retry_sleeps: list[float]
) -> None:
    """Three attempts, all throttled: the check fails, having asked three times and no more."""
    aws.faults("DetectModerationLabels", Faults(throttle_rate=1.0))
    client = aws.client("rekognition", retries={"mode": "standard", "total_max_attempts": 3})
    verdict = ImageModerator(RekognitionModerator(client)).moderate(b"x")
    assert verdict.failed
    assert verdict.action is Action.BLOCK
    assert aws.counts("DetectModerationLabels").received == 3
    assert len(retry_sleeps) == 2


def test_a_quota_is_enforced_per_second(aws: AWSEmulator, clock: FakeClock) -> None:
    """Above requests_per_second in one second the service's own throttling error answers."""
    aws.faults("DetectModerationLabels", Faults(requests_per_second=3))
    client = aws.client("rekognition", retries={"mode": "standard", "total_max_attempts": 1})
    moderator = ImageModerator(RekognitionModerator(client))
    verdicts = [moderator.moderate(b"x") for _ in range(6)]
    assert [v.failed for v in verdicts] == [False] * 3 + [True] * 3
    modelled = {
        e.name for e in operation_model("rekognition", "DetectModerationLabels").error_shapes
    }
    codes = {(v.error or "").split("(")[-1].split(")")[0] for v in verdicts if v.failed}
    assert codes <= modelled & {"ThrottlingException", "ProvisionedThroughputExceededException"}
    clock.now = 0.999  # still inside the window
    assert moderator.moderate(b"x").failed
    clock.now = 1.0  # the first three have left it
    assert not moderator.moderate(b"x").failed


def test_logs_never_carry_prompts_images_or_credentials(
    aws: AWSEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    """Across passing and failing runs, no record at any level quotes what it must not."""
    prompt, image = "a secret prompt about zebras", b"\xff\xd8\xff SECRET-IMAGE-BYTES"
    aws.respond("InvokeEndpoint", {"generated_images": []})
    with caplog.at_level(logging.DEBUG):
        check = ComprehendToxicity(aws.client("comprehend", **CLIENT))
        generator = SageMakerGenerator(aws.client("sagemaker-runtime", **CLIENT), "sd")
        backend = RekognitionModerator(aws.client("rekognition", **CLIENT))
        runs: list[Callable[[], object]] = [
            lambda: Pipeline(PromptModerator(rules=RuleFilter.default(), classifiers=[check]),
                             generator, ImageModerator(backend)).run(prompt),
            lambda: ImageModerator(backend).moderate(image),
        ]  # fmt: skip
        for faults in (Faults(), Faults(error_rate=1.0), Faults(malformed_rate=1.0)):
            aws.faults(None, faults)
            for run in runs:
                run()
    assert [r for r in caplog.records if r.levelno >= logging.WARNING]  # failures were logged
    for record in caplog.records:
        text = record.getMessage() + repr(record.args)
        for secret in ("zebras", "SECRET-IMAGE-BYTES", "emulator"):
            assert secret not in text, record.name


SESSION = {
    "aws_access_key_id": "AKIDSAFEGENTESTKEY01",
    "aws_secret_access_key": "secret-access-key-never-logged",
    "aws_session_token": "SESSION-TOKEN-NEVER-LOGGED-0123456789",
}


@pytest.mark.parametrize("botocore_level", [None, logging.DEBUG])
def test_debug_logging_shows_calls_and_timings_never_content_or_credentials(
    aws: AWSEmulator, caplog: pytest.LogCaptureFixture, botocore_level: int | None
) -> None:
    """With everything at DEBUG, the log names each call and its time, and nothing else."""
    prompt, image = "my secret prompt about aardvarks", b"\xff\xd8\xff IMAGE-PAYLOAD-BYTES!"
    secrets = [
        "aardvarks",
        "IMAGE-PAYLOAD-BYTES",
        base64.b64encode(image).decode(),
        *SESSION.values(),
    ]
    if botocore_level is not None:  # someone turned botocore's own logger up
        logging.getLogger("botocore").setLevel(botocore_level)

    def client(service: str) -> Any:
        factory: Any = boto3.client
        return factory(service, region_name="us-east-1", endpoint_url=aws.endpoint_url,
                       config=Config(**CLIENT), **SESSION)  # fmt: skip

    with caplog.at_level(logging.DEBUG):
        ComprehendToxicity(client("comprehend")).classify(prompt)
        RekognitionModerator(client("rekognition")).detect(image, min_confidence=50)
        aws.faults(None, Faults(error_rate=1.0))
        with pytest.raises(SafegenError):
            RekognitionModerator(client("rekognition")).detect(image, min_confidence=50)
    for record in caplog.records:
        text = record.getMessage() + repr(record.args)
        for secret in secrets:
            assert secret not in text, (record.name, record.getMessage()[:200])
    calls = [r.getMessage() for r in caplog.records if r.name == "safegen.aws"]
    assert any(m.startswith("aws call comprehend.DetectToxicContent: HTTP 200 in ") for m in calls)
    assert any(m.startswith("aws call rekognition.DetectModerationLabels: HTTP 200") for m in calls)
    assert any("rekognition.DetectModerationLabels: HTTP 5" in m for m in calls)
    assert all(m.endswith(" ms") for m in calls)


def test_errors_are_safegen_errors_when_raised_directly(aws: AWSEmulator) -> None:
    """Called without a moderator around it, an adapter raises SafegenError, not botocore's."""
    aws.faults("DetectModerationLabels", Faults(drop_rate=1.0))
    backend = RekognitionModerator(aws.client("rekognition", **CLIENT))
    with pytest.raises(SafegenError) as raised:
        backend.detect(b"x", min_confidence=50)
    assert raised.value.code == "ConnectionClosedError"  # type: ignore[attr-defined]


@pytest.mark.parametrize("fail_open", [False, True])
def test_a_failing_rule_filter_fails_closed_too(
    monkeypatch: pytest.MonkeyPatch, fail_open: bool
) -> None:
    """The rules have no network, but a bug in them must not let a prompt through either."""
    rules = RuleFilter(["gore"])

    def broken(text: str) -> Any:
        raise RuntimeError("rule filter bug")

    monkeypatch.setattr(rules, "scan", broken)
    opened = {"rules"} if fail_open else set()
    verdict = PromptModerator(rules=rules, fail_open=opened).moderate("a calm lake")
    assert verdict.failed[0].name == "rules"
    assert verdict.action is (Action.ALLOW if fail_open else Action.BLOCK)
