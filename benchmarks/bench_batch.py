"""A batch over an S3 prefix (moto server) against a 50/s emulated Rekognition quota.

Two figures:

1. **Share of the quota used**: ``ClientEngine(per_second=quota)`` moderating every object
   of an S3 prefix listed from a moto server, against the AWS emulator's Rekognition with a
   requests-per-second quota (answered by throttling) and a fixed latency. Target: >= 95%.
2. **Peak memory flat in the number of objects**: the same engine (a fake backend, no
   quota) over prefixes of ``--small`` and ``--large`` objects; peak traced memory
   (tracemalloc) of the streamed run against the baseline of listing everything first.
   Printed as the large/small ratio of each. The ledger keeps the refs it has settled
   (about 100 bytes each): that part grows, by design; the listing does not.

Defaults keep run_all quick (a 1,000-object quota run; 200 vs 2,000 objects). The full size:
``.venv/bin/python benchmarks/bench_batch.py --objects 10000 --small 1000 --large 10000``.
"""

from __future__ import annotations

import argparse
import multiprocessing
import socket
import tempfile
import time
import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

from safegen import ImageModerator, ModerationPolicy
from safegen.aws import RekognitionModerator
from safegen.aws.s3 import prefix_items
from safegen.batch import ClientEngine, Ledger
from safegen.reports import ImageReport, ImageSource
from safegen.testing import AWSEmulator, Faults

POLICY = ModerationPolicy()


class _Quiet:
    """A backend that answers at once and keeps nothing (FakeImageBackend records calls)."""

    name = "quiet"

    def detect(self, image: ImageSource, *, min_confidence: float) -> ImageReport:
        return ImageReport(labels=(), model_version="7.0")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _s3(endpoint: str) -> Any:
    factory: Any = boto3.client
    return factory("s3", region_name="us-east-1", endpoint_url=endpoint,
                   aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip


def _fill(s3: Any, bucket: str, prefix: str, count: int) -> None:
    s3.create_bucket(Bucket=bucket)

    def put(index: int) -> None:
        s3.put_object(Bucket=bucket, Key=f"{prefix}{index:06d}.jpg", Body=b"\xff\xd8\xff jpeg")

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(put, range(count)))


def quota_share(s3: Any, count: int, quota: float, latency: float, workers: int) -> None:
    """Moderate *count* S3 objects in place against the quota; print the share used."""
    _fill(s3, "quota", "in/", count)
    with AWSEmulator(seed=5) as aws, tempfile.TemporaryDirectory() as folder:
        aws.faults("DetectModerationLabels",
                   Faults(requests_per_second=quota, latency=latency))  # fmt: skip
        client = aws.client("rekognition", retries={"mode": "standard", "total_max_attempts": 1},
                            max_pool_connections=workers)  # fmt: skip
        engine = ClientEngine(ImageModerator(RekognitionModerator(client), POLICY),
                              workers=workers, per_second=quota)  # fmt: skip
        with Ledger.open(Path(folder) / "l.jsonl", policy=POLICY, engine="client") as ledger:
            start = time.perf_counter()
            summary = engine.run(prefix_items(s3, "quota", "in/"), ledger)
            seconds = time.perf_counter() - start
        throttled = aws.counts("DetectModerationLabels").throttled
    share = summary.checked / seconds / quota
    print(f"{count} objects, quota {quota:g}/s, latency {latency * 1e3:.0f} ms, {workers} workers")
    print(f"{'design':<44} {'of quota':>9} {'lost':>6} {'throttled':>10} {'seconds':>8}")
    print(f"{'ClientEngine(per_second=quota), S3 listing':<44} {share:>8.0%} "
          f"{count - summary.checked:>6} {throttled:>10} {seconds:>8.1f}")  # fmt: skip
    print("target: >= 95% of the quota, 0 lost (a resumed run would retry any lost)")


def _peak(run: Any) -> int:
    tracemalloc.start()
    tracemalloc.reset_peak()
    run()
    peak: int = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def memory(s3: Any, small: int, large: int) -> None:
    """Print the peak memory of streamed vs list-first runs at two sizes."""
    engine = ClientEngine(ImageModerator(_Quiet(), POLICY), workers=4)
    rows = []
    for count in (small, large):
        bucket = f"mem-{count}"
        _fill(s3, bucket, "in/", count)
        with tempfile.TemporaryDirectory() as folder:

            def streamed(folder: str = folder, bucket: str = bucket) -> None:
                with Ledger.open(Path(folder) / "s.jsonl", policy=POLICY, engine="c") as ledger:
                    engine.run(prefix_items(s3, bucket, "in/"), ledger)

            def listed_first(folder: str = folder, bucket: str = bucket) -> None:
                with Ledger.open(Path(folder) / "l.jsonl", policy=POLICY, engine="c") as ledger:
                    engine.run(list(prefix_items(s3, bucket, "in/")), ledger)

            rows.append((count, _peak(streamed), _peak(listed_first)))
    print(f"{'objects':>8} {'streamed peak':>14} {'list-first peak':>16}")
    for count, ours, baseline in rows:
        print(f"{count:>8} {ours / 1e6:>12.2f}MB {baseline / 1e6:>14.2f}MB")
    (n1, s1, b1), (n2, s2, b2) = rows
    print(f"x{n2 / n1:g} objects: streamed peak x{s2 / s1:.2f}, list-first peak x{b2 / b1:.2f} "
          f"(streamed grows by {(s2 - s1) / (n2 - n1):.0f} bytes/object: the ledger's "
          "settled refs)")  # fmt: skip


def _serve(port: int) -> None:
    """Run a moto server in its own process, so its memory is not traced with ours."""
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    while True:
        time.sleep(3600)


def _wait_for(port: int) -> None:
    for _ in range(1200):  # up to a minute on a busy machine
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("the moto server did not start")


def main() -> None:
    """Start a moto server (another process); measure both figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=1000, help="objects for the quota run")
    parser.add_argument("--quota", type=float, default=50.0, help="requests per second")
    parser.add_argument("--latency", type=float, default=0.1, help="seconds per request")
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--small", type=int, default=200)
    parser.add_argument("--large", type=int, default=2000)
    args = parser.parse_args()
    port = _free_port()
    server = multiprocessing.get_context("spawn").Process(target=_serve, args=(port,), daemon=True)
    server.start()
    try:
        _wait_for(port)
        s3 = _s3(f"http://127.0.0.1:{port}")
        quota_share(s3, args.objects, args.quota, args.latency, args.workers)
        print()
        memory(s3, args.small, args.large)
    finally:
        server.terminate()
        server.join()


if __name__ == "__main__":
    main()
