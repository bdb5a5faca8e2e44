"""The Ensemble: combining looks is never less strict than the strictest look."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from safegen import (
    Action,
    ConfigurationError,
    ContentType,
    ImageModerator,
    ImageReport,
    ModerationLabel,
    ModerationPolicy,
    Thresholds,
)
from safegen.errors import LocalModelError
from safegen.local import Ensemble
from safegen.reports import ImageSource
from tests.strategies import content_types, coverages, policies, rekognition_labels


class Member:
    """An offline backend that answers one scripted report (or fails), whatever it is asked."""

    def __init__(
        self,
        report: Any,
        *,
        name: str = "member",
        thresholds: Mapping[str, Thresholds] | None = None,
        error: Exception | None = None,
    ) -> None:
        self.name = name
        self.report = report
        self.error = error
        self.thresholds = dict(thresholds or {})

    def detect(self, image: ImageSource, *, min_confidence: float) -> Any:
        if self.error is not None:
            raise self.error
        return self.report


def severity(policy: ModerationPolicy, report: ImageReport, *others: ImageReport) -> int:
    """How strict the policy is with one look's findings, seeing what all the looks see."""
    coverage = (
        Ensemble([Member(r, name=f"m{i}") for i, r in enumerate((report, *others))])
        .detect(b"image", min_confidence=0)
        .coverage
    )
    decision = policy.evaluate(report.labels, report.content_types, coverage=coverage)
    return decision.action.severity


def ensemble_action(policy: ModerationPolicy, *reports: ImageReport) -> Action:
    members = [Member(r, name=f"m{i}") for i, r in enumerate(reports)]
    return ImageModerator(Ensemble(members), policy).moderate(b"image").action


@st.composite
def member_reports(draw: st.DrawFn) -> ImageReport:
    """Any report an offline backend might give: labels at any level, content types, coverage."""
    return ImageReport(
        labels=draw(rekognition_labels(max_size=5)),
        content_types=draw(st.lists(content_types, max_size=2)),
        coverage=draw(st.one_of(st.none(), coverages)),
    )


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(policies(), st.lists(member_reports(), min_size=1, max_size=3))
def test_an_ensemble_is_never_less_strict_than_its_strictest_member(
    policy: ModerationPolicy, reports: list[ImageReport]
) -> None:
    """For any policy and any member reports: the ensemble's action is at least each member's."""
    strictest = max(severity(policy, report, *reports) for report in reports)
    assert ensemble_action(policy, *reports).severity >= strictest


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(
    policies(),
    st.lists(member_reports(), min_size=1, max_size=3),
    st.integers(0, 3),
    st.sampled_from([LocalModelError("broken"), ValueError("odd"), RecursionError()]),
)
def test_a_failing_member_fails_the_whole_ensemble_closed(
    policy: ModerationPolicy, reports: list[ImageReport], where: int, error: Exception
) -> None:
    """One member that cannot answer makes the verdict a failure, never ALLOW."""
    members = [Member(r, name=f"m{i}") for i, r in enumerate(reports)]
    members.insert(min(where, len(members)), Member(None, name="broken", error=error))
    verdict = ImageModerator(Ensemble(members), policy).moderate(b"image")
    assert verdict.failed
    assert verdict.action is Action.BLOCK


EXPLICIT = ModerationLabel("Explicit", 90.0, level=1)
EXPLICIT_NUDITY = ModerationLabel("Explicit Nudity", 95.0, parent="Explicit", level=2)
WEAPONS = ModerationLabel("Weapons", 90.0, parent="Violence", level=2)


@pytest.mark.parametrize(
    ("policy", "one", "other"),
    [
        pytest.param(
            ModerationPolicy(content_types={"Animated": {"action": "allow"}}),
            ImageReport(labels=(WEAPONS,)),
            ImageReport(content_types=(ContentType("Animated", 99.0),)),
            id="one member's content type exempts another's label",
        ),
        pytest.param(
            ModerationPolicy(content_types={"Illustrated": {"exclude": ["Violence"]}}),
            ImageReport(labels=(WEAPONS,)),
            ImageReport(content_types=(ContentType("Illustrated", 99.0),)),
            id="one member's content type excludes another's label",
        ),
        pytest.param(
            ModerationPolicy(exclude=["Explicit Nudity"]),
            ImageReport(labels=(EXPLICIT,)),
            ImageReport(labels=(EXPLICIT_NUDITY,)),
            id="one member's excluded label explains away another's ancestor",
        ),
        pytest.param(
            ModerationPolicy(labels={"Explicit Nudity": 99}),
            ImageReport(labels=(EXPLICIT,)),
            ImageReport(labels=(EXPLICIT_NUDITY,)),
            id="one member's lenient descendant explains away another's ancestor",
        ),
    ],
)
def test_combining_looks_keeps_each_looks_strictness(
    policy: ModerationPolicy, one: ImageReport, other: ImageReport
) -> None:
    """Each way a merged report used to lose a member's verdict, pinned as an example."""
    alone = max(severity(policy, one, other), severity(policy, other, one))
    assert alone > Action.ALLOW.severity
    assert ensemble_action(policy, one, other).severity >= alone
    assert ensemble_action(policy, other, one).severity >= alone


def test_a_blind_spot_is_judged_only_when_no_member_sees_it() -> None:
    """Adding a member that sees less never adds a blind spot that another member covers."""
    policy = ModerationPolicy(exclude=["Violence"])  # moderates everything else
    wide = ImageReport(coverage=("Explicit",))
    narrow = ImageReport(coverage=("Exposed Female Nipple",))
    alone = ensemble_action(policy, wide)
    assert ensemble_action(policy, wide, narrow) is alone is Action.REVIEW  # the rest is blind
    seeing_all = ImageReport(coverage=None)
    assert ensemble_action(policy, narrow, seeing_all) is Action.ALLOW


def test_the_report_keeps_each_members_report_as_a_part() -> None:
    """The combined report holds everything found and each look as it was."""
    one = ImageReport(labels=(EXPLICIT,), coverage=("Explicit",), model_version="a")
    other = ImageReport(labels=(WEAPONS,), coverage=("Violence",), model_version="b")
    report = Ensemble([Member(one, name="a"), Member(other, name="b")]).detect(
        b"x", min_confidence=0
    )
    assert report.labels == (EXPLICIT, WEAPONS)
    assert report.coverage == ("Explicit", "Violence")
    assert report.model_version == "a + b"
    assert report.parts == (one, other)


@pytest.mark.parametrize(
    "answer", [None, 42, "Explicit", {"labels": []}, [EXPLICIT], (EXPLICIT,), object()]
)
def test_a_member_answering_something_that_is_not_a_report_fails_closed(answer: Any) -> None:
    """A malformed member answer is a failed check, whatever the others say."""
    members = [Member(ImageReport(), name="fine"), Member(answer, name="odd")]
    verdict = ImageModerator(Ensemble(members), ModerationPolicy()).moderate(b"x")
    assert verdict.failed
    assert verdict.action is Action.BLOCK
    assert "odd answered with" in (verdict.error or "")


class TestSettings:
    def test_an_ensemble_is_frozen(self) -> None:
        """Its backends cannot be swapped after it was built."""
        ensemble = Ensemble([Member(ImageReport())])
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            ensemble.backends = ()  # type: ignore[misc]

    @pytest.mark.parametrize(
        ("backends", "message"),
        [
            ([], "backends: give at least one backend"),
            (None, "backends: expected a collection"),
            ("opennsfw", "backends: expected a collection"),
            ([object()], "backends: expected calibrated backends"),
            (
                [
                    Member(None, name="a", thresholds={"Explicit": Thresholds(80)}),
                    Member(None, name="b", thresholds={"Explicit": Thresholds(70)}),
                ],
                "backends: two backends calibrate 'Explicit'",
            ),
        ],
    )
    def test_bad_backends_are_refused_naming_the_setting(self, backends: Any, message: str) -> None:
        """Each bad setting is a ConfigurationError that names it, at construction and evolve."""
        with pytest.raises(ConfigurationError, match=message):
            Ensemble(backends)
        with pytest.raises(ConfigurationError, match=message):
            attrs.evolve(Ensemble([Member(ImageReport())]), backends=backends)

    def test_thresholds_and_name_come_from_every_backend(self) -> None:
        """The calibrations are merged; the name joins the members'."""
        ensemble = Ensemble(
            [
                Member(None, name="a", thresholds={"Explicit": Thresholds(80)}),
                Member(None, name="b", thresholds={"Explicit Nudity": Thresholds(70)}),
            ]
        )
        assert ensemble.name == "a+b"
        assert dict(ensemble.thresholds) == {
            "Explicit": Thresholds(80),
            "Explicit Nudity": Thresholds(70),
        }
