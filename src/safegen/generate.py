"""Image generation: requests, results, and the negative prompts sent with every request.

A :class:`~safegen.ports.Generator` (SageMaker JumpStart Stable Diffusion, Bedrock image
models, a fake in tests) turns a :class:`GenerationRequest` into a :class:`Generation`. A
model's own content filter refusing a prompt or an image is a finding in the result, not an
exception: it is a moderation signal like any other.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

import attrs

from safegen import _numbers
from safegen.errors import GenerationRequestError, MalformedResponseError

__all__ = [
    "DEFAULT_NEGATIVE_PROMPTS",
    "ContentFilterFinding",
    "GeneratedImage",
    "Generation",
    "GenerationRequest",
    "negative_prompt",
]

#: The negative prompts sent by default, each with why. They steer the model away from the
#: content a moderation layer would block anyway (the seed architecture's "predefined list"),
#: so fewer generations are wasted; they are a first line, not a guarantee.
DEFAULT_NEGATIVE_PROMPTS: tuple[tuple[str, str], ...] = (
    ("nsfw", "the catch-all tag for adult content in diffusion training captions"),
    ("nudity", "unclothed bodies, the most common unsafe output"),
    ("naked", "the everyday word for the same, frequent in captions"),
    ("nude", "as above, the art-history word"),
    ("sexual", "sexual acts and poses"),
    ("sexy", "suggestive framing; the seed's demo prompt 'A sexy lady' produced unsafe images"),
    ("explicit", "explicit content in general"),
    ("lingerie", "underwear shots that drift into suggestive content"),
    ("cleavage", "a frequent suggestive crop"),
    ("gore", "graphic injury and blood"),
    ("blood", "blood, which models add to violent scenes unasked"),
    ("violence", "violent acts"),
    ("weapon", "weapons pointed at people"),
    ("corpse", "dead bodies"),
    ("drugs", "drug use and paraphernalia"),
    ("hate symbol", "swastikas and other hate symbols"),
)


def negative_prompt(*extra: str, defaults: bool = True) -> str:
    """Join negative prompts: the defaults (if wanted), then yours, without repeats.

    :raises GenerationRequestError: a term is not a string, or *defaults* is not a bool.

    >>> negative_prompt("blurry", "NSFW", defaults=False)
    'blurry, NSFW'
    >>> negative_prompt("blurry").startswith("nsfw, nudity")
    True
    """
    if not isinstance(defaults, bool):
        raise GenerationRequestError(
            f"default_negatives: expected True or False, got {type(defaults).__name__}"
        )
    for term in extra:
        if not isinstance(term, str):
            raise GenerationRequestError(
                f"negative_prompt: expected a string, got {type(term).__name__}"
            )
    seen: set[str] = set()
    terms = []
    for term in [*(t for t, _ in DEFAULT_NEGATIVE_PROMPTS if defaults), *extra]:
        for piece in (p.strip() for p in term.split(",")):
            if piece and piece.casefold() not in seen:
                seen.add(piece.casefold())
                terms.append(piece)
    return ", ".join(terms)


# The largest width or height a request may ask for, in pixels (no supported model makes
# more; the lambda proxy allows less).
_MAX_SIDE = 8192
# The most images one request may ask for.
_MAX_IMAGES = 64
# The most diffusion steps a request may ask for.
_MAX_STEPS = 1000
# The largest guidance (CFG scale) a request may ask for.
_MAX_GUIDANCE = 100.0
# The largest seed: seeds are unsigned 32-bit numbers (Stable Diffusion's range); the seeds
# of further images wrap around past it (see seeds()).
_MAX_SEED = 2**32 - 1


def _refuse(attribute: attrs.Attribute[Any], message: str) -> GenerationRequestError:
    return GenerationRequestError(f"{attribute.name}: {message}")


def _shown(value: object) -> str:
    """Show a refused value: a number itself, anything else by its type only."""
    return _numbers.show(value) if isinstance(value, int | float) else type(value).__name__


def _whole(low: int, high: int) -> Any:
    """Return a validator for a whole number (an int, not a bool) from *low* to *high*."""

    def check(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise _refuse(
                attribute, f"must be a whole number from {low} to {high:,}, got {_shown(value)}"
            )

    return check


def _optional(validator: Any) -> Any:
    def check(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if value is not None:
            validator(instance, attribute, value)

    return check


def _guidance(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    number = _numbers.finite(value)
    if number is None or not 0 < number <= _MAX_GUIDANCE:
        raise _refuse(
            attribute,
            f"must be a number above 0 and at most {_MAX_GUIDANCE:g}, got {_shown(value)}",
        )


def _prompt(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str):
        raise _refuse(attribute, f"expected a string, got {type(value).__name__}")
    if not value.strip():
        raise _refuse(attribute, "must not be empty")


def _string(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str):
        raise _refuse(attribute, f"expected a string, got {type(value).__name__}")


def _bool(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, bool):
        raise _refuse(attribute, f"expected True or False, got {type(value).__name__}")


@attrs.frozen(kw_only=True)
class GenerationRequest:
    """What to generate.

    :param prompt: what the image should show.
    :param negative_prompt: your own negative prompt; the defaults are added unless
        ``default_negatives=False``. Never moderated: it names what must not appear.
    :param default_negatives: send :data:`DEFAULT_NEGATIVE_PROMPTS` as well.
    :param width: in pixels.
    :param height: in pixels.
    :param images: how many images.
    :param seed: for reproducible output; each further image uses the next seed.
    :param steps: diffusion steps, if the model takes them.
    :param guidance: how strongly to follow the prompt (CFG scale), if the model takes it.
    :raises GenerationRequestError: a value of the wrong type or out of range; the message
        names the field. Whole numbers are ints (never bools): *width* and *height* from 1
        to 8,192, *images* from 1 to 64, *steps* from 1 to 1,000, *seed* from 0 to
        4,294,967,295 (a seed's next images wrap around past it); *guidance* is a finite
        number above 0 and at most 100. Checked again by ``attrs.evolve``.
    """

    prompt: str = attrs.field(validator=_prompt)
    negative_prompt: str = attrs.field(default="", validator=_string)
    default_negatives: bool = attrs.field(default=True, validator=_bool)
    width: int = attrs.field(default=512, validator=_whole(1, _MAX_SIDE))
    height: int = attrs.field(default=512, validator=_whole(1, _MAX_SIDE))
    images: int = attrs.field(default=1, validator=_whole(1, _MAX_IMAGES))
    seed: int | None = attrs.field(default=None, validator=_optional(_whole(0, _MAX_SEED)))
    steps: int | None = attrs.field(default=None, validator=_optional(_whole(1, _MAX_STEPS)))
    guidance: float | None = attrs.field(default=None, validator=_optional(_guidance))

    @property
    def full_negative_prompt(self) -> str:
        """The negative prompt actually sent: the defaults (if on), then yours."""
        return negative_prompt(self.negative_prompt, defaults=self.default_negatives)


def _malformed(instance: object, attribute: attrs.Attribute[Any], message: str) -> Exception:
    return MalformedResponseError(f"{type(instance).__name__}.{attribute.name}: {message}")


def _data(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, bytes):
        raise _malformed(instance, attribute, f"expected bytes, got {type(value).__name__}")
    if not value:  # no picture at all: what a broken model answers, never an image to judge
        raise _malformed(instance, attribute, "no bytes")


def _text(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str):
        raise _malformed(instance, attribute, f"expected a string, got {type(value).__name__}")


def _seed(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise _malformed(
            instance, attribute, f"expected an int or None, got {type(value).__name__}"
        )


@attrs.frozen
class GeneratedImage:
    """One image a generator made.

    :param data: the encoded image.
    :param format: ``"JPEG"`` or ``"PNG"``.
    :param seed: the seed that made it, when the model says or was told.
    :raises MalformedResponseError: *data* is not bytes or is empty, or a field has the
        wrong type.
    """

    data: bytes = attrs.field(repr=lambda d: f"<{len(d):,} bytes>", validator=_data)
    format: str = attrs.field(validator=_text)
    seed: int | None = attrs.field(default=None, validator=_seed)


def _stage(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str) or value not in ("prompt", "output"):
        raise _malformed(instance, attribute, 'must be "prompt" or "output"')


@attrs.frozen
class ContentFilterFinding:
    """A model's own content filter stopped something.

    :param stage: ``"prompt"`` (nothing was generated) or ``"output"`` (images withheld).
    :param message: what the service said.
    """

    stage: Literal["prompt", "output"] = attrs.field(validator=_stage)
    message: str = attrs.field(validator=_text)


def _items(value: Iterable[Any], owner: str) -> tuple[Any, ...]:
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise MalformedResponseError(f"{owner}: expected a collection, got {type(value).__name__}")
    return tuple(value)


def _images(value: Iterable[GeneratedImage]) -> tuple[GeneratedImage, ...]:
    return _items(value, "Generation.images")


def _filtered(value: Iterable[ContentFilterFinding]) -> tuple[ContentFilterFinding, ...]:
    return _items(value, "Generation.filtered")


def _each(kind: type) -> Any:
    def check(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if not isinstance(value, tuple):
            raise _malformed(instance, attribute, f"expected a tuple, got {type(value).__name__}")
        for item in value:
            if not isinstance(item, kind):
                got = type(item).__name__
                raise _malformed(instance, attribute, f"expected {kind.__name__}, got {got}")

    return check


def _request(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, GenerationRequest):
        got = type(value).__name__
        raise _malformed(instance, attribute, f"expected a GenerationRequest, got {got}")


def _accounted(instance: Generation, attribute: attrs.Attribute[Any], value: object) -> None:
    """Every image is one asked for, and a generation without images says why."""
    request: object = instance.request
    asked = request.images if isinstance(request, GenerationRequest) else 0
    made = len(instance.images)
    if made > asked:
        raise MalformedResponseError(
            f"Generation: {made} images for the {asked} asked for; the answer does not match"
        )
    if not made and not instance.filtered:
        raise MalformedResponseError(
            "Generation: no images and no content-filter finding; the generator gave no reason"
        )


@attrs.frozen
class Generation:
    """What one generation call returned.

    :param request: what was asked for.
    :param images: the images that came back (fewer than asked when a filter withheld some).
    :param filtered: what the model's own content filter stopped.
    :param generator: the generator's name.
    :raises MalformedResponseError: more images than were asked for, or none and no
        content-filter finding to say why: an answer that does not add up is a failed
        generation, never an empty success.
    """

    request: GenerationRequest = attrs.field(validator=_request)
    images: tuple[GeneratedImage, ...] = attrs.field(
        default=(), converter=_images, validator=_each(GeneratedImage)
    )
    filtered: tuple[ContentFilterFinding, ...] = attrs.field(
        default=(), converter=_filtered, validator=_each(ContentFilterFinding)
    )
    # The last field carries the check across fields: attrs runs it once all are set.
    generator: str = attrs.field(default="", validator=[_text, _accounted])

    @property
    def blocked(self) -> bool:
        """Whether the model's own filter stopped anything."""
        return bool(self.filtered)


def offset_seed(seed: int, offset: int) -> int:
    """Return the seed *offset* places after *seed*, wrapping around to 0 past the largest."""
    return (seed + offset) % (_MAX_SEED + 1)


def seeds(request: GenerationRequest) -> list[int | None]:
    """Return the seed for each image asked for: the request's, then the next ones."""
    if request.seed is None:
        return [None] * request.images
    return [offset_seed(request.seed, i) for i in range(request.images)]


def check_multiple_of(request: GenerationRequest, step: int, where: str) -> None:
    """Refuse sizes a model cannot make."""
    for name, value in (("width", request.width), ("height", request.height)):
        if value % step:
            raise GenerationRequestError(f"{where}: {name} {value} is not a multiple of {step}")


def checked_generation(value: object, source: str, request: GenerationRequest) -> Generation:
    """Return *value* if it is a well-formed :class:`Generation` for *request*.

    Every field is checked again, with each image and finding: an answer built with attrs'
    validators switched off, or altered after it was built, is refused too.

    :param source: who answered (a generator's name), for the message.
    :param request: what the generator was asked for; an answer to anything else is refused.
    :raises MalformedResponseError: *value* is not a well-formed generation for *request*.
    """
    if not isinstance(value, Generation):
        got = type(value).__name__
        raise MalformedResponseError(f"{source} answered with {got}, not a Generation")
    if value.request != request:
        raise MalformedResponseError(f"{source} answered for another request than the one sent")
    attrs.validate(value.request)
    attrs.validate(value)
    for image in value.images:
        attrs.validate(image)
    for finding in value.filtered:
        attrs.validate(finding)
    return value
