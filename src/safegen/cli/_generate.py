"""``safegen generate PROMPT --endpoint NAME``: the whole Pipeline against AWS."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from safegen.cli._common import (
    EXIT_ALLOWED,
    EXIT_ERROR,
    EXIT_FLAGGED,
    choose_policy,
    emit_json,
    image_moderator,
)
from safegen.cli._files import CommandError, printable
from safegen.decision import Action
from safegen.pipeline import ImageStatus, Pipeline
from safegen.prompt import PromptModerator


def run_generate(args: argparse.Namespace) -> int:
    """Check the prompt, generate on a SageMaker endpoint, moderate, and save what is safe.

    Exit 3 (could not check) when there are no AWS credentials, before anything is sent, and
    when a check of the prompt could not run: a prompt rejected because Comprehend failed was
    not judged unsafe.
    """
    from safegen.aws import STABILITY, TXT2IMG, ComprehendToxicity, SageMakerGenerator

    chosen = choose_policy(args.policy, backend=args.backend)
    session = _session(args.region)
    prompts = PromptModerator.from_policy(  # one policy: its [prompts] section judges the prompt
        chosen.policy,
        classifiers=[ComprehendToxicity.from_session(session, region_name=args.region)],
    )
    codec = {"txt2img": TXT2IMG, "stability": STABILITY}[args.codec]
    generator = SageMakerGenerator.from_session(
        args.endpoint, session, region_name=args.region, codec=codec
    )
    moderator = image_moderator(args, chosen)
    pipeline = Pipeline(prompts, generator, moderator, on_unsafe_image=args.on_unsafe)
    result = pipeline.run(args.prompt, images=args.images, seed=args.seed)
    failed = () if result.prompt is None else result.prompt.failed
    out = Path(args.out)
    saved = []
    for index, image in enumerate(result.images):
        if image.data is None:
            continue
        out.mkdir(parents=True, exist_ok=True)
        path = out / f"image-{index + 1}.{image.format.lower()}"
        path.write_bytes(image.data)
        saved.append(str(path))
    if args.json:
        payload = result.to_dict()
        for image in payload["images"]:
            image.pop("data_base64", None)  # saved to files, not printed as base64
        emit_json({**payload, "saved": saved, "policy": chosen.to_dict()})
    else:
        print(f"policy: {chosen}")
        print(f"{result.status.upper()}  ({result.timings.get('total', 0.0):.1f} s)")
        for warning in result.warnings:
            print(f"        {printable(warning)}")
        for check in failed:
            print(f"        {check.name} could not run: {printable(str(check.error))}")
        for index, image in enumerate(result.images):
            where = saved.pop(0) if image.data is not None else "withheld"
            print(f"        image {index + 1}: {image.status.value} -> {printable(where)}")
    if result.status == "failed" or failed:
        return EXIT_ERROR
    if result.status == "rejected":
        return EXIT_FLAGGED
    flagged = any(image.status is not ImageStatus.SAFE for image in result.images)
    if result.prompt is not None and result.prompt.action is not Action.ALLOW:
        flagged = True  # a prompt sent to review is flagged, even when images were made
    return EXIT_FLAGGED if flagged else EXIT_ALLOWED


def _session(region: str | None) -> Any:
    """Return the AWS session every client shares, refusing one without credentials.

    :raises CommandError: no credentials (or an unusable AWS configuration), before any
        request is made.
    """
    import boto3
    from botocore.exceptions import BotoCoreError

    try:
        session = boto3.Session(region_name=region)
        credentials = session.get_credentials()
    except BotoCoreError as error:
        raise CommandError(f"AWS configuration: {error}") from None
    if credentials is None:
        raise CommandError(
            "no usable AWS credentials: configure them (aws configure, AWS_PROFILE); "
            "safegen generate runs on AWS (SageMaker, Comprehend, Rekognition)"
        )
    return session
