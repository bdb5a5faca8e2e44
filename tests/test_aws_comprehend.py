"""Tests of the Comprehend prompt checks, with responses checked against the real service model."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from safegen import Action, PolicyError
from safegen.aws import ComprehendClassifier, ComprehendToxicity
from safegen.errors import (
    AccessDeniedError,
    InvalidRequestError,
    MalformedResponseError,
    ServiceUnavailableError,
    ThrottledError,
)
from safegen.text.segment import split
from tests.aws import fake_client, toxic_result

ENDPOINT = "arn:aws:comprehend:us-east-1:123456789012:document-classifier-endpoint/toxicity"


# The documentation's example for "You are so obtuse".
OBTUSE = {
    "Labels": [
        {"Name": "PROFANITY", "Score": 0.0006},
        {"Name": "HATE_SPEECH", "Score": 0.0093},
        {"Name": "INSULT", "Score": 0.9205},
        {"Name": "GRAPHIC", "Score": 0.0001},
        {"Name": "HARASSMENT_OR_ABUSE", "Score": 0.0053},
        {"Name": "SEXUAL", "Score": 0.0155},
        {"Name": "VIOLENCE_OR_THREAT", "Score": 0.0078},
    ],
    "Toxicity": 0.7193,
}


@pytest.fixture
def comprehend() -> Iterator[tuple[Any, Stubber]]:
    client = fake_client("comprehend")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


class TestToxicity:
    def test_scores_become_0_to_100_findings_over_their_thresholds(
        self, comprehend: tuple[Any, Stubber]
    ) -> None:
        """INSULT at 0.92 blocks at 50; overall toxicity 0.72 is reviewed between 60 and 80."""
        client, stubber = comprehend
        stubber.add_response(
            "detect_toxic_content",
            {"ResultList": [OBTUSE]},
            {"TextSegments": [{"Text": "You are so obtuse"}], "LanguageCode": "en"},
        )
        check = ComprehendToxicity(
            client, thresholds={"TOXICITY": {"block_at": 80, "review_at": 60}}
        )
        report = check.classify("You are so obtuse")
        by_label = {f.label: f for f in report.findings}
        assert set(by_label) == {"INSULT", "TOXICITY"}
        assert by_label["INSULT"].score == pytest.approx(92.05)
        assert by_label["INSULT"].action is Action.BLOCK
        assert by_label["TOXICITY"].action is Action.REVIEW
        assert by_label["INSULT"].source == "comprehend-toxicity"
        assert by_label["INSULT"].span == (0, 17)
        assert report.notes == ()

    def test_a_long_prompt_is_sent_in_1kb_segments_ten_to_a_call(
        self, comprehend: tuple[Any, Stubber]
    ) -> None:
        """25 KB of text is 25+ segments: three calls, each within the service's limits."""
        client, stubber = comprehend
        text = ("word " * 205 + "\n") * 25  # about 1 KB per line
        sent: list[list[str]] = []

        def expect(count: int) -> None:
            stubber.add_response(
                "detect_toxic_content",
                {"ResultList": [toxic_result() for _ in range(count)]},
                {"TextSegments": ANY, "LanguageCode": "en"},
            )

        original = client.detect_toxic_content

        def spy(**kwargs: Any) -> Any:
            sent.append([s["Text"] for s in kwargs["TextSegments"]])
            return original(**kwargs)

        segments = len(split(text, max_bytes=1024))
        for first in range(0, segments, 10):
            expect(min(10, segments - first))
        client.detect_toxic_content = spy
        report = ComprehendToxicity(client).classify(text)
        assert len(sent) == -(-segments // 10) >= 3
        assert all(len(batch) <= 10 for batch in sent)
        assert all(len(s.encode()) <= 1024 for batch in sent for s in batch)
        assert "".join(s for batch in sent for s in batch) == text
        assert any("segments" in note for note in report.notes)

    def test_the_highest_score_of_any_segment_counts_with_its_span(
        self, comprehend: tuple[Any, Stubber]
    ) -> None:
        """A harmful second segment is found, and its span points at it."""
        client, stubber = comprehend
        text = "calm " * 210 + "violent part"
        stubber.add_response(
            "detect_toxic_content",
            {"ResultList": [toxic_result(), toxic_result(0.9, VIOLENCE_OR_THREAT=0.95)]},
        )
        report = ComprehendToxicity(client).classify(text)
        violence = next(f for f in report.findings if f.label == "VIOLENCE_OR_THREAT")
        assert violence.span is not None
        assert text[violence.span[0] : violence.span[1]].endswith("violent part")

    def test_a_prompt_that_does_not_look_english_says_so(
        self, comprehend: tuple[Any, Stubber]
    ) -> None:
        """The service is English-only: coverage is reported, not pretended."""
        client, stubber = comprehend
        stubber.add_response("detect_toxic_content", {"ResultList": [toxic_result()]})
        report = ComprehendToxicity(client).classify("Одна картина маслом")
        assert any("English only" in note for note in report.notes)

    def test_an_empty_prompt_makes_no_call(self, comprehend: tuple[Any, Stubber]) -> None:
        """Nothing to send: no call (the stubber would fail one), and a note says why."""
        client, _ = comprehend
        report = ComprehendToxicity(client).classify("   ")
        assert report.findings == ()
        assert report.notes == ("nothing to classify: the prompt is empty",)

    @pytest.mark.parametrize(
        ("code", "status", "expected"),
        [
            ("ThrottlingException", 400, ThrottledError),
            ("AccessDeniedException", 403, AccessDeniedError),
            ("TextSizeLimitExceededException", 400, InvalidRequestError),
            ("InternalServerException", 500, ServiceUnavailableError),
        ],
    )
    def test_service_errors_are_translated_with_their_code(
        self, comprehend: tuple[Any, Stubber], code: str, status: int, expected: type[Exception]
    ) -> None:
        """No bare ClientError escapes; the AWS code is kept."""
        client, stubber = comprehend
        stubber.add_client_error("detect_toxic_content", code, "no", status)
        with pytest.raises(expected) as raised:
            ComprehendToxicity(client).classify("hello")
        assert raised.value.code == code  # type: ignore[attr-defined]

    def test_a_response_with_the_wrong_number_of_results_is_malformed(
        self, comprehend: tuple[Any, Stubber]
    ) -> None:
        """ResultList must line up with the segments sent."""
        client, stubber = comprehend
        stubber.add_response("detect_toxic_content", {"ResultList": []})
        with pytest.raises(MalformedResponseError, match="0 results for 1 segments"):
            ComprehendToxicity(client).classify("hello")

    def test_unknown_labels_in_thresholds_are_refused(self) -> None:
        """A typo in a label name would silently never apply."""
        with pytest.raises(PolicyError, match="unknown label 'SEXUALITY'"):
            ComprehendToxicity(object(), thresholds={"SEXUALITY": 40})

    def test_from_session_retries_in_standard_mode(self) -> None:
        """Throttling is retried by botocore's own standard mode, not a loop of ours."""
        session = boto3.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name="eu-west-1"
        )
        check = ComprehendToxicity.from_session(session, max_attempts=7)
        config: Any = check._client.meta.config
        assert config.retries == {"mode": "standard", "total_max_attempts": 7}
        assert check._client.meta.region_name == "eu-west-1"


class TestClassifier:
    def test_unsafe_classes_over_the_threshold_are_findings(
        self, comprehend: tuple[Any, Stubber]
    ) -> None:
        """A multi-class model's UNSAFE class at 0.91 blocks; SAFE is not a finding."""
        client, stubber = comprehend
        stubber.add_response(
            "classify_document",
            {"Classes": [{"Name": "UNSAFE", "Score": 0.91}, {"Name": "SAFE", "Score": 0.09}]},
            {"Text": "a prompt", "EndpointArn": ENDPOINT},
        )
        check = ComprehendClassifier(client, ENDPOINT, unsafe_classes={"UNSAFE"})
        (finding,) = check.classify("a prompt").findings
        assert (finding.label, finding.action) == ("UNSAFE", Action.BLOCK)
        assert finding.score == pytest.approx(91.0)

    def test_multi_label_models_and_review_bands_work(
        self, comprehend: tuple[Any, Stubber]
    ) -> None:
        """Labels (multi-label models) are read too; 0.55 falls in a [50, 70) review band."""
        client, stubber = comprehend
        stubber.add_response("classify_document", {"Labels": [{"Name": "toxic", "Score": 0.55}]})
        check = ComprehendClassifier(
            client, ENDPOINT, unsafe_classes=["toxic"], block_at=70, review_at=50
        )
        (finding,) = check.classify("a prompt").findings
        assert finding.action is Action.REVIEW

    def test_an_endpoint_not_in_service_is_unavailable(
        self, comprehend: tuple[Any, Stubber]
    ) -> None:
        """ResourceUnavailableException (not IN_SERVICE) is a ServiceUnavailableError."""
        client, stubber = comprehend
        stubber.add_client_error(
            "classify_document", "ResourceUnavailableException", "not in service", 400
        )
        check = ComprehendClassifier(client, ENDPOINT, unsafe_classes={"UNSAFE"})
        with pytest.raises(ServiceUnavailableError, match="ResourceUnavailableException"):
            check.classify("a prompt")

    def test_text_over_10000_characters_is_classified_in_pieces(
        self, comprehend: tuple[Any, Stubber]
    ) -> None:
        """The service's limit is met by splitting; the worst piece decides."""
        client, stubber = comprehend
        text = "calm words " * 1500  # 16,500 characters
        stubber.add_response("classify_document", {"Classes": [{"Name": "UNSAFE", "Score": 0.1}]})
        stubber.add_response("classify_document", {"Classes": [{"Name": "UNSAFE", "Score": 0.8}]})
        check = ComprehendClassifier(client, ENDPOINT, unsafe_classes={"UNSAFE"})
        report = check.classify(text)
        (finding,) = report.findings
        assert finding.score == pytest.approx(80.0)
        assert finding.span is not None
        assert finding.span[0] > 0
        assert report.notes == ("checked in 2 pieces",)

    @pytest.mark.parametrize(
        ("arn", "classes", "message"),
        [
            ("arn:aws:comprehend:us-east-1:1:endpoint/x", {"UNSAFE"}, "endpoint_arn"),
            (ENDPOINT, set(), "unsafe_classes"),
            (ENDPOINT, "UNSAFE", "unsafe_classes"),
        ],
    )
    def test_configuration_mistakes_are_refused(self, arn: str, classes: Any, message: str) -> None:
        """A wrong ARN kind or no unsafe classes is a PolicyError at construction."""
        with pytest.raises(PolicyError, match=message):
            ComprehendClassifier(object(), arn, unsafe_classes=classes)
