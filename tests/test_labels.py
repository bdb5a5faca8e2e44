"""Tests of ModerationLabel and ContentType validation."""

from __future__ import annotations

import pytest

from safegen import Box, ContentType, InvalidImageError, InvalidLabelError, ModerationLabel


@pytest.mark.parametrize(
    "confidence", [-0.1, 100.01, float("nan"), float("inf"), True, "99", None, 10**400, -(10**400)]
)
def test_a_confidence_outside_0_to_100_is_refused(confidence: object) -> None:
    """Confidence is on Rekognition's 0-100 scale; anything else is an InvalidLabelError."""
    with pytest.raises(InvalidLabelError, match="confidence must be a number from 0 to 100"):
        ModerationLabel("Weapons", confidence)  # type: ignore[arg-type]
    with pytest.raises(InvalidLabelError):
        ContentType("Animated", confidence)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["", "   ", None, 3])
def test_a_label_needs_a_name(name: object) -> None:
    """An empty or non-string name is refused (InvalidLabelError is a ValueError)."""
    with pytest.raises(ValueError, match="name must be a non-empty string"):
        ModerationLabel(name, 50.0)  # type: ignore[arg-type]


def test_rekognitions_empty_parent_means_no_parent() -> None:
    """ParentName "" (a top-level label) becomes None."""
    assert ModerationLabel("Violence", 90.0, parent="").parent is None


@pytest.mark.parametrize("level", [0, -1, 1.5, True, "2"])
def test_a_level_must_be_a_positive_integer(level: object) -> None:
    """Taxonomy levels start at 1."""
    with pytest.raises(InvalidLabelError, match="level must be a positive integer"):
        ModerationLabel("Violence", 90.0, level=level)  # type: ignore[arg-type]


def test_labels_are_frozen_values() -> None:
    """Equal fields, equal labels; assigning a field raises."""
    import attrs

    label = ModerationLabel("Weapons", 80.0, parent="Violence", level=2)
    assert label == ModerationLabel("Weapons", 80, parent="Violence", level=2)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        label.confidence = 10.0  # type: ignore[misc]
    assert label.to_dict() == {
        "name": "Weapons",
        "confidence": 80.0,
        "parent": "Violence",
        "level": 2,
        "boxes": [],
    }


def test_a_label_may_say_where_it_was_seen() -> None:
    from safegen import Box

    box = Box(0.1, 0.2, 0.3, 0.4)
    label = ModerationLabel("Exposed Male Nipple", 90.0, boxes=[box])
    assert label.boxes == (box,)
    assert label.to_dict()["boxes"] == [{"left": 0.1, "top": 0.2, "width": 0.3, "height": 0.4}]
    with pytest.raises(InvalidLabelError, match="Box objects"):
        ModerationLabel("Weapons", 90.0, boxes=[(0.1, 0.2, 0.3, 0.4)])  # type: ignore[list-item]


@pytest.mark.parametrize("corner", [10**400, float("nan"), -0.5, "0.5", True])
def test_a_box_outside_the_picture_is_refused(corner: object) -> None:
    """A box side that is not a fraction from 0 to 1, however large, is an InvalidImageError."""
    with pytest.raises(InvalidImageError, match=r"Box\.left must be a fraction"):
        Box(corner, 0.0, 0.1, 0.1)  # type: ignore[arg-type]
