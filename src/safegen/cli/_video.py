"""``safegen video s3://bucket/key.mp4``: moderate a stored video with Amazon Rekognition.

Starts (or re-attaches to) a ``StartContentModeration`` job, waits by polling, or by the SNS
message on an SQS queue with ``--sns-topic``, ``--role-arn`` and ``--sqs-queue``, and prints
the verdict and the unsafe spans of the timeline (``mm:ss.mmm``). Exit codes as every
command: 0 allowed, 1 blocked or for review, 2 usage, 3 could not check.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from safegen.cli._common import (
    EXIT_ERROR,
    EXIT_USAGE,
    choose_policy,
    emit_json,
    exit_code,
)
from safegen.cli._files import printable
from safegen.reports import S3Object

__all__ = ["clock_time", "register"]


def clock_time(ms: int) -> str:
    """Show milliseconds as ``mm:ss.mmm`` (minutes go past 59 for long videos).

    >>> clock_time(83_456), clock_time(0), clock_time(3 * 3600 * 1000)
    ('01:23.456', '00:00.000', '180:00.000')
    """
    minutes, rest = divmod(ms, 60_000)
    seconds, millis = divmod(rest, 1000)
    return f"{minutes:02d}:{seconds:02d}.{millis:03d}"


def _video(text: str) -> S3Object:
    from safegen.batch import parse_s3_url

    try:
        bucket, key = parse_s3_url(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"expected s3://bucket/key, {error}") from None
    if not key or key.endswith("/"):
        raise argparse.ArgumentTypeError("expected s3://bucket/key naming one video")
    return S3Object(bucket, key)


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser], epilog: str) -> None:
    """Add ``safegen video`` to the top-level subcommands."""
    video = commands.add_parser(
        "video",
        help="moderate a video stored in S3 (Amazon Rekognition)",
        description="Moderate a video stored in S3 with Amazon Rekognition's stored-video "
        "moderation: the policy judges every moment; the unsafe spans are printed.",
        epilog=epilog,
    )
    video.set_defaults(run=run_video)
    video.add_argument("video", type=_video, metavar="s3://BUCKET/KEY")
    video.add_argument("--json", action="store_true", help="print JSON")
    video.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS
    )
    video.add_argument("--policy", metavar="POLICY", help="a preset or a policy file (general)")
    video.add_argument(
        "--aggregate",
        choices=["segments", "timestamps"],
        default="segments",
        help="judge segments (default) or sampled timestamps",
    )
    video.add_argument("--region", help="the AWS region (default: your AWS configuration's)")
    video.add_argument("--job-tag", help="the JobTag sent with the job")
    video.add_argument("--sns-topic", metavar="ARN", help="publish completion to this topic")
    video.add_argument("--role-arn", metavar="ARN", help="the role Rekognition publishes as")
    video.add_argument(
        "--sqs-queue", metavar="URL", help="wait for the message on this queue (not polling)"
    )


def run_video(args: argparse.Namespace) -> int:
    """Moderate one stored video; print the verdict and its unsafe spans."""
    from safegen.aws._client import make_client
    from safegen.aws.video import Notification, RekognitionVideo, SqsCompletion
    from safegen.video import VideoModerator

    if (args.sns_topic is None) != (args.role_arn is None) or (
        args.sqs_queue is not None and args.sns_topic is None
    ):
        print(
            "safegen video: error: --sns-topic and --role-arn go together, and --sqs-queue "
            "needs both",
            file=sys.stderr,
        )
        return EXIT_USAGE
    chosen = choose_policy(args.policy, backend="aws")
    settings: dict[str, Any] = {"job_tag": args.job_tag}
    if args.sns_topic is not None:
        settings["notification"] = Notification(args.sns_topic, args.role_arn)
    if args.sqs_queue is not None:
        sqs = make_client("sqs", None, region_name=args.region, max_attempts=5)
        settings["completion"] = SqsCompletion(sqs, args.sqs_queue)
    backend = RekognitionVideo.from_session(region_name=args.region, **settings)
    moderator = VideoModerator(backend, chosen.policy, aggregate=args.aggregate.upper())
    verdict = moderator.moderate(args.video)
    where = f"s3://{args.video.bucket}/{args.video.key}"
    if args.json:
        emit_json({"video": where, **verdict.to_dict(), "policy": chosen.to_dict()})
    else:
        status = "ERROR" if verdict.failed else verdict.action.value.upper()
        facts = [f"job {verdict.job_id}" if verdict.job_id else None,
                 f"model {verdict.model_version}" if verdict.model_version else None,
                 args.aggregate, f"policy {chosen}"]  # fmt: skip
        print(f"{status:<7} {printable(where)} ({'; '.join(f for f in facts if f)})")
        if verdict.failed:
            print(f"        could not check: {printable(verdict.error or '')}")
        for span in verdict.spans:
            print(
                f"        {clock_time(span.start_ms)}-{clock_time(span.end_ms)}  "
                f"{span.action.value:<6} {printable(span.label)} ({span.confidence:g})"
            )
    if verdict.failed:
        return EXIT_ERROR
    return exit_code([verdict.action])
