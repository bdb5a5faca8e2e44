"""No content in any log, at any level: what images carry never reaches a log record."""

from __future__ import annotations

import contextlib
import io
import logging
import subprocess
import sys
from collections.abc import Callable, Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, PngImagePlugin

from safegen import ImageModerator, InvalidImageError, ModerationPolicy, Preflight, redact
from safegen._logs import hush
from safegen.local import OpenNSFW


class _Everything(logging.Handler):
    """Keep every record of every logger, whatever its level."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def text(self) -> str:
        return "\n".join(f"{r.name} {r.getMessage()} {r.args!r}" for r in self.records)


@pytest.fixture
def everything() -> Iterator[_Everything]:
    """The root logger at DEBUG with a handler that keeps every record."""
    handler, root = _Everything(), logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def _jpeg(marker: str) -> bytes:
    exif = Image.Exif()
    exif[0x013B] = marker  # Artist
    exif[0x010E] = marker  # ImageDescription
    out = io.BytesIO()
    Image.new("RGB", (96, 96), (120, 90, 60)).save(out, "JPEG", exif=exif.tobytes())
    return out.getvalue()


def _png(marker: str) -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", marker)
    info.add_itxt("Description", marker)
    exif = Image.Exif()
    exif[0x013B] = marker
    out = io.BytesIO()
    Image.new("RGBA", (96, 96), (10, 200, 30, 255)).save(
        out, "PNG", pnginfo=info, exif=exif.tobytes()
    )
    return out.getvalue()


def _tiff(marker: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (96, 96), (1, 2, 3)).save(out, "TIFF", description=marker, artist=marker)
    return out.getvalue()


ENCODINGS: list[Callable[[str], bytes]] = [_jpeg, _png, _tiff]
MODEL = ImageModerator(OpenNSFW(), ModerationPolicy(not_evaluated="allow"))
READERS: list[Callable[[bytes], object]] = [
    Preflight().check,
    Preflight(repair=True).check,
    redact,
    MODEL.moderate,
]


@settings(max_examples=30, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    marker=st.text(alphabet="ABCDEFGHJKLMNPQRSTUVWXYZ", min_size=10, max_size=24),
    encode=st.sampled_from(ENCODINGS),
    read=st.sampled_from(READERS),
)
def test_image_metadata_never_reaches_a_log(
    everything: _Everything,
    marker: str,
    encode: Callable[[str], bytes],
    read: Callable[[bytes], object],
) -> None:
    """EXIF, TIFF and PNG text values read while checking a picture are never logged."""
    data = encode(marker)  # the test's own Pillow call may log: only safegen's reading counts
    everything.records.clear()
    with contextlib.suppress(InvalidImageError):  # refusing it is fine; logging what it says is not
        read(data)
    assert marker not in everything.text()


def test_a_level_set_lower_later_still_lets_nothing_through(everything: _Everything) -> None:
    """The filter holds even when someone lowers a hushed logger's level afterwards."""
    hush(["safegen-test-lib"], ["safegen-test-lib.wire"])
    wire = logging.getLogger("safegen-test-lib.wire")
    wire.setLevel(logging.DEBUG)
    wire.debug("body SECRET")
    wire.warning("a warning stays")
    assert "SECRET" not in everything.text()
    assert "a warning stays" in everything.text()


def test_a_library_warning_is_not_printed_unless_the_application_logs() -> None:
    """Without logging configured, a safegen warning stays off standard error (no last resort)."""
    script = (
        "import logging, safegen\n"
        "logging.getLogger('safegen.image').warning('image backend failed')\n"
        "logging.getLogger('elsewhere').warning('shown')\n"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert run.stderr == "shown\n"
