"""Amazon Rekognition content moderation: the image backend and its response reader."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from safegen.aws._client import Call, Exchange, instrument, make_client, run
from safegen.aws._convert import make_converter, structure
from safegen.aws._model import check_name, check_setting, instance_of, member_shape
from safegen.errors import (
    ConfigurationError,
    InvalidImageError,
    MalformedResponseError,
    ServiceError,
)
from safegen.image import HumanLoop, ImageReport, ImageSource, S3Object
from safegen.labels import ContentType, ModerationLabel
from safegen.taxonomy import REKOGNITION_V7, Taxonomy

if TYPE_CHECKING:
    import boto3

__all__ = [
    "HumanReview",
    "ModerationResponse",
    "RekognitionModerator",
    "parse_moderation_response",
]

_converter = make_converter()


@attrs.frozen
class ModerationResponse:
    """What one ``DetectModerationLabels`` call reported, in safegen's types.

    :param labels: the moderation labels, each with its parent and level.
    :param content_types: the content types (``Animated``, ``Illustrated``) reported.
    :param model_version: ``ModerationModelVersion``, e.g. ``"7.0"``; ``None`` if absent.
    :param project_version: the custom moderation adapter that answered, if any. Rekognition
        leaves it out when the adapter sent has expired and the base model answered instead.
    """

    labels: tuple[ModerationLabel, ...] = ()
    content_types: tuple[ContentType, ...] = ()
    model_version: str | None = None
    project_version: str | None = None


def parse_moderation_response(response: Mapping[str, Any]) -> ModerationResponse:
    """Read a ``DetectModerationLabels`` response (as boto3 returns it, or its JSON).

    Only a well-formed answer is read: it names its ``ModerationModelVersion`` and carries a
    ``ModerationLabels`` list (empty when nothing was found), each label with a ``Name`` and a
    finite ``Confidence`` from 0 to 100. botocore drops JSON nulls and turns a body that is not
    JSON into ``{}`` or ``{"message": ...}``, so a missing list is how a broken answer looks:
    it is refused, never read as "no labels". ``ContentTypes`` may be absent (older models do
    not send it); when present it must be a list of well-formed content types.

    :raises MalformedResponseError: the response does not have the documented shape.

    >>> r = parse_moderation_response({
    ...     "ModerationLabels": [{"Confidence": 99.5, "Name": "Smoking",
    ...         "ParentName": "Drug & Tobacco Paraphernalia & Use", "TaxonomyLevel": 3}],
    ...     "ModerationModelVersion": "7.0"})
    >>> r.labels[0].name, r.model_version
    ('Smoking', '7.0')
    """
    if not isinstance(response, Mapping):
        raise MalformedResponseError(
            f"DetectModerationLabels: expected a mapping, got {type(response).__name__}"
        )
    model_version = _optional_str(response, "ModerationModelVersion")
    if model_version is None:
        raise MalformedResponseError(
            "DetectModerationLabels: no ModerationModelVersion, so not a moderation response"
        )
    if "ModerationLabels" not in response:
        raise MalformedResponseError(
            "DetectModerationLabels: no ModerationLabels list (missing or null), "
            "so the answer cannot say that nothing was found"
        )
    labels = response["ModerationLabels"]
    content_types = response.get("ContentTypes", [])
    for key, value in (("ModerationLabels", labels), ("ContentTypes", content_types)):
        if not isinstance(value, list):
            raise MalformedResponseError(
                f"DetectModerationLabels: {key} must be a list, got {type(value).__name__}"
            )
    return ModerationResponse(
        labels=tuple(
            structure(_converter, item, ModerationLabel, f"ModerationLabels[{i}]")
            for i, item in enumerate(labels)
        ),
        content_types=tuple(
            structure(_converter, item, ContentType, f"ContentTypes[{i}]")
            for i, item in enumerate(content_types)
        ),
        model_version=model_version,
        project_version=_optional_str(response, "ProjectVersion"),
    )


def _optional_str(response: Mapping[str, Any], key: str) -> str | None:
    value = response.get(key)
    if value is not None and not isinstance(value, str):
        raise MalformedResponseError(f"DetectModerationLabels: {key} must be a string")
    return value


def _content_classifiers(values: Iterable[str]) -> tuple[str, ...]:
    chosen = (values,) if isinstance(values, str) else tuple(values)
    shape: Any = member_shape(
        "rekognition", "DetectModerationLabels", "HumanLoopConfig.DataAttributes.ContentClassifiers"
    )
    known = tuple(shape.member.enum)
    unknown = sorted(set(chosen) - set(known))
    if unknown:
        raise ConfigurationError(f"content_classifiers: unknown {unknown}; known: {sorted(known)}")
    return chosen


def _flow_definition(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    check_setting(
        value,
        service="rekognition",
        operation="DetectModerationLabels",
        member="HumanLoopConfig.FlowDefinitionArn",
        setting=attribute.name,
    )
    if not isinstance(value, str) or not value.startswith("arn:"):
        raise ConfigurationError(f"{attribute.name}: not an ARN: {value!r}")


def _adapter(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None:
        check_setting(
            value,
            service="rekognition",
            operation="DetectModerationLabels",
            member="ProjectVersion",
            setting=attribute.name,
        )


def _optional_review(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and not isinstance(value, HumanReview):
        raise ConfigurationError(
            f"{attribute.name}: expected a HumanReview or None, got {type(value).__name__}"
        )


@attrs.frozen
class HumanReview:
    """Amazon Augmented AI (A2I) review of moderation results, started by Rekognition.

    :param flow_definition_arn: the A2I flow definition; its activation conditions decide
        which images go to a person.
    :param content_classifiers: what you attest about the images
        (``FreeOfPersonallyIdentifiableInformation``, ``FreeOfAdultContent``).
    :raises ConfigurationError: an unknown content classifier or a malformed ARN.
    """

    flow_definition_arn: str = attrs.field(validator=_flow_definition)
    content_classifiers: tuple[str, ...] = attrs.field(default=(), converter=_content_classifiers)


@attrs.frozen(eq=False)
class _Rekognition:
    """The settings and the one ``DetectModerationLabels`` exchange both backends share."""

    _client: Any = attrs.field(converter=instrument, repr=False)
    adapter_arn: str | None = attrs.field(default=None, kw_only=True, validator=_adapter)
    human_review: HumanReview | None = attrs.field(
        default=None, kw_only=True, validator=_optional_review
    )
    taxonomy: Taxonomy = attrs.field(
        default=REKOGNITION_V7, kw_only=True, validator=instance_of(Taxonomy, "a Taxonomy")
    )
    name: str = attrs.field(default="rekognition", kw_only=True, validator=check_name)

    def _detect(self, image: ImageSource, min_confidence: float) -> Exchange[ImageReport]:
        """Build the request, call (with the human loop first, if any), read the answer."""
        request: dict[str, Any] = {"Image": _image(image), "MinConfidence": float(min_confidence)}
        if self.adapter_arn is not None:
            request["ProjectVersion"] = self.adapter_arn
        warnings = []
        raw = None
        if self.human_review is not None:
            try:
                loop = _loop_config(self.human_review)
                raw = yield _call({**request, "HumanLoopConfig": loop})
            except ServiceError as error:
                if error.code != "HumanLoopQuotaExceededException":
                    raise
                warnings.append(
                    "the human review quota is exhausted: moderated without a human loop"
                )
        if raw is None:
            raw = yield _call(request)
        response = parse_moderation_response(raw)
        if self.adapter_arn is not None and response.project_version is None:
            warnings.append(
                f"adapter {self.adapter_arn} was not used (it has expired): the base model answered"
            )
        major = self.taxonomy.version.split(".")[0]
        if response.model_version is not None and response.model_version.split(".")[0] != major:
            warnings.append(
                f"moderation model {response.model_version} is not the {self.taxonomy.version} "
                "this taxonomy describes: unknown labels are placed under their parents"
            )
        return ImageReport(
            labels=response.labels,
            content_types=response.content_types,
            model_version=response.model_version,
            adapter_version=response.project_version,
            human_loop=_human_loop(raw.get("HumanLoopActivationOutput")),
            warnings=tuple(warnings),
        )


def _call(request: dict[str, Any]) -> Call:
    return Call("rekognition", "DetectModerationLabels", request)


@attrs.frozen(eq=False)
class RekognitionModerator(_Rekognition):
    """Amazon Rekognition ``DetectModerationLabels`` as an image backend.

    :param client: a boto3 ``rekognition`` client (see :meth:`from_session`).
    :param adapter_arn: a Custom Moderation adapter (``ProjectVersion``) to use.
    :param human_review: start an A2I human loop when its conditions are met.
    :param taxonomy: the taxonomy whose model version this code knows.
    :param name: the backend's name in verdicts.
    :raises ConfigurationError: a setting that cannot be used (an adapter ARN that is not
        one, a name that is not a non-empty string).

    When an adapter was sent but the response names none, the adapter has expired and
    Rekognition answered with its base model: the report carries a warning saying so. A model
    version the taxonomy does not know is a warning too, not a failure. When the account's
    human-review quota is exhausted, the image is moderated without a human loop, and the
    report says so. Frozen: use ``attrs.evolve`` for a changed copy.
    """

    @classmethod
    def from_session(
        cls,
        session: boto3.Session | None = None,
        *,
        region_name: str | None = None,
        max_attempts: int = 5,
        adapter_arn: str | None = None,
        human_review: HumanReview | None = None,
        taxonomy: Taxonomy = REKOGNITION_V7,
        name: str = "rekognition",
    ) -> RekognitionModerator:
        """Build the backend with a client that retries throttling (botocore standard mode).

        :param max_attempts: attempts in all, the first included.

        The other keywords are the constructor's.
        """
        client = make_client(
            "rekognition", session, region_name=region_name, max_attempts=max_attempts
        )
        return cls(
            client,
            adapter_arn=adapter_arn,
            human_review=human_review,
            taxonomy=taxonomy,
            name=name,
        )

    def detect(self, image: ImageSource, *, min_confidence: float) -> ImageReport:
        """Ask Rekognition for the moderation labels of *image*.

        :raises ServiceError: the call failed; the AWS error code is kept.
        :raises MalformedResponseError: the response is not of the documented shape.
        """
        return run(self._client, self._detect(image, min_confidence))


def _loop_config(review: HumanReview) -> dict[str, Any]:
    # Loop names must be unique, lower-case alphanumerics and hyphens, 63 at most.
    config: dict[str, Any] = {
        "HumanLoopName": f"safegen-{uuid.uuid4().hex}",
        "FlowDefinitionArn": review.flow_definition_arn,
    }
    if review.content_classifiers:
        config["DataAttributes"] = {"ContentClassifiers": list(review.content_classifiers)}
    return config


def _image(image: ImageSource) -> dict[str, Any]:
    if isinstance(image, S3Object):
        s3: dict[str, str] = {"Bucket": image.bucket, "Name": image.key}
        if image.version is not None:
            s3["Version"] = image.version
        return {"S3Object": s3}
    if isinstance(image, bytes | bytearray | memoryview):
        return {"Bytes": bytes(image)}
    raise InvalidImageError(
        f"image: expected bytes or S3Object, got {type(image).__name__}", limit="type"
    )


def _human_loop(raw: object) -> HumanLoop | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise MalformedResponseError("HumanLoopActivationOutput must be an object")
    reasons = raw.get("HumanLoopActivationReasons") or []
    conditions = raw.get("HumanLoopActivationConditionsEvaluationResults")
    if not isinstance(reasons, list) or not all(isinstance(r, str) for r in reasons):
        raise MalformedResponseError("HumanLoopActivationReasons must be a list of strings")
    return HumanLoop(
        arn=raw.get("HumanLoopArn"),
        reasons=tuple(reasons),
        conditions=conditions if isinstance(conditions, str) else None,
    )
