"""Reading numbers and showing values safely: the leaf every validator stands on.

Every numeric setting and field is read through :func:`finite`, so none can raise a bare
``OverflowError`` or ``TypeError``; every value shown in an error message goes through
:func:`show`, which stays short however large or deeply nested the value is.
"""

from __future__ import annotations

import math
import reprlib

__all__ = ["finite", "show"]


class _Show(reprlib.Repr):
    """reprlib's short repr, safe for ints too long to print and for reprs that raise."""

    def repr_int(self, x: int, level: int) -> str:
        if x.bit_length() > 128:  # about 39 digits: more is no use in a message
            sign = "-" if x < 0 else ""
            return f"<{sign}int of about {int(x.bit_length() * 0.30103) + 1} digits>"
        return super().repr_int(x, level)

    def repr1(self, x: object, level: int) -> str:
        try:
            return super().repr1(x, level)
        except Exception:  # a __repr__ that raises says nothing useful anyway
            return f"<{type(x).__name__}>"


_SHOW = _Show()
_SHOW.maxstring = _SHOW.maxother = 60


def show(value: object) -> str:
    """Show a value in an error message: short, and safe however deeply nested or large it is."""
    return _SHOW.repr(value)


def finite(value: object) -> float | None:
    """Return *value* as a float if it is a finite number, else ``None``.

    A number is an ``int`` or a ``float``, never a ``bool`` (``True`` is not 1 in a
    setting); an int too large for a float, NaN and the infinities are not finite numbers.
    Every numeric setting and field is read through this, so none can raise a bare
    ``OverflowError`` or ``TypeError``.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except (OverflowError, TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None
