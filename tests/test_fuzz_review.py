"""Properties of the review store: keys never escape, any history ends consistent.

Hostile keys never name anything outside the store, and any sequence of changes, crashes and
repairs leaves the store consistent with its audit trail.
"""

from __future__ import annotations

import contextlib
import posixpath
import shutil
import tempfile
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from safegen.aws.review_store import S3Location
from safegen.errors import SafegenError
from safegen.review import (
    Area,
    AssetExistsError,
    AssetNotFoundError,
    AssetStatus,
    InvalidKeyError,
    ReviewStore,
    check_key,
)
from safegen.review.audit import AuditTrail
from safegen.review.embedded import DirectoryBlobs, SQLiteState
from safegen.review.ports import MAX_KEY_LENGTH, Record
from tests.review_contract import (
    Crash,
    Faulty,
    Hooks,
    MemoryAudit,
    Schedule,
    StaleScan,
    Stub,
    assert_consistent,
    image,
)

# Characters an attacker reaches for: separators, dots, NUL, drive colons, percent
# escapes, spaces, and non-ASCII look-alikes of '.' and '/'.
HOSTILE = st.text(
    alphabet=st.sampled_from([*"./\\\x00:%~ aZ09_-", "\u2024", "\u2215", "\uff0e", "é"]),
    max_size=40,
)
SEGMENT = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9._\-]{0,20}", fullmatch=True)
VALID = (
    st.lists(SEGMENT, min_size=1, max_size=6)
    .map("/".join)
    .filter(lambda k: len(k) <= MAX_KEY_LENGTH)
)


@given(key=st.one_of(HOSTILE, VALID, st.text(max_size=300)))
def test_no_key_escapes_its_area(key: str) -> None:
    """A key is refused, or it names a file inside its area and an object under its prefix."""
    try:
        checked = check_key(key)
    except InvalidKeyError:
        return
    assert checked == key
    segments = key.split("/")
    assert all(s not in ("", ".", "..") for s in segments)
    assert not any(c in key for c in "\\\x00:% ")
    assert key.isascii()
    root = Path("/srv/store")
    for area in Area:
        path = DirectoryBlobs(root=root).path(area, key)
        assert path.resolve().is_relative_to(root / area.value)
        where = S3Location(bucket="b", prefix=f"{area.value}/")
        assert posixpath.normpath(where.object_key(key)).startswith(where.prefix)


@given(key=VALID)
def test_well_formed_keys_are_taken(key: str) -> None:
    """Every key made of well-formed segments is accepted as it is."""
    assert check_key(key) == key


def test_key_length_boundary() -> None:
    """A key of exactly the limit is taken; one character more is refused."""
    assert check_key("a" * MAX_KEY_LENGTH)
    with pytest.raises(InvalidKeyError) as refused:
        check_key("a" * (MAX_KEY_LENGTH + 1))
    assert refused.value.rule == "length"


KEYS = ("a.png", "b/c.png", "d.png")
ACTIONS = ("allow", "review", "block")
STATUS_OF = {
    "allow": AssetStatus.APPROVED,
    "review": AssetStatus.PENDING,
    "block": AssetStatus.REJECTED,
}


@attrs.define
class _Ports:
    """The embedded backend as the contract's helpers want it."""

    root: Path

    def blob_count(self, blobs: Any) -> int:
        return sum(1 for a in ("live", "backup") for p in (self.root / a).rglob("*") if p.is_file())


@settings(
    max_examples=60,
    stateful_step_count=25,
    suppress_health_check=[HealthCheck.too_slow],
)
class ReviewMachine(RuleBasedStateMachine):
    """Any sequence of puts, decisions, removals, crashes at any step, failing hooks, repairs."""

    def __init__(self) -> None:
        super().__init__()
        self.root = Path(tempfile.mkdtemp(prefix="review-machine-"))
        self.audit, self.hooks = MemoryAudit(), Hooks()
        self.moderator = Stub()
        self.pending_deliverable = False
        self.store = self._store()
        self.model: dict[str, AssetStatus] = {}
        self.snap: list[Record] | None = None
        # keys a crash left undecided: the statuses they may end up with (None: absent)
        self.unsure: dict[str, set[AssetStatus | None]] = {}

    def _store(self) -> ReviewStore:
        return ReviewStore(
            blobs=DirectoryBlobs.at(self.root),
            state=SQLiteState.at(self.root / "state.sqlite3"),
            moderator=self.moderator,
            audit=self.audit,
            notify=self.hooks.notify,
            invalidate=self.hooks.invalidate,
            pending_deliverable=self.pending_deliverable,
            grace=0,
        )

    def teardown(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def _run(self, key: str, change: str, action: str, store: ReviewStore) -> None:
        if change == "put":
            self.moderator.action = action
            store.put(image(KEYS.index(key) * 3 + ACTIONS.index(action)), key=key)
        elif change == "approve":
            store.approve(key, by="ann")
        elif change == "reject":
            store.reject(key, by="bob", reason="why")
        else:
            store.remove(key, by="bob")

    def _expected(self, key: str, change: str, action: str) -> AssetStatus | str | None:
        """The status after *change*, or the error's name when it must be refused."""
        now = self.model.get(key)
        if change == "put":
            return "exists" if now is not None else STATUS_OF[action]
        if now is None:
            return "missing"
        return {
            "approve": AssetStatus.APPROVED,
            "reject": AssetStatus.REJECTED,
            "remove": None,
        }[change]

    @rule(
        key=st.sampled_from(KEYS),
        change=st.sampled_from(("put", "approve", "reject", "remove")),
        action=st.sampled_from(ACTIONS),
    )
    def change(self, key: str, change: str, action: str) -> None:
        """A change that runs to the end: it does what the model says, or is refused."""
        if key in self.unsure:
            return  # a crashed change is in progress on this key until repair()
        expected = self._expected(key, change, action)
        try:
            self._run(key, change, action, self.store)
        except AssetExistsError:
            assert expected == "exists"
            return
        except AssetNotFoundError:
            assert expected == "missing"
            return
        assert not isinstance(expected, str)
        if expected is None:
            self.model.pop(key, None)
        else:
            self.model[key] = expected

    @rule(
        key=st.sampled_from(KEYS),
        change=st.sampled_from(("put", "approve", "reject", "remove")),
        action=st.sampled_from(ACTIONS),
        at=st.integers(0, 14),
        mode=st.sampled_from(("before", "after", "error")),
    )
    def crash(self, key: str, change: str, action: str, at: int, mode: str) -> None:
        """The same change, killed (or failing) before or after its at-th port call."""
        if key in self.unsure:
            return
        expected = self._expected(key, change, action)
        if isinstance(expected, str):
            return  # refused anyway: covered by change()
        schedule = Schedule(at=at, mode=mode)
        faulty = attrs.evolve(
            self.store,
            blobs=Faulty(self.store.blobs, schedule),
            state=Faulty(self.store.state, schedule),
        )
        with contextlib.suppress(Crash, SafegenError):
            self._run(key, change, action, faulty)
        self.unsure[key] = {self.model.get(key), expected}

    @rule(broken=st.booleans())
    def hooks_fail(self, broken: bool) -> None:
        """The audit trail, notifier and invalidator go down (or come back)."""
        self.audit.broken = self.hooks.broken = broken

    @rule()
    def restart(self) -> None:
        """The process restarts: a new store object on the same directory."""
        self.store = self._store()

    @rule(deep=st.booleans())
    def repair(self, deep: bool) -> None:
        """Repair (shallow or deep) settles every crashed change to one of its two outcomes."""
        self.store.repair(deep=deep)
        for key, allowed in self.unsure.items():
            record = self.store.state.get(key)
            now = None if record is None else record.status
            assert now in allowed, (key, now, allowed)
            if now is None:
                self.model.pop(key, None)
            else:
                self.model[key] = now
        self.unsure.clear()

    @rule()
    def snapshot(self) -> None:
        """A slow repair reads its records now, and acts on them later."""
        self.snap = list(self.store.state.scan())

    @rule(deep=st.booleans())
    def stale_repair(self, deep: bool) -> None:
        """The slow repair acts on its old read: it may lose its claims, never an image."""
        if self.snap is not None:
            late = attrs.evolve(self.store, state=StaleScan(self.store.state, self.snap))
            late.repair(deep=deep)

    @invariant()
    def settled_keys_match_the_model(self) -> None:
        """Outside crashed keys, the store says what the model says, and delivers only approved."""
        for key in KEYS:
            if key in self.unsure:
                continue
            record = self.store.state.get(key)
            assert (None if record is None else record.status) == self.model.get(key), key
            assert self.store.deliverable(key) == (self.model.get(key) is AssetStatus.APPROVED)

    @invariant()
    def consistent_once_repaired(self) -> None:
        """With nothing unsure and the hooks up, a repaired store is consistent with its audit."""
        if self.unsure or self.audit.broken:
            return
        self.store.repair()
        assert_consistent(self.store, _Ports(self.root), self.audit)  # type: ignore[arg-type]


TestReviewMachine = ReviewMachine.TestCase


# Any text: letters, controls, NUL, and lone surrogates (what surrogateescape makes of bytes).
ANY_TEXT = st.text(
    st.one_of(st.characters(codec=None, exclude_categories=()), st.characters(categories=["Cs"])),
    max_size=30,
)


@settings(max_examples=80, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(by=ANY_TEXT, reason=st.one_of(st.none(), ANY_TEXT))
def test_the_store_takes_exactly_what_the_trail_can_write(by: str, reason: str | None) -> None:
    """A decision is refused with nothing changed, or committed and audited with nothing owed."""
    root = Path(tempfile.mkdtemp(prefix="review-text-"))
    try:
        trail = AuditTrail.jsonl(root / "audit.jsonl")
        store = ReviewStore.embedded(root / "store", moderator=Stub("review"), audit=trail)
        store.put(image(1), key="k.png")
        before = store.state.get("k.png")
        try:
            store.reject("k.png", by=by, reason=reason)
        except ValueError:
            assert store.state.get("k.png") == before
            assert [e.event for e in trail.history("k.png")] == ["upload"]
            return
        after = store.state.get("k.png")
        assert after is not None
        assert after.outbox == ()
        assert [(e.event, e.actor, e.reason) for e in trail.history("k.png")] == [
            ("upload", "moderation", None),
            ("reject", by, reason),
        ]
    finally:
        shutil.rmtree(root, ignore_errors=True)
