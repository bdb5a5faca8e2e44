"""The Ray Data engine on a local Ray instance: same records, exactly once, resumable."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from safegen import ImageModerator, ModerationLabel, ModerationPolicy
from safegen.batch import Item, Ledger

ray = pytest.importorskip("ray")
from safegen.batch.ray import RayEngine  # noqa: E402 - only with the extra

POLICY = ModerationPolicy()
# Ray Data's DataContext warns about its own deprecated options when it copies itself
# (ray 2.60): only those, from that module.
pytestmark = [
    pytest.mark.slow,  # a local Ray instance: about a minute on a busy 2-core machine
    pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.data.context"),
]


@pytest.fixture(scope="module", autouse=True)
def local_ray() -> Iterator[None]:
    """One local Ray instance (2 CPUs, no dashboard) for the module, shut down after."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _build() -> ImageModerator:
    """Build the moderator in an actor: Weapons for images whose bytes say so."""
    from safegen.reports import ImageReport
    from safegen.testing import FakeImageBackend

    def respond(image: object) -> ImageReport:
        unsafe = isinstance(image, bytes) and b"unsafe" in image
        labels = [ModerationLabel("Weapons", 99.0, parent="Violence")] if unsafe else []
        return ImageReport(labels=tuple(labels), model_version="7.0")

    return ImageModerator(FakeImageBackend(respond=respond), POLICY)


def _items(root: Path, count: int) -> list[Item]:
    root.mkdir(exist_ok=True)
    items = []
    for index in range(count):
        path = root / f"{index:03d}.png"
        path.write_bytes(b"unsafe" if index % 4 == 0 else b"fine")
        items.append(Item(str(path), path))
    return items


def test_ray_checks_each_item_once_and_resumes(tmp_path: Path) -> None:
    """Two actors, chunks of 11: every item one final record, a second run checks nothing."""
    items = [*_items(tmp_path / "d", 20), Item("gone", problem="bad_manifest_line")]
    engine = RayEngine(lambda: _build(), workers=2, batch_size=3, chunk_size=11)
    where = tmp_path / "l.jsonl"
    with Ledger.open(where, policy=POLICY, engine="ray") as ledger:
        first = engine.run(items + items[:3], ledger)  # duplicates in the source: once
    assert first.checked == 20
    assert first.actions["block"] == 5 + 1  # the unsafe ones and the bad line
    assert first.labels == {"Violence": 5}
    with Ledger.open(where, policy=POLICY, engine="ray") as ledger:
        second = engine.run(items, ledger)
    assert second.total == 0
    assert second.already_done == 21
    refs = [
        json.loads(line)["ref"]
        for line in where.read_text().splitlines()
        if json.loads(line)["kind"] == "item"
    ]
    assert sorted(refs) == sorted(item.ref for item in items)


def test_ray_and_the_client_engine_write_the_same_verdicts(tmp_path: Path) -> None:
    """The same items through both engines: the same outcome, action and labels per ref."""
    from safegen.batch import ClientEngine

    items = _items(tmp_path / "d", 9)
    records = {}
    for name, engine in (
        ("client", ClientEngine(_build())),
        ("ray", RayEngine(lambda: _build(), workers=1, batch_size=4)),
    ):
        where = tmp_path / f"{name}.jsonl"
        with Ledger.open(where, policy=POLICY, engine=name) as ledger:
            engine.run(items, ledger)
        records[name] = {
            data["ref"]: (data["outcome"], data["action"], data["labels"])
            for data in map(json.loads, where.read_text().splitlines())
            if data["kind"] == "item"
        }
    assert records["client"] == records["ray"]


def _lax() -> ImageModerator:
    """Build, in an actor, a moderator whose own policy blocks nothing the tests send."""
    import attrs

    return attrs.evolve(_build(), policy=ModerationPolicy(block_at=99.9, review_at=99.9))


def test_ray_judges_by_the_ledgers_policy_and_draws_each_ref_once(tmp_path: Path) -> None:
    """A lax moderator under a ledger's policy: the ledger's policy decides; duplicates once."""
    items = _items(tmp_path / "d", 8)
    source = [items[0], *items, items[1], items[7], items[7]]  # across and within chunks
    engine = RayEngine(_lax, workers=1, batch_size=4, chunk_size=3)
    where = tmp_path / "l.jsonl"
    with Ledger.open(where, policy=POLICY, engine="ray") as ledger:
        summary = engine.run(source, ledger)
    records = [data for data in map(json.loads, where.read_text().splitlines())
               if data["kind"] == "item"]  # fmt: skip
    assert sorted(record["ref"] for record in records) == sorted(item.ref for item in items)
    assert summary.actions == {"allow": 6, "block": 2}  # 000 and 004 say "unsafe"
    assert {record["policy_sha256"] for record in records} == {POLICY.sha256}
