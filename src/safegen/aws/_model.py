"""What botocore's service models say, for checking settings and answering as AWS does.

The adapters validate settings (an endpoint ARN, an endpoint name, a model ID) against the
limits of the request member they end up in, read from the service model botocore ships, so
the rule is AWS's own rather than a copy of it. The emulator reads its error codes and output
shapes from here too.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs

from safegen.errors import ConfigurationError

if TYPE_CHECKING:
    from botocore.model import OperationModel, ServiceModel, Shape

__all__ = [
    "check_name",
    "check_setting",
    "instance_of",
    "member_shape",
    "operation_model",
    "service_model",
]


@functools.cache
def service_model(service: str) -> ServiceModel:
    """Return botocore's model of *service* (e.g. ``"rekognition"``), loaded once."""
    import botocore.session

    return botocore.session.get_session().get_service_model(service)


def operation_model(service: str, operation: str) -> OperationModel:
    """Return botocore's model of one operation, e.g. ``("comprehend", "ClassifyDocument")``."""
    return service_model(service).operation_model(operation)


def member_shape(service: str, operation: str, path: str) -> Shape:
    """Return the shape of a request member, by its dotted path in the operation's input."""
    shape: Any = operation_model(service, operation).input_shape
    for name in path.split("."):
        shape = shape.members[name]
    result: Shape = shape
    return result


def check_setting(value: object, *, service: str, operation: str, member: str, setting: str) -> str:
    """Check a string setting against the request member it is sent as; return it.

    :param member: the member's path in the operation's input, e.g.
        ``"HumanLoopConfig.FlowDefinitionArn"``.
    :param setting: the setting's name, for the message.
    :raises ConfigurationError: not a string, or outside the member's length, pattern or enum.
    """
    shape = member_shape(service, operation, member)
    where = f"{setting}: {service} {operation} {member}"
    if not isinstance(value, str):
        raise ConfigurationError(f"{where} must be a string, got {type(value).__name__}")
    limits = shape.metadata
    low, high = limits.get("min", 0), limits.get("max")
    if len(value) < low or (high is not None and len(value) > high):
        span = f"{low} to {high}" if high is not None else f"at least {low}"
        raise ConfigurationError(f"{where} must be {span} characters, got {len(value)}: {value!r}")
    pattern = limits.get("pattern")
    if pattern is not None and re.fullmatch(pattern, value) is None:
        raise ConfigurationError(f"{where} does not match {pattern!r}: {value!r}")
    enum = getattr(shape, "enum", None)
    if enum and value not in enum:
        raise ConfigurationError(f"{where} must be one of {sorted(enum)}, got {value!r}")
    return value


def check_name(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """Check, as an attrs validator, that a check's or generator's name is a non-empty string."""
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(f"{attribute.name}: must be a non-empty string, got {value!r}")


def instance_of(
    kind: type | tuple[type, ...], what: str
) -> Callable[[object, attrs.Attribute[Any], object], None]:
    """Return an attrs validator raising :class:`ConfigurationError` for a setting not a *kind*."""

    def check(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if not isinstance(value, kind):
            raise ConfigurationError(
                f"{attribute.name}: expected {what}, got {type(value).__name__}"
            )

    return check
