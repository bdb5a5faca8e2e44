"""Moderating a batch against a rate quota: safegen's moderate_many against a plain thread pool.

Both moderate the same images against the AWS emulator (loopback, real botocore stack) with
a requests-per-second quota answered by ThrottlingException and a fixed latency. The
baseline is what applications write today: a thread pool over a default boto3 client (its
legacy retry mode). safegen paces requests to the quota (``per_second``) and retries a
throttled request by giving it a later turn; its client's own retries are off, so no
attempt takes the quota out of turn. Printed: throughput as a fraction of the quota, and
images lost (errored).

Target: at least 90% of the quota, zero lost.

Run: ``.venv/bin/python benchmarks/bench_moderate_many.py [--images 1000] [--quota 50]``.
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ThreadPoolExecutor

from safegen import ImageModerator
from safegen.aws import RekognitionModerator
from safegen.testing import AWSEmulator, Faults

IMAGE = b"\xff\xd8\xff stand-in JPEG bytes"


def main() -> None:
    """Measure both and print the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--quota", type=float, default=50.0, help="requests per second")
    parser.add_argument("--latency", type=float, default=0.1, help="seconds per request")
    parser.add_argument("--workers", type=int, default=16, help="threads for both")
    args = parser.parse_args()

    with AWSEmulator(seed=1) as aws:
        aws.faults("DetectModerationLabels",
                   Faults(requests_per_second=args.quota, latency=args.latency))  # fmt: skip
        client = aws.client("rekognition", max_pool_connections=args.workers)

        def plain(_: int) -> bool:
            try:
                client.detect_moderation_labels(Image={"Bytes": IMAGE}, MinConfidence=50.0)
            except Exception:
                return False
            return True

        start = time.perf_counter()
        with ThreadPoolExecutor(args.workers) as pool:
            plain_ok = sum(pool.map(plain, range(args.images)))
        plain_seconds = time.perf_counter() - start
        time.sleep(1.1)  # let the quota window empty between the runs

        paced_client = aws.client(
            "rekognition",
            retries={"mode": "standard", "total_max_attempts": 1},  # the pacer retries
            max_pool_connections=args.workers,
        )
        moderator = ImageModerator(RekognitionModerator(paced_client))
        start = time.perf_counter()
        verdicts = moderator.moderate_many(
            [IMAGE] * args.images, max_workers=args.workers, per_second=args.quota
        )
        ours_seconds = time.perf_counter() - start
        ours_ok = sum(not v.failed for v in verdicts)

    print(f"{args.images} images, quota {args.quota:g}/s, latency {args.latency * 1e3:.0f} ms, "
          f"{args.workers} threads")  # fmt: skip
    print(f"{'design':<40} {'of quota':>9} {'lost':>6} {'seconds':>8}")
    for name, ok, seconds in (
        ("plain thread pool, default boto3 client", plain_ok, plain_seconds),
        ("safegen moderate_many(per_second=quota)", ours_ok, ours_seconds),
    ):
        share = ok / seconds / args.quota
        print(f"{name:<40} {share:>8.0%} {args.images - ok:>6} {seconds:>8.1f}")
    print("target: >= 90% of the quota, 0 lost")


if __name__ == "__main__":
    main()
