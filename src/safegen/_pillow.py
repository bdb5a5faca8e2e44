"""Pillow, imported only when an image is actually decoded (it is an optional extra)."""

from __future__ import annotations

import io
import warnings
from typing import TYPE_CHECKING

from safegen.errors import InvalidImageError

if TYPE_CHECKING:
    from PIL import Image


def open_image(data: bytes, *, max_pixels: int) -> Image.Image:
    """Open *data* with Pillow, refusing anything larger than *max_pixels* before decoding.

    :raises InvalidImageError: Pillow is missing, or the bytes are not a readable image.
    """
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:  # pragma: no cover - exercised only without the extra installed
        raise InvalidImageError(
            "reading images needs Pillow: pip install 'safegen[images]'", limit="pillow"
        ) from None
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a plugin's warning (e.g. a truncated TIFF) is damage
        try:
            image = Image.open(io.BytesIO(data))
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
            raise InvalidImageError(
                f"refused as a possible decompression bomb: {error}", limit="pixels"
            ) from None
        except UnidentifiedImageError:
            raise InvalidImageError(
                "not a readable image: no image format recognised", limit="corrupt"
            ) from None
        except (OSError, ValueError, SyntaxError, Warning) as error:
            # Pillow's format plugins raise any of these for bytes they cannot read.
            raise InvalidImageError(f"not a readable image: {error}", limit="corrupt") from None
    width, height = image.size
    if width * height > max_pixels:  # checked from the header, before any pixel is decoded
        raise InvalidImageError(
            f"{width}x{height} is {width * height:,} pixels, over the {max_pixels:,} allowed "
            "(a guard against decompression bombs)",
            limit="pixels",
        )
    return image


def decode(image: Image.Image) -> None:
    """Decode every pixel; a damaged file is an error even where Pillow would only warn.

    :raises InvalidImageError: the image cannot be fully decoded (truncated, corrupt).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. "Truncated File Read" from the TIFF plugin
        try:
            image.load()
        except (OSError, ValueError, SyntaxError, Warning) as error:
            raise InvalidImageError(f"the image is damaged: {error}", limit="corrupt") from None
