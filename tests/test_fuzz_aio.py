"""Properties of the async face: for the same answers, the same verdicts as the sync shells.

The async moderators and pipeline share their cores with the sync ones; these properties pin
that down for drawn answers (labels, findings, failures of every kind) and settings, so a
change to one shell that the other does not follow is caught.
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from hypothesis import given, settings
from hypothesis import strategies as st

from safegen import (
    Action,
    ImageModerator,
    ModerationPolicy,
    Pipeline,
    PromptModerator,
    RuleFilter,
)
from safegen.aio import AsyncImageModerator, AsyncPipeline, AsyncPromptModerator
from safegen.errors import ServiceUnavailableError
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
    image_answers,
    make_image,
    policies,
    prompt_policy_tables,
    prompt_texts,
    text_answers,
)

IMAGES = (make_image("PNG", (32, 32), seed=4), make_image("PNG", (32, 32), seed=5))
RULES = RuleFilter.default()


def _failure(kind: str) -> Exception:
    if kind == "service":
        return ServiceUnavailableError("down", service="svc", operation="Op", code="Internal")
    return ValueError("a third-party library's own error")


def image_settings(answer: tuple[str, Any]) -> dict[str, Any]:
    """The fake backends' settings that give *answer* (sync and async take the same)."""
    how, what = answer
    if how == "labels":
        return {"labels": what}
    if how == "raise":
        return {"error": _failure(what)}
    return {"respond": lambda image: what}


def classifier_settings(answer: tuple[str, Any], name: str) -> dict[str, Any]:
    """The fake classifiers' settings that give *answer*."""
    how, what = answer
    if how == "findings":
        found = [PromptFinding(name, label, score, Action(act)) for label, score, act in what]
        return {"findings": found, "name": name}
    if how == "raise":
        return {"error": _failure(what), "name": name}
    return {"respond": lambda text: what, "name": name}


def untimed(value: Any) -> Any:
    """A verdict or result as plain data without its timings."""
    data = value.to_dict()
    data.pop("seconds", None)
    data.pop("timings", None)
    for check in data.get("checks", []):
        check.pop("seconds")
    return data


@settings(max_examples=80)
@given(policies(), image_answers(), st.booleans(), st.sampled_from([Action.BLOCK, Action.REVIEW]))
def test_async_image_verdicts_equal_sync_ones(
    policy: ModerationPolicy, answer: tuple[str, Any], fail_open: bool, on_failure: Action
) -> None:
    """Labels or any failure, any policy and failure settings: the same verdict."""
    options: dict[str, Any] = {"fail_open": fail_open, "on_failure": on_failure}
    sync = ImageModerator(FakeImageBackend(**image_settings(answer)), policy, **options)
    aio = AsyncImageModerator(AsyncFakeImageBackend(**image_settings(answer)), policy, **options)
    assert untimed(asyncio.run(aio.moderate(IMAGES[0]))) == untimed(sync.moderate(IMAGES[0]))


@settings(max_examples=40)
@given(
    prompt_texts,
    st.lists(text_answers(), max_size=3),
    st.sampled_from(["cascade", "parallel"]),
    st.one_of(st.none(), prompt_policy_tables()),
)
def test_async_prompt_verdicts_equal_sync_ones(
    prompt: str,
    answers: list[tuple[str, Any]],
    strategy: Literal["cascade", "parallel"],
    table: dict[str, Any] | None,
) -> None:
    """Rules, findings or failures of each classifier, either strategy, with or without a policy."""
    names = [f"fake-{i}" for i in range(len(answers))]
    sync_classifiers = [
        FakeTextClassifier(**classifier_settings(a, n)) for a, n in zip(answers, names, strict=True)
    ]
    async_classifiers = [
        AsyncFakeTextClassifier(**classifier_settings(a, n))
        for a, n in zip(answers, names, strict=True)
    ]
    if table is None:
        sync = PromptModerator(RULES, sync_classifiers, strategy=strategy)
        aio = AsyncPromptModerator(RULES, async_classifiers, strategy=strategy)
    else:
        policy = ModerationPolicy(prompts=PromptPolicy.from_mapping(table))
        sync = PromptModerator.from_policy(policy, classifiers=sync_classifiers, strategy=strategy)
        aio = AsyncPromptModerator.from_policy(
            policy, classifiers=async_classifiers, strategy=strategy
        )
    assert untimed(asyncio.run(aio.moderate(prompt))) == untimed(sync.moderate(prompt))


@settings(max_examples=40)
@given(
    st.sampled_from(["a quiet lake", "a g0r3 scene", "a cat"]),
    text_answers(),
    image_answers(),
    st.sampled_from(["ok", "raise", "empty"]),
    st.fixed_dictionaries(
        {
            "on_unsafe_prompt": st.sampled_from(["reject", "warn"]),
            "on_unsafe_image": st.sampled_from(["blur", "withhold", "warn", "regenerate"]),
            "max_attempts": st.integers(1, 3),
            "optimistic": st.booleans(),
            "redaction": st.sampled_from(["blur", "placeholder"]),
        }
    ),
    st.integers(1, 3),
    st.one_of(st.none(), policies()),
)
def test_async_pipeline_results_equal_sync_ones(
    prompt: str,
    prompt_answer: tuple[str, Any],
    image_answer: tuple[str, Any],
    generation: str,
    options: dict[str, Any],
    images: int,
    override: ModerationPolicy | None,
) -> None:
    """Any answers, settings and per-request policy: the same result, image by image."""
    made: dict[str, Any] = {"ok": {}, "raise": {"error": ValueError("x")}, "empty": {}}[generation]
    pictures = () if generation == "empty" else IMAGES
    sync = Pipeline(
        PromptModerator(RULES, [FakeTextClassifier(**classifier_settings(prompt_answer, "tox"))]),
        FakeGenerator(pictures, **made),
        ImageModerator(FakeImageBackend(**image_settings(image_answer))),
        **options,
    )
    aio = AsyncPipeline(
        AsyncPromptModerator(
            RULES, [AsyncFakeTextClassifier(**classifier_settings(prompt_answer, "tox"))]
        ),
        AsyncFakeGenerator(pictures, **made),
        AsyncImageModerator(AsyncFakeImageBackend(**image_settings(image_answer))),
        **options,
    )
    expected = sync.run(prompt, images=images, seed=11, policy=override)
    got = asyncio.run(aio.run(prompt, images=images, seed=11, policy=override))
    assert untimed(got) == untimed(expected)
    assert [i.status for i in got.images] == [i.status for i in expected.images]
