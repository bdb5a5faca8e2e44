"""The emulator's Rekognition jobs: statuses over polls, failures, paging, idempotency, caps.

Real boto3 clients talk to the emulator; S3, SNS and SQS are a moto server on loopback.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError, ParamValidationError
from botocore.validate import ParamValidator

from safegen._emulator import JOB_OPERATIONS
from safegen.aws._model import operation_model, service_model
from safegen.testing import AWSEmulator

ONE_TRY = {"retries": {"mode": "standard", "total_max_attempts": 1}}
FAILURE_SHAPE: Any = service_model("rekognition").shape_for("MediaAnalysisJobFailureCode")
FAILURE_CODES = tuple(FAILURE_SHAPE.enum)
WEAPONS = {"Confidence": 93.1, "Name": "Weapons", "ParentName": "Violence", "TaxonomyLevel": 2}


def moto(url: str, service: str) -> Any:
    import boto3

    factory: Any = boto3.client
    return factory(service, region_name="us-east-1", endpoint_url=url,
                   aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip


@pytest.fixture
def s3(moto_url: str) -> Any:
    return moto(moto_url, "s3")


@pytest.fixture
def bucket(s3: Any) -> str:
    name = f"b-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


@pytest.fixture
def aws(s3: Any, moto_url: str) -> Iterator[AWSEmulator]:
    with AWSEmulator(seed=3, s3=s3, sns=moto(moto_url, "sns")) as emulator:
        yield emulator


def manifest(s3: Any, bucket: str, lines: list[str], key: str = "in/manifest.jsonl") -> str:
    s3.put_object(Bucket=bucket, Key=key, Body="".join(line + "\n" for line in lines).encode())
    return key


def start_bulk(rek: Any, bucket: str, key: str, **extra: Any) -> str:
    job: str = rek.start_media_analysis_job(
        OperationsConfig={"DetectModerationLabels": {"MinConfidence": 60.0}},
        Input={"S3Object": {"Bucket": bucket, "Name": key}},
        OutputConfig={"S3Bucket": bucket, "S3KeyPrefix": "out/"},
        **extra,
    )["JobId"]
    return job


def refs(bucket: str, n: int) -> list[str]:
    return [json.dumps({"source-ref": f"s3://{bucket}/img/{i}.jpg"}) for i in range(n)]


def code_of(error: pytest.ExceptionInfo[ClientError]) -> str:
    return str(error.value.response["Error"]["Code"])


def valid(operation: str, answer: dict[str, Any]) -> None:
    """Assert *answer* (as parsed, without metadata) fits botocore's output shape."""
    answer = {k: v for k, v in answer.items() if k != "ResponseMetadata"}
    shape: Any = operation_model("rekognition", operation).output_shape
    report = ParamValidator().validate(answer, shape)
    assert not report.has_errors(), report.generate_report()


def test_a_bulk_job_goes_through_every_status_then_writes_its_outputs(
    aws: AWSEmulator, s3: Any, bucket: str
) -> None:
    """CREATED, QUEUED, IN_PROGRESS, SUCCEEDED over polls; results and summary in S3."""
    aws.respond("DetectModerationLabels", lambda r: {
        "ModerationLabels": [WEAPONS] if r["Image"]["S3Object"]["Name"].endswith("1.jpg") else [],
        "ModerationModelVersion": "7.0"})  # fmt: skip
    rek = aws.client("rekognition", **ONE_TRY)
    key = manifest(s3, bucket, [*refs(bucket, 2), "not json", '{"source-ref": "s3://x/a.gif"}'])
    job = start_bulk(rek, bucket, key)
    seen = [rek.get_media_analysis_job(JobId=job) for _ in range(5)]
    assert [answer["Status"] for answer in seen] == [
        "CREATED", "QUEUED", "IN_PROGRESS", "SUCCEEDED", "SUCCEEDED"]  # fmt: skip
    for answer in seen:
        valid("GetMediaAnalysisJob", answer)
    assert "Results" not in seen[2]
    done = seen[3]
    results = s3.get_object(Bucket=bucket, Key=done["Results"]["S3Object"]["Name"])
    lines = [json.loads(line) for line in results["Body"].read().splitlines()]
    assert [line["source-ref"].rsplit("/", 1)[1] for line in lines] == ["0.jpg", "1.jpg"]
    assert lines[1]["detect-moderation-labels"]["ModerationLabels"] == [WEAPONS]
    summary_key = done["ManifestSummary"]["S3Object"]["Name"]
    summary = json.loads(s3.get_object(Bucket=bucket, Key=summary_key)["Body"].read())
    assert summary["statistics"] == {
        "total-json-lines": 4, "valid-json-lines": 2, "invalid-json-lines": 2}  # fmt: skip
    assert [e["line-numer"] for e in summary["errors"]] == [3, 4]


@pytest.mark.parametrize("code", FAILURE_CODES)
def test_a_bulk_job_fails_with_each_failure_code(
    aws: AWSEmulator, s3: Any, bucket: str, code: str
) -> None:
    """Each MediaAnalysisJobFailureCode in botocore's model can end a job, with no outputs."""
    aws.jobs("StartMediaAnalysisJob", failure=code, message="it broke")
    rek = aws.client("rekognition", **ONE_TRY)
    job = start_bulk(rek, bucket, manifest(s3, bucket, refs(bucket, 1)))
    answers = [rek.get_media_analysis_job(JobId=job) for _ in range(4)]
    assert [a["Status"] for a in answers] == ["CREATED", "QUEUED", "IN_PROGRESS", "FAILED"]
    assert answers[-1]["FailureDetails"] == {"Code": code, "Message": "it broke"}
    assert "Results" not in answers[-1]
    valid("GetMediaAnalysisJob", answers[-1])


def test_a_bulk_jobs_list_pages_newest_first_within_maxresults_bounds(
    aws: AWSEmulator, s3: Any, bucket: str
) -> None:
    """Five jobs in pages of two: newest first, each once; 101 and a forged token refused."""
    rek = aws.client("rekognition", **ONE_TRY)
    key = manifest(s3, bucket, refs(bucket, 1))
    started = [start_bulk(rek, bucket, key) for _ in range(5)]
    seen: list[str] = []
    pages = 0
    token = None
    while True:
        page = rek.list_media_analysis_jobs(MaxResults=2, **({"NextToken": token} if token else {}))
        valid("ListMediaAnalysisJobs", page)
        pages += 1
        seen += [job["JobId"] for job in page["MediaAnalysisJobs"]]
        token = page.get("NextToken")
        if token is None:
            break
    assert (seen, pages) == (started[::-1], 3)
    assert len(rek.list_media_analysis_jobs(MaxResults=100)["MediaAnalysisJobs"]) == 5
    with pytest.raises(ClientError) as too_many:
        rek.list_media_analysis_jobs(MaxResults=101)
    assert code_of(too_many) == "InvalidParameterException"
    with pytest.raises(ParamValidationError):  # below the model's min: botocore refuses it
        rek.list_media_analysis_jobs(MaxResults=0)
    with pytest.raises(ClientError) as forged:
        rek.list_media_analysis_jobs(NextToken="forged")
    assert code_of(forged) == "InvalidPaginationTokenException"


def test_a_client_request_token_returns_the_same_job_and_refuses_other_parameters(
    aws: AWSEmulator, s3: Any, bucket: str
) -> None:
    """Same token and request: same JobId, one job; same token, other request: mismatch."""
    rek = aws.client("rekognition", **ONE_TRY)
    key = manifest(s3, bucket, refs(bucket, 2))
    first = start_bulk(rek, bucket, key, ClientRequestToken="run-1")
    assert start_bulk(rek, bucket, key, ClientRequestToken="run-1") == first
    assert aws.started("StartMediaAnalysisJob") == (first,)
    with pytest.raises(ClientError) as mismatch:
        start_bulk(rek, bucket, key, ClientRequestToken="run-1", JobName="other")
    assert code_of(mismatch) == "IdempotentParameterMismatchException"
    video = {"Video": {"S3Object": {"Bucket": bucket, "Name": "v.mp4"}}}
    one = rek.start_content_moderation(**video, ClientRequestToken="v-1")["JobId"]
    assert rek.start_content_moderation(**video, ClientRequestToken="v-1")["JobId"] == one
    with pytest.raises(ClientError) as video_mismatch:
        rek.start_content_moderation(**video, ClientRequestToken="v-1", MinConfidence=80.0)
    assert code_of(video_mismatch) == "IdempotentParameterMismatchException"
    assert aws.started("StartContentModeration") == (one,)


def test_the_concurrent_job_cap_answers_limit_exceeded_until_a_job_finishes(
    aws: AWSEmulator, bucket: str
) -> None:
    """At the cap exactly, one more start is LimitExceededException; a finished job frees it."""
    aws.jobs("StartContentModeration", max_concurrent=2)
    rek = aws.client("rekognition", **ONE_TRY)
    video = {"Video": {"S3Object": {"Bucket": bucket, "Name": "v.mp4"}}}
    first = rek.start_content_moderation(**video)["JobId"]
    rek.start_content_moderation(**video)
    with pytest.raises(ClientError) as capped:
        rek.start_content_moderation(**video)
    assert code_of(capped) == "LimitExceededException"
    while rek.get_content_moderation(JobId=first)["JobStatus"] == "IN_PROGRESS":
        pass
    rek.start_content_moderation(**video)
    assert len(aws.started("StartContentModeration")) == 3


def test_bulk_analysis_closed_to_the_account_is_access_denied(
    aws: AWSEmulator, bucket: str
) -> None:
    """Start, Get and List all answer AccessDeniedException, as for a new customer."""
    aws.jobs("StartMediaAnalysisJob", closed=True)
    rek = aws.client("rekognition", **ONE_TRY)
    for call in (
        lambda: start_bulk(rek, bucket, "m.jsonl"),
        lambda: rek.get_media_analysis_job(JobId="x"),
        lambda: rek.list_media_analysis_jobs(),
    ):
        with pytest.raises(ClientError) as denied:
            call()
        assert code_of(denied) == "AccessDeniedException"


@pytest.mark.parametrize(
    ("lines", "code"),
    [
        (None, "InvalidS3ObjectException"),  # no manifest object at all
        ([], "InvalidManifestException"),
        (["", "  "], "InvalidManifestException"),
        (["x"] * 10_001, "InvalidManifestException"),
    ],
)
def test_a_manifest_that_cannot_be_analysed_is_refused_at_start(
    aws: AWSEmulator, s3: Any, bucket: str, lines: list[str] | None, code: str
) -> None:
    """Missing, empty, blank, or one line over 10,000: the start is refused, no job exists."""
    rek = aws.client("rekognition", **ONE_TRY)
    key = "missing.jsonl" if lines is None else manifest(s3, bucket, lines)
    with pytest.raises(ClientError) as refused:
        start_bulk(rek, bucket, key)
    assert code_of(refused) == code
    assert aws.started("StartMediaAnalysisJob") == ()


def test_a_manifest_of_exactly_ten_thousand_images_is_taken(
    aws: AWSEmulator, s3: Any, bucket: str
) -> None:
    """The limit itself is allowed."""
    rek = aws.client("rekognition", **ONE_TRY)
    assert start_bulk(rek, bucket, manifest(s3, bucket, refs(bucket, 10_000)))


def test_the_summary_line_key_can_be_spelled_correctly(
    aws: AWSEmulator, s3: Any, bucket: str
) -> None:
    """``line_key="line-number"`` writes the spelling the service may switch to."""
    aws.jobs("StartMediaAnalysisJob", statuses=["SUCCEEDED"], line_key="line-number")
    rek = aws.client("rekognition", **ONE_TRY)
    job = start_bulk(rek, bucket, manifest(s3, bucket, ["{}"]))
    answer = rek.get_media_analysis_job(JobId=job)
    key = answer["ManifestSummary"]["S3Object"]["Name"]
    errors = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())["errors"]
    assert [e["line-number"] for e in errors] == [1]


def detections(n: int) -> list[dict[str, Any]]:
    names = ("Weapons", "Smoking", "Alcohol")
    return [
        {
            "Timestamp": 1000 * (n - i),
            "StartTimestampMillis": 1000 * (n - i),
            "EndTimestampMillis": 1000 * (n - i) + 500,
            "ModerationLabel": {**WEAPONS, "Name": names[i % 3], "Confidence": 50.0 + i % 50},
            "ContentTypes": [],
        }
        for i in range(n)
    ]


def all_pages(rek: Any, job: str, **params: Any) -> list[dict[str, Any]]:
    pages = [rek.get_content_moderation(JobId=job, **params)]
    while "NextToken" in pages[-1]:
        pages.append(rek.get_content_moderation(JobId=job, NextToken=pages[-1]["NextToken"],
                                                **params))  # fmt: skip
    return pages


def test_video_pages_are_capped_at_1000_and_each_repeats_the_metadata(
    aws: AWSEmulator, bucket: str
) -> None:
    """MaxResults 5000 is capped at 1000; 2500 detections in 3 pages, each with VideoMetadata."""
    aws.jobs("StartContentModeration", statuses=["SUCCEEDED"], detections=detections(2500))
    rek = aws.client("rekognition", **ONE_TRY)
    job = rek.start_content_moderation(Video={"S3Object": {"Bucket": bucket, "Name": "v.mp4"}})
    pages = all_pages(rek, job["JobId"], MaxResults=5000)
    assert [len(p["ModerationLabels"]) for p in pages] == [1000, 1000, 500]
    assert all(p["VideoMetadata"]["DurationMillis"] == 15020 for p in pages)
    stamps = [d["Timestamp"] for p in pages for d in p["ModerationLabels"]]
    assert stamps == sorted(stamps)
    assert len(set(stamps)) == 2500
    for page in pages:
        valid("GetContentModeration", page)


def test_video_sort_and_aggregation_follow_the_request(aws: AWSEmulator, bucket: str) -> None:
    """NAME groups by label, most confident first; TIMESTAMPS drops the segment fields."""
    aws.jobs("StartContentModeration", statuses=["SUCCEEDED"], detections=detections(9))
    rek = aws.client("rekognition", **ONE_TRY)
    job = rek.start_content_moderation(Video={"S3Object": {"Bucket": bucket, "Name": "v.mp4"}})
    by_name = all_pages(rek, job["JobId"], SortBy="NAME", AggregateBy="SEGMENTS", MaxResults=4)
    items = [d for p in by_name for d in p["ModerationLabels"]]
    keys = [(d["ModerationLabel"]["Name"], -d["ModerationLabel"]["Confidence"]) for d in items]
    assert keys == sorted(keys)
    assert all(d["DurationMillis"] == 500 for d in items)
    assert by_name[0]["GetRequestMetadata"] == {"SortBy": "NAME", "AggregateBy": "SEGMENTS"}
    stamps = all_pages(rek, job["JobId"])[0]
    assert "StartTimestampMillis" not in stamps["ModerationLabels"][0]
    with pytest.raises(ClientError) as other_sort:  # a token is for the request that got it
        rek.get_content_moderation(JobId=job["JobId"], NextToken=by_name[0]["NextToken"])
    assert code_of(other_sort) == "InvalidPaginationTokenException"
    with pytest.raises(ClientError) as bogus:
        rek.get_content_moderation(JobId=job["JobId"], SortBy="BOGUS")
    assert code_of(bogus) == "InvalidParameterException"


def test_a_failed_video_job_says_why_and_lists_nothing(aws: AWSEmulator, bucket: str) -> None:
    """FAILED with a StatusMessage; an unknown JobId is ResourceNotFoundException."""
    aws.jobs("StartContentModeration", statuses=["IN_PROGRESS", "FAILED"], message="bad codec",
             detections=detections(3))  # fmt: skip
    rek = aws.client("rekognition", **ONE_TRY)
    job = rek.start_content_moderation(Video={"S3Object": {"Bucket": bucket, "Name": "v.mp4"}})
    first, second = (rek.get_content_moderation(JobId=job["JobId"]) for _ in range(2))
    assert (first["JobStatus"], second["JobStatus"]) == ("IN_PROGRESS", "FAILED")
    assert second["StatusMessage"] == "bad codec"
    assert second["ModerationLabels"] == []
    with pytest.raises(ClientError) as unknown:
        rek.get_content_moderation(JobId="nope")
    assert code_of(unknown) == "ResourceNotFoundException"


def test_a_finished_video_job_publishes_to_its_sns_topic(
    aws: AWSEmulator, moto_url: str, bucket: str
) -> None:
    """Finishing (by time passing, no polls) publishes Rekognition's message; SQS receives it."""
    sns, sqs = moto(moto_url, "sns"), moto(moto_url, "sqs")
    topic = sns.create_topic(Name=f"AmazonRekognition-{bucket}")["TopicArn"]
    queue = sqs.create_queue(QueueName=bucket)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn["Attributes"]["QueueArn"])
    rek = aws.client("rekognition", **ONE_TRY)
    channel = {"SNSTopicArn": topic, "RoleArn": "arn:aws:iam::123456789012:role/r"}
    job = rek.start_content_moderation(
        Video={"S3Object": {"Bucket": bucket, "Name": "v.mp4"}},
        NotificationChannel=channel,
        JobTag="tag-1",
    )["JobId"]
    aws.advance_jobs()
    assert sqs.receive_message(QueueUrl=queue).get("Messages", []) == []
    aws.advance_jobs()
    (received,) = sqs.receive_message(QueueUrl=queue)["Messages"]
    message = json.loads(json.loads(received["Body"])["Message"])
    assert message["JobId"] == job
    assert message["Status"] == "SUCCEEDED"
    assert message["API"] == "StartContentModeration"
    assert message["JobTag"] == "tag-1"
    assert message["Video"] == {"S3ObjectName": "v.mp4", "S3Bucket": bucket}


def test_scripts_are_checked_against_botocores_model(aws: AWSEmulator) -> None:
    """Unknown statuses, failure codes and operations are refused when scripted."""
    with pytest.raises(ValueError, match="statuses"):
        aws.jobs("StartContentModeration", statuses=["CREATED"])  # not a video status
    with pytest.raises(ValueError, match="FailureDetails"):
        aws.jobs("StartMediaAnalysisJob", failure="EXPLODED")
    with pytest.raises(ValueError, match="starts no job"):
        aws.jobs("GetContentModeration")
    assert {op for _, op in JOB_OPERATIONS} == {
        "StartMediaAnalysisJob", "GetMediaAnalysisJob", "ListMediaAnalysisJobs",
        "StartContentModeration", "GetContentModeration"}  # fmt: skip
