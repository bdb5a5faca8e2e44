"""Decode image bytes once, safely, into what the offline models look at.

This is the one place pictures are prepared for a model. A picture is decoded within the
memory budget, turned upright (EXIF orientation only) and into 8-bit sRGB as a
colour-managed screen shows it (:func:`safegen._pillow.upright`: any ICC profile applied),
scaled down to at most :data:`LONGEST` pixels a side, and, when some pixel is not opaque,
composited over each of :data:`~safegen._pillow.BACKGROUNDS`: the model looks at every
view and the backend keeps the stricter result.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from safegen import _pillow
from safegen.errors import InvalidImageError

if TYPE_CHECKING:
    from PIL import Image

    from safegen.image import ImageSource

_MAX_PIXELS = 50_000_000  # far above any generated image; a guard against decompression bombs
LONGEST = 1024
"""The longest side a model is shown; both models look at far fewer pixels (224 and 320)."""
# Working copies a pixel needs while it is made upright (RGBA) and composited (RGB).
_WORKING = 8


def views(image: ImageSource) -> tuple[Image.Image, ...]:
    """Return the RGB pictures a model must judge: one, or one per background.

    :raises InvalidImageError: not bytes (an offline model cannot read S3), empty, damaged,
        animated, or over the pixel or memory budget.
    """
    if not isinstance(image, bytes | bytearray | memoryview):
        raise InvalidImageError(
            f"an offline model needs the image's bytes, got {type(image).__name__}", limit="type"
        )
    if not image:
        raise InvalidImageError("the image is empty (0 bytes)", limit="empty")
    picture = _pillow.open_image(
        bytes(image), max_pixels=_MAX_PIXELS, working=_WORKING, reduce=True
    )
    _pillow.decode(picture)
    seen = _pillow.upright(picture)
    del picture
    if seen.mode == "RGB":
        return (_fit(seen),)
    with _pillow.reading():  # composited premultiplied, as it is: no other copy is made
        seen = seen.convert("RGBa")
    return tuple(_fit(_pillow.over(seen, background)) for background in _pillow.BACKGROUNDS)


def _fit(picture: Image.Image) -> Image.Image:
    from PIL import Image as PILImage

    width, height = picture.size
    longest = max(width, height)
    if longest <= LONGEST:
        return picture
    size = (max(1, round(width * LONGEST / longest)), max(1, round(height * LONGEST / longest)))
    with _pillow.reading():
        return picture.resize(size, PILImage.Resampling.LANCZOS)
