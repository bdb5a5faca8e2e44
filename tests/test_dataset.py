"""The training-data filter: check, report first, quarantine or remove, restore; local and S3."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws

from safegen import ImageModerator, ModerationLabel, ModerationPolicy, PromptModerator, RuleFilter
from safegen.aws.s3 import S3Dataset, open_ledger
from safegen.batch import ClientEngine, Ledger
from safegen.dataset import (
    DatasetReport,
    LocalDataset,
    check_dataset,
    quarantine,
    remove,
    restore,
    write_report,
)
from safegen.errors import ConfigurationError
from safegen.reports import ImageReport, S3Object
from safegen.testing import FakeImageBackend
from tests.aws import fake_client

POLICY = ModerationPolicy()
UNSAFE = b"unsafe"


def _report(image: object) -> ImageReport:
    """Weapons for an image whose bytes (or key) say unsafe; nothing otherwise."""
    name = image.key.encode() if isinstance(image, S3Object) else bytes(image)  # type: ignore[call-overload]
    labels = [ModerationLabel("Weapons", 99.0, parent="Violence")] if UNSAFE in name else []
    return ImageReport(labels=tuple(labels), model_version="7.0")


def _moderator() -> ImageModerator:
    return ImageModerator(FakeImageBackend(respond=_report), POLICY)


def _prompts() -> PromptModerator:
    return PromptModerator(RuleFilter.default())


def _dataset(root: Path, prompt: str = "a photo of sks dog") -> Path:
    root.mkdir()
    (root / "dataset_info.json").write_text(json.dumps({"instance_prompt": prompt}))
    (root / "ok.png").write_bytes(b"fine picture")
    (root / "sub").mkdir()
    (root / "sub" / "bad.jpg").write_bytes(b"an unsafe picture")
    return root


def _check(store: Any, ledger: Ledger) -> DatasetReport:
    return check_dataset(store, images=_moderator(), prompts=_prompts(), ledger=ledger)


def test_flag_reports_and_changes_nothing(tmp_path: Path) -> None:
    """The default: the unsafe image is in the report; the dataset is untouched."""
    root = _dataset(tmp_path / "data")
    with Ledger.open(tmp_path / "l.jsonl", policy=POLICY, engine="client") as ledger:
        report = _check(LocalDataset(root), ledger)
    assert [r.ref for r in report.images_flagged] == [str(root / "sub" / "bad.jpg")]
    assert report.prompt is not None
    assert report.prompt.action == "allow"
    write_report(report, tmp_path / "report.json")
    written = json.loads((tmp_path / "report.json").read_text())
    assert written["flagged"][0]["labels"] == ["Violence/Weapons"]
    assert (root / "sub" / "bad.jpg").exists()


def test_an_unsafe_instance_prompt_is_flagged(tmp_path: Path) -> None:
    """The instance prompt is moderated too; without one the report says so."""
    root = _dataset(tmp_path / "data", prompt="a photo of sks person, nude")
    with Ledger.open(tmp_path / "l.jsonl", policy=POLICY, engine="client") as ledger:
        report = _check(LocalDataset(root), ledger)
    assert report.prompt is not None
    assert report.prompt.action != "allow"
    assert report.prompt in report.flagged
    assert report.prompt not in report.images_flagged
    (root / "dataset_info.json").write_text("[]")
    with Ledger.open(tmp_path / "m.jsonl", policy=POLICY, engine="client") as ledger:
        broken = _check(LocalDataset(root), ledger)
    assert broken.prompt is not None
    assert broken.prompt.error == "no_instance_prompt"  # fails closed


def test_quarantine_then_restore_round_trips(tmp_path: Path) -> None:
    """Quarantine moves the flagged image out; restore puts it back; both are recorded."""
    root = _dataset(tmp_path / "data")
    held = tmp_path / "held"
    store = LocalDataset(root)
    with Ledger.open(tmp_path / "l.jsonl", policy=POLICY, engine="client") as ledger:
        report = _check(store, ledger)
        assert quarantine(store, ledger, report, str(held)) == 1
        assert quarantine(store, ledger, report, str(held)) == 0  # idempotent
        assert (held / "sub" / "bad.jpg").read_bytes() == b"an unsafe picture"
        assert not (root / "sub" / "bad.jpg").exists()
        assert restore(store, ledger) == 1
    assert (root / "sub" / "bad.jpg").exists()
    assert not (held / "sub" / "bad.jpg").exists()


def test_a_quarantine_inside_the_dataset_is_refused(tmp_path: Path) -> None:
    """Quarantining into the dataset itself would hide nothing: refused before any move."""
    root = _dataset(tmp_path / "data")
    store = LocalDataset(root)
    with Ledger.open(tmp_path / "l.jsonl", policy=POLICY, engine="client") as ledger:
        report = _check(store, ledger)
        with pytest.raises(ConfigurationError, match="outside"):
            quarantine(store, ledger, report, str(root / "q"))
    assert (root / "sub" / "bad.jpg").exists()


class _CrashingStore(LocalDataset):
    """A local dataset whose next move dies after the intent is recorded (a crash)."""

    crash = True

    def move(self, ref: str, to: str) -> None:
        if self.crash:
            self.crash = False
            raise KeyboardInterrupt  # the process dies here
        super().move(ref, to)


@pytest.mark.parametrize("then", ["complete", "undo"])
def test_an_interrupted_quarantine_is_completed_or_undone(tmp_path: Path, then: str) -> None:
    """A crash between intent and move: running again completes it, or restore undoes it."""
    root = _dataset(tmp_path / "data")
    held = tmp_path / "held"
    where = tmp_path / "l.jsonl"
    with Ledger.open(where, policy=POLICY, engine="client") as ledger:
        crashing = _CrashingStore(root)
        report = _check(crashing, ledger)
        with pytest.raises(KeyboardInterrupt):
            quarantine(crashing, ledger, report, str(held))
    with Ledger.open(where, policy=POLICY, engine="client") as ledger:
        store = LocalDataset(root)
        if then == "complete":
            quarantine(store, ledger, _check(store, ledger), str(held))
            assert (held / "sub" / "bad.jpg").exists()
            assert not (root / "sub" / "bad.jpg").exists()
        else:
            restore(store, ledger)
            assert (root / "sub" / "bad.jpg").exists()
            assert not (held / "sub" / "bad.jpg").exists()
        phases = [(n["op"], n["phase"]) for n in ledger.notes("move")]
    assert phases[0] == ("quarantine", "intent")
    assert phases.count(("quarantine", "done")) == 1


def test_remove_deletes_only_what_was_flagged(tmp_path: Path) -> None:
    """Remove deletes the flagged images, recorded; the safe ones and the info file stay."""
    root = _dataset(tmp_path / "data")
    store = LocalDataset(root)
    with Ledger.open(tmp_path / "l.jsonl", policy=POLICY, engine="client") as ledger:
        report = _check(store, ledger)
        write_report(report, tmp_path / "report.json")
        assert remove(store, ledger, report) == 1
    assert sorted(p.name for p in root.rglob("*") if p.is_file()) == [
        "dataset_info.json",
        "ok.png",
    ]


@pytest.fixture
def s3() -> Iterator[Any]:
    """An S3 client on a fresh moto bucket holding a small dataset."""
    with mock_aws():
        client = fake_client("s3")
        client.create_bucket(Bucket="train")
        client.put_object(
            Bucket="train",
            Key="ds/dataset_info.json",
            Body=json.dumps({"instance_prompt": "a photo of sks cat"}).encode(),
        )
        client.put_object(Bucket="train", Key="ds/ok.png", Body=b"x")
        client.put_object(Bucket="train", Key="ds/unsafe.jpg", Body=b"x")
        yield client


def test_an_s3_dataset_is_quarantined_and_restored(s3: Any) -> None:
    """On S3 (moto): images moderated in place, the unsafe one moved out and back."""
    store = S3Dataset(s3, "s3://train/ds")
    with open_ledger(s3, "s3://train/ledgers/ds", policy=POLICY, engine="client") as ledger:
        report = check_dataset(
            store, engine=ClientEngine(_moderator()), prompts=_prompts(), ledger=ledger
        )
        assert [r.ref for r in report.images_flagged] == ["s3://train/ds/unsafe.jpg"]
        assert quarantine(store, ledger, report, "s3://train/quarantine/") == 1

        def keys() -> list[str]:
            return sorted(
                o["Key"] for o in s3.list_objects_v2(Bucket="train", Prefix="q")["Contents"]
            )

        assert keys() == ["quarantine/unsafe.jpg"]
        assert restore(store, ledger) == 1
    listed = s3.list_objects_v2(Bucket="train", Prefix="ds/")["Contents"]
    assert "ds/unsafe.jpg" in [o["Key"] for o in listed]
