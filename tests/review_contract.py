"""The review store's contract, run against every backend (embedded and AWS).

A test module subclasses :class:`ReviewContract` and gives it a ``backend`` fixture: an object
with ``fresh()`` (new, empty ports: ``(blobs, state)``) and ``blob_count(blobs)`` (how many
objects the two areas hold in all). Crash tests wrap the ports in :class:`Faulty`, which
raises :class:`Crash` (a ``BaseException``, as uncatchable by the store as a ``kill -9``)
before or after the n-th call.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import attrs
import pytest

from safegen.decision import Action
from safegen.errors import InvalidImageError, SafegenError
from safegen.image import ImageVerdict
from safegen.review import (
    Area,
    AssetExistsError,
    AssetNotFoundError,
    AssetStatus,
    BlobStore,
    ConflictError,
    InvalidCursorError,
    InvalidKeyError,
    NotDeliverableError,
    ReviewStore,
    StateStore,
    StatusChange,
    StorageError,
    VerdictSummary,
)
from safegen.review.ports import Record

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
KEY = "a/img.png"


def image(n: int, size: int = 64) -> bytes:
    """Distinct bytes that begin like a PNG (the store sniffs the format; the stub judges)."""
    body = hashlib.sha256(str(n).encode()).digest() * (size // 32 + 1)
    return (PNG_MAGIC + body)[:size]


@attrs.define
class Stub:
    """A moderator that answers what it is told (or fails, or raises)."""

    action: str = "allow"
    failed: bool = False
    fail_open: bool = False
    raises: bool = False

    def moderate(self, image: bytes) -> ImageVerdict:
        """Return the verdict set up."""
        if self.raises:
            raise RuntimeError("the model fell over")
        return ImageVerdict(
            action=Action(self.action),
            error="ServiceUnavailable: down" if self.failed else None,
            fail_open=self.fail_open,
            backend="stub",
        )


@attrs.define
class MemoryAudit:
    """An audit sink in a list; fails while ``broken``."""

    entries: list[dict[str, Any]] = attrs.field(factory=list)
    broken: bool = False

    def append(
        self,
        event: str,
        *,
        key: str,
        actor: str,
        verdict: VerdictSummary | None = None,
        reason: str | None = None,
        at: str | None = None,
    ) -> object:
        """Keep the entry (or raise when broken)."""
        if self.broken:
            raise OSError("audit log unavailable")
        entry = {"event": event, "key": key, "actor": actor, "verdict": verdict, "reason": reason}
        self.entries.append(entry)
        return entry


@attrs.define
class Hooks:
    """A notifier and an invalidator that record calls; fail while ``broken``."""

    changes: list[StatusChange] = attrs.field(factory=list)
    invalidated: list[str] = attrs.field(factory=list)
    broken: bool = False

    def notify(self, change: StatusChange) -> None:
        """Record *change*."""
        if self.broken:
            raise ConnectionError("SNS down")
        self.changes.append(change)

    def invalidate(self, keys: Any) -> None:
        """Record *keys*."""
        if self.broken:
            raise ConnectionError("CloudFront down")
        self.invalidated.extend(keys)


class Crash(BaseException):
    """The process died here (not an ``Exception``: nothing in the store can catch it)."""


@attrs.define
class Schedule:
    """Which port call fails, and how: a crash before or after it, or an ordinary error."""

    at: int | None = None
    mode: str = "before"  # "before", "after" (the call took effect) or "error"
    calls: int = 0

    def step(self, call: Callable[[], Any]) -> Any:
        """Run *call* as the next step, failing it if scheduled."""
        index, self.calls = self.calls, self.calls + 1
        if index == self.at and self.mode == "before":
            raise Crash(index)
        if index == self.at and self.mode == "error":
            raise StorageError("injected failure")
        result = call()
        if index == self.at and self.mode == "after":
            raise Crash(index)
        return result


@attrs.define
class Faulty:
    """A port (blob or state store) whose every call is a step of a :class:`Schedule`."""

    inner: Any
    schedule: Schedule

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.inner, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            if name == "scan":
                return iter(self.schedule.step(lambda: list(method(*args, **kwargs))))
            return self.schedule.step(lambda: method(*args, **kwargs))

        return call


class Backend(Protocol):
    """What a backend's test module provides."""

    def fresh(self) -> tuple[BlobStore, StateStore]:
        """New, empty ports."""
        ...

    def blob_count(self, blobs: BlobStore) -> int:
        """How many objects both areas hold."""
        ...


def replay(entries: list[dict[str, Any]]) -> dict[str, AssetStatus]:
    """The statuses an audit trail says the images have, replayed from the start."""
    statuses: dict[str, AssetStatus] = {}
    for entry in entries:
        event, key = entry["event"], entry["key"]
        if event == "upload":
            verdict = entry["verdict"]
            if verdict is None or verdict.error is not None:
                statuses[key] = AssetStatus.PENDING
            else:
                statuses[key] = {
                    "allow": AssetStatus.APPROVED,
                    "review": AssetStatus.PENDING,
                    "block": AssetStatus.REJECTED,
                }[verdict.action]
        elif event in ("approve", "restore"):
            statuses[key] = AssetStatus.APPROVED
        elif event == "reject":
            statuses[key] = AssetStatus.REJECTED
        elif event == "remove":
            statuses.pop(key, None)
    return statuses


def records(state: StateStore) -> list[Record]:
    """Every record."""
    return sorted(state.scan(), key=lambda r: r.key)


def assert_consistent(store: ReviewStore, backend: Backend, audit: MemoryAudit | None) -> None:
    """Each image is settled, in exactly the area its record names, intact; nothing else."""
    found = records(store.state)
    for record in found:
        assert record.intent is None, record
        assert record.status is not None, record
        assert record.area is not None
        where = [area for area in Area if store.blobs.exists(area, record.key)]
        assert where == [record.area], (record.key, where, record.area)
        data = store.blobs.read(record.area, record.key, max_bytes=record.size)
        assert data is not None
        assert hashlib.sha256(data).hexdigest() == record.sha256
        verdict = record.verdict
        expected_live = record.status is AssetStatus.APPROVED or (
            record.status is AssetStatus.PENDING
            and store.pending_deliverable
            and verdict is not None
            and verdict["action"] == "review"
            and verdict["error"] is None
        )
        assert (record.area is Area.LIVE) == expected_live
        assert store.deliverable(record.key) == expected_live
    assert backend.blob_count(store.blobs) == len(found)
    if audit is not None:
        assert replay(audit.entries) == {r.key: r.status for r in found}


# Scenarios for the crash tests: (set-up, the change under test) on a store with a Stub.
def _put(action: str) -> Callable[[ReviewStore], Any]:
    def run(store: ReviewStore) -> Any:
        assert isinstance(store.moderator, Stub)
        store.moderator.action = action
        return store.put(image(1), key="a/img.png")

    return run


SCENARIOS: dict[str, tuple[Callable[[ReviewStore], Any], Callable[[ReviewStore], Any]]] = {
    "put allow": (lambda s: None, _put("allow")),
    "put block": (lambda s: None, _put("block")),
    "put review": (lambda s: None, _put("review")),
    "restore rejected": (_put("block"), lambda s: s.approve("a/img.png", by="ann")),
    "approve pending": (_put("review"), lambda s: s.approve("a/img.png", by="ann")),
    "reject approved": (_put("allow"), lambda s: s.reject("a/img.png", by="bob", reason="r")),
    "reject pending": (_put("review"), lambda s: s.reject("a/img.png", by="bob")),
    "remove approved": (_put("allow"), lambda s: s.remove("a/img.png", by="bob")),
    "remove rejected": (_put("block"), lambda s: s.remove("a/img.png", by="bob")),
}


class ReviewContract:
    """Every backend passes all of this."""

    @pytest.fixture
    def backend(self) -> Backend:  # pragma: no cover - overridden by each backend's module
        """The backend under test."""
        raise NotImplementedError

    def make(self, backend: Backend, **options: Any) -> tuple[ReviewStore, MemoryAudit, Hooks]:
        """A store on fresh ports with a Stub, an audit list and recording hooks."""
        blobs, state = backend.fresh()
        audit, hooks = MemoryAudit(), Hooks()
        options.setdefault("moderator", Stub())
        store = ReviewStore(
            blobs=blobs,
            state=state,
            audit=audit,
            notify=hooks.notify,
            invalidate=hooks.invalidate,
            grace=0,
            **options,
        )
        return store, audit, hooks

    # --- put ---------------------------------------------------------------------------

    @pytest.mark.parametrize(
        ("action", "status", "area"),
        [
            ("allow", AssetStatus.APPROVED, Area.LIVE),
            ("review", AssetStatus.PENDING, Area.BACKUP),
            ("block", AssetStatus.REJECTED, Area.BACKUP),
        ],
    )
    def test_put_files_each_verdict(
        self, backend: Backend, action: str, status: AssetStatus, area: Area
    ) -> None:
        """ALLOW goes live approved; REVIEW waits pending and BLOCK rejected, in the backup."""
        store, audit, hooks = self.make(backend, moderator=Stub(action))
        asset = store.put(image(1), key="k.png", metadata={"user": "u1"})
        assert asset.status is status
        assert asset.verdict is not None
        assert asset.verdict.action == action
        assert asset.metadata == {"user": "u1"}
        assert asset.sha256 == hashlib.sha256(image(1)).hexdigest()
        assert asset.content_type == "image/png"
        assert store.blobs.exists(area, "k.png")
        assert store.deliverable("k.png") is (status is AssetStatus.APPROVED)
        assert [e["event"] for e in audit.entries] == ["upload"]
        assert hooks.changes[0].before is None
        assert hooks.changes[0].after is status
        assert_consistent(store, backend, audit)

    @pytest.mark.parametrize(
        "moderator",
        [
            Stub("allow", failed=True, fail_open=True),
            Stub("block", failed=True),
            Stub(raises=True),
            None,
        ],
        ids=["failed-fail-open", "failed-closed", "raises", "no-moderator"],
    )
    def test_put_unchecked_is_pending(self, backend: Backend, moderator: Stub | None) -> None:
        """A check that failed, even fail-open, or could not run leaves the image pending."""
        store, audit, _ = self.make(backend, moderator=moderator)
        asset = store.put(image(2), key="k.png")
        assert asset.status is AssetStatus.PENDING
        assert not store.deliverable("k.png")
        with pytest.raises(NotDeliverableError):
            store.open("k.png")
        assert store.open("k.png", reviewer=True) == image(2)
        assert_consistent(store, backend, audit)

    def test_pending_deliverable_keeps_pending_live(self, backend: Backend) -> None:
        """With pending_deliverable, pending images are live; rejecting one invalidates it."""
        store, audit, hooks = self.make(backend, moderator=Stub("review"), pending_deliverable=True)
        store.put(image(3), key="p.png")
        assert store.deliverable("p.png")
        store.reject("p.png", by="ann")
        assert hooks.invalidated == ["p.png"]
        assert_consistent(store, backend, audit)

    def test_duplicate_key_refused(self, backend: Backend) -> None:
        """A second upload under a taken key is refused and changes nothing."""
        store, audit, _ = self.make(backend)
        store.put(image(1), key="k.png")
        with pytest.raises(AssetExistsError):
            store.put(image(2), key="k.png")
        assert store.open("k.png") == image(1)
        assert_consistent(store, backend, audit)

    def test_size_limit_at_the_boundary(self, backend: Backend) -> None:
        """Exactly max_bytes is taken; one byte more is refused before anything is stored."""
        store, audit, _ = self.make(backend, max_bytes=100)
        store.put(image(1, 100), key="fits.png")
        with pytest.raises(InvalidImageError) as refused:
            store.put(image(2, 101), key="over.png")
        assert refused.value.limit == "bytes"
        with pytest.raises(InvalidImageError):
            store.put(b"", key="empty.png")
        with pytest.raises(InvalidImageError) as unknown:
            store.put(b"not an image at all", key="text.png")
        assert unknown.value.limit == "format"
        assert [a.key for a in store.list().assets] == ["fits.png"]
        assert_consistent(store, backend, audit)

    def test_generated_key(self, backend: Backend) -> None:
        """Without a key the store makes one, with the format's extension."""
        store, _, _ = self.make(backend)
        asset = store.put(image(1))
        assert asset.key.endswith(".png")
        assert store.get(asset.key) == asset

    # --- reading ----------------------------------------------------------------------------

    def test_missing_key(self, backend: Backend) -> None:
        """A missing image is AssetNotFoundError (a KeyError) and not deliverable."""
        store, _, _ = self.make(backend)
        with pytest.raises(AssetNotFoundError) as missing:
            store.get("nope.png")
        assert isinstance(missing.value, KeyError)
        assert isinstance(missing.value, SafegenError)
        assert not store.deliverable("nope.png")
        with pytest.raises(AssetNotFoundError):
            store.approve("nope.png", by="ann")

    @pytest.mark.parametrize("key", ["../x.png", "/etc/passwd", "a\\b", "a/../b", "a\x00b", ""])
    def test_hostile_keys_refused(self, backend: Backend, key: str) -> None:
        """A key that could escape the store is refused everywhere, and never deliverable."""
        store, _, _ = self.make(backend)
        with pytest.raises(InvalidKeyError):
            store.put(image(1), key=key)
        with pytest.raises(InvalidKeyError):
            store.get(key)
        assert not store.deliverable(key)

    def test_list_pages_cover_everything_once(self, backend: Backend) -> None:
        """Pages of any size list each image once, by status then key, per status or all."""
        store, _, _ = self.make(backend)
        actions = ["allow", "review", "block"]
        for n in range(11):
            assert isinstance(store.moderator, Stub)
            store.moderator.action = actions[n % 3]
            store.put(image(n), key=f"img-{n:02d}.png")
        everything = [(a.status.value, a.key) for a in store.list(limit=1000).assets]
        assert everything == sorted(everything)
        assert len(everything) == 11
        for limit in (1, 2, 3, 11, 12):
            for status in (None, *AssetStatus):
                seen: list[tuple[str, str]] = []
                after: str | None = None
                while True:
                    page = store.list(status=status, limit=limit, after=after)
                    assert len(page.assets) <= limit
                    seen.extend((a.status.value, a.key) for a in page.assets)
                    if page.next is None:
                        break
                    after = page.next
                assert seen == [p for p in everything if status is None or p[0] == status.value]

    def test_list_arguments_checked(self, backend: Backend) -> None:
        """Limits 0 and 1001 and a forged or foreign cursor are refused."""
        store, _, _ = self.make(backend)
        store.put(image(1), key="a.png")
        store.put(image(2), key="b.png")
        for limit in (0, 1001):
            with pytest.raises(ValueError, match="limit"):
                store.list(limit=limit)
        page = store.list(status=AssetStatus.APPROVED, limit=1)
        assert page.next is not None
        with pytest.raises(InvalidCursorError):
            store.list(status=AssetStatus.REJECTED, after=page.next)
        with pytest.raises(InvalidCursorError):
            store.list(after="not-a-cursor")

    # --- decisions --------------------------------------------------------------------------

    def test_restore_and_reject_round_trip(self, backend: Backend) -> None:
        """Approving a rejected image restores it; rejecting it again purges it from the cache."""
        store, audit, hooks = self.make(backend, moderator=Stub("block"))
        store.put(image(1), key="k.png")
        asset = store.approve("k.png", by="ann", reason="a false positive")
        assert asset.status is AssetStatus.APPROVED
        assert asset.updated_by == "ann"
        assert asset.reason == "a false positive"
        assert store.open("k.png") == image(1)
        assert hooks.invalidated == []
        store.reject("k.png", by="bob", reason="on reflection")
        assert hooks.invalidated == ["k.png"]
        assert not store.deliverable("k.png")
        assert [e["event"] for e in audit.entries] == ["upload", "restore", "reject"]
        assert [(c.before, c.after) for c in hooks.changes][1:] == [
            (AssetStatus.REJECTED, AssetStatus.APPROVED),
            (AssetStatus.APPROVED, AssetStatus.REJECTED),
        ]
        assert_consistent(store, backend, audit)

    def test_decisions_on_pending(self, backend: Backend) -> None:
        """A pending image can be approved (goes live) or rejected (stays in backup)."""
        store, audit, hooks = self.make(backend, moderator=Stub("review"))
        store.put(image(1), key="yes.png")
        store.put(image(2), key="no.png")
        store.approve("yes.png", by="ann")
        store.reject("no.png", by="ann")
        assert store.deliverable("yes.png")
        assert not store.deliverable("no.png")
        assert hooks.invalidated == []  # nothing left the live area
        assert_consistent(store, backend, audit)

    def test_repeated_decision_is_idempotent(self, backend: Backend) -> None:
        """Approving an approved image (or rejecting a rejected one) changes nothing at all."""
        store, audit, hooks = self.make(backend)
        first = store.put(image(1), key="k.png")
        assert store.approve("k.png", by="ann") == first
        store.reject("k.png", by="ann")
        again = store.get("k.png")
        assert store.reject("k.png", by="bob") == again
        assert [e["event"] for e in audit.entries] == ["upload", "reject"]
        assert len(hooks.changes) == 2
        assert hooks.invalidated == ["k.png"]

    def test_remove(self, backend: Backend) -> None:
        """Removing deletes bytes and record, audits it, and purges a live image."""
        store, audit, hooks = self.make(backend)
        store.put(image(1), key="k.png")
        store.remove("k.png", by="ann", reason="takedown")
        with pytest.raises(AssetNotFoundError):
            store.get("k.png")
        assert hooks.invalidated == ["k.png"]
        assert audit.entries[-1]["event"] == "remove"
        assert_consistent(store, backend, audit)
        store.put(image(2), key="k.png")  # the key is free again
        assert_consistent(store, backend, audit)

    def test_two_reviewers_cannot_both_win(self, backend: Backend) -> None:
        """A reviewer who read before another's change loses with ConflictError, nothing else."""
        store, audit, _ = self.make(backend, moderator=Stub("review"))
        store.put(image(1), key="k.png")
        other = attrs.evolve(store)

        @attrs.define
        class Racing:
            inner: StateStore
            raced: bool = False

            def __getattr__(self, name: str) -> Any:
                return getattr(self.inner, name)

            def update(self, record: Record, *, expected_version: int) -> None:
                if not self.raced:  # the other reviewer's write lands just before ours
                    self.raced = True
                    other.reject("k.png", by="bob")
                self.inner.update(record, expected_version=expected_version)

        racing = attrs.evolve(store, state=Racing(store.state))
        with pytest.raises(ConflictError):
            racing.approve("k.png", by="ann")
        assert store.get("k.png").status is AssetStatus.REJECTED
        assert store.get("k.png").updated_by == "bob"
        assert [e["event"] for e in audit.entries] == ["upload", "reject"]
        assert_consistent(store, backend, audit)

    def test_conditional_write_on_the_port(self, backend: Backend) -> None:
        """The state port refuses a write whose expected version is stale, and a second create."""
        store, _, _ = self.make(backend)
        store.put(image(1), key="k.png")
        record = store.state.get("k.png")
        assert record is not None
        store.reject("k.png", by="bob")
        with pytest.raises(ConflictError):
            store.state.update(
                attrs.evolve(record, version=record.version + 1), expected_version=record.version
            )
        with pytest.raises(ConflictError):
            store.state.delete("k.png", expected_version=record.version)
        with pytest.raises(AssetExistsError):
            store.state.create(record)

    # --- hooks that fail --------------------------------------------------------------------

    def test_failing_hooks_lose_nothing(self, backend: Backend) -> None:
        """When audit, notifier and invalidator fail the change stands; repair delivers all."""
        store, audit, hooks = self.make(backend)
        store.put(image(1), key="k.png")
        audit.broken = hooks.broken = True
        asset = store.reject("k.png", by="bob")
        assert asset.status is AssetStatus.REJECTED
        assert not store.deliverable("k.png")
        store.approve("k.png", by="ann")  # still broken: owed effects pile up, in order
        report = store.repair()
        assert report.owed == ("k.png",)
        audit.broken = hooks.broken = False
        report = store.repair()
        assert report.owed == ()
        assert report.delivered == 5  # two audit entries, two notifications, one invalidation
        assert [e["event"] for e in audit.entries] == ["upload", "reject", "restore"]
        assert [c.after for c in hooks.changes] == [
            AssetStatus.APPROVED,
            AssetStatus.REJECTED,
            AssetStatus.APPROVED,
        ]
        assert hooks.invalidated == ["k.png"]
        assert store.repair().clean
        assert_consistent(store, backend, audit)

    # --- crash consistency --------------------------------------------------------------------

    def _crash_runs(self, backend: Backend, name: str) -> Iterator[tuple[int, str]]:
        setup, change = SCENARIOS[name]
        store, _, _ = self.make(backend)
        setup(store)
        schedule = Schedule()
        counted = attrs.evolve(
            store, blobs=Faulty(store.blobs, schedule), state=Faulty(store.state, schedule)
        )
        change(counted)
        for at in range(schedule.calls):
            for mode in ("before", "after", "error"):
                yield at, mode

    @pytest.mark.parametrize("name", sorted(SCENARIOS))
    def test_crash_at_every_step_then_repair(self, backend: Backend, name: str) -> None:
        """Killed (or failed) before or after any port call, repair leaves a consistent store."""
        setup, change = SCENARIOS[name]
        for at, mode in self._crash_runs(backend, name):
            store, audit, hooks = self.make(backend)
            setup(store)
            was = store.state.get(KEY)
            schedule = Schedule(at=at, mode=mode)
            faulty = attrs.evolve(
                store, blobs=Faulty(store.blobs, schedule), state=Faulty(store.state, schedule)
            )
            with contextlib.suppress(Crash, SafegenError):
                change(faulty)
            now = store.state.get(KEY)
            if name in ("reject approved", "remove approved") and now != was and mode != "error":
                # once a rejection is written down the image is not delivered (an ordinary
                # error before the copy is done takes the rejection back: the caller is told)
                assert not store.deliverable(KEY), (name, at, mode)
            store.repair()
            assert_consistent(store, backend, audit)
            assert store.repair().clean, (name, at, mode)
            # the change happened or not, and the notifiers last heard what did
            final = store.state.get(KEY)
            if final is not None:
                assert hooks.changes[-1].after is final.status, (name, at, mode)

    # --- red team 15: texts, poison effects, full queues, stale repairs, versions -----------

    @pytest.mark.parametrize(
        "change",
        [
            lambda s: s.reject(KEY, by="ann", reason="caf\udce9 sign"),
            lambda s: s.reject(KEY, by="\udcff", reason="r"),
            lambda s: s.approve(KEY, by="ann", reason="\ud800"),
            lambda s: s.remove(KEY, by="ann", reason="x\udc80y"),
            lambda s: s.put(image(9), key="n.png", metadata={"who": "\udce9"}),
            lambda s: s.put(image(9), key="n.png", metadata={"\udce9": "x"}),
        ],
        ids=["reason", "actor", "approve-reason", "remove-reason", "meta-value", "meta-name"],
    )
    def test_unencodable_text_refused_before_any_change(
        self, backend: Backend, change: Callable[[ReviewStore], Any]
    ) -> None:
        """Text UTF-8 cannot encode (a lone surrogate) is refused with nothing changed."""
        store, audit, hooks = self.make(backend, moderator=Stub("review"))
        store.put(image(1), key=KEY)
        before = store.state.get(KEY)
        with pytest.raises(ValueError, match="surrogate"):
            change(store)
        assert store.state.get(KEY) == before
        assert store.state.get("n.png") is None
        assert [e["event"] for e in audit.entries] == ["upload"]
        assert len(hooks.changes) == 1
        assert_consistent(store, backend, audit)

    def test_poison_effect_never_wedges_an_image(self, backend: Backend) -> None:
        """An effect a hook refuses for good is kept as failed; later ones are delivered."""
        from safegen.review.audit import AuditFieldError

        store, audit, hooks = self.make(backend)
        store.put(image(1), key=KEY)
        refuse = MemoryAudit.append

        def picky(self: MemoryAudit, event: str, **fields: Any) -> object:
            if fields.get("reason") == "poison":
                raise AuditFieldError("reason", "refused for good")
            return refuse(self, event, **fields)

        store = attrs.evolve(store, audit=Picky(audit, picky))
        store.reject(KEY, by="ann", reason="poison")
        store.approve(KEY, by="bob", reason="fine")
        store.reject(KEY, by="carol", reason="again")
        assert [e["event"] for e in audit.entries] == ["upload", "restore", "reject"]
        assert [c.actor for c in hooks.changes] == ["moderation", "ann", "bob", "carol"]
        report = store.repair()
        assert report.failed == (KEY,)
        assert report.owed == ()
        assert not report.clean
        kept = store.state.get(KEY)
        assert kept is not None
        assert [(e["reason"], e["failed"]) for e in kept.outbox] == [("poison", "AuditFieldError")]
        store = attrs.evolve(store, audit=audit)  # the trail takes it now: queue it again
        report = store.repair(retry_failed=True)
        assert report.failed == ()
        assert report.delivered == 1
        assert store.repair().clean

    def test_full_queue_refuses_approval_never_takedown(self, backend: Backend) -> None:
        """With the owed queue over its limit an approved image can still be rejected."""
        from safegen.review.store import MAX_RECORD_BYTES

        store, audit, _ = self.make(backend)
        store.put(image(1), key=KEY)
        audit.broken = True  # owed audit entries pile up (a transient failure)
        record = store.state.get(KEY)
        assert record is not None
        owed = {"kind": "audit", "event": "approve", "key": KEY, "actor": "x", "at": record.updated}
        filler = tuple(
            {**owed, "id": f"{n:032x}", "reason": "r" * 1000, "verdict": None}
            for n in range(MAX_RECORD_BYTES // 1000)
        )
        store.state.update(
            attrs.evolve(record, version=record.version + 1, outbox=filler),
            expected_version=record.version,
        )
        assert store.deliverable(KEY)
        store.reject(KEY, by="ann", reason="takedown")
        assert not store.deliverable(KEY)
        with pytest.raises(ConflictError, match="owes"):
            store.approve(KEY, by="bob")
        store.remove(KEY, by="ann", reason="gone")
        assert not store.deliverable(KEY)
        assert not any(store.blobs.exists(area, KEY) for area in Area)

    def test_stale_repair_deletes_nothing(self, backend: Backend) -> None:
        """A repair working from an old read loses its claim before it touches any byte."""
        store, audit, _ = self.make(backend)
        schedule = Schedule(at=0)  # the upload dies after its intent, before its bytes
        faulty = attrs.evolve(store, blobs=Faulty(store.blobs, schedule))
        with pytest.raises(Crash):
            faulty.put(image(1), key=KEY)
        stale = store.state.get(KEY)
        assert stale is not None
        assert stale.intent is not None
        assert store.repair().rolled_back == (KEY,)  # another repair got there first
        store.put(image(2, 128), key=KEY)  # the uploader retried: committed, approved
        store.put(image(3), key="b.png")
        late = attrs.evolve(store, state=StaleScan(store.state, [stale]))
        report = late.repair()
        assert [key for key, _ in report.problems] == [KEY]
        assert store.open(KEY) == image(2, 128)
        assert store.deliverable(KEY)
        assert_consistent(store, backend, audit)

    def test_repair_goes_on_past_a_record_it_cannot_handle(self, backend: Backend) -> None:
        """A conflict on one record is reported; the records after it are still repaired."""
        store, audit, _ = self.make(backend)
        for key in ("a.png", "b.png"):
            schedule = Schedule(at=0)
            faulty = attrs.evolve(store, blobs=Faulty(store.blobs, schedule))
            with pytest.raises(Crash):
                faulty.put(image(1), key=key)
        stale = store.state.get("a.png")
        assert stale is not None
        store.put(image(5), key="c.png")
        current = [r for r in records(store.state) if r.key != "a.png"]
        moved = attrs.evolve(stale, version=stale.version + 1)
        store.state.update(moved, expected_version=stale.version)  # another writer moved it
        late = attrs.evolve(store, state=StaleScan(store.state, [stale, *current]))
        report = late.repair()
        assert [key for key, _ in report.problems] == ["a.png"]
        assert report.rolled_back == ("b.png",)
        assert store.state.get("b.png") is None
        assert store.repair().rolled_back == ("a.png",)
        assert_consistent(store, backend, audit)

    def test_versions_never_repeat_after_remove_and_upload(self, backend: Backend) -> None:
        """A writer holding an earlier image's record of a key loses against the new one."""
        store, audit, _ = self.make(backend, moderator=Stub("review"))
        seen: set[int] = set()
        stale: list[Record] = []
        for n in range(4):
            store.put(image(n), key=KEY)
            record = store.state.get(KEY)
            assert record is not None
            stale.append(record)
            store.reject(KEY, by="ann")
            store.remove(KEY, by="ann")
            seen.add(record.version)
        assert len(seen) == 4
        store.put(image(9), key=KEY)
        store.approve(KEY, by="bob")
        for old in stale:
            with pytest.raises(ConflictError):
                store.state.update(
                    attrs.evolve(old, version=old.version + 1), expected_version=old.version
                )
        assert store.open(KEY) == image(9)
        assert_consistent(store, backend, audit)

    @pytest.mark.parametrize(
        ("moderator", "live"),
        [
            (Stub("review"), True),
            (Stub("review", failed=True), False),
            (Stub("allow", failed=True, fail_open=True), False),
            (Stub(raises=True), False),
            (None, False),
        ],
        ids=["review", "failed", "failed-open", "raises", "no-moderator"],
    )
    def test_pending_deliverable_only_for_a_review_verdict(
        self, backend: Backend, moderator: Stub | None, live: bool
    ) -> None:
        """pending_deliverable delivers a checked REVIEW only: never an unchecked upload."""
        store, audit, _ = self.make(backend, moderator=moderator, pending_deliverable=True)
        asset = store.put(image(1), key=KEY)
        assert asset.status is AssetStatus.PENDING
        assert store.deliverable(KEY) is live
        assert store.blobs.exists(Area.LIVE if live else Area.BACKUP, KEY)
        if not live:
            with pytest.raises(NotDeliverableError):
                store.open(KEY)
        assert_consistent(store, backend, audit)

    @pytest.mark.parametrize("answer", [None, {"action": "allow"}, "ALLOW", 1], ids=repr)
    def test_moderator_answering_garbage_is_a_failed_check(
        self, backend: Backend, answer: object
    ) -> None:
        """A moderator that returns anything but an ImageVerdict leaves the upload pending."""

        @attrs.define
        class Garbage:
            def moderate(self, image: bytes) -> Any:
                return answer

        store, audit, _ = self.make(backend, moderator=Garbage(), pending_deliverable=True)
        asset = store.put(image(1), key=KEY)
        assert asset.status is AssetStatus.PENDING
        assert asset.verdict is not None
        assert asset.verdict.error is not None
        assert "not an ImageVerdict" in asset.verdict.error
        assert not store.deliverable(KEY)
        assert_consistent(store, backend, audit)


@attrs.define
class Picky:
    """An audit sink that runs *append* on *inner* (to refuse some entries)."""

    inner: MemoryAudit
    append_with: Callable[..., object]

    def append(self, event: str, **fields: Any) -> object:
        """Append through ``append_with``."""
        return self.append_with(self.inner, event, **fields)


@attrs.define
class StaleScan:
    """A state store whose ``scan`` returns records read a while ago (a slow repair)."""

    inner: StateStore
    stale: list[Record]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def scan(self) -> Iterator[Record]:
        """The old reads."""
        return iter(self.stale)
