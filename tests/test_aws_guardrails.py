"""Tests of Bedrock Guardrails as a prompt check and an image backend (botocore Stubber, no AWS)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.stub import Stubber
from hypothesis import given, settings
from hypothesis import strategies as st

from safegen import Action, ImageModerator, ModerationPolicy, PromptModerator
from safegen.aws.guardrails import (
    CONFIDENCE_SCORES,
    IMAGE_LABELS,
    BedrockGuardrail,
    BedrockGuardrailImageBackend,
)
from safegen.errors import (
    AccessDeniedError,
    ConfigurationError,
    InvalidImageError,
    InvalidRequestError,
    MalformedResponseError,
    PolicyError,
    ServiceError,
    ServiceUnavailableError,
    ThrottledError,
)
from safegen.ports import ImageBackend, TextClassifier
from safegen.prompt import CheckStatus
from safegen.prompt_policy import GuardrailSetting, PromptPolicy
from safegen.reports import PromptFinding
from tests.aws import answering, fake_client
from tests.strategies import make_image, secret_prompts

GID, VERSION = "abc123xyz", "3"
PROMPT = "a portrait of Jane Doe, jane@example.com, by the sea"
USAGE = {
    "topicPolicyUnits": 1,
    "contentPolicyUnits": 1,
    "wordPolicyUnits": 1,
    "sensitiveInformationPolicyUnits": 1,
    "sensitiveInformationPolicyFreeUnits": 0,
    "contextualGroundingPolicyUnits": 0,
}

# What the service says it guarded of a prompt (every answer has it; see the tests of its absence).
COVERED = {"textCharacters": {"guarded": len(PROMPT), "total": len(PROMPT)}}


def answer(action: str = "NONE", *assessments: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """An ApplyGuardrail answer (the masked output included, which must never be read)."""
    return {
        "usage": USAGE,
        "action": action,
        "outputs": [{"text": "MASKED {EMAIL} OUTPUT"}],
        "assessments": list(assessments),
        "guardrailCoverage": COVERED,
        **extra,
    }


def expected(text: str = PROMPT) -> dict[str, Any]:
    return {
        "guardrailIdentifier": GID,
        "guardrailVersion": VERSION,
        "source": "INPUT",
        "content": [{"text": {"text": text}}],
        "outputScope": "FULL",
    }


@pytest.fixture
def stubbed() -> Iterator[tuple[Any, Stubber]]:
    client = fake_client("bedrock-runtime")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def check(client: Any, **options: Any) -> BedrockGuardrail:
    return BedrockGuardrail(client, GID, VERSION, **options)


def classify(stubbed: tuple[Any, Stubber], body: dict[str, Any], **options: Any) -> Any:
    client, stubber = stubbed
    stubber.add_response("apply_guardrail", body, expected())
    return check(client, **options).classify(PROMPT)


# -- assessments become findings ----------------------------------------------------------------


def test_the_check_satisfies_the_text_classifier_port() -> None:
    """BedrockGuardrail is a TextClassifier (name and classify)."""
    assert isinstance(check(fake_client("bedrock-runtime")), TextClassifier)


def test_a_blocked_content_filter_is_a_blocking_finding_with_its_level(
    stubbed: tuple[Any, Stubber],
) -> None:
    """Type, confidence (on 0-100), strength and the deciding setting make the finding."""
    body = answer(
        "GUARDRAIL_INTERVENED",
        {
            "contentPolicy": {
                "filters": [
                    {
                        "type": "SEXUAL",
                        "confidence": "HIGH",
                        "filterStrength": "MEDIUM",
                        "action": "BLOCKED",
                        "detected": True,
                    },
                    {"type": "VIOLENCE", "confidence": "NONE", "action": "NONE"},
                ]
            }
        },
    )
    report = classify(stubbed, body)
    (finding,) = report.findings
    assert finding.source == "bedrock-guardrail"
    assert finding.label == "content:SEXUAL"
    assert finding.category == "content-filter"
    assert finding.score == CONFIDENCE_SCORES["HIGH"]
    assert finding.action is Action.BLOCK
    assert finding.reason == (
        f"action (guardrail {GID}:{VERSION} BLOCKED; confidence HIGH, filter strength MEDIUM)"
    )


def test_a_denied_topic_is_a_finding_named_by_the_topic(stubbed: tuple[Any, Stubber]) -> None:
    """A denied topic (configuration, not content) names the finding."""
    body = answer(
        "GUARDRAIL_INTERVENED",
        {"topicPolicy": {"topics": [{"name": "Weapons", "type": "DENY", "action": "BLOCKED"}]}},
    )
    (finding,) = classify(stubbed, body).findings
    assert (finding.label, finding.category, finding.score) == (
        "topic:Weapons",
        "denied-topic",
        100,
    )


def test_word_matches_give_a_span_never_the_word(stubbed: tuple[Any, Stubber]) -> None:
    """Custom words and managed lists: labelled by list, located by span, the word unquoted."""
    body = answer(
        "GUARDRAIL_INTERVENED",
        {
            "wordPolicy": {
                "customWords": [{"match": "Jane Doe", "action": "BLOCKED"}],
                "managedWordLists": [
                    {"match": "SEA", "type": "PROFANITY", "action": "BLOCKED", "detected": True}
                ],
            }
        },
    )
    custom, managed = classify(stubbed, body).findings
    assert (custom.label, custom.span) == ("word:custom", (14, 22))
    assert (managed.label, managed.span) == ("word:PROFANITY", (PROMPT.index("sea"), 52))
    for finding in (custom, managed):
        assert "Jane" not in json.dumps(finding.to_dict())


def test_sensitive_information_masked_or_blocked_is_a_finding(
    stubbed: tuple[Any, Stubber],
) -> None:
    """PII entities (anonymized too) and regexes are findings named by type and regex name."""
    body = answer(
        "GUARDRAIL_INTERVENED",
        {
            "sensitiveInformationPolicy": {
                "piiEntities": [
                    {"match": "jane@example.com", "type": "EMAIL", "action": "ANONYMIZED"},
                    {"match": "Jane Doe", "type": "NAME", "action": "NONE", "detected": True},
                ],
                "regexes": [
                    {"name": "ticket", "match": "zz", "regex": "z+", "action": "BLOCKED"},
                ],
            }
        },
    )
    report = classify(stubbed, body)
    assert [(f.label, f.span, f.action) for f in report.findings] == [
        ("pii:EMAIL", (24, 40), Action.BLOCK),
        ("regex:ticket", None, Action.BLOCK),
    ]
    assert report.notes == ("bedrock-guardrail: pii:NAME detected, not acted on",)
    assert "ANONYMIZED" in report.findings[0].reason


def test_contextual_grounding_scores_are_findings(stubbed: tuple[Any, Stubber]) -> None:
    """A grounding filter's score (0-1) is put on 0-100 with its threshold in the reason."""
    body = answer(
        "GUARDRAIL_INTERVENED",
        {
            "contextualGroundingPolicy": {
                "filters": [
                    {"type": "RELEVANCE", "threshold": 0.5, "score": 0.25, "action": "BLOCKED"}
                ]
            }
        },
    )
    (finding,) = classify(stubbed, body).findings
    assert (finding.label, finding.score) == ("grounding:RELEVANCE", 25.0)
    assert "score 25 against threshold 50" in (finding.reason or "")


def test_an_intervention_with_nothing_to_show_is_still_a_finding(
    stubbed: tuple[Any, Stubber],
) -> None:
    """GUARDRAIL_INTERVENED with no acted-on assessment blocks as guardrail:intervened."""
    (finding,) = classify(stubbed, answer("GUARDRAIL_INTERVENED")).findings
    assert (finding.label, finding.action) == ("guardrail:intervened", Action.BLOCK)


def test_an_intervention_beside_a_detection_is_still_shown(stubbed: tuple[Any, Stubber]) -> None:
    """A detection judged BLOCK does not stand in for the intervention: both are findings."""
    body = answer(
        "GUARDRAIL_INTERVENED",
        {
            "contentPolicy": {
                "filters": [
                    {"type": "HATE", "confidence": "LOW", "action": "NONE", "detected": True}
                ]
            }
        },
    )
    report = classify(stubbed, body, detected=Action.BLOCK)
    assert [f.label for f in report.findings] == ["detected:content:HATE", "guardrail:intervened"]


def test_an_assessment_blocked_under_action_none_still_counts(
    stubbed: tuple[Any, Stubber],
) -> None:
    """An item that says BLOCKED is a finding even when the answer's action says NONE."""
    body = answer(
        "NONE",
        {
            "contentPolicy": {
                "filters": [{"type": "HATE", "confidence": "LOW", "action": "BLOCKED"}]
            }
        },
    )
    (finding,) = classify(stubbed, body).findings
    assert (finding.label, finding.score) == ("content:HATE", CONFIDENCE_SCORES["LOW"])


def test_nothing_found_is_an_empty_report(stubbed: tuple[Any, Stubber]) -> None:
    """No intervention, no detection: no finding, no note."""
    body = answer(
        "NONE",
        {"contentPolicy": {"filters": [{"type": "HATE", "confidence": "NONE", "action": "NONE"}]}},
    )
    report = classify(stubbed, body)
    assert report.findings == ()
    assert report.notes == ()


def test_review_instead_of_block_and_detections_judged(stubbed: tuple[Any, Stubber]) -> None:
    """action=REVIEW sends interventions to review; detected=REVIEW makes detections findings."""
    body = answer(
        "GUARDRAIL_INTERVENED",
        {
            "contentPolicy": {
                "filters": [
                    {"type": "INSULTS", "confidence": "HIGH", "action": "BLOCKED"},
                    {"type": "MISCONDUCT", "confidence": "LOW", "action": "NONE", "detected": True},
                ]
            }
        },
    )
    report = classify(stubbed, body, action=Action.REVIEW, detected=Action.REVIEW)
    assert [(f.label, f.action) for f in report.findings] == [
        ("content:INSULTS", Action.REVIEW),
        ("detected:content:MISCONDUCT", Action.REVIEW),
    ]
    assert report.findings[1].reason is not None
    assert report.findings[1].reason.startswith("detected (")


def test_an_empty_prompt_makes_no_call() -> None:
    """Whitespace is not sent; the report says why nothing was classified."""
    report = check(fake_client("bedrock-runtime")).classify("   ")
    assert report.notes == ("nothing to classify: the prompt is empty",)


def test_the_masked_output_is_never_logged(
    stubbed: tuple[Any, Stubber], caplog: pytest.LogCaptureFixture
) -> None:
    """At DEBUG, no log line holds the prompt or the guardrail's masked output."""
    caplog.set_level(logging.DEBUG)
    classify(stubbed, answer("GUARDRAIL_INTERVENED"))
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "MASKED" not in logged
    assert "jane" not in logged.lower()


# -- failures fail closed ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "status", "error"),
    [
        ("AccessDeniedException", 403, AccessDeniedError),
        ("ResourceNotFoundException", 404, ServiceError),
        ("ThrottlingException", 429, ThrottledError),
        ("InternalServerException", 500, ServiceUnavailableError),
        ("ServiceUnavailableException", 503, ServiceUnavailableError),
        ("ValidationException", 400, InvalidRequestError),
        ("ServiceQuotaExceededException", 400, ServiceError),
    ],
)
def test_each_error_code_fails_closed_with_its_code(
    stubbed: tuple[Any, Stubber], code: str, status: int, error: type[Exception]
) -> None:
    """Every modelled ApplyGuardrail error leaves through the choke point, keeping its code."""
    client, stubber = stubbed
    stubber.add_client_error(
        "apply_guardrail",
        code,
        "said something about " + PROMPT,
        status,
        expected_params=expected(),
    )
    moderator = PromptModerator(rules=None, classifiers=[check(client)])
    with pytest.raises(error) as raised:
        check(client).classify(PROMPT)
    assert isinstance(raised.value, ServiceError)
    assert raised.value.code == code
    stubber.add_client_error("apply_guardrail", code, "x", status, expected_params=expected())
    verdict = moderator.moderate(PROMPT)
    assert verdict.action is Action.BLOCK
    assert verdict.checks[-1].status is CheckStatus.FAILED


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (answer("MAYBE"), "unknown action"),
        (
            answer(
                "NONE",
                {
                    "contentPolicy": {
                        "filters": [{"type": "HATE", "confidence": "VERY", "action": "NONE"}]
                    }
                },
            ),
            "unknown confidence",
        ),
        (
            answer(
                "NONE",
                {
                    "contextualGroundingPolicy": {
                        "filters": [
                            {"type": "GROUNDING", "threshold": 0.5, "score": 1.5, "action": "NONE"}
                        ]
                    }
                },
            ),
            "not between 0 and 1",
        ),
        (
            answer("NONE", guardrailCoverage={"textCharacters": {"guarded": 10, "total": 51}}),
            "guarded 10 of 51 characters",
        ),
        (
            answer(
                "NONE",
                {
                    "invocationMetrics": {
                        "guardrailCoverage": {"textCharacters": {"guarded": 0, "total": 51}}
                    }
                },
            ),
            "guarded 0 of 51",
        ),
    ],
)
def test_answers_that_cannot_clear_the_prompt_are_malformed(
    stubbed: tuple[Any, Stubber], body: dict[str, Any], message: str
) -> None:
    """Valid to botocore's model, but unknown values or unguarded text: fail closed."""
    with pytest.raises(MalformedResponseError, match=message):
        classify(stubbed, body)


def test_an_unknown_item_action_counts_as_an_intervention(stubbed: tuple[Any, Stubber]) -> None:
    """An assessment action safegen does not know is never read as NONE."""
    body = answer(
        "GUARDRAIL_INTERVENED",
        {"topicPolicy": {"topics": [{"name": "X", "type": "DENY", "action": "QUARANTINED"}]}},
    )
    (finding,) = classify(stubbed, body).findings
    assert finding.action is Action.BLOCK
    assert "unknown action 'QUARANTINED'" in (finding.reason or "")


@pytest.mark.parametrize(
    "body",
    [
        b"{}",
        b'{"action": "NONE"}',
        b'{"action": "NONE", "assessments": null, "usage": {}, "outputs": []}',
        b'{"action": "NONE", "assessments": {}, "usage": {}, "outputs": []}',
        b'{"action": 3, "assessments": [], "usage": {}, "outputs": []}',
        b'{"action": "NONE", "assessments": [{"contentPolicy": {"filters": [{"type": "HATE"}]}}]}',
        b"not json",
    ],
)
def test_malformed_bodies_fail_closed(body: bytes) -> None:
    """A body missing what botocore's model requires, or of the wrong types, never clears."""
    client = answering("bedrock-runtime", body)
    with pytest.raises((MalformedResponseError, ServiceError)):
        check(client).classify(PROMPT)


# -- configuration and the policy file -----------------------------------------------------------


@pytest.mark.parametrize(
    ("guardrail_id", "version", "message"),
    [
        ("Upper", "1", "guardrail_id"),
        ("", "1", "guardrail_id"),
        ("arn:aws:bedrock:us-east-1:123:guardrail/x", "1", "guardrail_id"),
        (GID, "0", "guardrail_version"),
        (GID, "123456789", "guardrail_version"),
        (GID, "draft", "guardrail_version"),
        (GID, 1, "guardrail_version"),
    ],
)
def test_ids_and_versions_the_service_would_refuse_are_refused(
    guardrail_id: Any, version: Any, message: str
) -> None:
    """The model's patterns are checked when the check is built."""
    with pytest.raises(ConfigurationError, match=message):
        BedrockGuardrail(fake_client("bedrock-runtime"), guardrail_id, version)


def test_ids_and_versions_at_the_edges_are_accepted() -> None:
    """An ARN, version 99999999 and DRAFT pass."""
    arn = "arn:aws:bedrock:us-east-1:123456789012:guardrail/abc123"
    for gid, version in ((arn, "99999999"), (GID, "DRAFT"), (GID, "1")):
        assert BedrockGuardrail(fake_client("bedrock-runtime"), gid, version).guardrail_id == gid


def test_the_policy_file_names_the_guardrail_and_round_trips() -> None:
    """[prompts.guardrail] is read, written back unchanged, and changes the policy's hash."""
    table = {"prompts": {"guardrail": {"id": GID, "version": 3, "action": "review"}}}
    policy = ModerationPolicy.from_mapping(table)
    setting = policy.prompts.guardrail
    assert setting == GuardrailSetting(id=GID, version="3", action="review")
    written = policy.to_mapping()
    assert written["prompts"]["guardrail"] == {"id": GID, "version": "3", "action": "review"}
    assert ModerationPolicy.from_mapping(written) == policy
    assert policy.sha256 != ModerationPolicy().sha256


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"id": GID}, r"prompts\.guardrail\.version: missing"),
        ({"version": "1"}, r"prompts\.guardrail\.id: missing"),
        ({"id": GID, "version": "1", "verison": 2}, "did you mean 'version'"),
        ({"id": GID, "version": "v1"}, r"prompts\.guardrail\.version: must be"),
        ({"id": "My Guardrail", "version": "1"}, r"prompts\.guardrail\.id: 'My Guardrail'"),
        ({"id": GID, "version": "1", "action": "allow"}, r"prompts\.guardrail\.action"),
        ({"id": GID, "version": "1", "detected": "maybe"}, r"prompts\.guardrail\.detected"),
        ("abc", r"prompts\.guardrail: must be a table"),
    ],
)
def test_guardrail_settings_are_checked_where_they_are(table: Any, message: str) -> None:
    """Every guardrail setting error names its place, with a suggestion for a typo."""
    with pytest.raises(PolicyError, match=message):
        PromptPolicy.from_mapping({"guardrail": table})


def test_a_misspelt_section_suggests_guardrail() -> None:
    """[prompts.guardrails] is refused with the right name suggested."""
    with pytest.raises(PolicyError, match="did you mean 'guardrail'"):
        PromptPolicy.from_mapping({"guardrails": {"id": GID, "version": "1"}})


def test_from_policy_builds_the_check_the_policy_names(stubbed: tuple[Any, Stubber]) -> None:
    """The check's ID, version and actions come from the policy; reasons name its settings."""
    client, stubber = stubbed
    policy = PromptPolicy(guardrail={"id": GID, "version": VERSION, "action": "review"})
    guardrail = BedrockGuardrail.from_policy(policy, client=client)
    stubber.add_response("apply_guardrail", answer("GUARDRAIL_INTERVENED"), expected())
    (finding,) = guardrail.classify(PROMPT).findings
    assert finding.action is Action.REVIEW
    assert (finding.reason or "").startswith("prompts.guardrail.action (")


def test_from_policy_refuses_a_policy_without_one_and_with_policy_keeps_itself() -> None:
    """A policy that names no guardrail cannot build one; a check given one stays as it is."""
    with pytest.raises(ConfigurationError, match="names no guardrail"):
        BedrockGuardrail.from_policy(PromptPolicy(), client=fake_client("bedrock-runtime"))
    guardrail = check(fake_client("bedrock-runtime"), action=Action.REVIEW)
    assert guardrail.with_policy(PromptPolicy()) is guardrail


def test_the_prompt_moderator_from_a_policy_applies_the_guardrail_setting(
    stubbed: tuple[Any, Stubber],
) -> None:
    """PromptModerator.from_policy asks the check for the policy's copy (with_policy)."""
    client, stubber = stubbed
    policy = ModerationPolicy.from_mapping(
        {"prompts": {"guardrail": {"id": GID, "version": VERSION, "action": "review"}}}
    )
    guardrail = BedrockGuardrail(client, "other", "1")
    moderator = PromptModerator.from_policy(policy, classifiers=[guardrail])
    stubber.add_response("apply_guardrail", answer("GUARDRAIL_INTERVENED"), expected())
    verdict = moderator.moderate(PROMPT)
    assert verdict.action is Action.REVIEW


def test_under_a_policy_an_intervention_is_never_judged_by_its_score(
    stubbed: tuple[Any, Stubber],
) -> None:
    """A LOW-confidence intervention still blocks under a policy; a detection is judged apart."""
    client, stubber = stubbed
    policy = ModerationPolicy.from_mapping(
        {
            "prompts": {
                "block_at": 90,
                "guardrail": {"id": GID, "version": VERSION, "detected": "review"},
            }
        }
    )
    moderator = PromptModerator.from_policy(
        policy, classifiers=[BedrockGuardrail(client, "x", "1")]
    )
    body = answer(
        "GUARDRAIL_INTERVENED",
        {
            "contentPolicy": {
                "filters": [
                    {"type": "HATE", "confidence": "LOW", "action": "BLOCKED"},
                    {"type": "SEXUAL", "confidence": "HIGH", "action": "NONE", "detected": True},
                ]
            }
        },
    )
    stubber.add_response("apply_guardrail", body, expected())
    verdict = moderator.moderate(PROMPT)
    assert [(f.label, f.action, (f.reason or "").split(" (")[0]) for f in verdict.findings] == [
        ("content:HATE", Action.BLOCK, "prompts.guardrail.action"),
        ("detected:content:SEXUAL", Action.REVIEW, "prompts.guardrail.detected"),
    ]


# -- images ---------------------------------------------------------------------------------------

PNG = make_image("PNG", (96, 96), seed=5)


def image_expected(data: bytes = PNG, fmt: str = "png") -> dict[str, Any]:
    return {
        "guardrailIdentifier": GID,
        "guardrailVersion": VERSION,
        "source": "INPUT",
        "content": [{"image": {"format": fmt, "source": {"bytes": data}}}],
        "outputScope": "FULL",
    }


def images(client: Any, filters: tuple[str, ...] = ("SEXUAL", "VIOLENCE")) -> Any:
    return BedrockGuardrailImageBackend(client, GID, VERSION, image_filters=filters)


def clean(*kinds: str) -> dict[str, Any]:
    """An assessment in which each filter of *kinds* looked and found nothing."""
    filters = [{"type": k, "confidence": "NONE", "action": "NONE"} for k in kinds]
    return {"contentPolicy": {"filters": filters}}


CLEAN = clean("SEXUAL", "VIOLENCE")


def test_the_image_backend_satisfies_the_port() -> None:
    """BedrockGuardrailImageBackend is an ImageBackend."""
    assert isinstance(images(fake_client("bedrock-runtime")), ImageBackend)


def test_image_filters_become_labels_the_policy_judges(stubbed: tuple[Any, Stubber]) -> None:
    """SEXUAL at HIGH is Explicit at 100; the default policy blocks it; coverage is honest."""
    client, stubber = stubbed
    body = answer(
        "GUARDRAIL_INTERVENED",
        {
            "contentPolicy": {
                "filters": [
                    {"type": "SEXUAL", "confidence": "HIGH", "action": "BLOCKED"},
                    {"type": "VIOLENCE", "confidence": "LOW", "action": "NONE"},
                    {"type": "HATE", "confidence": "HIGH", "action": "NONE"},
                ]
            }
        },
    )
    stubber.add_response("apply_guardrail", body, image_expected())
    verdict = ImageModerator(images(client)).moderate(PNG)
    assert verdict.report is not None
    # VIOLENCE at LOW (33) is below the policy's 50, so not asked for; HATE is not a
    # configured image filter, so it is not read.
    assert [(label.name, label.confidence) for label in verdict.report.labels] == [
        ("Explicit", 100.0)
    ]
    assert verdict.report.coverage == ("Explicit", "Violence")
    assert verdict.action is Action.BLOCK
    assert verdict.decision is not None
    assert verdict.decision.not_evaluated is not None  # the rest of the policy is not evaluated


def test_every_confidence_at_or_above_the_minimum_is_a_label(stubbed: tuple[Any, Stubber]) -> None:
    """Asked for everything, each configured filter above NONE is a top-level label."""
    client, stubber = stubbed
    filters = [
        {"type": kind, "confidence": level, "action": "NONE"}
        for kind, level in (("SEXUAL", "NONE"), ("VIOLENCE", "LOW"), ("HATE", "MEDIUM"))
    ]
    stubber.add_response(
        "apply_guardrail", answer("NONE", {"contentPolicy": {"filters": filters}}), image_expected()
    )
    report = images(client, ("SEXUAL", "VIOLENCE", "HATE")).detect(PNG, min_confidence=33)
    assert [(x.name, x.confidence, x.level) for x in report.labels] == [
        ("Hate Symbols", 67.0, 1),
        ("Violence", 33.0, 1),
    ]


def test_a_clean_image_is_not_safe_where_the_filters_are_blind(
    stubbed: tuple[Any, Stubber],
) -> None:
    """No label at all: the policy's categories outside coverage are still not evaluated."""
    client, stubber = stubbed
    stubber.add_response("apply_guardrail", answer("NONE", CLEAN), image_expected())
    verdict = ImageModerator(images(client)).moderate(PNG)
    assert verdict.decision is not None
    assert verdict.decision.not_evaluated is not None
    assert verdict.action is not Action.ALLOW


def test_jpeg_is_sent_as_jpeg(stubbed: tuple[Any, Stubber]) -> None:
    """The block's format follows the bytes."""
    client, stubber = stubbed
    jpeg = make_image("JPEG", (96, 96), seed=6)
    stubber.add_response("apply_guardrail", answer("NONE", CLEAN), image_expected(jpeg, "jpeg"))
    assert images(client).detect(jpeg, min_confidence=50).labels == ()


@pytest.mark.parametrize(
    ("image", "limit"),
    [
        (make_image("GIF", (96, 96), seed=7), "format"),
        (b"not an image", "format"),
        (b"", "empty"),
        (b"\x89PNG\r\n\x1a\n" + b"\0" * (4 * 1024 * 1024), "bytes"),
    ],
)
def test_images_the_guardrail_cannot_take_are_refused_clearly(image: bytes, limit: str) -> None:
    """Not JPEG/PNG, empty or over 4 MB: InvalidImageError naming the limit, no call."""
    with pytest.raises(InvalidImageError) as raised:
        images(fake_client("bedrock-runtime")).detect(image, min_confidence=50)
    assert raised.value.limit == limit


def test_the_preflight_converts_what_the_guardrail_cannot_take(
    stubbed: tuple[Any, Stubber],
) -> None:
    """With the backend's preflight, a GIF is converted to PNG before it is sent."""
    client, stubber = stubbed
    stubber.add_response("apply_guardrail", answer("NONE", CLEAN), None)
    backend = images(client)
    moderator = ImageModerator(backend, preflight=backend.preflight(repair=True))
    verdict = moderator.moderate(make_image("GIF", (96, 96), seed=7))
    assert not verdict.failed


def test_an_image_left_unguarded_fails_closed(stubbed: tuple[Any, Stubber]) -> None:
    """Only 0 of 1 images guarded: the verdict blocks, naming the backend."""
    client, stubber = stubbed
    body = answer("NONE", guardrailCoverage={"images": {"guarded": 0, "total": 1}})
    stubber.add_response("apply_guardrail", body, image_expected())
    verdict = ImageModerator(images(client)).moderate(PNG)
    assert verdict.failed
    assert verdict.action is Action.BLOCK


@pytest.mark.parametrize("filters", [(), ("NUDITY",), "SEXUAL"])
def test_image_filters_must_be_named(filters: Any) -> None:
    """No filters, an unknown one, or a bare string are refused."""
    with pytest.raises(ConfigurationError, match="image_filters"):
        images(fake_client("bedrock-runtime"), filters)


def test_every_image_label_is_placed_in_the_taxonomy_or_reported_as_unknown() -> None:
    """Mapped labels are v7 top-level names; the others are unknown to v7, placed by the policy."""
    from safegen import REKOGNITION_V7

    for name, category in IMAGE_LABELS.values():
        if category is not None:
            assert REKOGNITION_V7.lookup(name).level == 1


# -- properties ------------------------------------------------------------------------------------

_ACTIONS = st.sampled_from(["BLOCKED", "NONE", "ANONYMIZED"])
_DETECTED = st.sampled_from([True, False, None])


def _with_detected(item: dict[str, Any], detected: bool | None) -> dict[str, Any]:
    return item if detected is None else {**item, "detected": detected}


@st.composite
def guardrail_answers(draw: st.DrawFn, secret: str) -> dict[str, Any]:
    """An ApplyGuardrail answer whose matches quote *secret*, with any mix of actions."""
    filters = [
        _with_detected(
            {
                "type": draw(st.sampled_from(["HATE", "SEXUAL", "PROMPT_ATTACK"])),
                "confidence": draw(st.sampled_from(list(CONFIDENCE_SCORES))),
                "action": draw(st.sampled_from(["BLOCKED", "NONE"])),
            },
            draw(_DETECTED),
        )
        for _ in range(draw(st.integers(0, 3)))
    ]
    words = [
        _with_detected({"match": secret, "action": draw(st.sampled_from(["BLOCKED", "NONE"]))}, d)
        for d in draw(st.lists(_DETECTED, max_size=2))
    ]
    pii = [
        _with_detected({"match": secret, "type": "NAME", "action": draw(_ACTIONS)}, d)
        for d in draw(st.lists(_DETECTED, max_size=2))
    ]
    assessment = {
        "contentPolicy": {"filters": filters},
        "wordPolicy": {"customWords": words, "managedWordLists": []},
        "sensitiveInformationPolicy": {"piiEntities": pii, "regexes": []},
    }
    action = draw(st.sampled_from(["NONE", "GUARDRAIL_INTERVENED"]))
    return answer(action, assessment)


class _Answering:
    """A stand-in client that answers one ApplyGuardrail call with a given body."""

    def __init__(self, body: dict[str, Any]) -> None:
        self.body = body

    def apply_guardrail(self, **_: Any) -> dict[str, Any]:
        return self.body


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_every_intervention_is_a_finding_and_none_quotes_the_prompt(data: st.DataObject) -> None:
    """Acted-on items are findings at the set action; an intervention is never ALLOW; no quote."""
    secret = data.draw(secret_prompts)
    body = data.draw(guardrail_answers(secret))
    action = data.draw(st.sampled_from([Action.BLOCK, Action.REVIEW]))
    detected = data.draw(st.sampled_from(list(Action)))
    guardrail = BedrockGuardrail(_Answering(body), GID, VERSION, action=action, detected=detected)
    report = guardrail.classify(f"before {secret} after")
    assessment = body["assessments"][0]
    items = [
        *assessment["contentPolicy"]["filters"],
        *assessment["wordPolicy"]["customWords"],
        *assessment["sensitiveInformationPolicy"]["piiEntities"],
    ]
    acted = [i for i in items if i["action"] != "NONE"]
    at_action = [f for f in report.findings if not f.label.startswith("detected:")]
    assert len(at_action) == len(acted) + (body["action"] == "GUARDRAIL_INTERVENED" and not acted)
    assert all(f.action is action for f in at_action)
    if body["action"] == "GUARDRAIL_INTERVENED" or acted:
        assert report.findings
    for finding in report.findings:
        shown = json.dumps(finding.to_dict(), ensure_ascii=False)
        assert secret not in shown
        assert finding.span in (None, (7, 7 + len(secret)))
    assert all(secret not in note for note in report.notes)


# -- red team 16 (#1, #6, #12): a guardrail's findings are decisions, not scores ----------------

_GUARDRAIL_TABLES = st.sampled_from(
    [
        None,
        {"id": GID, "version": VERSION},
        {"id": GID, "version": VERSION, "action": "review"},
        {"id": GID, "version": VERSION, "action": "block", "detected": "review"},
    ]
)
_PROMPT_POLICIES = st.builds(
    lambda block, review, guardrail: PromptPolicy(
        block_at=block, review_at=min(review, block), guardrail=guardrail
    ),
    st.floats(0, 100, allow_nan=False),
    st.floats(0, 100, allow_nan=False),
    _GUARDRAIL_TABLES,
)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_an_intervention_is_never_allowed_whatever_the_policy(data: st.DataObject) -> None:
    """Any intervention, any policy (none, given, per request), sync or async: never ALLOW."""
    from safegen.aio import AsyncPromptModerator, in_thread

    secret = data.draw(secret_prompts)
    body = data.draw(guardrail_answers(secret).filter(lambda b: b["action"] != "NONE"))
    action = data.draw(st.sampled_from([Action.BLOCK, Action.REVIEW]))
    guardrail = BedrockGuardrail(_Answering(body), GID, VERSION, action=action)
    prompts = data.draw(_PROMPT_POLICIES)
    policy = ModerationPolicy(prompts=prompts)
    prompt = f"before {secret} after"
    verdicts = [
        PromptModerator(None, [guardrail], policy=prompts).moderate(prompt),
        PromptModerator.from_policy(policy, classifiers=[guardrail]).moderate(prompt),
        PromptModerator(None, [guardrail]).moderate(prompt, policy=policy),
        PromptModerator.from_policy(ModerationPolicy(), classifiers=[guardrail]).moderate(
            prompt, policy=policy
        ),
    ]
    sync = PromptModerator.from_policy(policy, classifiers=[guardrail])
    twin = AsyncPromptModerator.from_policy(policy, classifiers=[in_thread(guardrail)])
    verdicts.append(asyncio.run(twin.moderate(prompt)))
    for verdict in verdicts:
        assert verdict.action is not Action.ALLOW
        assert any(f.decision == "intervened" for f in verdict.findings)
    assert verdicts[-1].action is sync.moderate(prompt).action


def test_a_low_confidence_intervention_blocks_under_a_policy_without_a_guardrail() -> None:
    """BLOCKED at LOW (33, under block_at 50) is the guardrail's decision: BLOCK, not ALLOW."""
    filters = [{"type": "SEXUAL", "confidence": "LOW", "action": "BLOCKED", "detected": True}]
    body = answer("GUARDRAIL_INTERVENED", {"contentPolicy": {"filters": filters}})
    guardrail = BedrockGuardrail(_Answering(body), GID, VERSION)
    verdict = PromptModerator(None, [guardrail], policy=PromptPolicy()).moderate(PROMPT)
    assert verdict.action is Action.BLOCK
    assert [f.decision for f in verdict.findings] == ["intervened"]


def test_a_policy_guardrail_action_raises_an_intervention_but_never_lowers_it() -> None:
    """prompts.guardrail.action block raises a REVIEW check's finding; review keeps BLOCK."""
    filters = [{"type": "HATE", "confidence": "HIGH", "action": "BLOCKED"}]
    body = answer("GUARDRAIL_INTERVENED", {"contentPolicy": {"filters": filters}})
    reviewing = BedrockGuardrail(_Answering(body), GID, VERSION, action=Action.REVIEW)
    blocking = PromptPolicy(guardrail={"id": GID, "version": VERSION})
    verdict = PromptModerator(None, [reviewing], policy=blocking).moderate(PROMPT)
    assert [(f.action, f.reason) for f in verdict.findings] == [
        (Action.BLOCK, "prompts.guardrail.action")
    ]
    blocker = BedrockGuardrail(_Answering(body), GID, VERSION)
    lenient = PromptPolicy(guardrail={"id": GID, "version": VERSION, "action": "review"})
    assert PromptModerator(None, [blocker], policy=lenient).moderate(PROMPT).action is Action.BLOCK


def test_another_classifiers_colon_labels_are_scores_not_guardrail_decisions() -> None:
    """detected:malware at 99 blocks by score; topic:weather at 1 is below every threshold."""
    from safegen.testing import FakeTextClassifier

    findings = [
        PromptFinding("custom", "detected:malware", 99.0, Action.BLOCK),
        PromptFinding("custom", "topic:weather", 1.0, Action.REVIEW),
    ]
    policy = PromptPolicy(guardrail={"id": GID, "version": VERSION, "detected": "allow"})
    moderator = PromptModerator(None, [FakeTextClassifier(findings, name="custom")], policy=policy)
    verdict = moderator.moderate("a cat")
    assert [(f.label, f.action, f.reason) for f in verdict.findings] == [
        ("detected:malware", Action.BLOCK, "prompts.block_at")
    ]


def test_a_per_request_policy_without_a_guardrail_keeps_the_moderators(
    stubbed: tuple[Any, Stubber],
) -> None:
    """An override naming no guardrail: the moderator's guardrail still runs and still blocks."""
    client, stubber = stubbed
    base = ModerationPolicy.from_mapping(
        {"prompts": {"guardrail": {"id": GID, "version": VERSION}}}
    )
    guardrail = BedrockGuardrail.from_policy(base.prompts, client=client)
    moderator = PromptModerator.from_policy(base, classifiers=[guardrail])
    filters = [{"type": "SEXUAL", "confidence": "LOW", "action": "BLOCKED"}]
    body = answer("GUARDRAIL_INTERVENED", {"contentPolicy": {"filters": filters}})
    stubber.add_response("apply_guardrail", body, expected())
    child = ModerationPolicy(block_at=40, review_at=20, version="child")
    assert moderator.moderate(PROMPT, policy=child).action is Action.BLOCK


# -- red team 16 (#3, #4): what the guardrail did not evaluate, or acted on, is never cleared ----


@pytest.mark.parametrize(
    "coverage",
    [
        None,  # no count at all
        {"textCharacters": {"guarded": 0, "total": 0}},
        {"images": {"guarded": 1, "total": 1}},  # no text count
    ],
)
def test_a_prompt_not_said_to_be_guarded_is_not_cleared(coverage: Any) -> None:
    """No text coverage, or 0 of 0 characters: MalformedResponseError, the check fails closed."""
    body = answer("NONE")
    body["guardrailCoverage"] = coverage
    if coverage is None:
        del body["guardrailCoverage"]
    with pytest.raises(MalformedResponseError, match="guard"):
        check(_Answering(body)).classify(PROMPT)


def test_one_character_of_one_guarded_clears_a_prompt() -> None:
    """The boundary: everything sent guarded (1 of 1) is a clean answer."""
    body = answer("NONE", guardrailCoverage={"textCharacters": {"guarded": 1, "total": 1}})
    assert check(_Answering(body)).classify("a").findings == ()


def test_an_image_filter_acted_on_at_low_confidence_is_a_blocking_label(
    stubbed: tuple[Any, Stubber],
) -> None:
    """BLOCKED at LOW: a label at 100 whatever min_confidence, the level in the warnings."""
    client, stubber = stubbed
    filters = [
        {"type": "SEXUAL", "confidence": "LOW", "action": "BLOCKED"},
        {"type": "VIOLENCE", "confidence": "NONE", "action": "NONE"},
    ]
    body = answer("GUARDRAIL_INTERVENED", {"contentPolicy": {"filters": filters}})
    stubber.add_response("apply_guardrail", body, image_expected())
    policy = ModerationPolicy(exclude=["Drugs & Tobacco", "Alcohol", "Gambling"])
    report = images(client).detect(PNG, min_confidence=90)
    assert [(x.name, x.confidence) for x in report.labels] == [("Explicit", 100.0)]
    assert "confidence LOW" in report.warnings[0]
    assert policy.evaluate(report.labels, coverage=report.coverage).action is Action.BLOCK


@pytest.mark.parametrize(
    "body",
    [
        answer("NONE"),  # no filter reported: nothing looked
        answer("NONE", clean("HATE")),  # only a filter not configured here
        answer("NONE", CLEAN, guardrailCoverage={"images": {"guarded": 0, "total": 0}}),
        answer("GUARDRAIL_INTERVENED", CLEAN),  # intervened on nothing the filters show
    ],
)
def test_an_image_the_guardrail_did_not_evaluate_fails_closed(
    stubbed: tuple[Any, Stubber], body: dict[str, Any]
) -> None:
    """No filter reported, 0 of 0 images, or an unexplained intervention: a failed BLOCK."""
    client, stubber = stubbed
    stubber.add_response("apply_guardrail", body, image_expected())
    verdict = ImageModerator(images(client)).moderate(PNG)
    assert verdict.failed
    assert verdict.action is Action.BLOCK


def test_a_filter_that_did_not_report_is_not_coverage(stubbed: tuple[Any, Stubber]) -> None:
    """Only the configured filters that reported saw the image; MISCONDUCT alone sees nothing."""
    client, stubber = stubbed
    stubber.add_response("apply_guardrail", answer("NONE", clean("SEXUAL")), image_expected())
    assert images(client).detect(PNG, min_confidence=50).coverage == ("Explicit",)
    stubber.add_response("apply_guardrail", answer("NONE", clean("MISCONDUCT")), image_expected())
    verdict = ImageModerator(images(client, ("MISCONDUCT",))).moderate(PNG)
    assert verdict.report is not None
    assert verdict.report.coverage == ()
    assert not verdict.failed
    assert verdict.action is not Action.ALLOW  # everything moderated is not evaluated
