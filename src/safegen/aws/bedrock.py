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

from safegen.aws._client import make_client
from safegen.aws._convert import image_from_base64 as _image
from safegen.aws._convert import json_body
from safegen.aws._errors import aws_call
from safegen.errors import (
    GenerationRequestError,
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
_FILTERED = "content filters"  # how Bedrock says a filter, not a bad parameter, refused it


class BedrockGenerator:
    """A Bedrock image model as a :class:`~safegen.ports.Generator`.

    :param client: a boto3 ``bedrock-runtime`` client (see :meth:`from_session`).
    :param model_id: e.g. ``"amazon.nova-canvas-v1:0"`` or ``"stability.sd3-5-large-v1:0"``.
    :param name: the generator's name in results.
    :raises GenerationRequestError: a model family this generator does not speak.
    """

    def __init__(self, client: Any, model_id: str, *, name: str = "bedrock") -> None:
        family = model_id.split(".", 1)[0] if "." in model_id else ""
        # Cross-region inference profiles prefix the ID with a geography ("us.amazon...").
        if family in ("us", "eu", "apac", "global"):
            family = model_id.split(".", 2)[1]
        if family not in ("amazon", "stability"):
            raise GenerationRequestError(
                f"model_id: {model_id!r} is not an Amazon or Stability AI image model"
            )
        self._client = client
        self._model_id = model_id
        self._family = family
        self._name = name

    @classmethod
    def from_session(
        cls,
        model_id: str,
        session: boto3.Session | None = None,
        *,
        region_name: str | None = None,
        read_timeout: float = 120.0,
        max_attempts: int = 3,
        **options: Any,
    ) -> BedrockGenerator:
        """Build the generator with a client suited to slow models (standard retries)."""
        client = make_client(
            "bedrock-runtime",
            session,
            region_name=region_name,
            max_attempts=max_attempts,
            read_timeout=read_timeout,
        )
        return cls(client, model_id, **options)

    @property
    def name(self) -> str:
        """The generator's name in results."""
        return self._name

    def generate(self, request: GenerationRequest) -> Generation:
        """Generate the images asked for; content-filter refusals are in ``filtered``.

        :raises ServiceError: the call failed for any other reason (the AWS code is kept).
        :raises MalformedResponseError: the response is not the model's shape.
        """
        if self._family == "amazon":
            return self._amazon(request)
        return self._stability(request)

    def _invoke(self, body: dict[str, Any]) -> dict[str, Any] | ContentFilterFinding:
        try:
            with aws_call("bedrock-runtime", "InvokeModel"):
                response = self._client.invoke_model(
                    modelId=self._model_id,
                    body=json.dumps(body).encode(),
                    contentType="application/json",
                    accept="application/json",
                )
                raw = response["body"].read()
        except InvalidRequestError as error:
            if _FILTERED in str(error).lower():
                return ContentFilterFinding("prompt", str(error))
            raise
        parsed = json_body(raw, "InvokeModel")
        if not isinstance(parsed, dict):
            raise MalformedResponseError("InvokeModel: the body is not a JSON object")
        return parsed

    def _amazon(self, request: GenerationRequest) -> Generation:
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
        result = self._invoke(body)
        if isinstance(result, ContentFilterFinding):
            return Generation(request, filtered=(result,), generator=self._name)
        encoded = result.get("images") or []
        if not isinstance(encoded, list):
            raise MalformedResponseError("InvokeModel: images must be a list")
        image_seeds = seeds(request)
        images = tuple(
            _image(e, image_seeds[i] if i < len(image_seeds) else None)
            for i, e in enumerate(encoded)
        )
        error = result.get("error")
        filtered = (ContentFilterFinding("output", str(error)),) if error else ()
        return Generation(request, images, filtered, generator=self._name)

    def _stability(self, request: GenerationRequest) -> Generation:
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
            result = self._invoke(body)
            if isinstance(result, ContentFilterFinding):
                return Generation(request, tuple(images), (result,), generator=self._name)
            reasons = result.get("finish_reasons") or [None]
            returned_seeds = result.get("seeds") or [seed]
            for index, encoded in enumerate(result.get("images") or []):
                reason = reasons[index] if index < len(reasons) else None
                if reason is None:
                    images.append(_image(encoded, returned_seeds[index]))
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
        return Generation(request, tuple(images), tuple(filtered), generator=self._name)


def _aspect_ratio(width: int, height: int) -> str:
    wanted = width / height
    return min(_ASPECT_RATIOS, key=lambda name: abs(_ASPECT_RATIOS[name] - wanted))
