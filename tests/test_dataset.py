"""The training-data filter: check, report first, quarantine or remove, restore; local and S3."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from safegen import ImageModerator, ModerationLabel, ModerationPolicy, PromptModerator, RuleFilter
from safegen.aws.s3 import S3Dataset, open_ledger
from safegen.batch import ClientEngine, Ledger
from safegen.dataset import (
    NOT_AN_IMAGE,
    DatasetError,
    DatasetMoveError,
    DatasetReport,
    LocalDataset,
    check_dataset,
    default_ledger,
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
        [copy] = held.glob("safegen-*/sub/bad.jpg")  # the dataset's own sub-prefix
        assert copy.read_bytes() == b"an unsafe picture"
        assert not (root / "sub" / "bad.jpg").exists()
        assert restore(store, ledger) == 1
    assert (root / "sub" / "bad.jpg").exists()
    assert not list(held.glob("*/sub/bad.jpg"))


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
            assert list(held.glob("safegen-*/sub/bad.jpg"))
            assert not (root / "sub" / "bad.jpg").exists()
        else:
            restore(store, ledger)
            assert (root / "sub" / "bad.jpg").exists()
            assert not list(held.glob("*/sub/bad.jpg"))
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

        [key] = keys()
        assert key.startswith("quarantine/safegen-")
        assert key.endswith("/unsafe.jpg")
        assert restore(store, ledger) == 1
    listed = s3.list_objects_v2(Bucket="train", Prefix="ds/")["Contents"]
    assert "ds/unsafe.jpg" in [o["Key"] for o in listed]


# Red team 13: every file accounted for, one ledger per dataset, no overwrite, no hang.

_NAMES = st.lists(
    st.tuples(
        st.text(alphabet="abcXYZ09_-. ", min_size=1, max_size=8).filter(
            lambda n: n.strip(" .") == n and n not in (".", "..")
        ),
        st.sampled_from(
            [
                "",
                ".png",
                ".PNG",
                ".jpg",
                ".webp",
                ".heic",
                ".avif",
                ".jfif",
                ".png.bak",
                ".json",
                ".txt",
            ]
        ),
        st.booleans(),
    ),
    max_size=6,
    unique_by=lambda t: (t[0] + t[1]).lower(),
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(files=_NAMES)
def test_every_file_is_checked_or_a_failure(tmp_path_factory: Any, files: Any) -> None:
    """Every file but dataset_info.json gets a final record; a non-image one is a failure."""
    base = tmp_path_factory.mktemp("every")
    root = _dataset(base / "data")
    names = {"ok.png", "sub/bad.jpg"}
    for stem, suffix, unsafe in files:
        name = stem + suffix
        if name in ("dataset_info.json", "ok.png", "sub"):
            continue
        (root / name).write_bytes(b"an unsafe one" if unsafe else b"fine")
        names.add(name)
    with Ledger.open(base / "l.jsonl", policy=POLICY, engine="client") as ledger:
        report = _check(LocalDataset(root), ledger)
        recorded = {ref for ref in ledger.done if not ref.endswith("#instance_prompt")}
    assert recorded == {str(root / name) for name in names}
    assert not report.clean  # sub/bad.jpg at least
    for record in report.images_flagged:
        name = record.ref.rsplit("/", 1)[-1]
        image = os.path.splitext(name)[1].lower() in {".png", ".jpg", ".webp"}
        assert image or record.error == NOT_AN_IMAGE


@pytest.mark.parametrize("name", ["evil", "evil.heic", "evil.png.bak", "evil.jfif", ".hidden"])
def test_a_file_that_is_not_an_image_makes_the_dataset_unclean(tmp_path: Path, name: str) -> None:
    """A file a trainer reads but safegen cannot check is a failure, quarantined like a flag."""
    root = _dataset(tmp_path / "data")
    (root / "sub" / "bad.jpg").unlink()
    (root / name).write_bytes(b"an unsafe picture with no image name")
    store = LocalDataset(root)
    with Ledger.open(tmp_path / "l.jsonl", policy=POLICY, engine="client") as ledger:
        report = _check(store, ledger)
        assert not report.clean
        assert [(r.ref, r.error) for r in report.images_flagged] == [
            (str(root / name), NOT_AN_IMAGE)
        ]
        assert quarantine(store, ledger, report, str(tmp_path / "q")) == 1
    assert not (root / name).exists()


def test_an_s3_dataset_accounts_for_every_object(s3: Any) -> None:
    """On S3, .webp/.gif/no-extension objects are checked or failures; never clean unlisted."""
    for key in ("ds/x.webp", "ds/x.gif", "ds/noext", "ds/notes.txt"):
        s3.put_object(Bucket="train", Key=key, Body=b"x")
    s3.delete_object(Bucket="train", Key="ds/unsafe.jpg")
    store = S3Dataset(s3, "s3://train/ds")
    with open_ledger(s3, "s3://train/ledgers/ds", policy=POLICY, engine="client") as ledger:
        report = check_dataset(
            store, engine=ClientEngine(_moderator()), prompts=_prompts(), ledger=ledger
        )
        done = sorted(r for r in ledger.done if not r.endswith("#instance_prompt"))
    assert done == [
        f"s3://train/ds/{k}" for k in ("noext", "notes.txt", "ok.png", "x.gif", "x.webp")
    ]
    assert sorted(r.ref for r in report.images_flagged) == [
        "s3://train/ds/noext",
        "s3://train/ds/notes.txt",
    ]
    assert not report.clean


def test_a_ledger_is_bound_to_its_dataset(tmp_path: Path) -> None:
    """Another dataset's ledger is refused; nothing of dataset A is ever touched by B's run."""
    a = _dataset(tmp_path / "a")
    b = tmp_path / "b"
    b.mkdir()
    (b / "ok.png").write_bytes(b"fine")
    where = tmp_path / "shared.jsonl"
    with Ledger.open(where, policy=POLICY, engine="client") as ledger:
        _check(LocalDataset(a), ledger)
    with Ledger.open(where, policy=POLICY, engine="client") as ledger:
        with pytest.raises(DatasetError, match="another dataset"):
            _check(LocalDataset(b), ledger)
        with pytest.raises(DatasetError, match="another dataset"):
            restore(LocalDataset(b), ledger)
    assert (a / "sub" / "bad.jpg").exists()
    assert default_ledger(LocalDataset(a)) != default_ledger(LocalDataset(b))
    assert not default_ledger(LocalDataset(a)).startswith(str(a) + os.sep)


def test_the_report_and_moves_take_only_this_datasets_refs(tmp_path: Path) -> None:
    """An unbound ledger with another dataset's flagged records: B's report and moves skip them."""
    a = _dataset(tmp_path / "a")
    b = tmp_path / "b"
    b.mkdir()
    (b / "ok.png").write_bytes(b"fine")
    where = tmp_path / "old.jsonl"
    with Ledger.open(where, policy=POLICY, engine="client") as ledger:
        ClientEngine(_moderator()).run(LocalDataset(a).items(), ledger)  # no dataset note
    with Ledger.open(where, policy=POLICY, engine="client") as ledger:
        report = _check(LocalDataset(b), ledger)
        assert report.clean
        assert remove(LocalDataset(b), ledger, report) == 0
    assert (a / "sub" / "bad.jpg").exists()


@pytest.mark.parametrize("how", ["link_to_dataset", "link_to_inside", "dataset_inside"])
def test_an_overlapping_quarantine_is_refused_through_links(tmp_path: Path, how: str) -> None:
    """The prefix is resolved whole: a link into the dataset, or a parent of it, is refused."""
    root = _dataset(tmp_path / "data")
    prefix = tmp_path / "q"
    if how == "link_to_dataset":
        prefix.symlink_to(root)
    elif how == "link_to_inside":
        prefix.symlink_to(root / "sub")
    else:
        prefix = tmp_path
    store = LocalDataset(root)
    with Ledger.open(tmp_path / "l.jsonl", policy=POLICY, engine="client") as ledger:
        report = _check(store, ledger)
        with pytest.raises(ConfigurationError, match="outside"):
            quarantine(store, ledger, report, str(prefix))
    assert (root / "sub" / "bad.jpg").read_bytes() == b"an unsafe picture"


def test_restore_never_overwrites_a_new_file(tmp_path: Path) -> None:
    """A new file at the quarantined image's name is kept; the restore fails for that one only."""
    root = _dataset(tmp_path / "data")
    store = LocalDataset(root)
    with Ledger.open(tmp_path / "l.jsonl", policy=POLICY, engine="client") as ledger:
        report = _check(store, ledger)
        quarantine(store, ledger, report, str(tmp_path / "q"))
        (root / "sub" / "bad.jpg").write_bytes(b"a new picture")
        with pytest.raises(DatasetMoveError) as failed:
            restore(store, ledger)
        assert failed.value.failures == ((str(root / "sub" / "bad.jpg"), "destination_exists"),)
        (root / "sub" / "bad.jpg").unlink()
        assert restore(store, ledger) == 1  # not stuck: completable once the place is free
    assert (root / "sub" / "bad.jpg").read_bytes() == b"an unsafe picture"


def test_two_datasets_quarantined_to_one_prefix_do_not_mix(tmp_path: Path) -> None:
    """Same relative names, one prefix: each dataset gets its own image back."""
    held = str(tmp_path / "q")
    roots = [_dataset(tmp_path / "a"), _dataset(tmp_path / "b")]
    (roots[1] / "sub" / "bad.jpg").write_bytes(b"B's unsafe picture")
    for index, root in enumerate(roots):
        store = LocalDataset(root)
        with Ledger.open(tmp_path / f"{index}.jsonl", policy=POLICY, engine="client") as ledger:
            assert quarantine(store, ledger, _check(store, ledger), held) == 1
    for index, root in enumerate(roots):
        with Ledger.open(tmp_path / f"{index}.jsonl", policy=POLICY, engine="client") as ledger:
            assert restore(LocalDataset(root), ledger) == 1
    assert (roots[0] / "sub" / "bad.jpg").read_bytes() == b"an unsafe picture"
    assert (roots[1] / "sub" / "bad.jpg").read_bytes() == b"B's unsafe picture"


@pytest.mark.parametrize("kind", ["fifo", "directory"])
def test_an_info_file_that_is_not_a_regular_file(tmp_path: Path, kind: str) -> None:
    """A FIFO never hangs, a directory never crashes: a DatasetError, a failed prompt record."""
    root = _dataset(tmp_path / "data")
    (root / "dataset_info.json").unlink()
    if kind == "fifo":
        os.mkfifo(root / "dataset_info.json")
    else:
        (root / "dataset_info.json").mkdir()
    store = LocalDataset(root)
    with pytest.raises(DatasetError, match="not a regular file"):
        store.read_info()
    with Ledger.open(tmp_path / "l.jsonl", policy=POLICY, engine="client") as ledger:
        report = _check(store, ledger)
    assert report.prompt is not None
    assert report.prompt.error == "info_not_a_file"
    assert not report.clean


@pytest.mark.parametrize("extra", [0, 1])
def test_an_over_long_instance_prompt_is_a_finding(tmp_path: Path, extra: int) -> None:
    """At the limit the prompt is checked; one over, a failed record; the images checked anyway."""
    limit = PromptModerator(RuleFilter.default()).max_chars
    root = _dataset(tmp_path / "data", prompt="x" * (limit + extra))
    with Ledger.open(tmp_path / "l.jsonl", policy=POLICY, engine="client") as ledger:
        report = _check(LocalDataset(root), ledger)
    assert report.prompt is not None
    assert (report.prompt.error == "prompt_invalid") == bool(extra)
    assert [r.ref for r in report.images_flagged if r.error is None] == [
        str(root / "sub" / "bad.jpg")
    ]  # the images were checked either way


def test_quarantine_remove_restore_never_wedges_the_ledger(tmp_path: Path) -> None:
    """Remove after quarantine counts once; restore of a removed image is a per-item failure."""
    root = _dataset(tmp_path / "data")
    store = LocalDataset(root)
    with Ledger.open(tmp_path / "l.jsonl", policy=POLICY, engine="client") as ledger:
        report = _check(store, ledger)
        assert quarantine(store, ledger, report, str(tmp_path / "q")) == 1
        assert remove(store, ledger, report) == 1
        assert remove(store, ledger, report) == 0
        for _ in range(2):
            with pytest.raises(DatasetMoveError) as failed:
                restore(store, ledger)
            assert failed.value.failures == ((str(root / "sub" / "bad.jpg"), "removed"),)
        assert quarantine(store, ledger, report, str(tmp_path / "q")) == 0
    assert not list((tmp_path / "q").rglob("bad.jpg"))


def test_an_intent_whose_files_are_gone_is_closed_not_retried_forever(tmp_path: Path) -> None:
    """A crash, then both copies gone: the intent fails once, and later calls go on."""
    root = _dataset(tmp_path / "data")
    where = tmp_path / "l.jsonl"
    with Ledger.open(where, policy=POLICY, engine="client") as ledger:
        crashing = _CrashingStore(root)
        report = _check(crashing, ledger)
        with pytest.raises(KeyboardInterrupt):
            quarantine(crashing, ledger, report, str(tmp_path / "q"))
    (root / "sub" / "bad.jpg").unlink()
    with Ledger.open(where, policy=POLICY, engine="client") as ledger:
        store = LocalDataset(root)
        with pytest.raises(DatasetMoveError):
            restore(store, ledger)
        assert restore(store, ledger) == 0


def test_an_s3_restore_never_overwrites_a_new_object(s3: Any) -> None:
    """On S3 a copy would replace the key: a new object at the image's key is kept."""
    store = S3Dataset(s3, "s3://train/ds")
    with open_ledger(s3, "s3://train/ledgers/ds", policy=POLICY, engine="client") as ledger:
        report = check_dataset(
            store, engine=ClientEngine(_moderator()), prompts=_prompts(), ledger=ledger
        )
        assert quarantine(store, ledger, report, "s3://train/quarantine/") == 1
        s3.put_object(Bucket="train", Key="ds/unsafe.jpg", Body=b"a new picture")
        with pytest.raises(DatasetMoveError) as failed:
            restore(store, ledger)
        assert failed.value.failures == (("s3://train/ds/unsafe.jpg", "destination_exists"),)
    kept = s3.get_object(Bucket="train", Key="ds/unsafe.jpg")["Body"].read()
    assert kept == b"a new picture"


def test_a_replaced_image_is_checked_again_with_the_same_ledger(tmp_path: Path) -> None:
    """A safe image replaced by an unsafe one under its name is judged again on re-check."""
    root = _dataset(tmp_path / "data")
    (root / "sub" / "bad.jpg").unlink()
    where = tmp_path / "l.jsonl"
    with Ledger.open(where, policy=POLICY, engine="client") as ledger:
        assert _check(LocalDataset(root), ledger).clean
    (root / "ok.png").unlink()
    (root / "ok.png").write_bytes(b"now an unsafe picture")
    with Ledger.open(where, policy=POLICY, engine="client") as ledger:
        report = _check(LocalDataset(root), ledger)
    assert [r.ref for r in report.images_flagged] == [str(root / "ok.png")]
