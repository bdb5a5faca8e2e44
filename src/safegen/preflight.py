"""Image preflight: check an image against the backend's limits before any bytes leave the process.

Rekognition's ``DetectModerationLabels`` accepts JPEG and PNG only, at most 5 MB as bytes,
at least 80 pixels and at most 10,000 pixels a side. :class:`Preflight` checks all of that
from the bytes themselves (never the file name) and, when you allow it, repairs what it can:
re-encodes other formats, downscales what is too large, upscales what is too small. What it
cannot use (empty or truncated bytes, non-images, animated images, decompression bombs) is an
:class:`~safegen.InvalidImageError` naming the limit.

Animated images are refused rather than judged by one frame: an unsafe later frame would pass.
Extract the frames you want moderated and send each.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Literal

import attrs

from safegen._pillow import decode, open_image
from safegen.errors import InvalidImageError

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


@attrs.frozen(kw_only=True)
class Preflight:
    """The limits an image must meet, and whether to repair one that does not.

    :param repair: re-encode, downscale or upscale an image that breaks a limit, instead of
        refusing it.
    :param target_format: what to re-encode to (``"PNG"`` keeps detail; ``"JPEG"`` is smaller).
    :param max_bytes: the largest image, in bytes (Rekognition: 5 MB).
    :param min_side: the smallest side, in pixels (Rekognition: 80).
    :param max_side: the largest side, in pixels (Rekognition: 10,000).
    :param max_pixels: the most pixels decoded at all, a guard against decompression bombs.
    """

    repair: bool = False
    target_format: Literal["PNG", "JPEG"] = "PNG"
    max_bytes: int = 5 * 1024 * 1024
    min_side: int = 80
    max_side: int = 10_000
    max_pixels: int = 100_000_000

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
        image = open_image(data, max_pixels=self.max_pixels)
        frames = getattr(image, "n_frames", 1)
        if frames > 1:
            raise InvalidImageError(
                f"animated {sniffed} with {frames} frames: moderate its frames one by one",
                limit="animated",
            )
        decode(image)
        width, height = image.size
        problem = self._problem(sniffed, width, height, len(data))
        if problem is None:
            return PreparedImage(data, sniffed, width, height)
        if not self.repair:
            message, limit = problem
            raise InvalidImageError(message, limit=limit)
        return self._repaired(image, sniffed)

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

    def _repaired(self, image: Image.Image, sniffed: str) -> PreparedImage:
        from PIL import Image as PILImage

        repairs: list[str] = []
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


def _clamp(value: float, low: int, high: int) -> int:
    return min(high, max(low, round(value)))


def _encode(image: Image.Image, fmt: str) -> bytes:
    out = io.BytesIO()
    if fmt == "JPEG":
        image.convert("RGB").save(out, "JPEG", quality=90)
    else:
        mode = "RGBA" if image.mode in ("RGBA", "LA", "P") else "RGB"
        image.convert(mode).save(out, "PNG", optimize=False)
    return out.getvalue()
