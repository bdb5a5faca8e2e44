"""The seams: small Protocols that AWS, offline and fake backends satisfy structurally.

A backend of your own (another vendor, an in-house model) plugs in by having the same methods;
there is nothing to inherit from. The value types they speak live below them, in
:mod:`safegen.reports` and :mod:`safegen.generate`, so no module imports back up the stack.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from safegen.generate import Generation, GenerationRequest
from safegen.reports import ImageReport, ImageSource, TextReport

__all__ = [
    "AsyncGenerator",
    "AsyncImageBackend",
    "AsyncTextClassifier",
    "Generator",
    "ImageBackend",
    "TextClassifier",
]


@runtime_checkable
class TextClassifier(Protocol):
    """Scores a prompt for unsafe content (Comprehend, a custom endpoint, a local model)."""

    @property
    def name(self) -> str:
        """A short, stable name for the check, used in verdicts and ``fail_open``."""
        ...

    def classify(self, text: str) -> TextReport:
        """Score *text*; raise a :class:`~safegen.SafegenError` when the check cannot run."""
        ...


@runtime_checkable
class ImageBackend(Protocol):
    """Looks at an image and reports moderation labels (Rekognition, a local model, a fake)."""

    @property
    def name(self) -> str:
        """A short, stable name for the backend, used in verdicts and logs."""
        ...

    def detect(self, image: ImageSource, *, min_confidence: float) -> ImageReport:
        """Report the labels found at or above *min_confidence* (0-100).

        Raise a :class:`~safegen.SafegenError` when the image cannot be checked.
        """
        ...


@runtime_checkable
class Generator(Protocol):
    """Makes images from a prompt (SageMaker JumpStart, Bedrock, a fake)."""

    @property
    def name(self) -> str:
        """A short, stable name for the generator, used in results and logs."""
        ...

    def generate(self, request: GenerationRequest) -> Generation:
        """Generate; a model's own content filter is reported in the result, not raised.

        Raise a :class:`~safegen.SafegenError` when the call fails.
        """
        ...


# The async face (safegen.aio) speaks the same value types through coroutine methods; a backend
# that does I/O on an event loop satisfies these instead of blocking a thread.


@runtime_checkable
class AsyncTextClassifier(Protocol):
    """:class:`TextClassifier` for an event loop: ``classify`` is a coroutine."""

    @property
    def name(self) -> str:
        """A short, stable name for the check, used in verdicts and ``fail_open``."""
        ...

    async def classify(self, text: str) -> TextReport:
        """Score *text*; raise a :class:`~safegen.SafegenError` when the check cannot run."""
        ...


@runtime_checkable
class AsyncImageBackend(Protocol):
    """:class:`ImageBackend` for an event loop: ``detect`` is a coroutine."""

    @property
    def name(self) -> str:
        """A short, stable name for the backend, used in verdicts and logs."""
        ...

    async def detect(self, image: ImageSource, *, min_confidence: float) -> ImageReport:
        """Report the labels found at or above *min_confidence* (0-100).

        Raise a :class:`~safegen.SafegenError` when the image cannot be checked.
        """
        ...


@runtime_checkable
class AsyncGenerator(Protocol):
    """:class:`Generator` for an event loop: ``generate`` is a coroutine."""

    @property
    def name(self) -> str:
        """A short, stable name for the generator, used in results and logs."""
        ...

    async def generate(self, request: GenerationRequest) -> Generation:
        """Generate; a model's own content filter is reported in the result, not raised.

        Raise a :class:`~safegen.SafegenError` when the call fails.
        """
        ...
