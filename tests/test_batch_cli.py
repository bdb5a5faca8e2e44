"""``safegen batch`` and ``safegen dataset``: exit codes, resuming, report first, S3."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws

from safegen import ImageModerator, ModerationLabel
from safegen.cli import EXIT_ALLOWED, EXIT_ERROR, EXIT_FLAGGED, _batch, main
from safegen.reports import ImageReport, S3Object
from safegen.testing import FakeImageBackend
from tests.aws import fake_client


def _respond(image: object) -> ImageReport:
    name = image.key.encode() if isinstance(image, S3Object) else bytes(image)  # type: ignore[call-overload]
    unsafe = b"unsafe" in name
    labels = [ModerationLabel("Weapons", 99.0, parent="Violence")] if unsafe else []
    return ImageReport(labels=tuple(labels), model_version="7.0")


@pytest.fixture(autouse=True)
def fake_moderator(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every command judges with a fake backend under the chosen policy."""
    monkeypatch.setattr(
        _batch,
        "image_moderator",
        lambda args, chosen: ImageModerator(FakeImageBackend(respond=_respond), chosen.policy),
    )


def _dataset(root: Path) -> Path:
    (root / "sub").mkdir(parents=True)
    (root / "dataset_info.json").write_text(json.dumps({"instance_prompt": "a photo of sks"}))
    (root / "ok.png").write_bytes(b"fine")
    (root / "sub" / "x.jpg").write_bytes(b"unsafe")
    return root


def test_batch_over_a_directory_resumes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Exit 1 when something is flagged; a re-run checks nothing again, still exits 1."""
    root = _dataset(tmp_path / "d")
    ledger = str(tmp_path / "l.jsonl")
    assert main(["batch", str(root), "--ledger", ledger]) == EXIT_FLAGGED
    assert "block 1" in capsys.readouterr().out
    # the exit code is the whole ledger's: the block an earlier run recorded still counts
    assert main(["batch", str(root), "--ledger", ledger, "--json"]) == EXIT_FLAGGED
    summary = json.loads(capsys.readouterr().out)
    assert summary["already_done"] == 3  # the two images and dataset_info.json (skipped)
    assert summary["total"] == 0
    assert summary["ledger_total"] == {"flagged": 1, "failed": 0}


def test_a_resumed_batch_exits_by_every_settled_item(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Killed after recording a block, resumed over the rest (all safe): exit 1, not 0."""
    root = tmp_path / "d"
    root.mkdir()
    (root / "a.png").write_bytes(b"unsafe")
    ledger = str(tmp_path / "l.jsonl")
    assert main(["batch", str(root), "--ledger", ledger]) == EXIT_FLAGGED
    (root / "b.png").write_bytes(b"fine")  # what the killed run had not reached yet
    assert main(["batch", str(root), "--ledger", ledger]) == EXIT_FLAGGED
    assert "in all: 1 flagged" in capsys.readouterr().out
    other = tmp_path / "clean"
    other.mkdir()
    (other / "c.png").write_bytes(b"fine")
    assert main(["batch", str(other), "--ledger", str(tmp_path / "m.jsonl")]) == EXIT_ALLOWED


def test_dataset_ledgers_are_each_datasets_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """From one directory, with the default ledger, B's --remove never touches A's images."""
    monkeypatch.chdir(tmp_path)
    a = _dataset(tmp_path / "a")
    b = tmp_path / "b"
    b.mkdir()
    (b / "ok.png").write_bytes(b"fine")
    assert main(["dataset", "check", str(a), "--report", "ra.json"]) == EXIT_FLAGGED
    assert main(["dataset", "check", str(b), "--remove", "--yes", "--report", "rb.json"]) == (
        EXIT_ALLOWED
    )
    assert (a / "sub" / "x.jpg").exists()
    assert (tmp_path / "a.safegen-dataset.jsonl").exists()
    assert (tmp_path / "b.safegen-dataset.jsonl").exists()
    code = main(["dataset", "check", str(b), "--ledger", "a.safegen-dataset.jsonl",
                 "--report", "rb.json"])  # fmt: skip
    assert code == EXIT_ERROR
    assert "another dataset" in capsys.readouterr().err


def test_a_report_inside_the_dataset_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A trainer reads every file of the dataset: the report is not written there."""
    root = _dataset(tmp_path / "d")
    code = main(["dataset", "check", str(root), "--report", str(root / "r.json")])
    assert code == EXIT_ERROR
    assert "inside the dataset" in capsys.readouterr().err
    assert not (root / "r.json").exists()


def test_a_dataset_file_that_is_not_an_image_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file safegen cannot check exits 3 (could not check), on the first run and a re-run."""
    root = _dataset(tmp_path / "d")
    (root / "sub" / "x.jpg").unlink()
    (root / "notes").write_bytes(b"fine")
    args = ["--report", str(tmp_path / "r.json")]
    assert main(["dataset", "check", str(root), *args]) == EXIT_ERROR
    assert main(["dataset", "check", str(root), *args]) == EXIT_ERROR


def test_batch_refuses_another_policy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Resuming with another policy is an error naming the way out."""
    root = _dataset(tmp_path / "d")
    ledger = str(tmp_path / "l.jsonl")
    main(["batch", str(root), "--ledger", ledger, "--policy", "general"])
    capsys.readouterr()
    assert main(["batch", str(root), "--ledger", ledger, "--policy", "strict"]) == EXIT_ERROR
    assert "another policy" in capsys.readouterr().err


def test_a_manifest_with_a_bad_line_is_a_failure_not_a_crash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad manifest line is counted as could-not-check (exit 3); the others are checked."""
    manifest = tmp_path / "m.jsonl"
    manifest.write_text('{"source-ref": "s3://bkt/a.png"}\n{"source-ref": 3}\n')
    code = main(["batch", str(manifest), "--ledger", str(tmp_path / "l"), "--backend", "aws",
                 "--json"])  # fmt: skip
    assert code == EXIT_ERROR
    summary = json.loads(capsys.readouterr().out)
    assert summary["failures"] == {"bad_manifest_line": 1}
    assert summary["checked"] == 1


def test_dataset_quarantine_and_restore(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The report is written, the unsafe image moved out; restore brings it back."""
    root = _dataset(tmp_path / "d")
    held = tmp_path / "held"
    args = ["--ledger", str(tmp_path / "l.jsonl")]
    report = tmp_path / "r.json"
    code = main(["dataset", "check", str(root), "--quarantine", str(held), "--report",
                 str(report), *args])  # fmt: skip
    assert code == EXIT_FLAGGED
    assert "quarantined 1 images" in capsys.readouterr().out
    assert json.loads(report.read_text())["flagged"][0]["ref"] == str(root / "sub" / "x.jpg")
    assert list(held.glob("safegen-*/sub/x.jpg"))  # the dataset's own sub-prefix
    assert main(["dataset", "restore", str(root), *args]) == EXIT_ALLOWED
    assert (root / "sub" / "x.jpg").exists()


def test_dataset_remove_needs_yes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--remove without --yes changes nothing; with it, the report is written and then removal."""
    root = _dataset(tmp_path / "d")
    args = ["--ledger", str(tmp_path / "l.jsonl"), "--report", str(tmp_path / "r.json")]
    assert main(["dataset", "check", str(root), "--remove", *args]) == EXIT_ERROR
    assert "--yes" in capsys.readouterr().err
    assert (root / "sub" / "x.jpg").exists()
    assert main(["dataset", "check", str(root), "--remove", "--yes", *args]) == EXIT_FLAGGED
    assert not (root / "sub" / "x.jpg").exists()
    assert (tmp_path / "r.json").exists()


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Moto S3 with a small dataset; the commands' S3 client points at it."""
    with mock_aws():
        client = fake_client("s3")
        client.create_bucket(Bucket="train")
        client.put_object(Bucket="train", Key="ds/ok.png", Body=b"x")
        client.put_object(Bucket="train", Key="ds/unsafe.png", Body=b"x")
        monkeypatch.setattr(_batch, "s3_client", lambda args: client)
        yield client


def test_dataset_check_on_s3_with_an_s3_ledger(
    s3: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """s3:// dataset, ledger and quarantine: the unsafe object is moved, nothing downloaded."""
    code = main(["dataset", "check", "s3://train/ds/", "--backend", "aws", "--ledger",
                 "s3://train/ledgers/ds", "--quarantine", "s3://train/held/", "--report",
                 str(tmp_path / "r.json")])  # fmt: skip
    assert code == EXIT_FLAGGED
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="train")["Contents"])
    assert any(k.startswith("held/safegen-") and k.endswith("/unsafe.png") for k in keys)
    assert "ds/unsafe.png" not in keys
    assert "instance prompt: no dataset_info.json" in capsys.readouterr().out
