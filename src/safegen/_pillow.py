"""Pillow at one choke point: every pixel safegen reads is opened, bounded and normalised here.

Pillow is an optional extra, imported only when an image is actually decoded. The rules:

- **Bounded.** :func:`open_image` reads the header only, then refuses what it could not decode
  within the memory budget (:data:`MEMORY_BUDGET`): too many pixels, more than one frame, or
  an estimate of the bytes decoding needs (the pixel store, the decoder's own buffers such as
  the whole-image coefficient buffer libjpeg keeps for any JPEG coded in more than one scan,
  progressive or not, a TIFF's strips or tiles, WebP's RGBA buffer, and the caller's working
  copies) over the budget. Only formats whose header states the real size are read
  (:data:`READABLE`). safegen's own header check is the only pixel guard: Pillow's
  (``Image.MAX_IMAGE_PIXELS``) is lifted while safegen holds its lock, so a ``max_pixels``
  setting above Pillow's limit takes effect and the refusal is safegen's.
- **Damage is an error.** Inside :func:`reading`, any exception from Pillow or one of its
  decoders (``TypeError``, ``struct.error``, ``RecursionError``, a warning, ...) becomes an
  :class:`~safegen.InvalidImageError` with ``limit="corrupt"`` (``"pixels"`` for Pillow's own
  decompression-bomb guard).
- **What the viewer sees is what is judged.** :func:`upright` turns any mode into 8-bit sRGB
  as a colour-managed screen shows it (an embedded ICC profile applied, EXIF orientation
  applied and XMP orientation ignored as browsers do, 16-bit scaled rather than clipped,
  palette and CMYK converted), keeping an alpha channel only when some pixel is not opaque;
  :func:`over` composites such a picture over a background. Colours under fully transparent
  pixels never survive either. An ICC profile that cannot be read, or that does not fit the
  picture's colours and would change how greys look, is damage (``limit="corrupt"``):
  viewers disagree about such a picture, so none of their renderings can be judged.
"""

from __future__ import annotations

import io
import itertools
import re
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from safegen import _logs
from safegen.errors import InvalidImageError

if TYPE_CHECKING:
    from PIL import Image
    from PIL.ImageCms import ImageCmsProfile

MEMORY_BUDGET = 512 * 1024 * 1024
"""The most memory (bytes) decoding one image may take, by the header's estimate."""

READABLE = ("BMP", "DIB", "GIF", "JPEG", "PNG", "TIFF", "WEBP")
"""Pillow formats read at all: those whose header states the size that will be decoded.

(ICO and ICNS, for one, embed PNGs that may be far larger than their directory says.) A
JPEG with more pictures in it opens as MPO, and is refused as multi-frame.
"""

BACKGROUNDS = ((0, 0, 0), (255, 255, 255))
"""A transparent picture is judged over each of these; the stricter result stands."""

# Pillow keeps 1-bit and 8-bit single-band images in one byte a pixel, 16-bit in two, and
# everything else (RGB included) in four.
_STORED = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16L": 2, "I;16B": 2, "I;16N": 2}
_SIXTEEN_BIT = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})
_ORIENTATION = 0x0112
# Modes whose colours an RGB ICC profile describes, and those a grey one does.
_COLOUR_MODES = frozenset({"RGB", "RGBA", "RGBX", "RGBa", "P", "PA", "YCbCr"})
_GREY_MODES = frozenset({"1", "L", "LA", "La", "I", "F", *_SIXTEEN_BIT})
_PROFILE_SPACES = {"RGB": _COLOUR_MODES, "GRAY": _GREY_MODES, "CMYK": frozenset({"CMYK"})}
# Bytes a pixel applying an ICC profile may take besides the other working copies.
_PROFILE_WORKING = 4
SAME_COLOUR = 2
"""Levels (of 255) within which a profile not fitting the picture counts as sRGB (and is ignored).

Also the dip within which a tone curve still counts as rising. Never a tolerance between what
the models read and what preflight sends: :func:`profile_changes` is exact.
"""
_BAND_PIXELS = 1 << 20  # a picture is compared with its profile's rendering this much at a time
_MESSAGE_CHARS = 200

# warnings.catch_warnings swaps process-wide filters: two threads entering and leaving it
# interleaved could leave "error" installed for good. Every Pillow call runs under this lock.
_LOCK = threading.RLock()


def _pil() -> None:
    try:
        import PIL  # noqa: F401
    except ImportError:  # pragma: no cover - exercised only without the extra installed
        raise InvalidImageError(
            "reading images needs Pillow: pip install 'safegen[images]'", limit="pillow"
        ) from None
    # Pillow logs the values of the metadata it reads (EXIF artist, GPS, descriptions) at
    # DEBUG: content, which no log may carry at any level.
    _logs.hush(["PIL"])


@contextmanager
def reading() -> Iterator[None]:
    """Run Pillow work in which every exception and warning is damage to the image.

    Pillow's own decompression-bomb guard is lifted meanwhile (under the lock every safegen
    Pillow call holds): :func:`open_image` checks the header against the caller's own limits
    before any pixel is decoded, so that check is the only one, and its message the one seen.

    :raises InvalidImageError: ``limit="pixels"`` for a decompression-bomb guard,
        ``limit="corrupt"`` for anything else a decoder raised or warned.
    """
    _pil()
    from PIL import Image

    with _LOCK, warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. "Truncated File Read" from the TIFF plugin
        guard = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        try:
            yield
        except InvalidImageError:
            raise
        except Exception as error:  # any decoder failure, whatever its type, is damage
            raise _damage(error) from None
        finally:
            Image.MAX_IMAGE_PIXELS = guard


def _damage(error: Exception) -> InvalidImageError:
    kind = type(error).__name__
    detail = str(error)[:_MESSAGE_CHARS]
    if kind in ("DecompressionBombError", "DecompressionBombWarning"):
        return InvalidImageError(
            f"refused as a possible decompression bomb: {detail}", limit="pixels"
        )
    return InvalidImageError(f"not a readable image ({kind}): {detail}", limit="corrupt")


def open_image(
    data: bytes,
    *,
    max_pixels: int,
    memory: int = MEMORY_BUDGET,
    working: int | Callable[[Image.Image], int] = 0,
    reduce: bool = False,
) -> Image.Image:
    """Open *data* lazily and refuse, before any pixel is decoded, what breaks a bound.

    :param max_pixels: the most pixels (width times height) accepted.
    :param memory: the budget, in bytes, for decoding plus the caller's working copies.
    :param working: the bytes a pixel the caller's own copies take after decoding, or a
        function of the opened (not yet decoded) image returning them.
    :param reduce: a JPEG over the budget may be decoded at 1/2, 1/4 or 1/8 scale instead
        (the size of the returned image is then the reduced one: see :func:`open_sized`).
    :raises InvalidImageError: not an image in a :data:`READABLE` format (``corrupt``), more
        than one frame (``animated``), too many pixels or too much memory (``pixels``).
    """
    return open_sized(data, max_pixels=max_pixels, memory=memory, working=working, reduce=reduce)[0]


def open_sized(
    data: bytes,
    *,
    max_pixels: int,
    memory: int = MEMORY_BUDGET,
    working: int | Callable[[Image.Image], int] = 0,
    reduce: bool = False,
) -> tuple[Image.Image, tuple[int, int]]:
    """Like :func:`open_image`, and return the size the header declares as well.

    A JPEG reduced to fit the budget has a smaller ``size`` than the picture it holds; limits
    on the picture's size (a backend's largest side) apply to the declared one.
    """
    from PIL import Image, UnidentifiedImageError

    with reading():
        try:
            image = Image.open(io.BytesIO(data), formats=READABLE)
        except UnidentifiedImageError:
            raise InvalidImageError(
                "not a readable image: no image format recognised "
                f"(safegen reads {', '.join(READABLE)})",
                limit="corrupt",
            ) from None
        frames = getattr(image, "n_frames", 1)
        if not isinstance(frames, int) or frames != 1:
            raise InvalidImageError(
                f"{image.format} with {frames} frames: moderate its frames one by one",
                limit="animated",
            )
        width, height = image.size
        if width < 1 or height < 1:
            raise InvalidImageError(f"{width}x{height} has no pixels", limit="corrupt")
        if width * height > max_pixels:  # checked from the header, before any decoding
            raise InvalidImageError(
                f"{width}x{height} is {width * height:,} pixels, over the {max_pixels:,} "
                "allowed (a guard against decompression bombs)",
                limit="pixels",
            )
        fixed = _decoder_buffers(image, data)
        per_pixel = working(image) if callable(working) else working
        if image.info.get("icc_profile"):  # a grey picture's profile is applied to a copy
            per_pixel += _PROFILE_WORKING
        each = pixel_bytes(image) + per_pixel
        need = fixed + width * height * each
        if need > memory and reduce and image.format in ("JPEG", "MPO"):
            # libjpeg scales by 1/2, 1/4 or 1/8 while decoding; Pillow's draft() takes one
            # call only, so the scale is chosen first. The coefficient buffer of a JPEG in
            # several scans stays full-size whatever the scale: it is in *fixed*.
            scale = next(
                (s for s in (2, 4, 8) if fixed + -(-width // s) * -(-height // s) * each <= memory),
                8,
            )
            image.draft(image.mode, (max(1, width // scale), max(1, height // scale)))
            w, h = image.size
            need = fixed + w * h * each
        if need > memory:
            raise InvalidImageError(
                f"decoding {width}x{height} ({image.mode}) would take about "
                f"{need / 2**20:,.0f} MB, over the {memory / 2**20:,.0f} MB allowed",
                limit="pixels",
            )
    return image, (width, height)


def pixel_bytes(image: Image.Image) -> int:
    """Bytes a decoded pixel takes: Pillow's store, plus WebP's own RGBA buffer."""
    return _STORED.get(image.mode, 4) + (4 if image.format == "WEBP" else 0)


def _decoder_buffers(image: Image.Image, data: bytes) -> int:
    """Bytes a decoder holds besides the pixels, read from the header."""
    width, height = image.size
    if image.format in ("JPEG", "MPO"):
        return jpeg_coefficients(data)
    if image.format == "TIFF":
        tags = getattr(image, "tag_v2", {})
        samples = int(tags.get(277, len(image.getbands())) or 1)
        bits = tags.get(258, (8,))
        depth = max(bits) if isinstance(bits, tuple) and bits else int(bits or 8)
        per_pixel = max(4, samples * -(-int(depth) // 8))
        if 322 in tags and 323 in tags:  # tiled: one tile at a time, however large it claims
            return int(tags[322]) * int(tags[323]) * per_pixel
        rows = min(height, int(tags.get(278, height) or height))
        return width * rows * per_pixel
    return 0


# Start-of-frame markers (every SOFn but DHT, JPG and DAC), and the progressive ones.
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_PROGRESSIVE = frozenset({0xC2, 0xC6, 0xCA, 0xCE})
# In entropy-coded data 0xFF is followed by 0x00 (a stuffed byte) or a restart marker; any
# other byte after it is a marker (0xFF itself is fill before one).
_NEXT_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")


def jpeg_coefficients(data: bytes) -> int:
    """Bytes of the whole-image coefficient buffer libjpeg keeps for *data*; 0 if it needs none.

    libjpeg decodes a JPEG in one pass only when it is sequential and its first scan holds
    every component. Any other JPEG (progressive, or sequential with a scan per component or
    more than one scan) is decoded through a buffer holding every DCT coefficient of the
    whole picture: 2 bytes a sample of each component at its own sampling, rounded up to
    whole blocks of its MCU. That buffer is full-size whatever scale the picture is decoded
    at. The markers are read without decoding: each segment's length is skipped, and
    entropy-coded data is searched for the next marker, so this is linear in the bytes.
    Anything that cannot be read counts as several scans: more is counted, never less.
    """
    size = len(data)
    at = 2  # past SOI
    frame: tuple[int, int, list[tuple[int, int]]] | None = None
    progressive = False
    scans = 0
    first_scan = 0
    while at + 1 < size:
        if data[at] != 0xFF:  # stray bytes between segments: libjpeg skips to the next marker
            at = data.find(b"\xff", at)
            if at < 0:
                break
            continue
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if marker == 0xD9:  # EOI
            break
        if marker in (0x01, 0xD8) or 0xD0 <= marker <= 0xD7:  # no length follows
            at += 2
            continue
        if at + 4 > size:
            break
        length = int.from_bytes(data[at + 2 : at + 4], "big")
        body = data[at + 4 : at + 2 + length]
        at += 2 + max(2, length)
        if marker in _SOF and frame is None and len(body) >= 6:
            progressive = marker in _PROGRESSIVE
            rows = int.from_bytes(body[1:3], "big")
            columns = int.from_bytes(body[3:5], "big")
            sampling = [
                (min(4, max(1, b >> 4)), min(4, max(1, b & 15)))
                for b in body[7 : 6 + 3 * body[5] : 3]
            ]
            frame = (columns, rows, sampling or [(1, 1)])
        elif marker == 0xDA:
            scans += 1
            if scans == 1:
                first_scan = body[0] if body else 0
            found = _NEXT_MARKER.search(data, at)
            if found is None:
                break
            at = found.start()
    if frame is None:
        return 0
    columns, rows, sampling = frame
    if not progressive and scans <= 1 and first_scan >= len(sampling):
        return 0
    most_h = max(h for h, _ in sampling)
    most_v = max(v for _, v in sampling)
    total = 0
    for h, v in sampling:
        across = _up(_up(columns * h, most_h * 8), h) * h  # blocks, rounded to whole MCUs
        down = _up(_up(rows * v, most_v * 8), v) * v
        total += across * down * 64 * 2
    return total


def _up(number: int, divisor: int) -> int:
    return -(-number // divisor)


def decode(image: Image.Image) -> None:
    """Decode every pixel; a damaged file is an error even where Pillow would only warn.

    :raises InvalidImageError: the image cannot be fully decoded (truncated, corrupt).
    """
    with reading():
        if image.format == "TIFF":  # Pillow turns a TIFF while decoding it, by getexif()
            exif = image.getexif()
            if _ORIENTATION not in getattr(image, "tag_v2", {}):  # XMP's, not the TIFF's own
                exif.pop(_ORIENTATION, None)
        image.load()


def orientation(image: Image.Image) -> int:
    """Return the EXIF orientation (1-8) a viewer applies; 1 when absent or not valid.

    Only an EXIF block (a JPEG's APP1, a PNG's ``eXIf``, a WebP's ``EXIF``) or a TIFF's own
    tag counts, as in browsers: an orientation written only in XMP, or in the text chunk
    ImageMagick calls "Raw profile type exif", is not applied, though Pillow's
    ``getexif()`` would apply it.
    """
    from PIL import Image as PILImage

    with reading():
        block = image.info.get("exif")
        tags = getattr(image, "tag_v2", None)
        if isinstance(block, bytes) and block:
            exif = PILImage.Exif()
            exif.load(block)
            value = exif.get(_ORIENTATION, 1)
        elif tags is not None and image.format == "TIFF":
            value = tags.get(_ORIENTATION, 1)
        else:
            value = 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def is_opaque(image: Image.Image) -> bool:
    """Whether every pixel is fully opaque (always, for a mode without transparency)."""
    with reading():
        if "A" in image.getbands() or "a" in image.getbands():
            alpha = image.getchannel("A" if "A" in image.getbands() else "a")
        elif "transparency" in image.info:
            alpha = image.convert("RGBA").getchannel("A")
        else:
            return True
        low, _ = alpha.getextrema()
        return bool(low == 255)


def upright(image: Image.Image) -> Image.Image:
    """Return *image* as a viewer shows it: 8-bit ``RGB``, or ``RGBA`` if any pixel is not opaque.

    EXIF orientation is applied; 16-bit and 32-bit greys are scaled to 8 bits rather than
    clipped; palette, 1-bit, CMYK, YCbCr, LAB and HSV are converted; an embedded ICC profile
    is applied (the colours become sRGB's); an alpha channel that is opaque everywhere is
    dropped.

    :raises InvalidImageError: ``limit="corrupt"`` for an ICC profile that cannot be read or
        applied (see :func:`profile_changes`).
    """
    from PIL import Image as PILImage

    turn = orientation(image)
    with reading():
        kind, profile = _profile(image)
        seen = _eight_bit(image)
        if kind == "CMYK" and profile is not None:
            seen = _cms().profileToProfile(seen, profile, _srgb(), outputMode="RGB")
        if "A" in seen.getbands() or "a" in seen.getbands() or "transparency" in seen.info:
            if seen.mode == "La":
                seen = seen.convert("LA")
            seen = seen.convert("RGBA")
            if seen.getchannel("A").getextrema()[0] == 255:
                seen = seen.convert("RGB")
        elif seen.mode != "RGB":
            seen = seen.convert("RGB")
        if seen is image:
            seen = seen.copy()
        if kind in ("RGB", "GRAY") and profile is not None:
            seen = _colour_managed(kind, profile, seen.mode)(seen)
        if turn != 1:
            transpose = PILImage.Transpose
            seen = seen.transpose(
                {
                    2: transpose.FLIP_LEFT_RIGHT,
                    3: transpose.ROTATE_180,
                    4: transpose.FLIP_TOP_BOTTOM,
                    5: transpose.TRANSPOSE,
                    6: transpose.ROTATE_270,
                    7: transpose.TRANSVERSE,
                    8: transpose.ROTATE_90,
                }[turn]
            )
        seen.info.clear()  # orientation, transparency and profile are applied: none is left
    return seen


def _eight_bit(image: Image.Image) -> Image.Image:
    """Bring deep and unusual modes to an 8-bit mode Pillow converts faithfully."""
    mode = image.mode
    if mode in _SIXTEEN_BIT:  # a viewer shows the high byte: 65535 is white, 32768 mid grey
        return image.convert("I").point(lambda v: v / 256).convert("L")
    if mode in ("I", "F"):
        extrema = image.getextrema()
        low, high = float(extrema[0]), float(extrema[1])  # type: ignore[arg-type]
        if mode == "F" and low >= 0 and high <= 1:  # a float image on the 0-1 scale
            return image.point(lambda v: v * 255 + 0.5).convert("L")
        if low >= 0 and high <= 255:
            return image.point(lambda v: v + 0.5).convert("L") if mode == "F" else image
        if low >= 0 and high <= 65535:
            return image.point(lambda v: v / 256).convert("L")
        span = (high - low) or 1.0
        return image.point(lambda v: (v - low) * 255 / span).convert("L")
    return image


def _cms() -> Any:
    from PIL import ImageCms

    return ImageCms


def _srgb() -> ImageCmsProfile:
    from PIL import ImageCms

    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


def _profile(image: Image.Image) -> tuple[str, ImageCmsProfile | None]:
    """Return the colour space of *image*'s ICC profile and the profile, if it is to be applied.

    Call inside :func:`reading`. A profile is applied when it fits the picture's mode (an RGB
    profile for colour, a grey one for grey, a CMYK one for CMYK). One that does not fit is
    ignored, as browsers ignore it, only when it renders every grey as sRGB does, so that a
    viewer applying it anyway shows the same picture.

    :raises InvalidImageError: ``limit="corrupt"``: the profile cannot be read, or does not fit
        and would change the picture's look.
    """
    data = image.info.get("icc_profile")
    if not data:
        return "", None
    try:
        profile = _cms().ImageCmsProfile(io.BytesIO(data))
        space = str(profile.profile.xcolor_space).strip()
    except Exception:  # whatever littlecms says, the profile is unreadable
        raise InvalidImageError(
            "an embedded ICC colour profile that cannot be read: viewers disagree about "
            "its colours",
            limit="corrupt",
        ) from None
    if space in ("RGB", "GRAY") and not _rising(profile, space):
        raise InvalidImageError(
            "an embedded ICC colour profile whose tone curves fall (lighter stored levels "
            "shown darker): "
            "colour-management engines disagree about its colours",
            limit="corrupt",
        )
    if image.mode in _PROFILE_SPACES.get(space, frozenset()):
        return space, profile
    if space in ("RGB", "GRAY") and _grey_ramp_unchanged(profile, space):
        return "", None
    raise InvalidImageError(
        f"a {space or 'unknown'} ICC colour profile on a {image.mode} picture that would "
        "change its colours: viewers disagree about them",
        limit="corrupt",
    )


def _rising(profile: ImageCmsProfile, space: str) -> bool:
    """Whether *profile* shows every ramp (grey, and red, green, blue alone) as a rising ramp.

    littlecms renders a tone curve that falls anywhere (a lighter stored level shown darker:
    a negative, or a scrambled order) otherwise than browsers' engines do, or not at all as
    the curve says; real profiles have none.
    """
    from PIL import Image as PILImage

    ramp = bytes(range(256))
    if space == "GRAY":
        source = PILImage.frombytes("L", (256, 1), ramp)
    else:
        nothing = bytes(256)
        rows = [(ramp, ramp, ramp), (ramp, nothing, nothing)]
        rows += [(nothing, ramp, nothing), (nothing, nothing, ramp)]
        source = PILImage.frombytes(
            "RGB",
            (256, 4),
            b"".join(bytes(b for triple in zip(*row, strict=True) for b in triple) for row in rows),
        )
    shown = _cms().applyTransform(
        source, _cms().buildTransform(profile, _srgb(), source.mode, "RGB")
    )
    data = shown.tobytes()
    for row in range(source.size[1]):
        for band in range(3):
            levels = data[row * 768 + band : (row + 1) * 768 : 3]
            highest = itertools.accumulate(levels, max)  # a fall, however gentle, is seen
            if any(level < top - SAME_COLOUR for level, top in zip(levels, highest, strict=True)):
                return False
    return True


def _grey_ramp_unchanged(profile: ImageCmsProfile, space: str) -> bool:
    """Whether *profile* shows every grey (0-255) within :data:`SAME_COLOUR` of sRGB."""
    from PIL import Image as PILImage

    ramp = PILImage.frombytes("L", (256, 1), bytes(range(256)))
    mode = "L" if space == "GRAY" else "RGB"
    source = ramp if mode == "L" else ramp.convert("RGB")
    shown = _cms().applyTransform(source, _cms().buildTransform(profile, _srgb(), mode, "RGB"))
    return _largest_difference(ramp.convert("RGB"), shown) <= SAME_COLOUR


def _grey_table(profile: ImageCmsProfile, *, alpha: bool) -> list[int]:
    """Return a :meth:`~PIL.Image.Image.point` table taking each grey to sRGB via *profile*."""
    from PIL import Image as PILImage

    ramp = PILImage.frombytes("L", (256, 1), bytes(range(256)))
    shown = _cms().applyTransform(ramp, _cms().buildTransform(profile, _srgb(), "L", "RGB"))
    table = [value for band in shown.split() for value in band.tobytes()]
    return table + list(range(256)) if alpha else table


def _colour_managed(
    kind: str, profile: ImageCmsProfile, mode: str
) -> Callable[[Image.Image], Image.Image]:
    """Return the one conversion taking an 8-bit *mode* (``RGB``/``RGBA``) picture to sRGB.

    Call inside :func:`reading`. *kind* is the profile's colour space (``RGB`` or ``GRAY``).
    :func:`upright` shows a picture through it, and :func:`profile_changes` asks whether it
    changes any pixel, so that what preflight passes on unrepaired is what the models read.
    An RGB profile's transform works in place (alpha untouched); a grey picture, stored as
    RGB with every channel the grey, goes through one table a channel.
    """
    if kind == "GRAY":
        table = _grey_table(profile, alpha=mode == "RGBA")
        return lambda image: image.point(table)
    transform = _cms().buildTransform(profile, _srgb(), mode, mode)

    def apply(image: Image.Image) -> Image.Image:
        _cms().applyTransform(image, transform, inPlace=True)
        return image

    return apply


def _largest_difference(first: Image.Image, second: Image.Image) -> int:
    from PIL import ImageChops

    extrema = ImageChops.difference(first, second).getextrema()
    return max(int(high) for _, high in extrema)  # type: ignore[misc]


def profile_changes(image: Image.Image) -> bool:
    """Whether *image*'s ICC profile makes :func:`upright` show any pixel otherwise than stored.

    The test is exact, with the conversion :func:`upright` applies: a picture it says no to
    shows (through :func:`upright`) exactly its raw pixels, so passing its bytes on unrepaired
    gives a reader of raw pixels (Rekognition) what the models read. A profile that changes
    a level by as little as one (a near-sRGB tone curve, say) counts. A CMYK picture's always
    does. Only the grey levels, palette colours or pixels the picture holds are compared, a
    band at a time, so this takes little memory.

    :raises InvalidImageError: ``limit="corrupt"``: see :func:`upright`.
    """
    from PIL import Image as PILImage

    with reading():
        kind, profile = _profile(image)
        if profile is None:
            return False
        if kind == "CMYK":
            return True
        if kind == "GRAY":  # only the grey levels present can show: one row of them
            counts = _eight_bit(image).convert("L").histogram()
            present = bytes(level for level, count in enumerate(counts) if count)
            source = PILImage.frombytes("L", (len(present), 1), present).convert("RGB")
            return _changed(source, _colour_managed(kind, profile, "RGB"))
        convert = _colour_managed(kind, profile, "RGB")
        if image.mode in ("P", "PA"):  # only the palette's colours can show
            colours = image.getpalette("RGB") or [0, 0, 0]
            source = PILImage.frombytes("RGB", (len(colours) // 3, 1), bytes(colours))
            return _changed(source, convert)
        width, height = image.size
        rows = max(1, _BAND_PIXELS // width)
        for top in range(0, height, rows):
            band = image.crop((0, top, width, min(height, top + rows))).convert("RGB")
            if _changed(band, convert):
                return True
    return False


def _changed(source: Image.Image, convert: Callable[[Image.Image], Image.Image]) -> bool:
    """Whether *convert* (which may work in place) changes any pixel of RGB *source*."""
    return _largest_difference(source, convert(source.copy())) > 0


def over(image: Image.Image, background: tuple[int, int, int]) -> Image.Image:
    """Composite an ``RGBA`` (or premultiplied ``RGBa``) picture over a flat *background*, as RGB.

    A premultiplied picture is composited as it is, with no copy (the result is the same).
    """
    from PIL import Image as PILImage

    with reading():
        canvas = PILImage.new("RGB", image.size, background)
        canvas.paste(image, mask=image)
    return canvas


def both_backgrounds(image: Image.Image) -> Image.Image:
    """Return an ``RGBA`` (or ``RGBa``) picture over black and over white, along its short side.

    The two views are side by side; only the result (two RGB pixels for each) is allocated.
    """
    from PIL import Image as PILImage

    width, height = image.size
    across = width <= height
    size = (2 * width, height) if across else (width, 2 * height)
    second = (width, 0) if across else (0, height)
    with reading():
        canvas = PILImage.new("RGB", size, BACKGROUNDS[1])
        canvas.paste(BACKGROUNDS[0], (0, 0, width, height))
        canvas.paste(image, (0, 0), mask=image)
        canvas.paste(image, second, mask=image)
    return canvas
