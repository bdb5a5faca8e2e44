"""The async face: moderators and the Pipeline for an event loop (FastAPI, Starlette, aiohttp).

Each async class is a second shell around the sync one's core: the same settings, the same
checks, the same verdicts for the same answers, failures included. Only the I/O differs:
backends are awaited (:mod:`safegen.ports`' async Protocols), classifiers and images run in
tasks, and cancelling a call cancels everything it started. A sync backend (an offline model,
a sync adapter) runs in worker threads with :func:`in_thread`.

>>> import asyncio
>>> from safegen.aio import AsyncImageModerator
>>> from safegen.testing import AsyncFakeImageBackend
>>> asyncio.run(AsyncImageModerator(AsyncFakeImageBackend()).moderate(b"png")).action
<Action.ALLOW: 'allow'>
"""

from __future__ import annotations

from safegen.aio._common import DEFAULT_GENERATE_TIMEOUT, DEFAULT_TIMEOUT
from safegen.aio._image import AsyncCascade, AsyncImageModerator
from safegen.aio._pipeline import AsyncPipeline
from safegen.aio._prompt import AsyncPromptModerator
from safegen.aio._threads import (
    ThreadedClassifier,
    ThreadedGenerator,
    ThreadedImageBackend,
    in_thread,
)

__all__ = [
    "DEFAULT_GENERATE_TIMEOUT",
    "DEFAULT_TIMEOUT",
    "AsyncCascade",
    "AsyncImageModerator",
    "AsyncPipeline",
    "AsyncPromptModerator",
    "ThreadedClassifier",
    "ThreadedGenerator",
    "ThreadedImageBackend",
    "in_thread",
]
