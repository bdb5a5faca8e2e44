"""The review store's contract on the embedded backend (a directory and SQLite)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from safegen.review import BlobStore, StateStore
from safegen.review.embedded import DirectoryBlobs, SQLiteState
from tests.review_contract import ReviewContract


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
