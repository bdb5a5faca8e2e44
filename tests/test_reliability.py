"""Reliability: every check under every fault, through botocore's real stack, on loopback.

The emulator serves real HTTP on 127.0.0.1; clients retry in botocore's standard mode with
short timeouts so the whole matrix stays within seconds.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from safegen import (
    Action,
    ImageModerator,
    Pipeline,
    PromptModerator,
    RuleFilter,
    SafegenError,
)
from safegen.aws import (
    ComprehendClassifier,
    ComprehendToxicity,
    RekognitionModerator,
    SageMakerGenerator,
)
from safegen.testing import AWSEmulator, FakeImageBackend, Faults

ENDPOINT = "arn:aws:comprehend:us-east-1:123456789012:document-classifier-endpoint/toxicity"
FAULTS = {
    "throttled past retries": Faults(throttle_rate=1.0),
    "5xx": Faults(error_rate=1.0),
    "timeout": Faults(hang_rate=1.0, hang_seconds=1.0),
    "dropped connection": Faults(drop_rate=1.0),
    "malformed body": Faults(malformed_rate=1.0),
}
CLIENT = {
    "retries": {"mode": "standard", "total_max_attempts": 2},
    "read_timeout": 0.3,
    "connect_timeout": 0.5,
}


@pytest.fixture
def aws() -> Iterator[AWSEmulator]:
    with AWSEmulator(seed=11) as emulator:
        yield emulator


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
    aws.faults(operation, FAULTS[fault])
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
    aws.faults("DetectModerationLabels", FAULTS[fault])
    backend = RekognitionModerator(aws.client("rekognition", **CLIENT))
    verdict = ImageModerator(backend, fail_open=fail_open).moderate(b"\xff\xd8\xff image")
    assert verdict.failed
    assert (verdict.error or "").startswith("rekognition: ")
    assert verdict.action is (Action.ALLOW if fail_open else Action.BLOCK)


@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_failing_generator_returns_no_image(aws: AWSEmulator, fault: str) -> None:
    """The pipeline reports the failed generation, with the service named, and no images."""
    aws.faults("InvokeEndpoint", FAULTS[fault])
    generator = SageMakerGenerator(aws.client("sagemaker-runtime", **CLIENT), "sd")
    result = Pipeline(None, generator, ImageModerator(FakeImageBackend())).run("a lake")
    assert result.status == "failed"
    assert result.images == ()
    assert "sagemaker-runtime" in result.warnings[0] or "InvokeEndpoint" in result.warnings[0]


def test_throttling_below_the_retry_budget_always_gets_through(aws: AWSEmulator) -> None:
    """With a third of requests throttled and 6 attempts, every check succeeds, after retries."""
    aws.faults("DetectModerationLabels", Faults(throttle_rate=0.3))
    client = aws.client("rekognition", retries={"mode": "standard", "total_max_attempts": 6})
    verdicts = ImageModerator(RekognitionModerator(client)).moderate_many([b"x"] * 30)
    assert [v.failed for v in verdicts] == [False] * 30
    counts = aws.counts("DetectModerationLabels")
    assert counts.throttled > 0
    assert counts.received == counts.answered + counts.throttled == 30 + counts.throttled


def test_a_quota_is_enforced_per_second(aws: AWSEmulator) -> None:
    """Above requests_per_second the emulator answers ThrottlingException."""
    aws.faults("DetectModerationLabels", Faults(requests_per_second=3))
    client = aws.client("rekognition", retries={"mode": "standard", "total_max_attempts": 1})
    verdicts = [ImageModerator(RekognitionModerator(client)).moderate(b"x") for _ in range(6)]
    assert sum(v.failed for v in verdicts) == 3
    assert all("ThrottlingException" in (v.error or "") for v in verdicts if v.failed)


def test_logs_never_carry_prompts_images_or_credentials(
    aws: AWSEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    """Across passing and failing runs, no INFO-or-above record quotes what it must not."""
    prompt, image = "a secret prompt about zebras", b"\xff\xd8\xff SECRET-IMAGE-BYTES"
    aws.respond("InvokeEndpoint", {"generated_images": []})
    check = ComprehendToxicity(aws.client("comprehend", **CLIENT))
    generator = SageMakerGenerator(aws.client("sagemaker-runtime", **CLIENT), "sd")
    backend = RekognitionModerator(aws.client("rekognition", **CLIENT))
    runs: list[Callable[[], object]] = [
        lambda: Pipeline(PromptModerator(rules=RuleFilter.default(), classifiers=[check]),
                         generator, ImageModerator(backend)).run(prompt),
        lambda: ImageModerator(backend).moderate(image),
    ]  # fmt: skip
    with caplog.at_level(logging.DEBUG):
        for faults in (Faults(), Faults(error_rate=1.0), Faults(malformed_rate=1.0)):
            aws.faults(None, faults)
            for run in runs:
                run()
    loud = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    assert loud  # the failures were logged
    for message in loud:
        for secret in ("zebras", "SECRET-IMAGE-BYTES", "emulator"):
            assert secret not in message


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
