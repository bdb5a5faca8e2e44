"""The audit trail: appends per second, and verifying a million entries in bounded memory.

Run: ``.venv/bin/python benchmarks/bench_audit.py [--entries N] [--appends N]``
(from the repository's root; about 40 s with the defaults, more on a busy machine).

Appends: *--appends* entries through :class:`~safegen.review.audit.AuditTrail` on SQLite and
on JSON Lines, each durable before it returns (fsync; SQLite's synchronous=FULL). Baseline,
measured in the same run: the same lines appended to a plain file with one ``os.write`` and
one ``os.fsync`` each, the floor any durable log pays. Printed: appends/s and the ratio of
time per append to the baseline's.

Verification: a JSON Lines trail of *--entries* entries (1,000,000 by default, about 400 MB)
is written directly (not through ``append``), then verified in a fresh process, which prints
its time, its CPU time, how much its peak resident memory rose (Linux's VmHWM, reset just
before) and that peak.
Baseline, in the same kind of process: the same file read line by line through
``hashlib.sha256``, the least any verification of a hash chain does. Printed: both, and the
ratios. Memory that does not grow with the file is the point: the peak is also printed as a
fraction of the file's size.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from safegen.review.audit import GENESIS, AuditTrail
from safegen.review.events import VerdictSummary

VERDICT = VerdictSummary(
    action="block",
    labels=[("Explicit Nudity", 97.5), ("Nudity", 88.25)],
    model_version="7.0",
    backend="rekognition",
    policy_version="2026-11-29",
    policy_sha256="ab" * 32,
)
_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)

_MEASURE = textwrap.dedent(
    """
    import hashlib, sys, time
    path, what, anchor = sys.argv[1], sys.argv[2], sys.argv[3]
    def status(key):
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith(key))
    if what == "verify":
        from safegen.review.audit import AuditTrail
        trail = AuditTrail.jsonl(path)
    before = status("VmRSS:")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # the peak (VmHWM) starts again from here
    started, cpu = time.perf_counter(), time.process_time()
    if what == "verify":
        report = trail.verify(anchor=anchor)
        outcome = f"ok={report.ok} entries={report.entries}"
    else:
        count = 0
        with open(path, "rb") as f:
            for line in f:
                hashlib.sha256(line).digest()
                count += 1
        outcome = f"entries={count}"
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    peak = status("VmHWM:")
    print(elapsed, cpu, peak - before, peak, outcome)
    """
)


def write_chain(path: Path, n: int) -> str:
    """Write a valid chain of *n* entries as JSON Lines, quickly; return the head's hash.

    The lines are what :meth:`AuditEntry.to_json` writes, built from a template (verification
    checks that they are): canonical JSON, ``hash`` between ``event`` and ``key`` as sorted.
    """
    verdict = _ENCODER.encode(
        {
            "action": VERDICT.action,
            "adapter_version": None,
            "backend": VERDICT.backend,
            "error": None,
            "labels": [list(pair) for pair in VERDICT.labels],
            "model_version": VERDICT.model_version,
            "policy_sha256": VERDICT.policy_sha256,
            "policy_version": VERDICT.policy_version,
        }
    )
    reason = _ENCODER.encode("a painting, not a photograph")
    prev = GENESIS
    with path.open("w", encoding="utf-8", buffering=1 << 20) as out:
        for seq in range(n):
            upload = seq % 2 == 0
            actor, event = ("moderation", "upload") if upload else ("reviewer-7", "approve")
            head = f'{{"actor":"{actor}","at":"2026-11-29T12:00:00.000000Z","event":"{event}",'
            tail = (
                f'"key":"uploads/2026/11/{seq:09d}.png","prev":"{prev}",'
                f'"reason":{"null" if upload else reason},"seq":{seq},'
                f'"verdict":{verdict if upload else "null"}}}'
            )
            prev = hashlib.sha256((head + tail).encode("utf-8")).hexdigest()
            out.write(f'{head}"hash":"{prev}",{tail}\n')
    return prev


def measure(path: Path, what: str, anchor: str) -> tuple[float, float, float, float, str]:
    """Run one measurement in a fresh process: seconds, CPU seconds, peak rise and peak (MB)."""
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(path), what, anchor],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")},
    )
    seconds, cpu, rise, peak, outcome = done.stdout.split(maxsplit=4)
    return float(seconds), float(cpu), int(rise) / 1024, int(peak) / 1024, outcome.strip()


def appends(directory: Path, n: int) -> None:
    """Print appends/s on SQLite and JSON Lines against fsync'd raw writes of the same lines."""
    sample = AuditTrail.jsonl(directory / "sample.jsonl")
    for i in range(n):
        sample.append("upload", key=f"k{i}", actor="moderation", verdict=VERDICT)
    lines = (directory / "sample.jsonl").read_bytes().splitlines(keepends=True)
    fd = os.open(directory / "raw.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    started = time.perf_counter()
    for line in lines:
        os.write(fd, line)
        os.fsync(fd)
    baseline = (time.perf_counter() - started) / n
    os.close(fd)
    print(f"appends ({n} each; baseline: os.write + os.fsync of the same line)")
    print(f"  {'baseline (raw fsync)':<24} {1 / baseline:>9,.0f}/s   1.00x the time")
    for name, trail in (
        ("SQLite", AuditTrail.sqlite(directory / "audit.sqlite3")),
        ("JSON Lines", AuditTrail.jsonl(directory / "audit.jsonl")),
    ):
        started = time.perf_counter()
        for i in range(n):
            trail.append("upload", key=f"k{i}", actor="moderation", verdict=VERDICT)
        each = (time.perf_counter() - started) / n
        assert trail.verify().entries == n
        print(f"  {name:<24} {1 / each:>9,.0f}/s   {each / baseline:.2f}x the time")


def verification(directory: Path, n: int) -> None:
    """Print verifying *n* entries in a fresh process against streaming sha256 of the file."""
    path = directory / "million.jsonl"
    started = time.perf_counter()
    head = write_chain(path, n)
    written = time.perf_counter() - started
    size_mb = path.stat().st_size / 1e6
    print(f"\nverification of {n:,} entries ({size_mb:,.0f} MB, written in {written:.1f} s)")
    base_s, base_cpu, base_mb, base_peak, base_out = measure(path, "hash", head)
    verify_s, verify_cpu, verify_mb, verify_peak, verify_out = measure(path, "verify", head)
    if not verify_out.startswith("ok=True") or f"entries={n}" not in verify_out:
        raise SystemExit(f"verification failed: {verify_out}")
    for name, wall, cpu, rise, peak, outcome in (
        ("baseline (sha256 lines)", base_s, base_cpu, base_mb, base_peak, base_out),
        ("AuditTrail.verify", verify_s, verify_cpu, verify_mb, verify_peak, verify_out),
    ):
        print(
            f"  {name:<24} {wall:>6.1f} s ({cpu:.1f} s CPU)  peak +{rise:.2f} MB "
            f"(resident {peak:.1f} MB)  ({outcome})"
        )
    print(
        f"  ratio: {verify_s / base_s:.1f}x the baseline's time ({verify_cpu / base_cpu:.1f}x its "
        f"CPU; {n / verify_cpu:,.0f} entries per CPU second); peak memory +{verify_mb:.2f} MB, "
        f"{verify_mb / size_mb:.4%} of the file"
    )


def main() -> int:
    """Run both parts."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000, help="entries to verify")
    parser.add_argument("--appends", type=int, default=300, help="appends per log")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        directory = Path(name)
        appends(directory, args.appends)
        verification(directory, args.entries)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
