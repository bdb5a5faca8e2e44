"""Stored-video moderation on Rekognition: the emulator's jobs, moto's S3, SNS and SQS."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from safegen import Action, ModerationPolicy
from safegen.aws.video import Backoff, Notification, RekognitionVideo, SqsCompletion, job_token
from safegen.errors import ConfigurationError, ThrottledError
from safegen.reports import S3Object
from safegen.testing import AWSEmulator, Faults
from safegen.video import MAX_VIDEO_BYTES, InvalidVideoError, VideoModerator
from tests.aws import Clock

ONE_TRY = {"retries": {"mode": "standard", "total_max_attempts": 1}}
ROLE = "arn:aws:iam::123456789012:role/rekognition"
WEAPONS = {"Confidence": 93.1, "Name": "Weapons", "ParentName": "Violence", "TaxonomyLevel": 2}


def segment(start: int, end: int, label: dict[str, Any] = WEAPONS) -> dict[str, Any]:
    return {"Timestamp": start, "StartTimestampMillis": start, "EndTimestampMillis": end,
            "ModerationLabel": label, "ContentTypes": []}  # fmt: skip


def moto(url: str, service: str) -> Any:
    import boto3

    factory: Any = boto3.client
    return factory(service, region_name="us-east-1", endpoint_url=url,
                   aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip


@pytest.fixture
def video(moto_url: str) -> S3Object:
    s3 = moto(moto_url, "s3")
    bucket = f"v-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="clip.mp4", Body=b"\x00\x00\x00\x18ftypmp42")
    return S3Object(bucket, "clip.mp4")


@pytest.fixture
def aws(moto_url: str) -> Iterator[AWSEmulator]:
    with AWSEmulator(seed=1, sns=moto(moto_url, "sns")) as emulator:
        yield emulator


def backend(aws: AWSEmulator, moto_url: str, clock: Clock, **settings: Any) -> RekognitionVideo:
    settings.setdefault("s3", moto(moto_url, "s3"))
    return RekognitionVideo(aws.client("rekognition", **ONE_TRY), sleep=clock.sleep, clock=clock,
                            **settings)  # fmt: skip


def test_a_video_is_started_polled_with_backoff_and_judged(
    aws: AWSEmulator, moto_url: str, video: S3Object
) -> None:
    """IN_PROGRESS twice, then SUCCEEDED: waits of 5 then 10 s (no real sleep), BLOCK + span."""
    aws.jobs("StartContentModeration", detections=[segment(1500, 4500)])
    clock = Clock()
    policy = ModerationPolicy(review_at=45, block_at=80)
    verdict = VideoModerator(backend(aws, moto_url, clock), policy).moderate(video)
    assert verdict.action is Action.BLOCK
    assert [(s.label, s.start_ms, s.end_ms) for s in verdict.spans] == [("Weapons", 1500, 4500)]
    assert verdict.model_version == "7.0"
    assert verdict.duration_ms == 15020
    assert clock.slept == [5.0, 10.0]
    assert verdict.job_id == aws.started("StartContentModeration")[0]


def test_a_repeated_run_re_attaches_to_its_job(
    aws: AWSEmulator, moto_url: str, video: S3Object
) -> None:
    """The token is derived from the request: a second run (a resume) starts no second job."""
    aws.jobs("StartContentModeration", detections=[segment(0, 1000)])
    rekognition = backend(aws, moto_url, Clock())
    job = rekognition.start(video, min_confidence=50.0)  # then the process dies
    verdict = VideoModerator(rekognition).moderate(video)  # the run resumed
    assert verdict.job_id == job
    assert aws.started("StartContentModeration") == (job,)
    other = job_token(video, {"MinConfidence": 60.0})
    assert other != job_token(video, {"MinConfidence": 50.0})
    assert len(other) <= 64


def test_completion_can_come_from_the_sns_message_on_an_sqs_queue(
    aws: AWSEmulator, moto_url: str, video: S3Object
) -> None:
    """With a topic and a queue, nothing polls Get: the message says when; others' stay queued."""
    sns, sqs = moto(moto_url, "sns"), moto(moto_url, "sqs")
    topic = sns.create_topic(Name=f"AmazonRekognition-{video.bucket}")["TopicArn"]
    queue = sqs.create_queue(QueueName=video.bucket)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn["Attributes"]["QueueArn"])
    stranger = {"API": "StartContentModeration", "JobId": "someone-else", "Status": "SUCCEEDED"}
    sns.publish(TopicArn=topic, Message=json.dumps(stranger))
    sqs.send_message(QueueUrl=queue, MessageBody="not json at all")
    aws.jobs("StartContentModeration", detections=[segment(0, 1000)])
    clock = Clock(hook=aws.advance_jobs)
    rekognition = backend(
        aws,
        moto_url,
        clock,
        notification=Notification(topic, ROLE),
        completion=SqsCompletion(sqs, queue, wait_seconds=0),
        job_tag="upload-42",
    )
    verdict = VideoModerator(rekognition).moderate(video)
    assert verdict.action is Action.BLOCK
    # The notice confirmed by one Get (a notice alone proves nothing), then the results page.
    assert aws.counts("GetContentModeration").received == 2
    left = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, VisibilityTimeout=0)
    bodies = [m["Body"] for m in left.get("Messages", [])]
    assert len(bodies) == 2  # the stranger's notice and the junk stay for their owners
    assert all(verdict.job_id not in body for body in bodies)


def test_limit_exceeded_waits_for_a_free_slot(
    aws: AWSEmulator, moto_url: str, video: S3Object
) -> None:
    """At the concurrent-job cap the start waits (queueing) and succeeds once a job finishes."""
    aws.jobs("StartContentModeration", max_concurrent=1, detections=[])
    rek = aws.client("rekognition", **ONE_TRY)
    rek.start_content_moderation(Video={"S3Object": {"Bucket": video.bucket, "Name": "other.mp4"}})
    clock = Clock(hook=aws.advance_jobs)
    verdict = VideoModerator(backend(aws, moto_url, clock)).moderate(video)
    assert verdict.action is Action.ALLOW
    assert aws.counts("StartContentModeration").received == 4  # 1 other + 2 refused + ours


def test_limit_exceeded_is_bounded_then_a_failed_verdict(
    aws: AWSEmulator, moto_url: str, video: S3Object
) -> None:
    """A cap that never frees: start_attempts starts, then a failed (BLOCK) verdict."""
    aws.jobs("StartContentModeration", statuses=["IN_PROGRESS"], max_concurrent=1)
    rek = aws.client("rekognition", **ONE_TRY)
    rek.start_content_moderation(Video={"S3Object": {"Bucket": video.bucket, "Name": "other.mp4"}})
    rekognition = backend(aws, moto_url, Clock(), start_attempts=3)
    verdict = VideoModerator(rekognition).moderate(video)
    assert verdict.action is Action.BLOCK
    assert "LimitExceededException" in (verdict.error or "")
    assert aws.counts("StartContentModeration").received == 1 + 3
    with pytest.raises(ThrottledError):
        rekognition.start(video, min_confidence=50.0)


class SizedS3:
    """An S3 client whose HeadObject reports a chosen size (no 10 GB upload needed)."""

    def __init__(self, size: int) -> None:
        self.size = size

    def head_object(self, **_: Any) -> dict[str, Any]:
        return {"ContentLength": self.size}


@pytest.mark.parametrize(
    ("size", "refused"), [(MAX_VIDEO_BYTES, False), (MAX_VIDEO_BYTES + 1, True)]
)
def test_a_video_over_10_gb_is_refused_before_any_job(
    aws: AWSEmulator, moto_url: str, video: S3Object, size: int, refused: bool
) -> None:
    """Exactly 10 GB goes; one byte more is InvalidVideoError and no StartContentModeration."""
    aws.jobs("StartContentModeration", statuses=["SUCCEEDED"])
    moderator = VideoModerator(backend(aws, moto_url, Clock(), s3=SizedS3(size)))
    if refused:
        with pytest.raises(InvalidVideoError) as error:
            moderator.moderate(video)
        assert error.value.limit == "bytes"
        assert aws.counts("StartContentModeration").received == 0
    else:
        assert moderator.moderate(video).action is Action.ALLOW


def test_the_services_too_large_or_too_long_is_a_clear_error(
    aws: AWSEmulator, moto_url: str, video: S3Object
) -> None:
    """VideoTooLargeException (e.g. over 6 hours) becomes InvalidVideoError naming the limits."""
    aws.faults(
        "StartContentModeration", Faults(script=("error",), error_code="VideoTooLargeException")
    )
    with pytest.raises(InvalidVideoError, match="6 hours") as error:
        VideoModerator(backend(aws, moto_url, Clock())).moderate(video)
    assert error.value.limit == "service"


def test_a_failed_job_is_a_failed_verdict_with_its_message(
    aws: AWSEmulator, moto_url: str, video: S3Object
) -> None:
    """FAILED: BLOCK, the job id and the service's StatusMessage; detections never read."""
    aws.jobs("StartContentModeration", statuses=["IN_PROGRESS", "FAILED"], message="bad codec")
    verdict = VideoModerator(backend(aws, moto_url, Clock())).moderate(video)
    assert verdict.action is Action.BLOCK
    assert "bad codec" in (verdict.error or "")
    assert verdict.job_id == aws.started("StartContentModeration")[0]


def test_a_job_that_never_finishes_times_out_closed(
    aws: AWSEmulator, moto_url: str, video: S3Object
) -> None:
    """The backoff's timeout ends the wait: a failed verdict, never an empty ALLOW."""
    aws.jobs("StartContentModeration", statuses=["IN_PROGRESS"])
    clock = Clock()
    rekognition = backend(aws, moto_url, clock, backoff=Backoff(first=10, timeout=100))
    verdict = VideoModerator(rekognition).moderate(video)
    assert verdict.action is Action.BLOCK
    assert "Timeout" in (verdict.error or "")
    assert sum(clock.slept) <= 100


def test_every_page_is_read_and_sorting_does_not_change_the_verdict(
    aws: AWSEmulator, moto_url: str, video: S3Object
) -> None:
    """2,500 segments over 3 pages; SortBy NAME or TIMESTAMP, the same verdict."""
    smoking = {"Confidence": 70.0, "Name": "Smoking", "ParentName": "Drug & Tobacco "
               "Paraphernalia & Use", "TaxonomyLevel": 3}  # fmt: skip
    many = [segment(i * 1000, i * 1000 + 400, WEAPONS if i % 2 else smoking) for i in range(2500)]
    aws.jobs("StartContentModeration", statuses=["SUCCEEDED"], detections=many)
    verdicts = [
        VideoModerator(backend(aws, moto_url, Clock(), sort_by=order)).moderate(video)
        for order in ("TIMESTAMP", "NAME")
    ]
    assert aws.counts("GetContentModeration").received == 2 * (1 + 3)  # a poll, 3 pages
    assert len(verdicts[0].spans) == 2500
    assert verdicts[0].spans == verdicts[1].spans
    assert verdicts[0].action is verdicts[1].action is Action.BLOCK


@pytest.mark.parametrize(
    "page",
    [
        {"JobStatus": "SUCCEEDED", "ModerationLabels": []},  # no model version
        {"JobStatus": "SUCCEEDED", "ModerationModelVersion": "7.0"},  # no label list
        {"JobStatus": "DONE", "ModerationModelVersion": "7.0", "ModerationLabels": []},
        {"JobStatus": "SUCCEEDED", "ModerationModelVersion": "7.0",
         "ModerationLabels": [{"Timestamp": 5, "ModerationLabel": {"Name": "Weapons"}}]},
        {"JobStatus": "SUCCEEDED", "ModerationModelVersion": "7.0", "NextToken": "same",
         "ModerationLabels": []},  # a token that repeats for ever
    ],
)  # fmt: skip
def test_an_unreadable_answer_is_a_failed_verdict(
    aws: AWSEmulator, moto_url: str, video: S3Object, page: dict[str, Any]
) -> None:
    """Fail closed on a page of the wrong shape: never read as "nothing found"."""
    aws.respond("GetContentModeration", page)
    verdict = VideoModerator(backend(aws, moto_url, Clock())).moderate(video)
    assert verdict.action is Action.BLOCK
    assert verdict.failed


def test_settings_are_checked_against_botocores_model() -> None:
    """A bad topic ARN, job tag, sort order, or a queue without a topic are refused."""
    with pytest.raises(ConfigurationError):
        Notification("arn:aws:sqs:us-east-1:123456789012:q", ROLE)
    with pytest.raises(ConfigurationError, match="job_tag"):
        RekognitionVideo(object(), job_tag="no spaces allowed")
    with pytest.raises(ConfigurationError, match="sort_by"):
        RekognitionVideo(object(), sort_by="CONFIDENCE")
    with pytest.raises(ConfigurationError, match="completion"):
        RekognitionVideo(object(), completion=SqsCompletion(object(), "https://q"))


# -- the command line ---------------------------------------------------------------------------


@pytest.fixture
def cli_env(aws: AWSEmulator, moto_url: str, monkeypatch: pytest.MonkeyPatch) -> AWSEmulator:
    """Point the CLI's clients at the emulator (Rekognition) and moto (S3, SQS)."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        "AWS_ENDPOINT_URL_REKOGNITION": aws.endpoint_url,
        "AWS_ENDPOINT_URL_S3": moto_url,
        "AWS_ENDPOINT_URL_SQS": moto_url,
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"):
        monkeypatch.delenv(name, raising=False)
    return aws


def test_the_cli_prints_the_verdict_and_the_unsafe_spans(
    cli_env: AWSEmulator, video: S3Object, capsys: pytest.CaptureFixture[str]
) -> None:
    """Exit 1 for a blocked video; each span as mm:ss.mmm with its action and label."""
    from safegen.cli import main

    cli_env.jobs("StartContentModeration", statuses=["SUCCEEDED"],
                 detections=[segment(61_500, 64_500)])  # fmt: skip
    code = main(["video", f"s3://{video.bucket}/{video.key}"])
    out = capsys.readouterr().out
    assert code == 1
    assert out.startswith("BLOCK ")
    assert "01:01.500-01:04.500  block  Weapons (93.1)" in out


def test_the_cli_allows_a_clean_video_and_speaks_json(
    cli_env: AWSEmulator, video: S3Object, capsys: pytest.CaptureFixture[str]
) -> None:
    """Exit 0 and one JSON document naming the video, the verdict and the policy."""
    from safegen.cli import main

    cli_env.jobs("StartContentModeration", statuses=["SUCCEEDED"])
    code = main(["video", f"s3://{video.bucket}/{video.key}", "--json", "--aggregate",
                 "timestamps", "--policy", "general"])  # fmt: skip
    data = json.loads(capsys.readouterr().out)
    assert code == 0
    assert (data["action"], data["aggregate"], data["policy"]["name"]) == (
        "allow", "TIMESTAMPS", "general")  # fmt: skip


def test_the_cli_exits_3_when_the_video_cannot_be_checked(
    cli_env: AWSEmulator, video: S3Object, capsys: pytest.CaptureFixture[str]
) -> None:
    """A failed job is ERROR and exit 3; the service's too-large refusal is one error line."""
    from safegen.cli import main

    cli_env.jobs("StartContentModeration", statuses=["FAILED"], message="unsupported codec")
    assert main(["video", f"s3://{video.bucket}/{video.key}"]) == 3
    out = capsys.readouterr().out
    assert out.startswith("ERROR ")
    assert "unsupported codec" in out
    too_large = Faults(script=("error",), error_code="VideoTooLargeException")
    cli_env.faults("StartContentModeration", too_large)
    assert main(["video", f"s3://{video.bucket}/{video.key}"]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "6 hours" in err


@pytest.mark.parametrize(
    "argv",
    [
        ["video", "https://bucket/key.mp4"],
        ["video", "s3://bucket/"],
        ["video", "s3://bucket/k.mp4", "--sqs-queue", "https://q"],
        ["video", "s3://bucket/k.mp4", "--sns-topic", "arn:aws:sns:us-east-1:123456789012:t"],
    ],
)
def test_the_cli_refuses_a_wrong_command_line(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Not an S3 object, or a queue without its topic and role: exit 2, before any call."""
    from safegen.cli import main

    try:
        code = main(argv)
    except SystemExit as exit:  # argparse's own refusal
        code = int(str(exit.code))
    assert code == 2
    assert capsys.readouterr().err


def notice(job_id: str, status: str = "SUCCEEDED") -> str:
    """Rekognition's completion notice for *job_id*, in an SNS envelope."""
    inner = {"API": "StartContentModeration", "JobId": job_id, "Status": status}
    return json.dumps({"Type": "Notification", "Message": json.dumps(inner)})


def test_a_video_replaced_at_the_same_key_is_a_new_job_and_the_verdict_names_its_etag(
    aws: AWSEmulator, moto_url: str, video: S3Object
) -> None:
    """Safe bytes then unsafe bytes at one key: two jobs, the second BLOCK; each verdict's ETag."""
    s3 = moto(moto_url, "s3")

    def detect(request: Mapping[str, Any]) -> list[dict[str, Any]]:
        where = request["Video"]["S3Object"]
        body = s3.get_object(Bucket=where["Bucket"], Key=where["Name"])["Body"].read()
        return [segment(0, 5000)] if b"UNSAFE" in body else []

    aws.jobs("StartContentModeration", detections=detect)
    moderator = VideoModerator(backend(aws, moto_url, Clock(hook=aws.advance_jobs)))
    first = moderator.moderate(video)
    assert first.action is Action.ALLOW
    etag = s3.head_object(Bucket=video.bucket, Key=video.key)["ETag"]
    assert (first.etag, first.to_dict()["etag"]) == (etag, etag)
    s3.put_object(Bucket=video.bucket, Key=video.key, Body=b"UNSAFE, and longer")
    second = moderator.moderate(video)
    assert second.action is Action.BLOCK
    assert second.job_id != first.job_id
    assert second.etag == s3.head_object(Bucket=video.bucket, Key=video.key)["ETag"] != etag
    assert len(aws.started("StartContentModeration")) == 2


def starts(client: Any) -> list[dict[str, Any]]:
    """Capture the parameters of every StartContentModeration call *client* makes."""
    seen: list[dict[str, Any]] = []

    def capture(params: dict[str, Any], **_: Any) -> None:
        seen.append(dict(params))

    client.meta.events.register("provide-client-params.rekognition.StartContentModeration",
                                capture)  # fmt: skip
    return seen


def test_a_versioned_video_is_pinned_to_the_version_read_and_named_in_the_verdict(
    aws: AWSEmulator, moto_url: str, video: S3Object
) -> None:
    """In a versioned bucket the job analyses the version HeadObject saw, and says which."""
    s3 = moto(moto_url, "s3")
    s3.put_bucket_versioning(Bucket=video.bucket, VersioningConfiguration={"Status": "Enabled"})
    version = s3.put_object(Bucket=video.bucket, Key=video.key, Body=b"v2")["VersionId"]
    aws.jobs("StartContentModeration", detections=[])
    client = aws.client("rekognition", **ONE_TRY)
    seen = starts(client)
    clock = Clock(hook=aws.advance_jobs)
    rekognition = RekognitionVideo(client, s3=s3, sleep=clock.sleep, clock=clock)
    verdict = VideoModerator(rekognition).moderate(video)
    assert verdict.version_id == version
    assert seen[-1]["Video"]["S3Object"]["Version"] == version


def test_without_s3_or_a_version_no_token_is_derived(aws: AWSEmulator, video: S3Object) -> None:
    """Nothing says which bytes a job is about: no token, so never another content's job."""
    aws.jobs("StartContentModeration", detections=[])
    client = aws.client("rekognition", **ONE_TRY)
    seen = starts(client)
    rekognition = RekognitionVideo(client, s3=None)
    rekognition.start(video, min_confidence=50.0)
    assert "ClientRequestToken" not in seen[-1]
    rekognition.start(S3Object(video.bucket, video.key, "v1"), min_confidence=50.0)
    assert "ClientRequestToken" in seen[-1]


def sqs_queue(moto_url: str) -> tuple[Any, str]:
    sqs = moto(moto_url, "sqs")
    return sqs, sqs.create_queue(QueueName=f"q-{uuid.uuid4().hex[:12]}")["QueueUrl"]


@pytest.mark.parametrize("others", [10, 11, 39])
def test_others_messages_ahead_of_the_notice_do_not_hide_it(moto_url: str, others: int) -> None:
    """Foreign notices and junk ahead of ours: one look finds it; only ours is deleted."""
    sqs, queue = sqs_queue(moto_url)
    for n in range(others):
        body = notice(f"other-{n}") if n % 2 else ("junk", "{}", "[1]", "null")[n % 4]
        sqs.send_message(QueueUrl=queue, MessageBody=body)
    sqs.send_message(QueueUrl=queue, MessageBody=notice("MYJOB", "FAILED"))
    completion = SqsCompletion(sqs, queue, wait_seconds=0)  # a look of 5 receives
    assert completion.status("MYJOB") == "FAILED"
    left = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
    assert int(left["ApproximateNumberOfMessages"]) == others  # all visible to their owners
    assert completion.status("MYJOB") is None


def test_forged_or_foreign_envelopes_are_not_notices(moto_url: str) -> None:
    """Another topic, another SNS Type, an unknown status or a non-string JobId: ignored."""
    sqs, queue = sqs_queue(moto_url)
    mine = "arn:aws:sns:us-east-1:123456789012:AmazonRekognition-mine"
    inner = json.dumps({"API": "StartContentModeration", "JobId": "J", "Status": "SUCCEEDED"})
    for body in (
        json.dumps({"Type": "Notification", "TopicArn": mine + "x", "Message": inner}),
        json.dumps({"Type": "SubscriptionConfirmation", "TopicArn": mine, "Message": inner}),
        notice("J", "IN_PROGRESS"),
        json.dumps({"API": "StartContentModeration", "JobId": ["J"], "Status": "SUCCEEDED"}),
    ):
        sqs.send_message(QueueUrl=queue, MessageBody=body)
    assert SqsCompletion(sqs, queue, wait_seconds=0, topic_arn=mine).status("J") is None
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(
        {"Type": "Notification", "TopicArn": mine, "Message": inner}))  # fmt: skip
    assert SqsCompletion(sqs, queue, wait_seconds=0, topic_arn=mine).status("J") == "SUCCEEDED"


def test_a_queue_too_noisy_to_see_through_falls_back_to_polling(
    aws: AWSEmulator, moto_url: str, video: S3Object
) -> None:
    """More foreign messages than a look reaches, and a forged early notice: still the verdict."""
    sns = moto(moto_url, "sns")
    topic = sns.create_topic(Name=f"AmazonRekognition-{video.bucket}")["TopicArn"]
    sqs, queue = sqs_queue(moto_url)
    for n in range(50):
        sqs.send_message(QueueUrl=queue, MessageBody=notice(f"other-{n}"))
    aws.jobs("StartContentModeration", detections=[segment(0, 1000)],
             statuses=["IN_PROGRESS"] * 4 + ["SUCCEEDED"])  # fmt: skip
    rekognition = backend(
        aws, moto_url, Clock(), notification=Notification(topic, ROLE),
        completion=SqsCompletion(sqs, queue, wait_seconds=0, look=1),
    )  # fmt: skip
    job = rekognition.start(video, min_confidence=50.0)
    sqs.send_message(QueueUrl=queue, MessageBody=notice(job))  # forged: the job is running
    verdict = VideoModerator(rekognition).moderate(video)
    assert verdict.action is Action.BLOCK
    assert verdict.job_id == job


@given(
    etags=st.lists(st.text(min_size=1, max_size=40), min_size=2, max_size=2, unique=True),
    size=st.integers(min_value=0, max_value=MAX_VIDEO_BYTES),
    version=st.none() | st.text(min_size=1, max_size=20),
)
def test_any_change_of_content_identity_is_another_token(
    etags: list[str], size: int, version: str | None
) -> None:
    """Two ETags (same key, size, version): two tokens, each a valid ClientRequestToken."""
    clip = S3Object("bucket", "clip.mp4")
    request = {"MinConfidence": 50.0}
    first, second = (job_token(clip, request, {"ETag": e, "ContentLength": size,
                                               "VersionId": version}) for e in etags)  # fmt: skip
    assert first != second
    for token in (first, second):
        assert len(token) <= 64
        assert token.replace("-", "").isalnum()
