"""Tests of PolicyDecision and its parts: equality, text and JSON forms."""

from __future__ import annotations

import json

import attrs
import pytest
from attrs import AttrsInstance

from safegen import (
    REKOGNITION_V7,
    Action,
    Box,
    ContentType,
    ContentTypeMatch,
    IgnoredLabel,
    IgnoreReason,
    InvalidLabelError,
    ModerationLabel,
    ModerationPolicy,
    NotEvaluated,
    PolicyDecision,
    PolicySource,
    Violation,
)

WEAPONS = ModerationLabel("Weapons", 88.0, parent="Violence", level=2)
VIOLENCE = ModerationLabel("Violence", 88.0, level=1)


def expected_block() -> PolicyDecision:
    return PolicyDecision(
        Action.BLOCK,
        violations=[
            Violation(
                WEAPONS,
                REKOGNITION_V7.lookup("Weapons"),
                Action.BLOCK,
                50.0,
                PolicySource("block_at"),
            )
        ],
        ignored=[
            IgnoredLabel(
                VIOLENCE,
                REKOGNITION_V7.lookup("Violence"),
                IgnoreReason.EXPLAINED_BY_DESCENDANT,
                explained_by=WEAPONS,
            )
        ],
    )


def test_an_evaluated_decision_equals_one_built_by_hand() -> None:
    """evaluate() builds the same decision a caller would: equality, hash and repr agree."""
    evaluated = ModerationPolicy().evaluate([VIOLENCE, WEAPONS])
    built = expected_block()
    assert evaluated == built
    assert hash(evaluated) == hash(built)
    assert repr(evaluated) == repr(built)
    assert evaluated.to_dict() == built.to_dict()


def test_decisions_with_different_explanations_differ() -> None:
    """Two BLOCKs for different reasons are different decisions."""
    other = ModerationPolicy().evaluate([ModerationLabel("Gambling", 88.0)])
    assert other.action is Action.BLOCK
    assert other != expected_block()


def test_reasons_read_as_sentences_in_order_of_importance() -> None:
    """Content-type rules first, then what counted, then what did not."""
    decision = PolicyDecision(
        Action.ALLOW,
        violations=expected_block().violations,
        ignored=[
            IgnoredLabel(
                ModerationLabel("Gambling", 30.0),
                REKOGNITION_V7.lookup("Gambling"),
                IgnoreReason.BELOW_THRESHOLD,
                threshold=50.0,
                source=PolicySource("block_at"),
            ),
            IgnoredLabel(
                ModerationLabel("Smoking", 99.0),
                REKOGNITION_V7.lookup("Smoking"),
                IgnoreReason.EXCLUDED,
                source=PolicySource("exclude", "Smoking"),
            ),
        ],
        content_types=[ContentTypeMatch("Animated", 91.0, 80.0, Action.ALLOW)],
        decided_by="Animated",
    )
    assert decision.reasons() == (
        "content type Animated at 91 >= 80: its rule applies, allow outright",
        "decided by the Animated content-type rule",
        "block: Violence / Weapons at 88 >= 50 (block_at)",
        "ignored: Gambling at 30: below 50 (block_at)",
        "ignored: Drugs & Tobacco / Drug & Tobacco Paraphernalia & Use / Smoking at 99: "
        'excluded (exclude "Smoking")',
    )


def test_to_dict_is_json_with_stable_keys() -> None:
    """The JSON form names every field, so audit logs can rely on it."""
    data = json.loads(json.dumps(expected_block().to_dict()))
    assert list(data) == [
        "action",
        "violations",
        "ignored",
        "content_types",
        "decided_by",
        "not_evaluated",
    ]
    assert data["violations"][0] == {
        "label": {
            "name": "Weapons",
            "confidence": 88.0,
            "parent": "Violence",
            "level": 2,
            "boxes": [],
        },
        "path": ["Violence", "Weapons"],
        "action": "block",
        "threshold": 50.0,
        "source": {"setting": "block_at", "label": None, "content_type": None},
    }
    assert data["ignored"][0]["reason"] == "explained_by_descendant"
    assert data["ignored"][0]["explained_by"]["name"] == "Weapons"


@pytest.mark.parametrize(
    ("actions", "strictest"),
    [
        ((), Action.ALLOW),
        ((Action.REVIEW, Action.ALLOW), Action.REVIEW),
        (tuple(Action), Action.BLOCK),
    ],
)
def test_strictest_orders_actions_by_severity(
    actions: tuple[Action, ...], strictest: Action
) -> None:
    """ALLOW < REVIEW < BLOCK, and no actions at all is ALLOW."""
    assert Action.strictest(actions) is strictest


def _samples() -> list[AttrsInstance]:
    decision = ModerationPolicy(review_at=40).evaluate(
        [VIOLENCE, WEAPONS, ModerationLabel("Gambling", 45.0)]
    )
    return [
        decision,
        *decision.violations,
        *decision.ignored,
        PolicySource("exclude", "Weapons", "Animated"),
        ContentTypeMatch("Animated", 90.0, 80.0, Action.BLOCK),
        NotEvaluated((REKOGNITION_V7.lookup("Violence"),), Action.REVIEW),
        ModerationPolicy().thresholds_for("Weapons"),
        REKOGNITION_V7.lookup("Weapons"),
        ModerationLabel("Weapons", 50.0, parent="Violence", level=2),
        ContentType("Animated", 80.0),
        Box(0.1, 0.2, 0.3, 0.4),
    ]


@pytest.mark.parametrize("value", _samples(), ids=lambda value: type(value).__name__)
def test_every_public_result_evolves_and_is_frozen(value: AttrsInstance) -> None:
    """attrs.evolve copies each result class; none can be changed in place."""
    assert attrs.has(type(value))
    assert attrs.evolve(value) == value  # type: ignore[misc]
    first = attrs.fields(type(value))[0].name
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        setattr(value, first, None)


def test_evolving_a_label_re_validates_it() -> None:
    """A label evolved to an impossible confidence or level is refused like a new one."""
    label = ModerationLabel("Weapons", 50.0, parent="Violence", level=2)
    assert attrs.evolve(label, confidence=60.0).confidence == 60.0
    with pytest.raises(InvalidLabelError, match="confidence"):
        attrs.evolve(label, confidence=101.0)
    with pytest.raises(InvalidLabelError, match="level"):
        attrs.evolve(label, level=0)
