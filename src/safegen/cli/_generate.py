"""``safegen generate PROMPT --endpoint NAME``: the whole Pipeline against AWS."""

from __future__ import annotations

import argparse
from pathlib import Path

from safegen.cli._common import (
    EXIT_ALLOWED,
    EXIT_ERROR,
    EXIT_FLAGGED,
    emit_json,
    image_moderator,
)
from safegen.cli._files import printable
from safegen.pipeline import ImageStatus, Pipeline
from safegen.prompt import PromptModerator
from safegen.text import RuleFilter


def run_generate(args: argparse.Namespace) -> int:
    """Check the prompt, generate on a SageMaker endpoint, moderate, and save what is safe."""
    from safegen.aws import STABILITY, TXT2IMG, ComprehendToxicity, SageMakerGenerator

    prompts = PromptModerator(
        RuleFilter.default(), [ComprehendToxicity.from_session(region_name=args.region)]
    )
    codec = {"txt2img": TXT2IMG, "stability": STABILITY}[args.codec]
    generator = SageMakerGenerator.from_session(args.endpoint, region_name=args.region, codec=codec)
    pipeline = Pipeline(prompts, generator, image_moderator(args), on_unsafe_image=args.on_unsafe)
    result = pipeline.run(args.prompt, images=args.images, seed=args.seed)
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
        emit_json({**payload, "saved": saved})
    else:
        print(f"{result.status.upper()}  ({result.timings.get('total', 0.0):.1f} s)")
        for warning in result.warnings:
            print(f"        {printable(warning)}")
        for index, image in enumerate(result.images):
            where = saved.pop(0) if image.data is not None else "withheld"
            print(f"        image {index + 1}: {image.status.value} -> {printable(where)}")
    if result.status == "failed":
        return EXIT_ERROR
    if result.status == "rejected":
        return EXIT_FLAGGED
    flagged = any(image.status is not ImageStatus.SAFE for image in result.images)
    return EXIT_FLAGGED if flagged else EXIT_ALLOWED
