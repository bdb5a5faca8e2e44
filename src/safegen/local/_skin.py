"""How much of a detection's box is coloured like skin: the evidence an exposed part needs.

A body-part detector sees shapes and shading. A colour wheel, a hue gradient or a set of
colour bars has the smooth, rounded shading of a body and none of its colours: NudeNet
scores a colour chart 83 as exposed buttocks. Every exposed part is skin, so a detection
whose box is mostly coloured in hues no skin has (saturated greens, blues, purples) has
no evidence behind it.

Only colour that says something counts: near-grey pixels (black and white photographs,
sepia, shadows, highlights) are no evidence either way, and a box with too few coloured
pixels keeps its full score. A uniform colour cast (a blue filter over a whole picture)
does not hide skin: the box is also judged after a grey-world white balance of the whole
picture, and the more skin-like of the two readings counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

#: Chroma (max - min of R, G, B, 0-255) below which a pixel is grey: no colour evidence.
GREY_CHROMA = 25
#: Brightness (max of R, G, B) below which a pixel is too dark to show its colour.
DARK = 50
#: The share of a box that must be coloured for its colours to count as evidence.
COLOURED_SHARE = 0.25
#: Skin in YCbCr (ITU-R BT.601), widened from Chai and Ngan's 133-173 and 77-127 so that
#: very light, very dark and warmly lit skin all count.
CR_RANGE = (133.0, 180.0)
CB_RANGE = (70.0, 130.0)
#: The longest side the colours are read at: NudeNet itself looks at 320x320.
READ_AT = 320


def evidence(pixels: Any, box: Sequence[float]) -> float:
    """Return how skin-like the coloured pixels of *box* are, 0-1 (1: no colour evidence).

    :param pixels: the picture the detector saw, an ``(height, width, 3+)`` uint8 array
        (RGB first; any alpha is ignored).
    :param box: ``[x, y, w, h]`` in pixels, clipped to the picture.
    """
    import numpy as np

    full = np.asarray(pixels)
    step = max(1, -(-max(full.shape[:2]) // READ_AT))  # every step-th pixel: bounded work
    picture = full[::step, ::step, :3].astype(np.float32)
    height, width = picture.shape[:2]
    x, y, w, h = (int(v) // step for v in box)
    left, top = min(max(x, 0), width), min(max(y, 0), height)
    right, bottom = min(max(left + max(w, 1), left), width), min(max(top + max(h, 1), top), height)
    if right <= left or bottom <= top:
        return 1.0
    means = picture.reshape(-1, 3).mean(axis=0)
    balanced = picture * (float(means.mean()) / np.maximum(means, 1.0))
    readings = []
    for seen in (picture, balanced):
        coloured, skin = _counts(np.clip(seen[top:bottom, left:right], 0, 255))
        if coloured < COLOURED_SHARE * (right - left) * (bottom - top):
            return 1.0  # too little colour to say anything: the detector's word stands
        readings.append(skin / coloured)
    return max(readings)


def _counts(box: Any) -> tuple[int, int]:
    import numpy as np

    red, green, blue = box[..., 0], box[..., 1], box[..., 2]
    brightest, darkest = box.max(axis=-1), box.min(axis=-1)
    coloured = (brightest - darkest >= GREY_CHROMA) & (brightest >= DARK)
    cr = 128 + 0.5 * red - 0.418688 * green - 0.081312 * blue
    cb = 128 - 0.168736 * red - 0.331264 * green + 0.5 * blue
    skin = (
        coloured
        & (cr >= CR_RANGE[0])
        & (cr <= CR_RANGE[1])
        & (cb >= CB_RANGE[0])
        & (cb <= CB_RANGE[1])
    )
    return int(np.count_nonzero(coloured)), int(np.count_nonzero(skin))
