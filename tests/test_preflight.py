"""Tests of image preflight: real Pillow round trips, each limit, repair, and fuzzing."""

from __future__ import annotations

import io

import attrs
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from safegen import ConfigurationError, InvalidImageError
from safegen.preflight import Preflight, PreparedImage, sniff_format
from tests import colour_profiles
from tests.strategies import images, make_image
from tests.test_fuzz_images import flat_jpeg


def outcome(preflight: Preflight, data: bytes) -> PreparedImage | InvalidImageError:
    try:
        return preflight.check(data)
    except InvalidImageError as error:
        return error


def decoded(prepared: PreparedImage) -> Image.Image:
    image = Image.open(io.BytesIO(prepared.data))
    image.load()
    return image


def test_a_good_png_passes_untouched() -> None:
    """JPEG or PNG within the limits is sent as it came: same bytes, no repairs."""
    data = make_image("PNG", (200, 100))
    prepared = Preflight().check(data)
    assert prepared.data == data
    assert (prepared.format, prepared.width, prepared.height, prepared.repairs) == (
        "PNG",
        200,
        100,
        (),
    )


@pytest.mark.parametrize("fmt", ["GIF", "BMP", "TIFF", "WEBP"])
def test_other_formats_are_refused_or_re_encoded(fmt: str) -> None:
    """Detected from the bytes; without repair a format error, with repair a decodable PNG."""
    data = make_image(fmt, (100, 100))
    assert sniff_format(data) == fmt
    with pytest.raises(InvalidImageError, match="only JPEG and PNG") as raised:
        Preflight().check(data)
    assert raised.value.limit == "format"
    prepared = Preflight(repair=True).check(data)
    assert decoded(prepared).format == prepared.format == "PNG"
    assert prepared.repairs == (f"re-encoded {fmt} as PNG",)


def test_the_name_does_not_matter_only_the_bytes() -> None:
    """A JPEG is a JPEG whatever it is called; there is no file name to trust."""
    assert Preflight().check(make_image("JPEG", (100, 100))).format == "JPEG"


def test_too_small_is_refused_or_upscaled() -> None:
    """Under 80 pixels a side: a min_side error, or upscaled to 80 keeping the aspect."""
    data = make_image("PNG", (40, 60))
    with pytest.raises(InvalidImageError) as raised:
        Preflight().check(data)
    assert raised.value.limit == "min_side"
    prepared = Preflight(repair=True).check(data)
    assert (prepared.width, prepared.height) == (80, 120)
    assert decoded(prepared).size == (80, 120)


def test_too_large_a_side_is_refused_or_downscaled() -> None:
    """Over the side limit (lowered here to keep the test small): refused, or scaled to fit."""
    data = make_image("PNG", (600, 200))
    with pytest.raises(InvalidImageError) as raised:
        Preflight(max_side=300).check(data)
    assert raised.value.limit == "max_side"
    prepared = Preflight(max_side=300, repair=True).check(data)
    assert (prepared.width, prepared.height) == (300, 100)
    assert decoded(prepared).size == (300, 100)


def test_too_many_bytes_is_refused_or_shrunk_until_it_fits() -> None:
    """Over the byte limit: refused, or re-encoded and downscaled until it fits."""
    data = make_image("PNG", (400, 300))  # noise: about 360 KB
    limit = 60_000
    with pytest.raises(InvalidImageError, match="bytes") as raised:
        Preflight(max_bytes=limit).check(data)
    assert raised.value.limit == "bytes"
    prepared = Preflight(max_bytes=limit, repair=True).check(data)
    assert len(prepared.data) <= limit
    assert decoded(prepared).format == prepared.format == "JPEG"
    assert "re-encoded as JPEG to fit the size limit" in prepared.repairs


@pytest.mark.parametrize(
    ("data", "limit"),
    [
        (b"", "empty"),
        (b"GIF89a but not really", "corrupt"),
        (b"%PDF-1.7 not an image", "format"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 20, "corrupt"),
    ],
)
def test_unusable_bytes_get_a_named_error(data: bytes, limit: str) -> None:
    """Empty, non-image and damaged bytes are InvalidImageErrors naming what is wrong."""
    with pytest.raises(InvalidImageError) as raised:
        Preflight(repair=True).check(data)
    assert raised.value.limit == limit


def test_a_truncated_image_is_damaged() -> None:
    """Half a PNG cannot be decoded: corrupt, not a crash."""
    data = make_image("PNG", (200, 200))
    with pytest.raises(InvalidImageError) as raised:
        Preflight().check(data[: len(data) // 2])
    assert raised.value.limit == "corrupt"


def test_animated_images_are_refused_not_judged_by_one_frame() -> None:
    """An unsafe later frame would pass if only the first were checked."""
    frames = [Image.new("RGB", (100, 100), color) for color in ("red", "blue")]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:])
    with pytest.raises(InvalidImageError, match="2 frames") as raised:
        Preflight(repair=True).check(out.getvalue())
    assert raised.value.limit == "animated"


def test_a_decompression_bomb_is_refused_before_decoding() -> None:
    """The header's claimed size is checked before any pixel is decoded."""
    out = io.BytesIO()
    Image.new("1", (12_000, 12_000)).save(out, "PNG")  # tiny file, 144 M pixels
    with pytest.raises(InvalidImageError) as raised:
        Preflight().check(out.getvalue())
    assert raised.value.limit == "pixels"


def test_a_non_bytes_input_is_refused() -> None:
    """A path or a string is not image bytes."""
    with pytest.raises(InvalidImageError) as raised:
        Preflight().check("image.png")  # type: ignore[arg-type]
    assert raised.value.limit == "type"


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_give_an_image_or_a_named_error(data: bytes) -> None:
    """Fuzzing: never a crash, only a prepared image or an InvalidImageError."""
    result = outcome(Preflight(repair=True), data)
    if isinstance(result, InvalidImageError):
        assert result.limit in {"empty", "format", "corrupt", "animated", "pixels", "min_side"}
    else:
        assert result.format in ("JPEG", "PNG")


@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=40)
@given(images())
def test_any_real_image_is_repaired_within_every_limit(
    image: tuple[bytes, str, tuple[int, int]],
) -> None:
    """Whatever format and size (within what scaling can fix), repair meets every limit."""
    data, _, (width, height) = image
    preflight = Preflight(repair=True, max_side=300, max_bytes=150_000)
    prepared = outcome(preflight, data)
    if isinstance(prepared, InvalidImageError):
        # Only shapes no scaling can fit: too thin to reach 80 without passing 300.
        assert prepared.limit == "min_side"
        assert max(width, height) * 80 > min(width, height) * 300
        return
    final = decoded(prepared)
    assert final.format == prepared.format in ("JPEG", "PNG")
    assert final.size == (prepared.width, prepared.height)
    assert min(final.size) >= 80
    assert max(final.size) <= 300
    assert len(prepared.data) <= 150_000


@pytest.mark.parametrize(
    ("settings_", "name"),
    [
        ({"max_bytes": 0}, "max_bytes"),
        ({"max_bytes": -1}, "max_bytes"),
        ({"max_bytes": 1.5}, "max_bytes"),
        ({"max_bytes": True}, "max_bytes"),
        ({"min_side": 200, "max_side": 100}, "max_side"),
        ({"min_side": 0}, "min_side"),
        ({"max_pixels": 0}, "max_pixels"),
        ({"max_memory": 0}, "max_memory"),
        ({"target_format": "GIF"}, "target_format"),
        ({"target_format": "png"}, "target_format"),
        ({"repair": "yes"}, "repair"),
    ],
)
def test_bad_settings_are_configuration_errors(settings_: dict[str, object], name: str) -> None:
    """Every setting is validated when built, and the error names it."""
    with pytest.raises(ConfigurationError, match=name):
        Preflight(**settings_)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match=name):
        attrs.evolve(Preflight(), **settings_)  # type: ignore[arg-type]


def test_a_preflight_cannot_be_weakened_after_it_is_built() -> None:
    """Frozen: a setting cannot be changed in place, only evolved (and checked again)."""
    preflight = Preflight()
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        preflight.max_bytes = 10**12  # type: ignore[misc]
    assert attrs.evolve(preflight, max_bytes=1).max_bytes == 1


def test_an_image_of_exactly_the_byte_limit_passes_one_byte_over_fails() -> None:
    """The byte limit is inclusive."""
    data = make_image("PNG", (100, 100))
    assert Preflight(max_bytes=len(data)).check(data).data == data
    with pytest.raises(InvalidImageError) as raised:
        Preflight(max_bytes=len(data) - 1).check(data)
    assert raised.value.limit == "bytes"


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def test_transparency_is_refused_unrepaired_and_composited_when_repaired() -> None:
    """Alpha is not sent for a service to interpret; repair shows it over black and white."""
    image = Image.new("RGBA", (100, 100), (255, 0, 0, 0))  # hidden red under alpha 0
    image.paste((0, 0, 255, 255), (25, 25, 75, 75))
    with pytest.raises(InvalidImageError) as raised:
        Preflight().check(_png(image))
    assert raised.value.limit == "alpha"
    prepared = Preflight(repair=True).check(_png(image))
    assert (prepared.width, prepared.height) == (200, 100)
    sent = decoded(prepared).convert("RGB")
    assert sent.getpixel((0, 0)) == (0, 0, 0)
    assert sent.getpixel((100, 0)) == (255, 255, 255)
    assert sent.getpixel((50, 50)) == sent.getpixel((150, 50)) == (0, 0, 255)


def test_a_16_bit_picture_is_repaired_to_what_it_shows_not_white() -> None:
    """Mid grey in 16 bits stays mid grey, where a plain conversion clips it to white."""
    grey = Image.new("I;16", (100, 100), 128 * 257)
    with pytest.raises(InvalidImageError) as raised:
        Preflight().check(_png(grey))
    assert raised.value.limit == "mode"
    sent = decoded(Preflight(repair=True).check(_png(grey))).convert("RGB")
    assert sent.getpixel((50, 50)) == (128, 128, 128)


def test_a_picture_decoding_over_the_memory_budget_is_refused_from_its_header() -> None:
    """Under the pixel limit, but a repair's copies would pass the memory budget."""
    data = _png(Image.new("1", (9_000, 9_000)))  # 81 M pixels in a small file
    with pytest.raises(InvalidImageError, match="MB") as raised:
        Preflight(repair=True).check(data)
    assert raised.value.limit == "pixels"
    with pytest.raises(InvalidImageError, match="MB"):
        Preflight(max_memory=1024 * 1024).check(make_image("PNG", (600, 600)))


def _profiled(image: Image.Image, profile: bytes) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG", icc_profile=profile)
    return out.getvalue()


def _gamma(gamma: float, bands: int = 3) -> bytes:
    levels = np.arange(256.0)
    return colour_profiles.toned([255 * (levels / 255) ** gamma] * bands)


def test_a_profile_that_changes_the_colours_is_refused_unrepaired_and_applied_when_repaired() -> (
    None
):
    """Rekognition reads raw pixels as sRGB: a gamma-altered profile is a ``mode`` problem."""
    data = _profiled(Image.new("RGB", (100, 100), (100, 150, 200)), _gamma(0.5))
    with pytest.raises(InvalidImageError) as caught:
        Preflight().check(data)
    assert caught.value.limit == "mode"
    prepared = Preflight(repair=True).check(data)
    shown = decoded(prepared)
    assert "icc_profile" not in shown.info
    assert shown.getpixel((50, 50)) == tuple(colour_profiles.shown(data)[50, 50].tolist())
    assert any("viewer sees" in step for step in prepared.repairs)


def test_an_srgb_profile_passes_untouched_even_on_a_grey_picture() -> None:
    """An sRGB profile changes nothing: the bytes are sent as they came."""
    for image in (Image.new("RGB", (100, 100), (9, 99, 199)), Image.new("L", (100, 100), 77)):
        data = _profiled(image, colour_profiles.srgb())
        assert Preflight().check(data).data == data


@pytest.mark.parametrize(
    ("image", "profile"),
    [
        (Image.new("RGB", (100, 100)), b"not an ICC profile at all"),
        (Image.new("RGB", (100, 100)), colour_profiles.srgb()[:200]),
        (Image.new("L", (100, 100)), _gamma(0.5)),  # an RGB profile on grey pixels
        (Image.new("RGB", (100, 100)), _gamma(0.5, bands=1)),  # a grey profile on colour
        (Image.new("RGB", (100, 100)), colour_profiles.toned([255 - np.arange(256.0)] * 3)),
    ],
    ids=["garbage", "cut short", "RGB on grey", "grey on RGB", "falling curves"],
)
def test_a_profile_viewers_disagree_about_is_damage(image: Image.Image, profile: bytes) -> None:
    """An unreadable, mismatched or falling-curve profile is ``corrupt``, repaired or not."""
    data = _profiled(image, profile)
    for preflight in (Preflight(), Preflight(repair=True)):
        with pytest.raises(InvalidImageError) as caught:
            preflight.check(data)
        assert caught.value.limit == "corrupt"


def test_a_profile_counts_in_the_memory_estimate() -> None:
    """A profiled picture needs a copy more: the budget that fits it plain refuses it profiled."""
    image = Image.new("L", (1000, 1000))
    plain, profiled = _png(image), _profiled(image, colour_profiles.srgb())
    budget = 1000 * 1000 * (1 + 5)  # decoded L plus the check's working copies
    Preflight(max_memory=budget).check(plain)
    with pytest.raises(InvalidImageError) as caught:
        Preflight(max_memory=budget).check(profiled)
    assert caught.value.limit == "pixels"


# -- the limits apply to the header's size; multi-scan JPEGs; Pillow's guard -----------------


def test_a_jpeg_decoded_small_is_still_held_to_the_side_limit() -> None:
    """A 12000x7000 JPEG decoded at half scale is over 10,000 a side: refused, or re-encoded."""
    data = flat_jpeg(12_000, 7_000, 3, interleaved=True)
    with pytest.raises(InvalidImageError) as raised:
        Preflight().check(data)
    assert raised.value.limit == "max_side"
    assert "12000x7000" in str(raised.value)
    prepared = Preflight(repair=True).check(data)
    assert prepared.data != data
    assert max(decoded(prepared).size) <= 10_000
    assert (prepared.width, prepared.height) == decoded(prepared).size
    assert any(step.startswith("decoded 12000x7000 at") for step in prepared.repairs)


@pytest.mark.parametrize("side", [10_000, 10_001])
def test_the_side_limit_boundary_on_a_jpeg_decoded_at_reduced_scale(side: int) -> None:
    """Exactly 10,000 px passes as sent; 10,001 is refused, and repaired by re-encoding."""
    data = flat_jpeg(side, 9_000, 1, interleaved=True)  # 90 M pixels: decoded at 1/2 scale
    if side == 10_000:
        prepared = Preflight().check(data)
        assert (prepared.data, prepared.width, prepared.height) == (data, 10_000, 9_000)
        assert Preflight(repair=True).check(data).data == data
        return
    with pytest.raises(InvalidImageError) as raised:
        Preflight().check(data)
    assert raised.value.limit == "max_side"
    prepared = Preflight(repair=True).check(data)
    assert prepared.data != data
    assert max(prepared.width, prepared.height) <= 10_000


@pytest.mark.parametrize("side", [10_000, 10_001])
def test_the_side_limit_boundary_on_a_png(side: int) -> None:
    """Exactly 10,000 px passes untouched; 10,001 is refused, or resized to 10,000."""
    data = _png(Image.new("RGB", (side, 200), "white"))
    if side == 10_000:
        assert Preflight().check(data).data == data
        return
    with pytest.raises(InvalidImageError) as raised:
        Preflight().check(data)
    assert raised.value.limit == "max_side"
    prepared = Preflight(repair=True).check(data)
    assert decoded(prepared).size == (prepared.width, prepared.height) == (10_000, 200)


def test_a_jpeg_in_a_scan_per_component_counts_its_full_size_coefficients() -> None:
    """Decoding at reduced scale shrinks the pixels, not libjpeg's coefficient buffer."""
    budget = 5 * 1024 * 1024  # under the 6 MB of coefficients; over a 1/2-scale decode
    interleaved = flat_jpeg(1_000, 1_000, 3, interleaved=True)
    one_scan_each = flat_jpeg(1_000, 1_000, 3, interleaved=False)
    assert Preflight(max_memory=budget).check(interleaved).width == 1_000
    with pytest.raises(InvalidImageError, match="MB") as raised:
        Preflight(max_memory=budget).check(one_scan_each)
    assert raised.value.limit == "pixels"


def test_a_large_multi_scan_jpeg_is_refused_from_its_header() -> None:
    """9400x9400 in a scan per component needs 530 MB of coefficients at any scale."""
    for components in (3, 4):
        data = flat_jpeg(9_400, 9_400, components, interleaved=False)
        for preflight in (Preflight(), Preflight(repair=True)):
            with pytest.raises(InvalidImageError, match="MB") as raised:
                preflight.check(data)
            assert raised.value.limit == "pixels"


def test_max_pixels_above_pillows_own_guard_takes_effect() -> None:
    """Pillow's 89 M-pixel guard neither fires first nor is left changed; ours speaks."""
    data = _png(Image.new("1", (9_500, 9_500)))  # 90.25 M pixels, 1 bit each
    guard = Image.MAX_IMAGE_PIXELS
    roomy = Preflight(max_memory=2 * 1024**3)
    assert roomy.check(data).data == data
    with pytest.raises(InvalidImageError, match="allowed \\(a guard") as raised:
        attrs.evolve(roomy, max_pixels=90_000_000).check(data)
    assert raised.value.limit == "pixels"
    assert guard == Image.MAX_IMAGE_PIXELS
