"""The presets shipped inside the package: each loads, explains itself, and means what it says."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from safegen import Action, Category, ContentType, ModerationLabel, ModerationPolicy, presets
from safegen.errors import PolicyError
from safegen.local import CalibratedBackend, Ensemble, NudeNet, OpenNSFW, recommended_policy
from safegen.prompt import PromptModerator
from safegen.taxonomy import REKOGNITION_V7
from tests.strategies import content_types, coverages, label_for, rekognition_labels

NAMES = presets.names()
#: Words for prompts: harmless ones and a few of every shipped category, mild and severe.
_WORDS = [
    "a",
    "lighthouse",
    "at",
    "dawn",
    "bikini",
    "lingerie",
    "naked",
    "fetish",
    "massacre",
    "gore",
    "severed",
    "head",
    "marijuana",
    "cocaine",
    "noose",
    "suicide",
    "nazi",
    "sword",
    "beach",
    "no",
    "nudity",
]
FULL = None  # coverage of a backend that sees the whole taxonomy (Rekognition)


def _category(name: str) -> Category:
    return REKOGNITION_V7.lookup(name)


def _report(name: str, confidence: float) -> list[ModerationLabel]:
    """Report *name* with its ancestors, as Rekognition does."""
    category = _category(name)
    chain = [Category(category.path[:depth]) for depth in range(1, category.level + 1)]
    return [label_for(c, confidence) for c in chain]


def test_the_four_presets_the_issue_asks_for_are_shipped() -> None:
    """general, strict, explicit and offline are presets, listed sorted."""
    assert {"general", "strict", "explicit", "offline"} <= set(NAMES)
    assert list(NAMES) == sorted(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_a_preset_is_its_text_and_round_trips(name: str, tmp_path: Path) -> None:
    """load(name) equals its text read as a policy file, and to_mapping reads back equal."""
    policy = presets.load(name)
    copy = tmp_path / "mine.toml"
    copy.write_text(presets.text(name), encoding="utf-8")
    assert ModerationPolicy.from_toml(copy) == policy
    assert ModerationPolicy.from_mapping(policy.to_mapping()) == policy
    assert presets.load(name) is policy  # frozen and cached: one object


@pytest.mark.parametrize("name", NAMES)
def test_a_preset_has_a_one_line_description(name: str) -> None:
    """The first line of the file is a comment describing the preset, within 100 characters."""
    first = presets.text(name).splitlines()[0]
    assert first.startswith("# ")
    assert presets.describe(name) == first[2:]
    assert 20 < len(first) <= 100


_SETTING = re.compile(r'^\s*(\[|"?[A-Za-z_]|\])')


@pytest.mark.parametrize("name", NAMES)
def test_every_choice_in_a_preset_is_commented(name: str) -> None:
    """Every setting line carries a comment or follows one in its paragraph (no blank between)."""
    uncommented = []
    commented = False
    for number, line in enumerate(presets.text(name).splitlines(), 1):
        if not line.strip():
            commented = False
        elif line.lstrip().startswith("#"):
            commented = True
        elif _SETTING.match(line) and "#" not in line and not commented:
            uncommented.append(f"{number}: {line}")
    assert uncommented == []


def test_an_unknown_preset_is_a_policy_error_with_a_suggestion() -> None:
    """A near miss names the closest preset; every error lists the presets there are."""
    for typo, close in (("genral", "general"), ("STRICT", "strict"), ("ofline", "offline")):
        with pytest.raises(PolicyError, match=rf"did you mean '{close}'\?") as info:
            presets.load(typo)
        assert "presets: " + ", ".join(NAMES) in str(info.value)
    with pytest.raises(PolicyError, match=r"^unknown preset 'zzz' \(presets: "):
        presets.text("zzz")


@pytest.mark.parametrize("value", [None, 5, b"general", ["general"], {"general": 1}])
def test_a_preset_name_that_is_not_a_string_is_a_policy_error(value: object) -> None:
    """Any type but str is a PolicyError naming the preset argument, never a TypeError."""
    for function in (presets.load, presets.text, presets.describe):
        with pytest.raises(PolicyError, match=r"^preset: expected a name"):
            function(value)  # type: ignore[arg-type]


_CALIBRATED = {_category(name) for backend in (OpenNSFW, NudeNet) for name in backend.THRESHOLDS}


@pytest.mark.parametrize("name", NAMES)
def test_no_preset_overrides_an_offline_models_calibration(name: str) -> None:
    """No label entry (top level or rule) names a calibrated label or anything under Explicit.

    Offline, recommended_policy lets a policy's own entry win over a model's calibrated
    thresholds; a preset entry there would judge the model's scores as Rekognition's.
    """
    policy = presets.load(name)
    entries = set(policy.labels)
    for rule in policy.content_types.values():
        entries |= set(rule.labels)
    explicit = _category("Explicit")
    assert not entries & _CALIBRATED
    assert not [c for c in entries if c.path[0] == explicit.name]


def test_offline_is_general_accepting_what_is_not_seen() -> None:
    """The offline preset is general with not_evaluated = "allow", and nothing else changed."""
    general = presets.load("general")
    assert general.not_evaluated is Action.REVIEW
    assert presets.load("offline") == attrs.evolve(general, not_evaluated=Action.ALLOW)


def test_general_moderates_as_its_comments_say() -> None:
    """Explicit blocks, swimwear is reviewed, a kiss and a casino pass, hate reviews from 25."""
    general = presets.load("general")
    assert general.evaluate([], coverage=FULL).action is Action.ALLOW
    assert general.evaluate(_report("Exposed Female Nipple", 50.0)).action is Action.BLOCK
    assert general.evaluate(_report("Exposed Female Nipple", 39.9)).action is Action.ALLOW
    assert general.evaluate(_report("Female Swimwear or Underwear", 80.0)).action is Action.REVIEW
    assert general.evaluate(_report("Female Swimwear or Underwear", 79.9)).action is Action.ALLOW
    assert general.evaluate(_report("Kissing on the Lips", 99.0)).action is Action.ALLOW
    assert general.evaluate(_report("Gambling/Gambling", 99.0)).action is Action.ALLOW
    assert general.evaluate(_report("Nazi Party", 25.0)).action is Action.REVIEW
    assert general.evaluate(_report("Nazi Party", 40.0)).action is Action.BLOCK
    assert general.evaluate(_report("Weapons", 89.9)).action is Action.REVIEW
    cartoon = [ContentType("Animated", 80.0)]
    assert general.evaluate(_report("Physical Violence", 74.9), cartoon).action is Action.ALLOW
    assert general.evaluate(_report("Physical Violence", 75.0), cartoon).action is Action.REVIEW
    assert general.evaluate(_report("Physical Violence", 75.0)).action is Action.BLOCK
    # Offline, what the model cannot see goes to review.
    assert general.evaluate([], coverage=["Explicit"]).action is Action.REVIEW


def test_strict_blocks_early_and_reviews_what_is_not_seen() -> None:
    """The strict preset blocks swimwear at 60, explicit at 40; reviews a kiss and blind spots."""
    strict = presets.load("strict")
    assert strict.evaluate([]).action is Action.ALLOW
    assert strict.evaluate(_report("Female Swimwear or Underwear", 60.0)).action is Action.BLOCK
    assert strict.evaluate(_report("Exposed Female Nipple", 40.0)).action is Action.BLOCK
    assert strict.evaluate(_report("Kissing on the Lips", 50.0)).action is Action.REVIEW
    assert strict.evaluate([], coverage=["Explicit"]).action is Action.REVIEW


_OFFLINE_BACKENDS: dict[str, tuple[CalibratedBackend, tuple[str, ...]]] = {
    "opennsfw": (OpenNSFW(), OpenNSFW.COVERAGE),
    "nudenet": (NudeNet(), NudeNet.COVERAGE),
    "opennsfw+nudenet": (
        Ensemble([OpenNSFW(), NudeNet()]),
        (*OpenNSFW.COVERAGE, *NudeNet.COVERAGE),
    ),
}


@pytest.mark.parametrize("backend_name", sorted(_OFFLINE_BACKENDS))
@pytest.mark.parametrize("preset", presets.names())
@given(data=st.data())
def test_no_shipped_offline_configuration_blocks_what_scores_below_review(
    preset: str, backend_name: str, data: st.DataObject
) -> None:
    """Scores under every calibrated review threshold never BLOCK, whatever decides the verdict.

    Counts verdicts decided by ``not_evaluated`` too (a gap that blocks would block every
    harmless picture), not only those decided by a score.
    """
    backend, coverage = _OFFLINE_BACKENDS[backend_name]
    labels = [
        ModerationLabel(
            name.split("/")[-1],
            data.draw(st.floats(0, limits.review_at, exclude_max=True), label=name),
        )
        for name, limits in backend.thresholds.items()
        if limits.review_at is not None and data.draw(st.booleans(), label=f"report {name}")
    ]
    policy = recommended_policy(backend, presets.load(preset))
    assert policy.evaluate(labels, coverage=coverage).action is not Action.BLOCK


def test_the_gap_hint_never_suggests_a_looser_preset() -> None:
    """When not_evaluated decides, the hint keeps the preset's thresholds: copy it, or look."""
    from safegen.cli._common import choose_policy
    from safegen.cli._images import gap_hint
    from safegen.image import ImageModerator
    from safegen.testing import FakeImageBackend

    for name in presets.names():
        chosen = choose_policy(name)
        verdict = ImageModerator(FakeImageBackend(coverage=["Explicit"]), chosen.policy).moderate(
            b"picture"
        )
        hint = gap_hint(verdict, chosen)
        if (
            chosen.policy.not_evaluated is Action.ALLOW
            or chosen.policy.blind_spots(["Explicit"]) == ()
        ):
            assert hint is None, name
            continue
        assert hint is not None, name
        assert "--policy" not in hint, hint  # no other preset instead of this one
        assert f"safegen policy show {name} > mine.toml" in hint
        assert 'not_evaluated = "allow"' in hint
        assert "--backend cascade or aws" in hint


def test_explicit_moderates_explicit_content_only() -> None:
    """The explicit preset blocks explicit nudity, passes all else, and sees no gap offline."""
    explicit = presets.load("explicit")
    assert explicit.evaluate(_report("Exposed Male Genitalia", 50.0)).action is Action.BLOCK
    for other in REKOGNITION_V7:
        if other.path[0] != "Explicit":
            assert explicit.evaluate(_report("/".join(other.path), 100.0)).action is Action.ALLOW
    assert explicit.blind_spots(OpenNSFW.COVERAGE) == ()
    assert explicit.evaluate([], coverage=OpenNSFW.COVERAGE).action is Action.ALLOW


def test_offline_allows_a_harmless_picture_that_a_model_sees_part_of() -> None:
    """The offline preset accepts what OpenNSFW and NudeNet cannot see: no labels is ALLOW."""
    offline = presets.load("offline")
    for coverage in (OpenNSFW.COVERAGE, NudeNet.COVERAGE):
        assert offline.evaluate([], coverage=coverage).action is Action.ALLOW


@given(
    labels=rekognition_labels(),
    reported=st.lists(content_types, max_size=2),
    coverage=st.none() | coverages,
)
def test_presets_are_ordered_by_strictness(
    labels: list[ModerationLabel], reported: list[ContentType], coverage: tuple[str, ...] | None
) -> None:
    """On any response: strict >= general >= offline, and general >= explicit."""

    def severity(name: str) -> int:
        return presets.load(name).evaluate(labels, reported, coverage=coverage).action.severity

    assert severity("strict") >= severity("general") >= severity("offline")
    assert severity("general") >= severity("explicit")


def test_presets_are_package_data_next_to_the_module() -> None:
    """The TOML files sit inside the package directory, so the wheel ships them."""
    here = Path(presets.__file__).parent
    assert {p.stem for p in here.glob("*.toml")} == set(NAMES)
    for name in NAMES:
        assert tomllib.loads(presets.text(name)) == tomllib.loads(
            (here / f"{name}.toml").read_text(encoding="utf-8")
        )


# -- the [prompts] section ------------------------------------------------------------------


def _prompt(name: str, text: str) -> Action:
    return PromptModerator.from_policy(presets.load(name)).moderate(text).action


@pytest.mark.parametrize(
    ("text", "general", "strict", "explicit"),
    [
        ("a watercolour of a lighthouse", Action.ALLOW, Action.ALLOW, Action.ALLOW),
        ("a woman in a bikini on a beach", Action.REVIEW, Action.BLOCK, Action.ALLOW),
        ("a knight with a severed head", Action.BLOCK, Action.BLOCK, Action.ALLOW),
        ("a painting of a massacre", Action.REVIEW, Action.BLOCK, Action.ALLOW),
        ("a naked woman", Action.BLOCK, Action.BLOCK, Action.BLOCK),
        ("a leather fetish outfit", Action.REVIEW, Action.BLOCK, Action.REVIEW),
    ],
)
def test_prompt_sections_judge_as_their_comments_say(
    text: str, general: Action, strict: Action, explicit: Action
) -> None:
    """Suggestive reviews in general and blocks in strict; explicit counts sexual terms only."""
    assert (_prompt("general", text), _prompt("strict", text), _prompt("explicit", text)) == (
        general,
        strict,
        explicit,
    )
    assert _prompt("offline", text) is general


@pytest.mark.parametrize("name", NAMES)
def test_a_prompt_check_that_cannot_run_blocks_in_every_preset(name: str) -> None:
    """No preset lets an unchecked prompt through: on_failure is block, nothing fails open."""
    prompts = presets.load(name).prompts
    assert prompts.on_failure is Action.BLOCK
    assert prompts.fail_open == frozenset()


@given(st.lists(st.sampled_from(_WORDS), min_size=1, max_size=6).map(" ".join))
def test_prompt_sections_are_ordered_by_strictness(text: str) -> None:
    """On any prompt: strict >= general == offline, and general >= explicit."""
    severity = {name: _prompt(name, text).severity for name in NAMES}
    assert severity["strict"] >= severity["general"] == severity["offline"]
    assert severity["general"] >= severity["explicit"]
