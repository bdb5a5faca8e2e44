"""AWS clients for tests: real botocore clients with fake credentials, never sent anywhere."""

from __future__ import annotations

from typing import Any

import boto3


def fake_client(service: str) -> Any:
    """A boto3 client for *service* in us-east-1 with fake credentials (for Stubber or moto)."""
    factory: Any = boto3.client
    return factory(
        service,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
