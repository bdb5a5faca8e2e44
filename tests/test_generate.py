"""Tests of generation: requests, negative prompts, and the SageMaker and Bedrock generators."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from typing import Any

import attrs
import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber
from moto import mock_aws
from moto.moto_api._internal.models import moto_api_backend

from safegen.aws.bedrock import BedrockGenerator
from safegen.aws.sagemaker import STABILITY, TXT2IMG, SageMakerGenerator
from safegen.errors import (
    ConfigurationError,
    GenerationRequestError,
    InvalidRequestError,
    MalformedResponseError,
    ServiceError,
    ThrottledError,
)
from safegen.generate import (
    DEFAULT_NEGATIVE_PROMPTS,
    ContentFilterFinding,
    GeneratedImage,
    Generation,
    GenerationRequest,
    checked_generation,
    negative_prompt,
    seeds,
)
from safegen.ports import Generator
from tests.aws import fake_client
from tests.strategies import make_image

JPEG = make_image("JPEG", (64, 64))
PNG = make_image("PNG", (64, 64))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class TestRequests:
    def test_the_default_negative_prompts_are_documented(self) -> None:
        """Each default entry says why it is there."""
        assert all(term and len(why) > 10 for term, why in DEFAULT_NEGATIVE_PROMPTS)

    def test_negative_prompts_merge_without_repeats(self) -> None:
        """Defaults first, then the caller's, case-insensitively de-duplicated."""
        merged = negative_prompt("blurry, NSFW", "watermark")
        terms = merged.split(", ")
        assert terms[: len(DEFAULT_NEGATIVE_PROMPTS)] == [t for t, _ in DEFAULT_NEGATIVE_PROMPTS]
        assert terms[-2:] == ["blurry", "watermark"]
        assert [t.casefold() for t in terms].count("nsfw") == 1

    def test_the_caller_can_leave_the_defaults_out(self) -> None:
        """default_negatives=False sends only the caller's own."""
        request = GenerationRequest(
            prompt="a cat", negative_prompt="blurry", default_negatives=False
        )
        assert request.full_negative_prompt == "blurry"

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"prompt": ""},
            {"prompt": "  "},
            {"prompt": "x", "width": 0},
            {"prompt": "x", "images": -1},
            {"prompt": "x", "steps": 0},
        ],
    )
    def test_impossible_requests_are_refused(self, kwargs: dict[str, Any]) -> None:
        """An empty prompt or a non-positive number is a GenerationRequestError."""
        with pytest.raises(GenerationRequestError):
            GenerationRequest(**kwargs)


class TestResults:
    REQUEST = GenerationRequest(prompt="a lake", images=2)
    IMAGE = GeneratedImage(b"png", "PNG", 1)

    @pytest.mark.parametrize(
        ("images", "filtered", "message"),
        [
            ((), (), "no images and no content-filter finding"),
            ((IMAGE, IMAGE, IMAGE), (), "3 images for the 2 asked for"),
            ((IMAGE, IMAGE, IMAGE), (ContentFilterFinding("output", "x"),), "3 images"),
        ],
    )
    def test_a_generation_that_does_not_add_up_cannot_be_built(
        self, images: tuple[GeneratedImage, ...], filtered: Any, message: str
    ) -> None:
        """No images needs a reason; more images than asked for is never an answer."""
        with pytest.raises(MalformedResponseError, match=message):
            Generation(self.REQUEST, images, filtered)

    def test_fewer_images_with_or_without_a_reason_can_be_built(self) -> None:
        """A filter may withhold some; the pipeline warns when nothing says why."""
        assert Generation(self.REQUEST, (self.IMAGE,)).images == (self.IMAGE,)
        refused = Generation(self.REQUEST, filtered=[ContentFilterFinding("prompt", "no")])
        assert refused.blocked

    @pytest.mark.parametrize(
        "fields",
        [
            {"data": "png", "format": "PNG"},
            {"data": None, "format": "PNG"},
            {"data": b"png", "format": None},
            {"data": b"png", "format": "PNG", "seed": "1"},
            {"data": b"png", "format": "PNG", "seed": True},
            {"data": b"", "format": "PNG"},  # no picture at all
        ],
    )
    def test_an_image_with_the_wrong_types_cannot_be_built(self, fields: dict[str, Any]) -> None:
        """Bytes, a format name and an integer seed, or a MalformedResponseError."""
        with pytest.raises(MalformedResponseError, match="GeneratedImage"):
            GeneratedImage(**fields)

    def test_one_byte_is_an_image_to_judge(self) -> None:
        """The least a generator can answer: its content is the image moderator's to judge."""
        assert GeneratedImage(b"\x00", "PNG").data == b"\x00"

    def test_an_answer_is_checked_again_when_it_arrives(self) -> None:
        """A generation altered after it was built is refused, as is one for another request."""
        good = Generation(self.REQUEST, (self.IMAGE,))
        assert checked_generation(good, "g", self.REQUEST) is good
        emptied = attrs.evolve(good)
        object.__setattr__(emptied, "images", ())
        with pytest.raises(MalformedResponseError, match="no images"):
            checked_generation(emptied, "g", self.REQUEST)
        with pytest.raises(MalformedResponseError, match="another request"):
            checked_generation(good, "g", attrs.evolve(self.REQUEST, images=1))
        with pytest.raises(MalformedResponseError, match="g answered with NoneType"):
            checked_generation(None, "g", self.REQUEST)


@pytest.fixture
def sagemaker() -> Iterator[Any]:
    with mock_aws():
        yield fake_client("sagemaker-runtime")


def queue_result(body: dict[str, Any]) -> None:
    """Queue the next InvokeEndpoint reply in moto."""
    moto_api_backend.set_sagemaker_result(
        body=json.dumps(body),
        content_type="application/json",
        prod_variant="AllTraffic",
        custom_attrs="",
        account_id="123456789012",
        region="us-east-1",
    )


class TestSageMaker:
    def test_txt2img_round_trip_through_botocore(self, sagemaker: Any) -> None:
        """The classic container's base64 JPEGs come back as images, seeds numbered on."""
        queue_result({"generated_images": [b64(JPEG), b64(JPEG)], "prompt": "a cat"})
        generator = SageMakerGenerator(sagemaker, "sd-endpoint")
        assert isinstance(generator, Generator)
        result = generator.generate(GenerationRequest(prompt="a cat", images=2, seed=7))
        assert [(i.format, i.seed) for i in result.images] == [("JPEG", 7), ("JPEG", 8)]
        assert result.images[0].data == JPEG
        assert result.generator == "sagemaker"
        assert not result.blocked

    def test_txt2img_sends_the_prompt_and_the_merged_negatives(self) -> None:
        """The body carries both prompts, the size and the parameters given."""
        request = GenerationRequest(
            prompt="a cat",
            negative_prompt="blurry",
            width=768,
            height=768,
            steps=30,
            guidance=7.5,
            seed=1,
        )
        body = TXT2IMG.encode(request, request.seed)
        assert body == {
            "prompt": "a cat",
            "negative_prompt": request.full_negative_prompt,
            "width": 768,
            "height": 768,
            "num_images_per_prompt": 1,
            "num_inference_steps": 30,
            "guidance_scale": 7.5,
            "seed": 1,
        }
        assert body["negative_prompt"].endswith("blurry")
        assert TXT2IMG.accept == "application/json;jpeg"

    def test_the_stability_container_gets_weighted_prompts_one_image_a_call(
        self, sagemaker: Any
    ) -> None:
        """Two images are two calls with consecutive seeds; the negative prompt weighs -1."""
        request = GenerationRequest(prompt="a fox", images=2, seed=40, guidance=7.0)
        body = STABILITY.encode(request, 40)
        assert body["text_prompts"] == [
            {"text": "a fox", "weight": 1.0},
            {"text": request.full_negative_prompt, "weight": -1.0},
        ]
        assert body["cfg_scale"] == 7.0
        queue_result({"generated_image": b64(PNG)})
        queue_result({"generated_image": b64(PNG)})
        result = SageMakerGenerator(sagemaker, "sdxl", codec=STABILITY).generate(request)
        assert [(i.format, i.seed) for i in result.images] == [("PNG", 40), ("PNG", 41)]

    def test_sizes_must_be_multiples_of_8(self, sagemaker: Any) -> None:
        """Refused before any call: the container would make black images or fail."""
        with pytest.raises(GenerationRequestError, match="width 500 is not a multiple of 8"):
            SageMakerGenerator(sagemaker, "sd").generate(GenerationRequest(prompt="x", width=500))

    def test_a_body_over_6_mb_is_refused(self, sagemaker: Any) -> None:
        """InvokeEndpoint's limit is checked before sending."""
        request = GenerationRequest(prompt="x" * (7 * 1024 * 1024))
        with pytest.raises(GenerationRequestError, match="over InvokeEndpoint"):
            SageMakerGenerator(sagemaker, "sd").generate(request)

    @pytest.mark.parametrize(
        "body",
        [
            {"nothing": 1},
            {"generated_images": ["!!!not base64"]},
            {"generated_images": [b64(b"GIF89a....")]},
        ],
    )
    def test_malformed_responses_are_errors(self, sagemaker: Any, body: dict[str, Any]) -> None:
        """Missing images, bad base64 or a non-JPEG/PNG image never pass as a result."""
        queue_result(body)
        with pytest.raises(MalformedResponseError):
            SageMakerGenerator(sagemaker, "sd").generate(GenerationRequest(prompt="x"))

    def test_a_model_error_keeps_the_containers_status_and_message(self) -> None:
        """CUDA out of memory in the container is visible in the error, with ModelError."""
        client = fake_client("sagemaker-runtime")
        with Stubber(client) as stubber:
            stubber.add_client_error(
                "invoke_endpoint",
                "ModelError",
                "Received server error (500)",
                424,
                modeled_fields={
                    "OriginalStatusCode": 500,
                    "OriginalMessage": "CUDA out of memory",
                    "LogStreamArn": "arn:aws:logs:us-east-1:1:log-group:x",
                },
            )
            with pytest.raises(ServiceError) as raised:
                SageMakerGenerator(client, "sd").generate(GenerationRequest(prompt="x"))
        assert raised.value.code == "ModelError"
        assert "500: CUDA out of memory" in str(raised.value)

    def test_from_session_allows_slow_models(self) -> None:
        """The read timeout is longer than botocore's 60 s default; retries are standard."""
        session = boto3.Session(
            aws_access_key_id="t", aws_secret_access_key="t", region_name="us-east-1"
        )
        generator = SageMakerGenerator.from_session("sd", session, read_timeout=180)
        config: Any = generator._client.meta.config
        assert config.read_timeout == 180
        assert config.retries["mode"] == "standard"


@pytest.fixture
def bedrock() -> Iterator[tuple[Any, Stubber]]:
    client = fake_client("bedrock-runtime")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def model_reply(payload: dict[str, Any]) -> dict[str, Any]:
    raw = json.dumps(payload).encode()
    return {"body": StreamingBody(io.BytesIO(raw), len(raw)), "contentType": "application/json"}


class TestBedrock:
    NOVA = "amazon.nova-canvas-v1:0"
    SD35 = "stability.sd3-5-large-v1:0"

    def test_nova_canvas_returns_its_images(self, bedrock: tuple[Any, Stubber]) -> None:
        """TEXT_IMAGE with the negative text; base64 PNGs back."""
        client, stubber = bedrock
        stubber.add_response(
            "invoke_model",
            model_reply({"images": [b64(PNG)], "error": None}),
            {
                "modelId": self.NOVA,
                "body": ANY,
                "contentType": "application/json",
                "accept": "application/json",
            },
        )
        result = BedrockGenerator(client, self.NOVA).generate(GenerationRequest(prompt="a cat"))
        assert [i.format for i in result.images] == ["PNG"]
        assert result.filtered == ()

    def test_a_prompt_blocked_by_the_models_filter_is_a_finding(
        self, bedrock: tuple[Any, Stubber]
    ) -> None:
        """A ValidationException about content filters: no images, a prompt finding."""
        client, stubber = bedrock
        stubber.add_client_error(
            "invoke_model",
            "ValidationException",
            "This request has been blocked by our content filters.",
            400,
        )
        result = BedrockGenerator(client, self.NOVA).generate(GenerationRequest(prompt="x"))
        assert result.images == ()
        assert result.blocked
        assert result.filtered[0].stage == "prompt"

    def test_other_validation_errors_still_raise(self, bedrock: tuple[Any, Stubber]) -> None:
        """A bad parameter is not a content filter: InvalidRequestError with its code."""
        client, stubber = bedrock
        stubber.add_client_error("invoke_model", "ValidationException", "width too large", 400)
        with pytest.raises(InvalidRequestError, match="width too large"):
            BedrockGenerator(client, self.NOVA).generate(GenerationRequest(prompt="x"))

    def test_withheld_output_images_are_a_finding(self, bedrock: tuple[Any, Stubber]) -> None:
        """HTTP 200 with an error and fewer images: what came back, plus an output finding."""
        client, stubber = bedrock
        stubber.add_response(
            "invoke_model",
            model_reply(
                {
                    "images": [b64(PNG)],
                    "error": "Some of the generated images have been blocked by our "
                    "content filters.",
                }
            ),
        )
        result = BedrockGenerator(client, self.NOVA).generate(
            GenerationRequest(prompt="x", images=2)
        )
        assert len(result.images) == 1
        assert result.filtered[0].stage == "output"

    def test_sd35_finish_reasons_are_findings(self, bedrock: tuple[Any, Stubber]) -> None:
        """One call an image; a filtered one is a finding, the others are images."""
        client, stubber = bedrock
        stubber.add_response(
            "invoke_model",
            model_reply({"seeds": [5], "finish_reasons": [None], "images": [b64(PNG)]}),
        )
        stubber.add_response(
            "invoke_model",
            model_reply(
                {
                    "seeds": [6],
                    "finish_reasons": ["Filter reason: output image"],
                    "images": [b64(PNG)],
                }
            ),
        )
        result = BedrockGenerator(client, self.SD35).generate(
            GenerationRequest(prompt="x", images=2, seed=5, width=1024, height=576)
        )
        assert [(i.seed, i.format) for i in result.images] == [(5, "PNG")]
        assert result.filtered[0].stage == "output"

    def test_throttling_is_translated(self, bedrock: tuple[Any, Stubber]) -> None:
        """No bare ClientError escapes."""
        client, stubber = bedrock
        stubber.add_client_error("invoke_model", "ThrottlingException", "slow down", 429)
        with pytest.raises(ThrottledError):
            BedrockGenerator(client, self.SD35).generate(GenerationRequest(prompt="x"))

    def test_unknown_model_families_are_refused(self) -> None:
        """A text model ID is a mistake said at construction."""
        with pytest.raises(ConfigurationError, match="not an Amazon or Stability"):
            BedrockGenerator(object(), "anthropic.claude-v2")
        assert BedrockGenerator(object(), "us.amazon.nova-canvas-v1:0")._family == "amazon"


@pytest.mark.parametrize(
    ("field", "lowest", "highest"),
    [
        ("width", 1, 8192),
        ("height", 1, 8192),
        ("images", 1, 64),
        ("steps", 1, 1000),
        ("seed", 0, 2**32 - 1),
    ],
)
def test_whole_number_fields_take_exactly_their_range(
    field: str, lowest: int, highest: int
) -> None:
    """Each whole-number field takes both ends of its range and refuses one past either end."""
    for value in (lowest, highest):
        changes: dict[str, Any] = {field: value}
        assert getattr(GenerationRequest(prompt="x", **changes), field) == value
    for value in (lowest - 1, highest + 1):
        with pytest.raises(GenerationRequestError, match=rf"^{field}: "):
            GenerationRequest(prompt="x", **dict[str, Any]({field: value}))


def test_guidance_takes_exactly_its_range() -> None:
    """Guidance takes 100 and the smallest positive float, and refuses 0 and just over 100."""
    assert GenerationRequest(prompt="x", guidance=100).guidance == 100
    assert GenerationRequest(prompt="x", guidance=5e-324).guidance == 5e-324
    for value in (0, 100.00000000000001):
        with pytest.raises(GenerationRequestError, match=r"^guidance: "):
            GenerationRequest(prompt="x", guidance=value)


def test_seeds_wrap_around_past_the_largest() -> None:
    """The images after the largest seed get 0, 1, ...: never a seed out of range."""
    request = GenerationRequest(prompt="x", seed=2**32 - 2, images=4)
    assert seeds(request) == [2**32 - 2, 2**32 - 1, 0, 1]
