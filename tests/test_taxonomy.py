"""Tests of the v7 taxonomy: shape, lookup, aliases, renames and placing unknown labels."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from safegen import (
    REKOGNITION_V7,
    Action,
    Category,
    ModerationLabel,
    ModerationPolicy,
    Taxonomy,
    UnknownLabelError,
)
from safegen.taxonomy import MAX_DEPTH, _key
from tests.strategies import (
    CATEGORIES,
    chained_unknown_labels,
    first_report_of_a_named_parent,
    unknown_labels,
    unseen_disguised_names,
)

REFERENCE = (
    Path(__file__).parent.parent.parent / "shared/reference/rekognition_moderation_taxonomy_v7.json"
)


def test_v7_has_ten_top_level_categories_with_their_l2s_and_l3s() -> None:
    """10 L1, 21 L2 (20 documented plus Gambling's own L2) and 22 L3."""
    by_level = [sum(1 for c in REKOGNITION_V7 if c.level == n) for n in (1, 2, 3)]
    assert by_level == [10, 21, 22]
    assert len(REKOGNITION_V7) == 53
    assert REKOGNITION_V7.version == "7.0"
    assert REKOGNITION_V7.content_types == ("Animated", "Illustrated")


@pytest.mark.skipif(not REFERENCE.exists(), reason="shared/reference is not beside this clone")
def test_v7_matches_the_reference_tree() -> None:
    """Every path in the project's reference JSON is in the taxonomy (API spellings win)."""
    tree = json.loads(REFERENCE.read_text())["taxonomy"]
    for top, middles in tree.items():
        assert Category((top,)) in REKOGNITION_V7
        for middle, bottoms in middles.items():
            assert REKOGNITION_V7.get(f"{top}/{middle}") is not None, middle
            for bottom in bottoms:
                assert REKOGNITION_V7.get(f"{top}/{middle}/{bottom}") is not None, bottom


def test_parents_come_before_their_children() -> None:
    """Iteration order lists each category after its parent, as the docs' table does."""
    seen: set[tuple[str, ...]] = set()
    for category in REKOGNITION_V7:
        if category.level > 1:
            assert category.path[:-1] in seen
        seen.add(category.path)


@pytest.mark.parametrize(
    ("written", "path"),
    [
        ("Explicit Nudity", ("Explicit", "Explicit Nudity")),
        ("explicit nudity", ("Explicit", "Explicit Nudity")),
        ("  EXPLICIT   nudity ", ("Explicit", "Explicit Nudity")),
        (
            "Non-Explicit Nudity of Intimate Parts and Kissing",
            ("Non-Explicit Nudity of Intimate parts and Kissing",),
        ),
        (
            "Kissing on the lips",
            ("Non-Explicit Nudity of Intimate parts and Kissing", "Kissing on the Lips"),
        ),
        (
            "Drug & Tobacco Paraphernalia & Use",
            ("Drugs & Tobacco", "Drug & Tobacco Paraphernalia & Use"),
        ),
        (
            "Drugs & Tobacco Paraphernalia & Use",
            ("Drugs & Tobacco", "Drug & Tobacco Paraphernalia & Use"),
        ),
        (
            "Drug and Tobacco Paraphernalia and Use",
            ("Drugs & Tobacco", "Drug & Tobacco Paraphernalia & Use"),
        ),
        ("Gambling", ("Gambling",)),
        ("Gambling/Gambling", ("Gambling", "Gambling")),
        ("gambling / gambling", ("Gambling", "Gambling")),
        ("Violence/Graphic Violence/Self-Harm", ("Violence", "Graphic Violence", "Self-Harm")),
        (
            "Drugs & Tobacco/Drugs & Tobacco Paraphernalia & Use/Smoking",
            ("Drugs & Tobacco", "Drug & Tobacco Paraphernalia & Use", "Smoking"),
        ),
    ],
)
def test_lookup_by_name_or_path(written: str, path: tuple[str, ...]) -> None:
    """Names and paths resolve ignoring case and spacing, with the known other spellings."""
    assert REKOGNITION_V7.lookup(written).path == path


@pytest.mark.parametrize(
    "written", ["", "/", "Violence/", "Weapons/Violence", "Explicit/Weapons", "Bogus"]
)
def test_get_returns_none_for_what_is_not_a_category(written: str) -> None:
    """Wrong paths and unknown names are not found, never guessed."""
    assert REKOGNITION_V7.get(written) is None
    assert written not in REKOGNITION_V7


def test_spelling_is_the_shortest_name_that_resolves_back() -> None:
    """Every category's spelling looks itself up again; only the ambiguous one needs a path."""
    for category in REKOGNITION_V7:
        assert REKOGNITION_V7.lookup(REKOGNITION_V7.spelling(category)) == category
    paths = [c for c in REKOGNITION_V7 if "/" in REKOGNITION_V7.spelling(c)]
    assert [c.path for c in paths] == [("Gambling", "Gambling")]


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (
            "Suggestive",
            ("Non-Explicit Nudity of Intimate parts and Kissing", "Swimwear or Underwear"),
        ),
        ("Self Injury", ("Self-Harm",)),
        ("Adult Toys", ("Sex Toys",)),
        ("Hanging", ("Corpses",)),
        ("Drugs", ("Drugs & Tobacco",)),
        ("tobacco", ("Drugs & Tobacco",)),
        (
            "Illustrated Explicit Nudity",
            ("Explicit", "a content_types rule for Illustrated/Animated"),
        ),
    ],
)
def test_v6_names_are_refused_with_their_replacement(old: str, new: tuple[str, ...]) -> None:
    """An old name raises UnknownLabelError saying what replaced it."""
    with pytest.raises(UnknownLabelError, match="v6 label") as raised:
        REKOGNITION_V7.lookup(old, where="exclude")
    assert raised.value.renamed_to == new
    assert str(raised.value).startswith(f"exclude: unknown moderation label {old!r}")


def test_v6_names_that_survive_in_v7_still_resolve() -> None:
    """Explicit Nudity moved from L1 to L2 but still exists; it is not a rename error."""
    assert REKOGNITION_V7.lookup("Explicit Nudity").level == 2
    assert REKOGNITION_V7.lookup("Female Swimwear Or Underwear").level == 2


def test_unknown_names_get_close_suggestions() -> None:
    """A typo suggests the closest known names, best first; nonsense suggests nothing."""
    with pytest.raises(UnknownLabelError) as raised:
        REKOGNITION_V7.lookup("Weapon")
    assert raised.value.suggestions[0] == "Weapons"
    with pytest.raises(UnknownLabelError) as raised:
        REKOGNITION_V7.lookup("zzzzzzzz")
    assert raised.value.suggestions == ()
    assert "did you mean" not in str(raised.value)


class TestPlace:
    def test_known_labels_are_placed_by_name_parent_and_level(self) -> None:
        """Gambling at level 2 under Gambling is the L2; without a level it is the L1."""
        assert REKOGNITION_V7.place("Gambling", "Gambling", 2).path == ("Gambling", "Gambling")
        assert REKOGNITION_V7.place("Gambling").path == ("Gambling",)
        assert REKOGNITION_V7.place("Gambling", None, 1).path == ("Gambling",)
        assert REKOGNITION_V7.place("Smoking").path[-1] == "Smoking"

    def test_the_api_spelling_and_parent_spelling_are_both_understood(self) -> None:
        """Smoking's ParentName may come in either spelling of its L2."""
        for parent in ("Drug & Tobacco Paraphernalia & Use", "Drugs & Tobacco Paraphernalia & Use"):
            placed = REKOGNITION_V7.place("Smoking", parent, 3)
            assert placed.known
            assert placed.path[1] == "Drug & Tobacco Paraphernalia & Use"

    def test_a_known_name_under_another_parent_stays_where_the_taxonomy_puts_it(self) -> None:
        """A reported parent or level never moves a known label: the taxonomy's place wins."""
        placed = REKOGNITION_V7.place("Weapons", "Hate Symbols", 2)
        assert placed.path == ("Violence", "Weapons")
        assert placed.known
        nipple = REKOGNITION_V7.place("Exposed Female Nipple", "Swimwear or Underwear", 2)
        assert nipple.path == ("Explicit", "Explicit Nudity", "Exposed Female Nipple")

    def test_a_shared_name_reported_where_it_fits_nowhere_is_every_category_of_that_name(
        self,
    ) -> None:
        """Gambling at level 3 is neither the L1 nor the L2 Gambling, so it is judged as both."""
        (placements,) = REKOGNITION_V7.place_each([ModerationLabel("Gambling", 60.0, level=3)])
        assert [c.path for c in placements] == [("Gambling",), ("Gambling", "Gambling")]
        (fitting,) = REKOGNITION_V7.place_each([ModerationLabel("Gambling", 60.0, level=2)])
        assert [c.path for c in fitting] == [("Gambling", "Gambling")]

    def test_an_unknown_label_under_a_misleveled_known_parent_stays_under_it(self) -> None:
        """A new label's known parent is placed by the taxonomy even when the level disagrees."""
        placed = REKOGNITION_V7.place("New Thing", "Exposed Female Nipple", 2)
        assert placed.path == ("Explicit", "Explicit Nudity", "Exposed Female Nipple", "New Thing")
        assert not placed.known

    def test_an_unknown_top_level_label_becomes_its_own_root(self) -> None:
        """A new L1 is placed at the top, marked unknown."""
        placed = REKOGNITION_V7.place("Deepfakes", None, 1)
        assert (placed.path, placed.known, placed.level) == (("Deepfakes",), False, 1)

    @given(st.lists(unknown_labels(), max_size=6))
    def test_placing_never_raises_and_keeps_the_name_last(
        self, labels: list[ModerationLabel]
    ) -> None:
        """Whatever a backend reports, each label gets a path ending in its own name.

        Its own name as the taxonomy reads names: a drawn "SELFHARM" is the known Self-Harm.
        """
        placed = REKOGNITION_V7.place_all(labels)
        assert len(placed) == len(labels)
        for label, category in zip(labels, placed, strict=True):
            assert _key(category.path[-1]) == _key(label.name)

    def test_a_name_run_together_is_the_known_name(self) -> None:
        """Separators do not matter in a name: SELFHARM is Self-Harm, where the taxonomy has it."""
        (placed,) = REKOGNITION_V7.place_all([ModerationLabel("SELFHARM", 60.0)])
        assert (placed.path, placed.known) == (
            ("Violence", "Graphic Violence", "Self-Harm"),
            True,
        )

    def test_a_parent_cycle_in_a_response_terminates(self) -> None:
        """Labels naming each other as parents (a broken backend) still get finite paths."""
        labels = [ModerationLabel("A", 60.0, parent="B"), ModerationLabel("B", 60.0, parent="A")]
        placed = REKOGNITION_V7.place_all(labels)
        assert all(len(c.path) <= 4 for c in placed)

    def test_the_placement_cache_is_bounded(self) -> None:
        """Millions of distinct unknown names cannot grow memory without bound."""
        taxonomy = Taxonomy({"A": {}}, version="test")
        for i in range(5000):
            taxonomy.place(f"label {i}")
        assert taxonomy._placements.cache_info().currsize <= 4096

    def test_a_chain_of_ten_thousand_unknown_labels_is_placed_without_recursion(self) -> None:
        """Each label of a long chain is placed, under the chain's known top, with a short path."""
        n = 10_000
        labels = [
            ModerationLabel(f"n{i}", 60.0, parent=f"n{i - 1}" if i else "Weapons") for i in range(n)
        ]
        placed = REKOGNITION_V7.place_all(labels)
        assert len(placed) == n
        assert all(c.path[:2] == ("Violence", "Weapons") for c in placed)
        assert all(c.name == f"n{i}" for i, c in enumerate(placed))
        assert max(len(c.path) for c in placed) <= MAX_DEPTH
        assert placed[3].path == ("Violence", "Weapons", "n0", "n1", "n2", "n3")

    def test_a_cycle_of_ten_thousand_unknown_labels_terminates(self) -> None:
        """A ring of labels naming each other as parents: each keeps its own short placement."""
        n = 10_000
        labels = [ModerationLabel(f"n{i}", 60.0, parent=f"n{(i + 1) % n}") for i in range(n)]
        tail = ModerationLabel("tail", 60.0, parent="n0")  # hangs off the cycle
        placed = REKOGNITION_V7.place_all([*labels, tail])
        assert [c.path for c in placed[:3]] == [("n1", "n0"), ("n2", "n1"), ("n3", "n2")]
        assert placed[-1].path == ("n1", "n0", "tail")


def test_a_custom_taxonomy_rejects_an_alias_to_nothing() -> None:
    """A hand-written taxonomy with a dangling alias is caught when it is built."""
    with pytest.raises(ValueError, match="alias 'b' points at unknown name 'c'"):
        Taxonomy({"A": {}}, version="x", aliases={"B": "C"})


@pytest.mark.parametrize("category", CATEGORIES, ids=str)
def test_every_category_is_within_its_ancestors(category: Category) -> None:
    """is_within follows the path, and children() lists exactly the next level down."""
    for depth in range(1, category.level + 1):
        assert category.is_within(Category(category.path[:depth]))
    for child in REKOGNITION_V7.children(category):
        assert child.level == category.level + 1
        assert child.is_within(category)


@given(st.lists(unknown_labels(), max_size=6), st.randoms(use_true_random=False))
def test_placing_a_response_does_not_depend_on_its_order(
    labels: list[ModerationLabel], random: Any
) -> None:
    """Each label gets the same category whatever order the response lists them in."""
    shuffled = labels[:]
    random.shuffle(shuffled)
    placed = dict(zip(labels, REKOGNITION_V7.place_all(labels), strict=True))
    again = dict(zip(shuffled, REKOGNITION_V7.place_all(shuffled), strict=True))
    assert placed == again


def test_a_label_that_is_its_own_parent_is_placed_once() -> None:
    """A self-parent does not nest the label under itself."""
    labels = [ModerationLabel("0", 0.0), ModerationLabel("0", 1.0, parent="0")]
    placed = REKOGNITION_V7.place_all(labels)
    assert max(len(c.path) for c in placed) <= 2


def test_same_named_unknown_labels_place_the_same_whatever_their_order() -> None:
    """Two unknown labels sharing a name and parent: the choice between them is by content."""
    first = ModerationLabel("0", 0.0, parent="0")
    second = ModerationLabel("0", 1.0, parent="0")
    forward = dict(zip([first, second], REKOGNITION_V7.place_all([first, second]), strict=True))
    backward = dict(zip([second, first], REKOGNITION_V7.place_all([second, first]), strict=True))
    assert forward == backward


@pytest.mark.parametrize("confidences", [(0.0, 1.0), (1.0, 0.0), (50.0, 50.0)])
def test_a_place_depends_on_what_was_reported_not_on_confidence(
    confidences: tuple[float, float],
) -> None:
    """Two reports of one unknown name that calls itself its parent get one place, either order."""
    labels = [ModerationLabel("Zorb", c, parent="Zorb", level=1) for c in confidences]
    first, second = REKOGNITION_V7.place_each(labels)
    assert first == second
    assert REKOGNITION_V7.place_each(labels[::-1]) == (first, second)


def _judged_at(category: Category) -> tuple[str, ...]:
    """The path of the deepest known category at or above *category*: whose thresholds apply."""
    for depth in range(category.level, 0, -1):
        if Category(category.path[:depth]) in REKOGNITION_V7:
            return category.path[:depth]
    return ()


@given(
    st.lists(chained_unknown_labels(parents=("Violence", "Weapons", "Gambling")), max_size=6),
    st.one_of(
        chained_unknown_labels(parents=("Violence", "Weapons", "Gambling")), unknown_labels()
    ),
)
def test_adding_a_label_never_takes_a_place_away_from_another(
    labels: list[ModerationLabel], extra: ModerationLabel
) -> None:
    """Reporting a name once more, or a label no other names as parent, takes no place away.

    (A parent reported for the first time does move its children: under it is where they
    are, and where a new model's label under an excluded category belongs.)
    """
    assume(not first_report_of_a_named_parent(labels, extra))
    before = REKOGNITION_V7.place_each(labels)
    after = REKOGNITION_V7.place_each([*labels, extra])
    for was, now in zip(before, after, strict=False):
        assert {_judged_at(c) for c in was} <= {_judged_at(c) for c in now}


class TestUnknownParentsReportedTwice:
    """An unknown name reported at several places holds its children at every one."""

    def test_the_red_team_example_blocks_whatever_else_names_the_parent(self) -> None:
        """Reporting the parent's name once more, at the top, cannot lift a child's block."""
        policy = ModerationPolicy(block_at=90, labels={"Violence": {"block_at": 50}})
        labels = [
            ModerationLabel("Foo", 10.0, parent="Violence", level=2),
            ModerationLabel("Bar", 70.0, parent="Foo", level=3),
        ]
        assert policy.evaluate(labels, []).action is Action.BLOCK
        assert policy.evaluate([*labels, ModerationLabel("Foo", 5.0)], []).action is Action.BLOCK

    @pytest.mark.parametrize("order", [(0, 1, 2), (2, 1, 0), (1, 2, 0)])
    def test_a_child_hangs_under_every_report_of_its_parent(
        self, order: tuple[int, int, int]
    ) -> None:
        """The child is placed under both places its parent's name was reported at, any order."""
        labels = [
            ModerationLabel("Foo", 10.0, parent="Violence", level=2),
            ModerationLabel("Foo", 5.0),
            ModerationLabel("Bar", 70.0, parent="Foo", level=3),
        ]
        placed = dict(
            zip(
                [labels[i] for i in order],
                REKOGNITION_V7.place_each([labels[i] for i in order]),
                strict=True,
            )
        )
        assert [c.path for c in placed[labels[2]]] == [("Violence", "Foo", "Bar"), ("Foo", "Bar")]

    def test_a_new_label_under_a_reported_parent_is_judged_where_the_parent_is(self) -> None:
        """A new label under its reported new parent is judged by that parent's category.

        It gets the thresholds and exclusions the platform set there; alone, the default.
        """
        policy = ModerationPolicy(block_at=50, labels={"Violence": {"block_at": 90}})
        child = ModerationLabel("Bar", 70.0, parent="Foo")
        parent = ModerationLabel("Foo", 10.0, parent="Violence")
        assert policy.evaluate([child], []).action is Action.BLOCK
        assert policy.evaluate([child, parent], []).action is Action.ALLOW
        excluded = ModerationPolicy(exclude=["Violence"])
        assert excluded.evaluate([child, parent], []).action is Action.ALLOW

    def test_a_cycle_entered_from_a_known_category_is_judged_under_it(self) -> None:
        """Labels naming each other as parents are also judged under where the cycle hangs."""
        policy = ModerationPolicy(block_at=90, labels={"Violence": {"block_at": 50}})
        labels = [
            ModerationLabel("A", 70.0, parent="B"),
            ModerationLabel("B", 10.0, parent="A"),
            ModerationLabel("B", 10.0, parent="Weapons"),
        ]
        placed = REKOGNITION_V7.place_each(labels)
        assert ("Violence", "Weapons", "B", "A") in [c.path for c in placed[0]]
        assert policy.evaluate(labels, []).action is Action.BLOCK


class TestNameFolding:
    """Known names match in any spelling that reads the same, as the prompt filter reads it."""

    @pytest.mark.parametrize(
        "name",
        [
            "Explicit\u2800",  # braille blank
            "Explicit\u3164",  # Hangul filler
            "\u115fExplicit\u1160",  # Hangul choseong and jungseong fillers
            "Expl\uffa0icit",  # half-width Hangul filler
            "Explicit\ufe0f",  # variation selector
            "E\u034fxplicit",  # combining grapheme joiner
            "Non\u2212Explicit Nudity of Intimate parts and Kissing",  # minus sign
            "Non\u2043Explicit Nudity of Intimate parts and Kissing",  # hyphen bullet
            "Non\uff0dExplicit\u2800Nudity of Intimate parts and Kissing",  # full-width minus
            "Non_Explicit.Nudity of Intimate parts and Kissing",
            "\u0415xplicit",  # Cyrillic capital IE
        ],
    )
    def test_a_known_name_behind_a_character_the_old_fold_missed_is_known(self, name: str) -> None:
        """The label is placed at its known category and judged by its thresholds."""
        policy = ModerationPolicy(
            block_at=90,
            labels={
                "Explicit": {"block_at": 50},
                "Non-Explicit Nudity of Intimate parts and Kissing": {"block_at": 50},
            },
        )
        assert REKOGNITION_V7.place(name).known
        assert REKOGNITION_V7.get(name) is not None
        assert policy.evaluate([ModerationLabel(name, 70.0)], []).action is Action.BLOCK

    @given(st.sampled_from(CATEGORIES), st.data())
    def test_every_known_name_in_any_disguise_is_placed_at_its_category(
        self, category: Category, data: st.DataObject
    ) -> None:
        """Case, width, accents, invisible characters, blanks, dashes and minus signs."""
        name = data.draw(unseen_disguised_names(category.name))
        assert REKOGNITION_V7.place(name) == REKOGNITION_V7.place(category.name)
        assert REKOGNITION_V7.place(name).known

    @pytest.mark.parametrize("name", ["\u2800", "\u3164\u200b", "-\u2212-"])
    def test_a_name_of_nothing_but_blanks_is_unknown_and_keeps_its_name(self, name: str) -> None:
        """A name with no letter in it matches no category and is placed as itself."""
        placed = REKOGNITION_V7.place(name)
        assert not placed.known
        assert placed.path == (name,)
