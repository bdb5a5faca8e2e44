"""Sync backends on an event loop: each call runs in a worker thread."""

from __future__ import annotations

import asyncio
import inspect
from typing import overload

import attrs

from safegen import _checks
from safegen.errors import ConfigurationError
from safegen.generate import Generation, GenerationRequest
from safegen.ports import Generator, ImageBackend, TextClassifier
from safegen.prompt_policy import PolicyConfigurable, PromptPolicy
from safegen.reports import ImageReport, ImageSource, TextReport

__all__ = ["ThreadedClassifier", "ThreadedGenerator", "ThreadedImageBackend", "in_thread"]


@attrs.frozen
class ThreadedImageBackend:
    """An :class:`~safegen.ports.ImageBackend` whose ``detect`` runs in a worker thread.

    :param backend: the sync backend (an offline model, a sync adapter, a fake).
    """

    backend: ImageBackend = attrs.field(
        validator=_checks.port(ImageBackend, "an image backend (name and detect)")
    )

    @property
    def name(self) -> str:
        """The wrapped backend's name."""
        return self.backend.name

    async def detect(self, image: ImageSource, *, min_confidence: float) -> ImageReport:
        """Run the backend's ``detect`` in a worker thread."""
        return await asyncio.to_thread(self.backend.detect, image, min_confidence=min_confidence)


@attrs.frozen
class ThreadedClassifier:
    """A :class:`~safegen.ports.TextClassifier` whose ``classify`` runs in a worker thread.

    :param classifier: the sync classifier.
    """

    classifier: TextClassifier = attrs.field(
        validator=_checks.port(TextClassifier, "a text classifier (name and classify)")
    )

    @property
    def name(self) -> str:
        """The wrapped classifier's name."""
        return self.classifier.name

    async def classify(self, text: str) -> TextReport:
        """Run the classifier's ``classify`` in a worker thread."""
        return await asyncio.to_thread(self.classifier.classify, text)

    def with_policy(self, policy: PromptPolicy) -> ThreadedClassifier:
        """Return this wrapper around the classifier's copy for *policy*.

        As a moderator built from a policy asks a :class:`~safegen.PolicyConfigurable`
        classifier (a :class:`~safegen.aws.guardrails.BedrockGuardrail`, a Comprehend
        check): the wrapper hides nothing, so the sync and async moderators configure the
        same classifier alike. A classifier that cannot be configured is kept as it is.
        """
        if not isinstance(self.classifier, PolicyConfigurable):
            return self
        return ThreadedClassifier(self.classifier.with_policy(policy))


@attrs.frozen
class ThreadedGenerator:
    """A :class:`~safegen.ports.Generator` whose ``generate`` runs in a worker thread.

    :param generator: the sync generator.
    """

    generator: Generator = attrs.field(
        validator=_checks.port(Generator, "a generator (name and generate)")
    )

    @property
    def name(self) -> str:
        """The wrapped generator's name."""
        return self.generator.name

    async def generate(self, request: GenerationRequest) -> Generation:
        """Run the generator's ``generate`` in a worker thread."""
        return await asyncio.to_thread(self.generator.generate, request)


@overload
def in_thread(port: ImageBackend) -> ThreadedImageBackend: ...
@overload
def in_thread(port: TextClassifier) -> ThreadedClassifier: ...
@overload
def in_thread(port: Generator) -> ThreadedGenerator: ...
def in_thread(
    port: ImageBackend | TextClassifier | Generator,
) -> ThreadedImageBackend | ThreadedClassifier | ThreadedGenerator:
    """Return a sync backend, classifier or generator made usable on an event loop.

    Each call runs in the loop's default thread pool (``asyncio.to_thread``), so an
    offline model or a sync adapter does not block the loop. Cancelling the awaiting task
    stops waiting at once; the thread's call finishes on its own and its answer is dropped.

    :raises ConfigurationError: *port* is none of the three, or is async already.

    >>> import asyncio
    >>> from safegen.testing import FakeImageBackend
    >>> backend = in_thread(FakeImageBackend())
    >>> asyncio.run(backend.detect(b"png", min_confidence=50.0)).labels
    ()
    """
    for method, wrapper in (
        ("detect", ThreadedImageBackend),
        ("classify", ThreadedClassifier),
        ("generate", ThreadedGenerator),
    ):
        call = getattr(port, method, None)
        if call is None:
            continue
        if inspect.iscoroutinefunction(call):
            raise ConfigurationError(
                f"port: {type(port).__name__}.{method} is async already: use it as it is"
            )
        wrapped: ThreadedImageBackend | ThreadedClassifier | ThreadedGenerator = wrapper(
            port  # type: ignore[arg-type]  # the method found says which it is
        )
        return wrapped
    raise ConfigurationError(
        "port: expected an image backend, a text classifier or a generator, got "
        f"{type(port).__name__}"
    )
