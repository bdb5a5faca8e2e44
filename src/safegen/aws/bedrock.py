"""Amazon Bedrock image models as generators (``InvokeModel``).

Two request schemas, chosen from the model ID:

- Amazon Nova Canvas and Titan Image Generator (``amazon.*``): ``TEXT_IMAGE`` tasks, several
  images a call;
- Stability AI's SD3 / SD3.5 / Stable Image models (``stability.*``): one image a call, sized
  by aspect ratio; several images are several calls with consecutive seeds.

Their own content filters are moderation signals: a refused prompt (a ``ValidationException``
saying so) or withheld images (HTTP 200 with an ``error``, or a ``finish_reasons`` entry)
become :class:`~safegen.generate.ContentFilterFinding` entries in the result, not exceptions.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Literal

import attrs

from safegen.aws._client import Call, Exchange, instrument, make_client, run
from safegen.aws._convert import image_from_base64 as _image
from safegen.aws._convert import json_body
from safegen.aws._model import check_name, check_setting
from safegen.errors import (
    ConfigurationError,
    InvalidRequestError,
    MalformedResponseError,
    ServiceError,
)
from safegen.generate import (
    ContentFilterFinding,
    GeneratedImage,
    Generation,
    GenerationRequest,
    seeds,
)

if TYPE_CHECKING:
    import boto3

__all__ = ["BedrockGenerator"]

# Stability's allowed aspect ratios, as width / height.
_ASPECT_RATIOS = {"16:9": 16 / 9, "1:1": 1.0, "21:9": 21 / 9, "2:3": 2 / 3, "3:2": 3 / 2,
                  "4:5": 4 / 5, "5:4": 5 / 4, "9:16": 9 / 16, "9:21": 9 / 21}  # fmt: skip
_GEOGRAPHIES = ("us", "eu", "apac", "global", "jp", "au", "ca", "us-gov")
_FILTERED = "content filters"  # how Bedrock says a filter, not a bad parameter, refused it


def _family(model_id: str) -> str:
    family = model_id.split(".", 1)[0] if "." in model_id else ""
    # Cross-region inference profiles prefix the ID with a geography ("us.amazon...").
    if family in _GEOGRAPHIES:
        family = model_id.split(".", 2)[1]
    return family


def _model_id(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    check_setting(
        value,
        service="bedrock-runtime",
        operation="InvokeModel",
        member="modelId",
        setting=attribute.name,
    )
    if _family(str(value)) not in ("amazon", "stability"):
        raise ConfigurationError(
            f"{attribute.name}: {value!r} is not an Amazon or Stability AI image model"
        )


@attrs.frozen(eq=False)
class _Bedrock:
    """The settings and the InvokeModel exchanges both generators share."""

    _client: Any = attrs.field(converter=instrument, repr=False)
    model_id: str = attrs.field(validator=_model_id)
    name: str = attrs.field(default="bedrock", kw_only=True, validator=check_name)

    @property
    def _family(self) -> str:
        return _family(self.model_id)

    def _generate(self, request: GenerationRequest) -> Exchange[Generation]:
        """Speak the model family's schema; content-filter refusals become findings."""
        if self._family == "amazon":
            return (yield from self._amazon(request))
        return (yield from self._stability(request))

    def _invoke(self, body: dict[str, Any]) -> Exchange[dict[str, Any] | ContentFilterFinding]:
        params = {
            "modelId": self.model_id,
            "body": json.dumps(body).encode(),
            "contentType": "application/json",
            "accept": "application/json",
        }
        try:
            raw = yield Call("bedrock-runtime", "InvokeModel", params, body="body")
        except InvalidRequestError as error:
            if _FILTERED in str(error).lower():
                return ContentFilterFinding("prompt", str(error))
            raise
        parsed = json_body(raw, "InvokeModel")
        if not isinstance(parsed, dict):
            raise MalformedResponseError("InvokeModel: the body is not a JSON object")
        return parsed

    def _amazon(self, request: GenerationRequest) -> Exchange[Generation]:
        config: dict[str, Any] = {
            "numberOfImages": request.images,
            "width": request.width,
            "height": request.height,
        }
        if request.guidance is not None:
            config["cfgScale"] = request.guidance
        if request.seed is not None:
            config["seed"] = request.seed
        params: dict[str, Any] = {"text": request.prompt}
        if request.full_negative_prompt:
            params["negativeText"] = request.full_negative_prompt
        body = {
            "taskType": "TEXT_IMAGE",
            "textToImageParams": params,
            "imageGenerationConfig": config,
        }
        result = yield from self._invoke(body)
        if isinstance(result, ContentFilterFinding):
            return Generation(request, filtered=(result,), generator=self.name)
        error = result.get("error")
        if error is not None and not isinstance(error, str):
            raise MalformedResponseError("InvokeModel: error must be a string")
        encoded = result.get("images", [] if error else None)
        if not isinstance(encoded, list):
            raise MalformedResponseError("InvokeModel: no images list, and no error saying why")
        if len(encoded) > request.images or (not error and len(encoded) != request.images):
            why = "" if error else ", and no error saying why"
            raise MalformedResponseError(
                f"InvokeModel: {len(encoded)} image(s) for {request.images} asked for{why}"
            )
        image_seeds = seeds(request)
        images = tuple(_image(e, image_seeds[i]) for i, e in enumerate(encoded))
        filtered = (ContentFilterFinding("output", error),) if error else ()
        return Generation(request, images, filtered, generator=self.name)

    def _stability(self, request: GenerationRequest) -> Exchange[Generation]:
        images: list[GeneratedImage] = []
        filtered: list[ContentFilterFinding] = []
        for seed in seeds(request):
            body: dict[str, Any] = {
                "prompt": request.prompt,
                "mode": "text-to-image",
                "aspect_ratio": _aspect_ratio(request.width, request.height),
                "output_format": "png",
            }
            if request.full_negative_prompt:
                body["negative_prompt"] = request.full_negative_prompt
            if seed is not None:
                body["seed"] = seed
            result = yield from self._invoke(body)
            if isinstance(result, ContentFilterFinding):
                return Generation(request, tuple(images), (result,), generator=self.name)
            encoded_images, reasons, returned_seeds = _stability_answer(result, seed)
            for encoded, reason, returned_seed in zip(
                encoded_images, reasons, returned_seeds, strict=True
            ):
                if reason is None:
                    images.append(_image(encoded, returned_seed))
                elif str(reason).startswith("Filter reason"):
                    stage: Literal["prompt", "output"] = (
                        "prompt" if "prompt" in str(reason) else "output"
                    )
                    filtered.append(ContentFilterFinding(stage, str(reason)))
                else:
                    raise ServiceError(
                        str(reason),
                        service="bedrock-runtime",
                        operation="InvokeModel",
                        code="FinishReason",
                    )
        return Generation(request, tuple(images), tuple(filtered), generator=self.name)


@attrs.frozen(eq=False)
class BedrockGenerator(_Bedrock):
    """A Bedrock image model as a :class:`~safegen.ports.Generator`.

    Only a well-formed answer is read: Amazon models answer ``images`` (all asked for, or
    fewer with an ``error`` saying why); Stability models one image a call, with
    ``finish_reasons`` and ``seeds`` lined up with it. Anything else raises
    :class:`~safegen.errors.MalformedResponseError`, never a result with images missing.

    :param client: a boto3 ``bedrock-runtime`` client (see :meth:`from_session`).
    :param model_id: e.g. ``"amazon.nova-canvas-v1:0"`` or ``"stability.sd3-5-large-v1:0"``.
    :param name: the generator's name in results.
    :raises ConfigurationError: a model family this generator does not speak.
    """

    @classmethod
    def from_session(
        cls,
        model_id: str,
        session: boto3.Session | None = None,
        *,
        region_name: str | None = None,
        read_timeout: float = 120.0,
        max_attempts: int = 3,
        name: str = "bedrock",
    ) -> BedrockGenerator:
        """Build the generator with a client suited to slow models (standard retries)."""
        client = make_client(
            "bedrock-runtime",
            session,
            region_name=region_name,
            max_attempts=max_attempts,
            read_timeout=read_timeout,
        )
        return cls(client, model_id, name=name)

    def generate(self, request: GenerationRequest) -> Generation:
        """Generate the images asked for; content-filter refusals are in ``filtered``.

        :raises ServiceError: the call failed for any other reason (the AWS code is kept).
        :raises MalformedResponseError: the response is not the model's shape.
        """
        return run(self._client, self._generate(request))


def _stability_answer(
    result: dict[str, Any], seed: int | None
) -> tuple[list[Any], list[str | None], list[int | None]]:
    """Return a Stability answer's one image with its finish reason and seed, checked."""
    encoded = result.get("images")
    if not isinstance(encoded, list) or len(encoded) != 1:
        raise MalformedResponseError("InvokeModel: expected images, a list of one image")
    reasons = result.get("finish_reasons", [None])
    if (
        not isinstance(reasons, list)
        or len(reasons) != 1
        or not all(r is None or isinstance(r, str) for r in reasons)
    ):
        raise MalformedResponseError("InvokeModel: finish_reasons must match the images")
    returned = result.get("seeds", [seed])
    if (
        not isinstance(returned, list)
        or len(returned) != 1
        or not all(s is None or (isinstance(s, int) and not isinstance(s, bool)) for s in returned)
    ):
        raise MalformedResponseError("InvokeModel: seeds must be whole numbers matching the images")
    return encoded, reasons, returned


def _aspect_ratio(width: int, height: int) -> str:
    wanted = width / height
    return min(_ASPECT_RATIOS, key=lambda name: abs(_ASPECT_RATIOS[name] - wanted))
