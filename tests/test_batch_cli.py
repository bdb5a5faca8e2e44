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
    """Exit 1 when something is flagged; a re-run checks nothing again and says so."""
    root = _dataset(tmp_path / "d")
    ledger = str(tmp_path / "l.jsonl")
    assert main(["batch", str(root), "--ledger", ledger]) == EXIT_FLAGGED
    assert "block 1" in capsys.readouterr().out
    assert main(["batch", str(root), "--ledger", ledger, "--json"]) == EXIT_ALLOWED
    summary = json.loads(capsys.readouterr().out)
    assert summary["already_done"] == 3  # the two images and dataset_info.json (skipped)
    assert summary["total"] == 0


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
    assert (held / "sub" / "x.jpg").exists()
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
    assert "held/unsafe.png" in keys
    assert "ds/unsafe.png" not in keys
    assert "instance prompt: no dataset_info.json" in capsys.readouterr().out
