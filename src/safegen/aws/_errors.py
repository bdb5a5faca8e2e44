"""The one place botocore's exceptions become safegen's (keeping the AWS error code).

Everything a service call raises passes through :func:`aws_call`. botocore's own errors are
mapped by code; anything else raised inside the call (botocore's response parser raises a bare
``AttributeError`` or ``TypeError`` on a body whose fields have the wrong JSON type) becomes a
plain :class:`~safegen.errors.ServiceError` with the code ``ResponseParserError``, so a caller
only ever sees a :class:`~safegen.errors.SafegenError` and a moderator fails the check closed.

The async adapters (aiobotocore, over aiohttp) pass through the same choke point. aiobotocore
turns aiohttp's failures into botocore's exceptions (a dropped connection is
``ConnectionClosedError``, a read timeout ``ReadTimeoutError``) so most arrive mapped already;
an aiohttp or asyncio exception that escapes it anyway is mapped here too, by class, without
importing aiohttp (a sync user never loads it). Cancellation is not an error: it passes through.
"""

from __future__ import annotations

import os
import sys
import traceback
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
    SafegenError,
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
    if isinstance(error, BotoCoreError):
        return ServiceError(str(error), code=code, **where)
    aiohttp_error = _aiohttp_error(error, **where)
    if aiohttp_error is not None:
        return aiohttp_error
    if isinstance(error, TimeoutError):  # asyncio's too (it is the builtin since 3.11)
        return ServiceUnavailableError(f"no answer in time: {error}", code=code, **where)
    return _unexpected(error, **where)


def _aiohttp_error(error: Exception, *, service: str, operation: str) -> ServiceError | None:
    """Map an aiohttp exception: connection trouble is unavailable, the rest a service error.

    aiohttp is looked up, not imported: if it is not loaded, *error* cannot be one of its.
    """
    aiohttp = sys.modules.get("aiohttp")
    if aiohttp is None or not isinstance(error, aiohttp.ClientError):
        return None
    code = type(error).__name__
    message = f"{code}: {error}"
    unavailable = (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError)
    if isinstance(error, unavailable):
        return ServiceUnavailableError(message, code=code, service=service, operation=operation)
    return ServiceError(message, code=code, service=service, operation=operation)


class WrongTypeError(Exception):
    """A response field whose JSON type is not the one botocore's model gives it."""


def _unexpected(error: Exception, *, service: str, operation: str) -> ServiceError:
    """Name a non-botocore exception raised during a call, and where it was raised.

    botocore's parsers assume each field has its modelled JSON type; a response that breaks
    that makes botocore raise builtin exceptions (``AttributeError`` on a list where an object
    belongs, on a ``null`` body). Those are failed calls, not bugs to crash on.
    """
    frames = traceback.extract_tb(error.__traceback__)
    in_botocore = bool(frames) and f"{os.sep}botocore{os.sep}" in frames[-1].filename
    in_botocore = in_botocore or isinstance(error, WrongTypeError)
    code = "ResponseParserError" if in_botocore else type(error).__name__
    what = "botocore could not read the response" if in_botocore else "the call raised"
    message = f"{what}: {type(error).__name__}: {error}"
    return ServiceError(message, code=code, service=service, operation=operation)


@contextmanager
def aws_call(service: str, operation: str) -> Iterator[None]:
    """Run an AWS call, re-raising any failure in it as a :class:`~safegen.errors.ServiceError`.

    A :class:`~safegen.errors.SafegenError` raised inside passes through unchanged.
    """
    try:
        yield
    except SafegenError:
        raise
    except Exception as error:
        raise translate(error, service=service, operation=operation) from error
