"""Tests of ImageModerator with the public fake backend: decisions, fail-closed, many images."""

from __future__ import annotations

import math
import os
import threading
import time
from pathlib import Path, PurePosixPath
from typing import Any

import attrs
import pytest

from safegen import (
    Action,
    Cascade,
    ConfigurationError,
    ContentType,
    ImageModerator,
    ImageReport,
    ModerationLabel,
    ModerationPolicy,
    S3Object,
)
from safegen.errors import InvalidImageError, ServiceUnavailableError
from safegen.image import ImageSource
from safegen.ports import ImageBackend
from safegen.testing import FakeImageBackend

WEAPONS = [
    ModerationLabel("Violence", 91.0, level=1),
    ModerationLabel("Weapons", 91.0, parent="Violence", level=2),
]
DOWN = ServiceUnavailableError(
    "down", service="rekognition", operation="Op", code="InternalServerError"
)


def test_the_fake_satisfies_the_port() -> None:
    """Backends plug in structurally."""
    assert isinstance(FakeImageBackend(), ImageBackend)


def test_the_policy_judges_what_the_backend_reported() -> None:
    """The verdict carries the decision with its reasons and the raw report."""
    backend = FakeImageBackend(WEAPONS, [ContentType("Animated", 95.0)])
    policy = ModerationPolicy(content_types={"Animated": {"exclude": ["Weapons"]}})
    verdict = ImageModerator(backend, policy).moderate(b"bytes")
    assert verdict.action is Action.ALLOW
    assert verdict.decision is not None
    assert verdict.decision.content_types[0].name == "Animated"
    assert verdict.report is not None
    assert verdict.report.labels == tuple(WEAPONS)
    assert not verdict.failed
    assert verdict.seconds >= 0


def test_the_backend_is_asked_for_the_policys_min_confidence() -> None:
    """No label the policy needs is filtered out by the service."""
    backend = FakeImageBackend(WEAPONS)
    ImageModerator(backend, ModerationPolicy(block_at=70, review_at=35)).moderate(b"x")
    assert backend.calls[0].min_confidence == 35


def test_a_backend_failure_fails_closed() -> None:
    """The verdict is BLOCK, carries the error with its code, and no decision."""
    verdict = ImageModerator(FakeImageBackend(error=DOWN)).moderate(b"x")
    assert verdict.action is Action.BLOCK
    assert verdict.failed
    assert verdict.decision is None
    assert "InternalServerError" in (verdict.error or "")


def test_fail_open_and_on_failure_are_explicit_choices() -> None:
    """fail_open=True allows on failure; on_failure may be REVIEW; never ALLOW that way."""
    assert ImageModerator(FakeImageBackend(error=DOWN), fail_open=True).moderate(b"x").action is (
        Action.ALLOW
    )
    review = ImageModerator(FakeImageBackend(error=DOWN), on_failure=Action.REVIEW)
    assert review.moderate(b"x").action is Action.REVIEW
    with pytest.raises(ConfigurationError, match="fail open"):
        ImageModerator(FakeImageBackend(), on_failure=Action.ALLOW)


def test_a_bug_in_a_backend_fails_closed_too() -> None:
    """Any exception from the backend, not only safegen's, blocks."""
    verdict = ImageModerator(FakeImageBackend(error=KeyError("oops"))).moderate(b"x")
    assert verdict.action is Action.BLOCK
    assert "KeyError" in (verdict.error or "") or "oops" in (verdict.error or "")


def test_moderate_many_keeps_input_order_and_isolates_failures() -> None:
    """Each image gets its own verdict, in order; a failing one does not lose the others."""

    def respond(image: ImageSource) -> ImageReport:
        assert isinstance(image, bytes)
        if image == b"broken":
            raise DOWN
        time.sleep(0.01 * (len(image) % 3))  # finish out of order
        return ImageReport(labels=tuple(WEAPONS) if image.startswith(b"gun") else ())

    images: list[ImageSource] = [b"gun1", b"cat", b"broken", b"gun22", b"dog", S3Object("b", "k")]
    backend = FakeImageBackend(
        respond=lambda i: respond(i) if isinstance(i, bytes) else ImageReport()
    )
    verdicts = ImageModerator(backend).moderate_many(images, max_workers=4)
    assert [v.action for v in verdicts] == [
        Action.BLOCK,
        Action.ALLOW,
        Action.BLOCK,
        Action.BLOCK,
        Action.ALLOW,
        Action.ALLOW,
    ]
    assert [v.failed for v in verdicts] == [False, False, True, False, False, False]


def test_moderate_many_never_runs_more_than_max_workers_at_once() -> None:
    """Concurrency is bounded: a counter of calls in flight never passes the limit."""
    in_flight = peak = 0
    lock = threading.Lock()

    def respond(image: ImageSource) -> ImageReport:
        nonlocal in_flight, peak
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
        time.sleep(0.005)
        with lock:
            in_flight -= 1
        return ImageReport()

    verdicts = ImageModerator(FakeImageBackend(respond=respond)).moderate_many(
        [b"x"] * 40, max_workers=3
    )
    assert len(verdicts) == 40
    assert 1 <= peak <= 3
    with pytest.raises(ConfigurationError, match="max_workers"):
        ImageModerator(FakeImageBackend()).moderate_many([b"x"], max_workers=0)


def test_the_verdict_serialises_without_image_bytes() -> None:
    """to_dict is JSON-ready and carries versions and warnings."""
    import json

    verdict = ImageModerator(FakeImageBackend(WEAPONS)).moderate(b"\x89PNG secret bytes")
    text = json.dumps(verdict.to_dict())
    assert "secret" not in text
    assert json.loads(text)["model_version"] == "7.0"


def test_preflight_repairs_before_sending_and_records_it() -> None:
    """A WEBP is re-encoded to PNG before the backend sees it; the verdict says so."""
    from safegen.preflight import Preflight, sniff_format
    from tests.strategies import make_image

    backend = FakeImageBackend()
    moderator = ImageModerator(backend, preflight=Preflight(repair=True))
    verdict = moderator.moderate(make_image("WEBP", (100, 100)))
    sent = backend.calls[0].image
    assert isinstance(sent, bytes)
    assert sniff_format(sent) == "PNG"
    assert verdict.repairs == ("re-encoded WEBP as PNG",)
    assert verdict.action is Action.ALLOW


def test_an_image_failing_preflight_is_never_allowed() -> None:
    """Even with fail_open, an unreadable image blocks; the backend is never called."""
    from safegen.preflight import Preflight

    backend = FakeImageBackend()
    moderator = ImageModerator(backend, preflight=Preflight(), fail_open=True)
    verdict = moderator.moderate(b"not an image")
    assert verdict.action is Action.BLOCK
    assert verdict.error is not None
    assert verdict.error.startswith("preflight (format)")
    assert backend.calls == ()


def test_moderate_many_can_pace_requests_to_a_quota() -> None:
    """per_second spaces the starts: 6 calls at 20 a second span at least 5 intervals."""
    import time as clock

    starts: list[float] = []

    def respond(image: ImageSource) -> ImageReport:
        starts.append(clock.monotonic())
        return ImageReport()

    ImageModerator(FakeImageBackend(respond=respond)).moderate_many(
        [b"x"] * 6, max_workers=6, per_second=20
    )
    assert len(starts) == 6
    # Pacing is a lower bound on spacing, so this holds however slow the machine is.
    assert max(starts) - min(starts) >= 5 * (1 / 20) * 0.95
    with pytest.raises(ConfigurationError, match="per_second"):
        ImageModerator(FakeImageBackend()).moderate_many([b"x"], per_second=0)


def test_a_paced_request_throttled_anyway_waits_its_turn_again() -> None:
    """Once-throttled images succeed on a later turn; always-throttled ones get 3, then fail."""
    from safegen.errors import ThrottledError

    seen: dict[bytes, int] = {}
    lock = threading.Lock()

    def respond(image: ImageSource) -> ImageReport:
        assert isinstance(image, bytes)
        with lock:
            seen[image] = seen.get(image, 0) + 1
            calls = seen[image]
        if image == b"always" or calls == 1:
            raise ThrottledError("slow", service="rekognition", operation="Op",
                                 code="ThrottlingException")  # fmt: skip
        return ImageReport()

    verdicts = ImageModerator(FakeImageBackend(respond=respond)).moderate_many(
        [b"a", b"b", b"always"], max_workers=3, per_second=1000
    )
    assert [v.failed for v in verdicts] == [False, False, True]
    assert verdicts[2].action is Action.BLOCK
    assert seen == {b"a": 2, b"b": 2, b"always": 3}


def test_the_verdict_names_its_backend_and_what_it_could_not_see() -> None:
    backend = FakeImageBackend(name="offline", coverage=["Explicit"])
    verdict = ImageModerator(backend, ModerationPolicy(exclude=["Gambling"])).moderate(b"img")
    assert verdict.backend == "offline"
    assert verdict.action is Action.REVIEW  # nine categories were not evaluated
    assert verdict.decision is not None
    assert verdict.decision.not_evaluated is not None
    names = [c.name for c in verdict.decision.not_evaluated.categories]
    assert "Violence" in names
    assert "Gambling" not in names
    assert verdict.to_dict()["coverage"] == ["Explicit"]
    accepting = ModerationPolicy(not_evaluated="allow")
    assert ImageModerator(backend, accepting).moderate(b"img").action is Action.ALLOW


def test_a_report_naming_no_category_fails_closed() -> None:
    backend = FakeImageBackend(coverage=["Everything naughty"])
    verdict = ImageModerator(backend).moderate(b"img")
    assert verdict.action is Action.BLOCK
    assert verdict.error is not None
    assert "Everything naughty" in verdict.error


# -- boundaries ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("confidence", "action"),
    [
        (math.nextafter(40.0, 0.0), Action.ALLOW),
        (40.0, Action.REVIEW),
        (math.nextafter(70.0, 0.0), Action.REVIEW),
        (70.0, Action.BLOCK),
    ],
)
def test_a_score_exactly_at_a_threshold_counts(confidence: float, action: Action) -> None:
    """At review_at is REVIEW and at block_at is BLOCK; a hair under either is not."""
    label = ModerationLabel("Weapons", confidence, parent="Violence", level=2)
    policy = ModerationPolicy(block_at=70, review_at=40)
    assert ImageModerator(FakeImageBackend([label]), policy).moderate(b"x").action is action


# -- frozen and validated ------------------------------------------------------------------


def test_a_moderator_cannot_be_weakened_after_it_was_built() -> None:
    """Setting on_failure (or anything) on a built moderator raises; evolve re-checks."""
    moderator = ImageModerator(FakeImageBackend(error=DOWN))
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        moderator.on_failure = Action.ALLOW  # type: ignore[misc]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        moderator.fail_open = True  # type: ignore[misc]
    with pytest.raises(ConfigurationError, match=r"^on_failure: ALLOW would fail open"):
        attrs.evolve(moderator, on_failure=Action.ALLOW)
    review = attrs.evolve(moderator, on_failure=Action.REVIEW)
    assert review.moderate(b"x").action is Action.REVIEW
    assert moderator.moderate(b"x").action is Action.BLOCK


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("backend", object()),
        ("backend", None),
        ("backend", FakeImageBackend(name="")),
        ("policy", {"block_at": 50}),
        ("fail_open", "no"),
        ("fail_open", 0),
        ("on_failure", Action.ALLOW),
        ("on_failure", "block"),
        ("preflight", True),
        ("min_confidence", 60.0),
        ("min_confidence", math.nan),
        ("min_confidence", -1),
    ],
)
def test_each_bad_setting_is_refused_naming_it(setting: str, value: Any) -> None:
    """At construction and on evolve: a ConfigurationError whose message starts with the name."""
    good = ImageModerator(FakeImageBackend())
    with pytest.raises(ConfigurationError, match=f"^{setting}: "):
        attrs.evolve(good, **{setting: value})
    settings: dict[str, Any] = {"backend": FakeImageBackend(), setting: value}
    with pytest.raises(ConfigurationError, match=f"^{setting}: "):
        ImageModerator(**settings)


def test_min_confidence_may_only_ask_for_more() -> None:
    """A lower floor is sent to the backend; the policy still judges."""
    backend = FakeImageBackend([ModerationLabel("Weapons", 45.0, parent="Violence")])
    verdict = ImageModerator(backend, min_confidence=30).moderate(b"x")
    assert backend.calls[0].min_confidence == 30
    assert verdict.report is not None
    assert len(verdict.report.labels) == 1
    assert verdict.action is Action.ALLOW  # 45 is under the policy's 50


@pytest.mark.parametrize("bad", [(1, 2, 3), None, 7.5])
def test_moderate_many_refuses_bad_workers_naming_them(bad: Any) -> None:
    """max_workers and per_second are settings too: ConfigurationErrors."""
    moderator = ImageModerator(FakeImageBackend())
    with pytest.raises(ConfigurationError, match="max_workers"):
        moderator.moderate_many([b"x"], max_workers=bad)
    with pytest.raises(ConfigurationError, match="per_second"):
        moderator.moderate_many([b"x"], per_second=math.nan)


# -- what the backend answers --------------------------------------------------------------


def _forced(report: ImageReport, **fields: Any) -> ImageReport:
    """Return a copy of *report* with *fields* forced in, past its converters and validators."""
    copy = attrs.evolve(report)
    for name, value in fields.items():
        object.__setattr__(copy, name, value)
    return copy


NAN_LABEL = _forced(ImageReport(), labels=(ModerationLabel("Weapons", 90.0),))
object.__setattr__(NAN_LABEL.labels[0], "confidence", math.nan)


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(None, id="None"),
        pytest.param({"ModerationLabels": []}, id="a dict"),
        pytest.param((ModerationLabel("Weapons", 90.0),), id="labels, not a report"),
        pytest.param(_forced(ImageReport(), labels=""), id="labels that are a string"),
        pytest.param(_forced(ImageReport(), labels=("Weapons",)), id="labels that are names"),
        pytest.param(NAN_LABEL, id="a NaN confidence"),
        pytest.param(_forced(ImageReport(), coverage=(42,)), id="coverage that is not names"),
        pytest.param(_forced(ImageReport(), parts=(None,)), id="a part that is not a report"),
    ],
)
def test_a_malformed_answer_is_a_failed_check(answer: Any) -> None:
    """Only a well-formed report can ALLOW; anything else fails closed, naming the backend."""
    verdict = ImageModerator(FakeImageBackend(respond=lambda image: answer)).moderate(b"x")
    assert verdict.failed
    assert verdict.action is Action.BLOCK
    assert (verdict.error or "").startswith("fake: ")


def test_a_report_with_parts_is_judged_part_by_part_too() -> None:
    """A part's blocking label counts even when the whole is exempted by another's content type."""
    weapons = ImageReport(labels=(WEAPONS[1],))
    animated = ImageReport(content_types=(ContentType("Animated", 99.0),))
    whole = ImageReport(
        labels=weapons.labels, content_types=animated.content_types, parts=(weapons, animated)
    )
    policy = ModerationPolicy(content_types={"Animated": {"action": "allow"}})
    moderator = ImageModerator(FakeImageBackend(respond=lambda image: whole), policy)
    assert policy.evaluate(whole.labels, whole.content_types).action is Action.ALLOW
    verdict = moderator.moderate(b"x")
    assert verdict.action is Action.BLOCK
    assert verdict.decision is not None
    assert [v.label.name for v in verdict.decision.violations] == ["Weapons"]


# -- a value that is not an image at all (issue 12) --------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["picture.png", Path("picture.png"), PurePosixPath("a/b.png"), None, 5, ["bytes"]],
    ids=["str", "Path", "PurePath", "None", "int", "list"],
)
def test_moderate_refuses_what_is_not_an_image_with_a_type_error(value: object) -> None:
    """A file name (or any non-image) raises a TypeError saying what to pass; nothing is sent."""
    backend = FakeImageBackend()
    moderator = ImageModerator(backend)
    cascade = Cascade(FakeImageBackend(coverage=["Explicit"]), moderator)
    for call in (
        lambda: moderator.moderate(value),  # type: ignore[arg-type]
        lambda: moderator.moderate_many([b"fine", value]),  # type: ignore[list-item]
        lambda: cascade.moderate(value),  # type: ignore[arg-type]
        lambda: cascade.moderate_many([b"fine", value]),  # type: ignore[list-item]
    ):
        with pytest.raises(TypeError, match=r"expected image bytes or an S3Object") as info:
            call()
        assert isinstance(info.value, InvalidImageError)
        assert info.value.limit == "type"
        if isinstance(value, str | os.PathLike):
            assert "Path(name).read_bytes()" in str(info.value)
    assert backend.calls == ()


def test_image_bytes_of_every_accepted_type_are_still_moderated() -> None:
    """bytes, bytearray, memoryview and an S3Object reach the backend as before."""
    backend = FakeImageBackend()
    moderator = ImageModerator(backend)
    for value in (b"x", bytearray(b"x"), memoryview(b"x"), S3Object("bucket", "key")):
        assert moderator.moderate(value).action is Action.ALLOW  # type: ignore[arg-type]
    assert len(backend.calls) == 4
