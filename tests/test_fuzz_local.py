"""Properties of the offline side (issue 12): policies derived for a backend, the skin test."""

from __future__ import annotations

from collections.abc import Mapping

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st

from safegen import Action, ImageReport, ModerationPolicy, PromptModerator, Thresholds
from safegen.local import NudeNet, recommended_policy
from safegen.prompt_policy import PromptPolicy
from safegen.reports import ImageSource
from tests.strategies import CATEGORIES, policies, prompt_policy_tables, thresholds

# -- recommended_policy carries every field it does not mean to change ------------------------


@attrs.frozen
class _Calibrated:
    """A calibrated backend that is only its thresholds: all recommended_policy reads."""

    thresholds: Mapping[str, Thresholds]
    name: str = "calibrated"

    def detect(self, image: ImageSource, *, min_confidence: float) -> ImageReport:
        raise AssertionError("recommended_policy never looks at a picture")


_LEAVES = [c for c in CATEGORIES if c.level == 3]


@st.composite
def _policies_with_prompts(draw: st.DrawFn) -> ModerationPolicy:
    """Any valid policy, with any valid ``[prompts]`` section."""
    base = draw(policies())
    if draw(st.booleans()):
        return base
    return attrs.evolve(base, prompts=PromptPolicy.from_mapping(draw(prompt_policy_tables())))


@settings(max_examples=150, deadline=None)
@given(
    base=_policies_with_prompts(),
    calibrated=st.dictionaries(st.sampled_from(_LEAVES).map(lambda c: c.name), thresholds()),
)
def test_the_recommended_policy_changes_only_the_backends_label_entries(
    base: ModerationPolicy, calibrated: dict[str, Thresholds]
) -> None:
    """Every field but ``labels`` is the base's own; labels gain only entries the base lacks."""
    policy = recommended_policy(_Calibrated(calibrated), base)
    for field in attrs.fields(ModerationPolicy):
        if field.name != "labels":  # every other field, including ones added later
            assert getattr(policy, field.name) == getattr(base, field.name), field.name
    assert policy.taxonomy is base.taxonomy
    expected = {base.taxonomy.lookup(name): t for name, t in calibrated.items()}
    expected.update(base.labels)  # the base's own entry wins over the calibrated one
    assert dict(policy.labels) == expected
    assert ModerationPolicy.from_mapping(policy.to_mapping()) == policy


def test_the_recommended_policy_keeps_a_presets_prompt_section() -> None:
    """The strict preset's prompt rules (a bikini is BLOCKED) survive calibration."""
    strict = ModerationPolicy.preset("strict")
    policy = recommended_policy(_Calibrated(NudeNet.THRESHOLDS), strict)
    assert policy.prompts == strict.prompts
    verdict = PromptModerator.from_policy(policy).moderate("a girl in a bikini")
    assert verdict.action is Action.BLOCK
