"""Example-based tests of ModerationPolicy: building, reading files, and evaluating real shapes."""

from __future__ import annotations

import math
from pathlib import Path

import attrs
import pytest

from safegen import (
    REKOGNITION_V7,
    Action,
    ContentType,
    ContentTypeRule,
    IgnoreReason,
    ModerationLabel,
    ModerationPolicy,
    PolicyError,
    PolicySource,
    Thresholds,
    UnknownLabelError,
    _evaluator,
)
from safegen.aws import parse_moderation_response
from safegen.policy import MAX_POLICY_FILE_BYTES
from safegen.taxonomy import Taxonomy

EXAMPLES = Path(__file__).parent.parent / "examples"


def chain(*names: str, confidence: float) -> list[ModerationLabel]:
    """Labels for an L1 > L2 > L3 chain, all at one confidence, as Rekognition reports them."""
    return [
        ModerationLabel(name, confidence, parent=names[i - 1] if i else None, level=i + 1)
        for i, name in enumerate(names)
    ]


KISSING = chain(
    "Non-Explicit Nudity of Intimate parts and Kissing", "Kissing on the Lips", confidence=97.0
)
# From the AWS reference response (aws-apis.md, section 5).
SMOKING = chain(
    "Drugs & Tobacco", "Drug & Tobacco Paraphernalia & Use", "Smoking", confidence=99.45
)
# From the bulk-analysis seed (004): pills under Products.
PILLS = chain("Drugs & Tobacco", "Products", "Pills", confidence=91.9385)


class TestEvaluate:
    def test_the_default_policy_blocks_at_rekognitions_default_of_50(self) -> None:
        """With no settings, any label at 50 or above blocks, as Rekognition's default does."""
        policy = ModerationPolicy()
        assert policy.evaluate(SMOKING).action is Action.BLOCK
        low = [ModerationLabel("Weapons", 49.9, parent="Violence", level=2)]
        assert policy.evaluate(low).action is Action.ALLOW
        assert policy.evaluate([]).action is Action.ALLOW

    def test_a_violation_names_the_threshold_and_the_entry_that_set_it(self) -> None:
        """The most specific entry on the path sets the threshold, and the decision says which."""
        policy = ModerationPolicy(labels={"Drugs & Tobacco": 95, "Products": 80})
        decision = policy.evaluate(PILLS)
        assert decision.action is Action.BLOCK
        (violation,) = decision.violations
        assert violation.label.name == "Pills"
        assert violation.threshold == 80
        assert violation.source == PolicySource("block_at", "Products")
        assert str(violation) == (
            "block: Drugs & Tobacco / Products / Pills at 91.9385 >= 80 "
            '(labels."Products".block_at)'
        )
        reasons = {i.label.name: i.reason for i in decision.ignored}
        assert reasons == {
            "Drugs & Tobacco": IgnoreReason.EXPLAINED_BY_DESCENDANT,
            "Products": IgnoreReason.EXPLAINED_BY_DESCENDANT,
        }

    def test_excluding_an_l3_is_not_undone_by_its_l1(self) -> None:
        """Excluding Kissing on the Lips leaves its L1, reported only because of it, uncounted."""
        policy = ModerationPolicy(exclude=["Kissing on the Lips"])
        decision = policy.evaluate(KISSING)
        assert decision.action is Action.ALLOW
        assert decision.violations == ()
        by_name = {i.label.name: i for i in decision.ignored}
        assert by_name["Kissing on the Lips"].reason is IgnoreReason.EXCLUDED
        assert by_name["Kissing on the Lips"].source == PolicySource(
            "exclude", "Kissing on the Lips"
        )
        top = by_name["Non-Explicit Nudity of Intimate parts and Kissing"]
        assert top.reason is IgnoreReason.EXPLAINED_BY_DESCENDANT
        assert top.explained_by == KISSING[1]

    def test_an_ancestor_more_confident_than_its_descendants_is_judged_on_its_own(self) -> None:
        """An L1 with evidence beyond its excluded child still counts."""
        labels = [
            ModerationLabel("Non-Explicit Nudity of Intimate parts and Kissing", 90.0, level=1),
            ModerationLabel(
                "Kissing on the Lips",
                60.0,
                parent="Non-Explicit Nudity of Intimate parts and Kissing",
                level=2,
            ),
        ]
        decision = ModerationPolicy(exclude=["Kissing on the Lips"]).evaluate(labels)
        assert decision.action is Action.BLOCK
        assert decision.violations[0].label.name == labels[0].name

    def test_an_ancestor_reported_alone_is_judged_on_its_own(self) -> None:
        """An L1 with no descendant in the response is judged at its own threshold."""
        policy = ModerationPolicy(labels={"Violence": 70, "Weapons": 99})
        decision = policy.evaluate([ModerationLabel("Violence", 75.0)])
        assert decision.action is Action.BLOCK
        assert decision.violations[0].source == PolicySource("block_at", "Violence")

    def test_loosening_an_l2_is_not_undone_by_its_l1(self) -> None:
        """A looser threshold on Weapons holds even though Violence arrives with it."""
        policy = ModerationPolicy(block_at=50, labels={"Weapons": 90})
        labels = chain("Violence", "Weapons", confidence=85.0)
        assert policy.evaluate(labels).action is Action.ALLOW

    def test_the_review_band_gives_review(self) -> None:
        """[review_at, block_at) is REVIEW; below it the label is ignored with the bar it missed."""
        policy = ModerationPolicy(block_at=60, review_at=40)
        assert policy.evaluate([ModerationLabel("Gambling", 59.9)]).action is Action.REVIEW
        assert policy.evaluate([ModerationLabel("Gambling", 60.0)]).action is Action.BLOCK
        decision = policy.evaluate([ModerationLabel("Gambling", 39.9)])
        assert decision.action is Action.ALLOW
        (ignored,) = decision.ignored
        assert ignored.reason is IgnoreReason.BELOW_THRESHOLD
        assert (ignored.threshold, ignored.source) == (40, PolicySource("review_at"))

    def test_a_label_entry_inherits_the_review_floor_capped_at_its_own_block_at(self) -> None:
        """A bare number sets block_at only; review_at still comes from the policy default."""
        policy = ModerationPolicy(
            block_at=50, review_at=40, labels={"Male Swimwear or Underwear": 90, "Weapons": 30}
        )
        swimwear = [ModerationLabel("Male Swimwear or Underwear", 70.0)]
        assert policy.evaluate(swimwear).action is Action.REVIEW
        weapons = policy.evaluate([ModerationLabel("Weapons", 35.0)])
        assert weapons.action is Action.BLOCK  # the inherited floor (40) is above block_at (30)
        assert weapons.violations[0].source == PolicySource("block_at", "Weapons")

    def test_without_a_review_band_a_label_entry_never_reviews(self) -> None:
        """With no review_at anywhere, REVIEW never happens: labels block or are ignored."""
        policy = ModerationPolicy(block_at=50, labels={"Explicit Nudity": 80})
        labels = chain("Explicit", "Explicit Nudity", confidence=65.0)
        decision = policy.evaluate(labels)
        assert decision.action is Action.ALLOW
        assert {i.reason for i in decision.ignored} == {
            IgnoreReason.BELOW_THRESHOLD,
            IgnoreReason.EXPLAINED_BY_DESCENDANT,
        }

    def test_a_content_type_rule_overrides_thresholds_and_adds_exclusions(self) -> None:
        """For an animated image, the Animated rule's entries win over the top level's."""
        policy = ModerationPolicy.from_mapping(
            {
                "labels": {"Weapons": 60, "Graphic Violence": 60},
                "content_types": {
                    "Animated": {
                        "min_confidence": 80,
                        "labels": {"Violence": 95},
                        "exclude": ["Weapons"],
                    }
                },
            }
        )
        violence = chain("Violence", "Graphic Violence", "Physical Violence", confidence=90.0)
        weapons = chain("Violence", "Weapons", confidence=99.0)
        cartoon = [ContentType("Animated", 85.0)]
        assert policy.evaluate(violence).action is Action.BLOCK
        assert policy.evaluate(violence, cartoon).action is Action.ALLOW
        assert policy.evaluate(weapons, cartoon).action is Action.ALLOW
        weak_cartoon = [ContentType("Animated", 79.0)]
        assert policy.evaluate(violence, weak_cartoon).action is Action.BLOCK

        decision = policy.evaluate(weapons, cartoon)
        (match,) = decision.content_types
        assert (match.name, match.confidence, match.min_confidence) == ("Animated", 85.0, 80.0)
        excluded = [i for i in decision.ignored if i.reason is IgnoreReason.EXCLUDED]
        assert excluded[0].source == PolicySource("exclude", "Weapons", content_type="Animated")

    def test_content_type_names_match_case_insensitively(self) -> None:
        """Rekognition's content type casing is not guaranteed; either spelling applies a rule."""
        policy = ModerationPolicy(content_types={"animated": {"action": "allow"}})
        decision = policy.evaluate(SMOKING, [ContentType("ANIMATED", 99.0)])
        assert decision.action is Action.ALLOW
        assert decision.decided_by == "Animated"

    def test_the_strictest_outright_action_wins(self) -> None:
        """Animated allows outright, Illustrated blocks outright: an image that is both blocks."""
        policy = ModerationPolicy(
            content_types={"Animated": {"action": "allow"}, "Illustrated": {"action": "block"}}
        )
        both = [ContentType("Animated", 90.0), ContentType("Illustrated", 90.0)]
        decision = policy.evaluate([], both)
        assert (decision.action, decision.decided_by) == (Action.BLOCK, "Illustrated")
        assert "decided by the Illustrated content-type rule" in decision.reasons()

    def test_two_applying_rules_take_the_strictest_threshold(self) -> None:
        """Where two applying rules set one label, the lower threshold wins."""
        policy = ModerationPolicy(
            content_types={
                "Animated": {"labels": {"Violence": 95}},
                "Illustrated": {"labels": {"Violence": 70}},
            }
        )
        both = [ContentType("Animated", 90.0), ContentType("Illustrated", 90.0)]
        decision = policy.evaluate([ModerationLabel("Violence", 80.0)], both)
        assert decision.action is Action.BLOCK
        assert decision.violations[0].source.content_type == "Illustrated"

    def test_unknown_labels_are_placed_under_their_parent_and_inherit_its_threshold(self) -> None:
        """A newer model's label does not crash and is judged by its parent's entry."""
        policy = ModerationPolicy(labels={"Graphic Violence": 70})
        labels = [
            *chain("Violence", "Graphic Violence", confidence=75.0),
            ModerationLabel("Laser Violence", 75.0, parent="Graphic Violence", level=3),
        ]
        decision = policy.evaluate(labels)
        assert decision.action is Action.BLOCK
        (violation,) = decision.violations
        assert violation.category.path == ("Violence", "Graphic Violence", "Laser Violence")
        assert not violation.category.known
        assert violation.source == PolicySource("block_at", "Graphic Violence")

    def test_a_whole_unknown_chain_is_rebuilt_from_the_response(self) -> None:
        """An unknown L1 > L2 from a newer model is linked, so its L1 is explained by the L2."""
        labels = [
            ModerationLabel("Deepfakes", 88.0, parent=None, level=1),
            ModerationLabel("Face Swap", 88.0, parent="Deepfakes", level=2),
        ]
        decision = ModerationPolicy(block_at=50).evaluate(labels)
        assert decision.action is Action.BLOCK
        (violation,) = decision.violations
        assert violation.category.path == ("Deepfakes", "Face Swap")
        assert decision.ignored[0].reason is IgnoreReason.EXPLAINED_BY_DESCENDANT

    def test_a_category_reported_twice_is_judged_on_its_most_confident_report(self) -> None:
        """Duplicates merge to the strongest report, under any spelling."""
        labels = [ModerationLabel("Weapons", 40.0), ModerationLabel("WEAPONS", 70.0)]
        decision = ModerationPolicy().evaluate(labels)
        assert decision.action is Action.BLOCK
        assert [v.label.confidence for v in decision.violations] == [70.0]

    def test_evaluate_refuses_things_that_are_not_labels(self) -> None:
        """Raw dicts are a programming error with a clear message, not a silent pass."""
        from safegen import InvalidLabelError

        bad_label: list[object] = [{"Name": "Weapons", "Confidence": 99}]
        with pytest.raises(InvalidLabelError, match="expected ModerationLabel, got dict"):
            ModerationPolicy().evaluate(bad_label)  # type: ignore[arg-type]
        with pytest.raises(InvalidLabelError, match="expected ContentType"):
            ModerationPolicy().evaluate([], ["Animated"])  # type: ignore[list-item]

    def test_violations_come_most_severe_first(self) -> None:
        """BLOCK before REVIEW, then by confidence: the first violation is the headline."""
        policy = ModerationPolicy(block_at=80, review_at=50)
        decision = policy.evaluate(
            [
                ModerationLabel("Gambling", 60.0),
                ModerationLabel("Alcohol", 90.0),
                ModerationLabel("Rude Gestures", 85.0),
            ]
        )
        assert [v.label.name for v in decision.violations] == [
            "Alcohol",
            "Rude Gestures",
            "Gambling",
        ]


class TestMinConfidence:
    def test_is_the_lowest_threshold_in_play(self) -> None:
        """Every block_at and review_at, top level and content-type rules, is considered."""
        policy = ModerationPolicy.from_mapping(
            {
                "block_at": 60,
                "labels": {"Weapons": {"block_at": 70, "review_at": 45}},
                "content_types": {"Animated": {"labels": {"Violence": 35}}},
            }
        )
        assert policy.min_confidence == 35
        assert ModerationPolicy(block_at=60, review_at=55).min_confidence == 55
        assert ModerationPolicy().min_confidence == 50


class TestFromMapping:
    def test_the_issue_example_reads_and_round_trips(self) -> None:
        """The policy-file example from the documentation builds the policy it describes."""
        policy = ModerationPolicy.from_toml(EXAMPLES / "policy.toml")
        assert policy.block_at == 50
        assert policy.review_at == 40
        assert [c.name for c in policy.exclude] == ["Kissing on the Lips"]
        nudity = policy.taxonomy.lookup("Explicit Nudity")
        assert policy.labels[nudity] == Thresholds(block_at=60)
        swimwear = policy.taxonomy.lookup("Female Swimwear or Underwear")
        assert policy.labels[swimwear] == Thresholds(block_at=75, review_at=60)
        animated = policy.content_types["Animated"]
        assert animated.min_confidence == 80
        assert animated.exclude == {policy.taxonomy.lookup("Weapons")}
        assert ModerationPolicy.from_mapping(policy.to_mapping()) == policy

    def test_names_resolve_case_insensitively_and_by_alias(self) -> None:
        """Docs spellings, API spellings and any casing name the same category."""
        a = ModerationPolicy(labels={"Drugs & Tobacco Paraphernalia & Use": 70})
        b = ModerationPolicy(labels={"drug & tobacco paraphernalia & use": 70})
        assert a == b
        assert a.to_mapping()["labels"] == {"Drug & Tobacco Paraphernalia & Use": 70}

    def test_a_path_names_a_category_whose_name_is_ambiguous(self) -> None:
        """Gambling is L1 and L2; a path names the L2 and to_mapping writes the path back."""
        policy = ModerationPolicy(labels={"Gambling": 80, "Gambling/Gambling": 60})
        assert policy.to_mapping()["labels"] == {"Gambling": 80, "Gambling/Gambling": 60}
        labels = chain("Gambling", "Gambling", confidence=70.0)
        (violation,) = policy.evaluate(labels).violations
        assert violation.source == PolicySource("block_at", "Gambling/Gambling")

    @pytest.mark.parametrize(
        ("mapping", "message"),
        [
            ({"block_at": 150}, r"block_at: must be a number from 0 to 100, got 150"),
            ({"block_at": True}, r"block_at: must be a number from 0 to 100, got True"),
            ({"block_at": "50"}, r"block_at: must be a number from 0 to 100, got '50'"),
            ({"block_at": float("nan")}, r"block_at: must be a number from 0 to 100"),
            ({"block_at": 40, "review_at": 60}, r"review_at \(60\) must not be above block_at"),
            ({"blok_at": 40}, r"unknown setting 'blok_at'; did you mean 'block_at'\?"),
            ({"labels": {"Weapons": -1}}, r'labels\."Weapons": block_at: must be a number'),
            (
                {"labels": {"Weapons": {"block_at": 50, "review": 40}}},
                r"unknown setting 'review'; did you mean 'review_at'",
            ),
            (
                {"labels": {"Weapons": {"block_at": 50, "review_at": 60}}},
                r'labels\."Weapons": review_at \(60\) must not be above block_at \(50\)',
            ),
            ({"labels": {"Weapons": {}}}, r"must set block_at, review_at or both"),
            ({"labels": ["Weapons"]}, r"labels: must be a table"),
            ({"labels": []}, r"labels: must be a table \(mapping\), got list"),
            ({"content_types": []}, r"content_types: must be a table"),
            ({"content_types": {"Animated": {"labels": []}}}, r"Animated\.labels: must be a table"),
            ({"exclude": {}}, r"exclude: must be a list of label names"),
            ({"exclude": [3]}, r"exclude: must be a list of label names, got 3"),
            (
                {"labels": {"Weapons": 50, "WEAPONS": 60}},
                r"Violence / Weapons is configured more than once",
            ),
            ({"content_types": {"Photo": {}}}, r"unknown content type 'Photo'"),
            (
                {"content_types": {"Animated": {"action": "delete"}}},
                r'content_types\.Animated\.action: must be "block", "review" or "allow"',
            ),
            (
                {"content_types": {"Animated": {"min_confidence": 101}}},
                r"content_types\.Animated\.min_confidence: must be a number",
            ),
            (
                {"content_types": {"Animated": {"labels": {"Weapns": 5}}}},
                r'content_types\.Animated\.labels\."Weapns": unknown moderation label',
            ),
        ],
    )
    def test_bad_settings_are_refused_with_their_location(
        self, mapping: dict[str, object], message: str
    ) -> None:
        """Each malformed setting raises a PolicyError (a ValueError) naming where it is."""
        with pytest.raises(PolicyError, match=message) as raised:
            ModerationPolicy.from_mapping(mapping)
        assert isinstance(raised.value, ValueError)

    def test_an_unknown_label_is_refused_with_the_closest_name(self) -> None:
        """A typo gets a suggestion; the error carries the name and the suggestions."""
        with pytest.raises(UnknownLabelError) as raised:
            ModerationPolicy.from_mapping({"labels": {"Explicit Nudiity": 60}})
        error = raised.value
        assert error.name == "Explicit Nudiity"
        assert error.suggestions[0] == "Explicit Nudity"
        assert "did you mean 'Explicit Nudity'?" in str(error)

    def test_a_v6_label_is_refused_with_what_replaced_it(self) -> None:
        """An old policy file using v6 names learns the v7 names to use instead."""
        with pytest.raises(UnknownLabelError, match="Rekognition v6 label") as raised:
            ModerationPolicy.from_mapping({"exclude": ["Revealing Clothes"]})
        assert raised.value.renamed_to == ("Non-Explicit Nudity", "Obstructed Intimate Parts")

    def test_the_constructor_takes_typed_values_too(self) -> None:
        """Thresholds, ContentTypeRule and Category objects are accepted as they are."""
        weapons = ModerationPolicy().taxonomy.lookup("Weapons")
        policy = ModerationPolicy(
            labels={weapons: Thresholds(70, 60)},
            exclude=[weapons],
            content_types={"Illustrated": ContentTypeRule(action="review")},
        )
        assert policy == ModerationPolicy.from_mapping(
            {
                "labels": {"Weapons": {"block_at": 70, "review_at": 60}},
                "exclude": ["Weapons"],
                "content_types": {"Illustrated": {"action": "review"}},
            }
        )

    def test_a_lone_exclusion_string_is_one_name_not_its_letters(self) -> None:
        """Exclude = "Weapons" is read as ["Weapons"]."""
        assert ModerationPolicy(exclude="Weapons") == ModerationPolicy(exclude=["Weapons"])


class TestFromToml:
    def test_invalid_toml_is_a_policy_error_naming_the_file(self, tmp_path: Path) -> None:
        """A syntax error says which file and where."""
        path = tmp_path / "policy.toml"
        path.write_text("block_at = = 50\n")
        with pytest.raises(PolicyError, match=r"policy\.toml: not valid TOML"):
            ModerationPolicy.from_toml(path)

    def test_a_bad_setting_names_the_file_too(self, tmp_path: Path) -> None:
        """Errors from the content carry the file name in front of the setting's location."""
        path = tmp_path / "strict.toml"
        path.write_text('[labels]\n"Suggestive" = 60\n')
        with pytest.raises(UnknownLabelError, match=r"strict\.toml: labels\.\"Suggestive\""):
            ModerationPolicy.from_toml(path)

    def test_a_missing_file_is_a_policy_error_naming_it(self, tmp_path: Path) -> None:
        """A file that cannot be opened is a PolicyError naming it, with the OS error kept."""
        with pytest.raises(PolicyError, match=r"absent\.toml: cannot read") as raised:
            ModerationPolicy.from_toml(tmp_path / "absent.toml")
        assert isinstance(raised.value.__cause__, FileNotFoundError)

    def test_a_directory_is_a_policy_error_naming_it(self, tmp_path: Path) -> None:
        """Pointing at a directory names it instead of raising IsADirectoryError."""
        folder = tmp_path / "policies"
        folder.mkdir()
        with pytest.raises(PolicyError, match=r"policies: cannot read"):
            ModerationPolicy.from_toml(folder)

    def test_a_file_that_is_not_utf8_is_a_policy_error(self, tmp_path: Path) -> None:
        """Latin-1 bytes are refused as not UTF-8 TOML, never a UnicodeDecodeError."""
        path = tmp_path / "latin1.toml"
        path.write_bytes('exclude = ["Caf\u00e9"]\n'.encode("latin-1"))
        with pytest.raises(PolicyError, match=r"latin1\.toml: not valid TOML: not UTF-8"):
            ModerationPolicy.from_toml(path)

    @pytest.mark.parametrize("opener", ["[", "{a = "])
    def test_deeply_nested_toml_is_a_policy_error(self, tmp_path: Path, opener: str) -> None:
        """100,000 nested arrays or tables: a PolicyError naming the file, not a RecursionError."""
        path = tmp_path / "deep.toml"
        closer = "]" if opener == "[" else "}"
        path.write_text("a = " + opener * 100_000 + "1" + closer * 100_000 + "\n")
        with pytest.raises(PolicyError, match=r"deep\.toml: not valid TOML"):
            ModerationPolicy.from_toml(path)

    def test_a_file_over_the_limit_is_refused_without_parsing(self, tmp_path: Path) -> None:
        """One byte over MAX_POLICY_FILE_BYTES is refused; exactly the limit is read."""
        at_limit = tmp_path / "at_limit.toml"
        line = "block_at = 60\n"
        at_limit.write_text(line + "#" * (MAX_POLICY_FILE_BYTES - len(line) - 1) + "\n")
        assert at_limit.stat().st_size == MAX_POLICY_FILE_BYTES
        assert ModerationPolicy.from_toml(at_limit).block_at == 60
        over = tmp_path / "over.toml"
        over.write_bytes(at_limit.read_bytes() + b"\n")
        with pytest.raises(PolicyError, match=r"over\.toml: larger than 1,048,576 bytes"):
            ModerationPolicy.from_toml(over)


def test_the_sample_response_gives_the_documented_decision() -> None:
    """The README's main job: the sample response against the sample policy is REVIEW."""
    import json

    raw = json.loads((EXAMPLES / "rekognition-response.json").read_text())
    response = parse_moderation_response(raw)
    decision = ModerationPolicy.from_toml(EXAMPLES / "policy.toml").evaluate(
        response.labels, response.content_types
    )
    assert decision.action is Action.REVIEW
    (violation,) = decision.violations
    assert violation.label.name == "Female Swimwear or Underwear"
    assert violation.source == PolicySource("review_at", "Female Swimwear or Underwear")


class TestShapeCache:
    def test_responses_of_one_shape_are_judged_on_their_own_confidences(self) -> None:
        """The cached plan holds placement and thresholds, never a previous confidence."""
        policy = ModerationPolicy(exclude=["Kissing on the Lips"])
        weak_child = [
            ModerationLabel("Non-Explicit Nudity of Intimate parts and Kissing", 90.0, level=1),
            ModerationLabel(
                "Kissing on the Lips",
                60.0,
                parent="Non-Explicit Nudity of Intimate parts and Kissing",
                level=2,
            ),
        ]
        assert policy.evaluate(KISSING).action is Action.ALLOW
        assert policy.evaluate(weak_child).action is Action.BLOCK  # same shape, L1 stronger
        assert policy.evaluate(KISSING).action is Action.ALLOW

    def test_the_caches_are_bounded_whatever_a_backend_reports(self) -> None:
        """Unknown labels make shapes unbounded; the caches are not."""
        policy = ModerationPolicy()
        for i in range(5000):
            policy.evaluate([ModerationLabel(f"New label {i}", 80.0, parent=f"Parent {i}")])
        assert _evaluator._plan.cache_info().currsize <= 1024
        assert _evaluator._judge.cache_info().currsize <= 4096
        assert policy.taxonomy._placements.cache_info().currsize <= 4096


# -- what a backend cannot see ---------------------------------------------------------------

NUDITY_ONLY = ("Explicit/Explicit Nudity", "Exposed Male Nipple")


def test_categories_a_backend_cannot_see_are_not_evaluated_and_cost_review() -> None:
    policy = ModerationPolicy(exclude=["Swimwear or Underwear", "Gambling"])
    decision = policy.evaluate([], coverage=NUDITY_ONLY)
    assert decision.action is Action.REVIEW
    assert decision.not_evaluated is not None
    blind = [c.name for c in decision.not_evaluated.categories]
    assert blind[:3] == ["Explicit Sexual Activity", "Sex Toys", "Bare Back"]
    assert "Exposed Male Nipple" not in blind
    assert "Gambling" not in blind
    assert "Violence" in blind
    assert "Hate Symbols" in blind
    line = decision.reasons()[-1]
    assert line.startswith("review: not evaluated by the backend: Explicit Sexual Activity")
    assert decision.to_dict()["not_evaluated"]["paths"][0] == [
        "Explicit",
        "Explicit Sexual Activity",
    ]


@pytest.mark.parametrize(("setting", "action"), [("allow", Action.ALLOW), ("block", Action.BLOCK)])
def test_a_policy_says_what_not_evaluated_means(setting: str, action: Action) -> None:
    policy = ModerationPolicy.from_mapping({"not_evaluated": setting})
    assert policy.evaluate([], coverage=NUDITY_ONLY).action is action
    assert ModerationPolicy.from_mapping(policy.to_mapping()) == policy
    # A label that blocks still blocks when blind spots are accepted.
    label = ModerationLabel("Exposed Male Genitalia", 99.0, parent="Explicit Nudity")
    assert policy.evaluate([label], coverage=NUDITY_ONLY).action is Action.BLOCK


def test_a_policy_that_excludes_what_the_backend_cannot_see_needs_nothing_more() -> None:
    seen = [c for c in REKOGNITION_V7 if c.level == 1 and c.name != "Violence"]
    policy = ModerationPolicy(exclude=["Violence"])
    decision = policy.evaluate([], coverage=[c.name for c in seen])
    assert decision.action is Action.ALLOW
    assert decision.not_evaluated is None


def test_not_evaluated_must_be_an_action() -> None:
    with pytest.raises(PolicyError, match="not_evaluated: must be"):
        ModerationPolicy.from_mapping({"not_evaluated": "ignore"})
    with pytest.raises(UnknownLabelError):
        ModerationPolicy().evaluate([], coverage=["Nudity everywhere"])


# -- a label's reported place never softens it (issue 11, class 2) ---------------------------


@pytest.mark.parametrize(
    ("parent", "level"),
    [("Swimwear or Underwear", None), ("Swimwear or Underwear", 2), (None, 1), ("Gambling", 3)],
)
def test_an_explicit_label_reported_under_a_milder_parent_still_blocks(
    parent: str | None, level: int | None
) -> None:
    """Excluding swimwear or loosening its threshold never exempts an explicit label."""
    policy = ModerationPolicy(
        exclude=["Swimwear or Underwear", "Gambling"], labels={"Non-Explicit Nudity": 99}
    )
    label = ModerationLabel("Exposed Female Nipple", 99.0, parent=parent, level=level)
    decision = policy.evaluate([label])
    assert decision.action is Action.BLOCK
    (violation,) = decision.violations
    assert violation.category == REKOGNITION_V7.lookup("Exposed Female Nipple")


def test_an_unknown_child_of_a_known_label_reported_at_a_wrong_level_keeps_its_thresholds() -> None:
    """A new label under Exposed Female Nipple, claiming level 2, is judged under Explicit."""
    policy = ModerationPolicy(block_at=90, labels={"Explicit": 30})
    child = ModerationLabel("Nipple Variant", 50.0, parent="Exposed Female Nipple", level=2)
    assert policy.evaluate([child]).action is Action.BLOCK


def test_a_ten_thousand_label_chain_and_cycle_are_judged() -> None:
    """A response of 10,000 chained unknown labels (and a cycle) is judged, no RecursionError."""
    n = 10_000
    chained = [
        ModerationLabel(f"n{i}", 60.0, parent=f"n{i - 1}" if i else "Weapons") for i in range(n)
    ]
    decision = ModerationPolicy(exclude=["Violence"]).evaluate(chained)
    assert decision.action is Action.ALLOW
    assert {i.reason for i in decision.ignored} == {IgnoreReason.EXCLUDED}
    cycle = [ModerationLabel(f"c{i}", 60.0, parent=f"c{(i + 1) % n}") for i in range(n)]
    assert ModerationPolicy().evaluate(cycle).action is Action.BLOCK


# -- boundaries a mutation would break -------------------------------------------------------


BELOW_40 = math.nextafter(40.0, 0.0)
BELOW_60 = math.nextafter(60.0, 0.0)


@pytest.mark.parametrize(
    ("confidence", "action"),
    [
        (BELOW_40, Action.ALLOW),
        (40.0, Action.REVIEW),
        (BELOW_60, Action.REVIEW),
        (60.0, Action.BLOCK),
    ],
)
@pytest.mark.parametrize(
    "policy",
    [
        ModerationPolicy(block_at=60, review_at=40),
        ModerationPolicy(labels={"Weapons": {"block_at": 60, "review_at": 40}}),
        ModerationPolicy(
            block_at=10,
            content_types={
                "Animated": {
                    "min_confidence": 80,
                    "labels": {"Violence": {"block_at": 60, "review_at": 40}},
                }
            },
        ),
    ],
    ids=["defaults", "label entry", "content-type rule"],
)
def test_a_score_exactly_at_a_threshold_meets_it(
    policy: ModerationPolicy, confidence: float, action: Action
) -> None:
    """At review_at is REVIEW, at block_at is BLOCK; the float just below is the action below."""
    weapons = ModerationLabel("Weapons", confidence, parent="Violence", level=2)
    assert policy.evaluate([weapons], [ContentType("Animated", 80.0)]).action is action


def test_a_content_type_exactly_at_its_rule_bar_applies_it() -> None:
    """A content type reported exactly at min_confidence applies the rule; just below, not."""
    policy = ModerationPolicy(content_types={"Animated": {"min_confidence": 80, "action": "block"}})
    assert policy.evaluate([], [ContentType("Animated", 80.0)]).action is Action.BLOCK
    below = ContentType("Animated", math.nextafter(80.0, 0.0))
    assert policy.evaluate([], [below]).action is Action.ALLOW


# -- fail closed by construction: frozen, and evolve re-validates ----------------------------


def test_evolve_re_validates_a_policy() -> None:
    """attrs.evolve works on a policy, keeps it frozen, and checks every new value."""
    policy = ModerationPolicy(review_at=40, labels={"Weapons": 80}, exclude=["Gambling"])
    stricter = attrs.evolve(policy, block_at=45)
    assert stricter == ModerationPolicy(
        block_at=45, review_at=40, labels={"Weapons": 80}, exclude=["Gambling"]
    )
    assert attrs.evolve(policy) == policy
    assert attrs.evolve(policy, labels={"Alcohol": 70}).labels == {
        REKOGNITION_V7.lookup("Alcohol"): Thresholds(70)
    }
    with pytest.raises(PolicyError, match="block_at: must be a number from 0 to 100"):
        attrs.evolve(policy, block_at=300)
    with pytest.raises(PolicyError, match=r"review_at \(40\) must not be above block_at \(30\)"):
        attrs.evolve(policy, block_at=30)
    with pytest.raises(PolicyError, match="not_evaluated"):
        attrs.evolve(policy, not_evaluated="maybe")
    with pytest.raises(UnknownLabelError):
        attrs.evolve(policy, exclude=["Weapns"])
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        policy.block_at = 99  # type: ignore[misc]


def test_evolve_re_validates_a_content_type_rule_and_thresholds() -> None:
    """ContentTypeRule and Thresholds evolve too, and refuse what their constructors refuse."""
    rule = ContentTypeRule(min_confidence=80, labels={"Violence": 95}, exclude=["Weapons"])
    assert attrs.evolve(rule, action="block").action is Action.BLOCK
    assert attrs.evolve(rule) == rule
    with pytest.raises(PolicyError, match="min_confidence"):
        attrs.evolve(rule, min_confidence=-1)
    with pytest.raises(PolicyError, match="action"):
        attrs.evolve(rule, action="sometimes")  # type: ignore[arg-type]
    thresholds = Thresholds(block_at=70, review_at=50)
    assert attrs.evolve(thresholds, block_at=60) == Thresholds(60, 50)
    with pytest.raises(PolicyError, match="must not be above"):
        attrs.evolve(thresholds, block_at=40)
    with pytest.raises(PolicyError, match="must set block_at, review_at or both"):
        attrs.evolve(thresholds, block_at=None, review_at=None)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        rule.action = Action.ALLOW  # type: ignore[misc]


def test_a_policy_is_hashable_and_equal_across_spellings() -> None:
    """Equal settings, however written, give equal policies with equal hashes."""
    one = ModerationPolicy(labels={"weapons": 80}, exclude=["GAMBLING"])
    two = ModerationPolicy(labels={"Weapons": 80.0}, exclude=["Gambling"])
    assert one == two
    assert hash(one) == hash(two)


class TestVersionAndFingerprint:
    """A policy's version and content fingerprint, recorded wherever a decision is kept."""

    def test_version_round_trips_through_the_file_format(self) -> None:
        """A version written in a policy file is read back and written out again."""
        policy = ModerationPolicy.from_mapping({"version": "2026-11-29", "block_at": 70})
        assert policy.version == "2026-11-29"
        assert ModerationPolicy.from_mapping(policy.to_mapping()) == policy

    @pytest.mark.parametrize("bad", ["", " v1", "v1\n", "x" * 101, 3, ["v1"]])
    def test_malformed_version_is_refused_by_name(self, bad: object) -> None:
        """An empty, padded, multi-line, over-long or non-string version is a PolicyError."""
        with pytest.raises(PolicyError, match=r"^version: "):
            ModerationPolicy.from_mapping({"version": bad})

    def test_version_of_100_characters_is_the_limit(self) -> None:
        """Exactly 100 characters is accepted."""
        assert ModerationPolicy(version="v" * 100).version == "v" * 100

    def test_sha256_identifies_content_not_identity(self) -> None:
        """Equal settings give equal fingerprints; any change, the version included, changes it."""
        a = ModerationPolicy(block_at=70, labels={"Explicit Nudity": 60})
        b = ModerationPolicy.from_mapping({"labels": {"explicit nudity": 60}, "block_at": 70})
        assert a.sha256 == b.sha256
        assert len(a.sha256) == 64
        assert attrs.evolve(a, block_at=71).sha256 != a.sha256
        assert attrs.evolve(a, version="v2").sha256 != a.sha256

    def test_the_taxonomy_is_part_of_identity(self) -> None:
        """One file read against two trees that place a label differently gives two policies."""
        flat = Taxonomy({"Violence": {"Graphic Violence": []}, "Weapons": {}}, version="7.0")
        mapping = {"exclude": ["Violence"], "version": "tenant"}
        v7 = ModerationPolicy.from_mapping(mapping)
        other = ModerationPolicy.from_mapping(mapping, taxonomy=flat)
        weapon = [ModerationLabel("Weapons", 95.0)]
        assert v7.evaluate(weapon).action is not other.evaluate(weapon).action
        assert v7 != other
        assert v7.sha256 != other.sha256
        assert hash(v7) != hash(other) or v7 != other

    def test_an_equal_tree_built_twice_is_the_same_taxonomy(self) -> None:
        """Identity is by content: a tree rebuilt from the same data gives an equal policy."""

        def tree() -> Taxonomy:
            return Taxonomy({"Violence": {"Weapons": []}}, version="1")

        assert ModerationPolicy(taxonomy=tree()) == ModerationPolicy(taxonomy=tree())
        assert ModerationPolicy(taxonomy=tree()).sha256 == ModerationPolicy(taxonomy=tree()).sha256
