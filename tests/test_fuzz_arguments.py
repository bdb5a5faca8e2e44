"""Wrong arguments of any type: a SafegenError subclass naming the input, never another exception.

Every public constructor and entry point of the policy, generation, image, prompt and pipeline
modules gets arbitrary values (None, bools, huge ints, NaN and infinities, text, bytes,
containers) for any of its arguments; ``attrs.evolve`` on each frozen class gets the same. The
call either succeeds or raises a :class:`~safegen.errors.SafegenError` subclass. Each test
states how many examples it tries (hypothesis's max_examples).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from safegen import (
    Action,
    Cascade,
    ContentFilterFinding,
    ContentType,
    ContentTypeRule,
    GeneratedImage,
    Generation,
    GenerationRequest,
    ImageModerator,
    ImageReport,
    ModerationLabel,
    ModerationPolicy,
    Pipeline,
    PromptModerator,
    Thresholds,
)
from safegen.errors import (
    ConfigurationError,
    GenerationRequestError,
    InvalidImageError,
    InvalidLabelError,
    InvalidPromptError,
    PolicyError,
    SafegenError,
)
from safegen.generate import checked_generation, negative_prompt, seeds
from safegen.testing import FakeGenerator, FakeImageBackend
from safegen.text import RuleFilter
from tests.strategies import arbitrary_values, make_image

EXAMPLES = 150
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])

IMAGE = make_image("PNG", (32, 32))
REQUEST = GenerationRequest(prompt="a lighthouse at dawn")


def _some(names: Iterable[str]) -> st.SearchStrategy[dict[str, Any]]:
    """Draw arbitrary values for any subset of *names* (the rest keep their defaults)."""
    return st.fixed_dictionaries({}, optional=dict.fromkeys(names, arbitrary_values))


def _safegen_or_success(call: Callable[[], object]) -> BaseException | None:
    """Run *call*; return the SafegenError it raised, if any. Any other exception propagates."""
    try:
        call()
    except SafegenError as error:
        return error
    return None


def _moderator() -> ImageModerator:
    return ImageModerator(FakeImageBackend([ModerationLabel("Weapons", 91.0, parent="Violence")]))


def _prompts() -> PromptModerator:
    return PromptModerator(RuleFilter(["gore"]))


def _pipeline(**settings: Any) -> Pipeline:
    return Pipeline(_prompts(), FakeGenerator([IMAGE]), _moderator(), **settings)


# -- the classes, each with a valid instance, for attrs.evolve ---------------------------------

FROZEN: dict[str, Callable[[], Any]] = {
    "ModerationPolicy": lambda: ModerationPolicy(review_at=30, labels={"Violence": 60}),
    "Thresholds": lambda: Thresholds(block_at=60, review_at=40),
    "ContentTypeRule": lambda: ContentTypeRule(min_confidence=70, labels={"Weapons": 90}),
    "GenerationRequest": lambda: REQUEST,
    "GeneratedImage": lambda: GeneratedImage(IMAGE, "PNG", 5),
    "ContentFilterFinding": lambda: ContentFilterFinding("prompt", "refused"),
    "Generation": lambda: Generation(REQUEST, (GeneratedImage(IMAGE, "PNG"),)),
    "ImageModerator": _moderator,
    "PromptModerator": _prompts,
    "Pipeline": _pipeline,
    "Cascade": lambda: Cascade(FakeImageBackend(), _moderator()),
}


@pytest.mark.parametrize("name", sorted(FROZEN))
@given(data=st.data())
@settings(max_examples=EXAMPLES, deadline=None)
def test_evolve_with_arbitrary_values_is_checked(name: str, data: st.DataObject) -> None:
    """attrs.evolve with arbitrary values for any fields: a SafegenError or a checked copy."""
    instance = FROZEN[name]()
    fields = [f.alias for f in attrs.fields(type(instance)) if f.init]
    changes = data.draw(_some(fields), label="changes")
    _safegen_or_success(lambda: attrs.evolve(instance, **changes))


# -- the policy ----------------------------------------------------------------------------------

_POLICY_FIELDS = ("block_at", "review_at", "labels", "exclude", "content_types", "not_evaluated")


@FUZZ
@given(kwargs=_some((*_POLICY_FIELDS, "taxonomy")))
def test_moderation_policy_with_arbitrary_settings(kwargs: dict[str, Any]) -> None:
    """ModerationPolicy(...) with arbitrary settings: a PolicyError or a policy."""
    error = _safegen_or_success(lambda: ModerationPolicy(**kwargs))
    assert error is None or isinstance(error, PolicyError)


@FUZZ
@given(
    entry=arbitrary_values,
    rule=arbitrary_values,
    key=st.one_of(
        st.none(), st.integers(), st.floats(), st.text(max_size=10), st.binary(max_size=5)
    ),
)
def test_policy_entries_with_arbitrary_values(entry: Any, rule: Any, key: Any) -> None:
    """A label entry, content-type rule or label key of any type: a PolicyError or a policy."""
    for call in (
        lambda: ModerationPolicy(labels={"Violence": entry}),
        lambda: ModerationPolicy(labels={key: 50}),
        lambda: ModerationPolicy(content_types={"Animated": rule}),
        lambda: ModerationPolicy(content_types={key: {}}),
        lambda: ModerationPolicy.from_mapping(entry),
        lambda: ModerationPolicy.from_mapping({"labels": {"Violence": {key: entry}}}),
        lambda: ContentTypeRule.from_mapping(rule, where="content_types.Animated"),
    ):
        error = _safegen_or_success(call)
        assert error is None or isinstance(error, PolicyError)


@FUZZ
@given(
    thresholds=_some(("block_at", "review_at")),
    rule=_some(("min_confidence", "labels", "exclude", "action", "taxonomy")),
)
def test_thresholds_and_rules_with_arbitrary_settings(
    thresholds: dict[str, Any], rule: dict[str, Any]
) -> None:
    """Thresholds(...) and ContentTypeRule(...) with arbitrary settings: a PolicyError or one."""
    for call in (lambda: Thresholds(**thresholds), lambda: ContentTypeRule(**rule)):
        error = _safegen_or_success(call)
        assert error is None or isinstance(error, PolicyError)


@FUZZ
@given(
    labels=arbitrary_values | st.lists(arbitrary_values, max_size=3),
    content_types=arbitrary_values | st.lists(arbitrary_values, max_size=3),
    coverage=arbitrary_values,
    label=arbitrary_values,
)
@example(labels=None, content_types=(), coverage=None, label=None)
@example(labels=(), content_types=5, coverage=7, label=10**5000)
def test_policy_methods_with_arbitrary_arguments(
    labels: Any, content_types: Any, coverage: Any, label: Any
) -> None:
    """evaluate, thresholds_for and blind_spots with arguments of any type: a SafegenError."""
    policy = ModerationPolicy(review_at=30)
    for call in (
        lambda: policy.evaluate(labels),
        lambda: policy.evaluate([], content_types),
        lambda: policy.evaluate([], coverage=coverage),
        lambda: policy.thresholds_for(label),
        lambda: policy.thresholds_for("Violence", content_types),
        lambda: policy.blind_spots(coverage),
        lambda: policy.blind_spots(["Violence"], content_types),
    ):
        _safegen_or_success(call)


def test_evaluate_refuses_a_non_collection_of_labels_naming_it() -> None:
    """evaluate(None) is an InvalidLabelError naming labels, not a TypeError from tuple()."""
    with pytest.raises(InvalidLabelError, match=r"^labels: expected a collection"):
        ModerationPolicy().evaluate(None)  # type: ignore[arg-type]
    with pytest.raises(InvalidLabelError, match=r"^content_types: expected a collection"):
        ModerationPolicy().evaluate([], 3)  # type: ignore[arg-type]


def test_a_lone_coverage_name_is_a_list_of_one() -> None:
    """A coverage given as one name is that name, not its characters."""
    policy = ModerationPolicy()
    assert policy.blind_spots("Violence") == policy.blind_spots(["Violence"])


@pytest.mark.parametrize(
    ("build", "setting"),
    [
        (lambda v: ModerationPolicy(block_at=v), "block_at"),
        (lambda v: ModerationPolicy(review_at=v), "review_at"),
        (lambda v: Thresholds(block_at=v), "block_at"),
        (lambda v: ModerationPolicy(labels={"Violence": v}), "block_at"),
        (lambda v: ModerationPolicy(labels={"Violence": {"review_at": v}}), "review_at"),
        (lambda v: ContentTypeRule(min_confidence=v), "min_confidence"),
    ],
)
@pytest.mark.parametrize(
    "value",
    [10**400, -(10**400), 10**5000, float("nan"), float("inf"), True, "50", [50]],
    ids=["1e400", "-1e400", "1e5000", "nan", "inf", "True", "str", "list"],
)
def test_policy_scores_refuse_what_is_not_a_finite_number(
    build: Callable[[object], object], setting: str, value: object
) -> None:
    """A score too large for a float, NaN, inf, a bool or a string: a PolicyError naming it."""
    with pytest.raises(PolicyError, match=setting):
        build(value)


# -- generation ----------------------------------------------------------------------------------

_REQUEST_FIELDS = (
    "prompt",
    "negative_prompt",
    "default_negatives",
    "width",
    "height",
    "images",
    "seed",
    "steps",
    "guidance",
)


@FUZZ
@given(kwargs=_some(_REQUEST_FIELDS))
def test_generation_request_with_arbitrary_fields(kwargs: dict[str, Any]) -> None:
    """GenerationRequest(...) with anything: an error naming a field, or every field in range."""
    kwargs.setdefault("prompt", "a lighthouse")
    error = _safegen_or_success(lambda: GenerationRequest(**kwargs))
    if error is not None:
        assert isinstance(error, GenerationRequestError)
        assert str(error).split(":")[0] in _REQUEST_FIELDS
        return
    request = GenerationRequest(**kwargs)
    assert isinstance(request.prompt, str)
    assert request.prompt.strip()
    assert isinstance(request.negative_prompt, str)
    assert type(request.default_negatives) is bool
    for whole in (request.width, request.height, request.images):
        assert type(whole) is int
        assert whole >= 1
    assert request.seed is None or (type(request.seed) is int and request.seed >= 0)
    assert request.steps is None or (type(request.steps) is int and request.steps >= 1)
    assert request.guidance is None or 0 < float(request.guidance) <= 100
    assert len(seeds(request)) == request.images
    assert all(s is None or 0 <= s < 2**32 for s in seeds(request))
    negative_prompt(request.negative_prompt, defaults=request.default_negatives)


@FUZZ
@given(extra=st.lists(arbitrary_values, max_size=3), defaults=arbitrary_values)
def test_negative_prompt_with_arbitrary_arguments(extra: list[Any], defaults: Any) -> None:
    """negative_prompt() with terms and defaults of any type: a GenerationRequestError or text."""
    error = _safegen_or_success(lambda: negative_prompt(*extra, defaults=defaults))
    assert error is None or isinstance(error, GenerationRequestError)


@FUZZ
@given(
    image=_some(("data", "format", "seed")),
    finding=_some(("stage", "message")),
    generation=_some(("request", "images", "filtered", "generator")),
    answer=arbitrary_values,
)
def test_generation_values_with_arbitrary_fields(
    image: dict[str, Any], finding: dict[str, Any], generation: dict[str, Any], answer: Any
) -> None:
    """A generator's answer of any shape: a SafegenError (MalformedResponseError), never a crash."""
    image = {"data": IMAGE, "format": "PNG", **image}
    finding = {"stage": "output", "message": "withheld", **finding}
    generation = {"request": REQUEST, "images": [GeneratedImage(IMAGE, "PNG")], **generation}
    for call in (
        lambda: GeneratedImage(**image),
        lambda: ContentFilterFinding(**finding),
        lambda: Generation(**generation),
        lambda: checked_generation(answer, "fake", REQUEST),
    ):
        _safegen_or_success(call)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("width", float("nan")),
        ("width", 1.5),
        ("width", float("inf")),
        ("width", 10**400),
        ("height", 0),
        ("images", True),
        ("seed", "x"),
        ("seed", -5),
        ("seed", 2**32),
        ("steps", float("nan")),
        ("guidance", float("inf")),
        ("guidance", 10**400),
        ("guidance", 0),
        ("negative_prompt", None),
        ("negative_prompt", 5),
        ("default_negatives", "no"),
        ("prompt", b"x"),
    ],
)
def test_generation_request_refusals_name_the_field(field: str, value: object) -> None:
    """Each of the red team's kinds of bad field is a GenerationRequestError naming the field."""
    with pytest.raises(GenerationRequestError, match=rf"^{field}: "):
        GenerationRequest(**dict[str, Any]({"prompt": "x", field: value}))


# -- image moderation ----------------------------------------------------------------------------


@FUZZ
@given(
    kwargs=_some(("policy", "fail_open", "on_failure", "preflight", "min_confidence")),
    backend=arbitrary_values,
)
def test_image_moderator_with_arbitrary_settings(kwargs: dict[str, Any], backend: Any) -> None:
    """ImageModerator(...) with arbitrary settings: a ConfigurationError naming one, or one."""
    for call in (
        lambda: ImageModerator(FakeImageBackend(), **kwargs),
        lambda: ImageModerator(backend),
    ):
        error = _safegen_or_success(call)
        assert error is None or isinstance(error, ConfigurationError)


@FUZZ
@given(
    images=arbitrary_values | st.lists(arbitrary_values, max_size=3),
    max_workers=arbitrary_values,
    report=arbitrary_values,
)
@example(images=None, max_workers=8, report=None)
@example(images=IMAGE, max_workers=8, report=ImageReport())
def test_image_moderator_methods_with_arbitrary_arguments(
    images: Any, max_workers: Any, report: Any
) -> None:
    """moderate, moderate_many and judge with arguments of any type: a SafegenError or verdicts.

    A bad image is a fail-closed verdict, not raised; a bad collection is an InvalidImageError.
    """
    moderator = _moderator()
    verdicts = _safegen_or_success(lambda: moderator.moderate(images))
    # Not an image at all (bytes or S3Object): a TypeError that is an InvalidImageError too.
    assert verdicts is None or (isinstance(verdicts, TypeError | InvalidImageError))
    assert verdicts is None or isinstance(verdicts, TypeError)
    error = _safegen_or_success(lambda: moderator.moderate_many(images, max_workers=max_workers))
    assert error is None or isinstance(error, ConfigurationError | InvalidImageError)
    error = _safegen_or_success(lambda: moderator.judge(report))
    assert error is None or isinstance(error, InvalidLabelError)


@FUZZ
@given(per_second=arbitrary_values, margin=arbitrary_values)
@example(per_second=1e-300, margin=10**400)
@example(per_second=10**400, margin=float("nan"))
def test_rates_and_margins_of_any_type(per_second: Any, margin: Any) -> None:
    """per_second and a Cascade's margin of any type: a ConfigurationError naming it, or used."""
    error = _safegen_or_success(lambda: _moderator().moderate_many([IMAGE], per_second=per_second))
    assert error is None or (isinstance(error, ConfigurationError) and "per_second" in str(error))
    error = _safegen_or_success(lambda: Cascade(FakeImageBackend(), _moderator(), margin=margin))
    assert error is None or (isinstance(error, ConfigurationError) and "margin" in str(error))


def test_moderate_many_refuses_one_image_or_no_collection() -> None:
    """moderate_many of None or of one image is an InvalidImageError, not a verdict a byte."""
    for images in (None, IMAGE, "image.png", 5):
        with pytest.raises(InvalidImageError, match=r"^images: expected a collection") as info:
            _moderator().moderate_many(images)  # type: ignore[arg-type]
        assert info.value.limit == "type"


@pytest.mark.parametrize(
    "value",
    [10**400, -(10**400), float("nan"), float("inf"), True, "5"],
    ids=["1e400", "-1e400", "nan", "inf", "True", "str"],
)
def test_image_settings_refuse_what_is_not_a_finite_number(value: object) -> None:
    """min_confidence, margin and per_second out of float range: a ConfigurationError naming it."""
    with pytest.raises(ConfigurationError, match=r"^min_confidence: "):
        ImageModerator(FakeImageBackend(), min_confidence=value)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match=r"^margin: "):
        Cascade(FakeImageBackend(), _moderator(), margin=value)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match=r"^per_second: "):
        _moderator().moderate_many([], per_second=value)  # type: ignore[arg-type]


# -- prompts and the pipeline --------------------------------------------------------------------


@FUZZ
@given(
    kwargs=_some(
        ("rules", "classifiers", "strategy", "rule_action", "fail_open", "on_failure", "max_chars")
    ),
    prompt=arbitrary_values,
)
@example(kwargs={"max_chars": -(10**5000)}, prompt=None)
def test_prompt_moderator_with_arbitrary_arguments(kwargs: dict[str, Any], prompt: Any) -> None:
    """PromptModerator(...) and its methods with anything: Configuration/InvalidPromptError."""
    error = _safegen_or_success(lambda: PromptModerator(**kwargs))
    assert error is None or isinstance(error, ConfigurationError)
    moderator = _prompts()
    for call in (
        lambda: moderator.moderate(prompt),
        lambda: moderator.validate(prompt),
        lambda: moderator.rules_block(prompt),
    ):
        error = _safegen_or_success(call)
        assert error is None or isinstance(error, InvalidPromptError)


_RUN_ARGUMENTS = ("negative_prompt", "images", "width", "height", "seed")


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    settings_=_some(
        (
            "on_unsafe_prompt",
            "on_unsafe_image",
            "max_attempts",
            "derive_negatives",
            "redaction",
            "optimistic",
        )
    ),
    prompt=arbitrary_values,
    run=_some(_RUN_ARGUMENTS),
)
@example(settings_={}, prompt="a lighthouse", run={"width": float("nan")})
@example(settings_={}, prompt="a lighthouse", run={"seed": "abc"})
@example(settings_={}, prompt="a lighthouse", run={"negative_prompt": 5})
def test_pipeline_with_arbitrary_arguments(
    settings_: dict[str, Any], prompt: Any, run: dict[str, Any]
) -> None:
    """Pipeline(...) and run() with anything: a SafegenError naming the input, or a result."""
    error = _safegen_or_success(lambda: _pipeline(**settings_))
    assert error is None or isinstance(error, ConfigurationError)
    pipeline = _pipeline(on_unsafe_image="withhold")
    error = _safegen_or_success(lambda: pipeline.run(prompt, **run))
    if error is not None:
        assert isinstance(error, InvalidPromptError | GenerationRequestError)
        assert str(error).split(":")[0] in ("prompt", *_RUN_ARGUMENTS)


@pytest.mark.parametrize(
    ("argument", "value"),
    [("width", 1.5), ("width", float("inf")), ("seed", -5), ("negative_prompt", 5)],
)
def test_pipeline_run_refuses_what_used_to_end_ok(argument: str, value: object) -> None:
    """Values a run used to accept and end "ok" on are refused before anything is generated."""
    generator = FakeGenerator([IMAGE])
    pipeline = Pipeline(_prompts(), generator, _moderator())
    with pytest.raises(GenerationRequestError, match=rf"^{argument}: "):
        pipeline.run("a lighthouse", **dict[str, Any]({argument: value}))
    assert generator.requests == ()


def test_pipeline_run_checks_the_prompt_first() -> None:
    """A prompt that is not a string is an InvalidPromptError, as documented."""
    with pytest.raises(InvalidPromptError, match=r"^prompt: "):
        _pipeline().run(5)  # type: ignore[arg-type]


def test_content_types_argument_is_still_read() -> None:
    """A content type given alone to thresholds_for is one content type."""
    policy = ModerationPolicy(content_types={"Animated": {"labels": {"Weapons": 95}}})
    assert policy.thresholds_for("Weapons", "Animated").block_at == 95
    assert policy.evaluate([], [ContentType("Animated", 99.0)]).action is Action.ALLOW
