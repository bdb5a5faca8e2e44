"""Keep third-party libraries from logging content: no bodies, pixels, metadata or credentials.

Libraries under safegen log at DEBUG what safegen must never log at any level: botocore the
requests, responses and signed headers it sends; Pillow the values of image metadata (EXIF
artist, GPS, descriptions) it reads. :func:`hush` holds such a library's loggers at WARNING,
and filters the loggers known to carry content, so that a level set on them later still lets
nothing through below WARNING.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

__all__ = ["hush"]


class _BelowWarning(logging.Filter):
    """Drop every record under WARNING."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING


_FILTER = _BelowWarning()


def hush(roots: Iterable[str], content_loggers: Iterable[str] = ()) -> None:
    """Hold the loggers under *roots* at WARNING; filter *content_loggers* and existing children.

    The roots are set to WARNING (their children inherit it); a child already created with
    a lower level is raised to WARNING. Every logger named, and every existing child of a
    root, gets a filter that drops records below WARNING. Idempotent.
    """
    roots = tuple(roots)
    names = {*roots, *content_loggers}
    names.update(n for n in logging.root.manager.loggerDict if n.split(".", 1)[0] in roots)
    for name in sorted(names):
        logger = logging.getLogger(name)
        # The roots get WARNING; a child only when someone set it lower (NOTSET inherits).
        explicit = name in roots or logger.level != logging.NOTSET
        if explicit and logger.level < logging.WARNING:
            logger.setLevel(logging.WARNING)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
