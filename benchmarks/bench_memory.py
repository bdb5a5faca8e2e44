"""Peak memory of preflight, redaction and the offline models on adversarial headers.

Run: ``.venv/bin/python benchmarks/bench_memory.py`` (from the repository's root)

Each input is written to a file first; each case runs in a fresh process that reads it and
loads what it needs, then reads its resident memory before the call and its peak after it
(Linux's VmHWM, reset just before the call): the figure is how much the call raised the
peak. The baseline is the same call on a plain 1024x1024 RGB PNG (noise), measured in the
same run; each case is printed as MB and as a ratio to it. The budget is
512 MB for any input under the size limits (``safegen._pillow.MEMORY_BUDGET``).
"""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import tempfile
import textwrap
import zlib
from collections.abc import Callable
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' picture builders
from tests.test_fuzz_images import flat_jpeg, transparent_palette

_CASE = textwrap.dedent(
    """
    import sys
    from PIL import Image
    Image.MAX_IMAGE_PIXELS = None  # measure safegen's own guard, not Pillow's warning
    from safegen import InvalidImageError
    from safegen.local import _picture
    from safegen.preflight import Preflight
    from safegen.redaction import redact

    path, entry = sys.argv[1], sys.argv[2]
    with open(path, "rb") as f:
        data = f.read()
    run = {
        "check": lambda: Preflight().check(data),
        "preflight": lambda: Preflight(repair=True).check(data),
        "redact": lambda: redact(data),
        "models": lambda: _picture.views(data),
    }[entry]
    def status(key):
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith(key))
    before = status("VmRSS:")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # the peak (VmHWM) starts again from here
    try:
        run()
        outcome = "ok"
    except InvalidImageError as error:
        outcome = f"refused ({error.limit})"
    print(status("VmHWM:") - before, outcome)
    """
)


def _encoded(image: Image.Image, fmt: str = "PNG", **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def _forged(width: int, height: int) -> bytes:
    """Return a 1x1 PNG whose header declares another size (checksum kept valid)."""
    raw = bytearray(_encoded(Image.new("RGB", (1, 1))))
    raw[16:24] = struct.pack(">II", width, height)
    raw[29:33] = struct.pack(">I", zlib.crc32(bytes(raw[12:29])))
    return bytes(raw)


INPUTS: dict[str, Callable[[], bytes]] = {
    "baseline 1024x1024 PNG": lambda: _encoded(Image.effect_noise((1024, 1024), 50)),
    "PNG declaring 60000x60000": lambda: _forged(60_000, 60_000),
    "PNG declaring 9000x9000": lambda: _forged(9_000, 9_000),
    "1-bit PNG 9000x9000, tiny file": lambda: _encoded(Image.new("1", (9_000, 9_000))),
    "RGBA PNG 4000x4000, half transparent": lambda: _encoded(
        Image.new("RGBA", (4_000, 4_000), (200, 10, 10, 128))
    ),
    "RGB PNG 5000x5000": lambda: _encoded(Image.new("RGB", (5_000, 5_000), "white")),
    "RGB PNG 7000x7000": lambda: _encoded(Image.new("RGB", (7_000, 7_000), "white")),
    "progressive JPEG 8000x8000": lambda: _encoded(
        Image.new("RGB", (8_000, 8_000), "white"), "JPEG", progressive=True
    ),
    "JPEG 6000x6000": lambda: _encoded(Image.new("RGB", (6_000, 6_000), "white"), "JPEG"),
    "16-bit PNG 5000x5000": lambda: _encoded(Image.new("I;16", (5_000, 5_000), 30_000)),
    # libjpeg buffers every coefficient of a JPEG in several scans, whatever the draft scale
    "JPEG 9400x9400, a scan per component": lambda: flat_jpeg(9_400, 9_400, 3, interleaved=False),
    "JPEG 9200x9200, a scan per component": lambda: flat_jpeg(9_200, 9_200, 3, interleaved=False),
    "CMYK JPEG 9400x9400, scan per component": lambda: flat_jpeg(
        9_400, 9_400, 4, interleaved=False
    ),
    "CMYK JPEG 7000x7000, scan per component": lambda: flat_jpeg(
        7_000, 7_000, 4, interleaved=False
    ),
    "JPEG 12000x7000 (over max_side)": lambda: flat_jpeg(12_000, 7_000, 3, interleaved=True),
    "transparent palette PNG 5050x5050": lambda: transparent_palette(5_050),
    "RGBA PNG 5000x7000, half transparent": lambda: _encoded(
        Image.new("RGBA", (5_000, 7_000), (200, 10, 10, 128))
    ),
}
ENTRIES = ("check", "preflight", "redact", "models")
BASELINE = "baseline 1024x1024 PNG"


def measure(path: Path, entry: str) -> tuple[float, str]:
    """Return how many MB the call on the file at *path* raised the peak, and its outcome."""
    done = subprocess.run(
        [sys.executable, "-c", _CASE, str(path), entry], capture_output=True, text=True, check=True
    )
    kib, outcome = done.stdout.split(maxsplit=1)
    return int(kib) / 1024, outcome.strip()


def main() -> None:
    """Print the peak-memory table."""
    print(f"{'input':40} {'entry':10} {'peak +MB':>9} {'x base':>7}  outcome")
    worst = 0.0
    with tempfile.TemporaryDirectory() as folder:
        subprocess.run([sys.executable, __file__, "--write", folder], check=True)
        paths = {name: Path(folder) / f"{number}.img" for number, name in enumerate(INPUTS)}
        for entry in ENTRIES:
            base, _ = measure(paths[BASELINE], entry)
            print(f"{BASELINE:40} {entry:10} {base:9.1f} {1.0:7.1f}  baseline")
            for name, path in paths.items():
                if name == BASELINE:
                    continue
                grown, outcome = measure(path, entry)
                worst = max(worst, grown)
                ratio = grown / max(base, 1.0)  # a baseline under 1 MB is noise
                print(f"{name:40} {entry:10} {grown:9.1f} {ratio:7.1f}  {outcome}")
    print(f"\nworst peak growth: {worst:.0f} MB (budget 512 MB)")


def write(folder: str) -> None:
    """Write every input to *folder*, numbered in the order of :data:`INPUTS`."""
    for number, build in enumerate(INPUTS.values()):
        (Path(folder) / f"{number}.img").write_bytes(build())


if __name__ == "__main__":
    if sys.argv[1:2] == ["--write"]:
        write(sys.argv[2])
    else:
        main()
