"""Batches under faults: services failing mid-batch, and a process killed at any point.

Whatever happens, once runs have been resumed to the end, every item has exactly one final
record: none lost, none duplicated. Kill points are drawn from a seeded generator, so the
test is the same on every run.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

from safegen import ImageModerator, ModerationPolicy, S3Object
from safegen.aws import RekognitionModerator
from safegen.batch import ClientEngine, Item, Ledger
from safegen.testing import AWSEmulator, Faults

POLICY = ModerationPolicy()


def _finals(where: Path) -> Counter[str]:
    """How many final records each ref has in the ledger at *where*."""
    finals: Counter[str] = Counter()
    for line in where.read_bytes().splitlines(keepends=True):
        if not line.endswith(b"\n"):
            continue  # a torn tail: the next open cuts it away
        data = json.loads(line)
        if data["kind"] == "item" and not (data["outcome"] == "failed" and data["retryable"]):
            finals[data["ref"]] += 1
    return finals


def test_faults_mid_batch_are_retried_on_resume_never_lost_or_doubled(tmp_path: Path) -> None:
    """Throttling, 5xx, dropped connections, garbage mid-batch: resumed, each item once."""
    items = [Item(f"s3://bucket/{i}.png", S3Object("bucket", f"{i}.png")) for i in range(24)]
    fates = ("throttle", "error", "drop", "malformed", "answer", "answer") * 4
    where = tmp_path / "ledger.jsonl"
    with AWSEmulator(seed=3) as aws:
        aws.faults("DetectModerationLabels", Faults(script=fates))
        client = aws.client("rekognition", retries={"mode": "standard", "total_max_attempts": 1})
        engine = ClientEngine(ImageModerator(RekognitionModerator(client), POLICY), workers=2)
        with Ledger.open(where, policy=POLICY, engine="client") as ledger:
            first = engine.run(items, ledger)
        with Ledger.open(where, policy=POLICY, engine="client") as ledger:
            second = engine.run(items, ledger)
    # Throttling, 5xx and dropped connections pass: retried by the next run. A garbled answer
    # carries no service code: it is final (failed, blocked), never taken as an answer.
    assert first.retryable == 12
    assert first.failures["check_failed"] == 4
    assert set(first.failures) <= {
        "ProvisionedThroughputExceededException",
        "InternalServerError",
        "ThrottlingException",
        "ConnectionClosedError",
        "ServiceUnavailableException",
        "check_failed",
    }
    assert second.checked == 12
    assert second.already_done == 12
    assert _finals(where) == Counter({item.ref: 1 for item in items})


_CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from safegen import ImageModerator, ModerationPolicy
    from safegen.batch import ClientEngine, Ledger, LocalLedgerFile, directory_items
    from safegen.reports import ImageReport
    from safegen.testing import FakeImageBackend

    mode, at, root, where = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    calls = {"detect": 0, "write": 0}

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    def respond(image):
        calls["detect"] += 1
        if mode == "detect" and calls["detect"] == at:
            die()
        return ImageReport(labels=(), model_version="7.0")

    class Dying(LocalLedgerFile):
        def write(self, data):
            calls["write"] += 1
            if calls["write"] == at and mode == "torn":
                os.write(self._fd, data[: max(1, len(data) // 2)])
                die()
            super().write(data)
            if calls["write"] == at and mode == "after":
                die()

    policy = ModerationPolicy()
    engine = ClientEngine(ImageModerator(FakeImageBackend(respond=respond), policy), workers=3)
    with Ledger.open(Dying(where), policy=policy, engine="client") as ledger:
        engine.run(directory_items(root), ledger)
    """
)


def test_a_run_killed_at_random_points_and_resumed_loses_and_doubles_nothing(
    tmp_path: Path,
) -> None:
    """SIGKILL mid-check, mid-write (torn line) or after a write, many times: 0 lost, 0 doubled."""
    root = tmp_path / "images"
    root.mkdir()
    for index in range(40):
        (root / f"{index:02d}.png").write_bytes(b"png %d" % index)
    where = tmp_path / "ledger.jsonl"
    draw = random.Random(13)
    kills = 0
    for _ in range(40):
        mode = draw.choice(["detect", "torn", "after"])
        at = draw.randint(1, 8)
        done = subprocess.run(
            [sys.executable, "-c", _CHILD, mode, str(at), str(root), str(where)],
            capture_output=True,
            check=False,
            timeout=120,
        )
        assert done.returncode in (0, -signal.SIGKILL), done.stderr.decode()[-2000:]
        if done.returncode == 0:
            break
        kills += 1
    assert kills >= 5  # the test did kill it, repeatedly
    assert done.returncode == 0
    finals = _finals(where)
    assert set(finals) == {str(path.resolve()) for path in root.iterdir()}
    assert set(finals.values()) == {1}
