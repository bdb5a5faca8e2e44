"""Tests of the one place botocore errors become safegen's."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import (
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    ParamValidationError,
    ReadTimeoutError,
)

from safegen import SafegenError
from safegen.aws._errors import aws_call, translate
from safegen.errors import (
    AccessDeniedError,
    InvalidRequestError,
    ServiceError,
    ServiceUnavailableError,
    ThrottledError,
)


def client_error(code: str, status: int = 400) -> ClientError:
    response: Any = {
        "Error": {"Code": code, "Message": f"{code} happened"},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(response, "DetectToxicContent")


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("ThrottlingException", 400, ThrottledError),
        ("TooManyRequestsException", 429, ThrottledError),
        ("ProvisionedThroughputExceededException", 400, ThrottledError),
        ("ResourceUnavailableException", 400, ServiceUnavailableError),
        ("InternalServerException", 500, ServiceUnavailableError),
        ("ModelNotReadyException", 429, ServiceUnavailableError),
        ("SomethingNew", 503, ServiceUnavailableError),
        ("AccessDeniedException", 403, AccessDeniedError),
        ("TextSizeLimitExceededException", 400, InvalidRequestError),
        ("UnsupportedLanguageException", 400, InvalidRequestError),
        ("ValidationException", 400, InvalidRequestError),
        ("SomethingElse", 400, ServiceError),
    ],
)
def test_client_errors_map_by_code_and_keep_it(
    code: str, status: int, expected: type[ServiceError]
) -> None:
    """Each AWS code lands in its branch of the tree; the code and message survive."""
    error = translate(client_error(code, status), service="comprehend", operation="Op")
    assert type(error) is expected
    assert (error.service, error.operation, error.code) == ("comprehend", "Op", code)
    assert str(error) == f"comprehend.Op failed ({code}): {code} happened"


def test_builtin_meanings_are_kept() -> None:
    """Access denied is a PermissionError; a refused request is a ValueError."""
    assert isinstance(
        translate(client_error("AccessDeniedException"), service="s", operation="o"),
        PermissionError,
    )
    assert isinstance(
        translate(client_error("ValidationException"), service="s", operation="o"), ValueError
    )


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (NoCredentialsError(), AccessDeniedError),
        (ParamValidationError(report="missing Text"), InvalidRequestError),
        (EndpointConnectionError(endpoint_url="https://x"), ServiceUnavailableError),
        (ReadTimeoutError(endpoint_url="https://x"), ServiceUnavailableError),
    ],
)
def test_failures_before_the_service_are_translated_too(
    error: Exception, expected: type[ServiceError]
) -> None:
    """Connection, timeout, credential and parameter failures keep their botocore name."""
    translated = translate(error, service="comprehend", operation="Op")
    assert type(translated) is expected
    assert translated.code == type(error).__name__


def test_aws_call_raises_the_translation_chained_to_the_original() -> None:
    """The choke point re-raises as a SafegenError with the botocore error as its cause."""
    original = client_error("ThrottlingException")
    with pytest.raises(SafegenError) as raised, aws_call("comprehend", "DetectToxicContent"):
        raise original
    assert isinstance(raised.value, ThrottledError)
    assert raised.value.__cause__ is original
