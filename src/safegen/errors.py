"""Every error safegen raises, in one tree.

::

    SafegenError                      anything safegen raises on purpose
    ├── ConfigurationError(ValueError)
    │                                 a setting of a service object that cannot be used
    ├── PolicyError(ValueError)       a moderation policy that cannot be used as written
    │   └── UnknownLabelError         a label name the taxonomy does not know (with a suggestion)
    ├── InvalidLabelError(ValueError) a moderation label or content type with impossible values
    ├── InvalidPromptError(ValueError) a prompt that cannot be moderated as given
    ├── InvalidImageError(ValueError) an image that cannot be moderated as given (names the limit)
    ├── GenerationRequestError(ValueError)
    │                                 a generation request the model cannot take (size, length)
    ├── MalformedResponseError(ValueError)
    │                                 a backend answered with something that is not its format
    ├── LocalModelError               an offline model that is not installed, damaged, or failing
    └── ServiceError                  a backend service call failed (keeps the AWS error code)
        ├── ThrottledError            throttled past the retries the client allows
        ├── ServiceUnavailableError   the service or endpoint is down, not ready, or unreachable
        ├── AccessDeniedError(PermissionError)
        │                             no permission, no credentials, or the feature is closed
        └── InvalidRequestError(ValueError)
                                      the service refused the request as malformed or too large

Catch :class:`SafegenError` to handle everything safegen raises; catch the builtin base
(``ValueError``, ``PermissionError``) where the meaning is the same as Python's own. Errors from
AWS keep the service's error code; adapters never let a bare botocore error out.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "AccessDeniedError",
    "ConfigurationError",
    "GenerationRequestError",
    "InvalidImageError",
    "InvalidLabelError",
    "InvalidPromptError",
    "InvalidRequestError",
    "LocalModelError",
    "MalformedResponseError",
    "PolicyError",
    "SafegenError",
    "ServiceError",
    "ServiceUnavailableError",
    "ThrottledError",
    "UnknownLabelError",
]


class SafegenError(Exception):
    """The root of every error safegen raises on purpose."""


class ConfigurationError(SafegenError, ValueError):
    """A setting of a service object (a moderator, pipeline, adapter) that cannot be used.

    Raised when the object is built, so a misconfiguration never waits for the first request;
    the message names the setting, e.g. ``on_failure``. Errors in a moderation policy itself
    are :class:`PolicyError`.
    """


class PolicyError(SafegenError, ValueError):
    """A moderation policy that cannot be used as written.

    The message names the offending entry, e.g. ``labels."Violence".block_at``.
    """


class UnknownLabelError(PolicyError):
    """A policy names a label the taxonomy does not know.

    :ivar name: the name as written in the policy.
    :ivar suggestions: the closest known names, best first (may be empty).
    :ivar renamed_to: when *name* is a label of an older taxonomy version, the
        label(s) that replaced it.
    """

    def __init__(
        self,
        name: str,
        *,
        where: str,
        suggestions: Sequence[str] = (),
        renamed_to: Sequence[str] = (),
    ) -> None:
        self.name = name
        self.suggestions = tuple(suggestions)
        self.renamed_to = tuple(renamed_to)
        if self.renamed_to:
            replacement = " or ".join(repr(n) for n in self.renamed_to)
            hint = f"; it is a Rekognition v6 label, replaced in v7 by {replacement}"
        elif self.suggestions:
            hint = f"; did you mean {self.suggestions[0]!r}?"
        else:
            hint = ""
        super().__init__(f"{where}: unknown moderation label {name!r}{hint}")


class InvalidLabelError(SafegenError, ValueError):
    """A moderation label or content type with impossible values (e.g. confidence 150)."""


class GenerationRequestError(SafegenError, ValueError):
    """A generation request the model cannot take: a size it cannot make, a body too large."""


class InvalidImageError(SafegenError, ValueError):
    """An image that cannot be moderated as given, and was not (or could not be) repaired.

    :ivar limit: which rule it broke: ``"type"``, ``"empty"``, ``"format"``, ``"corrupt"``
        (anything a decoder raised), ``"animated"``, ``"pixels"`` (the declared size or the
        memory a decode would take, read from the header), ``"min_side"``, ``"max_side"``,
        ``"bytes"``; ``"alpha"``, ``"mode"`` or ``"orientation"`` (how it looks depends on how
        it is read: transparency, bit depth or colour model, EXIF rotation; repair fixes it);
        ``"box"``, ``"style"`` or ``"strength"`` (a redaction request that cannot be met); or
        ``"pillow"`` (Pillow is not installed).
    """

    def __init__(self, message: str, *, limit: str) -> None:
        super().__init__(message)
        self.limit = limit


class InvalidPromptError(SafegenError, ValueError):
    """A prompt that cannot be moderated as given: not a string, or beyond a limit.

    The message names the limit; a prompt is never passed as safe because it was unreadable.
    """


class MalformedResponseError(SafegenError, ValueError):
    """A backend's response does not have the shape its API documents.

    Moderation treats this as a failed check (fail closed), never as an empty, safe result.
    """


class LocalModelError(SafegenError):
    """An offline model that is not installed, is damaged, or failed to run.

    safegen never downloads a model: a missing or altered model file is this error (and
    moderation fails closed), not a reason to reach out to the network. The message says
    which extra to install.
    """


class ServiceError(SafegenError):
    """A call to a backend service failed.

    :ivar service: the service, e.g. ``"comprehend"``.
    :ivar operation: the operation, e.g. ``"DetectToxicContent"``.
    :ivar code: the service's error code, e.g. ``"ThrottlingException"``; for failures that
        never reached the service, the botocore exception's name.
    :ivar message: what the service (or botocore) said, without the prefix above.
    """

    def __init__(self, message: str, *, service: str, operation: str, code: str) -> None:
        super().__init__(f"{service}.{operation} failed ({code}): {message}")
        self.message = message
        self.service = service
        self.operation = operation
        self.code = code


class ThrottledError(ServiceError):
    """The service throttled the call, and the client's retries did not get through."""


class ServiceUnavailableError(ServiceError):
    """The service or endpoint is down, not ready (e.g. not IN_SERVICE), or unreachable."""


class AccessDeniedError(ServiceError, PermissionError):
    """No permission, no credentials, or a feature closed to this account."""


class InvalidRequestError(ServiceError, ValueError):
    """The service refused the request as malformed, too large, or unsupported."""
