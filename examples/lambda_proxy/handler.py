"""The seed architecture's REST proxy: an AWS Lambda handler for API Gateway, built on safegen.

POST a JSON body ``{"prompt": "...", "negative_prompt": "...", "images": 1, "width": 512,
"height": 512, "seed": 42}`` (only ``prompt`` is required). The answer is the pipeline result's
JSON: each image's status (safe, redacted, withheld) with its bytes in base64, the warnings,
and the time each stage took. Status codes: 200 images made; 400 a malformed request (any
event, body or field this proxy cannot read, with a short reason); 413 a body over 64 KiB;
422 the prompt was rejected; 500 the function is misconfigured (a generic message; the
detail is in the function's log); 502 the generator failed.

Configuration, from the environment, validated when the function starts (a bad value is a
500 for every request and a detailed line in the log, never a 4xx):

- ``SAFEGEN_GENERATOR``: ``sagemaker:ENDPOINT_NAME`` or ``bedrock:MODEL_ID`` (required);
- ``SAFEGEN_SAGEMAKER_CODEC``: ``txt2img`` (default) or ``stability``;
- ``SAFEGEN_POLICY``: a policy file in the deployment package (default: Rekognition's 50);
- ``SAFEGEN_TOXICITY``: ``on`` to check prompts with Comprehend ``DetectToxicContent``, or
  ``off`` (default);
- ``SAFEGEN_ON_UNSAFE_IMAGE``: ``blur`` (default), ``withhold`` or ``regenerate``;
- ``SAFEGEN_MAX_IMAGES``: the most images one request may ask for, 1 to 16 (default 4).

Any other ``SAFEGEN_`` variable is a misconfiguration too: a misspelt name must not
silently turn a check off.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import re
import traceback
from collections.abc import Mapping
from typing import Any, Literal

import attrs

from safegen import (
    ConfigurationError,
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

MAX_BODY_BYTES = 64 * 1024
"""The largest request body read (a prompt is a few hundred bytes)."""
MAX_IMAGES_LIMIT = 16
"""The highest ``SAFEGEN_MAX_IMAGES`` accepted."""
DEFAULT_MAX_IMAGES = 4
_MIN_SIDE, _MAX_SIDE = 64, 2048
_MAX_SEED = 2_147_483_646  # the smallest seed range of the supported generators (Bedrock)
_FIELDS = ("prompt", "negative_prompt", "images", "width", "height", "seed")
_VARIABLES = frozenset(
    {
        "SAFEGEN_GENERATOR",
        "SAFEGEN_SAGEMAKER_CODEC",
        "SAFEGEN_POLICY",
        "SAFEGEN_TOXICITY",
        "SAFEGEN_ON_UNSAFE_IMAGE",
        "SAFEGEN_MAX_IMAGES",
    }
)
_ENDPOINT_NAME = re.compile(r"[a-zA-Z0-9](?:-*[a-zA-Z0-9]){0,62}")
_MODEL_ID = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9._:/-]{0,2047}")
_MISCONFIGURED = "the service is not configured correctly; its operators have been told"


class BadRequestError(ValueError):
    """A request this proxy cannot read; the message is safe to send back."""

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@attrs.frozen
class Settings:
    """What the environment configures, every value validated.

    :param generator: ``"sagemaker"`` or ``"bedrock"``.
    :param target: the SageMaker endpoint name or the Bedrock model id.
    :param codec: the SageMaker container: ``"txt2img"`` or ``"stability"``.
    :param policy: the moderation policy for images.
    :param toxicity: whether prompts are checked with Comprehend too.
    :param on_unsafe_image: ``"blur"``, ``"withhold"`` or ``"regenerate"``.
    :param max_images: the most images one request may ask for.
    """

    generator: Literal["sagemaker", "bedrock"]
    target: str
    codec: Literal["txt2img", "stability"] = "txt2img"
    policy: ModerationPolicy = attrs.field(factory=ModerationPolicy)
    toxicity: bool = False
    on_unsafe_image: Literal["blur", "withhold", "regenerate"] = "blur"
    max_images: int = DEFAULT_MAX_IMAGES


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    value = env.get(name, choices[0])
    if value not in choices:
        raise ConfigurationError(f"{name} must be {' or '.join(choices)}, got {value!r}")
    return value


def load_settings(env: Mapping[str, str]) -> Settings:
    """Validate the environment's configuration; nothing is called.

    :raises ConfigurationError: a variable is missing, unknown or has a bad value (the
        message names it); a policy file that cannot be used is named too.
    """
    unknown = sorted(k for k in env if k.startswith("SAFEGEN_") and k not in _VARIABLES)
    if unknown:
        raise ConfigurationError(f"unknown setting(s) {', '.join(unknown)}: misspelt?")
    kind, _, target = env.get("SAFEGEN_GENERATOR", "").partition(":")
    pattern = {"sagemaker": _ENDPOINT_NAME, "bedrock": _MODEL_ID}.get(kind)
    if pattern is None or not pattern.fullmatch(target):
        raise ConfigurationError(
            "SAFEGEN_GENERATOR must be sagemaker:ENDPOINT_NAME or bedrock:MODEL_ID, "
            f"got {env.get('SAFEGEN_GENERATOR', '')!r}"
        )
    codec = _choice(env, "SAFEGEN_SAGEMAKER_CODEC", ("txt2img", "stability"))
    toxicity = _choice(env, "SAFEGEN_TOXICITY", ("off", "on")) == "on"
    outcome = _choice(env, "SAFEGEN_ON_UNSAFE_IMAGE", ("blur", "withhold", "regenerate"))
    raw_max = env.get("SAFEGEN_MAX_IMAGES", str(DEFAULT_MAX_IMAGES))
    if not (raw_max.isascii() and raw_max.isdigit() and 1 <= int(raw_max) <= MAX_IMAGES_LIMIT):
        raise ConfigurationError(
            f"SAFEGEN_MAX_IMAGES must be a whole number from 1 to {MAX_IMAGES_LIMIT}, "
            f"got {raw_max!r}"
        )
    policy = ModerationPolicy()
    policy_file = env.get("SAFEGEN_POLICY")
    if policy_file is not None:
        policy = _load_policy(policy_file)
    return Settings(
        generator=kind,  # type: ignore[arg-type]  # one of the two keys just above
        target=target,
        codec=codec,  # type: ignore[arg-type]  # checked by _choice
        policy=policy,
        toxicity=toxicity,
        on_unsafe_image=outcome,  # type: ignore[arg-type]  # checked by _choice
        max_images=int(raw_max),
    )


def _load_policy(path: str) -> ModerationPolicy:
    where = f"SAFEGEN_POLICY {path!r}"
    try:
        if not os.path.isfile(path):  # not a directory, FIFO or device: never opened
            raise ConfigurationError(f"{where}: not a regular file")
        return ModerationPolicy.from_toml(path)
    except ConfigurationError:
        raise
    except Exception as error:
        # Whatever a parser or validator raises (UnicodeDecodeError, RecursionError on deeply
        # nested TOML, OverflowError on a huge number, a bug's KeyError) names the file.
        raise ConfigurationError(f"{where}: {type(error).__name__}: {error}") from error


def build_pipeline(env: Mapping[str, str]) -> Pipeline:
    """Build the pipeline the environment describes (clients are created, nothing called).

    :raises ConfigurationError: see :func:`load_settings`.
    """
    return _build(load_settings(env))


def _build(settings: Settings) -> Pipeline:
    from safegen.aws import (
        STABILITY,
        TXT2IMG,
        BedrockGenerator,
        ComprehendToxicity,
        RekognitionModerator,
        SageMakerGenerator,
    )

    generator: BedrockGenerator | SageMakerGenerator
    if settings.generator == "sagemaker":
        codec = STABILITY if settings.codec == "stability" else TXT2IMG
        generator = SageMakerGenerator.from_session(settings.target, codec=codec)
    else:
        generator = BedrockGenerator.from_session(settings.target)
    classifiers = [ComprehendToxicity.from_session()] if settings.toxicity else []
    return Pipeline(
        PromptModerator(rules=RuleFilter.default(), classifiers=classifiers),
        generator,
        ImageModerator(
            RekognitionModerator.from_session(), settings.policy, preflight=Preflight(repair=True)
        ),
        on_unsafe_image=settings.on_unsafe_image,
    )


@attrs.define
class _Container:
    """What one Lambda container knows: its validated settings and, once built, its pipeline."""

    settings: Settings | None = None
    pipeline: Pipeline | None = None

    def ready(self) -> Pipeline | None:
        """Return the pipeline, building it on first use; ``None`` (logged) if it cannot be."""
        if self.settings is None:
            _log.error("proxy misconfigured: see the cold-start error above; answering 500")
            return None
        if self.pipeline is None:
            try:
                self.pipeline = _build(self.settings)
            except Exception:
                _log.exception("proxy misconfigured: the pipeline could not be built")
                return None
        return self.pipeline


def _cold_start(env: Mapping[str, str]) -> _Container:
    """Validate the configuration once, when the container starts; log what is wrong.

    Never raises (but for ``KeyboardInterrupt`` and ``SystemExit``): whatever goes wrong
    while the settings are read, foreseen or not, is logged in detail here and makes every
    request a generic 500, instead of an import error that API Gateway turns into a 502.
    """
    try:
        settings = load_settings(env)
    except ConfigurationError as error:
        _log.error("proxy misconfigured: %s", error)  # the detail stays server-side
        return _Container()
    except Exception:  # not foreseen: still the function's fault, still a 500
        _log.exception("proxy misconfigured: reading the settings failed unexpectedly")
        return _Container()
    container = _Container(settings)
    container.ready()  # build the clients during the init phase, outside any request
    return container


_container = _cold_start(os.environ)


def handler(
    event: object,
    context: object,
    pipeline: Pipeline | None = None,
    *,
    max_images: int = DEFAULT_MAX_IMAGES,
) -> dict[str, Any]:
    """Handle one API Gateway proxy event (REST API or HTTP API); never raises.

    :param pipeline: a ready pipeline (tests, other deployments); by default the one the
        environment configures.
    :param max_images: the most images a request may ask for, with *pipeline*; otherwise
        ``SAFEGEN_MAX_IMAGES``.
    """
    if pipeline is None:
        pipeline = _container.ready()
        if pipeline is None or _container.settings is None:
            return _response(500, {"error": _MISCONFIGURED})
        max_images = _container.settings.max_images
    try:
        request = parse_event(event, max_images=max_images)
    except BadRequestError as error:
        return _response(error.status, {"error": str(error)})
    try:
        result = pipeline.run(**request)
    except (InvalidPromptError, GenerationRequestError) as error:
        return _response(400, {"error": str(error)})
    except Exception as error:  # a bug or an outage the pipeline did not foresee: ours
        # Where it failed, not what it said: a message may quote the prompt.
        where = "".join(traceback.format_tb(error.__traceback__))
        _log.error("request failed unexpectedly: %s\n%s", type(error).__name__, where)
        return _response(500, {"error": "internal error"})
    status = {"ok": 200, "rejected": 422, "failed": 502}[result.status]
    _log.info("request done: %s, %d image(s)", result.status, len(result.images))
    return _response(status, result.to_dict())


def _body_bytes(event: Mapping[str, Any]) -> bytes:
    body = event.get("body")
    encoded = event.get("isBase64Encoded", False)
    if encoded is not None and not isinstance(encoded, bool):
        raise BadRequestError('"isBase64Encoded" must be true or false')
    if body is None:
        raise BadRequestError("the request has no body")
    if not isinstance(body, str):
        raise BadRequestError("the body must be JSON text")
    if len(body) > (4 * MAX_BODY_BYTES // 3 + 4 if encoded else MAX_BODY_BYTES):
        raise BadRequestError(f"the body is over {MAX_BODY_BYTES:,} bytes", status=413)
    if encoded:
        try:
            raw = base64.b64decode(body.encode("ascii"), validate=True)
        except (UnicodeEncodeError, binascii.Error):
            raise BadRequestError("the body is not valid base64") from None
    else:
        try:
            raw = body.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: not text any client can send
            raise BadRequestError("the body is not valid Unicode") from None
    if len(raw) > MAX_BODY_BYTES:
        raise BadRequestError(f"the body is over {MAX_BODY_BYTES:,} bytes", status=413)
    return raw


def parse_event(event: object, *, max_images: int) -> dict[str, Any]:
    """Return the pipeline's arguments from an API Gateway proxy event.

    :raises BadRequestError: anything about the event, its body or a field that is not
        as documented; the message is short and names no content.
    """
    if not isinstance(event, Mapping):
        raise BadRequestError("the event is not an API Gateway proxy event")
    raw = _body_bytes(event)
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise BadRequestError("the body is not UTF-8") from None
    except RecursionError:
        raise BadRequestError("the body is nested too deeply") from None
    except ValueError:
        raise BadRequestError("the body must be JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("prompt"), str):
        raise BadRequestError('the body must be a JSON object with a "prompt" string')
    unknown = sorted(str(k) for k in data if k not in _FIELDS)
    if unknown:
        raise BadRequestError(f"unknown field {unknown[0][:40]!r}; the fields are {_FIELDS}")
    request: dict[str, Any] = {}
    for key in ("prompt", "negative_prompt"):
        if key in data:
            text = data[key]
            if not isinstance(text, str):
                raise BadRequestError(f'"{key}" must be a string')
            if not _is_unicode(text):  # "\ud800" in JSON: no client has such text
                raise BadRequestError(f'"{key}" is not valid Unicode')
            request[key] = text
    bounds = {
        "images": (1, max_images),
        "width": (_MIN_SIDE, _MAX_SIDE),
        "height": (_MIN_SIDE, _MAX_SIDE),
        "seed": (0, _MAX_SEED),
    }
    for key, (low, high) in bounds.items():
        if key in data:
            value = data[key]
            if isinstance(value, bool) or not isinstance(value, int):
                raise BadRequestError(f'"{key}" must be an integer')
            if not low <= value <= high:
                raise BadRequestError(f'"{key}" must be from {low} to {high}')
            request[key] = value
    return request


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _response(status: int, payload: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(payload),
    }
