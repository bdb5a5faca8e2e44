"""The seed architecture's REST proxy: an AWS Lambda handler for API Gateway, built on safegen.

POST a JSON body ``{"prompt": "...", "negative_prompt": "...", "images": 1, "width": 512,
"height": 512, "seed": 42}`` (only ``prompt`` is required). The answer is the pipeline result's
JSON: each image's status (safe, redacted, withheld) with its bytes in base64, the warnings,
and the time each stage took. Status codes: 200 images made, 400 a bad request, 422 the prompt
was rejected, 502 the generator failed.

Configuration, from the environment:

- ``SAFEGEN_GENERATOR``: ``sagemaker:ENDPOINT_NAME`` or ``bedrock:MODEL_ID`` (required);
- ``SAFEGEN_SAGEMAKER_CODEC``: ``txt2img`` (default) or ``stability``;
- ``SAFEGEN_POLICY``: a policy file in the deployment package (default: Rekognition's 50);
- ``SAFEGEN_TOXICITY``: ``on`` to check prompts with Comprehend ``DetectToxicContent``;
- ``SAFEGEN_ON_UNSAFE_IMAGE``: ``blur`` (default), ``withhold`` or ``regenerate``;
- ``SAFEGEN_MAX_IMAGES``: the most images one request may ask for (default 4).
"""

from __future__ import annotations

import base64
import json
import logging
import os
from collections.abc import Mapping
from typing import Any

from safegen import (
    GenerationRequestError,
    ImageModerator,
    InvalidPromptError,
    ModerationPolicy,
    Pipeline,
    Preflight,
    PromptModerator,
    RuleFilter,
)

_log = logging.getLogger("safegen.examples.lambda_proxy")
_pipeline: Pipeline | None = None  # built once per Lambda container, on the first request


def build_pipeline(env: Mapping[str, str]) -> Pipeline:
    """Build the pipeline the environment describes."""
    from safegen.aws import (
        STABILITY,
        TXT2IMG,
        BedrockGenerator,
        ComprehendToxicity,
        RekognitionModerator,
        SageMakerGenerator,
    )

    kind, _, target = env.get("SAFEGEN_GENERATOR", "").partition(":")
    generator: BedrockGenerator | SageMakerGenerator
    if kind == "sagemaker" and target:
        codec = STABILITY if env.get("SAFEGEN_SAGEMAKER_CODEC") == "stability" else TXT2IMG
        generator = SageMakerGenerator.from_session(target, codec=codec)
    elif kind == "bedrock" and target:
        generator = BedrockGenerator.from_session(target)
    else:
        raise ValueError("SAFEGEN_GENERATOR must be sagemaker:ENDPOINT or bedrock:MODEL_ID")
    policy_file = env.get("SAFEGEN_POLICY")
    policy = ModerationPolicy.from_toml(policy_file) if policy_file else ModerationPolicy()
    classifiers = [ComprehendToxicity.from_session()] if env.get("SAFEGEN_TOXICITY") == "on" else []
    outcome = env.get("SAFEGEN_ON_UNSAFE_IMAGE", "blur")
    if outcome not in ("blur", "withhold", "regenerate"):
        raise ValueError("SAFEGEN_ON_UNSAFE_IMAGE must be blur, withhold or regenerate")
    return Pipeline(
        PromptModerator(rules=RuleFilter.default(), classifiers=classifiers),
        generator,
        ImageModerator(
            RekognitionModerator.from_session(), policy, preflight=Preflight(repair=True)
        ),
        on_unsafe_image=outcome,  # type: ignore[arg-type]  # checked just above
    )


def handler(
    event: Mapping[str, Any], context: object, pipeline: Pipeline | None = None
) -> dict[str, Any]:
    """Handle one API Gateway proxy event (REST API or HTTP API)."""
    global _pipeline
    try:
        request = _parse(event, int(os.environ.get("SAFEGEN_MAX_IMAGES", "4")))
    except ValueError as error:
        return _response(400, {"error": str(error)})
    if pipeline is None:
        if _pipeline is None:
            _pipeline = build_pipeline(os.environ)
        pipeline = _pipeline
    try:
        result = pipeline.run(**request)
    except (InvalidPromptError, GenerationRequestError) as error:
        return _response(400, {"error": str(error)})
    status = {"ok": 200, "rejected": 422, "failed": 502}[result.status]
    _log.info("request done: %s, %d image(s)", result.status, len(result.images))
    return _response(status, result.to_dict())


def _parse(event: Mapping[str, Any], max_images: int) -> dict[str, Any]:
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        body = base64.b64decode(body).decode("utf-8", "replace")
    try:
        data = json.loads(body)
    except ValueError:
        raise ValueError("the body must be JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("prompt"), str):
        raise ValueError('the body must be a JSON object with a "prompt" string')
    request: dict[str, Any] = {"prompt": data["prompt"]}
    if isinstance(data.get("negative_prompt"), str):
        request["negative_prompt"] = data["negative_prompt"]
    for key in ("images", "width", "height", "seed"):
        if key in data:
            value = data[key]
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f'"{key}" must be an integer')
            request[key] = value
    if not 1 <= request.get("images", 1) <= max_images:
        raise ValueError(f'"images" must be from 1 to {max_images}')
    return request


def _response(status: int, payload: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(payload),
    }
