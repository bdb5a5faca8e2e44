"""Tests of redaction with real Pillow round trips."""

from __future__ import annotations

import io
import statistics
from typing import Literal

import numpy as np
import pytest
from PIL import Image, ImageChops

from safegen import InvalidImageError
from safegen.redaction import Box, redact
from tests import colour_profiles
from tests.strategies import make_image

Style = Literal["blur", "pixelate", "placeholder"]


def open_bytes(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def roughness(image: Image.Image) -> float:
    """How much neighbouring pixels differ: high for noise, low once blurred."""
    grey = image.convert("L")
    shifted = ImageChops.offset(grey, 1, 0)
    return statistics.fmean(ImageChops.difference(grey, shifted).tobytes())


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "BMP", "GIF", "TIFF"])
@pytest.mark.parametrize("style", ["blur", "pixelate", "placeholder"])
def test_redaction_keeps_the_format_and_size_and_hides_detail(fmt: str, style: Style) -> None:
    """Output in the input's format and size, with most of the fine detail gone."""
    original = make_image(fmt, (160, 120))
    redacted = open_bytes(redact(original, style=style, strength=0.6))
    assert redacted.format == fmt
    assert redacted.size == (160, 120)
    assert roughness(redacted) < roughness(open_bytes(original)) / 3


def test_a_placeholder_is_flat_grey() -> None:
    """Nothing of the original survives a placeholder."""
    covered = open_bytes(redact(make_image("PNG"), style="placeholder")).convert("RGB")
    assert covered.getcolors() == [(covered.width * covered.height, (128, 128, 128))]


def test_stronger_blur_hides_more() -> None:
    """Strength is a dial: 1.0 leaves less detail than 0.1."""
    original = make_image("PNG", (200, 150))
    light = roughness(open_bytes(redact(original, strength=0.1)))
    heavy = roughness(open_bytes(redact(original, strength=1.0)))
    assert heavy < light


def test_regions_redact_only_inside_their_boxes() -> None:
    """Pixels outside the box are untouched (PNG is lossless), inside they change."""
    original = make_image("PNG", (200, 100))
    box = Box(left=0.25, top=0.2, width=0.5, height=0.5)
    result = open_bytes(redact(original, style="pixelate", regions=[box])).convert("RGB")
    before = open_bytes(original).convert("RGB")
    left, top, right, bottom = box.pixels(before.size)
    assert (left, top, right, bottom) == (50, 20, 150, 70)
    outside = [
        (x, y)
        for x in range(200)
        for y in range(100)
        if not (left <= x < right and top <= y < bottom)
    ]
    assert all(result.getpixel(p) == before.getpixel(p) for p in outside)
    inside = before.crop((left, top, right, bottom))
    assert roughness(result.crop((left, top, right, bottom))) < roughness(inside) / 3


def test_an_alpha_channel_survives() -> None:
    """An RGBA PNG comes back RGBA."""
    assert open_bytes(redact(make_image("PNG", mode="RGBA"))).mode == "RGBA"


@pytest.mark.parametrize(
    ("kwargs", "limit"),
    [
        ({"style": "smudge"}, "style"),
        ({"style": None}, "style"),
        ({"style": ["blur"]}, "style"),
        ({"strength": 0}, "strength"),
        ({"strength": 1.5}, "strength"),
        ({"strength": "0.5"}, "strength"),
        ({"strength": None}, "strength"),
        ({"strength": True}, "strength"),
        ({"strength": float("nan")}, "strength"),
        ({"regions": [None]}, "box"),
        ({"regions": [(0, 0, 1, 1)]}, "box"),
        ({"regions": Box(left=0, top=0, width=1, height=1)}, "box"),
        ({"regions": "box"}, "box"),
        ({"regions": 3}, "box"),
    ],
)
def test_bad_arguments_are_refused_naming_the_argument(
    kwargs: dict[str, object], limit: str
) -> None:
    """Wrong styles, strengths and regions are InvalidImageErrors naming the argument."""
    for image in (make_image(), b"not even an image"):  # checked before the bytes are read
        with pytest.raises(InvalidImageError) as raised:
            redact(image, **kwargs)  # type: ignore[arg-type]
        assert raised.value.limit == limit
        assert str(raised.value).startswith(limit if limit != "box" else "regions")


def test_regions_may_be_any_iterable_of_boxes() -> None:
    """A tuple or a generator of boxes is redacted as a list of them is."""
    boxes = [Box(left=0, top=0, width=0.5, height=0.5)]
    want = redact(make_image(), regions=boxes)
    assert redact(make_image(), regions=tuple(boxes)) == want
    assert redact(make_image(), regions=(box for box in boxes)) == want  # type: ignore[arg-type]


@pytest.mark.parametrize(("data", "limit"), [(b"", "empty"), (b"not an image", "corrupt")])
def test_unusable_bytes_are_refused(data: bytes, limit: str) -> None:
    """Redaction of nothing, or of non-images, says so."""
    with pytest.raises(InvalidImageError) as raised:
        redact(data)
    assert raised.value.limit == limit


def test_box_fractions_are_checked() -> None:
    """A box outside 0-1 is a mistake, not a silent clip."""
    with pytest.raises(InvalidImageError):
        Box(left=-0.1, top=0, width=0.5, height=0.5)


def test_colours_hidden_under_transparency_do_not_bleed_into_a_blur() -> None:
    """A blur of a half-transparent picture is the same whatever colour hides under alpha 0."""
    pictures = []
    for hidden in ((255, 0, 0, 0), (0, 255, 0, 0)):
        image = Image.new("RGBA", (120, 90), hidden)
        image.paste((0, 0, 255, 255), (0, 0, 60, 90))
        out = io.BytesIO()
        image.save(out, "PNG")
        pictures.append(redact(out.getvalue(), style="blur", strength=0.5))
    assert pictures[0] == pictures[1]
    shown = open_bytes(pictures[0]).convert("RGBA")
    pixel = shown.getpixel((62, 45))
    assert isinstance(pixel, tuple)
    red, green, _, alpha = pixel
    assert alpha > 0
    assert red == green == 0


def test_a_turned_photo_is_redacted_upright_and_loses_its_orientation() -> None:
    """Boxes are relative to what a viewer sees; the result needs no EXIF turn to show it."""
    exif = Image.Exif()
    exif[0x0112] = 6  # stored 120x90, shown 90x120
    out = io.BytesIO()
    Image.new("RGB", (120, 90), "white").save(out, "JPEG", exif=exif)
    result = open_bytes(redact(out.getvalue(), style="placeholder"))
    assert result.size == (90, 120)
    assert result.getexif().get(0x0112) is None


def test_a_16_bit_picture_is_redacted_in_its_own_shades() -> None:
    """A 16-bit grey is not clipped to white on its way through redaction."""
    out = io.BytesIO()
    Image.new("I;16", (100, 80), 60 * 257).save(out, "PNG")
    result = open_bytes(redact(out.getvalue(), style="pixelate")).convert("L")
    assert result.getextrema() == (60, 60)


def test_a_colour_profile_is_applied_before_redaction_and_not_kept() -> None:
    """Redaction works on what a colour-managed viewer shows; the result carries no profile."""
    levels = np.arange(256.0)
    profile = colour_profiles.toned([255 * (levels / 255) ** 0.5] * 3)
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (100, 150, 200)).save(out, "PNG", icc_profile=profile)
    result = Image.open(io.BytesIO(redact(out.getvalue(), regions=[])))
    assert "icc_profile" not in result.info
    assert result.getpixel((5, 5)) == tuple(colour_profiles.shown(out.getvalue())[5, 5].tolist())
