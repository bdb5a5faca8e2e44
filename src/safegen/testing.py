"""Test helpers for applications that use safegen: fakes that satisfy safegen's ports.

Use them in your own tests to script what a backend reports, or to make it fail, without AWS:

>>> from safegen import ImageModerator, ModerationLabel
>>> from safegen.testing import FakeImageBackend
>>> backend = FakeImageBackend(labels=[ModerationLabel("Gambling", 80.0)])
>>> ImageModerator(backend).moderate(b"png bytes").action
<Action.BLOCK: 'block'>
>>> backend.calls[0].min_confidence
50.0

The async fakes (:class:`AsyncFakeImageBackend`, :class:`AsyncFakeTextClassifier`,
:class:`AsyncFakeGenerator`) answer the same way for :mod:`safegen.aio`, and can also take
their time (*delay*), never answer (*hang*) and count the cancellations they saw:

>>> import asyncio
>>> from safegen.aio import AsyncImageModerator
>>> from safegen.testing import AsyncFakeImageBackend
>>> hung = AsyncFakeImageBackend(hang=True)
>>> verdict = asyncio.run(AsyncImageModerator(hung, timeout=0.01).moderate(b"png bytes"))
>>> verdict.action, hung.cancelled
(<Action.BLOCK: 'block'>, 1)
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterable
from typing import Any

import attrs

from safegen._emulator import AWSEmulator, Counts, Faults
from safegen.generate import GeneratedImage, Generation, GenerationRequest, seeds
from safegen.image import ImageReport, ImageSource
from safegen.labels import ContentType, ModerationLabel
from safegen.reports import PromptFinding, TextReport

__all__ = [
    "AWSEmulator",
    "AsyncFakeGenerator",
    "AsyncFakeImageBackend",
    "AsyncFakeTextClassifier",
    "Counts",
    "DetectCall",
    "FakeGenerator",
    "FakeImageBackend",
    "FakeTextClassifier",
    "Faults",
]


@attrs.frozen
class DetectCall:
    """One call a :class:`FakeImageBackend` received."""

    image: ImageSource
    min_confidence: float


class FakeImageBackend:
    """An image backend that reports what you tell it to, and remembers what it was asked.

    :param labels: the labels to report for every image.
    :param content_types: the content types to report.
    :param model_version: the model version to report.
    :param error: raise this instead of answering (to test failure handling).
    :param respond: compute the report per image instead (overrides the above).
    :param name: the backend's name in verdicts.
    :param coverage: the categories it says it sees, like an offline model (``None``: all).

    Labels below the ``min_confidence`` asked for are left out, as Rekognition does.
    Safe to call from several threads.
    """

    def __init__(
        self,
        labels: Iterable[ModerationLabel] = (),
        content_types: Iterable[ContentType] = (),
        *,
        model_version: str | None = "7.0",
        error: Exception | None = None,
        respond: Callable[[ImageSource], ImageReport] | None = None,
        name: str = "fake",
        coverage: Iterable[str] | None = None,
    ) -> None:
        self.labels = tuple(labels)
        self.coverage = None if coverage is None else tuple(coverage)
        self.content_types = tuple(content_types)
        self.model_version = model_version
        self.error = error
        self.respond = respond
        self._name = name
        self._lock = threading.Lock()
        self._calls: list[DetectCall] = []

    @property
    def name(self) -> str:
        """The backend's name in verdicts."""
        return self._name

    @property
    def calls(self) -> tuple[DetectCall, ...]:
        """Every call received so far, in order."""
        with self._lock:
            return tuple(self._calls)

    def detect(self, image: ImageSource, *, min_confidence: float) -> ImageReport:
        """Record the call, then answer as configured."""
        with self._lock:
            self._calls.append(DetectCall(image, min_confidence))
        if self.error is not None:
            raise self.error
        if self.respond is not None:
            return self.respond(image)
        return ImageReport(
            labels=tuple(label for label in self.labels if label.confidence >= min_confidence),
            content_types=self.content_types,
            model_version=self.model_version,
            coverage=self.coverage,
        )


class FakeGenerator:
    """A generator that returns the images you give it, and remembers every request.

    :param images: the encoded images to hand out, in turn (cycling), one per image asked for.
    :param error: raise this instead of generating.
    :param respond: compute the result per request instead (overrides the above).
    :param image_format: the format the images are reported in.
    :param name: the generator's name in results.
    """

    def __init__(
        self,
        images: Iterable[bytes] = (),
        *,
        error: Exception | None = None,
        respond: Callable[[GenerationRequest], Generation] | None = None,
        image_format: str = "PNG",
        name: str = "fake-generator",
    ) -> None:
        self.images = tuple(images)
        self.error = error
        self.respond = respond
        self.image_format = image_format
        self._name = name
        self._lock = threading.Lock()
        self._requests: list[GenerationRequest] = []
        self._handed_out = 0

    @property
    def name(self) -> str:
        """The generator's name in results."""
        return self._name

    @property
    def requests(self) -> tuple[GenerationRequest, ...]:
        """Every request received so far, in order."""
        with self._lock:
            return tuple(self._requests)

    def generate(self, request: GenerationRequest) -> Generation:
        """Record the request, then answer as configured."""
        with self._lock:
            self._requests.append(request)
            first, self._handed_out = self._handed_out, self._handed_out + request.images
        if self.error is not None:
            raise self.error
        if self.respond is not None:
            return self.respond(request)
        if not self.images:
            return Generation(request, generator=self._name)
        made = tuple(
            GeneratedImage(self.images[(first + i) % len(self.images)], self.image_format, seed)
            for i, seed in enumerate(seeds(request))
        )
        return Generation(request, made, generator=self._name)


class FakeTextClassifier:
    """A text classifier that reports what you tell it to, and remembers every text.

    :param findings: the findings to report for every text.
    :param error: raise this instead of answering.
    :param respond: compute the report per text instead (overrides the above).
    :param name: the check's name in verdicts.
    """

    def __init__(
        self,
        findings: Iterable[PromptFinding] = (),
        *,
        error: Exception | None = None,
        respond: Callable[[str], TextReport] | None = None,
        name: str = "fake-classifier",
    ) -> None:
        self.findings = tuple(findings)
        self.error = error
        self.respond = respond
        self._name = name
        self._lock = threading.Lock()
        self._texts: list[str] = []

    @property
    def name(self) -> str:
        """The check's name in verdicts."""
        return self._name

    @property
    def texts(self) -> tuple[str, ...]:
        """Every text received so far, in order."""
        with self._lock:
            return tuple(self._texts)

    def classify(self, text: str) -> TextReport:
        """Record the text, then answer as configured."""
        with self._lock:
            self._texts.append(text)
        if self.error is not None:
            raise self.error
        if self.respond is not None:
            return self.respond(text)
        return TextReport(self.findings)


class _Pause:
    """How an async fake takes its time: a delay, or a hang; counts the cancellations seen."""

    def __init__(self, delay: float, hang: bool) -> None:
        self.delay = delay
        self.hang = hang
        self.started = asyncio.Event()
        self._lock = threading.Lock()
        self._cancelled = 0

    @property
    def cancelled(self) -> int:
        with self._lock:
            return self._cancelled

    async def wait(self) -> None:
        self.started.set()
        try:
            if self.hang:
                await asyncio.Event().wait()  # never set: only a cancellation ends this
            elif self.delay > 0:
                await asyncio.sleep(self.delay)
        except asyncio.CancelledError:
            with self._lock:
                self._cancelled += 1
            raise


class _AsyncFake:
    """What the async fakes share: the pause, its event and its count."""

    _pause: _Pause

    @property
    def started(self) -> asyncio.Event:
        """Set when the first call began (to cancel a call that is surely under way)."""
        return self._pause.started

    @property
    def cancelled(self) -> int:
        """How many calls were cancelled while they waited (each saw ``CancelledError``)."""
        return self._pause.cancelled


class AsyncFakeImageBackend(_AsyncFake):
    """:class:`FakeImageBackend` for :mod:`safegen.aio`: ``detect`` is a coroutine.

    Takes :class:`FakeImageBackend`'s parameters, and:

    :param delay: seconds each call takes (emulated latency).
    :param hang: never answer: each call waits until it is cancelled.
    """

    def __init__(
        self,
        labels: Iterable[ModerationLabel] = (),
        content_types: Iterable[ContentType] = (),
        *,
        delay: float = 0.0,
        hang: bool = False,
        **settings: Any,
    ) -> None:
        self.fake = FakeImageBackend(labels, content_types, **settings)
        self._pause = _Pause(delay, hang)

    @property
    def name(self) -> str:
        """The backend's name in verdicts."""
        return self.fake.name

    @property
    def calls(self) -> tuple[DetectCall, ...]:
        """Every call received so far, in order."""
        return self.fake.calls

    async def detect(self, image: ImageSource, *, min_confidence: float) -> ImageReport:
        """Take the configured time, then answer as :class:`FakeImageBackend` does."""
        await self._pause.wait()
        return self.fake.detect(image, min_confidence=min_confidence)


class AsyncFakeTextClassifier(_AsyncFake):
    """:class:`FakeTextClassifier` for :mod:`safegen.aio`: ``classify`` is a coroutine.

    Takes :class:`FakeTextClassifier`'s parameters, and *delay* and *hang* (see
    :class:`AsyncFakeImageBackend`).
    """

    def __init__(
        self,
        findings: Iterable[PromptFinding] = (),
        *,
        delay: float = 0.0,
        hang: bool = False,
        **settings: Any,
    ) -> None:
        self.fake = FakeTextClassifier(findings, **settings)
        self._pause = _Pause(delay, hang)

    @property
    def name(self) -> str:
        """The check's name in verdicts."""
        return self.fake.name

    @property
    def texts(self) -> tuple[str, ...]:
        """Every text received so far, in order."""
        return self.fake.texts

    async def classify(self, text: str) -> TextReport:
        """Take the configured time, then answer as :class:`FakeTextClassifier` does."""
        await self._pause.wait()
        return self.fake.classify(text)


class AsyncFakeGenerator(_AsyncFake):
    """:class:`FakeGenerator` for :mod:`safegen.aio`: ``generate`` is a coroutine.

    Takes :class:`FakeGenerator`'s parameters, and *delay* and *hang* (see
    :class:`AsyncFakeImageBackend`). The request is recorded when the call begins, so a
    cancelled generation was asked for all the same.
    """

    def __init__(
        self,
        images: Iterable[bytes] = (),
        *,
        delay: float = 0.0,
        hang: bool = False,
        **settings: Any,
    ) -> None:
        self.fake = FakeGenerator(images, **settings)
        self._pause = _Pause(delay, hang)
        self._lock = threading.Lock()
        self._requests: list[GenerationRequest] = []

    @property
    def name(self) -> str:
        """The generator's name in results."""
        return self.fake.name

    @property
    def requests(self) -> tuple[GenerationRequest, ...]:
        """Every request received so far, in order (cancelled ones included)."""
        with self._lock:
            return tuple(self._requests)

    async def generate(self, request: GenerationRequest) -> Generation:
        """Record the request, take the configured time, then answer as :class:`FakeGenerator`."""
        with self._lock:
            self._requests.append(request)
        await self._pause.wait()
        return self.fake.generate(request)
