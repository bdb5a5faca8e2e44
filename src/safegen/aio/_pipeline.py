"""The async Pipeline: the sync pipeline's steps, done with tasks on one event loop."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Generator as Generator_
from collections.abc import Iterable
from typing import Any, Literal

import attrs

from safegen import _checks
from safegen.aio._common import DEFAULT_GENERATE_TIMEOUT, answer, async_port, timeout_setting
from safegen.aio._image import AsyncCascade, AsyncImageModerator
from safegen.aio._prompt import AsyncPromptModerator
from safegen.aio._threads import in_thread
from safegen.cascade import Cascade
from safegen.errors import ConfigurationError
from safegen.generate import GenerationRequest
from safegen.image import observer_setting
from safegen.observe import Observer
from safegen.pipeline import (
    _MAX_PARALLEL_IMAGES,
    CollectGeneration,
    DiscardGeneration,
    Generate,
    Generated,
    ModerateImages,
    ModeratePrompt,
    Pipeline,
    PipelineResult,
    PipelineSteps,
    StartGeneration,
    Step,
    redacted,
)
from safegen.policy import ModerationPolicy
from safegen.ports import AsyncGenerator, AsyncImageBackend, AsyncTextClassifier
from safegen.prompt import DEFAULT_MAX_CHARS

__all__ = ["AsyncPipeline"]

_generator = async_port(AsyncGenerator, "an async generator (name and async generate)", "generate")


def _prompt_moderator(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and not isinstance(value, AsyncPromptModerator):
        raise _checks.refuse(
            attribute, f"expected an AsyncPromptModerator or None, got {_checks.kind(value)}"
        )


@attrs.frozen(eq=False)
class AsyncPipeline(PipelineSteps):
    """:class:`~safegen.Pipeline` on an event loop: the same settings, steps and results.

    Every decision (reject or warn, deliver, redact, withhold, regenerate) is the sync
    pipeline's own code; only how each step's I/O is done differs. The prompt's classifiers
    run in tasks, every image of an attempt is moderated at once, and with *optimistic* the
    generation runs in a task beside the prompt checks.

    **Cancellation.** Cancelling :meth:`run` (a client that hung up, an ``asyncio.timeout``
    around it) cancels the generation and every moderation call in flight and waits for
    them: when the cancellation reaches the caller, no task of the run is left. An
    optimistic generation whose prompt is rejected is cancelled the same way, not left to
    finish.

    :param prompt_moderator: an :class:`AsyncPromptModerator` (``None`` to skip).
    :param generator: an :class:`~safegen.ports.AsyncGenerator`, e.g.
        :class:`safegen.aws.aio.AsyncBedrockGenerator`, or a sync one wrapped with
        :func:`in_thread`.
    :param image_moderator: an :class:`AsyncImageModerator` or an :class:`AsyncCascade`.
    :param timeout: seconds a generation may take before it counts as failed; ``None`` for
        no limit of its own.
    :param observer: told about every run's verdicts, then the run (:mod:`safegen.observe`).
    :raises ConfigurationError: a setting is refused; the message names it.

    The other settings are :class:`~safegen.Pipeline`'s.
    """

    prompt_moderator: AsyncPromptModerator | None = attrs.field(validator=_prompt_moderator)
    generator: AsyncGenerator = attrs.field(validator=_generator)
    image_moderator: AsyncImageModerator | AsyncCascade = attrs.field(
        validator=_checks.instance_of(
            AsyncImageModerator, AsyncCascade, what="an AsyncImageModerator or an AsyncCascade"
        )
    )
    on_unsafe_prompt: Literal["reject", "warn"] = attrs.field(
        default="reject", kw_only=True, validator=_checks.one_of("reject", "warn")
    )
    on_unsafe_image: Literal["blur", "withhold", "warn", "regenerate"] = attrs.field(
        default="blur",
        kw_only=True,
        validator=_checks.one_of("blur", "withhold", "warn", "regenerate"),
    )
    max_attempts: int = attrs.field(default=3, kw_only=True, validator=_checks.positive_int)
    derive_negatives: bool = attrs.field(default=True, kw_only=True, validator=_checks.flag)
    redaction: Literal["blur", "pixelate", "placeholder"] = attrs.field(
        default="blur", kw_only=True, validator=_checks.one_of("blur", "pixelate", "placeholder")
    )
    optimistic: bool = attrs.field(default=False, kw_only=True, validator=_checks.flag)
    timeout: float | None = attrs.field(
        default=DEFAULT_GENERATE_TIMEOUT, kw_only=True, validator=timeout_setting
    )
    observer: Observer | None = attrs.field(default=None, kw_only=True, validator=observer_setting)

    @classmethod
    def from_policy(
        cls,
        policy: ModerationPolicy,
        *,
        generator: AsyncGenerator,
        image_moderator: AsyncImageModerator | AsyncCascade | AsyncImageBackend,
        classifiers: Iterable[AsyncTextClassifier] = (),
        strategy: Literal["cascade", "parallel"] = "cascade",
        max_chars: int = DEFAULT_MAX_CHARS,
        **settings: Any,
    ) -> AsyncPipeline:
        """Build a pipeline whose prompt and image checks follow one policy.

        As :meth:`Pipeline.from_policy <safegen.Pipeline.from_policy>`, with async parts.

        :raises ConfigurationError: a setting is refused; the message names it.
        """
        if not isinstance(policy, ModerationPolicy):
            raise ConfigurationError(
                f"policy: expected a ModerationPolicy, got {_checks.kind(policy)}"
            )
        images: object = image_moderator
        if not isinstance(images, AsyncImageModerator | AsyncCascade):
            images = AsyncImageModerator(image_moderator, policy)  # type: ignore[arg-type]
        prompts = AsyncPromptModerator.from_policy(
            policy, classifiers=classifiers, strategy=strategy, max_chars=max_chars
        )
        return cls(prompts, generator, images, **settings)

    @classmethod
    def from_sync(
        cls,
        pipeline: Pipeline,
        *,
        timeout: float | None = DEFAULT_GENERATE_TIMEOUT,
    ) -> AsyncPipeline:
        """Build the async twin of *pipeline*: its settings, its parts each in worker threads.

        The quickest way to put a sync pipeline (offline models, sync adapters) on an event
        loop; use async adapters where they exist, so the calls need no threads.

        :raises ConfigurationError: *pipeline* is not a :class:`~safegen.Pipeline`.
        """
        if not isinstance(pipeline, Pipeline):
            raise ConfigurationError(f"pipeline: expected a Pipeline, got {_checks.kind(pipeline)}")
        prompts = pipeline.prompt_moderator
        images = pipeline.image_moderator
        return cls(
            None if prompts is None else AsyncPromptModerator.from_sync(prompts),
            in_thread(pipeline.generator),
            AsyncCascade.from_sync(images)
            if isinstance(images, Cascade)
            else AsyncImageModerator.from_sync(images),
            on_unsafe_prompt=pipeline.on_unsafe_prompt,
            on_unsafe_image=pipeline.on_unsafe_image,
            max_attempts=pipeline.max_attempts,
            derive_negatives=pipeline.derive_negatives,
            redaction=pipeline.redaction,
            optimistic=pipeline.optimistic,
            timeout=timeout,
            observer=pipeline.observer,
        )

    async def run(
        self,
        prompt: str,
        *,
        negative_prompt: str = "",
        images: int = 1,
        width: int = 512,
        height: int = 512,
        seed: int | None = None,
        policy: ModerationPolicy | None = None,
    ) -> PipelineResult:
        """Run the whole pipeline for one prompt (see :meth:`Pipeline.run <safegen.Pipeline.run>`).

        :raises InvalidPromptError: the prompt is not a string or is too long.
        :raises GenerationRequestError: the request cannot be made; the message names it.
        :raises ConfigurationError: *policy* is not a :class:`~safegen.ModerationPolicy`.
        """
        request = self._request(
            prompt,
            negative_prompt=negative_prompt,
            images=images,
            width=width,
            height=height,
            seed=seed,
            policy=policy,
        )
        if policy is not None and self.prompt_moderator is not None:
            # Compile a new per-request policy off the loop (its word lists take a second or
            # more); the steps then find it compiled.
            await self.prompt_moderator._for_policy_async(policy)
        steps = self._steps(prompt, request, policy)
        try:
            # The group owns the head start: leaving it, by an answer, an error or a
            # cancellation, cancels what is still running and waits for it.
            async with asyncio.TaskGroup() as tasks:
                result = await self._drive(steps, tasks)
        finally:
            steps.close()
        self._report(result)
        return result

    async def _drive(
        self, steps: Generator_[Step, Any, PipelineResult], tasks: asyncio.TaskGroup
    ) -> PipelineResult:
        head_start: asyncio.Task[Generated] | None = None
        reply: Any = None
        while True:
            try:
                step = steps.send(reply)
            except StopIteration as done:
                result: PipelineResult = done.value
                return result
            reply = None
            if isinstance(step, StartGeneration):
                head_start = tasks.create_task(
                    self._generate(step.request), name="safegen-optimistic"
                )
            elif isinstance(step, DiscardGeneration):
                if head_start is not None:
                    head_start.cancel()  # really cancelled: its call sees CancelledError
                    await asyncio.wait({head_start})
            elif isinstance(step, CollectGeneration):
                reply = None if head_start is None else await head_start
            elif isinstance(step, Generate):
                reply = await self._generate(step.request)
            elif isinstance(step, ModeratePrompt):
                moderator = self.prompt_moderator
                reply = (
                    None if moderator is None else await moderator._check(step.prompt, step.policy)
                )
            elif isinstance(step, ModerateImages):
                reply = await self.image_moderator._check_many(
                    step.images, concurrency=_MAX_PARALLEL_IMAGES, policy=step.policy
                )
            else:  # redaction decodes and encodes pixels: keep it off the loop
                reply = await asyncio.to_thread(redacted, step)

    async def _generate(self, request: GenerationRequest) -> Generated:
        start = time.perf_counter()
        result = await answer(
            functools.partial(self.generator.generate, request),
            self.timeout,
            self.generator.name,
            "generate",
        )
        return self._generated(request, result, start)
