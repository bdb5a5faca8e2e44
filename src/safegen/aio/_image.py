"""Async image moderation: the sync moderator's core, its backend awaited."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Iterable

import attrs

from safegen import _checks
from safegen.aio._common import (
    DEFAULT_TIMEOUT,
    answer,
    async_port,
    concurrency,
    gather_bounded,
    timeout_setting,
)
from safegen.aio._threads import ThreadedImageBackend, in_thread
from safegen.cascade import Cascade, CascadeRules, _derivable, _escalated
from safegen.decision import Action
from safegen.errors import ConfigurationError
from safegen.image import (
    ImageJudging,
    ImageModerator,
    ImageVerdict,
    PolicyCache,
    _batch,
    _image_source,
    _policy,
    ask_for,
    observer_setting,
    tell,
)
from safegen.observe import Observer
from safegen.policy import ModerationPolicy
from safegen.ports import AsyncImageBackend
from safegen.preflight import Preflight
from safegen.reports import ImageSource, S3Object

__all__ = ["AsyncCascade", "AsyncImageModerator"]

_backend = async_port(AsyncImageBackend, "an async image backend (name and async detect)", "detect")


@attrs.frozen(eq=False)
class AsyncImageModerator(ImageJudging):
    """:class:`~safegen.ImageModerator` on an event loop: the same settings and verdicts.

    Everything but the backend's call is the sync moderator's own code (preflight, the
    policy's judgement, failing closed), so for the same answers the verdicts are the same.

    :param backend: an :class:`~safegen.ports.AsyncImageBackend`, e.g.
        :class:`safegen.aws.aio.AsyncRekognitionBackend`, or a sync one wrapped with
        :func:`in_thread`.
    :param policy: what "unsafe" means; Rekognition's defaults if not given.
    :param fail_open: count a backend failure as ``ALLOW`` (off: moderation fails closed).
    :param on_failure: the action when the backend fails: ``BLOCK`` (default) or ``REVIEW``.
    :param preflight: check (and repair) image bytes first; it runs in a worker thread.
    :param min_confidence: ask the backend down to this confidence (never above the
        policy's).
    :param timeout: seconds the backend may take before its check counts as failed (a
        :class:`~safegen.ServiceUnavailableError` with code ``"Timeout"`` in the verdict);
        ``None`` for no limit of its own.
    :param observer: told about every verdict (:mod:`safegen.observe`).
    :raises ConfigurationError: a setting is refused (a sync backend, ``on_failure`` is
        ``ALLOW``, ...); the message names it.

    >>> import asyncio
    >>> from safegen import ModerationLabel
    >>> from safegen.testing import AsyncFakeImageBackend
    >>> weapons = ModerationLabel("Weapons", 91.0, parent="Violence")
    >>> moderator = AsyncImageModerator(AsyncFakeImageBackend(labels=[weapons]))
    >>> asyncio.run(moderator.moderate(b"...image bytes...")).action
    <Action.BLOCK: 'block'>
    """

    backend: AsyncImageBackend = attrs.field(validator=_backend)
    policy: ModerationPolicy = attrs.field(
        default=None,
        converter=_policy,
        validator=_checks.instance_of(ModerationPolicy, what="a ModerationPolicy"),
    )
    fail_open: bool = attrs.field(default=False, kw_only=True, validator=_checks.flag)
    on_failure: Action = attrs.field(
        default=Action.BLOCK,
        kw_only=True,
        validator=_checks.not_allow("say fail_open=True instead"),
    )
    preflight: Preflight | None = attrs.field(
        default=None,
        kw_only=True,
        validator=_checks.optional(_checks.instance_of(Preflight, what="a Preflight")),
    )
    min_confidence: float | None = attrs.field(default=None, kw_only=True, validator=ask_for)
    timeout: float | None = attrs.field(
        default=DEFAULT_TIMEOUT, kw_only=True, validator=timeout_setting
    )
    observer: Observer | None = attrs.field(default=None, kw_only=True, validator=observer_setting)
    _overrides: PolicyCache[AsyncImageModerator] = attrs.field(
        init=False, factory=PolicyCache, repr=False
    )

    @classmethod
    def from_sync(
        cls,
        moderator: ImageModerator,
        *,
        backend: AsyncImageBackend | None = None,
        timeout: float | None = DEFAULT_TIMEOUT,
    ) -> AsyncImageModerator:
        """Build the async twin of *moderator*: its settings, *backend* (else its own in a thread).

        :raises ConfigurationError: *moderator* is not an :class:`~safegen.ImageModerator`.
        """
        if not isinstance(moderator, ImageModerator):
            raise ConfigurationError(
                f"moderator: expected an ImageModerator, got {_checks.kind(moderator)}"
            )
        return cls(
            in_thread(moderator.backend) if backend is None else backend,
            moderator.policy,
            fail_open=moderator.fail_open,
            on_failure=moderator.on_failure,
            preflight=moderator.preflight,
            min_confidence=moderator.min_confidence,
            timeout=timeout,
            observer=moderator.observer,
        )

    async def moderate(
        self, image: ImageSource, *, policy: ModerationPolicy | None = None
    ) -> ImageVerdict:
        """Moderate one image; a bad image or a failed backend is in the verdict, not raised.

        :param policy: judge this image by *policy* instead (as
            :meth:`ImageModerator.moderate <safegen.ImageModerator.moderate>` does).
        :raises TypeError: *image* is not an image at all (also an
            :class:`~safegen.InvalidImageError`); nothing is sent.
        :raises ConfigurationError: *policy* is not a :class:`~safegen.ModerationPolicy`.
        """
        verdict = await self._check(_image_source(image), policy)
        tell(self._observers, "image_checked", verdict)
        return verdict

    async def moderate_many(
        self,
        images: Iterable[ImageSource],
        *,
        concurrency: int = 8,
        policy: ModerationPolicy | None = None,
    ) -> list[ImageVerdict]:
        """Moderate many images, at most *concurrency* at once; verdicts in order.

        :raises ConfigurationError: *concurrency* is not a whole number of at least 1, or
            *policy* is not a :class:`~safegen.ModerationPolicy`.
        :raises InvalidImageError: *images* is not a collection of images.
        :raises TypeError: an item is not an image at all; raised before any is sent.
        """
        verdicts = await self._check_many(images, concurrency=concurrency, policy=policy)
        for verdict in verdicts:
            tell(self._observers, "image_checked", verdict)
        return verdicts

    async def _check(self, image: ImageSource, policy: ModerationPolicy | None) -> ImageVerdict:
        moderator: AsyncImageModerator = self._for_policy(policy)
        return await moderator._moderate(image)

    async def _check_many(
        self,
        images: Iterable[ImageSource],
        *,
        concurrency: int = 8,
        policy: ModerationPolicy | None = None,
    ) -> list[ImageVerdict]:
        limit = _concurrency(concurrency)
        moderator: AsyncImageModerator = self._for_policy(policy)
        return await gather_bounded(_batch(images), moderator._moderate, limit)

    async def _moderate(self, image: ImageSource) -> ImageVerdict:
        start = time.perf_counter()
        if self.preflight is None or isinstance(image, S3Object):
            prepared = self._prepare(image, start)
        else:  # decoding is CPU work: keep it off the loop
            prepared = await asyncio.to_thread(self._prepare, image, start)
        if isinstance(prepared, ImageVerdict):
            return prepared
        data, repairs = prepared
        result = await answer(
            functools.partial(self.backend.detect, data, min_confidence=self._floor()),
            self.timeout,
            self._backend_name,
            "detect",
        )
        return self._conclude(result, repairs, start)


_concurrency = concurrency
_first = async_port(AsyncImageBackend, "an async image backend (name and async detect)", "detect")


@attrs.frozen(eq=False)
class AsyncCascade(CascadeRules):
    """:class:`~safegen.Cascade` on an event loop: the same rules for when *first* decides.

    :param first: the cheap async backend (an offline model wrapped with :func:`in_thread`).
    :param then: the :class:`AsyncImageModerator` with the platform's policy.
    :param first_policy: how *first*'s scores are judged (see :class:`~safegen.Cascade`).
    :param margin: how far (0-100) from a threshold a score must be to count as sure.
    :param observer: told about every final verdict, as is *then*'s observer.
    :raises ConfigurationError: a setting is refused; the message names it.
    """

    first: AsyncImageBackend = attrs.field(validator=_first)
    then: AsyncImageModerator = attrs.field(
        validator=_checks.instance_of(AsyncImageModerator, what="an AsyncImageModerator")
    )
    first_policy: ModerationPolicy | None = attrs.field(
        default=None,
        kw_only=True,
        validator=_checks.optional(_checks.instance_of(ModerationPolicy, what="a policy")),
    )
    observer: Observer | None = attrs.field(default=None, kw_only=True, validator=observer_setting)
    margin: float = attrs.field(default=10.0, kw_only=True, validator=[_checks.score, _derivable])
    _overrides: PolicyCache[AsyncCascade] = attrs.field(init=False, factory=PolicyCache, repr=False)

    @classmethod
    def from_sync(
        cls,
        cascade: Cascade,
        *,
        first: AsyncImageBackend | None = None,
        then: AsyncImageModerator | None = None,
    ) -> AsyncCascade:
        """Build the async twin of *cascade*; what is not given runs in worker threads.

        :raises ConfigurationError: *cascade* is not a :class:`~safegen.Cascade`.
        """
        if not isinstance(cascade, Cascade):
            raise ConfigurationError(f"cascade: expected a Cascade, got {_checks.kind(cascade)}")
        return cls(
            in_thread(cascade.first) if first is None else first,
            AsyncImageModerator.from_sync(cascade.then) if then is None else then,
            first_policy=cascade.first_policy,
            observer=cascade.observer,
            margin=cascade.margin,
        )

    @functools.cached_property
    def first_look(self) -> AsyncImageModerator:
        """The moderator that takes the first look, with *then*'s timeout.

        See :attr:`Cascade.first_look <safegen.Cascade.first_look>`.
        """
        look: AsyncImageModerator = self._first_look(AsyncImageModerator)
        return attrs.evolve(look, timeout=self.then.timeout)

    @property
    def _look(self) -> AsyncImageModerator:
        return self.first_look

    def _calibration_source(self) -> object:
        first: object = self.first
        return first.backend if isinstance(first, ThreadedImageBackend) else first

    async def moderate(
        self, image: ImageSource, *, policy: ModerationPolicy | None = None
    ) -> ImageVerdict:
        """Moderate one image; the verdict's ``backend`` says who decided.

        :raises ConfigurationError: *policy* is not a :class:`~safegen.ModerationPolicy`.
        """
        verdict = await self._check(_image_source(image), policy)
        tell(self._observers, "image_checked", verdict)
        return verdict

    async def moderate_many(
        self,
        images: Iterable[ImageSource],
        *,
        concurrency: int = 8,
        policy: ModerationPolicy | None = None,
    ) -> list[ImageVerdict]:
        """Moderate many images, at most *concurrency* at once; verdicts in order.

        :raises ConfigurationError: *concurrency* is not positive, or *policy* is not a
            :class:`~safegen.ModerationPolicy`.
        """
        verdicts = await self._check_many(images, concurrency=concurrency, policy=policy)
        for verdict in verdicts:
            tell(self._observers, "image_checked", verdict)
        return verdicts

    async def _check(self, image: ImageSource, policy: ModerationPolicy | None) -> ImageVerdict:
        cascade: AsyncCascade = self._for_policy(policy)
        verdict = await cascade.first_look._check(image, None)
        reason = cascade.escalation(verdict)
        if reason is None:
            return cascade._decided(verdict)
        return _escalated(await cascade.then._check(image, None), reason, verdict)

    async def _check_many(
        self,
        images: Iterable[ImageSource],
        *,
        concurrency: int = 8,
        policy: ModerationPolicy | None = None,
    ) -> list[ImageVerdict]:
        limit = _concurrency(concurrency)
        cascade: AsyncCascade = self._for_policy(policy)
        return await gather_bounded(
            _batch(images), functools.partial(cascade._check, policy=None), limit
        )
