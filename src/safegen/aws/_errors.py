"""The one place botocore's exceptions become safegen's (keeping the AWS error code)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionError,
    NoCredentialsError,
    ParamValidationError,
    ReadTimeoutError,
)

from safegen.errors import (
    AccessDeniedError,
    InvalidRequestError,
    ServiceError,
    ServiceUnavailableError,
    ThrottledError,
)

_THROTTLED = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestThrottledException",
        "ProvisionedThroughputExceededException",
        "LimitExceededException",
        "HumanLoopQuotaExceededException",
    }
)
_UNAVAILABLE = frozenset(
    {
        "InternalServerException",
        "InternalServerError",
        "InternalFailure",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "ResourceUnavailableException",
        "ResourceNotReadyException",
        "ModelNotReadyException",
        "InternalDependencyException",
    }
)
_DENIED = frozenset({"AccessDeniedException", "AccessDenied", "UnrecognizedClientException"})
_INVALID = frozenset(
    {
        "InvalidRequestException",
        "InvalidParameterException",
        "TextSizeLimitExceededException",
        "UnsupportedLanguageException",
        "ValidationException",
        "ValidationError",
        "InvalidImageFormatException",
        "ImageTooLargeException",
        "InvalidS3ObjectException",
    }
)


def translate(error: Exception, *, service: str, operation: str) -> ServiceError:
    """Map a botocore exception to the matching :class:`~safegen.errors.ServiceError`."""
    where = {"service": service, "operation": operation}
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        code = str(details.get("Code") or "Unknown")
        message = str(details.get("Message") or error)
        original = error.response.get("OriginalMessage")  # SageMaker's ModelError
        if original is not None:
            status = error.response.get("OriginalStatusCode")
            message = f"{message} (the model container answered {status}: {original})"
        if code in _THROTTLED:
            return ThrottledError(message, code=code, **where)
        if code in _UNAVAILABLE:
            return ServiceUnavailableError(message, code=code, **where)
        if code in _DENIED:
            return AccessDeniedError(message, code=code, **where)
        if code in _INVALID:
            return InvalidRequestError(message, code=code, **where)
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if status >= 500:
            return ServiceUnavailableError(message, code=code, **where)
        return ServiceError(message, code=code, **where)
    code = type(error).__name__
    if isinstance(error, NoCredentialsError):
        return AccessDeniedError(str(error), code=code, **where)
    if isinstance(error, ParamValidationError):
        return InvalidRequestError(str(error), code=code, **where)
    if isinstance(error, ConnectionError | ReadTimeoutError):
        return ServiceUnavailableError(str(error), code=code, **where)
    return ServiceError(str(error), code=code, **where)


@contextmanager
def aws_call(service: str, operation: str) -> Iterator[None]:
    """Run an AWS call, re-raising any botocore failure as a safegen error."""
    try:
        yield
    except (ClientError, BotoCoreError) as error:
        raise translate(error, service=service, operation=operation) from error
