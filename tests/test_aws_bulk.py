"""Rekognition bulk analysis as a batch engine: the emulator's jobs, moto's S3, a real ledger."""

from __future__ import annotations

import json
import tracemalloc
import types
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from safegen import ModerationPolicy
from safegen.aws import bulk
from safegen.aws._model import service_model
from safegen.aws.bulk import BulkAnalysisEngine, BulkAnalysisUnavailableError, list_jobs
from safegen.aws.video import Backoff
from safegen.batch import Engine, Item, Ledger, s3_ref
from safegen.errors import ConfigurationError, MalformedResponseError
from safegen.reports import S3Object
from safegen.testing import AWSEmulator
from tests.aws import Clock

ONE_TRY = {"retries": {"mode": "standard", "total_max_attempts": 1}}
WEAPONS = {"Confidence": 93.1, "Name": "Weapons", "ParentName": "Violence", "TaxonomyLevel": 2}
FAILURE_SHAPE: Any = service_model("rekognition").shape_for("MediaAnalysisJobFailureCode")
POLICY = ModerationPolicy(review_at=45, block_at=80, version="p1")


class Killed(BaseException):
    """The process dies here (not an Exception: nothing may catch it)."""


@pytest.fixture
def s3(moto_url: str) -> Any:
    import boto3

    factory: Any = boto3.client
    return factory("s3", region_name="us-east-1", endpoint_url=moto_url,
                   aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip


@pytest.fixture
def bucket(s3: Any) -> str:
    name = f"bulk-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


@pytest.fixture
def aws(s3: Any) -> Iterator[AWSEmulator]:
    with AWSEmulator(seed=2, s3=s3) as emulator:
        emulator.respond("DetectModerationLabels", lambda r: {
            "ModerationLabels": [WEAPONS] if "bad" in r["Image"]["S3Object"]["Name"] else [],
            "ModerationModelVersion": "7.0"})  # fmt: skip
        yield emulator


def engine(aws: AWSEmulator, s3: Any, bucket: str, clock: Clock, **settings: Any) -> Any:
    return BulkAnalysisEngine(aws.client("rekognition", **ONE_TRY), s3=s3, policy=POLICY,
                              bucket=bucket, sleep=clock.sleep, clock=clock,
                              **settings)  # fmt: skip


def images(bucket: str, *keys: str) -> list[Item]:
    return [Item(s3_ref(bucket, key), S3Object(bucket, key)) for key in keys]


def records(path: Path) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    return [line for line in lines if line["kind"] == "item"]


def test_a_batch_is_analysed_and_judged_by_the_policy(
    aws: AWSEmulator, s3: Any, bucket: str, tmp_path: Path
) -> None:
    """Results judged like ImageModerator; summary errors and unusable items are failed."""
    asked: list[float] = []

    def detect(request: dict[str, Any]) -> dict[str, Any]:
        asked.append(request["MinConfidence"])
        unsafe = "bad" in request["Image"]["S3Object"]["Name"]
        return {"ModerationLabels": [WEAPONS] if unsafe else [], "ModerationModelVersion": "7.0"}

    aws.respond("DetectModerationLabels", detect)
    items = [
        *images(bucket, "ok.jpg", "bad.png", "anim.gif"),
        Item(str(tmp_path / "local.png"), tmp_path / "local.png"),
        Item(s3_ref(bucket, "huge.jpg"), S3Object(bucket, "huge.jpg"), size=16 * 1024 * 1024),
    ]
    clock = Clock()
    bulk = engine(aws, s3, bucket, clock)
    assert isinstance(bulk, Engine)
    with Ledger.open(tmp_path / "l.jsonl", policy=POLICY, engine="bulk") as ledger:
        summary = bulk.run(items, ledger)
    got = {r["ref"].rsplit("/", 1)[1]: r for r in records(tmp_path / "l.jsonl")}
    assert (got["ok.jpg"]["outcome"], got["ok.jpg"]["action"]) == ("checked", "allow")
    assert (got["bad.png"]["action"], got["bad.png"]["labels"]) == ("block", ["Violence/Weapons"])
    assert got["bad.png"]["model_version"] == "7.0"
    assert got["bad.png"]["policy_sha256"] == POLICY.sha256
    gif = got["anim.gif"]
    assert (gif["outcome"], gif["error"]) == ("failed", "INVALID_IMAGE_FORMAT")
    assert got["local.png"]["error"] == "not_in_s3"
    assert got["huge.jpg"]["error"] == "too_large"
    assert (summary.checked, summary.failed) == (2, 3)
    assert asked == [45.0, 45.0]  # MinConfidence: the policy's floor
    assert clock.slept == [10.0, 15.0, 22.5]  # CREATED, QUEUED, IN_PROGRESS, then SUCCEEDED


def test_manifests_are_split_at_the_chunk_size(
    aws: AWSEmulator, s3: Any, bucket: str, tmp_path: Path
) -> None:
    """Seven images three a job: three jobs, manifests of 3, 3 and 1 lines."""
    keys = [f"{i}.jpg" for i in range(7)]
    with Ledger.open(tmp_path / "l.jsonl", policy=POLICY, engine="bulk") as ledger:
        summary = engine(aws, s3, bucket, Clock(), chunk=3).run(images(bucket, *keys), ledger)
    assert summary.checked == 7
    assert len(aws.started("StartMediaAnalysisJob")) == 3
    listing = s3.list_objects_v2(Bucket=bucket, Prefix="safegen-bulk/manifests/")["Contents"]
    sizes = sorted(
        len(s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read().splitlines())
        for o in listing
        if not o["Key"].endswith(".refs.jsonl")
    )
    assert sizes == [1, 3, 3]


def test_ten_thousand_and_one_images_are_two_jobs(
    aws: AWSEmulator, s3: Any, bucket: str, tmp_path: Path
) -> None:
    """The service's limit: 10,000 in the first job, the one left in a second."""
    keys = [f"i/{i}.jpg" for i in range(10_001)]
    with Ledger.open(tmp_path / "l.jsonl", policy=POLICY, engine="bulk", flush_every=2000) as led:
        summary = engine(aws, s3, bucket, Clock()).run(images(bucket, *keys), led)
    assert summary.checked == 10_001
    assert len(aws.started("StartMediaAnalysisJob")) == 2


def test_a_run_killed_while_waiting_re_attaches_to_its_job(
    aws: AWSEmulator, s3: Any, bucket: str, tmp_path: Path
) -> None:
    """Killed after Start (while polling), resumed: the same JobId, one job, each item once."""
    items = images(bucket, "a.jpg", "bad.jpg", "c.jpg")

    def die() -> None:
        raise Killed

    with pytest.raises(Killed), Ledger.open(tmp_path / "l.jsonl", policy=POLICY, engine="b") as led:
        engine(aws, s3, bucket, Clock(hook=die)).run(items, led)
    (job,) = aws.started("StartMediaAnalysisJob")
    with Ledger.open(tmp_path / "l.jsonl", policy=POLICY, engine="b") as ledger:
        assert ledger.job(next(iter(ledger.notes("bulk-job-started")))["name"]) == job
        summary = engine(aws, s3, bucket, Clock()).run(items, ledger)
    assert aws.started("StartMediaAnalysisJob") == (job,)
    assert sorted(r["ref"] for r in records(tmp_path / "l.jsonl")) == sorted(i.ref for i in items)
    assert summary.checked == 3
    assert aws.counts("StartMediaAnalysisJob").received == 1


def test_a_run_killed_before_the_ledger_heard_of_its_job_gets_the_same_job(
    aws: AWSEmulator, s3: Any, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed between Start and the ledger's note: the derived token returns the same job."""
    items = images(bucket, "a.jpg", "b.jpg")
    with Ledger.open(tmp_path / "l.jsonl", policy=POLICY, engine="b") as ledger:
        real = ledger.note

        def die(kind: str, **fields: Any) -> None:
            if kind == "bulk-job-started":
                raise Killed
            real(kind, **fields)

        monkeypatch.setattr(ledger, "note", die)
        with pytest.raises(Killed):
            engine(aws, s3, bucket, Clock()).run(items, ledger)
    (job,) = aws.started("StartMediaAnalysisJob")
    with Ledger.open(tmp_path / "l.jsonl", policy=POLICY, engine="b") as ledger:
        summary = engine(aws, s3, bucket, Clock()).run(items, ledger)
    assert aws.started("StartMediaAnalysisJob") == (job,)
    assert aws.counts("StartMediaAnalysisJob").received == 2  # the second start re-attached
    assert summary.checked == 2


@pytest.mark.parametrize("code", tuple(FAILURE_SHAPE.enum))
def test_a_failed_job_fails_its_images_closed(
    aws: AWSEmulator, s3: Any, bucket: str, tmp_path: Path, code: str
) -> None:
    """Each FailureDetails code: every image failed (block); transient ones retried on resume."""
    aws.jobs("StartMediaAnalysisJob", failure=code)
    items = images(bucket, "a.jpg", "b.jpg")
    path = tmp_path / "l.jsonl"
    with Ledger.open(path, policy=POLICY, engine="b") as ledger:
        summary = engine(aws, s3, bucket, Clock()).run(items, ledger)
    assert summary.failures == {f"job_{code}": 2}
    assert {r["action"] for r in records(path)} == {"block"}
    retryable = code in ("INTERNAL_ERROR", "THROTTLED", "RESOURCE_NOT_READY")
    assert summary.retryable == (2 if retryable else 0)
    aws.jobs("StartMediaAnalysisJob")  # the service recovers
    with Ledger.open(path, policy=POLICY, engine="b") as ledger:
        again = engine(aws, s3, bucket, Clock()).run(items, ledger)
    assert again.checked == (2 if retryable else 0)
    assert len(aws.started("StartMediaAnalysisJob")) == (2 if retryable else 1)


def test_closed_to_the_account_is_one_clear_error(
    aws: AWSEmulator, s3: Any, bucket: str, tmp_path: Path
) -> None:
    """AccessDenied: BulkAnalysisUnavailableError suggesting the client-side engine; no record."""
    aws.jobs("StartMediaAnalysisJob", closed=True)
    path = tmp_path / "l.jsonl"
    with (
        pytest.raises(BulkAnalysisUnavailableError, match="ClientEngine") as error,
        Ledger.open(path, policy=POLICY, engine="b") as ledger,
    ):
        engine(aws, s3, bucket, Clock()).run(images(bucket, "a.jpg"), ledger)
    assert "\n" not in str(error.value)
    assert isinstance(error.value, PermissionError)
    assert records(path) == []
    with pytest.raises(BulkAnalysisUnavailableError):
        list(list_jobs(aws.client("rekognition", **ONE_TRY)))


def test_jobs_are_listed_across_pages_newest_first(
    aws: AWSEmulator, s3: Any, bucket: str, tmp_path: Path
) -> None:
    """list_jobs follows NextToken; page sizes outside 1-100 are refused before any call."""
    with Ledger.open(tmp_path / "l.jsonl", policy=POLICY, engine="b") as ledger:
        keys = [f"{i}.jpg" for i in range(5)]
        engine(aws, s3, bucket, Clock(), chunk=1).run(images(bucket, *keys), ledger)
    rek = aws.client("rekognition", **ONE_TRY)
    jobs = list(list_jobs(rek, page_size=2))
    assert [j.job_id for j in jobs] == list(aws.started("StartMediaAnalysisJob"))[::-1]
    assert {j.status for j in jobs} == {"SUCCEEDED"}
    assert aws.counts("ListMediaAnalysisJobs").received == 3
    for size in (0, 101, True):
        with pytest.raises(ConfigurationError):
            list(list_jobs(rek, page_size=size))


def put_lines(s3: Any, bucket: str, key: str, lines: list[Any]) -> None:
    body = "".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines)
    s3.put_object(Bucket=bucket, Key=key, Body=body.encode())


def test_outputs_are_read_from_the_keys_the_job_names(
    aws: AWSEmulator, s3: Any, bucket: str, tmp_path: Path
) -> None:
    """Any key layout; malformed and missing lines fail closed; both summary spellings work."""
    a, b, c, d, e = (s3_ref(bucket, f"{n}.jpg") for n in "abcde")
    put_lines(s3, bucket, "anywhere/r.jsonl", [
        {"source-ref": a, "detect-moderation-labels": {"ModerationLabels": [WEAPONS],
                                                       "ModerationModelVersion": "7.0"}},
        {"source-ref": b, "detect-moderation-labels": {"ModerationLabels": "none"}},
        "not json",
    ])  # fmt: skip
    put_lines(s3, bucket, "elsewhere/s.json", [{"version": "1.0", "errors": [
        {"line-numer": 3, "source-ref": c, "code": "INVALID_IMAGE", "message": "x"},
        {"line-number": 4, "source-ref": d, "code": "has spaces!", "message": "y"}]}])  # fmt: skip
    results = {"S3Object": {"Bucket": bucket, "Name": "anywhere/r.jsonl"}}
    summary = {"S3Object": {"Bucket": bucket, "Name": "elsewhere/s.json"}}
    where = {"Results": results, "ManifestSummary": summary}
    aws.respond("GetMediaAnalysisJob", {"JobId": "j", "Status": "SUCCEEDED", **where})
    path = tmp_path / "l.jsonl"
    with Ledger.open(path, policy=POLICY, engine="b") as ledger:
        engine(aws, s3, bucket, Clock()).run(images(bucket, *(f"{n}.jpg" for n in "abcde")), ledger)
    got = {r["ref"]: (r["outcome"], r["action"], r["error"]) for r in records(path)}
    assert got == {
        a: ("checked", "block", None),
        b: ("failed", "block", "malformed_result"),
        c: ("failed", "block", "INVALID_IMAGE"),
        d: ("failed", "block", "manifest_error"),
        e: ("failed", "block", "missing_from_results"),
    }


def test_a_succeeded_job_without_output_keys_fails_its_images(
    aws: AWSEmulator, s3: Any, bucket: str, tmp_path: Path
) -> None:
    """No Results.S3Object in a SUCCEEDED answer: nothing guessed, every image failed."""
    aws.respond("GetMediaAnalysisJob", {"JobId": "j", "Status": "SUCCEEDED"})
    with Ledger.open(tmp_path / "l.jsonl", policy=POLICY, engine="b") as ledger:
        summary = engine(aws, s3, bucket, Clock()).run(images(bucket, "a.jpg"), ledger)
    assert summary.failures == {"malformed_response": 1}


def test_a_job_past_its_timeout_is_retried_by_re_attaching(
    aws: AWSEmulator, s3: Any, bucket: str, tmp_path: Path
) -> None:
    """Still running at the timeout: retryable failures; the resumed run finishes that job."""
    aws.jobs("StartMediaAnalysisJob", statuses=["IN_PROGRESS"] * 8 + ["SUCCEEDED"])
    path = tmp_path / "l.jsonl"
    items = images(bucket, "a.jpg")
    short = Backoff(first=10, factor=1, most=10, timeout=35)
    with Ledger.open(path, policy=POLICY, engine="b") as ledger:
        first = engine(aws, s3, bucket, Clock(), backoff=short).run(items, ledger)
    assert (first.failures, first.retryable) == ({"Timeout": 1}, 1)
    with Ledger.open(path, policy=POLICY, engine="b") as ledger:
        second = engine(aws, s3, bucket, Clock()).run(items, ledger)
    assert second.checked == 1
    assert len(aws.started("StartMediaAnalysisJob")) == 1


def test_settings_are_checked() -> None:
    """Chunk size, bucket name, adapter ARN and a ledger of another policy are refused."""
    for bad in ({"chunk": 10_001}, {"chunk": 0}, {"bucket": "x"}, {"adapter_arn": "nope"}):
        settings: dict[str, Any] = {"s3": object(), "policy": POLICY, "bucket": "bucket", **bad}
        with pytest.raises(ConfigurationError):
            BulkAnalysisEngine(object(), **settings)


def test_a_ledger_of_another_policy_is_refused(
    aws: AWSEmulator, s3: Any, bucket: str, tmp_path: Path
) -> None:
    """The engine judges by its policy; records stamped with another would lie."""
    with (
        Ledger.open(tmp_path / "l.jsonl", policy=ModerationPolicy(), engine="b") as ledger,
        pytest.raises(ConfigurationError, match="policy"),
    ):
        engine(aws, s3, bucket, Clock()).run(images(bucket, "a.jpg"), ledger)


def test_killed_at_any_step_and_resumed_nothing_is_lost_duplicated_or_started_twice(
    aws: AWSEmulator, s3: Any, bucket: str, tmp_path: Path
) -> None:
    """Kill the first run at its k-th step (a ledger write, a note, a wait), for every k.

    Resumed until done: each image has exactly one final record, and each chunk one job.
    """
    aws.jobs("StartMediaAnalysisJob", statuses=["CREATED", "IN_PROGRESS", "SUCCEEDED"])
    keys = [f"{n}{'-bad' if n % 2 else ''}.jpg" for n in range(5)]
    items = images(bucket, *keys)
    for k in range(1, 22):  # 5 records, 3 jobs' notes and records, 6 waits: past the end
        path, prefix = tmp_path / f"k{k}.jsonl", f"k{k}/"
        steps = [0]

        def step(*_: Any, _k: int = k, _steps: list[int] = steps) -> None:
            _steps[0] += 1
            if _steps[0] == _k:
                raise Killed

        before = len(aws.started("StartMediaAnalysisJob"))
        for attempt in range(4):
            with Ledger.open(path, policy=POLICY, engine="b") as ledger:
                if attempt == 0:  # only the first run dies
                    for name in ("append", "note", "record_job"):
                        real = getattr(ledger, name)

                        def dying(*a: Any, _real: Any = real, **kw: Any) -> Any:
                            step()
                            return _real(*a, **kw)

                        setattr(ledger, name, dying)
                clock = Clock(hook=step if attempt == 0 else None)
                try:
                    engine(aws, s3, bucket, clock, chunk=2, prefix=prefix).run(items, ledger)
                except Killed:
                    continue
                break
        finals = [r["ref"] for r in records(path) if not r["retryable"]]
        assert sorted(finals) == sorted(i.ref for i in items), k
        blocked = {r["ref"] for r in records(path) if r["action"] == "block"}
        assert blocked == {i.ref for i in items if "-bad" in i.ref}, k
        assert len(aws.started("StartMediaAnalysisJob")) - before == 3, k


def test_throttling_and_outages_mid_batch_are_waited_out_or_retried(
    aws: AWSEmulator, s3: Any, bucket: str, tmp_path: Path
) -> None:
    """Throttled or failing polls are waited out; a start refused by a 5xx is retried once."""
    from safegen.testing import Faults

    aws.faults("GetMediaAnalysisJob", Faults(script=("throttle", "error", "throttle")))
    aws.faults("StartMediaAnalysisJob", Faults(script=("answer", "error")))
    path = tmp_path / "l.jsonl"
    items = images(bucket, "a.jpg", "b.jpg", "c.jpg")
    with Ledger.open(path, policy=POLICY, engine="b") as ledger:
        first = engine(aws, s3, bucket, Clock(), chunk=2).run(items, ledger)
    assert (first.checked, first.failed, first.retryable) == (2, 1, 1)
    with Ledger.open(path, policy=POLICY, engine="b") as ledger:
        second = engine(aws, s3, bucket, Clock(), chunk=2).run(items, ledger)
    assert (second.checked, second.already_done) == (1, 2)
    assert len(aws.started("StartMediaAnalysisJob")) == 2


def test_the_concurrent_job_cap_is_waited_out(
    aws: AWSEmulator, s3: Any, bucket: str, tmp_path: Path
) -> None:
    """LimitExceededException at start: wait and start again (bounded), not a failure."""
    aws.jobs("StartMediaAnalysisJob", max_concurrent=1)
    rek = aws.client("rekognition", **ONE_TRY)
    s3.put_object(Bucket=bucket, Key="other.jsonl", Body=b'{"source-ref": "s3://x/1.jpg"}\n')
    rek.start_media_analysis_job(
        OperationsConfig={"DetectModerationLabels": {}},
        Input={"S3Object": {"Bucket": bucket, "Name": "other.jsonl"}},
        OutputConfig={"S3Bucket": bucket},
    )
    clock = Clock(hook=aws.advance_jobs)
    with Ledger.open(tmp_path / "l.jsonl", policy=POLICY, engine="b") as ledger:
        summary = engine(aws, s3, bucket, clock).run(images(bucket, "a.jpg"), ledger)
    assert summary.checked == 1
    assert aws.counts("StartMediaAnalysisJob").received > 2  # refused, waited, started


def by_content(s3: Any) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A model that looks at the object's bytes now: b"UNSAFE" in them is a weapon."""

    def detect(request: dict[str, Any]) -> dict[str, Any]:
        where = request["Image"]["S3Object"]
        body = s3.get_object(Bucket=where["Bucket"], Key=where["Name"])["Body"].read()
        unsafe = b"UNSAFE" in body
        return {"ModerationLabels": [WEAPONS] if unsafe else [], "ModerationModelVersion": "7.0"}

    return detect


@pytest.mark.parametrize("same_ledger_file", [False, True])
def test_images_replaced_at_the_same_keys_are_never_judged_by_the_old_job(
    aws: AWSEmulator, s3: Any, bucket: str, tmp_path: Path, same_ledger_file: bool
) -> None:
    """Replaced bytes (new ETag) or a new ledger: another token, another job, the new verdict."""
    aws.respond("DetectModerationLabels", by_content(s3))
    keys = ("a.png", "b.png")
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=b"SAFE")
    items = images(bucket, *keys)
    with Ledger.open(tmp_path / "monday.jsonl", policy=POLICY, engine="b") as ledger:
        first = engine(aws, s3, bucket, Clock()).run(items, ledger)
    assert first.actions == {"allow": 2}
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=b"UNSAFE now")
    # A second ledger (a new file, or the first one's file moved aside and started afresh).
    path = tmp_path / ("monday.jsonl" if same_ledger_file else "tuesday.jsonl")
    if same_ledger_file:
        path.unlink()
    with Ledger.open(path, policy=POLICY, engine="b") as ledger:
        second = engine(aws, s3, bucket, Clock()).run(items, ledger)
        assert sorted(r.ref for r in ledger.flagged()) == sorted(i.ref for i in items)
    assert second.actions == {"block": 2}
    assert len(aws.started("StartMediaAnalysisJob")) == 2


def test_a_new_ledger_never_re_attaches_to_another_ledgers_job(
    aws: AWSEmulator, s3: Any, bucket: str, tmp_path: Path
) -> None:
    """Even with identical objects: the ledger's own id is in the token, so one job each."""
    s3.put_object(Bucket=bucket, Key="a.jpg", Body=b"SAFE")
    for name in ("one", "two"):
        with Ledger.open(tmp_path / f"{name}.jsonl", policy=POLICY, engine="b") as ledger:
            assert engine(aws, s3, bucket, Clock()).run(images(bucket, "a.jpg"), ledger).checked
    assert len(set(aws.started("StartMediaAnalysisJob"))) == 2


def test_two_items_naming_one_object_each_get_the_one_result(
    aws: AWSEmulator, s3: Any, bucket: str, tmp_path: Path
) -> None:
    """Duplicates in a batch: analysed once (one manifest line), every item recorded."""
    shared = S3Object(bucket, "bad.png")
    items = [Item("dataset-1/bad.png", shared), Item("dataset-2/bad.png", shared),
             *images(bucket, "ok.png")]  # fmt: skip
    path = tmp_path / "l.jsonl"
    with Ledger.open(path, policy=POLICY, engine="b") as ledger:
        summary = engine(aws, s3, bucket, Clock()).run(items, ledger)
    got = {r["ref"]: r["action"] for r in records(path)}
    assert got == {"dataset-1/bad.png": "block", "dataset-2/bad.png": "block",
                   items[2].ref: "allow"}  # fmt: skip
    assert summary.checked == 3
    (manifest,) = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]
                   if o["Key"].startswith("safegen-bulk/manifests/")
                   and not o["Key"].endswith(".refs.jsonl")]  # fmt: skip
    body = s3.get_object(Bucket=bucket, Key=manifest)["Body"].read().splitlines()
    assert len(body) == 2


def test_a_job_still_running_is_re_attached_every_run_never_started_again(
    aws: AWSEmulator, s3: Any, bucket: str, tmp_path: Path
) -> None:
    """A slow job past each run's timeout: one job in all, each item counted once a run."""
    aws.jobs("StartMediaAnalysisJob", statuses=["IN_PROGRESS"] * 30 + ["SUCCEEDED"])
    items = images(bucket, "a.jpg", "b.jpg")
    path = tmp_path / "l.jsonl"
    short = Backoff(first=10, factor=1, most=10, timeout=35)
    for _ in range(3):
        with Ledger.open(path, policy=POLICY, engine="b") as ledger:
            summary = engine(aws, s3, bucket, Clock(), backoff=short).run(items, ledger)
        assert (summary.failed, summary.retryable, summary.checked) == (2, 2, 0)
        assert summary.failures == {"Timeout": 2}
        assert len(aws.started("StartMediaAnalysisJob")) == 1
    with Ledger.open(path, policy=POLICY, engine="b") as ledger:
        done = engine(aws, s3, bucket, Clock()).run(items, ledger)
    assert (done.checked, done.failed, done.already_done) == (2, 0, 0)
    assert len(aws.started("StartMediaAnalysisJob")) == 1


def kill_while_polling(aws: AWSEmulator, s3: Any, bucket: str, path: Path, items: Any) -> str:
    def die() -> None:
        raise Killed

    with pytest.raises(Killed), Ledger.open(path, policy=POLICY, engine="b") as ledger:
        engine(aws, s3, bucket, Clock(hook=die)).run(items, ledger)
    (job,) = aws.started("StartMediaAnalysisJob")
    return job


def test_a_job_whose_manifest_is_gone_is_finished_not_a_crash_loop(
    aws: AWSEmulator, s3: Any, bucket: str, tmp_path: Path
) -> None:
    """Manifest and refs deleted while the job runs: the resume records every item."""
    items = images(bucket, "a.jpg", "bad.jpg")
    path = tmp_path / "l.jsonl"
    kill_while_polling(aws, s3, bucket, path, items)
    for entry in s3.list_objects_v2(Bucket=bucket, Prefix="safegen-bulk/manifests/")["Contents"]:
        s3.delete_object(Bucket=bucket, Key=entry["Key"])
    for _ in range(3):  # resumed until every item is settled: never an exception
        with Ledger.open(path, policy=POLICY, engine="b") as ledger:
            engine(aws, s3, bucket, Clock()).run(items, ledger)
            if all(ledger.is_done(i.ref) for i in items):
                break
    finals = [r for r in records(path) if not r["retryable"]]
    assert sorted(r["ref"] for r in finals) == sorted(i.ref for i in items)
    assert {r["ref"]: r["action"] for r in finals}[items[1].ref] == "block"


def test_a_job_whose_outputs_are_gone_fails_its_items_then_a_fresh_job_checks_them(
    aws: AWSEmulator, s3: Any, bucket: str, tmp_path: Path
) -> None:
    """results.json deleted: retryable job_outputs_missing, the job finished; next run a new job."""
    items = images(bucket, "a.jpg")
    path = tmp_path / "l.jsonl"
    kill_while_polling(aws, s3, bucket, path, items)
    aws.advance_jobs()
    aws.advance_jobs()
    aws.advance_jobs()
    for entry in s3.list_objects_v2(Bucket=bucket, Prefix="safegen-bulk/results/").get(
        "Contents", []
    ):
        s3.delete_object(Bucket=bucket, Key=entry["Key"])
    with Ledger.open(path, policy=POLICY, engine="b") as ledger:
        first = engine(aws, s3, bucket, Clock()).run(items, ledger)
    assert (first.failures, first.retryable) == ({"job_outputs_missing": 1}, 1)
    with Ledger.open(path, policy=POLICY, engine="b") as ledger:
        again = engine(aws, s3, bucket, Clock()).run(items, ledger)
    assert again.checked == 1
    assert len(aws.started("StartMediaAnalysisJob")) == 2


def test_an_expired_job_is_finished_as_a_failure_not_re_attached_for_ever(
    aws: AWSEmulator, s3: Any, bucket: str, tmp_path: Path
) -> None:
    """GetMediaAnalysisJob says ResourceNotFound: retryable failures, then a fresh job."""
    items = images(bucket, "a.jpg")
    path = tmp_path / "l.jsonl"
    kill_while_polling(aws, s3, bucket, path, items)
    with Ledger.open(path, policy=POLICY, engine="b") as ledger:
        ledger.note("bulk-job-started", name="gone", job_id="no-such-job", manifest="x.jsonl")
    s3.put_object(Bucket=bucket, Key="x.jsonl", Body=b'{"source-ref": "s3://b/z.jpg"}\n')
    s3.put_object(Bucket=bucket, Key="x.refs.jsonl", Body=b'"s3://b/z.jpg"\n')
    for _ in range(2):
        with Ledger.open(path, policy=POLICY, engine="b") as ledger:
            engine(aws, s3, bucket, Clock()).run(items, ledger)
    with Ledger.open(path, policy=POLICY, engine="b") as ledger:
        assert "gone" in {note["name"] for note in ledger.notes("bulk-job-finished")}
    assert [r["ref"] for r in records(path) if not r["retryable"]] == [items[0].ref]


@pytest.mark.parametrize("count", [2, 60])  # read by HeadObject, then by a listing
@pytest.mark.parametrize("replaced", [False, True])
def test_a_resume_re_attaches_by_token_only_to_a_job_that_saw_the_same_bytes(
    aws: AWSEmulator,
    s3: Any,
    bucket: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    count: int,
    replaced: bool,
) -> None:
    """Killed before the ledger heard of the job: same ETags, same job; one replaced, a new one."""
    aws.respond("DetectModerationLabels", by_content(s3))
    keys = [f"d/{n}.png" for n in range(count)]
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=b"SAFE")
    items = images(bucket, *keys)
    path = tmp_path / "l.jsonl"
    with Ledger.open(path, policy=POLICY, engine="b") as ledger:
        real = ledger.note

        def die(kind: str, **fields: Any) -> None:
            if kind == "bulk-job-started":
                raise Killed
            real(kind, **fields)

        monkeypatch.setattr(ledger, "note", die)
        with pytest.raises(Killed):
            engine(aws, s3, bucket, Clock()).run(items, ledger)
    if replaced:
        s3.put_object(Bucket=bucket, Key=keys[-1], Body=b"UNSAFE, replaced")
    with Ledger.open(path, policy=POLICY, engine="b") as ledger:
        summary = engine(aws, s3, bucket, Clock()).run(items, ledger)
        flagged = [r.ref for r in ledger.flagged()]
    assert len(aws.started("StartMediaAnalysisJob")) == (2 if replaced else 1)
    assert flagged == ([items[-1].ref] if replaced else [])
    assert summary.checked == count


def test_an_image_replaced_under_a_settled_ref_is_checked_again_in_the_same_ledger(
    aws: AWSEmulator, s3: Any, bucket: str, tmp_path: Path
) -> None:
    """Items with a content identity (the listing's): a replaced object is not already done."""
    from safegen.aws.s3 import prefix_items

    aws.respond("DetectModerationLabels", by_content(s3))
    for key in ("d/a.png", "d/b.png"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"SAFE")
    path = tmp_path / "l.jsonl"
    with Ledger.open(path, policy=POLICY, engine="b") as ledger:
        first = engine(aws, s3, bucket, Clock()).run(prefix_items(s3, bucket, "d/"), ledger)
    assert first.actions == {"allow": 2}
    s3.put_object(Bucket=bucket, Key="d/b.png", Body=b"UNSAFE, replaced")
    with Ledger.open(path, policy=POLICY, engine="b") as ledger:
        again = engine(aws, s3, bucket, Clock()).run(prefix_items(s3, bucket, "d/"), ledger)
        assert [r.ref for r in ledger.flagged()] == [s3_ref(bucket, "d/b.png")]
    assert (again.actions, again.already_done) == ({"block": 1}, 1)
    assert {r["identity"] is not None for r in records(path)} == {True}


def test_a_results_line_over_the_limit_is_refused_without_being_held() -> None:
    """The results reader reads in blocks: an over-long line is refused, its bytes never kept."""

    class Body:
        def __init__(self, blocks: list[bytes]) -> None:
            self.blocks = blocks

        def iter_chunks(self, size: int) -> Iterator[bytes]:
            yield from self.blocks

        def close(self) -> None:
            pass

    huge = [b"{" + b"x" * (bulk._BLOCK - 1) for _ in range(64)]  # 4 MiB, no newline
    engine: Any = types.SimpleNamespace(s3=None)  # _lines reads only the S3 client
    lines = [b'{"a": 1}\n', *huge, b"}\n"]
    with mock.patch.object(bulk, "perform", return_value={"Body": Body(lines)}):
        reader = bulk.BulkAnalysisEngine._lines(engine, ("b", "k"))
        assert next(reader) == b'{"a": 1}'
        tracemalloc.start()
        with pytest.raises(MalformedResponseError, match="over 1 MiB"):
            next(reader)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peak < 2 * 1024 * 1024
