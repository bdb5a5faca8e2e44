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

import base64
import enum
import logging
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Literal, TypeAlias

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
from safegen.image import ImageModerator, ImageVerdict
from safegen.policy import ModerationPolicy
from safegen.ports import Generator, ImageBackend, TextClassifier
from safegen.prompt import DEFAULT_MAX_CHARS, PromptModerator, PromptVerdict
from safegen.redaction import redact

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


class ImageStatus(enum.Enum):
    """What happened to one generated image."""

    SAFE = "safe"
    """Moderated and allowed: delivered as generated."""
    REDACTED = "redacted"
    """Unsafe (or for review): delivered blurred, pixelated or covered."""
    WITHHELD = "withheld"
    """Not delivered: unsafe and withheld, or its moderation could not run."""
    FLAGGED = "flagged"
    """Unsafe, delivered as generated with a warning, because you chose ``"warn"``."""


@attrs.frozen
class DeliveredImage:
    """One image as the pipeline hands it out.

    :param status: what happened to it.
    :param data: the bytes to show (``None`` when withheld).
    :param format: the image format.
    :param generated: the image as the model made it.
    :param verdict: its moderation verdict.
    :param review: whether its moderation said ``REVIEW`` (a person should look at it).
    """

    status: ImageStatus
    data: bytes | None = attrs.field(repr=lambda d: "None" if d is None else f"<{len(d):,} bytes>")
    format: str
    generated: GeneratedImage
    verdict: ImageVerdict
    review: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Return the image as JSON-ready data, its bytes in base64 (``None`` if withheld)."""
        decision = self.verdict.decision
        report = self.verdict.report
        loop = None if report is None or report.human_loop is None else report.human_loop.arn
        return {
            "status": self.status.value,
            "review": self.review,
            "human_loop": loop,
            "format": self.format,
            "seed": self.generated.seed,
            "data_base64": None if self.data is None else base64.b64encode(self.data).decode(),
            "action": self.verdict.action.value,
            "labels": [] if decision is None else [v.label.name for v in decision.violations],
            "error": self.verdict.error,
        }


@attrs.frozen
class Attempt:
    """One round of generation and image moderation.

    :param request: what the generator was asked.
    :param generation: what it returned (``None`` if it failed).
    :param verdicts: one per generated image, in order.
    :param generate_seconds: time spent generating.
    :param moderate_seconds: time spent moderating the images (all at once).
    :param error: why generation failed.
    """

    request: GenerationRequest
    generation: Generation | None
    verdicts: tuple[ImageVerdict, ...] = ()
    generate_seconds: float = 0.0
    moderate_seconds: float = 0.0
    error: str | None = None


@attrs.frozen
class PipelineResult:
    """Everything one pipeline run did, and what to show.

    :param status: ``"ok"`` (images made), ``"rejected"`` (the prompt was unsafe) or
        ``"failed"`` (generation could not run).
    :param prompt: the prompt verdict (``None`` without a prompt moderator).
    :param attempts: every generation attempt, in order.
    :param images: the images to show, in order, each with its status.
    :param warnings: what to tell the client, one sentence each.
    :param timings: seconds per stage: ``prompt``, ``generate``, ``moderate``, ``total``.
    """

    status: Literal["ok", "rejected", "failed"]
    prompt: PromptVerdict | None
    attempts: tuple[Attempt, ...] = ()
    images: tuple[DeliveredImage, ...] = ()
    warnings: tuple[str, ...] = ()
    timings: dict[str, float] = attrs.field(factory=dict, eq=False)

    def to_dict(self) -> dict[str, Any]:
        """Return the result as JSON for an HTTP response or an audit log (no prompt text)."""
        prompt = self.prompt
        return {
            "status": self.status,
            "prompt": None
            if prompt is None
            else {
                "action": prompt.action.value,
                "findings": [f.to_dict() for f in prompt.findings],
                "failed_checks": [c.name for c in prompt.failed],
            },
            "images": [image.to_dict() for image in self.images],
            "warnings": list(self.warnings),
            "attempts": len(self.attempts),
            "timings": dict(self.timings),
        }


def _prompt_moderator(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and not isinstance(value, PromptModerator):
        raise _checks.refuse(
            attribute, f"expected a PromptModerator or None, got {_checks.kind(value)}"
        )


_generator = _checks.port(Generator, "a generator (name and generate)")


@attrs.frozen(eq=False)
class Pipeline:
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

    @property
    def attempts(self) -> int:
        """How many generations a run may make: *max_attempts* when regenerating, else 1."""
        return self.max_attempts if self.on_unsafe_image == "regenerate" else 1

    def run(
        self,
        prompt: str,
        *,
        negative_prompt: str = "",
        images: int = 1,
        width: int = 512,
        height: int = 512,
        seed: int | None = None,
    ) -> PipelineResult:
        """Run the whole pipeline for one prompt.

        :raises InvalidPromptError: the prompt is not a string or is too long (checked first,
            when there is a prompt moderator).
        :raises GenerationRequestError: the request cannot be made (an empty prompt, a
            negative prompt that is not a string, a size, count or seed that is not a whole
            number in range: see :class:`~safegen.GenerationRequest`); the message names it.
        """
        start = time.perf_counter()
        timings = {"prompt": 0.0, "generate": 0.0, "moderate": 0.0}
        warnings: list[str] = []
        if self.prompt_moderator is not None:
            self.prompt_moderator.validate(prompt)
        request = GenerationRequest(
            prompt=prompt,
            negative_prompt=negative_prompt,
            images=images,
            width=width,
            height=height,
            seed=seed,
        )
        head_start: Future[_Generated] | None = None
        pool = None
        moderator = self.prompt_moderator
        if self.optimistic and moderator is not None:
            # Overlap generation with the (slow, paid) classifiers only: a prompt that cannot
            # be moderated, or that the free local rules already block, costs nothing.
            moderator.validate(prompt)
            if not moderator.rules_block(prompt):
                pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="safegen-optimistic")
                head_start = pool.submit(self._generate, request)
        verdict = None
        try:
            if self.prompt_moderator is not None:
                verdict = self.prompt_moderator.moderate(prompt)
                timings["prompt"] = time.perf_counter() - start
                if verdict.action is Action.BLOCK and self.on_unsafe_prompt == "reject":
                    warnings.append(_prompt_warning(verdict, rejected=True))
                    if head_start is not None:
                        # Never moderated nor returned; only the generation's cost is lost.
                        head_start.cancel()
                        warnings.append("a generation started optimistically was discarded")
                    timings["total"] = time.perf_counter() - start
                    return PipelineResult(
                        "rejected", verdict, warnings=tuple(warnings), timings=timings
                    )
                if verdict.action is Action.BLOCK:
                    warnings.append(_prompt_warning(verdict, rejected=False))
                elif verdict.action is Action.REVIEW:
                    warnings.append("the prompt needs review: " + _prompt_reasons(verdict))
            first = head_start.result() if head_start is not None else None
        finally:
            if pool is not None:
                pool.shutdown(wait=False)  # a discarded generation finishes on its own

        attempts: list[Attempt] = []
        delivered: list[DeliveredImage] = []
        for number in range(self.attempts):
            attempt = self._attempt(request, first if number == 0 else None)
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
                delivered.extend(self._treat(image, v, warnings) for image, v in unsafe)
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
            status, verdict, tuple(attempts), tuple(delivered), tuple(warnings), timings
        )

    def _generate(self, request: GenerationRequest) -> _Generated:
        start = time.perf_counter()
        try:
            generation = checked_generation(
                self.generator.generate(request), self.generator.name, request
            )
        except Exception as error:  # a failed generation is reported, never shipped
            code = getattr(error, "code", type(error).__name__)
            _log.warning("generator %s failed (%s)", self.generator.name, code)
            reason = str(error) if isinstance(error, SafegenError) else repr(error)
            return None, reason, time.perf_counter() - start
        return generation, None, time.perf_counter() - start

    def _attempt(self, request: GenerationRequest, generated: _Generated | None) -> Attempt:
        generation, error, seconds = generated or self._generate(request)
        if generation is None:
            return Attempt(request, None, generate_seconds=seconds, error=error)
        start = time.perf_counter()
        # Every image of the attempt at once: one round trip, whatever the number of images.
        workers = min(_MAX_PARALLEL_IMAGES, max(1, len(generation.images)))
        verdicts = self.image_moderator.moderate_many(
            [image.data for image in generation.images], max_workers=workers
        )
        return Attempt(request, generation, tuple(verdicts), seconds, time.perf_counter() - start)

    def _treat(
        self, image: GeneratedImage, verdict: ImageVerdict, warnings: list[str]
    ) -> DeliveredImage:
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
            try:
                data = redact(image.data, style=self.redaction, strength=0.8)
            except SafegenError as error:
                warnings.append(f"an image could not be redacted and is withheld ({error})")
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
