"""Test helpers for applications that use safegen: fakes that satisfy safegen's ports.

Use them in your own tests to script what a backend reports, or to make it fail, without AWS:

>>> from safegen import ImageModerator, ModerationLabel
>>> from safegen.testing import FakeImageBackend
>>> backend = FakeImageBackend(labels=[ModerationLabel("Gambling", 80.0)])
>>> ImageModerator(backend).moderate(b"png bytes").action
<Action.BLOCK: 'block'>
>>> backend.calls[0].min_confidence
50.0
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

import attrs

from safegen._emulator import AWSEmulator, Counts, Faults
from safegen.generate import GeneratedImage, Generation, GenerationRequest, seeds
from safegen.image import ImageReport, ImageSource
from safegen.labels import ContentType, ModerationLabel

__all__ = ["AWSEmulator", "Counts", "DetectCall", "FakeGenerator", "FakeImageBackend", "Faults"]


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
