"""The Pipeline: moderate the prompt, generate, moderate every image, and deliver only what is safe.

This is the seed architecture's Lambda as a library call. For each run:

1. the prompt is moderated; an unsafe prompt is rejected (or, if you choose, only warned about);
2. the generator makes the images, with the negative prompts;
3. every image of the attempt is moderated at once (in parallel);
4. each image is delivered as it is (safe), redacted (blurred by default), withheld, or, if you
   choose, delivered with a warning; or the pipeline regenerates with a new seed and negative
   prompts derived from the labels that fired.

It fails closed end to end: an image whose moderation could not run is always withheld.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Generator as Generator_
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Literal, TypeAlias, cast

import attrs

from safegen import _checks
from safegen.cascade import Cascade
from safegen.decision import Action
from safegen.errors import ConfigurationError, SafegenError
from safegen.generate import (
    GeneratedImage,
    Generation,
    GenerationRequest,
    checked_generation,
    offset_seed,
)
from safegen.image import (
    ImageModerator,
    ImageVerdict,
    _sync_port,
    observer_setting,
    observers,
    overriding_policy,
    tell,
)
from safegen.observe import Observer
from safegen.policy import ModerationPolicy
from safegen.ports import Generator, ImageBackend, TextClassifier
from safegen.prompt import DEFAULT_MAX_CHARS, PromptModerator, PromptVerdict
from safegen.redaction import redact
from safegen.verdicts import Attempt, DeliveredImage, ImageStatus, PipelineResult, error_text

__all__ = ["Attempt", "DeliveredImage", "ImageStatus", "Pipeline", "PipelineResult"]

_log = logging.getLogger(__name__)
# Images of one attempt moderated at once; more than this go in rounds.
_MAX_PARALLEL_IMAGES = 16

# A generation, or why it failed, and how long it took.
_Generated: TypeAlias = "tuple[Generation | None, str | None, float]"

# Negative prompts added on a retry, by the top-level category of the labels that fired.
_NEGATIVES_FOR = {
    "Explicit": "nudity, naked, nsfw, explicit",
    "Non-Explicit Nudity of Intimate parts and Kissing": "nudity, topless, kissing, suggestive",
    "Swimwear or Underwear": "swimwear, underwear, lingerie, bikini",
    "Violence": "violence, weapon, blood, fighting",
    "Visually Disturbing": "gore, blood, corpse, injury",
    "Drugs & Tobacco": "drugs, smoking, pills, cigarette",
    "Alcohol": "alcohol, beer, wine, drinking",
    "Rude Gestures": "middle finger, rude gesture",
    "Gambling": "gambling, casino, cards",
    "Hate Symbols": "hate symbol, swastika, extremist flag",
}


def _prompt_moderator(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and not isinstance(value, PromptModerator):
        raise _checks.refuse(
            attribute, f"expected a PromptModerator or None, got {_checks.kind(value)}"
        )


_generator = _sync_port(Generator, "a generator (name and generate)", "generate")


# -- the steps of a run: what the shells do for the core ------------------------------------------
# The run's decisions live in PipelineSteps._steps, a generator that yields what it needs done
# (a generation, a prompt check, image checks, a redaction) and is sent the answer. The sync
# Pipeline does each step with threads, safegen.aio.AsyncPipeline with tasks; neither decides.


@attrs.frozen
class StartGeneration:
    """Start generating for *request* in the background (an optimistic head start)."""

    request: GenerationRequest


@attrs.frozen
class DiscardGeneration:
    """Cancel the head start: its prompt was rejected, its images must never be seen."""


@attrs.frozen
class CollectGeneration:
    """Wait for the head start; the answer is a :data:`Generated`."""


@attrs.frozen
class Generate:
    """Generate for *request* now; the answer is a :data:`Generated`."""

    request: GenerationRequest


@attrs.frozen
class ModeratePrompt:
    """Moderate *prompt* (by *policy* when given); the answer is a :class:`PromptVerdict`."""

    prompt: str
    policy: ModerationPolicy | None


@attrs.frozen
class ModerateImages:
    """Moderate every image of an attempt at once; the answer is their verdicts, in order."""

    images: tuple[bytes, ...]
    policy: ModerationPolicy | None


@attrs.frozen
class Redact:
    """Redact *data* in *style*; the answer is the bytes, or the :class:`SafegenError` raised."""

    data: bytes
    style: Literal["blur", "pixelate", "placeholder"]


Step: TypeAlias = (
    "StartGeneration | DiscardGeneration | CollectGeneration | Generate | ModeratePrompt"
    " | ModerateImages | Redact"
)
Generated = _Generated


def redacted(step: Redact) -> bytes | SafegenError:
    """Do a :class:`Redact` step: the redacted bytes, or why the image could not be redacted."""
    try:
        return redact(step.data, style=step.style, strength=0.8)
    except SafegenError as error:
        return error


class PipelineSteps:
    """What the sync and async pipelines share: every decision of a run, none of its I/O."""

    prompt_moderator: Any
    generator: Any
    image_moderator: Any
    on_unsafe_prompt: Literal["reject", "warn"]
    on_unsafe_image: Literal["blur", "withhold", "warn", "regenerate"]
    max_attempts: int
    derive_negatives: bool
    redaction: Literal["blur", "pixelate", "placeholder"]
    optimistic: bool
    observer: Observer | None

    @property
    def attempts(self) -> int:
        """How many generations a run may make: *max_attempts* when regenerating, else 1."""
        return self.max_attempts if self.on_unsafe_image == "regenerate" else 1

    def _request(
        self,
        prompt: str,
        *,
        negative_prompt: str,
        images: int,
        width: int,
        height: int,
        seed: int | None,
        policy: object,
    ) -> GenerationRequest:
        """Check the run's arguments before anything is spent; return the first request."""
        overriding_policy(policy)
        if self.prompt_moderator is not None:
            self.prompt_moderator.validate(prompt)
        return GenerationRequest(
            prompt=prompt,
            negative_prompt=negative_prompt,
            images=images,
            width=width,
            height=height,
            seed=seed,
        )

    def _generated(self, request: GenerationRequest, answer: object, start: float) -> _Generated:
        """Check a generator's *answer* (or the exception its call raised) for *request*."""
        name = self.generator.name
        try:
            if isinstance(answer, BaseException):
                raise answer
            generation = checked_generation(answer, name, request)
        except Exception as error:  # a failed generation is reported, never shipped
            code = getattr(error, "code", type(error).__name__)
            _log.warning("generator %s failed (%s)", name, code)
            reason = error_text(error)
            return None, reason, time.perf_counter() - start
        return generation, None, time.perf_counter() - start

    def _steps(
        self, prompt: str, request: GenerationRequest, policy: ModerationPolicy | None
    ) -> Generator_[Step, Any, PipelineResult]:
        """Run the pipeline's decisions, yielding each step for the shell to do."""
        start = time.perf_counter()
        timings = {"prompt": 0.0, "generate": 0.0, "moderate": 0.0}
        warnings: list[str] = []
        images = request.images
        moderator = self.prompt_moderator
        recorded = policy if policy is not None else self.image_moderator.policy
        head_start = False
        # Overlap generation with the (slow, paid) classifiers only: a prompt that cannot be
        # moderated, or that the free local rules already block, costs nothing.
        if (
            self.optimistic
            and moderator is not None
            and not moderator._for_policy(policy).rules_block(prompt)
        ):
            yield StartGeneration(request)
            head_start = True
        verdict: PromptVerdict | None = None
        if moderator is not None:
            verdict = yield ModeratePrompt(prompt, policy)
            timings["prompt"] = time.perf_counter() - start
            if verdict.action is Action.BLOCK and self.on_unsafe_prompt == "reject":
                warnings.append(_prompt_warning(verdict, rejected=True))
                if head_start:
                    # Never moderated nor returned; only the generation's cost is lost.
                    yield DiscardGeneration()
                    warnings.append("a generation started optimistically was discarded")
                timings["total"] = time.perf_counter() - start
                return PipelineResult(
                    "rejected",
                    verdict,
                    warnings=tuple(warnings),
                    timings=timings,
                    policy_sha256=recorded.sha256,
                    policy_version=recorded.version,
                )
            if verdict.action is Action.BLOCK:
                warnings.append(_prompt_warning(verdict, rejected=False))
            elif verdict.action is Action.REVIEW:
                warnings.append("the prompt needs review: " + _prompt_reasons(verdict))
        first: _Generated | None = (yield CollectGeneration()) if head_start else None

        attempts: list[Attempt] = []
        delivered: list[DeliveredImage] = []
        for number in range(self.attempts):
            if number == 0 and first is not None:
                generated = first
            else:
                generated = yield Generate(request)
            generation, error, seconds = generated
            if generation is None:
                attempt = Attempt(request, None, generate_seconds=seconds, error=error)
            else:
                begun = time.perf_counter()
                # Every image of the attempt at once: one round trip, whatever their number.
                verdicts = yield ModerateImages(
                    tuple(image.data for image in generation.images), policy
                )
                attempt = Attempt(
                    request, generation, tuple(verdicts), seconds, time.perf_counter() - begun
                )
            attempts.append(attempt)
            timings["generate"] += attempt.generate_seconds
            timings["moderate"] += attempt.moderate_seconds
            if attempt.generation is None:
                warnings.append(f"generation failed: {attempt.error}")
                break
            warnings.extend(_filter_warnings(attempt.generation))
            warnings.extend(_shortfall_warnings(attempt.generation, self.generator.name))
            unsafe = []
            for image, image_verdict in zip(
                attempt.generation.images, attempt.verdicts, strict=True
            ):
                if image_verdict.action is Action.ALLOW and len(delivered) < images:
                    delivered.append(
                        DeliveredImage(
                            ImageStatus.SAFE, image.data, image.format, image, image_verdict
                        )
                    )
                elif image_verdict.action is not Action.ALLOW:
                    unsafe.append((image, image_verdict))
            stages = {f.stage for f in attempt.generation.filtered}
            missing = images - len(delivered)
            # Another attempt can only help with images that were unsafe or that the model's
            # own filter withheld; a refused prompt will be refused again.
            worth_retrying = bool(unsafe) or "output" in stages
            if missing <= 0 or not worth_retrying:
                break
            last = number == self.attempts - 1
            if self.on_unsafe_image != "regenerate" or last or "prompt" in stages:
                for image, image_verdict in unsafe:
                    delivered.append((yield from self._treat(image, image_verdict, warnings)))
                break
            warnings.append(
                f"attempt {number + 1}: {len(unsafe)} unsafe image(s), generating again"
            )
            request = self._retry_request(request, [v for _, v in unsafe], missing)
        timings["total"] = time.perf_counter() - start
        status: Literal["ok", "failed"] = (
            "failed" if attempts and attempts[-1].generation is None else "ok"
        )
        return PipelineResult(
            status,
            verdict,
            tuple(attempts),
            tuple(delivered),
            tuple(warnings),
            timings,
            policy_sha256=recorded.sha256,
            policy_version=recorded.version,
        )

    def _treat(
        self, image: GeneratedImage, verdict: ImageVerdict, warnings: list[str]
    ) -> Generator_[Step, Any, DeliveredImage]:
        """Decide what to deliver for an image that was not allowed."""
        review = verdict.action is Action.REVIEW
        what = _labels(verdict)
        if verdict.failed:  # fail closed: an unchecked image is never shown, even blurred
            warnings.append(f"an image could not be moderated and is withheld ({verdict.error})")
            return DeliveredImage(ImageStatus.WITHHELD, None, image.format, image, verdict)
        if self.on_unsafe_image == "warn":
            warnings.append(f"an image was flagged ({what}) and is delivered as generated")
            return DeliveredImage(
                ImageStatus.FLAGGED, image.data, image.format, image, verdict, review
            )
        if self.on_unsafe_image == "blur":
            data = yield Redact(image.data, self.redaction)
            if not isinstance(data, bytes):
                warnings.append(f"an image could not be redacted and is withheld ({data})")
                return DeliveredImage(
                    ImageStatus.WITHHELD, None, image.format, image, verdict, review
                )
            warnings.append(
                f"an image was {'sent to review' if review else 'unsafe'} ({what}) and is redacted"
            )
            return DeliveredImage(ImageStatus.REDACTED, data, image.format, image, verdict, review)
        warnings.append(
            f"an image was {'sent to review' if review else 'unsafe'} ({what}) and is withheld"
        )
        return DeliveredImage(ImageStatus.WITHHELD, None, image.format, image, verdict, review)

    def _retry_request(
        self, request: GenerationRequest, unsafe: Sequence[ImageVerdict], remaining: int
    ) -> GenerationRequest:
        negative = request.negative_prompt
        if self.derive_negatives:
            fired = {
                v.category.path[0]
                for verdict in unsafe
                if verdict.decision
                for v in verdict.decision.violations
            }
            extra = [_NEGATIVES_FOR[top] for top in sorted(fired) if top in _NEGATIVES_FOR]
            negative = ", ".join(p for p in (negative, *extra) if p)
        seed = None if request.seed is None else offset_seed(request.seed, request.images)
        return attrs.evolve(request, negative_prompt=negative, seed=seed, images=remaining)

    def _report(self, result: PipelineResult) -> None:
        """Tell the pipeline's observer about the run, then everyone about its verdicts.

        The run first, so that an observer drawing a tree (OpenTelemetry) draws the verdicts
        under the run, at their times, and not as runs of their own.
        """
        tell(observers(self.observer), "pipeline_ran", result)
        if result.prompt is not None:
            tell(
                observers(self.observer, *self.prompt_moderator._observers),
                "prompt_checked",
                result.prompt,
            )
        images = observers(self.observer, *self.image_moderator._observers)
        for attempt in result.attempts:
            for verdict in attempt.verdicts:
                tell(images, "image_checked", verdict)


@attrs.frozen(eq=False)
class Pipeline(PipelineSteps):
    """Prompt moderation, generation and image moderation, composed.

    Frozen: a pipeline's settings are checked when it is built and cannot be changed
    afterwards; ``attrs.evolve`` makes a changed copy, checked again.

    :param prompt_moderator: checks the prompt (``None`` to skip).
    :param generator: makes the images.
    :param image_moderator: checks every image: an :class:`~safegen.ImageModerator`, or a
        :class:`~safegen.Cascade` of an offline model in front of one.
    :param on_unsafe_prompt: ``"reject"`` (default) or ``"warn"`` (generate anyway, say so).
    :param on_unsafe_image: ``"blur"`` (default), ``"withhold"``, ``"warn"`` (deliver as is,
        say so) or ``"regenerate"``.
    :param max_attempts: with ``"regenerate"``, how many generations in all; images still
        unsafe after the last are withheld. (Any other *on_unsafe_image* generates once.)
    :param derive_negatives: on a retry, add negative prompts for the categories that fired.
    :param redaction: how ``"blur"`` redacts: ``"blur"``, ``"pixelate"`` or ``"placeholder"``.
    :param optimistic: start generating while the prompt classifiers run, so their time
        overlaps the generation's (the input checks and the local rules run first). If a
        classifier then rejects the prompt, the images are discarded unseen; the trade-off
        is paying for a generation that is thrown away.
    :param observer: told about every run's prompt and image verdicts, then the run
        (:mod:`safegen.observe`), as are the moderators' own observers (one object is told
        once); its failures never change a result.
    :raises ConfigurationError: a setting is refused; the message names it.

    A generator that answers with anything but a :class:`~safegen.Generation` that adds up
    (no more images than asked for; none only with a content-filter finding saying why) has
    failed: the result says so, with no images.
    """

    prompt_moderator: PromptModerator | None = attrs.field(validator=_prompt_moderator)
    generator: Generator = attrs.field(validator=_generator)
    image_moderator: ImageModerator | Cascade = attrs.field(
        validator=_checks.instance_of(
            ImageModerator, Cascade, what="an ImageModerator or a Cascade"
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
    observer: Observer | None = attrs.field(default=None, kw_only=True, validator=observer_setting)

    @classmethod
    def from_policy(
        cls,
        policy: ModerationPolicy,
        *,
        generator: Generator,
        image_moderator: ImageModerator | Cascade | ImageBackend,
        classifiers: Iterable[TextClassifier] = (),
        strategy: Literal["cascade", "parallel"] = "cascade",
        max_chars: int = DEFAULT_MAX_CHARS,
        **settings: Any,
    ) -> Pipeline:
        """Build a pipeline whose prompt checks and image checks follow one policy.

        The prompt moderator is :meth:`PromptModerator.from_policy
        <safegen.PromptModerator.from_policy>` of *policy* (its ``[prompts]`` section), with
        *classifiers*, *strategy* and *max_chars*. An image backend given as
        *image_moderator* is judged by *policy*; a moderator or cascade is used as it is
        (it may judge by a policy adjusted to its backend, e.g.
        :func:`safegen.local.recommended_policy`).

        :param settings: the constructor's keywords (``on_unsafe_prompt``, ...).
        :raises ConfigurationError: a setting is refused; the message names it.
        """
        if not isinstance(policy, ModerationPolicy):
            raise ConfigurationError(
                f"policy: expected a ModerationPolicy, got {_checks.kind(policy)}"
            )
        images = image_moderator
        if not isinstance(images, ImageModerator | Cascade) and isinstance(images, ImageBackend):
            images = ImageModerator(images, policy)
        prompts = PromptModerator.from_policy(
            policy, classifiers=classifiers, strategy=strategy, max_chars=max_chars
        )
        # Anything else is refused by the image_moderator validator, naming the setting.
        return cls(prompts, generator, images, **settings)

    def run(
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
        """Run the whole pipeline for one prompt.

        :param policy: judge this run's prompt and images by *policy* instead of the
            moderators' own (see :meth:`PromptModerator.moderate
            <safegen.PromptModerator.moderate>` and :meth:`ImageModerator.moderate
            <safegen.ImageModerator.moderate>`); the result records it.
        :raises InvalidPromptError: the prompt is not a string or is too long (checked first,
            when there is a prompt moderator).
        :raises GenerationRequestError: the request cannot be made (an empty prompt, a
            negative prompt that is not a string, a size, count or seed that is not a whole
            number in range: see :class:`~safegen.GenerationRequest`); the message names it.
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
        steps = self._steps(prompt, request, policy)
        pool: ThreadPoolExecutor | None = None
        head_start: Future[_Generated] | None = None
        answer: Any = None
        try:
            while True:
                try:
                    step = steps.send(answer)
                except StopIteration as done:
                    result: PipelineResult = done.value
                    break
                answer = None
                if isinstance(step, StartGeneration):
                    pool = ThreadPoolExecutor(
                        max_workers=1, thread_name_prefix="safegen-optimistic"
                    )
                    head_start = pool.submit(self._generate, step.request)
                elif isinstance(step, DiscardGeneration):
                    if head_start is not None:
                        head_start.cancel()  # a generation already under way finishes unseen
                elif isinstance(step, CollectGeneration):
                    answer = None if head_start is None else head_start.result()
                elif isinstance(step, Generate):
                    answer = self._generate(step.request)
                elif isinstance(step, ModeratePrompt):
                    moderator = cast("PromptModerator", self.prompt_moderator)  # it asked
                    answer = moderator._check(step.prompt, step.policy)
                elif isinstance(step, ModerateImages):
                    workers = min(_MAX_PARALLEL_IMAGES, max(1, len(step.images)))
                    answer = self.image_moderator._check_many(
                        step.images, max_workers=workers, policy=step.policy
                    )
                else:
                    answer = redacted(step)
        finally:
            steps.close()
            if pool is not None:
                pool.shutdown(wait=False)  # a discarded generation finishes on its own
        self._report(result)
        return result

    def _generate(self, request: GenerationRequest) -> _Generated:
        start = time.perf_counter()
        try:
            answer: object = self.generator.generate(request)
        except Exception as error:  # judged by the core: reported, never raised
            answer = error
        return self._generated(request, answer, start)


def _labels(verdict: ImageVerdict) -> str:
    decision = verdict.decision
    names = [] if decision is None else [v.label.name for v in decision.violations]
    return ", ".join(names) or "no label named"


def _prompt_reasons(verdict: PromptVerdict) -> str:
    found = [f"{f.label} ({f.source})" for f in verdict.findings]
    found += [f"{c.name} could not run" for c in verdict.failed if not c.fail_open]
    return ", ".join(found) or "no reason given"


def _prompt_warning(verdict: PromptVerdict, *, rejected: bool) -> str:
    outcome = "rejected" if rejected else "allowed with a warning"
    return f"the prompt was {outcome}: {_prompt_reasons(verdict)}"


def _shortfall_warnings(generation: Generation, name: str) -> list[str]:
    """Say so when fewer images came back than were asked for, and nothing said why."""
    made, asked = len(generation.images), generation.request.images
    if made >= asked or generation.filtered:
        return []
    return [f"{name} made {made} of the {asked} images asked for and gave no reason"]


def _filter_warnings(generation: Generation) -> list[str]:
    return [
        f"the model's own content filter stopped the {f.stage}: {f.message}"
        for f in generation.filtered
    ]
