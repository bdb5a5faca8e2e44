"""Tests of the Comprehend prompt checks, with responses checked against the real service model."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import attrs
import boto3
import pytest
from botocore.stub import ANY, Stubber

from safegen import Action, PolicyError, PromptModerator, Thresholds
from safegen.aws import TOXICITY_LABELS, ComprehendClassifier, ComprehendToxicity
from safegen.errors import (
    AccessDeniedError,
    ConfigurationError,
    InvalidRequestError,
    MalformedResponseError,
    ServiceError,
    ServiceUnavailableError,
    ThrottledError,
)
from safegen.prompt_policy import PromptPolicy
from safegen.text.segment import split
from tests.aws import answering, fake_client, toxic_result

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

    @pytest.mark.parametrize(
        "body",
        [
            b"{}",
            b'{"ResultList": null}',
            b'{"ResultList": []}',
            b'{"ResultList": [{"Toxicity": 0.01}]}',
            b'{"ResultList": [{"Labels": [], "Toxicity": 0.01}]}',
            b'{"ResultList": [{"Labels": [{"Name": "INSULT", "Score": 0.01}], "Toxicity": 0.01}]}',
            b'{"ResultList": [{"Labels": null, "Toxicity": 0.01}]}',
            b"{not json",
        ],
    )
    def test_an_answer_without_every_score_fails_closed(self, body: bytes) -> None:
        """A missing list, a short list or missing labels is never 'not toxic'."""
        with pytest.raises(MalformedResponseError):
            ComprehendToxicity(answering("comprehend", body)).classify("hello")

    @pytest.mark.parametrize("label", [*TOXICITY_LABELS[:-1], "Toxicity"])
    def test_each_missing_score_alone_fails_closed(self, label: str) -> None:
        """Every one of the seven labels and the overall score must be in each result."""
        result = toxic_result()
        if label == "Toxicity":
            del result["Toxicity"]
        else:
            result["Labels"] = [x for x in result["Labels"] if x["Name"] != label]
        body = json.dumps({"ResultList": [result]}).encode()
        with pytest.raises(MalformedResponseError):
            ComprehendToxicity(answering("comprehend", body)).classify("hello")

    def test_a_result_list_shorter_than_the_segments_sent_fails_closed(self) -> None:
        """Two segments sent, one result back: the second segment was never checked."""
        body = json.dumps({"ResultList": [toxic_result()]}).encode()
        text = "calm " * 210 + "second segment"
        with pytest.raises(MalformedResponseError, match="1 results for 2 segments"):
            ComprehendToxicity(answering("comprehend", body)).classify(text)

    def test_a_label_the_service_adds_later_is_judged_by_the_defaults(self) -> None:
        """An unknown label at 0.9 blocks at the default 50, rather than being ignored."""
        result = toxic_result()
        result["Labels"].append({"Name": "SELF_HARM", "Score": 0.9})
        body = json.dumps({"ResultList": [result]}).encode()
        report = ComprehendToxicity(answering("comprehend", body)).classify("hello")
        assert [(f.label, f.action) for f in report.findings] == [("SELF_HARM", Action.BLOCK)]

    def test_wrong_json_types_are_service_errors_not_attribute_errors(self) -> None:
        """Botocore's parser chokes on a string where a list belongs; the error is ours."""
        check = ComprehendToxicity(answering("comprehend", b'{"ResultList": "x"}'))
        with pytest.raises(ServiceError) as raised:
            check.classify("hello")
        assert raised.value.code == "ResponseParserError"

    def test_the_check_is_frozen_and_evolves(self) -> None:
        """Thresholds cannot be loosened on a built check; evolve validates the copy."""
        check = ComprehendToxicity(object(), thresholds={"INSULT": 70})
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            check.block_at = 100.0  # type: ignore[misc]
        assert attrs.evolve(check, block_at=40.0).thresholds_for("PROFANITY").block_at == 40.0
        assert check.thresholds_for("INSULT").block_at == 70.0
        with pytest.raises(PolicyError, match="review_at"):
            attrs.evolve(check, review_at=60.0)

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
        """A wrong ARN kind or no unsafe classes is a ConfigurationError at construction."""
        with pytest.raises(ConfigurationError, match=message):
            ComprehendClassifier(object(), arn, unsafe_classes=classes)

    def test_thresholds_out_of_range_are_policy_errors(self) -> None:
        """Thresholds are policy: out of range, or review above block, is a PolicyError."""
        with pytest.raises(PolicyError, match="block_at"):
            ComprehendClassifier(object(), ENDPOINT, unsafe_classes={"U"}, block_at=101)
        with pytest.raises(PolicyError, match="review_at"):
            ComprehendClassifier(
                object(), ENDPOINT, unsafe_classes={"U"}, block_at=50, review_at=60
            )

    def test_the_classifier_is_frozen_and_evolves_with_validation(self) -> None:
        """Nobody can weaken a built check; evolve re-runs the validators."""
        check = ComprehendClassifier(object(), ENDPOINT, unsafe_classes={"UNSAFE"})
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            check.block_at = 100.0  # type: ignore[misc]
        assert attrs.evolve(check, block_at=80.0).block_at == 80.0
        with pytest.raises(ConfigurationError, match="unsafe_classes"):
            attrs.evolve(check, unsafe_classes=set())

    @pytest.mark.parametrize(
        "body",
        [
            b"{}",
            b'{"Classes": null}',
            b'{"Classes": []}',
            b'{"Labels": []}',
            b'{"Classes": [], "Labels": []}',
            b'{"Classes": [{"Name": "SAFE", "Score": 0.99}]}',
            b'{"Labels": [{"Name": "unsafe", "Score": 0.99}]}',
            b'{"Classes": [{"Name": "UNSAFE"}]}',
            b'{"Classes": [{"Score": 0.9}]}',
            b'{"Classes": [{"Name": "UNSAFE", "Score": "0.9"}]}',
            b'{"Classes": [{"Name": "UNSAFE", "Score": NaN}]}',
            b'{"Classes": [{"Name": "UNSAFE", "Score": 1.5}]}',
            b'{"Classes": [{"Name": "UNSAFE", "Score": -0.1}]}',
            b"{not json",
        ],
    )
    def test_an_answer_that_does_not_score_the_unsafe_class_fails_closed(self, body: bytes) -> None:
        """Empty, absent, or silent about UNSAFE: never 'nothing unsafe found'."""
        check = ComprehendClassifier(
            answering("comprehend", body), ENDPOINT, unsafe_classes={"UNSAFE"}
        )
        with pytest.raises((MalformedResponseError, ServiceError)):
            check.classify("a prompt")

    def test_every_unsafe_class_must_be_scored(self) -> None:
        """With two unsafe classes, an answer naming one cannot clear the other."""
        body = b'{"Labels": [{"Name": "HATE", "Score": 0.01}]}'
        check = ComprehendClassifier(
            answering("comprehend", body), ENDPOINT, unsafe_classes={"HATE", "VIOLENCE"}
        )
        with pytest.raises(MalformedResponseError, match="VIOLENCE"):
            check.classify("a prompt")

    @pytest.mark.parametrize(("score", "action"), [(0.5, Action.BLOCK), (0.25, Action.REVIEW)])
    def test_a_score_exactly_at_a_threshold_counts(self, score: float, action: Action) -> None:
        """A score exactly at block_at blocks; exactly at review_at it is reviewed."""
        body = f'{{"Classes": [{{"Name": "UNSAFE", "Score": {score}}}]}}'.encode()
        check = ComprehendClassifier(
            answering("comprehend", body), ENDPOINT, unsafe_classes={"UNSAFE"}, review_at=25
        )
        (finding,) = check.classify("a prompt").findings
        assert finding.action is action


class TestJudgedByAPromptPolicy:
    """Classifiers configured from a policy's ``[prompts]`` thresholds."""

    POLICY = PromptPolicy.from_mapping(
        {
            "block_at": 80,
            "review_at": 40,
            "labels": {"INSULT": 30},
            "classes": {"TOXIC": {"block_at": 60}},
        }
    )

    def test_toxicity_judges_at_the_policys_thresholds(self) -> None:
        """with_policy: every label's thresholds are the policy's; name and client kept."""
        check = ComprehendToxicity(fake_client("comprehend"), block_at=50).with_policy(self.POLICY)
        assert check.name == "comprehend-toxicity"
        assert check.thresholds_for("INSULT") == Thresholds(block_at=30, review_at=30)
        assert check.thresholds_for("PROFANITY") == Thresholds(block_at=80, review_at=40)

    def test_toxicity_reports_a_score_only_the_policy_counts(self) -> None:
        """A score at the policy's review_at (40) but under the check's own block_at is reported."""
        body = json.dumps({"ResultList": [toxic_result(0.02, PROFANITY=0.40)]}).encode()
        check = ComprehendToxicity(answering("comprehend", body))
        assert check.classify("a prompt").findings == ()
        moderator = PromptModerator.from_policy(self.POLICY, classifiers=[check])
        verdict = moderator.moderate("a prompt")
        (finding,) = verdict.findings
        assert (finding.label, finding.action, finding.reason) == (
            "PROFANITY",
            Action.REVIEW,
            "prompts.review_at",
        )

    @pytest.mark.parametrize(("score", "action"), [(0.6, Action.BLOCK), (0.4, Action.REVIEW)])
    def test_custom_class_exactly_at_the_policys_thresholds(
        self, score: float, action: Action
    ) -> None:
        """A custom class exactly at its policy entry's block_at blocks, at review_at reviews."""
        body = f'{{"Classes": [{{"Name": "TOXIC", "Score": {score}}}]}}'.encode()
        check = ComprehendClassifier(
            answering("comprehend", body), ENDPOINT, unsafe_classes={"TOXIC"}, block_at=90
        )
        moderator = PromptModerator.from_policy(self.POLICY, classifiers=[check])
        (finding,) = moderator.moderate("a prompt").findings
        assert finding.action is action

    def test_classifier_per_class_thresholds(self) -> None:
        """ComprehendClassifier's own per-class entries judge over its defaults."""
        body = b'{"Labels": [{"Name": "A", "Score": 0.3}, {"Name": "B", "Score": 0.3}]}'
        check = ComprehendClassifier(
            answering("comprehend", body), ENDPOINT, unsafe_classes={"A", "B"}, thresholds={"A": 25}
        )
        assert [(f.label, f.action) for f in check.classify("x").findings] == [("A", Action.BLOCK)]

    def test_classifier_thresholds_are_checked(self) -> None:
        """A per-class entry out of range is a PolicyError naming it."""
        with pytest.raises(PolicyError, match=r"thresholds\.A"):
            ComprehendClassifier(
                fake_client("comprehend"), ENDPOINT, unsafe_classes={"A"}, thresholds={"A": 101}
            )
