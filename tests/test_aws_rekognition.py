"""Tests of reading DetectModerationLabels responses, checked against botocore's service model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs
import pytest
from botocore.stub import ANY, Stubber

from safegen import (
    Action,
    ContentType,
    ImageModerator,
    MalformedResponseError,
    ModerationLabel,
    ModerationPolicy,
    S3Object,
)
from safegen.aws import HumanReview, RekognitionModerator, parse_moderation_response
from safegen.errors import (
    AccessDeniedError,
    ConfigurationError,
    InvalidRequestError,
    ServiceError,
    ServiceUnavailableError,
    ThrottledError,
)
from tests.aws import answering, fake_client

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
    return fake_client("rekognition")


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


def test_absent_content_types_mean_none_reported() -> None:
    """ContentTypes is optional (older models leave it out); the labels list is not."""
    parsed = parse_moderation_response({"ModerationModelVersion": "7.0", "ModerationLabels": []})
    assert (parsed.labels, parsed.content_types, parsed.model_version) == ((), (), "7.0")


@pytest.mark.parametrize(
    "body",
    [
        b'{"ModerationModelVersion": "7.0"}',
        b'{"ModerationModelVersion": "7.0", "ModerationLabels": null}',
        b'{"ModerationModelVersion": "7.0", "ModerationLabels": null, "ContentTypes": []}',
    ],
    ids=["missing", "null", "null-with-content-types"],
)
def test_a_missing_or_null_labels_list_is_malformed_never_nothing_found(body: bytes) -> None:
    """Botocore drops a JSON null, so a null list arrives missing: that is not 'no labels'."""
    backend = RekognitionModerator(answering("rekognition", body))
    with pytest.raises(MalformedResponseError, match="no ModerationLabels"):
        backend.detect(b"\xff\xd8\xff", min_confidence=50)


@pytest.mark.parametrize(
    "body",
    [
        b'{"ModerationModelVersion": "7.0", "ModerationLabels": {"Name": "Weapons"}}',
        b'{"ModerationModelVersion": "7.0", "ModerationLabels": "Weapons"}',
        b'{"ModerationModelVersion": "7.0", "ModerationLabels": [7]}',
        b'{"ModerationModelVersion": "7.0", "ModerationLabels": {}}',
        b'{"ModerationModelVersion": "7.0", "ModerationLabels": [{"Name": "W", "Confidence": ""}]}',
        b'{"ModerationModelVersion": ["7.0"], "ModerationLabels": []}',
        b'{"ModerationModelVersion": "7.0", "ModerationLabels": [], "ContentTypes": [[]]}',
        b'{"ModerationModelVersion": "7.0", "ModerationLabels": [], "ProjectVersion": 1}',
        b"[]",
        b"null",
        b'"a string"',
    ],
)
def test_wrong_json_types_that_break_botocores_parser_are_service_errors(body: bytes) -> None:
    """Wrong JSON types (botocore would crash, or read {} as []) are ServiceErrors of ours."""
    backend = RekognitionModerator(answering("rekognition", body))
    with pytest.raises(ServiceError) as raised:
        backend.detect(b"\xff\xd8\xff", min_confidence=50)
    assert raised.value.code == "ResponseParserError"
    assert raised.value.operation == "DetectModerationLabels"


@pytest.mark.parametrize(
    "label",
    [
        '{"Name": "Weapons", "Confidence": "99"}',
        '{"Name": "Weapons", "Confidence": {}}',
        '{"Name": "Weapons", "Confidence": NaN}',
        '{"Name": "Weapons", "Confidence": Infinity}',
        '{"Name": "Weapons", "Confidence": 100.0001}',
        '{"Name": "Weapons", "Confidence": -0.5}',
        '{"Name": "Weapons", "Confidence": true}',
        '{"Name": "Weapons", "Confidence": null}',
        '{"Name": "Weapons"}',
        '{"Confidence": 99}',
        '{"Name": null, "Confidence": 99}',
        '{"Name": "", "Confidence": 99}',
        '{"Name": ["Weapons"], "Confidence": 99}',
        '{"Name": "Weapons", "Confidence": 99, "TaxonomyLevel": "2"}',
        '{"Name": "Weapons", "Confidence": 99, "ParentName": 3}',
    ],
)
def test_labels_of_the_wrong_shape_fail_the_check_through_botocore(label: str) -> None:
    """Each label needs a name and a 0-100 confidence, of the right JSON types."""
    body = f'{{"ModerationModelVersion": "7.0", "ModerationLabels": [{label}]}}'.encode()
    backend = RekognitionModerator(answering("rekognition", body))
    with pytest.raises((MalformedResponseError, ServiceError)):
        backend.detect(b"\xff\xd8\xff", min_confidence=50)


def test_a_label_exactly_at_the_edges_of_the_confidence_range_is_read() -> None:
    """0 and 100 are confidences; only beyond them is malformed."""
    body = (
        b'{"ModerationModelVersion": "7.0", "ModerationLabels": ['
        b'{"Name": "Weapons", "Confidence": 0, "ParentName": "Violence", "TaxonomyLevel": 2},'
        b'{"Name": "Violence", "Confidence": 100, "ParentName": "", "TaxonomyLevel": 1}]}'
    )
    report = RekognitionModerator(answering("rekognition", body)).detect(b"x", min_confidence=0)
    assert [label.confidence for label in report.labels] == [0.0, 100.0]


def test_a_non_mapping_response_is_malformed() -> None:
    """A JSON list or string where an object belongs is refused."""
    with pytest.raises(MalformedResponseError, match="expected a mapping, got list"):
        parse_moderation_response([])  # type: ignore[arg-type]


class TestRekognitionModerator:
    ADAPTER = "arn:aws:rekognition:us-east-1:123456789012:project/p/version/v/1700000000000"
    FLOW = "arn:aws:sagemaker:us-east-1:123456789012:flow-definition/review"

    def stubbed(self, **options: Any) -> tuple[RekognitionModerator, Stubber]:
        client = rekognition_client()
        stubber = Stubber(client)
        stubber.activate()
        return RekognitionModerator(client, **options), stubber

    def test_bytes_are_sent_with_the_min_confidence_asked_for(self) -> None:
        """The request is what botocore's model expects; the report carries the labels."""
        backend, stubber = self.stubbed()
        stubber.add_response(
            "detect_moderation_labels",
            SMOKING_RESPONSE,
            {"Image": {"Bytes": b"\xff\xd8\xff"}, "MinConfidence": 40.0},
        )
        report = backend.detect(b"\xff\xd8\xff", min_confidence=40)
        stubber.assert_no_pending_responses()
        assert report.labels[0].name == "Smoking"
        assert report.model_version == "7.0"
        assert report.warnings == ()
        assert report.human_loop is None

    def test_an_s3_object_is_read_in_place(self) -> None:
        """Bucket, key and version go as S3Object: no bytes leave the process."""
        backend, stubber = self.stubbed()
        stubber.add_response(
            "detect_moderation_labels",
            {"ModerationLabels": [], "ModerationModelVersion": "7.0"},
            {
                "Image": {"S3Object": {"Bucket": "images", "Name": "k.png", "Version": "3"}},
                "MinConfidence": 50.0,
            },
        )
        assert backend.detect(S3Object("images", "k.png", "3"), min_confidence=50).labels == ()

    def test_the_adapter_is_sent_and_an_expired_one_is_a_warning(self) -> None:
        """ProjectVersion echoed: no warning. Missing from the reply: the base model answered."""
        backend, stubber = self.stubbed(adapter_arn=self.ADAPTER)
        expected = {"Image": ANY, "MinConfidence": 50.0, "ProjectVersion": self.ADAPTER}
        stubber.add_response(
            "detect_moderation_labels",
            {**SMOKING_RESPONSE, "ProjectVersion": self.ADAPTER},
            expected,
        )
        stubber.add_response("detect_moderation_labels", SMOKING_RESPONSE, expected)
        fresh = backend.detect(b"x", min_confidence=50)
        expired = backend.detect(b"x", min_confidence=50)
        assert (fresh.adapter_version, fresh.warnings) == (self.ADAPTER, ())
        assert expired.adapter_version is None
        assert "has expired" in expired.warnings[0]

    def test_an_unknown_model_version_is_a_warning_not_a_failure(self) -> None:
        """A newer model's response is still read and judged."""
        backend, stubber = self.stubbed()
        stubber.add_response(
            "detect_moderation_labels", {**SMOKING_RESPONSE, "ModerationModelVersion": "8.0"}
        )
        report = backend.detect(b"x", min_confidence=50)
        assert "8.0" in report.warnings[0]
        assert len(report.labels) == 3

    def test_human_review_sends_a_unique_valid_loop_and_reads_the_activation(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Each call names a fresh loop that meets the service's name pattern."""
        import re

        backend, stubber = self.stubbed(
            human_review=HumanReview(self.FLOW, ["FreeOfPersonallyIdentifiableInformation"])
        )
        names: list[str] = []
        for _ in range(2):
            stubber.add_response(
                "detect_moderation_labels",
                {
                    **SMOKING_RESPONSE,
                    "HumanLoopActivationOutput": {
                        "HumanLoopArn": "arn:aws:sagemaker:us-east-1:1:human-loop/x",
                        "HumanLoopActivationReasons": ["ConditionsEvaluation"],
                        "HumanLoopActivationConditionsEvaluationResults": "{}",
                    },
                },
                {"Image": ANY, "MinConfidence": 50.0, "HumanLoopConfig": ANY},
            )
        original = backend._client.detect_moderation_labels

        def spy(**kwargs: Any) -> Any:
            names.append(kwargs["HumanLoopConfig"]["HumanLoopName"])
            assert kwargs["HumanLoopConfig"]["DataAttributes"] == {
                "ContentClassifiers": ["FreeOfPersonallyIdentifiableInformation"]
            }
            return original(**kwargs)

        monkeypatch.setattr(backend._client, "detect_moderation_labels", spy)
        report = backend.detect(b"x", min_confidence=50)
        backend.detect(b"x", min_confidence=50)
        assert report.human_loop is not None
        assert report.human_loop.reasons == ("ConditionsEvaluation",)
        assert len(set(names)) == 2
        assert all(re.fullmatch(r"[a-z0-9](-*[a-z0-9])*", n) and len(n) <= 63 for n in names)

    def test_an_exhausted_review_quota_falls_back_to_moderation_without_a_loop(self) -> None:
        """HumanLoopQuotaExceededException: moderated anyway, and the report says so."""
        backend, stubber = self.stubbed(human_review=HumanReview(self.FLOW))
        quota = {"ResourceType": "HumanLoop", "QuotaCode": "q", "ServiceCode": "sagemaker"}
        stubber.add_client_error(
            "detect_moderation_labels",
            "HumanLoopQuotaExceededException",
            "quota",
            400,
            modeled_fields=quota,
        )
        stubber.add_response(
            "detect_moderation_labels", SMOKING_RESPONSE, {"Image": ANY, "MinConfidence": 50.0}
        )
        report = backend.detect(b"x", min_confidence=50)
        assert "quota is exhausted" in report.warnings[0]
        assert len(report.labels) == 3

    @pytest.mark.parametrize(
        ("code", "expected"),
        [
            ("InvalidImageFormatException", InvalidRequestError),
            ("ImageTooLargeException", InvalidRequestError),
            ("ThrottlingException", ThrottledError),
            ("ProvisionedThroughputExceededException", ThrottledError),
            ("AccessDeniedException", AccessDeniedError),
            ("ResourceNotReadyException", ServiceUnavailableError),
        ],
    )
    def test_errors_are_translated_with_their_code(
        self, code: str, expected: type[Exception]
    ) -> None:
        """No bare ClientError leaves the adapter."""
        backend, stubber = self.stubbed()
        stubber.add_client_error("detect_moderation_labels", code, "no", 400)
        with pytest.raises(expected) as raised:
            backend.detect(b"x", min_confidence=50)
        assert raised.value.code == code  # type: ignore[attr-defined]

    def test_unknown_content_classifiers_are_refused(self) -> None:
        """A typo would be rejected by the service on every call; say it at construction."""
        with pytest.raises(ConfigurationError, match="content_classifiers"):
            HumanReview(self.FLOW, ["FreeOfAdults"])

    @pytest.mark.parametrize(
        ("options", "setting"),
        [
            ({"adapter_arn": "arn:aws:rekognition:us-east-1:1:project/p"}, "adapter_arn"),
            ({"adapter_arn": 7}, "adapter_arn"),
            ({"human_review": "arn:aws:sagemaker:us-east-1:1:flow-definition/x"}, "human_review"),
            ({"taxonomy": "v7"}, "taxonomy"),
            ({"name": ""}, "name"),
            ({"name": None}, "name"),
        ],
    )
    def test_settings_are_validated_when_built(self, options: dict[str, Any], setting: str) -> None:
        """A setting the service would refuse, or the wrong type, fails at construction."""
        with pytest.raises(ConfigurationError, match=setting):
            RekognitionModerator(rekognition_client(), **options)

    def test_a_flow_definition_that_is_not_an_arn_is_refused(self) -> None:
        """The flow definition ARN is checked against the service model's limits."""
        with pytest.raises(ConfigurationError, match="flow_definition_arn"):
            HumanReview("review")
        with pytest.raises(ConfigurationError, match="flow_definition_arn"):
            HumanReview("arn:" + "x" * 300)

    def test_the_backend_is_frozen_and_evolves(self) -> None:
        """Nothing can be changed after construction; attrs.evolve makes a validated copy."""
        backend = RekognitionModerator(rekognition_client())
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            backend.adapter_arn = self.ADAPTER  # type: ignore[misc]
        evolved = attrs.evolve(backend, adapter_arn=self.ADAPTER, name="rek2")
        assert (evolved.adapter_arn, evolved.name) == (self.ADAPTER, "rek2")
        assert evolved._client is backend._client
        with pytest.raises(ConfigurationError):
            attrs.evolve(backend, adapter_arn="not-an-arn")

    def test_from_session_takes_the_constructors_settings(self) -> None:
        """The named constructor passes its typed keywords on, and validates them."""
        import boto3

        session = boto3.Session(
            aws_access_key_id="t", aws_secret_access_key="t", region_name="us-east-1"
        )
        backend = RekognitionModerator.from_session(session, adapter_arn=self.ADAPTER, name="r")
        assert (backend.adapter_arn, backend.name) == (self.ADAPTER, "r")
        with pytest.raises(ConfigurationError, match="adapter_arn"):
            RekognitionModerator.from_session(session, adapter_arn="nope")

    def test_end_to_end_with_the_image_moderator(self) -> None:
        """Stubbed Rekognition, the policy, and the verdict: excluded Smoking is allowed."""
        backend, stubber = self.stubbed()
        stubber.add_response("detect_moderation_labels", SMOKING_RESPONSE)
        verdict = ImageModerator(backend, ModerationPolicy(exclude=["Smoking"])).moderate(b"x")
        assert verdict.action is Action.ALLOW
