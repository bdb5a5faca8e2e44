"""SageMaker JumpStart Stable Diffusion endpoints as image generators (``InvokeEndpoint``).

JumpStart's containers speak different JSON; a :class:`Codec` per container family turns a
:class:`~safegen.GenerationRequest` into a request body and a response body into images:

- :data:`TXT2IMG`: the classic JumpStart txt2img container (Stable Diffusion 1.x/2.x), asked
  for base64 JPEGs with ``Accept: application/json;jpeg``.
- :data:`STABILITY`: Stability AI's own container (e.g. SDXL), ``text_prompts`` with weights;
  it returns one image a call, so several images are several calls with consecutive seeds.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs

from safegen.aws._client import Call, Exchange, instrument, make_client, run
from safegen.aws._convert import image_from_base64 as _image
from safegen.aws._convert import json_body
from safegen.aws._model import check_name, check_setting, instance_of
from safegen.errors import GenerationRequestError, MalformedResponseError
from safegen.generate import (
    GeneratedImage,
    Generation,
    GenerationRequest,
    check_multiple_of,
    seeds,
)

if TYPE_CHECKING:
    import boto3

__all__ = ["STABILITY", "TXT2IMG", "Codec", "SageMakerGenerator"]

MAX_BODY_BYTES = 6 * 1024 * 1024  # InvokeEndpoint's limit, request and response alike


@attrs.frozen
class Codec:
    """How one container family's request and response bodies look.

    :param name: the family's name.
    :param accept: the ``Accept`` header to send.
    :param encode: request and seed -> the JSON body for one call.
    :param decode: the parsed JSON response -> the base64 images in it.
    :param images_per_call: how many images one call can return (``None``: as many as asked).
    """

    name: str
    accept: str
    encode: Callable[[GenerationRequest, int | None], dict[str, Any]]
    decode: Callable[[Any], list[str]]
    images_per_call: int | None = None


def _txt2img_body(request: GenerationRequest, seed: int | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "prompt": request.prompt,
        "negative_prompt": request.full_negative_prompt,
        "width": request.width,
        "height": request.height,
        "num_images_per_prompt": request.images,
    }
    if request.steps is not None:
        body["num_inference_steps"] = request.steps
    if request.guidance is not None:
        body["guidance_scale"] = request.guidance
    if seed is not None:
        body["seed"] = seed
    return body


def _txt2img_images(response: Any) -> list[str]:
    images = response.get("generated_images") if isinstance(response, dict) else None
    if not isinstance(images, list) or not all(isinstance(i, str) for i in images):
        raise MalformedResponseError(
            "InvokeEndpoint (txt2img): expected generated_images, a list of base64 JPEGs"
        )
    return images


def _stability_body(request: GenerationRequest, seed: int | None) -> dict[str, Any]:
    prompts: list[dict[str, Any]] = [{"text": request.prompt, "weight": 1.0}]
    if request.full_negative_prompt:
        prompts.append({"text": request.full_negative_prompt, "weight": -1.0})
    body: dict[str, Any] = {
        "text_prompts": prompts,
        "width": request.width,
        "height": request.height,
    }
    if request.steps is not None:
        body["steps"] = request.steps
    if request.guidance is not None:
        body["cfg_scale"] = request.guidance
    if seed is not None:
        body["seed"] = seed
    return body


def _stability_images(response: Any) -> list[str]:
    image = response.get("generated_image") if isinstance(response, dict) else None
    if not isinstance(image, str):
        raise MalformedResponseError(
            "InvokeEndpoint (stability): expected generated_image, a base64 image"
        )
    return [image]


TXT2IMG = Codec("txt2img", "application/json;jpeg", _txt2img_body, _txt2img_images)
STABILITY = Codec("stability", "application/json", _stability_body, _stability_images, 1)


def _endpoint_name(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    check_setting(
        value,
        service="sagemaker-runtime",
        operation="InvokeEndpoint",
        member="EndpointName",
        setting=attribute.name,
    )


@attrs.frozen(eq=False)
class _SageMaker:
    """The settings and the InvokeEndpoint exchange both generators share."""

    _client: Any = attrs.field(converter=instrument, repr=False)
    endpoint_name: str = attrs.field(validator=_endpoint_name)
    codec: Codec = attrs.field(
        default=TXT2IMG, kw_only=True, validator=instance_of(Codec, "a Codec")
    )
    name: str = attrs.field(default="sagemaker", kw_only=True, validator=check_name)

    def _generate(self, request: GenerationRequest) -> Exchange[Generation]:
        """Encode each call's body, call, decode and check the images asked for."""
        check_multiple_of(request, 8, self.codec.name)
        per_call = self.codec.images_per_call
        calls = seeds(request) if per_call == 1 else [request.seed]
        expected = per_call if per_call is not None else request.images
        images: list[GeneratedImage] = []
        for seed in calls:
            body = json.dumps(self.codec.encode(request, seed)).encode()
            if len(body) > MAX_BODY_BYTES:
                raise GenerationRequestError(
                    f"request body is {len(body):,} bytes, over InvokeEndpoint's {MAX_BODY_BYTES:,}"
                )
            params = {
                "EndpointName": self.endpoint_name,
                "ContentType": "application/json",
                "Accept": self.codec.accept,
                "Body": body,
            }
            raw = yield Call("sagemaker-runtime", "InvokeEndpoint", params, body="Body")
            encoded = self.codec.decode(json_body(raw, "InvokeEndpoint"))
            if len(encoded) != expected:
                raise MalformedResponseError(
                    f"InvokeEndpoint ({self.codec.name}): "
                    f"{len(encoded)} image(s) for {expected} asked for"
                )
            for index, image in enumerate(encoded):
                image_seed = seed if per_call == 1 or seed is None else seed + index
                images.append(_image(image, image_seed))
        return Generation(request, tuple(images), generator=self.name)


@attrs.frozen(eq=False)
class SageMakerGenerator(_SageMaker):
    """A JumpStart Stable Diffusion endpoint as a :class:`~safegen.ports.Generator`.

    Only a well-formed answer is read: the codec's JSON with exactly the images asked for
    (one a call for :data:`STABILITY`), each a base64 JPEG or PNG. Anything else raises
    :class:`~safegen.errors.MalformedResponseError`, never a result with fewer images.

    :param client: a boto3 ``sagemaker-runtime`` client (see :meth:`from_session`).
    :param endpoint_name: the endpoint.
    :param codec: the container family: :data:`TXT2IMG` (default) or :data:`STABILITY`.
    :param name: the generator's name in results.
    :raises ConfigurationError: an endpoint name SageMaker would refuse, or not a codec.
    """

    @classmethod
    def from_session(
        cls,
        endpoint_name: str,
        session: boto3.Session | None = None,
        *,
        region_name: str | None = None,
        read_timeout: float = 120.0,
        max_attempts: int = 3,
        codec: Codec = TXT2IMG,
        name: str = "sagemaker",
    ) -> SageMakerGenerator:
        """Build the generator with a client suited to slow models.

        :param read_timeout: seconds to wait for the image (generation takes tens of
            seconds; botocore's default of 60 is too tight).
        :param max_attempts: attempts in all, the first included (standard retry mode).

        The other keywords are the constructor's.
        """
        client = make_client(
            "sagemaker-runtime",
            session,
            region_name=region_name,
            max_attempts=max_attempts,
            read_timeout=read_timeout,
        )
        return cls(client, endpoint_name, codec=codec, name=name)

    def generate(self, request: GenerationRequest) -> Generation:
        """Generate the images asked for.

        :raises GenerationRequestError: a size not a multiple of 8, or a body over 6 MB.
        :raises ServiceError: the call failed; a container failure (``ModelError``) keeps
            the container's own status and message.
        :raises MalformedResponseError: the response is not the codec's shape, or does not
            carry the images asked for.
        """
        return run(self._client, self._generate(request))
