"""Real photographs that packages ship, and invented pictures that fool body-part detectors.

Both sets are harmless: the offline models' calibration (``benchmarks/calibrate_local.py``)
and ``tests/test_local.py`` check that no shipped offline configuration blocks any of them.

- :func:`photographs`: every still picture bundled in the scikit-image wheel (portraits,
  a cat, a horse, coffee, coins, a rocket, a motorcycle, bricks, grass, the moon, micrographs,
  a colour wheel, chessboards, ...) and in matplotlib's sample data (Grace Hopper's portrait,
  a gift box), plus a contact sheet and single portraits made of the 200 faces of the Labeled
  Faces in the Wild subset scikit-image ships. None is fetched: only what the wheels carry.
  ``pip install scikit-image matplotlib`` (the ``calibrate`` extra); without them the set is
  empty and the tests that need it skip.
- :func:`lookalike`: seeded pictures of the kinds a detector mistakes for skin or a body's
  shading: colour wheels and hue gradients (in colour and in grey), colour bars, colour
  checkers, checkerboards, noise, and skin-toned textures and fruit (bread, sand, wood,
  peaches, apricots).
"""

from __future__ import annotations

import colorsys
import functools
import importlib.util
import io
import random
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

#: Bundled pictures that are not stills (animated or multi-page): safegen refuses them.
_NOT_STILLS = {"multipage.tif", "multipage_rgb.tif", "no_time_for_that_tiny.gif"}


def _package_dir(package: str) -> Path | None:
    """Find an installed package's folder without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _png(pixels: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "PNG")
    return out.getvalue()


@functools.cache
def photographs() -> dict[str, bytes]:
    """Return the real photographs installed packages carry, by name (empty without them)."""
    found: dict[str, bytes] = {}
    skimage = _package_dir("skimage")
    if skimage is not None:
        data = skimage / "data"
        for path in sorted(data.iterdir()):
            if path.suffix in {".png", ".jpg", ".gif", ".tif"} and path.name not in _NOT_STILLS:
                found[f"skimage/{path.name}"] = path.read_bytes()
        faces = data / "lfw_subset.npy"
        if faces.is_file():
            grey = (np.load(faces) * 255).astype(np.uint8)  # 200 faces, 25x25
            sheet = grey[:100].reshape(10, 10, 25, 25).transpose(0, 2, 1, 3).reshape(250, 250)
            found["skimage/lfw_subset (100 faces)"] = _png(
                np.kron(sheet, np.ones((4, 4), np.uint8))
            )
            for index in range(0, 200, 40):
                face = np.kron(grey[index], np.ones((10, 10), np.uint8))
                found[f"skimage/lfw_subset (face {index})"] = _png(face)
    matplotlib = _package_dir("matplotlib")
    if matplotlib is not None:
        sample = matplotlib / "mpl-data" / "sample_data"
        for name in ("grace_hopper.jpg", "Minduka_Present_Blue_Pack.png"):
            if (sample / name).is_file():
                found[f"matplotlib/{name}"] = (sample / name).read_bytes()
    return found


def _wheel(rng: random.Random, size: int) -> np.ndarray:
    y, x = np.mgrid[-1 : 1 : size * 1j, -1 : 1 : size * 1j]
    radius = np.hypot(x, y)
    hue = (np.arctan2(y, x) / (2 * np.pi) + rng.random()) % 1
    fade = rng.choice([0.0, 0.3, 0.6])
    value = np.clip(1 + fade * 0.6 - radius * fade, 0, 1)
    pixels = np.stack(np.vectorize(colorsys.hsv_to_rgb)(hue, np.clip(radius, 0, 1), value), axis=-1)
    pixels = (pixels * 255).astype(np.uint8)
    pixels[radius > 1] = rng.choice([(0, 0, 0), (255, 255, 255), (128, 128, 128)])
    return pixels


def _hue_gradient(rng: random.Random, size: int) -> np.ndarray:
    row = np.array(
        [colorsys.hsv_to_rgb((t + rng.random()) % 1, 1, 1) for t in np.linspace(0, 1, size)]
    )
    pixels = np.tile(row[None], (size * 3 // 4, 1, 1))
    return (pixels.transpose(1, 0, 2) if rng.random() < 0.5 else pixels) * 255


def _bars(rng: random.Random, size: int) -> np.ndarray:
    colours = [(192, 192, 192), (192, 192, 0), (0, 192, 192), (0, 192, 0), (192, 0, 192),
               (192, 0, 0), (0, 0, 192)]  # fmt: skip
    rng.shuffle(colours)
    width = size // len(colours)
    return np.concatenate([np.full((size * 3 // 4, width, 3), c) for c in colours], axis=1)


_CHECKER = [(115, 82, 68), (194, 150, 130), (98, 122, 157), (87, 108, 67), (133, 128, 177),
            (103, 189, 170), (214, 126, 44), (80, 91, 166), (193, 90, 99), (94, 60, 108),
            (157, 188, 64), (224, 163, 46), (56, 61, 150), (70, 148, 73), (175, 54, 60),
            (231, 199, 31), (187, 86, 149), (8, 133, 161), (243, 243, 242), (200, 200, 200),
            (160, 160, 160), (122, 122, 121), (85, 85, 85), (52, 52, 52)]  # fmt: skip


def _colour_checker(rng: random.Random, size: int) -> np.ndarray:
    picture = Image.new("RGB", (size, size * 2 // 3), (20, 20, 20))
    draw = ImageDraw.Draw(picture)
    step_x, step_y = size // 6, size * 2 // 3 // 4
    for index, colour in enumerate(_CHECKER):
        x, y = index % 6, index // 6
        gap = rng.randint(2, 8)
        draw.rectangle(
            [x * step_x + gap, y * step_y + gap, (x + 1) * step_x - gap, (y + 1) * step_y - gap],
            fill=colour,
        )
    return np.asarray(picture)


def _checkerboard(rng: random.Random, size: int) -> np.ndarray:
    squares = rng.choice([2, 4, 8, 16])
    one, two = (tuple(rng.randrange(256) for _ in range(3)) for _ in range(2))
    index = (np.indices((size, size)) // max(1, size // squares)).sum(axis=0) % 2
    return np.where(index[..., None] == 0, np.array(one), np.array(two))


def _noise(rng: random.Random, size: int) -> np.ndarray:
    generator = np.random.default_rng(rng.randrange(2**32))
    return generator.integers(0, 256, (size, size, 3))


_SKIN_TONED = [(196, 140, 80), (220, 195, 150), (160, 105, 60), (225, 175, 145), (190, 100, 70),
               (240, 160, 110), (235, 175, 120), (245, 140, 30), (205, 133, 63)]  # fmt: skip


def _texture(rng: random.Random, size: int) -> np.ndarray:
    """Bread, sand, wood, terracotta: a skin tone with grain, and stripes for wood."""
    generator = np.random.default_rng(rng.randrange(2**32))
    base = np.array(rng.choice(_SKIN_TONED), float)
    pixels = base + generator.normal(0, rng.uniform(5, 30), (size, size, 1))
    if rng.random() < 0.5:
        y, x = np.mgrid[0:size, 0:size]
        pixels += (np.sin(x / rng.uniform(3, 9) + np.sin(y / 37) * 3) * 30)[..., None]
    picture = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    return np.asarray(picture.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 3))))


def _fruit(rng: random.Random, size: int) -> np.ndarray:
    """Peaches, apricots, oranges: shaded skin-toned discs on a tablecloth."""
    pixels = np.full(
        (size, size, 3), rng.choice([(235, 230, 220), (250, 250, 250), (60, 90, 60)]), float
    )
    y, x = np.mgrid[0:size, 0:size]
    base = np.array(rng.choice(_SKIN_TONED), float)
    for _ in range(rng.randint(1, 8)):
        cx, cy = rng.uniform(0.15, 0.85) * size, rng.uniform(0.15, 0.85) * size
        radius = rng.uniform(0.1, 0.3) * size
        inside = np.hypot(x - cx, y - cy) < radius
        shade = np.clip(
            1.15 - 0.5 * np.hypot(x - cx + radius / 3, y - cy + radius / 3) / radius, 0.5, 1.2
        )
        pixels[inside] = base[None] * shade[inside][:, None]
    clipped: np.ndarray = np.clip(pixels, 0, 255)
    return clipped


def _radial(rng: random.Random, size: int) -> np.ndarray:
    inner, outer = (np.array([rng.randrange(256) for _ in range(3)], float) for _ in range(2))
    y, x = np.mgrid[-1 : 1 : size * 1j, -1 : 1 : size * 1j]
    t = np.clip(np.hypot(x, y) / 1.42, 0, 1)[..., None]
    blend: np.ndarray = inner * (1 - t) + outer * t
    return blend


_KINDS: tuple[Callable[[random.Random, int], np.ndarray], ...] = (
    _wheel, _hue_gradient, _bars, _colour_checker, _checkerboard, _noise, _texture, _fruit, _radial,
)  # fmt: skip


def lookalike(seed: int) -> Image.Image:
    """Draw the look-alike for *seed*: its kind is chosen by the seed, one in four in grey."""
    rng = random.Random(seed)
    kind = _KINDS[seed % len(_KINDS)]
    pixels = np.clip(kind(rng, rng.choice([160, 256, 384, 448])), 0, 255).astype(np.uint8)
    picture = Image.fromarray(pixels)
    return picture.convert("L").convert("RGB") if rng.random() < 0.25 else picture


# -- Recolourings: what an adversary does to a picture's colours (issue 12, red team 1) -------


def shaded_body(seed: int) -> np.ndarray:
    """Draw rounded skin-toned shapes a body-part detector takes for exposed parts.

    Two to four shaded ellipses side by side (a pair of buttocks, a torso's curves) in a
    skin tone, on a plain background: the detector fires on them, and its colour is what a
    recolouring then changes.
    """
    rng = random.Random(seed)
    size = rng.choice([256, 320, 400])
    pixels = np.full(
        (size, size, 3), rng.choice([(200, 200, 200), (240, 236, 230), (40, 40, 48)]), float
    )
    y, x = np.mgrid[0:size, 0:size]
    skin = np.array(rng.choice(_SKIN_TONES), float)
    count = rng.randint(2, 4)
    for i in range(count):
        cx = size * (i + 1) / (count + 1) + rng.uniform(-0.04, 0.04) * size
        cy = size * rng.uniform(0.4, 0.6)
        rx, ry = size * rng.uniform(0.16, 0.26), size * rng.uniform(0.2, 0.3)
        d2 = ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2
        inside = d2 < 1
        depth = np.sqrt(np.clip(1 - d2, 0, 1))
        pixels[inside] = skin[None] * (0.45 + 0.55 * depth[inside])[:, None]
    contrast = rng.uniform(1.0, 1.8)
    return np.clip((pixels - 128) * contrast + 150, 0, 255).astype(np.uint8)


#: Skin tones, light to dark.
_SKIN_TONES = [(232, 190, 160), (224, 172, 135), (198, 134, 96), (141, 85, 54), (92, 56, 38)]


def _hsv_shift(pixels: np.ndarray, shift: np.ndarray | float) -> np.ndarray:
    """Rotate every pixel's hue by *shift* (a fraction of the wheel, or one per pixel)."""
    hsv = np.asarray(Image.fromarray(pixels).convert("HSV")).copy()
    hue = (hsv[..., 0].astype(float) + np.asarray(shift) * 256) % 256
    hsv[..., 0] = hue.astype(np.uint8)
    return np.asarray(Image.fromarray(hsv, "HSV").convert("RGB"))


def recolour(pixels: np.ndarray, how: tuple[str, float, float]) -> np.ndarray:
    """Recolour an RGB *pixels* array without changing its shapes or shading.

    *how* is ``(kind, a, b)`` with *a* and *b* in 0-1:

    - ``"permute"``: one of the six orders of the channels (``a`` picks it);
    - ``"hue"``: every hue rotated by ``a`` of the wheel;
    - ``"rainbow"``: hues rotated by an amount that grows across the picture (``a`` turns
      over its width, ``b`` over its height): a multi-hue picture no single rotation undoes;
    - ``"invert"``: the negative, then rotated by ``a`` of the wheel;
    - ``"duotone"``: brightness mapped between two colours of hues ``a`` and ``b``.
    """
    kind, a, b = how
    rgb = np.ascontiguousarray(pixels[..., :3])
    if kind == "permute":
        orders = [(0, 1, 2), (0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0)]
        return np.ascontiguousarray(rgb[..., list(orders[int(a * 6) % 6])])
    if kind == "hue":
        return _hsv_shift(rgb, a)
    if kind == "rainbow":
        height, width = rgb.shape[:2]
        y, x = np.mgrid[0:height, 0:width]
        return _hsv_shift(rgb, (a * x / width + b * y / height) % 1.0)
    if kind == "invert":
        return _hsv_shift((255 - rgb).astype(np.uint8), a)
    if kind == "duotone":
        light = np.asarray(Image.fromarray(rgb).convert("L"), float)[..., None] / 255
        dark_colour = np.array(colorsys.hsv_to_rgb(a, 0.8, 0.25)) * 255
        light_colour = np.array(colorsys.hsv_to_rgb(b, 0.6, 1.0)) * 255
        toned: np.ndarray = np.clip(dark_colour + light * (light_colour - dark_colour), 0, 255)
        return toned.astype(np.uint8)
    raise ValueError(f"no recolouring called {kind!r}")


#: The kinds :func:`recolour` knows.
RECOLOURINGS = ("permute", "hue", "rainbow", "invert", "duotone")
