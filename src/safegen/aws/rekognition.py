"""Amazon Rekognition content moderation: reading ``DetectModerationLabels`` responses."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from safegen.aws._convert import make_converter, structure
from safegen.errors import MalformedResponseError
from safegen.labels import ContentType, ModerationLabel

__all__ = ["ModerationResponse", "parse_moderation_response"]

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

    Fields the service model marks optional may be missing; anything of the wrong shape
    raises, so a broken response can never pass as an image with no labels.

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
    labels = response.get("ModerationLabels", [])
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
        model_version=_optional_str(response, "ModerationModelVersion"),
        project_version=_optional_str(response, "ProjectVersion"),
    )


def _optional_str(response: Mapping[str, Any], key: str) -> str | None:
    value = response.get(key)
    if value is not None and not isinstance(value, str):
        raise MalformedResponseError(f"DetectModerationLabels: {key} must be a string")
    return value
