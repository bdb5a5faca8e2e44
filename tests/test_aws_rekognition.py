"""Tests of reading DetectModerationLabels responses, checked against botocore's service model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from safegen import (
    Action,
    ContentType,
    MalformedResponseError,
    ModerationLabel,
    ModerationPolicy,
)
from safegen.aws import parse_moderation_response

EXAMPLES = Path(__file__).parent.parent / "examples"

# The response in aws-apis.md section 5 (AWS's own sample).
SMOKING_RESPONSE: dict[str, Any] = {
    "ModerationLabels": [
        {
            "Confidence": 99.45,
            "Name": "Smoking",
            "ParentName": "Drug & Tobacco Paraphernalia & Use",
            "TaxonomyLevel": 3,
        },
        {
            "Confidence": 99.45,
            "Name": "Drug & Tobacco Paraphernalia & Use",
            "ParentName": "Drugs & Tobacco",
            "TaxonomyLevel": 2,
        },
        {"Confidence": 99.45, "Name": "Drugs & Tobacco", "ParentName": "", "TaxonomyLevel": 1},
    ],
    "ModerationModelVersion": "7.0",
    "ContentTypes": [{"Confidence": 99.99, "Name": "Illustrated"}],
}


def rekognition_client() -> Any:
    # Explicit fake credentials: nothing looks for real ones, and Stubber sends nothing.
    return boto3.client(
        "rekognition",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def through_botocore(response: dict[str, Any]) -> dict[str, Any]:
    """Return *response* as boto3 hands it back, after botocore checked it against the model."""
    client = rekognition_client()
    with Stubber(client) as stubber:
        stubber.add_response(
            "detect_moderation_labels", response, {"Image": {"Bytes": ANY}, "MinConfidence": ANY}
        )
        result: dict[str, Any] = client.detect_moderation_labels(
            Image={"Bytes": b"\xff\xd8\xff"}, MinConfidence=50.0
        )
    return result


@pytest.mark.parametrize(
    "response",
    [
        SMOKING_RESPONSE,
        json.loads((EXAMPLES / "rekognition-response.json").read_text()),
        {"ModerationLabels": [], "ModerationModelVersion": "7.0", "ContentTypes": []},
    ],
    ids=["aws-sample", "example-file", "empty"],
)
def test_valid_responses_parse_after_botocores_own_validation(response: dict[str, Any]) -> None:
    """Responses botocore accepts for the real service model are read label for label."""
    parsed = parse_moderation_response(through_botocore(response))
    assert len(parsed.labels) == len(response["ModerationLabels"])
    for label, raw in zip(parsed.labels, response["ModerationLabels"], strict=True):
        assert label == ModerationLabel(
            raw["Name"], raw["Confidence"], parent=raw["ParentName"], level=raw["TaxonomyLevel"]
        )
    assert parsed.content_types == tuple(
        ContentType(c["Name"], c["Confidence"]) for c in response["ContentTypes"]
    )
    assert parsed.model_version == "7.0"
    assert parsed.project_version is None


def test_the_aws_sample_is_blocked_by_default_and_allowed_when_smoking_is_excluded() -> None:
    """End to end on AWS's sample: the L1 and L2 are explained by the excluded L3."""
    parsed = parse_moderation_response(through_botocore(SMOKING_RESPONSE))
    assert ModerationPolicy().evaluate(parsed.labels).action is Action.BLOCK
    policy = ModerationPolicy(exclude=["Smoking"])
    assert policy.evaluate(parsed.labels, parsed.content_types).action is Action.ALLOW


def test_the_adapter_that_answered_is_recorded() -> None:
    """ProjectVersion comes back when a custom adapter answered."""
    arn = "arn:aws:rekognition:us-east-1:123456789012:project/p/version/v/1700000000000"
    parsed = parse_moderation_response(
        through_botocore({**SMOKING_RESPONSE, "ProjectVersion": arn})
    )
    assert parsed.project_version == arn


def test_missing_optional_fields_mean_nothing_reported() -> None:
    """Every response field is optional in the service model; absent lists are empty."""
    parsed = parse_moderation_response({})
    assert (parsed.labels, parsed.content_types, parsed.model_version) == ((), (), None)


@pytest.mark.parametrize(
    ("response", "message"),
    [
        ({"ModerationLabels": [{"Name": "Weapons"}]}, r"ModerationLabels\[0\]"),
        ({"ModerationLabels": [{"Name": "Weapons", "Confidence": "99"}]}, r"expected a number"),
        ({"ModerationLabels": [{"Name": "Weapons", "Confidence": 150.0}]}, r"from 0 to 100"),
        ({"ModerationLabels": [{"Name": "", "Confidence": 90.0}]}, r"non-empty string"),
        (
            {"ModerationLabels": [{"Name": "Weapons", "Confidence": 90.0, "TaxonomyLevel": 2.5}]},
            r"expected an integer",
        ),
        ({"ModerationLabels": {"Name": "Weapons"}}, r"ModerationLabels must be a list"),
        ({"ModerationLabels": ["Weapons"]}, r"ModerationLabels\[0\]"),
        ({"ContentTypes": [{"Name": "Animated"}]}, r"ContentTypes\[0\]"),
        ({"ModerationModelVersion": 7}, r"ModerationModelVersion must be a string"),
    ],
)
def test_malformed_responses_raise_never_pass_as_empty(
    response: dict[str, Any], message: str
) -> None:
    """A response that breaks its own model is a MalformedResponseError, never 'no labels'."""
    with pytest.raises(MalformedResponseError, match=message):
        parse_moderation_response(response)


def test_a_non_mapping_response_is_malformed() -> None:
    """A JSON list or string where an object belongs is refused."""
    with pytest.raises(MalformedResponseError, match="expected a mapping, got list"):
        parse_moderation_response([])  # type: ignore[arg-type]
