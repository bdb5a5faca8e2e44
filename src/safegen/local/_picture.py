"""Decode image bytes once, safely, for the offline models."""

from __future__ import annotations

from typing import TYPE_CHECKING

from safegen._pillow import decode, open_image
from safegen.errors import InvalidImageError

if TYPE_CHECKING:
    from PIL import Image

    from safegen.image import ImageSource

_MAX_PIXELS = 50_000_000  # far above any generated image; a guard against decompression bombs


def rgb(image: ImageSource) -> Image.Image:
    """Return *image* decoded to RGB, checked the way preflight checks it.

    :raises InvalidImageError: not bytes (an offline model cannot read S3), empty, damaged,
        animated, or too many pixels.
    """
    if not isinstance(image, bytes | bytearray | memoryview):
        raise InvalidImageError(
            f"an offline model needs the image's bytes, got {type(image).__name__}", limit="type"
        )
    if not image:
        raise InvalidImageError("the image is empty (0 bytes)", limit="empty")
    picture = open_image(bytes(image), max_pixels=_MAX_PIXELS)
    if getattr(picture, "n_frames", 1) > 1:
        raise InvalidImageError("animated images are not judged by one frame", limit="animated")
    decode(picture)
    return picture.convert("RGB")
