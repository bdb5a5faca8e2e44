"""Tests of the Pipeline with the public fakes: outcomes, regeneration, fail-closed, JSON."""

from __future__ import annotations

import base64
import json
from typing import Any, Literal

import attrs
import pytest

from safegen import (
    Action,
    ConfigurationError,
    ImageModerator,
    ImageReport,
    ModerationLabel,
    ModerationPolicy,
    PromptModerator,
    RuleFilter,
)
from safegen.errors import ServiceUnavailableError
from safegen.generate import (
    ContentFilterFinding,
    GeneratedImage,
    Generation,
    GenerationRequest,
)
from safegen.image import ImageSource
from safegen.pipeline import ImageStatus, Pipeline
from safegen.prompt import PromptFinding, TextReport
from safegen.testing import FakeGenerator, FakeImageBackend
from tests.strategies import make_image

SAFE = make_image("PNG", (100, 100), seed=1)
UNSAFE = make_image("PNG", (100, 100), seed=2)
NUDITY = (
    ModerationLabel("Explicit", 95.0, level=1),
    ModerationLabel("Explicit Nudity", 95.0, parent="Explicit", level=2),
)
DOWN = ServiceUnavailableError("down", service="rekognition", operation="Op", code="Internal")


def labels_for(image: ImageSource) -> ImageReport:
    """The fake backend's view: the UNSAFE picture shows nudity, anything else nothing."""
    return ImageReport(labels=NUDITY if image == UNSAFE else (), model_version="7.0")


def pipeline(generator: FakeGenerator, **options: object) -> Pipeline:
    return Pipeline(
        PromptModerator(rules=RuleFilter(["gore"])),
        generator,
        ImageModerator(FakeImageBackend(respond=labels_for)),
        **options,  # type: ignore[arg-type]
    )


def test_a_safe_prompt_and_safe_images_are_delivered_as_generated() -> None:
    """Status ok, every image SAFE with its bytes, the prompt verdict attached."""
    generator = FakeGenerator([SAFE])
    result = pipeline(generator).run("a quiet lake", images=2, seed=10)
    assert result.status == "ok"
    assert [i.status for i in result.images] == [ImageStatus.SAFE, ImageStatus.SAFE]
    assert result.images[0].data == SAFE
    assert result.prompt is not None
    assert result.prompt.action is Action.ALLOW
    assert result.warnings == ()
    assert set(result.timings) == {"prompt", "generate", "moderate", "total"}
    # The negative prompts were sent; the prompt itself was not changed.
    (request,) = generator.requests
    assert request.prompt == "a quiet lake"
    assert request.full_negative_prompt.startswith("nsfw")


def test_an_unsafe_prompt_is_rejected_before_anything_is_generated() -> None:
    """Rejected by default: no generation call, a warning naming the term."""
    generator = FakeGenerator([SAFE])
    result = pipeline(generator).run("a g0r3 scene")
    assert result.status == "rejected"
    assert generator.requests == ()
    assert "gore (rules)" in result.warnings[0]


def test_an_unsafe_prompt_can_go_on_with_a_warning() -> None:
    """on_unsafe_prompt="warn" generates anyway and says so."""
    result = pipeline(FakeGenerator([SAFE]), on_unsafe_prompt="warn").run("a g0r3 scene")
    assert result.status == "ok"
    assert "allowed with a warning" in result.warnings[0]


def test_an_unsafe_image_is_blurred_by_default() -> None:
    """Delivered redacted (different bytes, same format), with the labels in the warning."""
    result = pipeline(FakeGenerator([UNSAFE])).run("a lake")
    (image,) = result.images
    assert image.status is ImageStatus.REDACTED
    assert image.data is not None
    assert image.data != UNSAFE
    assert "Explicit Nudity" in result.warnings[0]


@pytest.mark.parametrize(
    ("outcome", "status", "has_data"),
    [("withhold", ImageStatus.WITHHELD, False), ("warn", ImageStatus.FLAGGED, True)],
)
def test_unsafe_images_can_be_withheld_or_flagged(
    outcome: str, status: ImageStatus, has_data: bool
) -> None:
    """Withheld: no bytes. Warn: the original bytes, with a warning (an explicit choice)."""
    result = pipeline(FakeGenerator([UNSAFE]), on_unsafe_image=outcome).run("a lake")
    (image,) = result.images
    assert image.status is status
    assert (image.data is not None) is has_data


def test_regenerate_tries_again_with_a_new_seed_and_derived_negatives() -> None:
    """First attempt unsafe, second safe: the retry has the next seed and nudity negatives."""
    generator = FakeGenerator([UNSAFE, SAFE])
    result = pipeline(generator, on_unsafe_image="regenerate").run("a lake", seed=5)
    assert [i.status for i in result.images] == [ImageStatus.SAFE]
    first, second = generator.requests
    assert (first.seed, second.seed) == (5, 6)
    assert "nudity" in second.negative_prompt
    assert len(result.attempts) == 2


def test_regenerate_gives_up_after_max_attempts_and_withholds() -> None:
    """Still unsafe after the last attempt: withheld, never shipped."""
    generator = FakeGenerator([UNSAFE])
    result = pipeline(generator, on_unsafe_image="regenerate", max_attempts=3).run("a lake")
    assert len(generator.requests) == 3
    assert [i.status for i in result.images] == [ImageStatus.WITHHELD]


@pytest.mark.parametrize("outcome", ["blur", "warn", "withhold", "regenerate"])
def test_an_image_whose_moderation_failed_is_withheld_whatever_the_outcome(
    outcome: Literal["blur", "warn", "withhold", "regenerate"],
) -> None:
    """Fail closed end to end: even with "warn", an unchecked image is not delivered."""
    moderator = ImageModerator(FakeImageBackend(error=DOWN))
    result = Pipeline(None, FakeGenerator([SAFE]), moderator, on_unsafe_image=outcome).run("x")
    image = result.images[-1]
    assert image.status is ImageStatus.WITHHELD
    assert image.data is None
    assert any("could not be moderated" in w for w in result.warnings)


def test_a_review_decision_is_surfaced_distinctly_with_its_human_loop() -> None:
    """REVIEW images carry review=True and the human loop (and are redacted meanwhile)."""
    from safegen import HumanLoop, ModerationPolicy

    loop = HumanLoop("arn:aws:sagemaker:us-east-1:1:human-loop/x", ("ConditionsEvaluation",))

    def with_loop(image: ImageSource) -> ImageReport:
        return attrs.evolve(labels_for(image), human_loop=loop)

    moderator = ImageModerator(
        FakeImageBackend(respond=with_loop), ModerationPolicy(block_at=99, review_at=50)
    )
    result = Pipeline(None, FakeGenerator([UNSAFE]), moderator).run("a lake")
    (image,) = result.images
    assert image.review
    assert image.status is ImageStatus.REDACTED
    assert image.to_dict()["human_loop"] == loop.arn
    assert "sent to review" in result.warnings[0]


def test_a_failed_generation_is_a_failed_result() -> None:
    """No images, status failed, the reason in the warnings."""
    result = pipeline(FakeGenerator(error=DOWN)).run("a lake")
    assert result.status == "failed"
    assert result.images == ()
    assert "generation failed" in result.warnings[0]


def test_the_models_own_filter_is_a_warning_and_a_refused_prompt_is_not_retried() -> None:
    """A Bedrock-style prompt refusal: no images, a warning, no regeneration loop."""

    def refuse(request: GenerationRequest) -> Generation:
        return Generation(request, filtered=(ContentFilterFinding("prompt", "blocked"),))

    generator = FakeGenerator(respond=refuse)
    result = pipeline(generator, on_unsafe_image="regenerate").run("a lake")
    assert len(generator.requests) == 1
    assert result.images == ()
    assert "content filter stopped the prompt" in result.warnings[0]


def test_the_result_serialises_for_an_http_response() -> None:
    """Stable JSON: images in base64, statuses, warnings, timings; no prompt text."""
    result = pipeline(FakeGenerator([SAFE, UNSAFE])).run("secret words here", images=2)
    data = json.loads(json.dumps(result.to_dict()))
    assert list(data) == [
        "status",
        "prompt",
        "images",
        "warnings",
        "attempts",
        "timings",
        "policy_sha256",
        "policy_version",
    ]
    assert [i["status"] for i in data["images"]] == ["safe", "redacted"]
    assert base64.b64decode(data["images"][0]["data_base64"]) == SAFE
    assert data["images"][1]["labels"] == ["Explicit Nudity"]
    assert "secret" not in json.dumps(data)


def test_bad_settings_are_refused() -> None:
    """Unknown outcomes and max_attempts below 1 are ConfigurationErrors."""
    with pytest.raises(ConfigurationError):
        pipeline(FakeGenerator(), on_unsafe_image="ignore")
    with pytest.raises(ConfigurationError):
        pipeline(FakeGenerator(), max_attempts=0)


class TestOptimistic:
    def test_generation_overlaps_the_prompt_check(self) -> None:
        """The classifier and the generator meet at a barrier: only overlap lets both pass."""
        import threading

        from safegen.prompt import TextReport

        barrier = threading.Barrier(2)

        class SlowClassifier:
            name = "slow"

            def classify(self, text: str) -> TextReport:
                barrier.wait(timeout=10)
                return TextReport()

        def generate(request: GenerationRequest) -> Generation:
            barrier.wait(timeout=10)
            return FakeGenerator([SAFE]).generate(request)

        generator = FakeGenerator(respond=generate)
        result = Pipeline(
            PromptModerator(classifiers=[SlowClassifier()]),
            generator,
            ImageModerator(FakeImageBackend(respond=labels_for)),
            optimistic=True,
        ).run("a lake")
        assert [i.status for i in result.images] == [ImageStatus.SAFE]
        assert len(generator.requests) == 1

    def test_a_prompt_the_rules_block_costs_no_generation(self) -> None:
        """The free local rules run first: a rule-blocked prompt never reaches the generator."""
        generator = FakeGenerator([UNSAFE])
        result = Pipeline(
            PromptModerator(rules=RuleFilter(["gore"])),
            generator,
            ImageModerator(FakeImageBackend(respond=labels_for)),
            optimistic=True,
        ).run("gore")
        assert result.status == "rejected"
        assert generator.requests == ()

    def test_an_invalid_prompt_costs_no_generation(self) -> None:
        """A prompt over the limit is refused before anything is generated."""
        from safegen import InvalidPromptError

        generator = FakeGenerator([SAFE])
        pipeline = Pipeline(PromptModerator(rules=RuleFilter(["gore"])), generator,
                            ImageModerator(FakeImageBackend()), optimistic=True)  # fmt: skip
        with pytest.raises(InvalidPromptError):
            pipeline.run("x" * 20_000)
        assert generator.requests == ()

    def test_a_prompt_rejected_by_a_classifier_discards_the_early_generation_unseen(
        self,
    ) -> None:
        """Rejected after generation began: no images, none sent for image moderation."""
        backend = FakeImageBackend(respond=labels_for)

        class Blocks:
            name = "ml"

            def classify(self, text: str) -> TextReport:
                found = PromptFinding("ml", "TOXIC", 99.0, Action.BLOCK)
                return TextReport((found,))

        result = Pipeline(
            PromptModerator(classifiers=[Blocks()]),
            FakeGenerator([UNSAFE]),
            ImageModerator(backend),
            optimistic=True,
        ).run("a lake")
        assert result.status == "rejected"
        assert result.images == ()
        assert backend.calls == ()
        assert "discarded" in result.warnings[-1]


# -- frozen and validated ------------------------------------------------------------------


def test_a_pipeline_cannot_be_changed_after_it_was_built() -> None:
    """No setting changes in place; evolve makes a checked copy."""
    built = pipeline(FakeGenerator([SAFE]))
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        built.on_unsafe_image = "warn"  # type: ignore[misc]
    with pytest.raises(ConfigurationError, match=r"^redaction: must be one of"):
        attrs.evolve(built, redaction="sepia")  # type: ignore[arg-type]
    assert attrs.evolve(built, redaction="pixelate").redaction == "pixelate"


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("prompt_moderator", RuleFilter(["gore"])),
        ("generator", object()),
        ("generator", FakeGenerator(name="")),
        ("image_moderator", FakeImageBackend()),
        ("on_unsafe_prompt", "ignore"),
        ("on_unsafe_image", "ignore"),
        ("max_attempts", 0),
        ("max_attempts", 2.0),
        ("derive_negatives", "yes"),
        ("redaction", "sepia"),
        ("optimistic", 1),
    ],
)
def test_each_bad_setting_is_refused_naming_it(setting: str, value: Any) -> None:
    """At construction and on evolve: a ConfigurationError whose message starts with the name."""
    good = pipeline(FakeGenerator([SAFE]))
    with pytest.raises(ConfigurationError, match=f"^{setting}: "):
        attrs.evolve(good, **{setting: value})
    settings: dict[str, Any] = {
        "prompt_moderator": None,
        "generator": FakeGenerator([SAFE]),
        "image_moderator": ImageModerator(FakeImageBackend()),
        setting: value,
    }
    with pytest.raises(ConfigurationError, match=f"^{setting}: "):
        Pipeline(**settings)


def test_max_attempts_only_matters_when_regenerating() -> None:
    """Without "regenerate", one generation whatever max_attempts says."""
    generator = FakeGenerator([UNSAFE])
    result = pipeline(generator, max_attempts=5).run("a lake")
    assert len(result.attempts) == 1
    assert len(generator.requests) == 1


# -- what the generator answers ------------------------------------------------------------


def test_a_generator_answering_no_images_and_no_reason_is_a_failed_generation() -> None:
    """Never an "ok" with zero images: status failed, and the warning says why."""
    result = pipeline(FakeGenerator()).run("a lake")
    assert result.status == "failed"
    assert result.images == ()
    assert "no images and no content-filter finding" in result.warnings[0]


def test_a_generator_answering_more_images_than_asked_is_a_failed_generation() -> None:
    """An answer that does not add up is refused whole, not trimmed."""

    def too_many(request: GenerationRequest) -> Generation:
        image = GeneratedImage(SAFE, "PNG", 1)
        return Generation(request, (image,) * (request.images + 1))

    result = pipeline(FakeGenerator(respond=too_many)).run("a lake")
    assert result.status == "failed"
    assert result.images == ()
    assert "2 images for the 1 asked for" in result.warnings[0]


@pytest.mark.parametrize("answer", [None, [SAFE], "image", GeneratedImage(SAFE, "PNG")])
def test_a_generator_answering_something_else_is_a_failed_generation(answer: Any) -> None:
    """Not a Generation: status failed with a warning, never a crash."""
    result = pipeline(FakeGenerator(respond=lambda request: answer)).run("a lake")
    assert result.status == "failed"
    assert "not a Generation" in result.warnings[0]


def test_an_answer_for_another_request_is_a_failed_generation() -> None:
    """The images must be the ones asked for."""

    def elsewhere(request: GenerationRequest) -> Generation:
        other = attrs.evolve(request, prompt="something else")
        return Generation(other, (GeneratedImage(SAFE, "PNG"),))

    result = pipeline(FakeGenerator(respond=elsewhere)).run("a lake")
    assert result.status == "failed"
    assert "another request" in result.warnings[0]


def test_fewer_images_than_asked_without_a_reason_is_warned() -> None:
    """One of two images, no content-filter finding: delivered, with a warning saying so."""

    def one(request: GenerationRequest) -> Generation:
        return Generation(request, (GeneratedImage(SAFE, "PNG", 1),))

    result = pipeline(FakeGenerator(respond=one)).run("a lake", images=2)
    assert result.status == "ok"
    assert [i.status for i in result.images] == [ImageStatus.SAFE]
    assert "made 1 of the 2 images asked for and gave no reason" in result.warnings[0]


# -- one policy for prompts and images ----------------------------------------------------------

ONE_POLICY = ModerationPolicy.from_mapping(
    {
        "block_at": 90,
        "prompts": {
            "categories": {
                "brand": {"action": "review", "terms": ["acme"]},
                "drugs": "allow",
            }
        },
    }
)


def test_from_policy_judges_the_prompt_by_its_prompts_section() -> None:
    """The policy's own term reviews the prompt; an allowed category passes; reasons are named."""
    built = Pipeline.from_policy(
        ONE_POLICY,
        generator=FakeGenerator([SAFE]),
        image_moderator=FakeImageBackend(respond=labels_for),
    )
    result = built.run("an acme poster")
    assert result.prompt is not None
    assert result.prompt.action is Action.REVIEW
    assert result.prompt.findings[0].reason == "prompts.categories.brand"
    allowed = built.run("a cocaine still life").prompt
    assert allowed is not None
    assert (allowed.action, allowed.findings) == (Action.ALLOW, ())


def test_from_policy_judges_images_by_the_same_policy() -> None:
    """A bare backend is judged by the policy: Explicit Nudity at 95 blocks only at block_at 90."""
    built = Pipeline.from_policy(
        ONE_POLICY,
        generator=FakeGenerator([UNSAFE]),
        image_moderator=FakeImageBackend(respond=labels_for),
        on_unsafe_image="withhold",
    )
    assert isinstance(built.image_moderator, ImageModerator)
    assert built.image_moderator.policy == ONE_POLICY
    (image,) = built.run("a lake").images
    assert image.status is ImageStatus.WITHHELD


def test_from_policy_refuses_what_is_no_policy() -> None:
    """A policy that is not a ModerationPolicy is a ConfigurationError naming it."""
    with pytest.raises(ConfigurationError, match=r"^policy: "):
        Pipeline.from_policy(
            {"block_at": 1},  # type: ignore[arg-type]
            generator=FakeGenerator([SAFE]),
            image_moderator=FakeImageBackend(),
        )
