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
import math
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
# Bytes a decoded pixel's working copies take, besides the decoded pixels: a check needs an
# RGBA copy and its alpha channel at most (a palette or grey picture with a transparent colour).
_CHECK_WORKING = 5
# A repair's steps, as the bytes each decoded pixel's live copies take at the step's peak
# (a copy at the output's size is counted at the largest it may be: the decoded picture's
# size, times the square of any upscale). The repair shrinks first: the upright picture is
# resized to its share of the output before it is composited, so every later copy is bounded
# by the output's size, and the decoded picture is released once it is upright.
_LOOKS = 5  # decoded + an RGBA copy and its alpha (is_opaque)
_UPRIGHT = 8  # decoded + two 4-byte copies at once (convert, transpose, 16-bit scaling)
# After upright the decoded picture is gone. Shrinking: the upright (or premultiplied) copy,
# Pillow's intermediate resampling pass and the result, 4 bytes each. Compositing: the
# premultiplied part (4, pasted as it is) and the canvas (two RGB pixels for each, 8).
_SHRINK = (4, 4, 4)  # source; pass (times the scale); result (times its square)
_COMPOSITE = 12  # times the square of the scale
# The encoded bytes: written into a buffer that refuses more than max_bytes, then copied once;
# and the encoders' own row and compression buffers.
_ENCODER = 16 * 1024 * 1024


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

        The limits apply to the size the image's header declares, even when a large JPEG is
        decoded at reduced scale to fit the memory budget; a repair then re-encodes the
        reduced picture (never the original bytes).

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
        memory = self.max_memory - (2 * self.max_bytes + _ENCODER if self.repair else 0)
        image, (width, height) = _pillow.open_sized(  # the header's size, before any draft
            data,
            max_pixels=self.max_pixels,
            memory=memory,
            working=self._repair_working if self.repair else _CHECK_WORKING,
            reduce=True,
        )
        _pillow.decode(image)
        looks = _looks(image, sniffed)
        problem = self._problem(sniffed, width, height, len(data)) or looks
        if problem is None:
            return PreparedImage(data, sniffed, width, height)
        if not self.repair:
            message, limit = problem
            raise InvalidImageError(message, limit=limit)
        held = [image]  # handed over, so that the decoded picture can go once it is upright
        del image
        return self._repaired(held, sniffed, (width, height), looks)

    def _repair_working(self, image: Image.Image) -> int:
        """Bytes a decoded pixel's working copies take at a repair's peak (see _SHRINK)."""
        stored = _pillow.pixel_bytes(image)
        shortest = max(1, min(image.size))
        grow = max(1.0, self.min_side / shortest)  # an upscale makes later copies larger
        source, passing, result = _SHRINK
        later = max(source + passing * grow + result * grow**2, _COMPOSITE * grow**2)
        peak = max(stored + _LOOKS, stored + _UPRIGHT, math.ceil(later))
        return peak - stored

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

    def _repaired(
        self,
        held: list[Image.Image],
        sniffed: str,
        header: tuple[int, int],
        looks: tuple[str, str] | None,
    ) -> PreparedImage:
        """Repair the decoded picture in *held* (taken out of it, so that it can be freed).

        The upright picture is shrunk to its share of the output first, then composited:
        resampling premultiplied colours and then compositing gives what compositing and then
        resampling gives (to rounding), and no copy is larger than the output.
        """
        from PIL import Image as PILImage

        repairs: list[str] = []
        image = held.pop()
        if image.size != header:
            repairs.append(f"decoded {header[0]}x{header[1]} at {image.size[0]}x{image.size[1]}")
        part = _pillow.upright(image)
        del image
        transparent = part.mode == "RGBA"
        width, height = part.size
        across = width <= height  # the two views side by side along the short side
        if transparent:
            repairs.append("composited over black and over white, side by side")
            with _pillow.reading():  # resampling premultiplied colours never bleeds hidden ones
                part = part.convert("RGBa")
        elif looks is not None:
            repairs.append(f"converted to what a viewer sees ({looks[1]})")
        wide, tall = _canvas((width, height), transparent=transparent, across=across)
        longest, shortest = max(wide, tall), min(wide, tall)
        if longest * self.min_side > shortest * self.max_side:  # no scale fits both limits
            raise InvalidImageError(
                f"{wide}x{tall} cannot be scaled to fit {self.min_side}-{self.max_side} "
                "pixels a side",
                limit="min_side",
            )
        scale = max(min(1.0, self.max_side / longest), self.min_side / shortest)
        fmt = sniffed if sniffed in _ACCEPTED else self.target_format
        if fmt != sniffed:
            repairs.append(f"re-encoded {sniffed} as {fmt}")
        for _ in range(_MAX_REPAIR_ROUNDS):
            size = self._part_size((width, height), scale, transparent=transparent, across=across)
            out = _canvas(size, transparent=transparent, across=across)
            if not self.min_side <= min(out) <= max(out) <= self.max_side:
                break
            with _pillow.reading():
                if size != part.size:
                    part = part.resize(size, PILImage.Resampling.LANCZOS)
                picture = _pillow.both_backgrounds(part) if transparent else part
                data = _encode(picture, fmt, self.max_bytes)
                del picture
            if data is not None:
                if out != (wide, tall):
                    repairs.append(f"resized {wide}x{tall} to {out[0]}x{out[1]}")
                return PreparedImage(data, fmt, out[0], out[1], tuple(repairs))
            if fmt == "PNG":  # PNG compresses little: JPEG first, then smaller
                fmt = "JPEG"
                repairs.append("re-encoded as JPEG to fit the size limit")
                continue
            if shortest * scale * 0.8 < self.min_side:
                break
            scale *= 0.8
        raise InvalidImageError(
            f"could not bring the image under {self.max_bytes:,} bytes within "
            f"{self.min_side:,}-{self.max_side:,} pixels a side",
            limit="bytes",
        )

    def _part_size(
        self, size: tuple[int, int], scale: float, *, transparent: bool, across: bool
    ) -> tuple[int, int]:
        """Return the upright picture's size at *scale*, rounded never past an output limit."""
        low, high = self.min_side, self.max_side
        halved = (-(-low // 2), max(1, high // 2))  # a side the two views share out
        width_limits = halved if transparent and across else (low, high)
        height_limits = halved if transparent and not across else (low, high)
        return (
            _clamp(size[0] * scale, *width_limits),
            _clamp(size[1] * scale, *height_limits),
        )


def _canvas(size: tuple[int, int], *, transparent: bool, across: bool) -> tuple[int, int]:
    """Return the output's size for a picture of *size*: doubled along one side if transparent."""
    if not transparent:
        return size
    return (2 * size[0], size[1]) if across else (size[0], 2 * size[1])


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


class _Full(Exception):
    """The encoded bytes passed the limit: encoding stops there."""


class _Bounded(io.BytesIO):
    """A buffer that refuses to hold more than *limit* bytes."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self._limit = limit

    def write(self, data: Any, /) -> int:
        if self.tell() + memoryview(data).nbytes > self._limit:
            raise _Full
        return super().write(data)


def _encode(image: Image.Image, fmt: str, limit: int) -> bytes | None:
    """Encode *image* as *fmt*; ``None`` as soon as the bytes pass *limit* (call inside reading)."""
    out = _Bounded(limit)  # *image* is upright 8-bit RGB: nothing is lost by either format
    try:
        if fmt == "JPEG":
            image.save(out, "JPEG", quality=90)
        else:
            image.save(out, "PNG", optimize=False)
    except _Full:
        return None
    return out.getvalue()
