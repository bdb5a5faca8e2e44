"""Malformed answers from user-supplied backends: a failed check, never ALLOW, never a crash.

A backend, classifier or generator of your own can answer with anything: another type, a report
built with attrs' validators switched off (labels that are not labels, NaN scores), or an
exception of any kind. Whatever it is, the check fails closed.

Each test states how many answers it tries (hypothesis's max_examples).
"""

from __future__ import annotations

import math
from typing import Any

import attrs
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from safegen import (
    Action,
    ContentType,
    GeneratedImage,
    Generation,
    GenerationRequest,
    ImageModerator,
    ImageReport,
    ModerationLabel,
    Pipeline,
    PromptFinding,
    PromptModerator,
    TextReport,
)
from safegen.local import Ensemble
from safegen.pipeline import ImageStatus
from safegen.reports import ImageSource
from safegen.testing import FakeGenerator, FakeImageBackend
from tests.strategies import make_image

ANSWERS_TRIED = 200

# Values that are not what a field holds: wrong types, non-finite numbers, out-of-range ones.
odd_values = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from([math.nan, math.inf, -math.inf, -1.0, 100.5, 1e308]),
    st.integers(),
    st.text(max_size=5),
    st.binary(max_size=5),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.builds(object),
)
errors = st.sampled_from(
    [
        ValueError("odd"),
        KeyError("labels"),
        TypeError("not a report"),
        AttributeError("detect"),
        RecursionError(),
        ZeroDivisionError(),
        UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"),
        OSError("socket closed"),
        Exception("anything"),
    ]
)


def unchecked(valid: Any, **fields: Any) -> Any:
    """Return a copy of *valid* with *fields* forced in, past converters and validators.

    What a careless backend can hand over: an attrs instance altered after it was built.
    """
    copy = attrs.evolve(valid)
    for name, value in fields.items():
        object.__setattr__(copy, name, value)
    return copy


@st.composite
def odd_labels(draw: st.DrawFn) -> Any:
    """A label that is not one: another type, or a label with an impossible field."""
    field = draw(st.sampled_from(["name", "confidence", "parent", "level"]))
    good: dict[str, Any] = {"name": "Weapons", "confidence": 90.0, "parent": "Violence"}
    good[field] = draw(odd_values)
    return draw(st.one_of(odd_values, st.just(unchecked(ModerationLabel("Weapons", 90.0), **good))))


@st.composite
def malformed_image_answers(draw: st.DrawFn) -> Any:
    """What a broken image backend might answer instead of a well-formed ImageReport."""
    field = draw(st.sampled_from(["labels", "content_types", "coverage", "warnings", "parts"]))
    value = draw(
        st.one_of(
            odd_values,
            st.lists(odd_labels(), min_size=1, max_size=3).map(tuple),
            st.just((unchecked(ContentType("Animated", 90.0), confidence=math.nan),)),
        )
    )
    # No coverage is a valid answer (the backend sees the whole taxonomy), not a broken one.
    assume(not (field == "coverage" and value is None))
    report = unchecked(ImageReport(), **{field: value})
    return draw(st.one_of(odd_values, st.just(report), st.lists(odd_labels(), max_size=2)))


class Answers:
    """A backend, classifier or generator that answers whatever it is told, or raises it."""

    def __init__(self, answer: Any, *, name: str = "custom", raises: bool = False) -> None:
        self.name = name
        self.answer = answer
        self.raises = raises
        self.thresholds: dict[str, Any] = {}

    def _give(self) -> Any:
        if self.raises:
            raise self.answer
        return self.answer

    def detect(self, image: ImageSource, *, min_confidence: float) -> Any:
        return self._give()

    def classify(self, text: str) -> Any:
        return self._give()

    def generate(self, request: GenerationRequest) -> Any:
        return self._give()


def backends() -> st.SearchStrategy[Answers]:
    return st.one_of(
        malformed_image_answers().map(Answers),
        errors.map(lambda error: Answers(error, raises=True)),
    )


@settings(max_examples=ANSWERS_TRIED, suppress_health_check=[HealthCheck.too_slow])
@given(backends(), st.booleans())
def test_a_malformed_image_answer_fails_closed(backend: Answers, in_ensemble: bool) -> None:
    """Never ALLOW, never an exception: the verdict is a failure naming the backend."""
    fine = Answers(ImageReport(), name="fine")
    checked: Any = Ensemble([fine, backend]) if in_ensemble else backend
    verdict = ImageModerator(checked).moderate(b"image")
    assert verdict.failed
    assert verdict.action is Action.BLOCK
    assert verdict.decision is None


def _well_formed(finding: PromptFinding) -> bool:
    try:
        attrs.validate(finding)
    except Exception:
        return False
    return True


@st.composite
def malformed_text_answers(draw: st.DrawFn) -> Any:
    """What a broken classifier might answer instead of a well-formed TextReport."""
    field = draw(st.sampled_from(["source", "label", "score", "action", "span", "match"]))
    good: dict[str, Any] = {"source": "custom", "label": "TOXIC", "score": 90.0}
    good["action"] = Action.BLOCK
    good[field] = draw(st.one_of(odd_values, st.just(Action.ALLOW), st.just("BLOCK")))
    finding = unchecked(PromptFinding("custom", "TOXIC", 90.0, Action.BLOCK), **good)
    # Some draws are legal for their field (no span, any text as a label, a score of 5):
    # only a finding that really is malformed tests failing closed.
    assume(not _well_formed(finding))
    report = draw(
        st.one_of(
            st.just(unchecked(TextReport(), findings=(finding,))),
            odd_values.map(lambda v: unchecked(TextReport(), findings=v)),
            odd_values.map(lambda v: unchecked(TextReport(), notes=v)),
        )
    )
    return draw(st.one_of(odd_values, st.just(report), st.just(finding), st.just((finding,))))


@settings(max_examples=ANSWERS_TRIED, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        malformed_text_answers().map(Answers),
        errors.map(lambda error: Answers(error, raises=True)),
    ),
    st.sampled_from(["cascade", "parallel"]),
)
def test_a_malformed_classifier_answer_fails_closed(classifier: Answers, strategy: str) -> None:
    """The check is FAILED and the verdict BLOCK; the pipeline rejects the prompt."""
    moderator = PromptModerator(classifiers=[classifier], strategy=strategy)  # type: ignore[arg-type]
    verdict = moderator.moderate("a quiet lake")
    assert verdict.action is Action.BLOCK
    assert [check.name for check in verdict.failed] == ["custom"]
    generator = FakeGenerator([make_image()])
    result = Pipeline(moderator, generator, ImageModerator(FakeImageBackend())).run("a lake")
    assert result.status == "rejected"
    assert generator.requests == ()


REQUEST = GenerationRequest(prompt="a lake", images=2)
IMAGE = make_image()
GOOD = Generation(REQUEST, (GeneratedImage(IMAGE, "PNG", 1),))


@st.composite
def malformed_generations(draw: st.DrawFn) -> Any:
    """What a broken generator might answer: not a Generation, or one that does not add up."""
    image = GeneratedImage(IMAGE, "PNG", 1)
    shapes = [
        unchecked(GOOD, images=()),  # no images and no reason
        unchecked(GOOD, images=(image, image, image)),  # more than asked
        unchecked(GOOD, images=draw(odd_values)),
        unchecked(GOOD, request=draw(odd_values)),
        # Non-empty bytes are a legal answer (the image moderator judges what they show).
        unchecked(
            GOOD,
            images=(
                unchecked(
                    image,
                    data=draw(odd_values.filter(lambda v: v == b"" or not isinstance(v, bytes))),
                ),
            ),
        ),
        unchecked(GOOD, request=unchecked(REQUEST, images=draw(odd_values))),
        unchecked(GOOD, request=GenerationRequest(prompt="another", images=2)),
    ]
    return draw(st.one_of(odd_values, st.sampled_from(shapes), st.just((image,))))


@settings(max_examples=ANSWERS_TRIED, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        malformed_generations().map(Answers),
        errors.map(lambda error: Answers(error, raises=True)),
    )
)
def test_a_malformed_generation_is_a_failed_result_never_an_empty_success(
    generator: Answers,
) -> None:
    """Status failed, no image delivered, and a warning that says generation failed."""
    pipeline = Pipeline(None, generator, ImageModerator(FakeImageBackend()))
    result = pipeline.run("a lake", images=2)
    assert result.status == "failed"
    assert all(image.status is not ImageStatus.SAFE for image in result.images)
    assert result.images == ()
    assert any(w.startswith("generation failed") for w in result.warnings)
