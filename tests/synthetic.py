"""Pictures drawn from a seed, for testing and calibrating the offline models.

Nothing here is downloaded or photographed: every image is drawn with Pillow from a seed,
so the same seed always gives the same picture. Two families:

- *harmless*: flat colours, gradients, noise, skin-coloured blobs, geometric shapes, simple
  landscapes. An offline model's scores on these are its false-alarm floor.
- *borderline*: crude cartoon torsos (circles for a chest, dots for nipples). Nothing a person
  would call explicit, but exactly what a body-part detector can mistake for it; NudeNet
  scores some of them above 60 as an exposed breast.
"""

from __future__ import annotations

import io
import random

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

SKIN = [
    (255, 224, 189),
    (250, 200, 180),
    (255, 205, 148),
    (234, 192, 134),
    (224, 172, 105),
    (198, 134, 66),
    (141, 85, 36),
]
SIZE = 512


def _colour(rng: random.Random) -> tuple[int, int, int]:
    return (rng.randrange(256), rng.randrange(256), rng.randrange(256))


def _darker(colour: tuple[int, int, int], by: int) -> tuple[int, int, int]:
    r, g, b = colour
    return (max(0, r - by), max(0, g - by), max(0, b - by))


def landscape(rng: random.Random) -> Image.Image:
    """Sky, a sun, hills and a house: the kind of picture the README's example moderates."""
    sky = rng.choice([(135, 206, 235), (176, 224, 230), (100, 149, 237)])
    image = Image.new("RGB", (SIZE, SIZE), sky)
    draw = ImageDraw.Draw(image)
    sun = rng.randrange(60, 452)
    draw.ellipse((sun - 40, 50, sun + 40, 130), fill=(255, 215, 0))
    for i in range(3):
        top = rng.randrange(230, 330)
        green = (34 + 30 * i, 139 - 20 * i, 34)
        draw.polygon([(-50 + 200 * i, SIZE), (100 + 200 * i, top), (300 + 200 * i, SIZE)], green)
    left = rng.randrange(150, 300)
    draw.rectangle((left, 330, left + 110, 430), fill=(178, 34, 34))
    draw.polygon([(left - 10, 330), (left + 55, 270), (left + 120, 330)], fill=(101, 67, 33))
    draw.rectangle((left + 40, 380, left + 70, 430), fill=(60, 40, 20))
    return image


def _blobs(rng: random.Random) -> Image.Image:
    background = _colour(rng)
    image = Image.new("RGB", (SIZE, SIZE), background)
    draw = ImageDraw.Draw(image)
    for _ in range(rng.randrange(3, 12)):
        x, y, r = rng.randrange(SIZE), rng.randrange(SIZE), rng.randrange(20, 150)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=rng.choice([*SKIN, background]))
    return image


def _shapes(rng: random.Random) -> Image.Image:
    image = Image.new("RGB", (SIZE, SIZE), _colour(rng))
    draw = ImageDraw.Draw(image)
    for _ in range(rng.randrange(4, 20)):
        x0, y0 = rng.randrange(SIZE), rng.randrange(SIZE)
        x1, y1 = x0 + rng.randrange(10, 200), y0 + rng.randrange(10, 200)
        if rng.random() < 0.5:
            draw.rectangle((x0, y0, x1, y1), fill=_colour(rng))
        else:
            draw.line((x0, y0, x1, y1), fill=_colour(rng), width=rng.randrange(1, 12))
    return image


def _noise(rng: random.Random) -> Image.Image:
    base = np.array(rng.choice([*SKIN, _colour(rng)]), dtype=np.float64)
    noise = np.random.default_rng(rng.randrange(2**32)).normal(0, 30, (SIZE, SIZE, 3))
    pixels = np.clip(base + noise, 0, 255).astype("uint8")
    return Image.fromarray(pixels).filter(ImageFilter.GaussianBlur(rng.randrange(1, 8)))


def _gradient(rng: random.Random) -> Image.Image:
    start, end = np.array(_colour(rng)), np.array(_colour(rng))
    ramp = np.linspace(0.0, 1.0, SIZE)[:, None, None]
    pixels = (start + (end - start) * ramp).astype("uint8")
    return Image.fromarray(np.broadcast_to(pixels, (SIZE, SIZE, 3)).copy())


_HARMLESS = (landscape, _blobs, _shapes, _noise, _gradient)


def harmless(seed: int) -> Image.Image:
    """Draw the harmless picture for *seed* (one of five kinds, chosen by the seed)."""
    rng = random.Random(seed)
    return _HARMLESS[seed % len(_HARMLESS)](rng)


def borderline(seed: int) -> Image.Image:
    """Draw a crude cartoon torso: a head, a chest of two circles, dots for nipples."""
    rng = random.Random(seed)
    image = Image.new("RGB", (SIZE, SIZE), _colour(rng))
    draw = ImageDraw.Draw(image)
    skin = rng.choice(SKIN)
    draw.ellipse((156, 60, 356, 240), fill=skin)
    draw.rectangle((140, 200, 372, 512), fill=skin)
    for centre in (206, 306):
        box = (centre - 55, 250, centre + 55, 360)
        draw.ellipse(box, fill=_darker(skin, 15), outline=_darker(skin, 40), width=3)
        if seed % 2 == 0:
            draw.ellipse((centre - 9, 300, centre + 9, 318), fill=(180, 90, 90))
    draw.line((256, 380, 256, 420), fill=_darker(skin, 40), width=3)
    return image


def png(image: Image.Image) -> bytes:
    """Encode *image* as PNG bytes."""
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()
