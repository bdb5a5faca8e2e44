"""The review store's contract on the embedded backend (a directory and SQLite)."""

from __future__ import annotations

import itertools
import random
import signal
import subprocess
import sys
import threading
from pathlib import Path

import attrs
import pytest

from safegen.review import BlobStore, ConflictError, ReviewStore, StateStore
from safegen.review.embedded import DirectoryBlobs, SQLiteState
from tests.review_contract import (
    Faulty,
    MemoryAudit,
    ReviewContract,
    Schedule,
    Stub,
    assert_consistent,
    image,
)


class Embedded:
    """Fresh embedded ports in sub-directories of one temporary directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.counter = itertools.count()

    def fresh(self) -> tuple[BlobStore, StateStore]:
        """New, empty ports."""
        where = self.root / f"store-{next(self.counter)}"
        return DirectoryBlobs.at(where), SQLiteState.at(where / "state.sqlite3")

    def blob_count(self, blobs: BlobStore) -> int:
        """Files in live/ and backup/."""
        assert isinstance(blobs, DirectoryBlobs)
        return sum(
            1 for area in ("live", "backup") for p in (blobs.root / area).rglob("*") if p.is_file()
        )


class TestEmbeddedContract(ReviewContract):
    """The shared contract, on a directory and SQLite."""

    @pytest.fixture
    def backend(self, tmp_path: Path) -> Embedded:
        """Embedded ports under pytest's temporary directory."""
        return Embedded(tmp_path)


# A child process runs a history of changes on a store and kills itself with SIGKILL just
# before its at-th port call: no exception, no cleanup, no finally, as a real crash.
CHILD = """
import os, signal, sys
import attrs
from safegen.review import ReviewStore
from tests.review_contract import Faulty, Schedule, Stub, image
from tests.test_review_embedded import history

class Kill(Schedule):
    def step(self, call):
        if self.calls == self.at:
            os.kill(os.getpid(), signal.SIGKILL)
        self.calls += 1
        return call()

store = ReviewStore.embedded(sys.argv[1], moderator=Stub(), grace=0)
schedule = Kill(at=int(sys.argv[2]))
blobs, state = Faulty(store.blobs, schedule), Faulty(store.state, schedule)
history(attrs.evolve(store, blobs=blobs, state=state))
"""


def history(store: ReviewStore) -> None:
    """Uploads, a restore, a rejection and a removal (what the kill test interrupts)."""
    assert isinstance(store.moderator, Stub)
    store.moderator.action = "block"
    store.put(image(1), key="one.png")
    store.approve("one.png", by="ann")
    store.moderator.action = "allow"
    store.put(image(2), key="two.png")
    store.reject("two.png", by="bob")
    store.reject("one.png", by="bob")
    store.remove("two.png", by="bob")


def test_kill_9_at_random_steps_then_repair(tmp_path: Path) -> None:
    """A process killed with SIGKILL at any port call leaves a store repair() makes consistent."""
    counted = ReviewStore.embedded(tmp_path / "count", moderator=Stub())
    schedule = Schedule()
    history(
        attrs.evolve(
            counted, blobs=Faulty(counted.blobs, schedule), state=Faulty(counted.state, schedule)
        )
    )
    points = sorted(random.Random(15).sample(range(schedule.calls), 10))
    repository = Path(__file__).resolve().parent.parent
    for at in points:
        root = tmp_path / f"kill-{at}"
        child = subprocess.run(
            [sys.executable, "-c", CHILD, str(root), str(at)],
            cwd=repository,
            capture_output=True,
            check=False,
            timeout=120,
        )
        assert child.returncode == -signal.SIGKILL, child.stderr.decode()[-2000:]
        store = ReviewStore.embedded(root, moderator=Stub(), grace=0)
        store.repair()
        assert_consistent(store, Embedded(root), None)
        assert store.repair().clean


def test_reviewers_in_threads_never_both_win(tmp_path: Path) -> None:
    """Racing reviewers each win or get ConflictError; the store ends consistent with its audit."""
    audit = MemoryAudit()
    store = ReviewStore.embedded(tmp_path, moderator=Stub("review"), audit=audit, grace=0)
    keys = [f"k{n}.png" for n in range(3)]
    for n, key in enumerate(keys):
        store.put(image(n), key=key)
    outcomes: list[str] = []

    def reviewer(seed: int) -> None:
        chooser = random.Random(seed)
        for _ in range(15):
            key = chooser.choice(keys)
            decide = store.approve if chooser.random() < 0.5 else store.reject
            try:
                decide(key, by=f"reviewer-{seed}")
                outcomes.append("won")
            except ConflictError:
                outcomes.append("conflict")

    threads = [threading.Thread(target=reviewer, args=(seed,)) for seed in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(outcomes) == 60
    store.repair()
    assert_consistent(store, Embedded(tmp_path), audit)
