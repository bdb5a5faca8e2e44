"""Redaction: blur, pixelate or cover an unsafe image, whole or in regions, in its own format.

The seed architecture's demo blurs unsafe images rather than hiding them; :func:`redact` is
that, as a library function. Region-level redaction takes the boxes a backend reports
(Rekognition's moderation labels carry none; a local detector's do).
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Literal

from safegen import _pillow
from safegen.errors import InvalidImageError
from safegen.labels import Box

if TYPE_CHECKING:
    from PIL import Image

__all__ = ["Box", "redact"]

_MAX_PIXELS = 100_000_000
# Bytes a pixel the working copies take besides the decoded pixels: the upright copy, a
# premultiplied copy and the filtered one (RGBA), and the encoder's buffer.
_WORKING = 16


def redact(
    image: bytes,
    *,
    style: Literal["blur", "pixelate", "placeholder"] = "blur",
    strength: float = 0.5,
    regions: Sequence[Box] | None = None,
) -> bytes:
    """Return *image* redacted, in the format it came in.

    :param style: ``"blur"`` (Gaussian), ``"pixelate"`` (large blocks) or ``"placeholder"``
        (flat grey).
    :param strength: from just above 0 (light) to 1 (unrecognisable); ignored by placeholder.
    :param regions: redact only these boxes; the whole image when ``None``.
    :raises InvalidImageError: the bytes are not a readable still image (an ICC profile
        viewers disagree about included), decoding it would take more than 512 MB, or an
        argument is wrong: checked first, and named by ``limit`` (``"style"``,
        ``"strength"``, or ``"box"`` for *regions*).

    The picture is redacted as a viewer sees it: turned upright by its EXIF orientation
    (which the result no longer carries) and in 8-bit sRGB colour through its ICC profile
    (which it no longer carries either). Transparency is kept, and
    colours hidden under fully transparent pixels are not brought back by a blur.

    >>> from PIL import Image
    >>> import io
    >>> buffer = io.BytesIO()
    >>> Image.new("RGB", (120, 90), "red").save(buffer, "PNG")
    >>> covered = redact(buffer.getvalue(), style="placeholder")
    >>> Image.open(io.BytesIO(covered)).format, Image.open(io.BytesIO(covered)).size
    ('PNG', (120, 90))
    """
    boxes = _arguments(style, strength, regions)
    if not isinstance(image, bytes | bytearray | memoryview):
        raise InvalidImageError(f"expected image bytes, got {type(image).__name__}", limit="type")
    if not image:
        raise InvalidImageError("the image is empty (0 bytes)", limit="empty")
    picture = _pillow.open_image(bytes(image), max_pixels=_MAX_PIXELS, working=_WORKING)
    fmt = picture.format or "PNG"
    _pillow.decode(picture)
    # Redact what a viewer sees: upright, 8-bit; transparency kept, but premultiplied so
    # colours hidden under transparent pixels never bleed into what shows.
    working = _pillow.upright(picture)
    del picture
    with _pillow.reading():
        if working.mode == "RGBA":
            working = working.convert("RGBa")
        pixels = (
            [(0, 0, *working.size)]
            if boxes is None
            else [box.pixels(working.size) for box in boxes]
        )
        for left, top, right, bottom in pixels:
            if right > left and bottom > top:
                area = working.crop((left, top, right, bottom))
                working.paste(_apply(area, style, strength), (left, top))
        if working.mode == "RGBa":
            working = working.convert("RGBA")
        return _save(working, fmt)


def _arguments(style: object, strength: object, regions: object) -> tuple[Box, ...] | None:
    """Check :func:`redact`'s arguments before any byte is read; return the boxes, if any.

    :raises InvalidImageError: naming the argument (``limit`` ``"style"``, ``"strength"`` or
        ``"box"``): an unknown style, a strength that is not a number in (0, 1], regions that
        are not a sequence of :class:`~safegen.Box` (a single box, a string, ``None`` in it).
    """
    if not isinstance(style, str) or style not in ("blur", "pixelate", "placeholder"):
        raise InvalidImageError(
            f"style: 'blur', 'pixelate' or 'placeholder', got {style!r}", limit="style"
        )
    if (
        isinstance(strength, bool)
        or not isinstance(strength, int | float)
        or not 0 < strength <= 1  # NaN fails this too
    ):
        raise InvalidImageError(
            f"strength: a number above 0 and at most 1, got {strength!r}", limit="strength"
        )
    if regions is None:
        return None
    if isinstance(regions, Box | str | bytes) or not isinstance(regions, Iterable):
        raise InvalidImageError(
            f"regions: a sequence of Box (or None for the whole image), got {regions!r}",
            limit="box",
        )
    boxes = tuple(regions)
    for number, box in enumerate(boxes):
        if not isinstance(box, Box):
            raise InvalidImageError(
                f"regions[{number}]: a Box, got {type(box).__name__} {box!r}"[:200], limit="box"
            )
    return boxes


def _apply(area: Image.Image, style: str, strength: float) -> Image.Image:
    from PIL import Image as PILImage
    from PIL import ImageFilter

    w, h = area.size
    if style == "placeholder":
        return PILImage.new(area.mode, area.size, (128, 128, 128, 255)[: len(area.getbands())])
    if style == "pixelate":
        block = max(2, round(strength * max(w, h) / 8))
        small = area.resize((max(1, w // block), max(1, h // block)), PILImage.Resampling.BOX)
        return small.resize(area.size, PILImage.Resampling.NEAREST)
    radius = max(1.0, strength * max(w, h) / 10)
    return area.filter(ImageFilter.GaussianBlur(radius))


def _save(image: Image.Image, fmt: str) -> bytes:
    out = io.BytesIO()
    if fmt in ("JPEG", "BMP") or (fmt == "GIF" and image.mode == "RGBA"):
        image = image.convert("RGB")
    if fmt == "JPEG":
        image.save(out, "JPEG", quality=90)
    else:
        image.save(out, fmt)
    return out.getvalue()
