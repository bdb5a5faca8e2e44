"""Bad-input fuzzing through the public API: only verdicts or SafegenErrors, never a crash.

Each test states how many inputs it tries (hypothesis's max_examples), so the total is known.
"""

from __future__ import annotations

import functools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from safegen import (
    Action,
    ImageModerator,
    Preflight,
    PromptModerator,
    RuleFilter,
    SafegenError,
)
from safegen.local import Ensemble, NudeNet, OpenNSFW, recommended_policy
from safegen.testing import FakeImageBackend
from tests.strategies import images

PROMPTS_TRIED = 400
IMAGES_TRIED = 300
REAL_IMAGES_TRIED = 60

MODERATOR = PromptModerator(rules=RuleFilter.default())
IMAGES = ImageModerator(FakeImageBackend(), preflight=Preflight(repair=True))


@settings(max_examples=PROMPTS_TRIED, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        st.text(),
        st.text(alphabet=st.characters(codec="utf-8"), min_size=1000, max_size=12_000),
        st.just(""),
        st.text(alphabet=" \t\n\u200b\u00ad", max_size=50),
    )
)
def test_any_prompt_gets_a_verdict_or_a_safegen_error(prompt: str) -> None:
    """Arbitrary Unicode, empty, invisible-only and over-long prompts."""
    try:
        verdict = MODERATOR.moderate(prompt)
    except SafegenError:
        assert len(prompt) > MODERATOR.max_chars
    else:
        assert verdict.action in Action


@settings(max_examples=IMAGES_TRIED, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=4096), st.binary(min_size=0, max_size=0)))
def test_any_bytes_as_an_image_get_a_verdict(data: bytes) -> None:
    """Arbitrary bytes never crash, and an unreadable image is never allowed."""
    verdict = IMAGES.moderate(data)
    if verdict.failed:
        assert verdict.action is Action.BLOCK


@settings(max_examples=REAL_IMAGES_TRIED, suppress_health_check=[HealthCheck.too_slow])
@given(images(), st.floats(0.05, 1.0))
def test_truncated_real_images_get_a_verdict(
    image: tuple[bytes, str, tuple[int, int]], keep: float
) -> None:
    """Real images of every format, cut anywhere: a verdict, never a crash."""
    data = image[0]
    verdict = IMAGES.moderate(data[: max(1, int(len(data) * keep))])
    assert verdict.action in Action


@pytest.mark.parametrize(("width", "height"), [(1, 1), (20_000, 1), (1, 20_000), (12_000, 12_000)])
def test_extreme_dimensions_are_refused_or_repaired(width: int, height: int) -> None:
    """Huge or degenerate sizes (PNG headers claim them cheaply): a verdict either way."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("1", (width, height)).save(buffer, "PNG")
    verdict = IMAGES.moderate(buffer.getvalue())
    assert verdict.action in (Action.ALLOW, Action.BLOCK)
    if verdict.failed:
        assert "preflight" in (verdict.error or "")


@settings(max_examples=REAL_IMAGES_TRIED, suppress_health_check=[HealthCheck.too_slow])
@given(images(), st.floats(0.05, 1.0))
def test_the_offline_models_take_any_image_or_fail_closed(
    image: tuple[bytes, str, tuple[int, int]], keep: float
) -> None:
    """Real images of any format and size, whole or cut, straight into both offline models.

    No preflight: labels on the 0-100 scale with boxes inside the picture, or BLOCK.
    """
    backend = _offline()
    data = image[0][: max(1, int(len(image[0]) * keep))]
    verdict = ImageModerator(backend, recommended_policy(backend)).moderate(data)
    if verdict.failed:
        assert verdict.action is Action.BLOCK
        return
    assert verdict.report is not None
    for label in verdict.report.labels:
        assert 0 <= label.confidence <= 100
        for box in label.boxes:
            assert box.left + box.width <= 1.0 + 1e-9
            assert box.top + box.height <= 1.0 + 1e-9


@functools.cache
def _offline() -> Ensemble:
    return Ensemble([OpenNSFW(), NudeNet()])
