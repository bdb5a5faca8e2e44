"""The critical path of one request: the seed's sequential design against safegen's Pipeline.

The services are simulated with the same latencies for both (by default Comprehend 200 ms,
generation 1.5 s, Rekognition 500 ms an image, 4 images), so the figures show the designs'
shapes, not the network's. The baseline is the seed architecture's Lambda as written: rules,
then Comprehend, then generation, then each image through Rekognition in turn.

Target: moderation adds at most one Rekognition round trip (plus a few ms) to the critical
path, whatever the number of images.

Run: ``.venv/bin/python benchmarks/bench_pipeline.py [--scale 0.2] [--images 8]``.
"""

from __future__ import annotations

import argparse
import io
import time

from PIL import Image

from safegen import (
    ImageModerator,
    ImageReport,
    ModerationPolicy,
    Pipeline,
    PromptModerator,
    RuleFilter,
)
from safegen.generate import GeneratedImage, Generation, GenerationRequest
from safegen.image import ImageSource
from safegen.prompt import TextReport


def png() -> bytes:
    """Encode a small plain picture to stand for a generated image."""
    buffer = io.BytesIO()
    Image.new("RGB", (128, 128), "skyblue").save(buffer, "PNG")
    return buffer.getvalue()


class SimulatedComprehend:
    """A toxicity check that takes as long as Comprehend."""

    name = "comprehend"

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def classify(self, text: str) -> TextReport:
        """Wait, then find nothing."""
        time.sleep(self.seconds)
        return TextReport()


class SimulatedEndpoint:
    """A Stable Diffusion endpoint that takes as long as a real one."""

    name = "sagemaker"

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.image = png()

    def generate(self, request: GenerationRequest) -> Generation:
        """Wait, then return the images asked for."""
        time.sleep(self.seconds)
        images = tuple(GeneratedImage(self.image, "PNG", i) for i in range(request.images))
        return Generation(request, images, generator=self.name)


class SimulatedRekognition:
    """DetectModerationLabels with its round-trip time, finding nothing."""

    name = "rekognition"

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def detect(self, image: ImageSource, *, min_confidence: float) -> ImageReport:
        """Wait, then report no labels."""
        time.sleep(self.seconds)
        return ImageReport(model_version="7.0")


def sequential(
    prompt: str,
    images: int,
    rules: RuleFilter,
    comprehend: SimulatedComprehend,
    endpoint: SimulatedEndpoint,
    rekognition: SimulatedRekognition,
    policy: ModerationPolicy,
) -> float:
    """Run the seed's Lambda step by step; return its wall time."""
    start = time.perf_counter()
    if rules.scan(prompt) or comprehend.classify(prompt).findings:
        return time.perf_counter() - start
    generation = endpoint.generate(GenerationRequest(prompt=prompt, images=images))
    for image in generation.images:
        report = rekognition.detect(image.data, min_confidence=policy.min_confidence)
        policy.evaluate(report.labels, report.content_types)
    return time.perf_counter() - start


def main() -> None:
    """Measure and print the critical paths."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every latency")
    parser.add_argument("--images", type=int, default=4, help="images a request")
    args = parser.parse_args()
    comprehend_s, generate_s, rekognition_s = 0.2 * args.scale, 1.5 * args.scale, 0.5 * args.scale
    prompt = "a lighthouse at dawn, oil painting"

    def pipeline(optimistic: bool) -> Pipeline:
        return Pipeline(
            PromptModerator(
                rules=RuleFilter.default(), classifiers=[SimulatedComprehend(comprehend_s)]
            ),
            SimulatedEndpoint(generate_s),
            ImageModerator(SimulatedRekognition(rekognition_s)),
            optimistic=optimistic,
        )

    baseline = sequential(
        prompt,
        args.images,
        RuleFilter.default(),
        SimulatedComprehend(comprehend_s),
        SimulatedEndpoint(generate_s),
        SimulatedRekognition(rekognition_s),
        ModerationPolicy(),
    )
    timed = {}
    for optimistic in (False, True):
        start = time.perf_counter()
        result = pipeline(optimistic).run(prompt, images=args.images)
        timed[optimistic] = time.perf_counter() - start
        if [i.status.value for i in result.images] != ["safe"] * args.images:
            raise SystemExit("the simulated pipeline did not deliver every image")

    print(
        f"simulated latencies: Comprehend {comprehend_s * 1e3:.0f} ms, generation "
        f"{generate_s * 1e3:.0f} ms, Rekognition {rekognition_s * 1e3:.0f} ms/image, "
        f"{args.images} images"
    )
    print(f"{'design':<34} {'critical path':>14} {'vs sequential':>14} {'moderation adds':>16}")
    rows = [
        ("seed's sequential Lambda", baseline, baseline - generate_s),
        ("safegen Pipeline", timed[False], timed[False] - generate_s),
        ("safegen Pipeline, optimistic", timed[True], timed[True] - generate_s),
    ]
    for name, seconds, added in rows:
        print(
            f"{name:<34} {seconds * 1e3:>11.0f} ms {baseline / seconds:>13.2f}x "
            f"{added * 1e3:>13.0f} ms"
        )
    image_part = timed[False] - generate_s - comprehend_s
    print(
        f"image moderation on the critical path: {image_part * 1e3:.0f} ms "
        f"(target: one Rekognition round trip, {rekognition_s * 1e3:.0f} ms, plus a few ms)"
    )


if __name__ == "__main__":
    main()
