"""Image preflight: check an image against the backend's limits before any bytes leave the process.

Rekognition's ``DetectModerationLabels`` accepts JPEG and PNG only, at most 5 MB as bytes,
at least 80 pixels and at most 10,000 pixels a side. :class:`Preflight` checks all of that
from the bytes themselves (never the file name) and, when you allow it, repairs what it can:
re-encodes other formats, downscales what is too large, upscales what is too small. What it
cannot use (empty or truncated bytes, non-images, animated images, decompression bombs,
images that would take more memory than allowed) is an :class:`~safegen.InvalidImageError`
naming the limit.

What is sent is what a viewer sees. A picture whose look depends on how it is read
(transparent pixels, 16-bit or CMYK colour, an ICC colour profile that changes its colours,
an EXIF orientation outside JPEG) is refused without repair; with repair it is turned
upright and converted to 8-bit sRGB (its profile applied, then dropped), and transparent
pixels are composited over a black and over a white background, side by side in one picture,
so that what shows on either background is judged.

Animated images are refused rather than judged by one frame: an unsafe later frame would pass.
Extract the frames you want moderated and send each.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

import attrs

from safegen import _pillow
from safegen._pillow import MEMORY_BUDGET
from safegen.errors import ConfigurationError, InvalidImageError

if TYPE_CHECKING:
    from PIL import Image

__all__ = ["Preflight", "PreparedImage", "sniff_format"]

_MAGIC = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
)
_ACCEPTED = frozenset({"JPEG", "PNG"})
_MAX_REPAIR_ROUNDS = 12
# Modes Rekognition reads as a viewer shows them: 8-bit, no transparency left to interpret.
_PLAIN_MODES = frozenset({"1", "L", "P", "RGB", "RGBA", "LA", "PA"})
# Bytes a pixel the working copies take, besides the decoded pixels: a check needs an alpha
# channel at most; a repair an upright RGBA copy, the black-and-white composite (two pixels
# of RGB for each) and the resized copy.
_CHECK_WORKING = 5
_REPAIR_WORKING = 20


def sniff_format(data: bytes) -> str | None:
    r"""Return the image format the bytes begin with (``"PNG"``, ``"WEBP"``, ...), or ``None``.

    >>> sniff_format(b"\x89PNG\r\n\x1a\n...")
    'PNG'
    """
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    for magic, name in _MAGIC:
        if data.startswith(magic):
            return name
    return None


@attrs.frozen
class PreparedImage:
    """An image that passed preflight, ready to send.

    :param data: the bytes to send (the original ones when nothing needed repair).
    :param format: ``"JPEG"`` or ``"PNG"``.
    :param width: in pixels.
    :param height: in pixels.
    :param repairs: what was done to it, in order; empty when nothing was.
    """

    data: bytes = attrs.field(repr=lambda d: f"<{len(d):,} bytes>")
    format: str
    width: int
    height: int
    repairs: tuple[str, ...] = ()


def _whole(least: int) -> Callable[[object, attrs.Attribute[Any], object], None]:
    def check(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ConfigurationError(
                f"{attribute.name}: a whole number of at least {least:,}, got {value!r}"
            )

    return check


def _flag(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, bool):
        raise ConfigurationError(f"{attribute.name}: True or False, got {value!r}")


def _target(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value not in _ACCEPTED:
        raise ConfigurationError(f"{attribute.name}: 'PNG' or 'JPEG', got {value!r}")


def _sides(instance: Preflight, attribute: attrs.Attribute[Any], value: int) -> None:
    _whole(1)(instance, attribute, value)
    if value < instance.min_side:
        raise ConfigurationError(
            f"max_side: {value:,} is under min_side ({instance.min_side:,}): no image fits"
        )


@attrs.frozen(kw_only=True)
class Preflight:
    """The limits an image must meet, and whether to repair one that does not.

    Every setting is checked when the object is built (and again by ``attrs.evolve``).

    :param repair: re-encode, downscale or upscale an image that breaks a limit, instead of
        refusing it; turn it upright, bring it to 8-bit sRGB colour through its ICC profile,
        and composite transparent pixels over a black and a white background, side by side.
    :param target_format: what to re-encode to (``"PNG"`` keeps detail; ``"JPEG"`` is smaller).
    :param max_bytes: the largest image, in bytes (Rekognition: 5 MB); an image of exactly
        this size passes.
    :param min_side: the smallest side, in pixels (Rekognition: 80).
    :param max_side: the largest side, in pixels (Rekognition: 10,000).
    :param max_pixels: the most pixels decoded at all, a guard against decompression bombs.
    :param max_memory: the most memory, in bytes, checking and repairing one image may take,
        estimated from its header before any pixel is decoded.
    :raises ConfigurationError: a setting of the wrong type or out of range.
    """

    repair: bool = attrs.field(default=False, validator=_flag)
    target_format: Literal["PNG", "JPEG"] = attrs.field(default="PNG", validator=_target)
    max_bytes: int = attrs.field(default=5 * 1024 * 1024, validator=_whole(1))
    min_side: int = attrs.field(default=80, validator=_whole(1))
    max_side: int = attrs.field(default=10_000, validator=_sides)
    max_pixels: int = attrs.field(default=100_000_000, validator=_whole(1))
    max_memory: int = attrs.field(default=MEMORY_BUDGET, validator=_whole(1))

    def check(self, data: bytes) -> PreparedImage:
        """Check *data*, repairing it if allowed.

        :raises InvalidImageError: the image breaks a limit and cannot (or may not) be
            repaired; ``limit`` says which.
        """
        if not isinstance(data, bytes | bytearray | memoryview):
            raise InvalidImageError(
                f"expected image bytes, got {type(data).__name__}", limit="type"
            )
        data = bytes(data)
        if not data:
            raise InvalidImageError("the image is empty (0 bytes)", limit="empty")
        sniffed = sniff_format(data)
        if sniffed is None:
            raise InvalidImageError(
                "not an image format safegen reads (JPEG, PNG, GIF, WEBP, BMP, TIFF)",
                limit="format",
            )
        image = _pillow.open_image(
            data,
            max_pixels=self.max_pixels,
            memory=self.max_memory,
            working=_REPAIR_WORKING if self.repair else _CHECK_WORKING,
            reduce=True,
        )
        width, height = image.size  # the header's size: a JPEG may be decoded smaller
        _pillow.decode(image)
        problem = self._problem(sniffed, width, height, len(data)) or _looks(image, sniffed)
        if problem is None:
            return PreparedImage(data, sniffed, width, height)
        if not self.repair:
            message, limit = problem
            raise InvalidImageError(message, limit=limit)
        return self._repaired(image, sniffed, (width, height))

    def _problem(self, fmt: str, width: int, height: int, size: int) -> tuple[str, str] | None:
        if fmt not in _ACCEPTED:
            return f"{fmt} is not accepted: only JPEG and PNG", "format"
        if max(width, height) > self.max_side:
            return f"{width}x{height} is over {self.max_side:,} pixels a side", "max_side"
        if min(width, height) < self.min_side:
            return f"{width}x{height} is under {self.min_side} pixels a side", "min_side"
        if size > self.max_bytes:
            return f"{size:,} bytes is over the {self.max_bytes:,} allowed", "bytes"
        return None

    def _repaired(self, image: Image.Image, sniffed: str, header: tuple[int, int]) -> PreparedImage:
        from PIL import Image as PILImage

        repairs: list[str] = []
        if image.size != header:
            repairs.append(f"decoded {header[0]}x{header[1]} at {image.size[0]}x{image.size[1]}")
        looks = _looks(image, sniffed)
        image = _pillow.upright(image)
        if image.mode == "RGBA":
            image = _pillow.both_backgrounds(image)
            repairs.append("composited over black and over white, side by side")
        elif looks is not None:
            repairs.append(f"converted to what a viewer sees ({looks[1]})")
        width, height = image.size
        longest, shortest = max(width, height), min(width, height)
        if longest * self.min_side > shortest * self.max_side:  # no scale fits both limits
            raise InvalidImageError(
                f"{width}x{height} cannot be scaled to fit {self.min_side}-{self.max_side} "
                "pixels a side",
                limit="min_side",
            )
        scale = max(min(1.0, self.max_side / longest), self.min_side / shortest)
        fmt = sniffed if sniffed in _ACCEPTED else self.target_format
        if fmt != sniffed:
            repairs.append(f"re-encoded {sniffed} as {fmt}")
        for _ in range(_MAX_REPAIR_ROUNDS):
            # Rounding must not push a side past a limit the exact scale respects.
            size = (
                _clamp(width * scale, self.min_side, self.max_side),
                _clamp(height * scale, self.min_side, self.max_side),
            )
            with _pillow.reading():
                resized = (
                    image if size == image.size else image.resize(size, PILImage.Resampling.LANCZOS)
                )
                data = _encode(resized, fmt)
            if len(data) <= self.max_bytes:
                if size != image.size:
                    repairs.append(f"resized {width}x{height} to {size[0]}x{size[1]}")
                return PreparedImage(data, fmt, size[0], size[1], tuple(repairs))
            if fmt == "PNG":  # PNG compresses little: JPEG first, then smaller
                fmt = "JPEG"
                repairs.append("re-encoded as JPEG to fit the size limit")
                continue
            if shortest * scale * 0.8 < self.min_side:
                break
            scale *= 0.8
        raise InvalidImageError(
            f"could not bring the image under {self.max_bytes:,} bytes", limit="bytes"
        )


def _looks(image: Image.Image, fmt: str) -> tuple[str, str] | None:
    """Return what a viewer would see differently from what Rekognition reads, if anything."""
    if not _pillow.is_opaque(image):
        return (
            f"{image.mode} with transparent pixels: what shows through depends on the "
            "background (repair composites it over black and over white)",
            "alpha",
        )
    if image.mode not in _PLAIN_MODES:
        return f"{image.mode} pixels are not plain 8-bit colour", "mode"
    if _pillow.profile_changes(image):  # Rekognition reads the raw pixels as sRGB
        return "an ICC colour profile that changes its colours (repair applies it)", "mode"
    if fmt != "JPEG" and _pillow.orientation(image) != 1:  # JPEG readers apply it themselves
        return f"EXIF orientation {_pillow.orientation(image)}: shown turned", "orientation"
    return None


def _clamp(value: float, low: int, high: int) -> int:
    return min(high, max(low, round(value)))


def _encode(image: Image.Image, fmt: str) -> bytes:
    out = io.BytesIO()  # *image* is upright 8-bit RGB: nothing is lost by either format
    if fmt == "JPEG":
        image.save(out, "JPEG", quality=90)
    else:
        image.save(out, "PNG", optimize=False)
    return out.getvalue()
