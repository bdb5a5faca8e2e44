"""Splitting text into pieces a service accepts, on word boundaries where possible."""

from __future__ import annotations

import re

__all__ = ["split"]

_TOKEN = re.compile(r"\S+\s*|\s+")


def split(text: str, *, max_bytes: int, max_chars: int | None = None) -> list[tuple[int, int]]:
    """Cut *text* into consecutive ``(start, end)`` slices within both limits.

    Slices end after whitespace where they can; a word longer than a slice is cut inside it.
    Bytes are counted in UTF-8 (a lone surrogate counts as the 3 bytes of its replacement).
    Together the slices cover *text* exactly, in order.

    >>> text = "one two three four"
    >>> [text[a:b] for a, b in split(text, max_bytes=9)]
    ['one two ', 'three ', 'four']
    """
    if max_bytes < 4:
        raise ValueError("max_bytes must leave room for any one character (4 bytes)")
    limit_chars = max_chars if max_chars is not None else len(text)
    slices: list[tuple[int, int]] = []
    start = size = 0
    position = 0
    for token in _TOKEN.finditer(text):
        piece = token.group()
        piece_bytes = _utf8_length(piece)
        chars = position - start
        if size + piece_bytes <= max_bytes and chars + len(piece) <= limit_chars:
            size += piece_bytes
            position = token.end()
            continue
        if position > start:  # close the slice before this token
            slices.append((start, position))
            start, size = position, 0
        # The token alone may still be too long: cut it by characters.
        for char in piece:
            char_bytes = _utf8_length(char)
            if size + char_bytes > max_bytes or position - start + 1 > limit_chars:
                slices.append((start, position))
                start, size = position, 0
            size += char_bytes
            position += 1
    if position > start:
        slices.append((start, position))
    return slices


def _utf8_length(text: str) -> int:
    return len(text.encode("utf-8", "replace"))
