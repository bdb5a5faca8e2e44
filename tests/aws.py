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


def toxic_result(toxicity: float = 0.02, **scores: float) -> dict[str, Any]:
    """One ResultList item: all seven labels, as the service always returns them."""
    labels = [
        "PROFANITY",
        "HATE_SPEECH",
        "INSULT",
        "GRAPHIC",
        "HARASSMENT_OR_ABUSE",
        "SEXUAL",
        "VIOLENCE_OR_THREAT",
    ]
    return {
        "Labels": [{"Name": name, "Score": scores.get(name, 0.01)} for name in labels],
        "Toxicity": toxicity,
    }
