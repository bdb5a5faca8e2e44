"""Per-request policies: validated, judged as a moderator built with them, cached, recorded."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from safegen import (
    Action,
    Cascade,
    ConfigurationError,
    ImageModerator,
    ModerationLabel,
    ModerationPolicy,
    Pipeline,
    PromptModerator,
    RuleFilter,
)
from safegen.aio import AsyncImageModerator, AsyncPipeline, AsyncPromptModerator
from safegen.image import POLICY_CACHE_SIZE
from safegen.observe import RecordingObserver
from safegen.prompt import PromptFinding
from safegen.prompt_policy import PromptPolicy
from safegen.testing import (
    AsyncFakeGenerator,
    AsyncFakeImageBackend,
    AsyncFakeTextClassifier,
    FakeGenerator,
    FakeImageBackend,
    FakeTextClassifier,
)
from tests.strategies import (
    make_image,
    policies,
    prompt_policy_tables,
    prompt_texts,
    rekognition_labels,
    stricter_policies,
    with_a_label_lowered,
)

IMAGE = make_image("PNG", (32, 32), seed=3)
WEAPONS = ModerationLabel("Weapons", 62.0, parent="Violence")
#: A child account's policy: blocks from 40, reviews from 20 (the default blocks from 50).
CHILD = ModerationPolicy(block_at=40.0, review_at=20.0, version="child-2026-11")


def untimed(value: Any) -> Any:
    """A verdict or result as plain data without its timings."""
    data = value.to_dict()
    data.pop("seconds", None)
    data.pop("timings", None)
    for check in data.get("checks", []):
        check.pop("seconds")
    return data


def scored(*findings: tuple[str, float]) -> list[PromptFinding]:
    """A classifier's findings, each as it would report it (BLOCK: it judges by itself)."""
    return [
        PromptFinding("fake-classifier", label, score, Action.BLOCK) for label, score in findings
    ]


# -- validation -----------------------------------------------------------------------------------


@pytest.mark.parametrize("wrong", ["child.toml", {"block_at": 40}, PromptPolicy(), 3])
def test_an_override_that_is_not_a_policy_is_refused_naming_it(wrong: object) -> None:
    """A file name, a table, a prompt section or a number: ConfigurationError naming policy."""
    image = ImageModerator(FakeImageBackend())
    prompt = PromptModerator(RuleFilter(["gore"]))
    cascade = Cascade(FakeImageBackend(name="cheap"), image)
    generator = FakeGenerator([IMAGE])
    pipeline = Pipeline(prompt, generator, image)
    calls: list[Callable[[], object]] = [
        lambda: image.moderate(IMAGE, policy=wrong),  # type: ignore[arg-type]
        lambda: image.moderate_many([IMAGE], policy=wrong),  # type: ignore[arg-type]
        lambda: prompt.moderate("a cat", policy=wrong),  # type: ignore[arg-type]
        lambda: cascade.moderate(IMAGE, policy=wrong),  # type: ignore[arg-type]
        lambda: pipeline.run("a cat", policy=wrong),  # type: ignore[arg-type]
    ]
    for call in calls:
        with pytest.raises(ConfigurationError, match=r"^policy: expected a ModerationPolicy"):
            call()
    assert generator.requests == ()


@pytest.mark.anyio
async def test_an_async_override_that_is_not_a_policy_is_refused_naming_it() -> None:
    """The async twins validate the override the same way, before anything is sent."""
    backend = AsyncFakeImageBackend()
    with pytest.raises(ConfigurationError, match=r"^policy: "):
        await AsyncImageModerator(backend).moderate(IMAGE, policy="child")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match=r"^policy: "):
        await AsyncPromptModerator().moderate("a cat", policy={})  # type: ignore[arg-type]
    generator = AsyncFakeGenerator([IMAGE])
    pipeline = AsyncPipeline(None, generator, AsyncImageModerator(backend))
    with pytest.raises(ConfigurationError, match=r"^policy: "):
        await pipeline.run("a cat", policy=1)  # type: ignore[arg-type]
    assert backend.calls == ()
    assert generator.requests == ()


# -- images ---------------------------------------------------------------------------------------


def test_the_backend_is_asked_down_to_the_overrides_floor() -> None:
    """A stricter override asks for less confident labels: none it needs is filtered out."""
    backend = FakeImageBackend([ModerationLabel("Weapons", 45.0, parent="Violence")])
    moderator = ImageModerator(backend)
    assert moderator.moderate(IMAGE).action is Action.ALLOW
    verdict = moderator.moderate(IMAGE, policy=CHILD)
    assert backend.calls[-1].min_confidence == CHILD.min_confidence == 20.0
    assert verdict.action is Action.BLOCK  # 45 is over the child policy's 40


def test_a_lower_floor_of_the_moderator_is_kept_under_an_override() -> None:
    """A moderator asking below its policy (a first look) keeps asking at least that low."""
    backend = FakeImageBackend()
    ImageModerator(backend, min_confidence=10.0).moderate(IMAGE, policy=CHILD)
    ImageModerator(backend, min_confidence=30.0).moderate(IMAGE, policy=CHILD)
    assert [c.min_confidence for c in backend.calls] == [10.0, 20.0]


def test_the_verdict_records_the_policy_default_and_override() -> None:
    """Both policies' sha256 and version are in the verdict and its JSON."""
    default = ModerationPolicy(version="v7")
    moderator = ImageModerator(FakeImageBackend([WEAPONS]), default)
    plain, child = moderator.moderate(IMAGE), moderator.moderate(IMAGE, policy=CHILD)
    assert (plain.policy_sha256, plain.policy_version) == (default.sha256, "v7")
    assert (child.policy_sha256, child.policy_version) == (CHILD.sha256, "child-2026-11")
    assert child.to_dict()["policy_sha256"] == CHILD.sha256
    failed = ImageModerator(FakeImageBackend(error=ValueError("x"))).moderate(IMAGE, policy=CHILD)
    assert failed.failed
    assert failed.policy_sha256 == CHILD.sha256


@settings(max_examples=60)
@given(policies(), policies(), rekognition_labels(max_size=4))
def test_an_image_override_equals_a_moderator_built_with_it(
    default: ModerationPolicy, override: ModerationPolicy, labels: list[ModerationLabel]
) -> None:
    """moderate(policy=P) is what a moderator built with P says; the next call is unchanged."""
    moderator = ImageModerator(FakeImageBackend(labels), default)
    expected = ImageModerator(FakeImageBackend(labels), override).moderate(IMAGE)
    plain = moderator.moderate(IMAGE)
    assert untimed(moderator.moderate(IMAGE, policy=override)) == untimed(expected)
    assert untimed(moderator.moderate(IMAGE)) == untimed(plain)  # no leak into the next call


@settings(max_examples=60)
@given(
    policies().flatmap(lambda p: st.tuples(st.just(p), stricter_policies(p))),
    rekognition_labels(max_size=4),
)
def test_a_stricter_image_override_is_never_less_strict(
    pair: tuple[ModerationPolicy, ModerationPolicy], labels: list[ModerationLabel]
) -> None:
    """Lowered thresholds never give a weaker action, through the override path."""
    policy, stricter = pair
    moderator = ImageModerator(FakeImageBackend(labels), policy)
    base = moderator.moderate(IMAGE).action
    assert moderator.moderate(IMAGE, policy=stricter).action.severity >= base.severity


def test_a_cascade_override_judges_both_looks_by_it() -> None:
    """A first look sure under the default is unsure under a stricter override: then is asked."""
    first = FakeImageBackend([ModerationLabel("Weapons", 30.0, parent="Violence")], name="cheap")
    then = FakeImageBackend([ModerationLabel("Weapons", 45.0, parent="Violence")], name="paid")
    cascade = Cascade(first, ImageModerator(then))
    assert cascade.moderate(IMAGE).backend == "cheap"
    verdict = cascade.moderate(IMAGE, policy=CHILD)
    assert verdict.backend == "paid"
    assert verdict.action is Action.BLOCK
    assert verdict.policy_sha256 == CHILD.sha256
    assert cascade.moderate(IMAGE).policy_sha256 == ModerationPolicy().sha256


# -- prompts --------------------------------------------------------------------------------------


@settings(max_examples=25)
@given(prompt_policy_tables(), prompt_texts, st.floats(0, 100, allow_nan=False))
def test_a_prompt_override_equals_a_moderator_built_with_it(
    table: dict[str, Any], prompt: str, score: float
) -> None:
    """A policy moderator's rules and thresholds judged as from_policy(P) would; next call same."""
    classifier = FakeTextClassifier(scored(("INSULT", score), ("TOXIC", score)))
    override = ModerationPolicy(prompts=PromptPolicy.from_mapping(table))
    moderator = PromptModerator.from_policy(
        ModerationPolicy(), classifiers=[classifier], strategy="parallel"
    )
    expected = PromptModerator.from_policy(override, classifiers=[classifier], strategy="parallel")
    plain = moderator.moderate(prompt)
    got, want = moderator.moderate(prompt, policy=override), expected.moderate(prompt)
    assert (got.action, got.findings) == (want.action, want.findings)
    assert got.policy_sha256 == override.sha256
    assert untimed(moderator.moderate(prompt)) == untimed(plain)


@settings(max_examples=25)
@given(
    prompt_policy_tables(),
    st.sampled_from(["INSULT", "TOXIC"]),
    st.floats(0, 100, allow_nan=False),
    st.floats(0, 100, allow_nan=False),
)
def test_a_stricter_prompt_override_is_never_less_strict(
    table: dict[str, Any], label: str, lower: float, score: float
) -> None:
    """A label's thresholds lowered in the override: the classifier's finding never counts less."""
    prompts = PromptPolicy.from_mapping(table)
    moderator = PromptModerator.from_policy(
        prompts, classifiers=[FakeTextClassifier(scored((label, score)))]
    )
    base = moderator.moderate("a cat", policy=ModerationPolicy(prompts=prompts)).action
    for stricter in with_a_label_lowered(prompts, label, lower):
        got = moderator.moderate("a cat", policy=ModerationPolicy(prompts=stricter)).action
        assert got.severity >= base.severity


def test_the_prompt_verdict_records_the_policy() -> None:
    """from_policy records its ModerationPolicy; an override records its own; none without."""
    default = ModerationPolicy(version="base")
    moderator = PromptModerator.from_policy(default)
    assert moderator.moderate("a cat").policy_sha256 == default.sha256
    assert moderator.moderate("a cat", policy=CHILD).policy_version == "child-2026-11"
    assert PromptModerator(RuleFilter(["gore"])).moderate("a cat").policy_sha256 is None
    assert moderator.moderate("a cat").to_dict()["policy_version"] == "base"


def test_a_source_policy_must_be_the_moderators_policy() -> None:
    """A recorded policy that did not judge the prompt would be a false audit record."""
    with pytest.raises(ConfigurationError, match=r"^source_policy: "):
        PromptModerator(
            policy=PromptPolicy(),
            source_policy=CHILD.__class__(prompts=PromptPolicy(block_at=10.0)),
        )


# -- the pipeline ---------------------------------------------------------------------------------


def test_a_pipeline_override_judges_prompt_and_images_and_is_recorded() -> None:
    """The child policy blocks a 45% weapon the default allows; the result records it."""
    backend = FakeImageBackend([ModerationLabel("Weapons", 45.0, parent="Violence")])
    pipeline = Pipeline(
        PromptModerator(RuleFilter(["gore"])),
        FakeGenerator([IMAGE]),
        ImageModerator(backend),
        on_unsafe_image="withhold",
    )
    plain = pipeline.run("a lake")
    child = pipeline.run("a lake", policy=CHILD)
    assert plain.images[0].verdict.action is Action.ALLOW
    assert child.images[0].verdict.action is Action.BLOCK
    assert child.policy_sha256 == CHILD.sha256
    assert child.prompt is not None
    assert child.prompt.policy_sha256 == CHILD.sha256
    assert plain.policy_sha256 == ModerationPolicy().sha256
    assert pipeline.run("a lake").images[0].verdict.action is Action.ALLOW  # no leak


@pytest.mark.anyio
async def test_an_async_override_equals_the_sync_one() -> None:
    """The async twins take the same override and reach the same verdicts."""
    labels = [ModerationLabel("Weapons", 45.0, parent="Violence")]
    sync = ImageModerator(FakeImageBackend(labels)).moderate(IMAGE, policy=CHILD)
    aio = await AsyncImageModerator(AsyncFakeImageBackend(labels)).moderate(IMAGE, policy=CHILD)
    assert untimed(aio) == untimed(sync)
    finding = scored(("INSULT", 30.0))
    sync_prompt = PromptModerator(classifiers=[FakeTextClassifier(finding)])
    aio_prompt = AsyncPromptModerator(
        classifiers=[AsyncFakeTextClassifier(finding, name="fake-classifier")]
    )
    assert untimed(await aio_prompt.moderate("a cat", policy=CHILD)) == untimed(
        sync_prompt.moderate("a cat", policy=CHILD)
    )


# -- the cache ------------------------------------------------------------------------------------


def test_overrides_are_built_once_per_hash_and_bounded() -> None:
    """An equal policy reuses the compiled moderator; the cache keeps at most its size."""
    moderator = PromptModerator(RuleFilter(["gore"]))
    first = moderator._for_policy(CHILD)
    assert moderator._for_policy(attrs.evolve(CHILD)) is first  # equal content, same hash
    for n in range(POLICY_CACHE_SIZE + 5):
        moderator._for_policy(ModerationPolicy(version=f"v{n}"))
    assert len(moderator._overrides) == POLICY_CACHE_SIZE
    assert moderator._for_policy(CHILD) is not first  # the least recently used went first


def test_the_cache_is_safe_from_several_threads() -> None:
    """Threads asking for the same policies all get one moderator per policy."""
    moderator = ImageModerator(FakeImageBackend())
    found: list[object] = []
    barrier = threading.Barrier(8)

    def ask() -> None:
        barrier.wait()
        found.extend(
            moderator._for_policy(ModerationPolicy(version=f"v{n % 3}")) for n in range(30)
        )

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(m) for m in found}) == 3
    assert len(moderator._overrides) == 3


# -- observers ------------------------------------------------------------------------------------


class Broken:
    """An observer whose every method raises."""

    def prompt_checked(self, verdict: object) -> None:
        raise RuntimeError("observer down")

    def image_checked(self, verdict: object) -> None:
        raise RuntimeError("observer down")

    def pipeline_ran(self, result: object) -> None:
        raise RuntimeError("observer down")


def test_each_moderator_tells_its_observer_once_per_verdict() -> None:
    """Prompt, image, many images and a cascade: one event per verdict, with that verdict."""
    recorder = RecordingObserver()
    prompt = PromptModerator(RuleFilter(["gore"]), observer=recorder)
    image = ImageModerator(FakeImageBackend([WEAPONS]), observer=recorder)
    verdict = prompt.moderate("a g0r3 scene")
    one = image.moderate(IMAGE)
    many = image.moderate_many([IMAGE, IMAGE])
    cascade = Cascade(
        FakeImageBackend(name="cheap"), ImageModerator(FakeImageBackend()), observer=recorder
    )
    final = cascade.moderate(IMAGE)
    assert recorder.events == [
        ("prompt_checked", verdict),
        ("image_checked", one),
        ("image_checked", many[0]),
        ("image_checked", many[1]),
        ("image_checked", final),
    ]


def test_a_pipeline_tells_each_observer_once() -> None:
    """The same observer on the pipeline and its moderators hears each verdict once, run first."""
    recorder = RecordingObserver()
    pipeline = Pipeline(
        PromptModerator(RuleFilter(["gore"]), observer=recorder),
        FakeGenerator([IMAGE]),
        ImageModerator(FakeImageBackend(), observer=recorder),
        observer=recorder,
    )
    result = pipeline.run("a lake", images=2)
    # The run comes first, so a tracer can open its span before the stages' spans.
    assert [name for name, _ in recorder.events] == [
        "pipeline_ran",
        "prompt_checked",
        "image_checked",
        "image_checked",
    ]
    assert recorder.of("pipeline_ran") == [result]


def test_a_raising_observer_changes_nothing() -> None:
    """A broken observer everywhere: the same verdicts and result as without one."""

    def build(observer: Broken | None) -> Pipeline:
        return Pipeline(
            PromptModerator(RuleFilter(["gore"]), observer=observer),
            FakeGenerator([IMAGE]),
            ImageModerator(FakeImageBackend([WEAPONS]), observer=observer),
            observer=observer,
        )

    assert untimed(build(Broken()).run("a lake")) == untimed(build(None).run("a lake"))
    assert build(Broken()).prompt_moderator.moderate("gore").action is Action.BLOCK  # type: ignore[union-attr]


def test_an_observer_must_be_one() -> None:
    """Something without the three methods is refused when the moderator is built."""
    with pytest.raises(ConfigurationError, match=r"^observer: expected an Observer"):
        ImageModerator(FakeImageBackend(), observer=print)  # type: ignore[arg-type]


# -- red team 16 (#2, #7): an override replaces the policy, never the moderator's own checks ------

_OWN_WORDS = st.from_regex(r"[bcdfgkmpz][aeiou][bcdfgkmpz][aeiou][lnrstx]", fullmatch=True)


@st.composite
def own_moderators(draw: st.DrawFn) -> tuple[PromptModerator, str]:
    """A moderator with its own word list, settings and a classifier; a prompt for it."""
    words = draw(st.lists(_OWN_WORDS, min_size=1, max_size=3, unique=True))
    failing = draw(st.booleans())
    label = draw(st.sampled_from(["INSULT", "TOXIC"]))
    score = draw(st.floats(0, 100, allow_nan=False))
    action = draw(st.sampled_from([Action.REVIEW, Action.BLOCK]))
    classifier = FakeTextClassifier(
        [PromptFinding("ml", label, score, action)],
        error=RuntimeError("down") if failing else None,
        name="ml",
    )
    moderator = PromptModerator(
        RuleFilter(words),
        [classifier],
        rule_action=draw(st.sampled_from([Action.REVIEW, Action.BLOCK])),
        on_failure=draw(st.sampled_from([Action.REVIEW, Action.BLOCK])),
        fail_open=draw(st.sampled_from([(), ("ml",), ("ml", "rules")])),
        strategy=draw(st.sampled_from(["cascade", "parallel"])),
    )
    used = draw(st.lists(st.sampled_from(words), max_size=2))
    prompt = " ".join(["a", *used, draw(prompt_texts)])
    return moderator, prompt


@settings(max_examples=60, deadline=None)
@given(own_moderators(), prompt_policy_tables())
def test_an_override_never_loosens_a_moderator_without_a_policy(
    built: tuple[PromptModerator, str], table: dict[str, Any]
) -> None:
    """Any override of a policy-less moderator: its words, classifier and failures still count."""
    moderator, prompt = built
    override = ModerationPolicy(prompts=PromptPolicy.from_mapping(table))
    own = moderator.moderate(prompt).action
    assert moderator.moderate(prompt, policy=override).action.severity >= own.severity
    twin = AsyncPromptModerator.from_sync(moderator)
    assert asyncio.run(twin.moderate(prompt, policy=override)).action.severity >= own.severity


def test_an_override_keeps_the_moderators_own_words_and_rule_action() -> None:
    """The moderator's own term still matches under an override, judged by its rule_action."""
    moderator = PromptModerator(RuleFilter(["zorblax"]), rule_action=Action.REVIEW)
    verdict = moderator.moderate("draw a zorblax", policy=CHILD)
    assert verdict.action is Action.REVIEW
    assert [(f.label, f.reason) for f in verdict.findings] == [("zorblax", "rule_action")]
    assert verdict.policy_sha256 == CHILD.sha256


def test_a_requests_fail_open_never_opens_a_closed_check() -> None:
    """fail_open and on_failure are the operator's: an override can close, never open."""
    failing = FakeTextClassifier(error=RuntimeError("down"), name="toxicity")
    moderator = PromptModerator(None, [failing], on_failure=Action.REVIEW)
    opening = ModerationPolicy.from_mapping(
        {"prompts": {"fail_open": ["toxicity"], "on_failure": "review"}}
    )
    assert moderator.moderate("a cat", policy=opening).action is Action.REVIEW
    closing = ModerationPolicy.from_mapping({"prompts": {"on_failure": "block"}})
    assert moderator.moderate("a cat", policy=closing).action is Action.BLOCK
    opened = PromptModerator(None, [failing], fail_open={"toxicity"})
    assert opened.moderate("a cat", policy=opening).action is Action.ALLOW


@pytest.mark.anyio
async def test_a_new_override_is_compiled_off_the_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    """The async moderator builds an uncompiled per-request policy in a worker thread."""
    moderator = AsyncPromptModerator(RuleFilter(["zorblax"]))
    loop_thread = threading.get_ident()
    built_on: list[int] = []
    original = AsyncPromptModerator._with_policy

    def spy(self: AsyncPromptModerator, policy: ModerationPolicy) -> Any:
        built_on.append(threading.get_ident())
        return original(self, policy)

    monkeypatch.setattr(AsyncPromptModerator, "_with_policy", spy)
    policy = ModerationPolicy.from_mapping(
        {"prompts": {"categories": {"brand": {"terms": ["acme"]}}}}
    )
    assert (await moderator.moderate("an acme zorblax", policy=policy)).action is Action.BLOCK
    assert len(built_on) == 1
    assert loop_thread not in built_on
    await moderator.moderate("again", policy=policy)  # compiled: not built again
    assert len(built_on) == 1


def test_the_term_filter_caches_hold_as_many_policies_as_a_moderator() -> None:
    """The word-list caches are at least POLICY_CACHE_SIZE, so a moderator's cache never misses."""
    from safegen import prompt_policy

    assert prompt_policy.TERM_FILTER_CACHE_SIZE >= POLICY_CACHE_SIZE
    for cached in (prompt_policy._rule_filter, prompt_policy._rule_filters):
        assert cached.cache_info().maxsize == prompt_policy.TERM_FILTER_CACHE_SIZE


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_a_stricter_override_of_a_policy_moderator_is_never_less_strict(
    data: st.DataObject,
) -> None:
    """Thresholds lowered, any on_failure or fail_open asked for: never less strict."""
    table = {
        k: v for k, v in data.draw(prompt_policy_tables()).items() if k not in ("labels", "classes")
    }
    own = ModerationPolicy(prompts=PromptPolicy.from_mapping(table))
    lower = data.draw(st.floats(0, 100, allow_nan=False))
    stricter = dict(table, block_at=min(table["block_at"], lower))
    if "review_at" in table:
        stricter["review_at"] = min(table["review_at"], lower)
    stricter.pop("fail_open", None)
    stricter.pop("on_failure", None)
    if data.draw(st.booleans()):
        stricter["fail_open"] = ["rules", "fake-classifier"]  # a request asking to open both
    if data.draw(st.booleans()):
        stricter["on_failure"] = "review"
    override = ModerationPolicy(prompts=PromptPolicy.from_mapping(stricter))
    words = data.draw(st.lists(_OWN_WORDS, min_size=1, max_size=2, unique=True))
    failing = data.draw(st.booleans())
    classifier = FakeTextClassifier(
        scored(("INSULT", data.draw(st.floats(0, 100, allow_nan=False)))),
        error=RuntimeError("down") if failing else None,
    )
    moderator = PromptModerator(
        RuleFilter(words),
        [classifier],
        policy=own.prompts,
        source_policy=own,
        on_failure=data.draw(st.sampled_from([Action.REVIEW, Action.BLOCK])),
        fail_open=data.draw(st.sampled_from([(), ("fake-classifier",)])),
    )
    prompt = " ".join([*data.draw(st.lists(st.sampled_from(words), max_size=2)), "a cat"])
    base = moderator.moderate(prompt).action
    assert moderator.moderate(prompt, policy=override).action.severity >= base.severity
