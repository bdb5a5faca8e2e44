"""Many requests at once: the async Pipeline on one event loop against the sync one in threads.

Both run the same pipeline (rules and Comprehend toxicity on the prompt, a Bedrock image model,
Rekognition on every image) against safegen's AWS emulator, which runs in its own process
with a fixed latency per operation (by default Comprehend 200 ms, generation 1.5 s,
Rekognition 500 ms, scaled by ``--scale``), so the figures show the designs' shapes, not the
network's. All ``--runs`` requests arrive at once; a request's latency is from then to its
result (waiting for a worker included), as its client would see it.

- async: :class:`safegen.aio.AsyncPipeline` with the aiobotocore adapters of
  :mod:`safegen.aws.aio` (real HTTP to the emulator), every run a task on one loop;
- baseline: :class:`safegen.Pipeline` with the boto3 adapters in a ``ThreadPoolExecutor`` of
  ``--threads`` workers (and, for comparison, one worker per request).

Each mode runs in a fresh process so its threads and peak memory are its own. Printed: p50 and
p95 latency, peak threads and peak resident memory, each as a ratio to the baseline measured
in the same run.

Target: against a bounded pool (32 threads), a lower p95 with a few threads in all; against
one thread per request, a p95 within 1.2x with a hundredth of the threads. (On one loop the
requests' CPU work, signing and parsing, is serial: the p50 is bound by it, not by waiting.)

Run: ``.venv/bin/python benchmarks/bench_async.py [--runs 200] [--threads 32] [--scale 0.2]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

PROMPT = "a lighthouse on a cliff at dusk, oil painting"
MODEL = "amazon.nova-canvas-v1:0"
LATENCY = {"DetectToxicContent": 0.2, "InvokeModel": 1.5, "DetectModerationLabels": 0.5}

_EMULATOR = """
import sys
from safegen import _emulator
from safegen.testing import AWSEmulator, Faults
# A listen backlog for hundreds of connections opened at once (socketserver's default is 5:
# the rest would wait for the kernel's one-second SYN retry, whichever client opened them).
_emulator._QuietServer.request_queue_size = 1024
scale = float(sys.argv[1])
latency = {latency!r}
with AWSEmulator(seed=0) as aws:
    for operation, seconds in latency.items():
        aws.faults(operation, Faults(latency=seconds * scale))
    print(aws.endpoint_url, flush=True)
    sys.stdin.read()
"""


class PeakThreads:
    """Sample the process's thread count every few milliseconds; keep the highest."""

    def __init__(self) -> None:
        self.peak = threading.active_count()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.002):
            self.peak = max(self.peak, threading.active_count() - 1)  # not the sampler itself

    def __enter__(self) -> PeakThreads:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _summary(latencies: list[float], statuses: list[str], threads: int) -> dict[str, Any]:
    ordered = sorted(latencies)
    return {
        "p50": statistics.median(ordered),
        "p95": ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))],
        "threads": threads,
        "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "ok": statuses.count("ok"),
    }


def run_sync(endpoint: str, runs: int, threads: int) -> dict[str, Any]:
    """Measure the baseline: the sync Pipeline with boto3 adapters in a thread pool."""
    import boto3
    from botocore.config import Config

    from safegen import ImageModerator, Pipeline, PromptModerator, RuleFilter
    from safegen.aws import BedrockGenerator, ComprehendToxicity, RekognitionModerator

    def client(service: str) -> Any:
        create: Any = boto3.client  # typed per service name in the stubs
        return create(
            service,
            region_name="us-east-1",
            endpoint_url=endpoint,
            aws_access_key_id="bench",
            aws_secret_access_key="bench",
            config=Config(max_pool_connections=max(threads, 10) * 4),
        )

    pipeline = Pipeline(
        PromptModerator(RuleFilter.default(), [ComprehendToxicity(client("comprehend"))]),
        BedrockGenerator(client("bedrock-runtime"), MODEL),
        ImageModerator(RekognitionModerator(client("rekognition"))),
    )
    with PeakThreads() as peak, ThreadPoolExecutor(threads) as pool:
        # Warm up with a whole batch: clients, the rule filter, every pooled connection.
        list(pool.map(lambda _: pipeline.run(PROMPT, images=2), range(runs)))
        start = time.perf_counter()

        def one(_: int) -> tuple[float, str]:
            status = pipeline.run(PROMPT, images=2).status
            return time.perf_counter() - start, status

        done = list(pool.map(one, range(runs)))
    return _summary([d[0] for d in done], [d[1] for d in done], peak.peak)


def run_async(endpoint: str, runs: int) -> dict[str, Any]:
    """Measure the async face: AsyncPipeline with aiobotocore adapters on one loop."""
    from aiobotocore.config import AioConfig
    from aiobotocore.session import get_session

    from safegen import RuleFilter
    from safegen.aio import AsyncImageModerator, AsyncPipeline, AsyncPromptModerator
    from safegen.aws.aio import (
        AsyncBedrockGenerator,
        AsyncComprehendToxicity,
        AsyncRekognitionBackend,
    )

    async def main() -> dict[str, Any]:
        session = get_session()

        def client(service: str) -> Any:
            create: Any = session.create_client
            return create(
                service,
                region_name="us-east-1",
                endpoint_url=endpoint,
                aws_access_key_id="bench",
                aws_secret_access_key="bench",
                config=AioConfig(max_pool_connections=runs * 2),
            )

        async with (
            client("comprehend") as comprehend,
            client("bedrock-runtime") as bedrock,
            client("rekognition") as rekognition,
        ):
            pipeline = AsyncPipeline(
                AsyncPromptModerator(RuleFilter.default(), [AsyncComprehendToxicity(comprehend)]),
                AsyncBedrockGenerator(bedrock, MODEL),
                AsyncImageModerator(AsyncRekognitionBackend(rekognition)),
            )
            with PeakThreads() as peak:
                # Warm up with a whole batch: the rule filter, every pooled connection.
                await asyncio.gather(*(pipeline.run(PROMPT, images=2) for _ in range(runs)))
                start = time.perf_counter()

                async def one() -> tuple[float, str]:
                    status = (await pipeline.run(PROMPT, images=2)).status
                    return time.perf_counter() - start, status

                done = await asyncio.gather(*(one() for _ in range(runs)))
            return _summary([d[0] for d in done], [d[1] for d in done], peak.peak)

    return asyncio.run(main())


def _measure(mode: str, endpoint: str, runs: int, threads: int) -> dict[str, Any]:
    """Run one mode in a fresh process; return its figures."""
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode, endpoint, str(runs), str(threads)],
        check=True,
        capture_output=True,
        text=True,
    )
    figures: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return figures


def main() -> None:
    """Start the emulator, measure every mode, print the comparison."""
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        mode, endpoint, runs, threads = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
        measure: Callable[[], dict[str, Any]] = (
            (lambda: run_async(endpoint, runs))
            if mode == "async"
            else (lambda: run_sync(endpoint, runs, threads))
        )
        print(json.dumps(measure()))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200, help="requests arriving at once")
    parser.add_argument("--threads", type=int, default=32, help="the baseline pool's workers")
    parser.add_argument("--scale", type=float, default=0.2, help="multiplies every latency")
    args = parser.parse_args()

    emulator = subprocess.Popen(
        [sys.executable, "-c", _EMULATOR.format(latency=LATENCY), str(args.scale)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert emulator.stdout is not None
        endpoint = emulator.stdout.readline().strip()
        baseline = _measure("sync", endpoint, args.runs, args.threads)
        wide = _measure("sync", endpoint, args.runs, args.runs)
        aio = _measure("async", endpoint, args.runs, 0)
    finally:
        emulator.kill()
        emulator.wait()

    path = sum(LATENCY[o] for o in ("DetectToxicContent", "InvokeModel", "DetectModerationLabels"))
    print(
        f"{args.runs} pipeline runs arriving at once (2 images each); emulated latencies x"
        f"{args.scale:g}: critical path ~{path * args.scale * 1000:.0f} ms a run"
    )
    print(
        "adapters: safegen.aws.aio (aiobotocore) and safegen.aws (boto3), real HTTP to the emulator"
    )
    rows = [
        (f"sync Pipeline, {args.threads} threads (baseline)", baseline),
        (f"sync Pipeline, {args.runs} threads", wide),
        ("AsyncPipeline, one event loop", aio),
    ]
    print(f"{'':44} {'p50 ms':>8} {'p95 ms':>8} {'threads':>8} {'peak RSS MB':>12} {'ok':>5}")
    for title, f in rows:
        print(
            f"{title:44} {f['p50'] * 1000:8.0f} {f['p95'] * 1000:8.0f} {f['threads']:8d}"
            f" {f['rss_mb']:12.1f} {f['ok']:5d}"
        )
    for title, f in rows[1:]:
        print(
            f"{title} / baseline: p50 x{f['p50'] / baseline['p50']:.2f}, "
            f"p95 x{f['p95'] / baseline['p95']:.2f}, "
            f"threads x{f['threads'] / baseline['threads']:.2f}, "
            f"peak RSS x{f['rss_mb'] / baseline['rss_mb']:.2f}"
        )
    print(
        f"async against {args.runs} threads: p95 x{aio['p95'] / wide['p95']:.2f}, "
        f"threads x{aio['threads'] / wide['threads']:.2f}, "
        f"peak RSS x{aio['rss_mb'] / wide['rss_mb']:.2f}"
    )


if __name__ == "__main__":
    main()
