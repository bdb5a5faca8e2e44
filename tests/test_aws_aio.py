"""The async AWS adapters: the sync adapters' answers and errors, over aiobotocore, cancellable.

Every comparison runs the sync adapter and its async twin against two emulators started from
the same seed with the same faults, so both see the same answers and the same injected errors.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import subprocess
import sys
import warnings
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import aiohttp
import anyio
import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from safegen.aws import (
    STABILITY,
    BedrockGenerator,
    ComprehendClassifier,
    ComprehendToxicity,
    HumanReview,
    RekognitionModerator,
    SageMakerGenerator,
)
from safegen.aws._client import Call
from safegen.aws._errors import aws_call
from safegen.aws.aio import (
    AsyncBedrockGenerator,
    AsyncComprehendClassifier,
    AsyncComprehendToxicity,
    AsyncRekognitionBackend,
    AsyncSageMakerGenerator,
    run,
)
from safegen.errors import (
    ConfigurationError,
    SafegenError,
    ServiceError,
    ServiceUnavailableError,
)
from safegen.generate import GenerationRequest
from safegen.image import S3Object
from safegen.ports import AsyncGenerator, AsyncImageBackend, AsyncTextClassifier
from safegen.testing import AWSEmulator, Faults

ENDPOINT = "arn:aws:comprehend:us-east-1:123456789012:document-classifier-endpoint/toxicity"
ADAPTER = "arn:aws:rekognition:us-east-1:123456789012:project/p/version/v/1700000000000"
FLOW = "arn:aws:sagemaker:us-east-1:123456789012:flow-definition/review"
NOVA, SD35 = "amazon.nova-canvas-v1:0", "stability.sd3-5-large-v1:0"
# One attempt a call, so each scripted fate meets exactly one request; a short read timeout
# turns a hang into a timeout quickly (the emulator sees the client hang up and stops).
CLIENT: dict[str, Any] = {
    "retries": {"mode": "standard", "total_max_attempts": 1},
    "read_timeout": 0.25,
    "connect_timeout": 2,
}
FATES = ("answer", "throttle", "error", "hang", "drop", "malformed")
LONG_PROMPT = "a calm and friendly sentence about gardens " * 60  # two DetectToxicContent calls


@attrs.frozen
class Kind:
    """One adapter, its async twin, and one use of it."""

    service: str
    operation: str
    sync: Callable[[Any], Any]
    aio: Callable[[Any], Any]
    use: Callable[[Any], Any]


KINDS = {
    "rekognition": Kind(
        "rekognition",
        "DetectModerationLabels",
        lambda c: RekognitionModerator(c, adapter_arn=ADAPTER, human_review=HumanReview(FLOW)),
        lambda c: AsyncRekognitionBackend(c, adapter_arn=ADAPTER, human_review=HumanReview(FLOW)),
        lambda a: a.detect(S3Object("bucket", "key.png", "v1"), min_confidence=40),
    ),
    "toxicity": Kind(
        "comprehend",
        "DetectToxicContent",
        ComprehendToxicity,
        AsyncComprehendToxicity,
        lambda a: a.classify(LONG_PROMPT),
    ),
    "classifier": Kind(
        "comprehend",
        "ClassifyDocument",
        lambda c: ComprehendClassifier(c, ENDPOINT, unsafe_classes={"UNSAFE"}),
        lambda c: AsyncComprehendClassifier(c, ENDPOINT, unsafe_classes={"UNSAFE"}),
        lambda a: a.classify("a prompt"),
    ),
    "sagemaker": Kind(
        "sagemaker-runtime",
        "InvokeEndpoint",
        lambda c: SageMakerGenerator(c, "sdxl", codec=STABILITY),
        lambda c: AsyncSageMakerGenerator(c, "sdxl", codec=STABILITY),
        lambda a: a.generate(GenerationRequest(prompt="x", images=2, seed=5)),
    ),
    "bedrock-stability": Kind(
        "bedrock-runtime",
        "InvokeModel",
        lambda c: BedrockGenerator(c, SD35),
        lambda c: AsyncBedrockGenerator(c, SD35),
        lambda a: a.generate(GenerationRequest(prompt="x", images=2, seed=5)),
    ),
    "bedrock-nova": Kind(
        "bedrock-runtime",
        "InvokeModel",
        lambda c: BedrockGenerator(c, NOVA),
        lambda c: AsyncBedrockGenerator(c, NOVA),
        lambda a: a.generate(GenerationRequest(prompt="x", images=3)),
    ),
}

Setup = Callable[[AWSEmulator], None]
Outcome = tuple[str, Any]


def _settled(value: Any) -> Outcome:
    return ("result", value)


def _failed(error: SafegenError) -> Outcome:
    return (type(error).__name__, getattr(error, "code", None))


def sync_outcome(kind: Kind, seed: int, setup: Setup, **client: Any) -> tuple[Outcome, Any]:
    """What the sync adapter returns or raises, and what the emulator received."""
    with AWSEmulator(seed=seed) as aws:
        setup(aws)
        adapter = kind.sync(aws.client(kind.service, **{**CLIENT, **client}))
        try:
            outcome = _settled(kind.use(adapter))
        except SafegenError as error:
            outcome = _failed(error)
        return outcome, _received(aws, kind)


async def async_outcome(kind: Kind, seed: int, setup: Setup, **client: Any) -> tuple[Outcome, Any]:
    """What the async twin returns or raises, and what the emulator received."""
    with AWSEmulator(seed=seed) as aws:
        setup(aws)
        async with aws.async_client(kind.service, **{**CLIENT, **client}) as raw:
            adapter = kind.aio(raw)
            try:
                outcome = _settled(await kind.use(adapter))
            except SafegenError as error:
                outcome = _failed(error)
        return outcome, _received(aws, kind)


def _received(aws: AWSEmulator, kind: Kind) -> tuple[int, ...]:
    counts = aws.counts(kind.operation)
    fates = (counts.answered, counts.throttled, counts.errors, counts.hung, counts.dropped)
    return (counts.received, *fates, counts.malformed)


def scripted(operation: str, fates: list[str], **faults: Any) -> Setup:
    def setup(aws: AWSEmulator) -> None:
        aws.faults(operation, Faults(script=fates, hang_seconds=30.0, **faults))

    return setup


# -- import cost and ports ---------------------------------------------------------------------


def test_import_safegen_and_safegen_aws_do_not_import_aiobotocore_or_aiohttp() -> None:
    """The async stack loads only when an async adapter opens a client, never on import."""
    code = (
        "import sys, safegen, safegen.aws, safegen.aws.aio; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in {'aiobotocore', 'aiohttp'}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_each_twin_satisfies_its_async_port_and_not_the_sync_one() -> None:
    """Coroutine methods, the async Protocols; the sync adapters stay sync."""
    backend: AsyncImageBackend = AsyncRekognitionBackend(object())
    toxicity: AsyncTextClassifier = AsyncComprehendToxicity(object())
    classifier: AsyncTextClassifier = AsyncComprehendClassifier(
        object(), ENDPOINT, unsafe_classes={"UNSAFE"}
    )
    sagemaker: AsyncGenerator = AsyncSageMakerGenerator(object(), "sd")
    bedrock: AsyncGenerator = AsyncBedrockGenerator(object(), NOVA)
    for adapter, port, method in [
        (backend, AsyncImageBackend, "detect"),
        (toxicity, AsyncTextClassifier, "classify"),
        (classifier, AsyncTextClassifier, "classify"),
        (sagemaker, AsyncGenerator, "generate"),
        (bedrock, AsyncGenerator, "generate"),
    ]:
        assert isinstance(adapter, port)
        assert asyncio.iscoroutinefunction(getattr(adapter, method))
    assert not asyncio.iscoroutinefunction(RekognitionModerator(object()).detect)


@pytest.mark.parametrize(
    "build",
    [
        lambda: AsyncRekognitionBackend(object(), adapter_arn="not an arn"),
        lambda: AsyncComprehendToxicity(object(), thresholds={"NOT_A_LABEL": 50}),
        lambda: AsyncComprehendClassifier(object(), ENDPOINT, unsafe_classes=set()),
        lambda: AsyncSageMakerGenerator(object(), "bad name!"),
        lambda: AsyncBedrockGenerator(object(), "meta.llama3-70b-instruct-v1:0"),
        lambda: AsyncRekognitionBackend(object(), name=" "),
    ],
)
def test_the_twins_validate_settings_as_the_sync_adapters_do(build: Callable[[], Any]) -> None:
    """The same validators: a setting the sync adapter refuses, the async one refuses too."""
    with pytest.raises(SafegenError):
        build()


def test_with_policy_copies_keep_their_async_class() -> None:
    """with_policy is shared and returns the twin's own class, on the same client."""
    from safegen.prompt_policy import PromptPolicy

    check = AsyncComprehendToxicity(object()).with_policy(PromptPolicy(block_at=30.0))
    assert type(check) is AsyncComprehendToxicity
    assert check.thresholds_for("INSULT").block_at == 30.0


# -- the same answers -----------------------------------------------------------------------------


def _labels(request: Any) -> dict[str, Any]:
    """A moderation answer whose adapter has expired and whose model is not v7."""
    return {
        "ModerationLabels": [
            {
                "Name": "Smoking",
                "Confidence": 91.5,
                "ParentName": "Drugs & Tobacco",
                "TaxonomyLevel": 2,
            },
        ],
        "ModerationModelVersion": "6.1",
        "ContentTypes": [{"Name": "Illustrated", "Confidence": 88.0}],
        "HumanLoopActivationOutput": {
            "HumanLoopArn": "arn:aws:sagemaker:us-east-1:123456789012:human-loop/x",
            "HumanLoopActivationReasons": ["ConditionsEvaluation"],
        },
    }


def _toxic(request: Any) -> dict[str, Any]:
    labels = ["PROFANITY", "HATE_SPEECH", "INSULT", "GRAPHIC", "HARASSMENT_OR_ABUSE", "SEXUAL",
              "VIOLENCE_OR_THREAT"]  # fmt: skip
    segments = request.get("TextSegments", [])
    results = [
        {"Labels": [{"Name": n, "Score": 0.2 + i / 20} for n in labels], "Toxicity": 0.3 + i / 20}
        for i in range(len(segments))
    ]
    return {"ResultList": results}


ANSWERS: dict[str, Any] = {
    "rekognition": _labels,
    "toxicity": _toxic,
    "classifier": {"Labels": [{"Name": "UNSAFE", "Score": 0.7}, {"Name": "OTHER", "Score": 0.9}]},
    "sagemaker": None,
    "bedrock-stability": None,
    "bedrock-nova": {"images": ["iVBORw0KGgo="], "error": "2 images were filtered out"},
}


@pytest.mark.anyio
@pytest.mark.parametrize("name", list(KINDS))
async def test_each_twin_reports_what_its_sync_adapter_reports(name: str) -> None:
    """The same answer gives the same report: findings, notes, warnings, images, filters."""
    kind = KINDS[name]

    def setup(aws: AWSEmulator) -> None:
        if ANSWERS[name] is not None:
            aws.respond(kind.operation, ANSWERS[name])

    expected = sync_outcome(kind, 3, setup)
    assert expected[0][0] == "result" or name == "bedrock-nova"
    assert await async_outcome(kind, 3, setup) == expected


# Well-formed JSON of the wrong shape or the wrong types: what a truncated or misrouted answer is.
BROKEN: list[tuple[str, Any]] = [
    ("rekognition", {"ModerationModelVersion": "7.0", "ContentTypes": []}),
    ("rekognition", {"ModerationLabels": {}, "ModerationModelVersion": "7.0"}),
    (
        "rekognition",
        {"ModerationLabels": [{"Name": "X", "Confidence": "99"}], "ModerationModelVersion": "7.0"},
    ),
    ("toxicity", {"ResultList": []}),
    ("toxicity", {"ResultList": [{"Labels": [], "Toxicity": 2.0}]}),
    ("classifier", {"Classes": [{"Name": "SAFE", "Score": 0.99}]}),
    ("classifier", {"Classes": [{"Name": "UNSAFE", "Score": float("nan")}]}),
    ("sagemaker", {"generated_image": 7}),
    ("bedrock-stability", {"images": ["iVBORw0KGgo="], "finish_reasons": [1]}),
    ("bedrock-nova", {"error": None}),
    ("bedrock-nova", b"[1, 2]"),
]


@pytest.mark.anyio
@pytest.mark.parametrize(("name", "answer"), BROKEN)
async def test_a_broken_answer_is_refused_the_same_way(name: str, answer: Any) -> None:
    """The same checks refuse it, before or after botocore's parser: same class, same code."""
    kind = KINDS[name]

    def setup(aws: AWSEmulator) -> None:
        aws.respond(kind.operation, answer)

    outcome, received = await async_outcome(kind, 6, setup)
    assert (outcome, received) == sync_outcome(kind, 6, setup)
    assert outcome[0] in ("MalformedResponseError", "ServiceError")


@pytest.mark.anyio
async def test_the_rekognition_twin_keeps_every_warning_and_the_human_loop() -> None:
    """Expired adapter, unknown model version, quota fallback: the sync backend's words."""
    kind = KINDS["rekognition"]

    def setup(aws: AWSEmulator) -> None:
        aws.respond(kind.operation, _labels)
        quota = "HumanLoopQuotaExceededException"
        aws.faults(kind.operation, Faults(script=["error", "answer"], error_code=quota))

    outcome, received = await async_outcome(kind, 1, setup)
    assert (outcome, received) == sync_outcome(kind, 1, setup)
    report = outcome[1]
    assert received[0] == 2  # the call with the loop, then the one without
    assert len(report.warnings) == 3
    assert report.warnings[0].startswith("the human review quota is exhausted")
    assert "has expired" in report.warnings[1]
    assert "moderation model 6.1" in report.warnings[2]
    assert report.human_loop is not None


@pytest.mark.anyio
async def test_the_async_rekognition_request_is_valid_for_the_service_model() -> None:
    """The Stubber checks the async request (S3 object, adapter, loop) against the model."""
    from aiobotocore.session import get_session
    from aiobotocore.stub import AioStubber
    from botocore.stub import ANY

    review = HumanReview(FLOW, content_classifiers=["FreeOfAdultContent"])
    create: Any = get_session().create_client
    async with create(
        "rekognition", region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b"
    ) as client:
        expected = {
            "Image": {"S3Object": {"Bucket": "bucket", "Name": "key.png", "Version": "v1"}},
            "MinConfidence": 40.0,
            "ProjectVersion": ADAPTER,
            "HumanLoopConfig": {
                "HumanLoopName": ANY,
                "FlowDefinitionArn": FLOW,
                "DataAttributes": {"ContentClassifiers": ["FreeOfAdultContent"]},
            },
        }
        answer = {
            "ModerationLabels": [],
            "ModerationModelVersion": "7.0",
            "ProjectVersion": ADAPTER,
        }
        with AioStubber(client) as stubber:
            stubber.add_response("detect_moderation_labels", answer, expected)
            backend = AsyncRekognitionBackend(client, adapter_arn=ADAPTER, human_review=review)
            report = await backend.detect(S3Object("bucket", "key.png", "v1"), min_confidence=40)
            stubber.assert_no_pending_responses()
    assert report.adapter_version == ADAPTER
    assert report.warnings == ()


# -- the same failures, for every fate ------------------------------------------------------------


@settings(
    max_examples=30,
    suppress_health_check=[HealthCheck.too_slow],
    # Two emulators and one event loop an example; hangs cost a read timeout each.
)
@given(
    name=st.sampled_from(sorted(KINDS)),
    fates=st.lists(st.sampled_from(FATES), min_size=1, max_size=3),
    seed=st.integers(0, 2**16),
)
def test_every_fate_ends_the_same_way_sync_and_async(
    name: str, fates: list[str], seed: int
) -> None:
    """Answer, throttle, 5xx, hang, drop, malformed: the same report or the same error and code."""
    kind = KINDS[name]
    setup = scripted(kind.operation, fates)
    expected = sync_outcome(kind, seed, setup)
    assert asyncio.run(async_outcome(kind, seed, setup)) == expected


@pytest.mark.anyio
@pytest.mark.parametrize("fate", FATES)
async def test_each_fate_is_the_same_error_class_and_code(fate: str) -> None:
    """Each fate on its own, as an example: a failure is a SafegenError, never a bare one."""
    kind = KINDS["classifier"]
    setup = scripted(kind.operation, [fate])
    outcome, _ = await async_outcome(kind, 9, setup)
    assert (outcome, _) == sync_outcome(kind, 9, setup)
    expected = {
        "answer": "result",
        "throttle": "ThrottledError",
        "error": "ServiceUnavailableError",
        "hang": "ServiceUnavailableError",
        "drop": "ServiceError",
        "malformed": "MalformedResponseError",
    }
    assert outcome[0] == expected[fate]


@pytest.mark.anyio
async def test_the_twins_retry_as_the_sync_adapters_do() -> None:
    """Standard mode with the same attempts: a throttle then an answer is an answer, twice sent."""
    kind = KINDS["classifier"]
    setup = scripted(kind.operation, ["throttle", "answer"])
    twice = {"retries": {"mode": "standard", "total_max_attempts": 2}}
    outcome, received = await async_outcome(kind, 2, setup, **twice)
    assert (outcome, received) == sync_outcome(kind, 2, setup, **twice)
    assert outcome[0] == "result"
    assert received[:3] == (2, 1, 1)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("raised", "expected", "code"),
    [
        (aiohttp.ServerDisconnectedError(), ServiceUnavailableError, "ServerDisconnectedError"),
        (aiohttp.ClientPayloadError("cut"), ServiceUnavailableError, "ClientPayloadError"),
        (aiohttp.ClientOSError(104, "reset"), ServiceUnavailableError, "ClientOSError"),
        (aiohttp.ServerTimeoutError("slow"), ServiceUnavailableError, "ServerTimeoutError"),
        (aiohttp.ClientError("other"), ServiceError, "ClientError"),
        (TimeoutError(), ServiceUnavailableError, "TimeoutError"),
    ],
)
async def test_aiohttp_and_asyncio_failures_are_translated_at_the_choke_point(
    raised: Exception, expected: type[ServiceError], code: str
) -> None:
    """An aiohttp or timeout exception that escapes aiobotocore leaves as a SafegenError."""

    class Client:
        async def classify_document(self, **_: Any) -> Any:
            raise raised

    check = AsyncComprehendClassifier(Client(), ENDPOINT, unsafe_classes={"UNSAFE"})
    with pytest.raises(expected) as caught:
        await check.classify("a prompt")
    assert type(caught.value) is expected
    assert caught.value.code == code
    assert caught.value.operation == "ClassifyDocument"


@pytest.mark.anyio
async def test_cancellation_is_not_translated_into_a_failure() -> None:
    """CancelledError passes the choke point untouched, and the exchange is closed."""
    closed: list[bool] = []

    def exchange() -> Any:
        try:
            yield Call("comprehend", "ClassifyDocument", {})
        finally:
            closed.append(True)

    class Client:
        async def classify_document(self, **_: Any) -> Any:
            raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        await run(Client(), exchange())
    assert closed == [True]
    with pytest.raises(asyncio.CancelledError), aws_call("comprehend", "ClassifyDocument"):
        raise asyncio.CancelledError


# -- cancellation --------------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("name", ["rekognition", "toxicity", "sagemaker", "bedrock-nova"])
async def test_a_cancelled_call_closes_its_connection_and_leaves_no_task(name: str) -> None:
    """Cancel a call the emulator hangs on: it ends at once, the emulator sees the hang-up."""
    kind = KINDS[name]
    with AWSEmulator(seed=4) as aws:
        aws.faults(kind.operation, Faults(hang_rate=1.0, hang_seconds=600.0))
        patient = {**CLIENT, "read_timeout": 600}
        async with aws.async_client(kind.service, **patient) as client:
            adapter = kind.aio(client)
            # A bound that only a regression reaches: the hang itself lasts ten minutes.
            before = asyncio.all_tasks()
            with anyio.fail_after(60):
                task = asyncio.ensure_future(kind.use(adapter))
                while aws.counts(kind.operation).hung < 1:
                    await asyncio.sleep(0.01)
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
                while aws.counts(kind.operation).hung_up < 1:
                    await asyncio.sleep(0.01)
            assert asyncio.all_tasks() == before  # nothing of the call's left running
            counts = aws.counts(kind.operation)
            assert (counts.received, counts.hung, counts.hung_up, counts.answered) == (1, 1, 1, 0)


# -- lifecycle -----------------------------------------------------------------------------------


def _resource_warnings() -> list[str]:
    """Collect garbage and return the ResourceWarnings it raised (unclosed sessions, sockets)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gc.collect()
    return [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]


@pytest.fixture
def aws() -> Iterator[AWSEmulator]:
    with AWSEmulator(seed=8) as emulator:
        yield emulator


@pytest.fixture
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "emulator")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "emulator")


Opener = Callable[[str], Awaitable[Any]]
OPENERS: dict[str, Opener] = {
    "rekognition": lambda url: AsyncRekognitionBackend.from_session(
        region_name="us-east-1", endpoint_url=url
    ),
    "toxicity": lambda url: AsyncComprehendToxicity.from_session(
        region_name="us-east-1", endpoint_url=url
    ),
    "classifier": lambda url: AsyncComprehendClassifier.from_session(
        ENDPOINT, unsafe_classes={"UNSAFE"}, region_name="us-east-1", endpoint_url=url
    ),
    "sagemaker": lambda url: AsyncSageMakerGenerator.from_session(
        "sd", region_name="us-east-1", endpoint_url=url
    ),
    "bedrock-nova": lambda url: AsyncBedrockGenerator.from_session(
        NOVA, region_name="us-east-1", endpoint_url=url
    ),
}
SYNC_RETRIES: dict[str, Callable[[], Any]] = {
    "rekognition": lambda: RekognitionModerator.from_session(region_name="us-east-1"),
    "toxicity": lambda: ComprehendToxicity.from_session(region_name="us-east-1"),
    "classifier": lambda: ComprehendClassifier.from_session(
        ENDPOINT, unsafe_classes={"UNSAFE"}, region_name="us-east-1"
    ),
    "sagemaker": lambda: SageMakerGenerator.from_session("sd", region_name="us-east-1"),
    "bedrock-nova": lambda: BedrockGenerator.from_session(NOVA, region_name="us-east-1"),
}


@pytest.mark.anyio
@pytest.mark.usefixtures("credentials")
@pytest.mark.parametrize("name", list(OPENERS))
async def test_from_session_opens_a_client_like_the_sync_ones_and_closes_it(
    aws: AWSEmulator, name: str
) -> None:
    """Same retries and timeout as the sync twin; ``async with`` closes it; nothing leaks."""
    async with await OPENERS[name](aws.endpoint_url) as adapter:
        await KINDS[name].use(adapter)
        config, sync = adapter._client.meta.config, SYNC_RETRIES[name]()._client.meta.config
        assert (config.retries, config.read_timeout) == (sync.retries, sync.read_timeout)
    assert aws.counts(KINDS[name].operation).answered == 1
    with pytest.raises(ServiceError) as closed:  # a closed adapter fails closed, at once
        await KINDS[name].use(adapter)
    assert closed.value.code == "ClientClosed"
    assert aws.counts(KINDS[name].operation).received == 1  # nothing sent, nothing retried
    del adapter
    assert _resource_warnings() == []


@pytest.mark.anyio
@pytest.mark.usefixtures("credentials")
async def test_a_caller_config_is_merged_over_the_retry_settings(aws: AWSEmulator) -> None:
    """A caller's AioConfig wins where it speaks; the retry settings stay where it does not."""
    from aiobotocore.config import AioConfig

    backend = await AsyncRekognitionBackend.from_session(
        region_name="us-east-1", endpoint_url=aws.endpoint_url, config=AioConfig(read_timeout=7)
    )
    async with backend:
        assert backend._client.meta.config.read_timeout == 7
        assert backend._client.meta.config.retries["total_max_attempts"] == 5


@pytest.mark.anyio
@pytest.mark.usefixtures("credentials")
async def test_a_refused_setting_closes_the_client_it_opened(aws: AWSEmulator) -> None:
    """from_session opens the client first; a bad setting then closes it: no leak."""
    with pytest.raises(ConfigurationError):
        await AsyncRekognitionBackend.from_session(
            region_name="us-east-1", endpoint_url=aws.endpoint_url, adapter_arn="nope"
        )
    assert _resource_warnings() == []


@pytest.mark.anyio
async def test_closing_an_adapter_leaves_an_injected_client_open(aws: AWSEmulator) -> None:
    """Closing closes only what the adapter opened: the caller's client keeps working."""
    async with aws.async_client("comprehend", **CLIENT) as client:
        check = AsyncComprehendToxicity(client)
        await check.aclose()
        await check.aclose()  # idempotent
        assert (await check.classify("hello")).findings == ()
        async with AsyncComprehendToxicity(client) as again:
            pass
        assert (await again.classify("hello")).findings == ()


@pytest.mark.anyio
@pytest.mark.usefixtures("credentials")
async def test_a_copy_shares_its_originals_client_but_does_not_own_it(aws: AWSEmulator) -> None:
    """Copies use the same client without owning it; once the owner closes it, all refuse."""
    from safegen.prompt_policy import PromptPolicy

    owner = await AsyncComprehendToxicity.from_session(
        region_name="us-east-1", endpoint_url=aws.endpoint_url
    )
    copy = owner.with_policy(PromptPolicy(block_at=10.0))
    assert copy._client is owner._client
    assert (await copy.classify("hello")).findings == ()
    await copy.aclose()  # the copy owns nothing: the client stays open
    assert (await owner.classify("hello")).findings == ()
    await owner.aclose()
    for check in (owner, copy):
        with pytest.raises(ServiceError) as closed:
            await check.classify("hello")
        assert closed.value.code == "ClientClosed"
    del owner, copy
    assert _resource_warnings() == []


# -- logs ----------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_async_calls_log_one_line_each_and_no_content(
    aws: AWSEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    """The aio libraries are hushed like botocore; safegen logs the call, not the prompt."""
    secret = "my very secret prompt about a person"
    caplog.set_level(logging.DEBUG)
    async with aws.async_client("comprehend", **CLIENT) as client:
        await AsyncComprehendToxicity(client).classify(secret)
    for record in caplog.records:
        text = record.getMessage() + repr(record.args)
        assert secret not in text, record.name
        assert json.dumps(secret) not in text
    calls = [r.getMessage() for r in caplog.records if r.name == "safegen.aws"]
    assert any(m.startswith("aws call comprehend.DetectToxicContent: HTTP 200 in ") for m in calls)
