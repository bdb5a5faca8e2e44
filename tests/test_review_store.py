"""The review store's own rules, on the embedded backend.

Repair's grace, races with repair, owed effects, integrity, limits, settings and logs.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest

from safegen.errors import ConfigurationError, SafegenError
from safegen.review import (
    Area,
    AssetStatus,
    BlobStore,
    ConflictError,
    IntegrityError,
    ReviewStore,
    StateStore,
)
from safegen.review.ports import Record
from safegen.review.store import MAX_RECORD_BYTES
from tests.review_contract import (
    Crash,
    Faulty,
    Hooks,
    MemoryAudit,
    Schedule,
    Stub,
    assert_consistent,
    image,
    replay,
)
from tests.test_review_embedded import Embedded

T0 = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


@attrs.define
class Clock:
    """A clock the test moves."""

    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now


def embedded(tmp_path: Path, **options: Any) -> tuple[ReviewStore, MemoryAudit, Hooks]:
    """An embedded store with a Stub, an audit list and recording hooks."""
    audit, hooks = MemoryAudit(), Hooks()
    options.setdefault("moderator", Stub())
    store = ReviewStore.embedded(
        tmp_path, audit=audit, notify=hooks.notify, invalidate=hooks.invalidate, **options
    )
    return store, audit, hooks


def crash_move(store: ReviewStore, at: int) -> None:
    """Reject an approved k.png, killed before its at-th port call."""
    schedule = Schedule(at=at)
    faulty = attrs.evolve(
        store, blobs=Faulty(store.blobs, schedule), state=Faulty(store.state, schedule)
    )
    with pytest.raises(Crash):
        faulty.reject("k.png", by="bob")


def test_repair_leaves_young_changes_alone(tmp_path: Path) -> None:
    """An interrupted change younger than the grace is skipped; older, it is finished."""
    clock = Clock()
    store, audit, _ = embedded(tmp_path, grace=60)
    store = attrs.evolve(store, clock=clock)
    store.put(image(1), key="k.png")
    crash_move(store, at=3)  # the intent is written; the copy is not
    assert not store.deliverable("k.png")
    clock.now = T0 + timedelta(seconds=59)
    report = store.repair()
    assert report.skipped == ("k.png",)
    assert not report.clean
    with pytest.raises(ConflictError, match="in progress"):
        store.approve("k.png", by="ann")
    clock.now = T0 + timedelta(seconds=61)
    report = store.repair()
    assert report.rolled_back == ("k.png",)
    assert store.deliverable("k.png")  # the rejection never happened
    assert audit.entries[-1]["event"] == "repair"
    assert audit.entries[-1]["actor"] == "repair"
    assert_consistent(store, Embedded(tmp_path), audit)


def test_writer_that_loses_to_repair_cleans_up(tmp_path: Path) -> None:
    """A repair that rolls back a live writer's move makes the writer fail and clean up."""
    store, audit, _ = embedded(tmp_path)
    store.put(image(1), key="k.png")

    @attrs.define
    class RepairFirst:
        inner: BlobStore

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

        def copy(self, key: str, *, source: Area, target: Area) -> None:
            store.repair(older_than=0)  # nothing copied yet: repair undoes the move
            self.inner.copy(key, source=source, target=target)

    racing = attrs.evolve(store, blobs=RepairFirst(store.blobs))
    with pytest.raises(ConflictError):
        racing.reject("k.png", by="bob")
    assert store.get("k.png").status is AssetStatus.APPROVED
    assert_consistent(store, Embedded(tmp_path), audit)  # the writer's copy is gone


def test_writer_overtaken_by_repair_is_finished_for_it(tmp_path: Path) -> None:
    """A repair that finds a live writer's copy complete finishes the move; the writer yields."""
    store, audit, _ = embedded(tmp_path)
    store.put(image(1), key="k.png")

    @attrs.define
    class RepairFirst:
        inner: StateStore
        armed: bool = True

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

        def update(self, record: Record, *, expected_version: int) -> None:
            if self.armed and record.intent is not None and record.intent.phase == "copied":
                self.armed = False  # the copy is done and verified; a repair runs now
                store.repair(older_than=0)
            self.inner.update(record, expected_version=expected_version)

    racing = attrs.evolve(store, state=RepairFirst(store.state))
    with pytest.raises(ConflictError):
        racing.reject("k.png", by="bob")
    assert store.get("k.png").status is AssetStatus.REJECTED
    assert_consistent(store, Embedded(tmp_path), audit)


def test_repairer_without_audit_keeps_entries_owed(tmp_path: Path) -> None:
    """A repair by a store with no audit trail configured delivers nothing and loses nothing."""
    store, audit, _ = embedded(tmp_path)
    audit.broken = True
    store.put(image(1), key="k.png")
    bare = ReviewStore.embedded(tmp_path)
    assert bare.repair().owed == ("k.png",)
    audit.broken = False
    assert store.repair().delivered == 1  # the notification went out with the upload
    assert [e["event"] for e in audit.entries] == ["upload"]


def test_upload_over_a_removal_still_owing_keeps_order(tmp_path: Path) -> None:
    """Re-uploading a key whose removal is not yet audited keeps the audit in order."""
    store, audit, _ = embedded(tmp_path)
    audit.broken = True
    store.put(image(1), key="k.png")
    store.remove("k.png", by="ann")
    store.put(image(2), key="k.png")
    audit.broken = False
    store.repair()
    assert [e["event"] for e in audit.entries] == ["upload", "remove", "upload"]
    assert store.open("k.png") == image(2)
    assert_consistent(store, Embedded(tmp_path), audit)


def test_altered_bytes_are_refused(tmp_path: Path) -> None:
    """Bytes that are not the ones recorded are never served."""
    store, _, _ = embedded(tmp_path)
    store.put(image(1), key="k.png")
    store.blobs.write(Area.LIVE, "k.png", image(9), content_type="image/png")
    with pytest.raises(IntegrityError):
        store.open("k.png")


def test_metadata_limits_at_the_boundary(tmp_path: Path) -> None:
    """32 metadata entries, or a value of 1,024 characters, are kept; one more is not."""
    store, _, _ = embedded(tmp_path)
    full = {f"k{i:02d}": "v" * (256 - 3) for i in range(32)}  # 32 entries, 8,192 characters
    assert store.put(image(1), key="a.png", metadata=full).metadata == full
    with pytest.raises(ConfigurationError, match="32"):
        store.put(image(2), key="b.png", metadata={**full, "e": ""})
    store.put(image(3), key="c.png", metadata={"k": "v" * 1024})
    with pytest.raises(ConfigurationError, match="1,024"):
        store.put(image(4), key="d.png", metadata={"k": "v" * 1025})
    assert [a.key for a in store.list().assets] == ["a.png", "c.png"]


def test_asset_to_dict_is_json(tmp_path: Path) -> None:
    """An asset is frozen, and its to_dict is plain JSON with no image bytes."""
    store, _, _ = embedded(tmp_path)
    asset = store.put(image(1), key="k.png", metadata={"a": "b"})
    data = json.loads(json.dumps(asset.to_dict()))
    assert data["status"] == "approved"
    assert data["verdict"]["action"] == "allow"
    assert data["size"] == len(image(1))
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        asset.status = AssetStatus.REJECTED  # type: ignore[misc]


@pytest.mark.parametrize(
    "options",
    [
        {"max_bytes": 0},
        {"max_bytes": True},
        {"grace": -1},
        {"grace": float("nan")},
        {"pending_deliverable": "yes"},
        {"moderator": object()},
    ],
)
def test_settings_checked_when_built(tmp_path: Path, options: dict[str, Any]) -> None:
    """A setting that cannot be used is refused when the store is built."""
    with pytest.raises(ConfigurationError):
        ReviewStore.embedded(tmp_path, **options)


@pytest.mark.parametrize("by", ["", "   ", None, "x" * 2001])
def test_actor_required(tmp_path: Path, by: Any) -> None:
    """A decision names who made it."""
    store, _, _ = embedded(tmp_path)
    store.put(image(1), key="k.png")
    with pytest.raises(ConfigurationError, match="by"):
        store.reject("k.png", by=by)


def test_logs_carry_no_content(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Failing hooks and moderators log the kind of failure only: no key, reason or metadata."""
    store, audit, hooks = embedded(tmp_path, moderator=Stub(raises=True))
    audit.broken = hooks.broken = True
    with caplog.at_level(logging.DEBUG):
        store.put(image(1), key="secret-name.png", metadata={"owner": "alice@example.com"})
        store.reject("secret-name.png", by="reviewer-bob", reason="private reason")
        store.repair()
    text = caplog.text
    assert "review:" in text
    for secret in ("secret-name", "alice", "reviewer-bob", "private reason", "fell over"):
        assert secret not in text


def test_repair_is_idempotent_after_a_crash_inside_it(tmp_path: Path) -> None:
    """A repair killed at any of its own steps is finished by the next repair."""
    store, audit, _ = embedded(tmp_path, grace=0)
    for at in range(20):
        key = f"k{at}.png"
        store.moderator.action = "allow"  # type: ignore[union-attr]
        store.put(image(at), key=key)
        schedule = Schedule(at=3)
        faulty = attrs.evolve(
            store, blobs=Faulty(store.blobs, schedule), state=Faulty(store.state, schedule)
        )
        with contextlib.suppress(Crash, SafegenError):
            faulty.reject(key, by="bob")
        repairing = Schedule(at=at)
        broken = attrs.evolve(
            store, blobs=Faulty(store.blobs, repairing), state=Faulty(store.state, repairing)
        )
        with contextlib.suppress(Crash):
            broken.repair()
        store.repair()
        assert_consistent(store, Embedded(tmp_path), audit)


def test_real_audit_trail_replays_to_the_store(tmp_path: Path) -> None:
    """Crashes at every step leave safegen's own trail verified, replaying to every status."""
    from safegen.review.audit import AuditTrail

    trail = AuditTrail.sqlite(tmp_path / "audit.sqlite3")
    store = ReviewStore.embedded(tmp_path / "store", moderator=Stub(), audit=trail, grace=0)
    changes: dict[str, Callable[[ReviewStore, str], object]] = {
        "reject": lambda s, k: s.reject(k, by="bob", reason="no"),
        "approve": lambda s, k: s.approve(k, by="ann"),
        "remove": lambda s, k: s.remove(k, by="ann"),
    }
    n = 0
    for name, change in changes.items():
        for at in range(12):
            for mode in ("before", "after"):
                n += 1
                key = f"{name}/{at}-{mode}.png"
                store.moderator.action = "block" if name == "approve" else "allow"  # type: ignore[union-attr]
                store.put(image(n), key=key)
                schedule = Schedule(at=at, mode=mode)
                faulty = attrs.evolve(
                    store, blobs=Faulty(store.blobs, schedule), state=Faulty(store.state, schedule)
                )
                with contextlib.suppress(Crash):
                    change(faulty, key)
                store.repair()
    report = trail.verify()
    assert report.problem is None
    entries = [{"event": e.event, "key": e.key, "verdict": e.verdict} for e in trail.entries()]
    assert replay(entries) == {r.key: r.status for r in store.state.scan()}
    assert_consistent(store, Embedded(tmp_path / "store"), None)


def test_deep_repair_finds_strays_and_missing_bytes(tmp_path: Path) -> None:
    """Copies outside a record's area and bytes gone from it are found only by a deep repair."""
    store, _, _ = embedded(tmp_path, grace=0)
    store.put(image(1), key="stray.png")
    store.put(image(2), key="gone.png")
    store.blobs.write(Area.BACKUP, "stray.png", image(1), content_type="image/png")
    store.blobs.delete(Area.LIVE, "gone.png")
    assert store.repair().clean  # a shallow repair reads records only
    report = store.repair(deep=True)
    assert report.strays == ("stray.png",)
    assert report.missing == ("gone.png",)
    assert not store.blobs.exists(Area.BACKUP, "stray.png")
    assert store.open("stray.png") == image(1)
    with pytest.raises(IntegrityError):
        store.open("gone.png")


def test_damaged_record_is_an_integrity_error(tmp_path: Path) -> None:
    """A record whose stored text was damaged is a clear error, never a bare KeyError."""
    import sqlite3

    store, _, _ = embedded(tmp_path)
    store.put(image(1), key="k.png")
    with contextlib.closing(sqlite3.connect(tmp_path / "state.sqlite3")) as db, db:
        db.execute('UPDATE records SET body = \'{"key": "k.png"}\'')
    with pytest.raises(IntegrityError, match="cannot be read"):
        store.get("k.png")
    assert not store.deliverable("k.png")


def test_owed_deliveries_are_bounded_and_never_lost(tmp_path: Path) -> None:
    """Owed audit entries pile up to a size limit, then decisions wait; none is ever lost."""
    store, audit, _ = embedded(tmp_path)
    store.put(image(1), key="k.png")
    audit.broken = True
    made = 0
    refused: ConflictError | None = None
    for n in range(1000):
        change = store.reject if n % 2 == 0 else store.approve
        try:
            change("k.png", by="ann", reason="é" * 2000)  # the worst case: escaped in JSON
        except ConflictError as error:
            refused = error
            break
        made += 1
    assert refused is not None
    assert "owes" in str(refused)
    assert made > 3
    record = store.state.get("k.png")
    assert record is not None
    assert len(record.to_json().encode()) <= MAX_RECORD_BYTES
    audit.broken = False
    store.repair()
    assert len(audit.entries) == made + 1  # the upload and every decision made
    store.approve("k.png", by="bob")  # changes flow again
    store.reject("k.png", by="bob")


def test_metadata_total_is_bounded(tmp_path: Path) -> None:
    """Metadata of 8,192 characters in all is kept; one more character is refused."""
    store, _, _ = embedded(tmp_path)
    exactly = {f"n{i}": "v" * (1024 - 2) for i in range(8)}  # 8 x 1,024 characters
    assert sum(len(k) + len(v) for k, v in exactly.items()) == 8192
    store.put(image(1), key="a.png", metadata=exactly)
    with pytest.raises(ConfigurationError, match="8,192"):
        store.put(image(2), key="b.png", metadata={**exactly, "x": ""})


def test_concurrent_drains_keep_each_kind_in_order(tmp_path: Path) -> None:
    """A decision made while another writer delivers its audit entry is audited after it."""
    store, audit, hooks = embedded(tmp_path)
    store.put(image(1), key="k.png")

    @attrs.define
    class Interrupting:
        inner: MemoryAudit
        armed: bool = True

        def append(self, event: str, **fields: Any) -> object:
            if self.armed:  # another reviewer decides while this entry is on its way
                self.armed = False
                store.approve("k.png", by="bob")
            return self.inner.append(event, **fields)

    writer = attrs.evolve(store, audit=Interrupting(audit))
    writer.reject("k.png", by="ann")
    assert [e["event"] for e in audit.entries] == ["upload", "reject", "restore"]
    assert [c.after for c in hooks.changes][-2:] == [AssetStatus.REJECTED, AssetStatus.APPROVED]
    assert replay(audit.entries) == {"k.png": AssetStatus.APPROVED}
    assert store.repair().clean
    assert_consistent(store, Embedded(tmp_path), audit)


def test_repair_repairs_a_torn_audit_trail_first(tmp_path: Path) -> None:
    """A trail whose last line a crash tore is repaired by the store's repair, then written."""
    from safegen.review.audit import AuditTrail

    path = tmp_path / "audit.jsonl"
    trail = AuditTrail.jsonl(path)
    store = ReviewStore.embedded(tmp_path / "store", moderator=Stub(), audit=trail, grace=0)
    store.put(image(1), key="k.png")
    with path.open("ab") as log:
        log.write(b'{"seq":1,"event":"rej')  # a crash in the middle of an append
    store.reject("k.png", by="bob", reason="no")
    assert store.repair().owed == ()
    assert [e.event for e in trail.history("k.png")] == ["upload", "reject"]
    assert trail.verify().problem is None


def test_crash_while_clearing_a_stray_then_repair(tmp_path: Path) -> None:
    """A deep repair killed at any step of deleting a stray copy leaves it for the next one."""
    for at in range(12):
        for mode in ("before", "after"):
            root = tmp_path / f"{at}-{mode}"
            store, audit, _ = embedded(root, grace=0)
            store.put(image(1), key="k.png")
            store.blobs.write(Area.BACKUP, "k.png", image(1), content_type="image/png")
            schedule = Schedule(at=at, mode=mode)
            faulty = attrs.evolve(
                store, blobs=Faulty(store.blobs, schedule), state=Faulty(store.state, schedule)
            )
            with contextlib.suppress(Crash):
                faulty.repair(deep=True)
            store.repair(deep=True)
            assert_consistent(store, Embedded(root), audit)
            assert store.deliverable("k.png")
            assert store.repair(deep=True).clean, (at, mode)


def test_deep_repair_takes_unchecked_images_out_of_live(tmp_path: Path) -> None:
    """A failed-check image an older store kept live is moved to the backup and purged."""
    store, audit, hooks = embedded(tmp_path, moderator=Stub(failed=True), pending_deliverable=True)
    store.put(image(1), key="k.png")
    record = store.state.get("k.png")
    assert record is not None
    assert record.area is Area.BACKUP
    # as an older release left it: pending, its check failed, in the live area
    store.blobs.copy("k.png", source=Area.BACKUP, target=Area.LIVE)
    store.blobs.delete(Area.BACKUP, "k.png")
    store.state.update(
        attrs.evolve(record, version=record.version + 1, area=Area.LIVE),
        expected_version=record.version,
    )
    assert not store.deliverable("k.png")
    report = store.repair(deep=True, older_than=0)
    assert report.completed == ("k.png",)
    assert hooks.invalidated == ["k.png"]
    after = store.get("k.png")
    assert (after.status, after.updated_by) == (AssetStatus.PENDING, "moderation")
    assert_consistent(store, Embedded(tmp_path), audit)
    assert store.repair(deep=True).clean
