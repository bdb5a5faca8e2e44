"""Pictures that look the same get the same look; damaged or forged ones a named error.

Each test states how many inputs it tries (hypothesis's max_examples), so the total is known.
"""

from __future__ import annotations

import functools
import io
import struct
import subprocess
import sys
import textwrap
import zlib
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageOps, PngImagePlugin

from safegen import InvalidImageError
from safegen._pillow import MEMORY_BUDGET, jpeg_coefficients
from safegen.local import _picture
from safegen.preflight import Preflight
from safegen.redaction import redact
from tests import colour_profiles

VARIANTS_TRIED = 60
DAMAGED_TRIED = 150
FORGED_TRIED = 120

# Limits loose enough that only the picture's look, never its size, makes preflight repair.
LOOSE = Preflight(repair=True, min_side=1, max_side=4096, max_bytes=50_000_000)


# -- building pictures -------------------------------------------------------------------


def encode(image: Image.Image, fmt: str = "PNG", **options: object) -> bytes:
    """Encode *image* with Pillow."""
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_48bit(pixels: np.ndarray) -> bytes:
    """Write a 16-bit-a-channel RGB PNG (Pillow cannot), each 8-bit value v as v * 257."""
    height, width, _ = pixels.shape
    deep = (pixels.astype(">u2") * 257).tobytes()
    rows = b"".join(b"\x00" + deep[y * width * 6 : (y + 1) * width * 6] for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(rows))
        + _chunk(b"IEND", b"")
    )


def palette(image: Image.Image) -> Image.Image:
    """The same RGB picture as an exact palette image (it has at most 256 colours)."""
    pixels = np.asarray(image)
    colours, index = np.unique(pixels.reshape(-1, 3), axis=0, return_inverse=True)
    result = Image.fromarray(index.reshape(pixels.shape[:2]).astype("uint8"), "P")
    result.putpalette(colours.astype("uint8").tobytes())
    return result


# Stored pixels for each orientation, so that a viewer applying it shows the original.
UNDO = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


def oriented(image: Image.Image, orientation: int, fmt: str = "PNG") -> bytes:
    """*image* stored turned, with the EXIF orientation that turns it back."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(image.transpose(UNDO[orientation]), fmt, exif=exif)


@st.composite
def pictures(draw: st.DrawFn, *, grey: bool = False) -> Image.Image:
    """A small RGB (or grey) picture of a few colours in blocks, so every encoding is exact."""
    width, height = draw(st.integers(1, 40)), draw(st.integers(1, 40))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    colours = rng.integers(0, 256, (draw(st.integers(1, 12)), 3), dtype=np.uint8)
    if grey:
        colours[:, 1] = colours[:, 2] = colours[:, 0]
    index = rng.integers(0, len(colours), (height, width))
    return Image.fromarray(colours[index], "RGB")


def viewed(data: bytes) -> list[np.ndarray]:
    """The model's views of *data*, as arrays."""
    return [np.asarray(view) for view in _picture.views(data)]


def seen_after_preflight(data: bytes) -> np.ndarray:
    """What a viewer is shown of preflight's output (orientation applied, as RGB)."""
    prepared = LOOSE.check(data)
    image = ImageOps.exif_transpose(Image.open(io.BytesIO(prepared.data)))
    assert image is not None
    shown = image.convert("RGBA")
    assert shown.getchannel("A").getextrema() == (255, 255)
    return np.asarray(shown.convert("RGB"))


def _segment(marker: int, body: bytes) -> bytes:
    return b"\xff" + bytes([marker]) + struct.pack(">H", len(body) + 2) + body


_AC_SYMBOLS = bytes.fromhex(
    "01020300041105122131410613516107227114328191a1082342b1c11552d1f02433627282090a161718"
    "191a25262728292a3435363738393a434445464748494a535455565758595a636465666768696a737475"
    "767778797a838485868788898a92939495969798999aa2a3a4a5a6a7a8a9aab2b3b4b5b6b7b8b9bac2c3"
    "c4c5c6c7c8c9cad2d3d4d5d6d7d8d9dae1e2e3e4e5e6e7e8e9eaf1f2f3f4f5f6f7f8f9fa"
)
_DC_TABLE = b"\0" + bytes([0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0]) + bytes(range(12))
_AC_COUNTS = bytes([0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7D])


def flat_jpeg(
    width: int, height: int, components: int, *, interleaved: bool, before_scans: bytes = b""
) -> bytes:
    """A flat grey baseline JPEG, built without encoding a pixel: a few MB at 10,000 px a side.

    With *interleaved* false, each component has a scan of its own (sequential, not
    progressive), which libjpeg decodes through a whole-image coefficient buffer.
    *before_scans* is inserted as it is after the tables (an APP segment, say).
    """
    out = b"\xff\xd8" + _segment(0xDB, b"\0" + b"\1" * 64)
    frame = struct.pack(">BHHB", 8, height, width, components)
    out += _segment(0xC0, frame + b"".join(bytes([i + 1, 0x11, 0]) for i in range(components)))
    out += _segment(0xC4, _DC_TABLE + b"\x10" + _AC_COUNTS + _AC_SYMBOLS) + before_scans
    blocks = -(-width // 8) * -(-height // 8)
    tail = {0: b"", 1: b"\x2b", 2: b"\x28\xaf", 3: b"\x28\xa2\xbf"}

    def data(count: int) -> bytes:  # each block: DC difference 0, then end of block
        return b"\x28\xa2\x8a" * (count // 4) + tail[count % 4]

    scans = (
        [(list(range(components)), blocks * components)]
        if interleaved
        else [([i], blocks) for i in range(components)]
    )
    for members, count in scans:
        header = bytes([len(members)]) + b"".join(bytes([c + 1, 0]) for c in members)
        out += _segment(0xDA, header + b"\0\x3f\0") + data(count)
    return out + b"\xff\xd9"


def transparent_palette(side: int) -> bytes:
    """A small PNG: a two-colour palette picture, half of it transparent (index 0)."""
    image = Image.new("P", (side, side), 0)
    image.putpalette([255, 0, 0, 0, 255, 0] * 128)
    image.paste(1, (0, 0, side // 2, side))
    return encode(image, transparency=0)


# -- class 4: what a viewer sees is what is judged -----------------------------------------

Variant = Callable[[Image.Image], bytes]


def _turned(image: Image.Image, *, orientation: int, fmt: str = "PNG") -> bytes:
    return oriented(image, orientation, fmt)


VARIANTS: dict[str, Variant] = {
    "palette": lambda im: encode(palette(im)),
    "opaque alpha": lambda im: encode(im.convert("RGBA")),
    "48-bit PNG": lambda im: png_48bit(np.asarray(im)),
    "CMYK TIFF": lambda im: encode(im.convert("CMYK"), "TIFF"),
    "transparent palette entry unused": lambda im: (
        encode(palette(im), transparency=255)
        if len(np.unique(np.asarray(im).reshape(-1, 3), axis=0)) < 256
        else encode(im)
    ),
    **{f"orientation {o}": functools.partial(_turned, orientation=o) for o in range(2, 9)},
    **{
        f"orientation {o} TIFF": functools.partial(_turned, orientation=o, fmt="TIFF")
        for o in (3, 6)
    },
}
GREY_VARIANTS: dict[str, Variant] = {
    "L": lambda im: encode(im.convert("L")),
    "LA opaque": lambda im: encode(im.convert("LA")),
    "16-bit PNG": lambda im: encode(
        Image.fromarray(np.asarray(im.convert("L")).astype(np.uint16) * 257)
    ),
    "16-bit TIFF": lambda im: encode(
        Image.fromarray(np.asarray(im.convert("L")).astype(np.uint16) * 257), "TIFF"
    ),
    "32-bit int TIFF": lambda im: encode(im.convert("L").convert("I"), "TIFF"),
    "float TIFF, 0-1": lambda im: encode(
        Image.fromarray(np.asarray(im.convert("L")).astype(np.float32) / 255), "TIFF"
    ),
}


@settings(max_examples=VARIANTS_TRIED, suppress_health_check=[HealthCheck.too_slow])
@given(pictures(), st.sampled_from(sorted(VARIANTS)))
def test_an_encoding_that_looks_the_same_is_judged_the_same(
    picture: Image.Image, variant: str
) -> None:
    """Palette, opaque alpha, 48-bit, CMYK and EXIF-turned copies give the models equal pixels."""
    reference, copy = encode(picture), VARIANTS[variant](picture)
    for got, want in zip(viewed(copy), viewed(reference), strict=True):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(seen_after_preflight(copy), np.asarray(picture))


@settings(max_examples=VARIANTS_TRIED, suppress_health_check=[HealthCheck.too_slow])
@given(pictures(grey=True), st.sampled_from(sorted(GREY_VARIANTS)))
def test_a_deep_or_single_band_grey_is_judged_as_shown(picture: Image.Image, variant: str) -> None:
    """16-bit, 32-bit and float greys are scaled as a screen shows them, never clipped to white."""
    reference, copy = encode(picture), GREY_VARIANTS[variant](picture)
    for got, want in zip(viewed(copy), viewed(reference), strict=True):
        assert np.abs(got.astype(int) - want.astype(int)).max() <= 1
    assert (
        np.abs(seen_after_preflight(copy).astype(int) - np.asarray(picture).astype(int)).max() <= 1
    )


# -- class 4b: an ICC profile is applied, an XMP orientation is not --------------------------

PROFILE_FORMATS = ["PNG", "TIFF", "WEBP", "JPEG"]


@st.composite
def tone_curves(draw: st.DrawFn, bands: int) -> list[np.ndarray]:
    """Rising tone curves (one a band) far from sRGB's: a gamma from 0.4 to 2.5 each."""
    levels = np.arange(256.0)
    gammas = [draw(st.floats(0.4, 2.5)) for _ in range(bands)]
    return [255 * (levels / 255) ** gamma for gamma in gammas]


def _tagged(image: Image.Image, curves: list[np.ndarray], fmt: str) -> bytes:
    alpha = [np.arange(256.0)] if image.mode == "RGBA" else []  # alpha stays as it is
    kept = colour_profiles.stored(image, [*curves, *alpha])
    options: dict[str, object] = {"icc_profile": colour_profiles.toned(curves)}
    if fmt in ("JPEG", "WEBP"):
        options.update(quality=100) if fmt == "JPEG" else options.update(lossless=True)
    return encode(kept, fmt, **options)


@settings(max_examples=VARIANTS_TRIED, suppress_health_check=[HealthCheck.too_slow])
@given(
    pictures(),
    st.sampled_from(["RGB", "RGBA", "P", "L"]),
    st.sampled_from(PROFILE_FORMATS),
    st.data(),
)
def test_a_picture_with_an_icc_profile_is_judged_as_a_colour_managed_viewer_shows_it(
    picture: Image.Image, mode: str, fmt: str, data: st.DataObject
) -> None:
    """The models and preflight get what applying the embedded profile shows, never raw pixels."""
    if mode == "L":
        picture = picture.convert("L")
        fmt = "PNG" if fmt == "WEBP" else fmt  # WebP has no grey: it would store RGB
    curves = data.draw(tone_curves(1 if mode == "L" else 3))
    copy = _tagged(picture, curves, "PNG" if mode == "P" else fmt)
    if mode == "RGBA":
        copy = _tagged(picture.convert("RGBA"), curves, "PNG")
    elif mode == "P" and len(np.unique(np.asarray(picture).reshape(-1, 3), axis=0)) <= 256:
        kept = Image.open(io.BytesIO(copy)).convert("RGB")
        copy = encode(palette(kept), icc_profile=colour_profiles.toned(curves))
    shown = colour_profiles.shown(copy)
    for got in viewed(copy):
        assert np.abs(got.astype(int) - shown.astype(int)).max() <= 1
    if fmt != "JPEG" or mode == "P":  # preflight re-encodes a JPEG as JPEG: more loss
        assert np.abs(seen_after_preflight(copy).astype(int) - shown.astype(int)).max() <= 1


# A grey profile a little off sRGB (gamma 0.975 on sRGB's curve): each level is stored where
# the profile shows it, so the raw level is off what a viewer shows by 0, 1 or 2.
_NEAR_SRGB = [255 * (np.arange(256.0) / 255) ** 0.975]


@pytest.mark.parametrize(("level", "stored"), [(28, 26), (200, 199)])
def test_a_grey_profile_changing_a_level_by_one_or_two_is_applied_by_preflight_too(
    level: int, stored: int
) -> None:
    """A near-sRGB grey profile that moves a level (by 2, and by 1) is applied, not passed on."""
    copy = _tagged(Image.new("L", (1, 1), level), _NEAR_SRGB, "PNG")
    assert Image.open(io.BytesIO(copy)).getpixel((0, 0)) == stored
    assert colour_profiles.shown(copy).tolist() == [[[level] * 3]]
    assert LOOSE.check(copy).data != copy  # the raw level is not what a viewer shows
    (model,) = viewed(copy)
    np.testing.assert_array_equal(seen_after_preflight(copy), model)
    assert model.tolist() == [[[level] * 3]]


@pytest.mark.parametrize("level", [0, 255])
def test_a_grey_profile_leaving_the_pictures_levels_alone_keeps_its_bytes(level: int) -> None:
    """The same profile on a picture whose only level it shows as stored changes no byte."""
    copy = _tagged(Image.new("L", (1, 1), level), _NEAR_SRGB, "PNG")
    assert LOOSE.check(copy).data == copy
    (model,) = viewed(copy)
    assert model.tolist() == [[[level] * 3]]


@settings(max_examples=VARIANTS_TRIED, suppress_health_check=[HealthCheck.too_slow])
@given(pictures(), st.booleans(), st.sampled_from(["PNG", "TIFF"]), st.data())
def test_preflight_sends_the_pixels_the_models_read_through_a_near_srgb_profile(
    picture: Image.Image, grey: bool, fmt: str, data: st.DataObject
) -> None:
    """Through a profile within a few levels of sRGB, preflight's output is the models' input."""
    picture = picture.convert("L") if grey else picture
    gammas = st.floats(0.97, 1.03)
    curves = [255 * (np.arange(256.0) / 255) ** data.draw(gammas) for _ in picture.getbands()]
    copy = _tagged(picture, curves, fmt)
    (model,) = viewed(copy)
    np.testing.assert_array_equal(seen_after_preflight(copy), model)


@settings(max_examples=VARIANTS_TRIED, suppress_health_check=[HealthCheck.too_slow])
@given(pictures(), st.sampled_from(["PNG", "TIFF", "WEBP"]), st.booleans())
def test_an_srgb_profile_changes_nothing(picture: Image.Image, fmt: str, grey: bool) -> None:
    """An sRGB profile (on a grey picture too) leaves the pixels and preflight's bytes alone."""
    picture = picture.convert("L") if grey else picture
    options: dict[str, object] = {"lossless": True} if fmt == "WEBP" else {}
    plain = encode(picture, fmt, **options)
    copy = encode(picture, fmt, icc_profile=colour_profiles.srgb(), **options)
    for got, want in zip(viewed(copy), viewed(plain), strict=True):
        np.testing.assert_array_equal(got, want)
    big = Image.fromarray(np.tile(np.asarray(picture), (80, 80) if grey else (80, 80, 1)))
    tagged = encode(big, "PNG", icc_profile=colour_profiles.srgb())
    assert Preflight().check(tagged).data == tagged


def _xmp(orientation: int) -> bytes:
    return (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf='
        '"http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description '
        'xmlns:tiff="http://ns.adobe.com/tiff/1.0/" '
        f'tiff:Orientation="{orientation}"/></rdf:RDF></x:xmpmeta>'
    ).encode()


def _not_exif(image: Image.Image, orientation: int, where: str) -> bytes:
    """*image* with *orientation* written somewhere browsers do not read it."""
    if where == "PNG iTXt XMP":
        info = PngImagePlugin.PngInfo()
        info.add_itxt("XML:com.adobe.xmp", _xmp(orientation).decode())
        return encode(image, pnginfo=info)
    if where == "PNG raw profile":  # ImageMagick's text chunk holding an EXIF block
        exif = Image.Exif()
        exif[0x0112] = orientation
        block = b"Exif\x00\x00" + exif.tobytes()
        text = f"\nexif\n{len(block):8d}\n{block.hex()}\n"
        info = PngImagePlugin.PngInfo()
        info.add_text("Raw profile type exif", text)
        return encode(image, pnginfo=info)
    if where == "TIFF XMP":
        return encode(image, "TIFF", tiffinfo={700: _xmp(orientation)})
    return encode(image, where.split()[0], xmp=_xmp(orientation), **_EXACT[where.split()[0]])


_EXACT: dict[str, dict[str, object]] = {"JPEG": {"quality": 95}, "WEBP": {"lossless": True}}
_NOT_EXIF = ["PNG iTXt XMP", "PNG raw profile", "TIFF XMP", "JPEG XMP", "WEBP XMP"]


@settings(max_examples=VARIANTS_TRIED, suppress_health_check=[HealthCheck.too_slow])
@given(pictures(), st.sampled_from([3, 6, 8]), st.sampled_from(_NOT_EXIF))
def test_an_orientation_outside_exif_is_not_applied(
    picture: Image.Image, orientation: int, where: str
) -> None:
    """XMP (and text-chunk) orientation is ignored as browsers ignore it: same pixels as plain."""
    fmt = where.split()[0]
    plain = encode(picture, fmt, **_EXACT.get(fmt, {}))
    copy = _not_exif(picture, orientation, where)
    for got, want in zip(viewed(copy), viewed(plain), strict=True):
        np.testing.assert_array_equal(got, want)
    if fmt in ("PNG", "JPEG"):  # nothing to turn: sent as it is
        assert Preflight(min_side=1).check(copy).data == copy


@settings(max_examples=VARIANTS_TRIED, suppress_health_check=[HealthCheck.too_slow])
@given(pictures(), st.sampled_from([3, 6, 8]), st.sampled_from([3, 6, 8]))
def test_exif_orientation_wins_over_xmp(
    picture: Image.Image, exif_turn: int, xmp_turn: int
) -> None:
    """With both, the EXIF orientation is applied and the XMP one ignored."""
    exif = Image.Exif()
    exif[0x0112] = exif_turn
    copy = encode(
        picture.transpose(UNDO[exif_turn]), "JPEG", quality=95, exif=exif, xmp=_xmp(xmp_turn)
    )
    want = encode(picture.transpose(UNDO[exif_turn]), "JPEG", quality=95, exif=exif)
    for got, expected in zip(viewed(copy), viewed(want), strict=True):
        np.testing.assert_array_equal(got, expected)
    assert viewed(copy)[0].shape[:2] == np.asarray(picture).shape[:2]


@st.composite
def transparent(draw: st.DrawFn) -> tuple[Image.Image, Image.Image]:
    """An RGBA picture with fully transparent pixels, and a copy with other hidden colours."""
    rgb = np.asarray(draw(pictures()))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    alpha = rng.choice(np.array([0, 0, 77, 200, 255], dtype=np.uint8), rgb.shape[:2])
    hidden = rng.integers(0, 256, rgb.shape, dtype=np.uint8)
    other = np.where(alpha[..., None] == 0, hidden, rgb)
    return (
        Image.fromarray(np.dstack([rgb, alpha]), "RGBA"),
        Image.fromarray(np.dstack([other, alpha]), "RGBA"),
    )


@settings(max_examples=VARIANTS_TRIED, suppress_health_check=[HealthCheck.too_slow])
@given(transparent(), st.sampled_from(["blur", "pixelate"]))
def test_colours_under_transparent_pixels_never_change_the_result(
    pair: tuple[Image.Image, Image.Image], style: str
) -> None:
    """Models, preflight repair and redaction give equal results whatever hides under alpha 0."""
    first, second = (encode(image) for image in pair)
    for got, want in zip(viewed(first), viewed(second), strict=True):
        np.testing.assert_array_equal(got, want)
    assert LOOSE.check(first).data == LOOSE.check(second).data
    assert redact(first, style=style) == redact(second, style=style)  # type: ignore[arg-type]


@settings(max_examples=VARIANTS_TRIED, suppress_health_check=[HealthCheck.too_slow])
@given(transparent())
def test_a_transparent_picture_is_judged_over_black_and_over_white(
    pair: tuple[Image.Image, Image.Image],
) -> None:
    """The models see both composites; preflight sends both side by side in one picture."""
    image = pair[0]
    views = viewed(encode(image))
    pixels = np.asarray(image).astype(int)
    alpha = pixels[..., 3:] / 255
    if (alpha == 1).all():
        assert len(views) == 1
        return
    for view, background in zip(views, (0, 255), strict=True):
        expected = pixels[..., :3] * alpha + background * (1 - alpha)
        assert np.abs(view.astype(int) - expected).max() <= 1
    sent = np.asarray(Image.open(io.BytesIO(LOOSE.check(encode(image)).data)).convert("RGB"))
    height, width = views[0].shape[:2]
    if width <= height:
        halves = sent[:, :width], sent[:, width:]
    else:
        halves = sent[:height], sent[height:]
    for half, view in zip(halves, views, strict=True):
        np.testing.assert_array_equal(half, view)


# -- class 6 and 8: damaged and forged files ----------------------------------------------

FORMATS = ["PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP"]
MODES = ["RGB", "RGBA", "L", "LA", "P", "1", "CMYK", "I;16", "I", "F"]


@st.composite
def real_images(draw: st.DrawFn) -> bytes:
    """A real image of some mode, format and orientation Pillow can write."""
    fmt = draw(st.sampled_from(FORMATS))
    mode = draw(st.sampled_from(MODES))
    size = (draw(st.integers(1, 64)), draw(st.integers(1, 64)))
    seed = draw(st.integers(0, 1000))
    image = Image.effect_noise(size, 40 + seed % 60).convert("RGB")
    try:
        image = image.convert(mode) if mode != "I;16" else image.convert("L").convert("I;16")
        options: dict[str, object] = {}
        if draw(st.booleans()):
            exif = Image.Exif()
            exif[0x0112] = draw(st.integers(0, 9))
            options["exif"] = exif
        if fmt == "JPEG" and draw(st.booleans()):
            options["progressive"] = True
        return encode(image, fmt, **options)
    except (OSError, ValueError, KeyError, TypeError):  # a mode this format cannot hold
        return encode(image.convert("RGB"), fmt)


def damaged(data: bytes, keep: float, flips: list[tuple[float, int]]) -> bytes:
    """*data* cut short and with bits flipped."""
    cut = bytearray(data[: max(1, int(len(data) * keep))])
    for where, bit in flips:
        cut[int(where * (len(cut) - 1))] ^= 1 << bit
    return bytes(cut)


LIMITS = {
    "empty", "format", "corrupt", "animated", "pixels", "min_side", "max_side", "bytes",
    "alpha", "mode", "orientation",
}  # fmt: skip


def outcomes(data: bytes) -> None:
    """Run every entry point; each may succeed or raise InvalidImageError, nothing else."""
    limits: list[str] = []
    for run in (
        lambda: Preflight().check(data),
        lambda: Preflight(repair=True).check(data),
        lambda: redact(data),
        lambda: _picture.views(data),
    ):
        try:
            run()
        except InvalidImageError as error:
            limits.append(error.limit)
    assert set(limits) <= LIMITS


@settings(max_examples=DAMAGED_TRIED, suppress_health_check=[HealthCheck.too_slow])
@given(
    real_images(),
    st.floats(0.05, 1.0),
    st.lists(st.tuples(st.floats(0, 1), st.integers(0, 7)), max_size=4),
)
def test_damaged_images_give_a_result_or_an_invalid_image_error(
    data: bytes, keep: float, flips: list[tuple[float, int]]
) -> None:
    """Truncated and bit-flipped images of every mode and format: never another exception."""
    outcomes(damaged(data, keep, flips))


def forge_size(data: bytes, width: int, height: int) -> bytes:
    """Rewrite the size an image's header declares, keeping its checksums valid."""
    raw = bytearray(data)
    if raw.startswith(b"\x89PNG"):
        raw[16:24] = struct.pack(">II", width, height)
        raw[29:33] = struct.pack(">I", zlib.crc32(bytes(raw[12:29])))
    elif raw.startswith(b"GIF"):
        raw[6:10] = struct.pack("<HH", width & 0xFFFF, height & 0xFFFF)
    elif raw.startswith(b"BM"):
        raw[18:26] = struct.pack("<ii", width, height)
    elif raw.startswith(b"\xff\xd8"):
        at = max(raw.find(b"\xff\xc0"), raw.find(b"\xff\xc2"))
        if at > 0:
            raw[at + 5 : at + 9] = struct.pack(">HH", height & 0xFFFF, width & 0xFFFF)
    return bytes(raw)


@settings(max_examples=FORGED_TRIED, suppress_health_check=[HealthCheck.too_slow])
@given(
    real_images(),
    st.one_of(st.integers(1, 70_000), st.sampled_from([2**31 - 1, 65_535, 60_000])),
    st.one_of(st.integers(1, 70_000), st.sampled_from([2**31 - 1, 65_535, 60_000])),
)
def test_a_forged_size_is_refused_before_it_is_decoded(
    data: bytes, width: int, height: int
) -> None:
    """A header declaring any size: a result or a named error, never a decode over budget."""
    allocated: list[int] = []
    core: Any = Image.core  # type: ignore[attr-defined]
    real_new = core.new

    def counting_new(mode: str, size: tuple[int, int]) -> object:
        allocated.append(size[0] * size[1] * (1 if mode in ("1", "L", "P") else 4))
        return real_new(mode, size)

    core.new = counting_new
    try:
        outcomes(forge_size(data, width, height))
    finally:
        core.new = real_new
    assert max(allocated, default=0) <= MEMORY_BUDGET


# -- class 8: peak memory, measured ---------------------------------------------------------

_PEAK = textwrap.dedent(
    """
    import io, sys
    from PIL import Image
    Image.MAX_IMAGE_PIXELS = None  # the guard under test is safegen's, not Pillow's
    from safegen import InvalidImageError
    from safegen.local import _picture
    from safegen.preflight import Preflight
    from safegen.redaction import redact
    source, entry = sys.argv[1], sys.argv[2]
    if source.startswith("new:"):
        _, width, height, mode = source.split(":")
        buffer = io.BytesIO()
        Image.new(mode, (int(width), int(height)), "white").save(buffer, "PNG")
        data = buffer.getvalue()
    else:
        with open(source, "rb") as f:
            data = f.read()
    run = {
        "check": lambda: Preflight().check(data),
        "preflight": lambda: Preflight(repair=True).check(data),
        "redact": lambda: redact(data),
        "models": lambda: _picture.views(data),
    }[entry]
    def status(key):
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith(key))
    before = status("VmRSS:")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # the peak (VmHWM) starts again from here
    try:
        run()
    except InvalidImageError:
        pass
    print(status("VmHWM:") - before)
    """
)


def _grown_kib(source: str, entry: str) -> int:
    """How much *entry* on *source* raised the peak (KiB), measured in a fresh process."""
    return int(
        subprocess.run(
            [sys.executable, "-c", _PEAK, source, entry],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )


@pytest.mark.skipif(sys.platform != "linux", reason="reads the peak from /proc/self/status")
@pytest.mark.parametrize(
    ("width", "height", "mode", "entry"),
    [
        (10_001, 6_000, "RGBA", "preflight"),  # over max_side: a repair would copy it thrice
        (8_000, 8_000, "RGB", "redact"),
        (7_500, 7_500, "RGBA", "models"),
    ],
)
def test_a_large_image_within_the_pixel_limits_stays_within_512_mb(
    width: int, height: int, mode: str, entry: str
) -> None:
    """Peak memory, measured in a fresh process, grows by no more than the budget."""
    assert _grown_kib(f"new:{width}:{height}:{mode}", entry) * 1024 <= MEMORY_BUDGET


ADVERSARIAL: dict[str, tuple[Callable[[], bytes], str]] = {
    # a baseline JPEG with a scan per component: libjpeg buffers every coefficient
    "JPEG 9400x9400, a scan per component, check": (
        lambda: flat_jpeg(9_400, 9_400, 3, interleaved=False),
        "check",
    ),
    "JPEG 9200x9200, a scan per component, check": (  # just within: its estimate fits
        lambda: flat_jpeg(9_200, 9_200, 3, interleaved=False),
        "check",
    ),
    "CMYK JPEG 9400x9400, a scan per component, repair": (
        lambda: flat_jpeg(9_400, 9_400, 4, interleaved=False),
        "preflight",
    ),
    "CMYK JPEG 7000x7000, a scan per component, models": (
        lambda: flat_jpeg(7_000, 7_000, 4, interleaved=False),
        "models",
    ),
    "JPEG 12000x7000 over max_side, repair": (
        lambda: flat_jpeg(12_000, 7_000, 3, interleaved=True),
        "preflight",
    ),
    "transparent palette PNG 5050x5050, repair": (lambda: transparent_palette(5_050), "preflight"),
    "half-transparent RGBA PNG 5000x7000, repair": (
        lambda: encode(Image.new("RGBA", (5_000, 7_000), (200, 10, 10, 128))),
        "preflight",
    ),
}


@pytest.mark.skipif(sys.platform != "linux", reason="reads the peak from /proc/self/status")
@pytest.mark.parametrize("case", sorted(ADVERSARIAL))
def test_an_adversarial_picture_stays_within_512_mb(case: str, tmp_path: Any) -> None:
    """Multi-scan JPEGs, an oversized JPEG decoded small and transparent PNGs stay in budget."""
    build, entry = ADVERSARIAL[case]
    path = tmp_path / "picture"
    path.write_bytes(build())
    assert _grown_kib(str(path), entry) * 1024 <= MEMORY_BUDGET


# -- class 9: libjpeg's coefficient buffer, read from the markers ----------------------------


@settings(max_examples=VARIANTS_TRIED, deadline=None)
@given(
    st.integers(1, 300),
    st.integers(1, 300),
    st.sampled_from([1, 3, 4]),  # Pillow reads no 2-component JPEG
    st.booleans(),
    st.sampled_from([b"", b"\xff\xda\x00\x08\x01\x01\x00\x00\x3f\x00" * 3]),
)
def test_a_jpeg_in_several_scans_counts_its_coefficient_buffer(
    width: int, height: int, components: int, interleaved: bool, inside: bytes
) -> None:
    """A scan per component costs 2 bytes a block sample; one interleaved scan costs nothing."""
    thumbnail = _segment(0xEF, inside) if inside else b""  # bytes of SOS markers in an APP15
    data = flat_jpeg(width, height, components, interleaved=interleaved, before_scans=thumbnail)
    single = interleaved or components == 1
    expected = 0 if single else components * -(-width // 8) * -(-height // 8) * 64 * 2
    assert jpeg_coefficients(data) == expected
    assert Image.open(io.BytesIO(data)).size == (width, height)  # a JPEG Pillow reads


@settings(max_examples=VARIANTS_TRIED, deadline=None)
@given(pictures(), st.booleans(), st.sampled_from([0, 1, 2]))
def test_a_progressive_jpeg_counts_its_coefficients_at_its_sampling(
    picture: Image.Image, progressive: bool, subsampling: int
) -> None:
    """Pillow's progressive JPEGs count each component at its own sampling; baseline nothing."""
    data = encode(picture, "JPEG", progressive=progressive, subsampling=subsampling)
    width, height = picture.size
    luma = -(-width // 8) * -(-height // 8) * 128
    if not progressive:
        assert jpeg_coefficients(data) == 0
    else:
        across, down = ((1, 1), (2, 1), (2, 2))[subsampling]  # luma's sampling factors
        luma = -(-width // (8 * across)) * across * -(-height // (8 * down)) * down * 128
        chroma = -(-width // (8 * across)) * -(-height // (8 * down)) * 128
        assert jpeg_coefficients(data) == luma + 2 * chroma
