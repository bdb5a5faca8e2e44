"""Standard output as the commands use it: each line flushed, each failure named as writing.

A line is flushed as soon as it is written, so whoever reads the output (``| head -1``) has
it at once and a closed pipe shows at the next line, not at the end of a long run. A write
that fails for any other reason (a full disk, an I/O error, a standard output that was
closed before the command started) is an :class:`OutputError`: "cannot write the output",
never mistaken for a file that could not be read.
"""

from __future__ import annotations

import io
import os
import select
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO, cast

__all__ = ["OutputError", "check_reader", "line_flushed"]


class OutputError(Exception):
    """Standard output cannot be written; the message says why (``strerror``)."""


class _LineFlushed(io.TextIOBase):
    """A text stream that flushes every line written through it, naming write failures."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__()
        self.stream = stream

    def write(self, text: str) -> int:
        try:
            written = self.stream.write(text)
            if "\n" in text:
                self.stream.flush()
        except BrokenPipeError:
            raise
        except OSError as error:
            raise OutputError(error.strerror or str(error)) from None
        except ValueError:  # "I/O operation on closed file"
            raise OutputError("standard output is closed") from None
        return written

    def flush(self) -> None:
        try:
            self.stream.flush()
        except BrokenPipeError:
            raise
        except OSError as error:
            raise OutputError(error.strerror or str(error)) from None
        except ValueError:
            raise OutputError("standard output is closed") from None

    def fileno(self) -> int:
        return self.stream.fileno()

    def isatty(self) -> bool:
        return self.stream.isatty()

    def writable(self) -> bool:
        return True


@contextmanager
def line_flushed() -> Iterator[None]:
    """Route ``sys.stdout`` through a line-flushing, failure-naming stream for the block.

    :raises OutputError: standard output is missing (closed before the command started).
    """
    real = sys.stdout
    if real is None:  # Python sets it to None when descriptor 1 is closed at start-up
        raise OutputError("standard output is closed")
    sys.stdout = cast(TextIO, _LineFlushed(real))
    try:
        yield
    finally:
        sys.stdout = real


def check_reader() -> None:
    """Raise :class:`BrokenPipeError` if standard output is a pipe nobody reads any more.

    Asks without writing (``poll``: a pipe whose reading end is closed reports an error), so
    a command that writes nothing for a long while (a scan writes its summary at the end)
    stops as soon as its reader has gone. Does nothing where that cannot be asked.

    :raises BrokenPipeError: the pipe's reading end is closed.
    """
    try:
        fd = sys.stdout.fileno()
        poller = select.poll()
    except (AttributeError, OSError, ValueError):  # not a file (tests), or no poll
        return
    poller.register(fd, select.POLLOUT)
    for _, events in poller.poll(0):
        if events & select.POLLERR:
            raise BrokenPipeError(32, os.strerror(32))
