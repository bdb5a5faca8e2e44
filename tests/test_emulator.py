"""The emulator speaks each service as botocore's own models describe it."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from botocore.validate import ParamValidator

from safegen._emulator import OPERATIONS
from safegen.aws import (
    BedrockGenerator,
    ComprehendClassifier,
    ComprehendToxicity,
    RekognitionModerator,
    SageMakerGenerator,
)
from safegen.aws._model import operation_model, service_model
from safegen.errors import ServiceError, ServiceUnavailableError, ThrottledError
from safegen.generate import GenerationRequest
from safegen.testing import AWSEmulator, Faults

ONE_TRY = {"retries": {"mode": "standard", "total_max_attempts": 1}}
ENDPOINT = "arn:aws:comprehend:us-east-1:123456789012:document-classifier-endpoint/toxicity"
ADAPTER = "arn:aws:rekognition:us-east-1:123456789012:project/p/version/v/1700000000000"
NOVA, SD35 = "amazon.nova-canvas-v1:0", "stability.sd3-5-large-v1:0"

# Requests for every implemented operation, as keyword arguments to boto3.
CALLS: dict[str, list[dict[str, Any]]] = {
    "DetectModerationLabels": [
        {"Image": {"Bytes": b"\xff\xd8\xff"}},
        {"Image": {"Bytes": b"\xff\xd8\xff"}, "MinConfidence": 60.0, "ProjectVersion": ADAPTER},
    ],
    "DetectToxicContent": [
        {"TextSegments": [{"Text": "a"}], "LanguageCode": "en"},
        {"TextSegments": [{"Text": str(i)} for i in range(10)], "LanguageCode": "en"},
    ],
    "ClassifyDocument": [{"Text": "a prompt", "EndpointArn": ENDPOINT}],
    "InvokeEndpoint": [
        {"EndpointName": "sd", "Body": b'{"prompt": "x", "num_images_per_prompt": 3}'},
        {"EndpointName": "sdxl", "Body": b'{"text_prompts": [{"text": "x"}]}'},
    ],
    "InvokeModel": [
        {"modelId": NOVA, "body": b'{"imageGenerationConfig": {"numberOfImages": 2}}'},
        {"modelId": SD35, "body": b'{"prompt": "x", "seed": 4}'},
    ],
}
ASYNC = {"EndpointName": "sd", "InputLocation": "s3://bucket/key"}
REKOGNITION_THROTTLES = {"ThrottlingException", "ProvisionedThroughputExceededException"}
SERVICE = {operation: service for service, operation in OPERATIONS}


@pytest.fixture
def aws() -> Iterator[AWSEmulator]:
    with AWSEmulator(seed=5) as emulator:
        yield emulator


def snake(operation: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in operation).lstrip("_")


def call(aws: AWSEmulator, operation: str, request: dict[str, Any]) -> tuple[Any, bytes]:
    """Call *operation* through a real client; return the parsed answer and the raw body."""
    client = aws.client(SERVICE[operation], **ONE_TRY)
    raw: list[bytes] = []

    def keep(response_dict: dict[str, Any], **_: Any) -> None:
        body = response_dict.get("body")
        if isinstance(body, bytes):
            raw.append(body)

    client.meta.events.register("before-parse", keep)
    response = getattr(client, snake(operation))(**request)
    response.pop("ResponseMetadata", None)
    return response, raw[0] if raw else b""


def test_every_implemented_operation_is_listed_with_requests() -> None:
    """The table of requests below covers every operation the emulator serves."""
    assert set(CALLS) == {operation for _, operation in OPERATIONS}


@pytest.mark.parametrize(
    ("operation", "request_"),
    [(operation, request) for operation, requests in CALLS.items() for request in requests],
)
def test_every_answer_matches_botocores_output_shape(
    aws: AWSEmulator, operation: str, request_: dict[str, Any]
) -> None:
    """Each default answer, as sent on the wire, has only modelled members of the right types."""
    output = operation_model(SERVICE[operation], operation).output_shape
    assert output is not None
    response, raw = call(aws, operation, request_)
    payload = output.serialization.get("payload")
    if payload is None:  # JSON protocols: the body is the output structure itself
        report = ParamValidator().validate(json.loads(raw), output)
        assert not report.has_errors(), report.generate_report()
        assert response  # and botocore read it
    else:  # REST with a blob payload: the headers are the structure, the body the model's JSON
        body = response.pop(payload).read()
        report = ParamValidator().validate({**response, payload: body}, output)
        assert not report.has_errors(), report.generate_report()
        assert isinstance(json.loads(body), dict)


def test_answers_line_up_with_their_requests(aws: AWSEmulator) -> None:
    """One toxicity result per segment, the adapter echoed, the images asked for."""
    toxic, _ = call(aws, "DetectToxicContent", CALLS["DetectToxicContent"][1])
    assert len(toxic["ResultList"]) == 10
    labels, _ = call(aws, "DetectModerationLabels", CALLS["DetectModerationLabels"][1])
    assert labels["ProjectVersion"] == ADAPTER
    txt2img, _ = call(aws, "InvokeEndpoint", CALLS["InvokeEndpoint"][0])
    assert len(json.loads(txt2img["Body"].read())["generated_images"]) == 3
    nova, _ = call(aws, "InvokeModel", CALLS["InvokeModel"][0])
    assert len(json.loads(nova["body"].read())["images"]) == 2
    sd35, _ = call(aws, "InvokeModel", CALLS["InvokeModel"][1])
    assert json.loads(sd35["body"].read())["seeds"] == [4]


@pytest.mark.parametrize(
    ("service", "method", "kwargs", "status"),
    [
        ("rekognition", "detect_labels", {"Image": {"Bytes": b"x"}}, 400),
        ("comprehend", "detect_sentiment", {"Text": "x", "LanguageCode": "en"}, 400),
        ("sagemaker-runtime", "invoke_endpoint_async", ASYNC, 404),
        ("bedrock-runtime", "converse", {"modelId": NOVA, "messages": []}, 404),
    ],
)  # fmt: skip
def test_an_operation_not_implemented_is_an_unknown_operation_error(
    aws: AWSEmulator, service: str, method: str, kwargs: dict[str, Any], status: int
) -> None:
    """Never 200 with another operation's body: AWS's UnknownOperationException."""
    client = aws.client(service, **ONE_TRY)
    with pytest.raises(ClientError) as raised:
        getattr(client, method)(**kwargs)
    assert raised.value.response["Error"]["Code"] == "UnknownOperationException"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == status


def modelled(operation: str) -> dict[str, int | None]:
    """The operation's errors in botocore's model, with their HTTP status where modelled."""
    shapes = operation_model(SERVICE[operation], operation).error_shapes
    return {s.name: s.metadata.get("error", {}).get("httpStatusCode") for s in shapes}


def fault_answers(aws: AWSEmulator, operation: str, faults: Faults, tries: int) -> list[Any]:
    aws.faults(operation, faults)
    errors = []
    for _ in range(tries):
        with pytest.raises(ClientError) as raised:
            call(aws, operation, CALLS[operation][0])
        errors.append(raised.value.response)
    return errors


@pytest.mark.parametrize("operation", list(CALLS))
def test_server_errors_are_the_operations_own_5xx_errors(aws: AWSEmulator, operation: str) -> None:
    """An injected server error is one the model lists for the operation, at its status."""
    errors = modelled(operation)
    for response in fault_answers(aws, operation, Faults(error_rate=1.0), tries=8):
        code = response["Error"]["Code"]
        status = response["ResponseMetadata"]["HTTPStatusCode"]
        assert code in errors
        assert status >= 500
        assert errors[code] in (None, status)


@pytest.mark.parametrize(
    ("operation", "expected"),
    [
        (
            "DetectModerationLabels",
            {"ThrottlingException", "ProvisionedThroughputExceededException"},
        ),
        ("DetectToxicContent", {"TooManyRequestsException"}),
        ("ClassifyDocument", {"TooManyRequestsException"}),
        ("InvokeEndpoint", {"ThrottlingException"}),
        ("InvokeModel", {"ThrottlingException"}),
    ],
)
def test_throttling_uses_the_services_own_code(
    aws: AWSEmulator, operation: str, expected: set[str]
) -> None:
    """Rekognition's own two, Comprehend's TooManyRequests, AWS's common code elsewhere."""
    answers = fault_answers(aws, operation, Faults(throttle_rate=1.0), tries=8)
    codes = {response["Error"]["Code"] for response in answers}
    assert codes <= expected
    service_errors = {s.name for s in service_model(SERVICE[operation]).error_shapes}
    assert codes <= service_errors | {"ThrottlingException"}


def test_the_sagemaker_fault_codes_come_from_its_model(aws: AWSEmulator) -> None:
    """InternalFailure / ServiceUnavailable / InternalDependencyException, and ModelError."""
    answers = fault_answers(aws, "InvokeEndpoint", Faults(error_rate=1.0), tries=12)
    codes = {response["Error"]["Code"] for response in answers}
    assert codes <= {"InternalFailure", "ServiceUnavailable", "InternalDependencyException"}
    assert len(codes) >= 2
    (model_error,) = fault_answers(
        aws, "InvokeEndpoint", Faults(error_rate=1.0, error_code="ModelError"), tries=1
    )
    assert model_error["Error"]["Code"] == "ModelError"
    assert model_error["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert model_error["OriginalStatusCode"] == 500


def test_an_error_code_the_operation_does_not_have_is_refused(aws: AWSEmulator) -> None:
    """Faults cannot make a service say something it never says."""
    with pytest.raises(ValueError, match="not an error of DetectToxicContent"):
        aws.faults("DetectToxicContent", Faults(error_code="ModelError"))
    with pytest.raises(ValueError, match="does not implement"):
        aws.respond("DetectLabels", {})


def test_scripted_fates_come_in_order_then_the_rates(aws: AWSEmulator) -> None:
    """A script plays once, in order; after it, the rates decide."""
    aws.faults("ClassifyDocument", Faults(script=["throttle", "answer", "error"]))
    check = ComprehendClassifier(
        aws.client("comprehend", **ONE_TRY), ENDPOINT, unsafe_classes={"UNSAFE"}
    )
    outcomes = []
    for _ in range(4):
        try:
            check.classify("a prompt")
            outcomes.append("answer")
        except ThrottledError:
            outcomes.append("throttle")
        except ServiceUnavailableError:
            outcomes.append("error")
    assert outcomes == ["throttle", "answer", "error", "answer"]
    counts = aws.counts("ClassifyDocument")
    assert (counts.received, counts.answered, counts.throttled, counts.errors) == (4, 2, 1, 1)


def test_every_injected_fault_reaches_each_adapter_as_a_service_error(aws: AWSEmulator) -> None:
    """Through the adapters, injected errors come out translated, with the service's code."""
    aws.faults(None, Faults(error_rate=1.0))
    request = GenerationRequest(prompt="x")
    runs: list[Callable[[], object]] = [
        lambda: RekognitionModerator(aws.client("rekognition", **ONE_TRY)).detect(
            b"x", min_confidence=50
        ),
        lambda: ComprehendToxicity(aws.client("comprehend", **ONE_TRY)).classify("x"),
        lambda: SageMakerGenerator(aws.client("sagemaker-runtime", **ONE_TRY), "sd").generate(
            request
        ),
        lambda: BedrockGenerator(aws.client("bedrock-runtime", **ONE_TRY), NOVA).generate(request),
    ]
    for run in runs:
        with pytest.raises(ServiceUnavailableError) as raised:
            run()
        assert raised.value.code in modelled(raised.value.operation)


def test_the_default_generators_answer_real_pictures(aws: AWSEmulator) -> None:
    """The default InvokeEndpoint and InvokeModel answers decode as JPEG and PNG images."""
    sagemaker = SageMakerGenerator(aws.client("sagemaker-runtime", **ONE_TRY), "sd")
    bedrock = BedrockGenerator(aws.client("bedrock-runtime", **ONE_TRY), SD35)
    made = sagemaker.generate(GenerationRequest(prompt="x", images=2, seed=3))
    assert [(i.format, i.seed) for i in made.images] == [("JPEG", 3), ("JPEG", 4)]
    assert [i.format for i in bedrock.generate(GenerationRequest(prompt="x")).images] == ["PNG"]


def test_a_thrown_model_error_keeps_the_containers_message(aws: AWSEmulator) -> None:
    """ModelError through the adapter: a ServiceError with the container's status."""
    aws.faults("InvokeEndpoint", Faults(error_rate=1.0, error_code="ModelError"))
    generator = SageMakerGenerator(aws.client("sagemaker-runtime", **ONE_TRY), "sd")
    with pytest.raises(ServiceError) as raised:
        generator.generate(GenerationRequest(prompt="x"))
    assert raised.value.code == "ModelError"
    assert "the model container answered 500" in str(raised.value)
