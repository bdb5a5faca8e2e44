"""Tests of the async face: same verdicts as the sync shells, concurrency, cancellation, threads."""

from __future__ import annotations

import asyncio
from typing import Any

import attrs
import pytest

from safegen import (
    Action,
    Cascade,
    ConfigurationError,
    ImageModerator,
    ImageReport,
    ModerationLabel,
    ModerationPolicy,
    Pipeline,
    PromptModerator,
    RuleFilter,
)
from safegen.aio import (
    AsyncCascade,
    AsyncImageModerator,
    AsyncPipeline,
    AsyncPromptModerator,
    ThreadedImageBackend,
    in_thread,
)
from safegen.errors import ServiceUnavailableError
from safegen.image import ImageSource
from safegen.observe import RecordingObserver
from safegen.pipeline import ImageStatus
from safegen.prompt import CheckStatus, PromptFinding, TextReport
from safegen.testing import (
    AsyncFakeGenerator,
    AsyncFakeImageBackend,
    AsyncFakeTextClassifier,
    FakeGenerator,
    FakeImageBackend,
    FakeTextClassifier,
)
from tests.strategies import make_image

pytestmark = pytest.mark.anyio

SAFE = make_image("PNG", (64, 64), seed=1)
UNSAFE = make_image("PNG", (64, 64), seed=2)
NUDITY = (
    ModerationLabel("Explicit", 95.0, level=1),
    ModerationLabel("Explicit Nudity", 95.0, parent="Explicit", level=2),
)
DOWN = ServiceUnavailableError("down", service="rekognition", operation="Op", code="Internal")
TOXIC = PromptFinding("toxicity", "HATE_SPEECH", 97.0, Action.BLOCK)


def labels_for(image: ImageSource) -> ImageReport:
    """The fakes' view: the UNSAFE picture shows nudity, anything else nothing."""
    return ImageReport(labels=NUDITY if image == UNSAFE else (), model_version="7.0")


def untimed(value: Any) -> Any:
    """A verdict or result as plain data without its timings (the only part that may differ)."""
    data = value.to_dict()
    data.pop("seconds", None)
    data.pop("timings", None)
    for check in data.get("checks", []):
        check.pop("seconds")
    return data


def only_this_task() -> bool:
    """Whether no task is left on the loop but the test's own and anyio's test runner's."""
    others = asyncio.all_tasks() - {asyncio.current_task()}
    return all("anyio" in task.get_coro().cr_code.co_filename for task in others)  # type: ignore[union-attr]


# -- image moderation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "settings",
    [
        {"labels": NUDITY},
        {"respond": labels_for},
        {"error": DOWN},
        {"error": ValueError("a third-party bug")},
        {"respond": lambda image: "not a report"},
    ],
)
async def test_the_async_image_moderator_reaches_the_sync_verdict(settings: dict[str, Any]) -> None:
    """Same answers, same verdict: labels, a service failure, a bare exception, a bad answer."""
    sync = ImageModerator(FakeImageBackend(**settings)).moderate(UNSAFE)
    verdict = await AsyncImageModerator(AsyncFakeImageBackend(**settings)).moderate(UNSAFE)
    assert untimed(verdict) == untimed(sync)


async def test_a_hanging_backend_fails_closed_at_the_timeout() -> None:
    """A backend that never answers: a failed BLOCK naming the timeout; its call is cancelled."""
    backend = AsyncFakeImageBackend(hang=True)
    verdict = await AsyncImageModerator(backend, timeout=0.01).moderate(SAFE)
    assert verdict.action is Action.BLOCK
    assert verdict.failed
    assert verdict.error is not None
    assert "(Timeout)" in verdict.error
    assert backend.cancelled == 1
    assert only_this_task()


async def test_a_hanging_backend_with_fail_open_allows_as_the_sync_one_would() -> None:
    """fail_open applies to a timeout as to any failure: it is the caller's explicit choice."""
    verdict = await AsyncImageModerator(
        AsyncFakeImageBackend(hang=True), timeout=0.01, fail_open=True
    ).moderate(SAFE)
    assert verdict.action is Action.ALLOW
    assert verdict.fail_open
    assert verdict.failed


async def test_a_backend_raising_timeout_error_itself_is_its_failure_not_ours() -> None:
    """A TimeoutError the backend raises is reported as raised, not as our timeout."""
    verdict = await AsyncImageModerator(
        AsyncFakeImageBackend(error=TimeoutError("socket")), timeout=None
    ).moderate(SAFE)
    assert verdict.action is Action.BLOCK
    assert verdict.error is not None
    assert "TimeoutError" in verdict.error


async def test_moderate_many_keeps_order_and_runs_at_once() -> None:
    """Verdicts in the order given; every image's call is under way before any answers."""
    backend = AsyncFakeImageBackend(respond=labels_for)
    moderator = AsyncImageModerator(backend)
    verdicts = await moderator.moderate_many([SAFE, UNSAFE, SAFE], concurrency=3)
    assert [v.action for v in verdicts] == [Action.ALLOW, Action.BLOCK, Action.ALLOW]
    with pytest.raises(ConfigurationError, match="concurrency"):
        await moderator.moderate_many([SAFE], concurrency=0)


async def test_the_async_cascade_decides_as_the_sync_cascade() -> None:
    """A sure first look decides; an unsure one asks then; both record the platform policy."""
    first = [ModerationLabel("Explicit", 55.0, level=1)]
    policy = ModerationPolicy(version="v1")
    sync = Cascade(
        FakeImageBackend(first, name="cheap"), ImageModerator(FakeImageBackend(NUDITY), policy)
    )
    aio = AsyncCascade(
        AsyncFakeImageBackend(first, name="cheap"),
        AsyncImageModerator(AsyncFakeImageBackend(NUDITY), policy),
    )
    for image in (SAFE, UNSAFE):
        expected, got = sync.moderate(image), await aio.moderate(image)
        assert untimed(got) == untimed(expected)
        assert got.policy_sha256 == policy.sha256
    many = await aio.moderate_many([SAFE, UNSAFE])
    assert [untimed(v) for v in many] == [untimed(v) for v in sync.moderate_many([SAFE, UNSAFE])]


# -- prompt moderation --------------------------------------------------------------------------


async def test_the_classifiers_run_at_once() -> None:
    """Each classifier waits for the other to start: run one after the other, they would hang."""
    a = AsyncFakeTextClassifier(name="a")
    b = AsyncFakeTextClassifier(name="b")

    async def a_waits_for_b(text: str) -> TextReport:
        await asyncio.wait_for(b.started.wait(), 5)
        return TextReport()

    async def b_waits_for_a(text: str) -> TextReport:
        await asyncio.wait_for(a.started.wait(), 5)
        return TextReport()

    class Waiting:
        def __init__(self, fake: AsyncFakeTextClassifier, wait: Any) -> None:
            self.fake, self.wait, self.name = fake, wait, fake.name

        async def classify(self, text: str) -> TextReport:
            self.fake.started.set()
            return await self.wait(text)  # type: ignore[no-any-return]

    moderator = AsyncPromptModerator(
        classifiers=[Waiting(a, a_waits_for_b), Waiting(b, b_waits_for_a)], timeout=10
    )
    verdict = await moderator.moderate("a cat")
    assert verdict.action is Action.ALLOW
    assert [c.status for c in verdict.checks] == [CheckStatus.OK, CheckStatus.OK]


@pytest.mark.parametrize("strategy", ["cascade", "parallel"])
@pytest.mark.parametrize("prompt", ["a cat", "a g0r3 scene"])
async def test_the_async_prompt_moderator_reaches_the_sync_verdict(
    strategy: str, prompt: str
) -> None:
    """Rules, a finding, a failing classifier, a skipped one: the same verdict as the sync one."""
    sync = PromptModerator(
        RuleFilter(["gore"]),
        [FakeTextClassifier([TOXIC], name="tox"), FakeTextClassifier(error=DOWN, name="down")],
        strategy=strategy,  # type: ignore[arg-type]
    )
    aio = AsyncPromptModerator(
        RuleFilter(["gore"]),
        [
            AsyncFakeTextClassifier([TOXIC], name="tox"),
            AsyncFakeTextClassifier(error=DOWN, name="down"),
        ],
        strategy=strategy,  # type: ignore[arg-type]
    )
    assert untimed(await aio.moderate(prompt)) == untimed(sync.moderate(prompt))


async def test_a_hanging_classifier_fails_its_check_closed() -> None:
    """A classifier that never answers fails its check at the timeout: BLOCK, the check named."""
    hung = AsyncFakeTextClassifier(hang=True, name="slow")
    verdict = await AsyncPromptModerator(classifiers=[hung], timeout=0.01).moderate("a cat")
    assert verdict.action is Action.BLOCK
    (check,) = verdict.failed
    assert check.name == "slow"
    assert check.error is not None
    assert "Timeout" in check.error
    assert hung.cancelled == 1


async def test_a_bad_prompt_is_raised_as_by_the_sync_moderator() -> None:
    """Input errors are raised (the caller's mistake), not turned into verdicts."""
    from safegen.errors import InvalidPromptError

    with pytest.raises(InvalidPromptError):
        await AsyncPromptModerator(max_chars=3).moderate("too long")


# -- the pipeline -------------------------------------------------------------------------------


def sync_pipeline(generator: FakeGenerator, **options: Any) -> Pipeline:
    return Pipeline(
        PromptModerator(RuleFilter(["gore"]), [FakeTextClassifier(name="tox")]),
        generator,
        ImageModerator(FakeImageBackend(respond=labels_for)),
        **options,
    )


def async_pipeline(generator: AsyncFakeGenerator, **options: Any) -> AsyncPipeline:
    return AsyncPipeline(
        AsyncPromptModerator(RuleFilter(["gore"]), [AsyncFakeTextClassifier(name="tox")]),
        generator,
        AsyncImageModerator(AsyncFakeImageBackend(respond=labels_for)),
        **options,
    )


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"on_unsafe_image": "withhold"},
        {"on_unsafe_image": "warn"},
        {"on_unsafe_image": "regenerate", "max_attempts": 2},
        {"optimistic": True},
    ],
)
@pytest.mark.parametrize("prompt", ["a quiet lake", "a g0r3 scene"])
async def test_the_async_pipeline_reaches_the_sync_result(
    options: dict[str, Any], prompt: str
) -> None:
    """Same answers, same result: deliveries, redaction, regeneration, rejection, warnings."""
    sync = sync_pipeline(FakeGenerator([SAFE, UNSAFE]), **options).run(prompt, images=2, seed=7)
    aio = await async_pipeline(AsyncFakeGenerator([SAFE, UNSAFE]), **options).run(
        prompt, images=2, seed=7
    )
    assert untimed(aio) == untimed(sync)
    assert [i.status for i in aio.images] == [i.status for i in sync.images]


async def test_a_failing_generator_fails_the_run_as_in_sync() -> None:
    """A raising generator is reported in the result, never raised."""
    sync = sync_pipeline(FakeGenerator(error=ValueError("boom"))).run("a lake")
    aio = await async_pipeline(AsyncFakeGenerator(error=ValueError("boom"))).run("a lake")
    assert aio.status == sync.status == "failed"
    assert untimed(aio) == untimed(sync)


async def test_an_unmoderated_image_is_withheld() -> None:
    """Fail closed end to end: an image whose moderation failed is never delivered."""
    aio = AsyncPipeline(
        None,
        AsyncFakeGenerator([SAFE]),
        AsyncImageModerator(AsyncFakeImageBackend(error=DOWN)),
    )
    result = await aio.run("a lake")
    assert [i.status for i in result.images] == [ImageStatus.WITHHELD]
    assert result.images[0].data is None


async def test_a_rejected_optimistic_generation_is_really_cancelled() -> None:
    """The head start sees CancelledError when its prompt is blocked, and no task is left."""
    generator = AsyncFakeGenerator([SAFE], hang=True)

    class AfterTheGenerationStarted:
        """Blocks the prompt, once the optimistic generation is surely under way."""

        name = "tox"

        async def classify(self, text: str) -> TextReport:
            await generator.started.wait()
            return TextReport((TOXIC,))

    aio = AsyncPipeline(
        AsyncPromptModerator(classifiers=[AfterTheGenerationStarted()]),
        generator,
        AsyncImageModerator(AsyncFakeImageBackend()),
        optimistic=True,
    )
    result = await aio.run("a perfectly worded hateful prompt")
    assert result.status == "rejected"
    assert len(generator.requests) == 1  # it was started...
    assert generator.cancelled == 1  # ...and cancelled, not left to finish
    assert "a generation started optimistically was discarded" in result.warnings
    assert only_this_task()


async def test_cancelling_a_run_cancels_everything_it_started() -> None:
    """Cancelled mid-flight (optimistic generation and a classifier hanging): no task survives."""
    generator = AsyncFakeGenerator([SAFE], hang=True)
    classifier = AsyncFakeTextClassifier(hang=True, name="tox")
    aio = AsyncPipeline(
        AsyncPromptModerator(classifiers=[classifier], timeout=None),
        generator,
        AsyncImageModerator(AsyncFakeImageBackend()),
        optimistic=True,
        timeout=None,
    )
    run = asyncio.create_task(aio.run("a lake"))
    await generator.started.wait()
    await classifier.started.wait()
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert generator.cancelled == 1
    assert classifier.cancelled == 1
    assert only_this_task()


async def test_cancelling_during_image_moderation_cancels_every_image_call() -> None:
    """Every image's moderation call in flight sees the cancellation."""
    backend = AsyncFakeImageBackend(hang=True)
    aio = AsyncPipeline(
        None, AsyncFakeGenerator([SAFE]), AsyncImageModerator(backend, timeout=None)
    )
    run = asyncio.create_task(aio.run("a lake", images=3))
    await backend.started.wait()
    await asyncio.sleep(0)  # let the other image tasks reach the backend
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert backend.cancelled == 3
    assert only_this_task()


async def test_an_asyncio_timeout_around_a_run_composes() -> None:
    """``asyncio.timeout`` around run raises TimeoutError there and cancels the generation."""
    generator = AsyncFakeGenerator([SAFE], hang=True)
    aio = async_pipeline(generator, timeout=None)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await aio.run("a lake")
    assert generator.cancelled == 1
    assert only_this_task()


async def test_a_hanging_generation_fails_the_run_at_the_pipeline_timeout() -> None:
    """The pipeline's own generation timeout is a failed run, reported, not raised."""
    generator = AsyncFakeGenerator([SAFE], hang=True)
    result = await async_pipeline(generator, timeout=0.01).run("a lake")
    assert result.status == "failed"
    assert result.attempts[0].error is not None
    assert "Timeout" in result.attempts[0].error


# -- threads, twins and settings -----------------------------------------------------------------


async def test_in_thread_runs_sync_ports_on_the_loop() -> None:
    """A sync backend, classifier and generator, each wrapped, serve an async pipeline."""
    sync = sync_pipeline(FakeGenerator([SAFE, UNSAFE]))
    twin = AsyncPipeline.from_sync(sync)
    assert isinstance(twin.image_moderator, AsyncImageModerator)
    assert isinstance(twin.image_moderator.backend, ThreadedImageBackend)
    expected = sync_pipeline(FakeGenerator([SAFE, UNSAFE])).run("a lake", images=2)
    assert untimed(await twin.run("a lake", images=2)) == untimed(expected)


def test_in_thread_refuses_what_it_cannot_wrap() -> None:
    """An async port is used as it is; anything else is not a port."""
    with pytest.raises(ConfigurationError, match="async already"):
        in_thread(AsyncFakeImageBackend())  # type: ignore[call-overload]
    with pytest.raises(ConfigurationError, match="port: expected"):
        in_thread(object())  # type: ignore[call-overload]


def test_sync_and_async_ports_are_not_mixed_up() -> None:
    """A sync backend in an async moderator (or the reverse) is refused when it is built."""
    with pytest.raises(ConfigurationError, match=r"backend: .*in_thread"):
        AsyncImageModerator(FakeImageBackend())  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match=r"backend: .*coroutine"):
        ImageModerator(AsyncFakeImageBackend())  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match=r"classifiers: .*in_thread"):
        AsyncPromptModerator(classifiers=[FakeTextClassifier()])
    with pytest.raises(ConfigurationError, match=r"classifiers: .*safegen.aio"):
        PromptModerator(classifiers=[AsyncFakeTextClassifier()])
    images = AsyncImageModerator(AsyncFakeImageBackend())
    with pytest.raises(ConfigurationError, match=r"generator: .*in_thread"):
        AsyncPipeline(None, FakeGenerator(), images)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="timeout"):
        AsyncImageModerator(AsyncFakeImageBackend(), timeout=0)


async def test_async_from_policy_matches_the_sync_one() -> None:
    """AsyncPipeline.from_policy builds the same moderators as Pipeline.from_policy."""
    policy = ModerationPolicy(version="2026-11-29")
    sync = Pipeline.from_policy(
        policy, generator=FakeGenerator([SAFE]), image_moderator=FakeImageBackend()
    )
    aio = AsyncPipeline.from_policy(
        policy, generator=AsyncFakeGenerator([SAFE]), image_moderator=AsyncFakeImageBackend()
    )
    assert untimed(await aio.run("a g0r3 scene")) == untimed(sync.run("a g0r3 scene"))
    assert (await aio.run("a lake")).policy_version == "2026-11-29"


# -- observers ----------------------------------------------------------------------------------


class Broken:
    """An observer whose every method raises."""

    def prompt_checked(self, verdict: object) -> None:
        raise RuntimeError("observer down")

    def image_checked(self, verdict: object) -> None:
        raise RuntimeError("observer down")

    def pipeline_ran(self, result: object) -> None:
        raise RuntimeError("observer down")


async def test_the_async_pipeline_tells_its_observer_the_run_then_each_verdict() -> None:
    """pipeline_ran first (a tracer nests the verdicts under it), then each verdict once."""
    recorder = RecordingObserver()
    aio = attrs.evolve(async_pipeline(AsyncFakeGenerator([SAFE, UNSAFE])), observer=recorder)
    aio = attrs.evolve(
        aio,
        image_moderator=attrs.evolve(aio.image_moderator, observer=recorder),
    )
    result = await aio.run("a lake", images=2)
    assert [name for name, _ in recorder.events] == [
        "pipeline_ran",
        "prompt_checked",
        "image_checked",
        "image_checked",
    ]
    assert recorder.of("pipeline_ran") == [result]
    assert recorder.of("image_checked") == list(result.attempts[0].verdicts)


async def test_a_raising_observer_changes_nothing_async() -> None:
    """A broken observer on every async object: the same result as without one."""
    plain = await async_pipeline(AsyncFakeGenerator([SAFE, UNSAFE])).run("a lake", images=2)
    broken = async_pipeline(AsyncFakeGenerator([SAFE, UNSAFE]), observer=Broken())
    assert untimed(await broken.run("a lake", images=2)) == untimed(plain)
    moderator = AsyncImageModerator(AsyncFakeImageBackend(NUDITY), observer=Broken())
    assert (await moderator.moderate(SAFE)).action is Action.BLOCK


async def test_twins_built_from_sync_objects_keep_their_settings_and_verdicts() -> None:
    """from_sync copies every setting; the twin judges as the original does."""
    policy = ModerationPolicy(block_at=70.0, version="v2")
    recorder = RecordingObserver()
    then = ImageModerator(
        FakeImageBackend(NUDITY), policy, on_failure=Action.REVIEW, observer=recorder
    )
    cascade = Cascade(FakeImageBackend(name="cheap"), then, margin=5.0)
    twin = AsyncCascade.from_sync(cascade)
    assert twin.margin == 5.0
    assert twin.then.policy is policy
    assert twin.then.on_failure is Action.REVIEW
    assert twin.then.observer is recorder
    assert untimed(await twin.moderate(UNSAFE)) == untimed(cascade.moderate(UNSAFE))
    prompts = PromptModerator.from_policy(policy, classifiers=[FakeTextClassifier([TOXIC])])
    prompt_twin = AsyncPromptModerator.from_sync(prompts)
    assert prompt_twin.source_policy is policy
    assert untimed(await prompt_twin.moderate("a cat")) == untimed(prompts.moderate("a cat"))
