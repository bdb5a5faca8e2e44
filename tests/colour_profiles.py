"""ICC colour profiles for tests: sRGB's own, and ones with other tone curves.

A profile from :func:`toned` keeps sRGB's primaries and white but shows each stored level
``v`` of a channel as the light sRGB gives level ``curve[v]``: :func:`stored` writes a
picture so that a viewer applying the profile shows (about) the picture itself, while its
raw pixels look otherwise (a negative, say, with the curve ``255 - v``).
"""

from __future__ import annotations

import io
import struct

import numpy as np
from PIL import Image, ImageCms

_HEADER = 128


def srgb() -> bytes:
    """Return littlecms's built-in sRGB profile, as bytes."""
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _tags(profile: bytes) -> dict[bytes, bytes]:
    (count,) = struct.unpack(">I", profile[_HEADER : _HEADER + 4])
    tags = {}
    for i in range(count):
        sig, offset, size = struct.unpack(
            ">4sII", profile[_HEADER + 4 + 12 * i : _HEADER + 16 + 12 * i]
        )
        tags[sig] = profile[offset : offset + size]
    return tags


def _write(header: bytes, tags: dict[bytes, bytes]) -> bytes:
    offset = _HEADER + 4 + 12 * len(tags)
    table, body = b"", b""
    for sig, data in tags.items():
        body += b"\0" * (-(offset + len(body)) % 4)
        table += struct.pack(">4sII", sig, offset + len(body), len(data))
        body += data
    out = bytearray(header[:_HEADER] + struct.pack(">I", len(tags)) + table + body)
    out[0:4] = struct.pack(">I", len(out))
    out[84:100] = b"\0" * 16  # the profile ID (an MD5), now stale: zero means "not computed"
    return bytes(out)


def _linear(level: np.ndarray) -> np.ndarray:
    """Return the linear light (0-1) of sRGB levels (0-255)."""
    v = level / 255.0
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


def _curve(curve: np.ndarray) -> bytes:
    table = np.round(_linear(np.clip(curve, 0, 255)) * 65535).astype(">u2")
    return b"curv" + b"\0" * 4 + struct.pack(">I", len(table)) + table.tobytes()


def toned(curves: list[np.ndarray]) -> bytes:
    """An RGB profile (a curve each for R, G, B) or a grey one (one curve): 256 sRGB levels."""
    base = srgb()
    tags = _tags(base)
    header = bytearray(base[:_HEADER])
    if len(curves) == 1:
        header[16:20] = b"GRAY"
        kept: dict[bytes, bytes] = {s: tags[s] for s in (b"desc", b"wtpt", b"cprt") if s in tags}
        return _write(bytes(header), {**kept, b"kTRC": _curve(curves[0])})
    trc = dict(zip((b"rTRC", b"gTRC", b"bTRC"), (_curve(c) for c in curves), strict=True))
    kept = {sig: data for sig, data in tags.items() if sig not in trc}
    return _write(bytes(header), {**kept, **trc})


def stored(image: Image.Image, curves: list[np.ndarray]) -> Image.Image:
    """*image*'s pixels stored so that :func:`toned` with *curves* shows (about) *image*."""
    pixels = np.asarray(image)
    nearest = [
        np.abs(np.asarray(curve, float)[None, :] - np.arange(256)[:, None]).argmin(axis=1)
        for curve in curves
    ]
    if len(curves) == 1:
        return Image.fromarray(nearest[0].astype(np.uint8)[pixels], image.mode)
    out = pixels.copy()
    for band, undo in enumerate(nearest):
        out[..., band] = undo.astype(np.uint8)[pixels[..., band]]
    return Image.fromarray(out, image.mode)


def shown(data: bytes) -> np.ndarray:
    """What a colour-managed viewer shows of encoded *data*, as 8-bit sRGB."""
    opened = Image.open(io.BytesIO(data))
    profile = ImageCms.ImageCmsProfile(io.BytesIO(opened.info["icc_profile"]))
    image = opened.convert("L" if opened.mode in ("1", "L") else "RGB")
    out = ImageCms.profileToProfile(
        image, profile, ImageCms.createProfile("sRGB"), outputMode="RGB"
    )
    assert out is not None
    return np.asarray(out)
