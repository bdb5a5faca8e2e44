"""Image moderation: a backend reports labels, a policy judges them, the verdict says why.

An :class:`ImageModerator` sends an image to an :class:`~safegen.ports.ImageBackend`
(Amazon Rekognition, an offline model, a fake in tests), asking for nothing less confident
than its policy's :attr:`~safegen.ModerationPolicy.min_confidence`, and judges the report with
the policy. It fails closed: when the backend cannot answer, the verdict is ``BLOCK`` (or the
action you choose), never ``ALLOW``, unless you opted in with ``fail_open=True``.
"""

from __future__ import annotations

import collections
import functools
import inspect
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Generic, TypeVar, cast

import attrs

from safegen import _checks, _numbers
from safegen.decision import Action, PolicyDecision
from safegen.errors import (
    ConfigurationError,
    InvalidImageError,
    InvalidLabelError,
    ThrottledError,
)
from safegen.observe import Observer, notify
from safegen.policy import ModerationPolicy
from safegen.ports import ImageBackend
from safegen.preflight import Preflight
from safegen.reports import HumanLoop, ImageReport, ImageSource, S3Object, checked_image_report
from safegen.verdicts import ImageVerdict, error_text

__all__ = [
    "HumanLoop",
    "ImageModerator",
    "ImageReport",
    "ImageSource",
    "ImageVerdict",
    "S3Object",
]

_log = logging.getLogger(__name__)
_PACED_ATTEMPTS = 3  # turns a throttled request gets when moderate_many paces requests


def _policy(value: ModerationPolicy | None) -> ModerationPolicy:
    return ModerationPolicy() if value is None else value


def overriding_policy(value: object) -> ModerationPolicy | None:
    """Return a per-request policy override as given, or refuse what is not one.

    :raises ConfigurationError: *value* is neither ``None`` nor a
        :class:`~safegen.ModerationPolicy`; the message names ``policy``.
    """
    if value is None or isinstance(value, ModerationPolicy):
        return value
    raise ConfigurationError(f"policy: expected a ModerationPolicy, got {_checks.kind(value)}")


_M = TypeVar("_M")
# How many per-request policies a moderator keeps compiled: a service serves a few policies
# (one per tier, per tenant class), not one per request.
POLICY_CACHE_SIZE = 32


class PolicyCache(Generic[_M]):
    """What a service object compiled for per-request policies, by policy hash, bounded.

    The least recently used entry goes first when more than *size* are kept. Safe to use from
    several threads; two threads missing at once may both build, and the first kept wins.
    """

    def __init__(self, size: int = POLICY_CACHE_SIZE) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._entries: collections.OrderedDict[str, _M] = collections.OrderedDict()

    def get(self, policy: ModerationPolicy, build: Callable[[], _M]) -> _M:
        """Return what was built for *policy* (by its ``sha256``), building it if need be."""
        key = policy.sha256
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key]
        built = build()
        with self._lock:
            kept = self._entries.setdefault(key, built)
            self._entries.move_to_end(key)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)
            return kept

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)


def observers(*candidates: Observer | None) -> tuple[Observer, ...]:
    """Return the distinct observers among *candidates*, in order (one object is told once)."""
    seen: list[Observer] = []
    for candidate in candidates:
        if candidate is not None and all(candidate is not s for s in seen):
            seen.append(candidate)
    return tuple(seen)


def tell(targets: Iterable[Observer], event: str, value: object) -> None:
    """Tell each observer in *targets* about *value*; their failures are contained."""
    for target in targets:
        notify(target, event, value)


def _sync_port(protocol: type, what: str, method: str) -> _checks.Validator:
    """Refuse what does not satisfy *protocol*, or whose *method* is a coroutine function."""
    check = _checks.port(protocol, what)

    def refuse_async(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        check(instance, attribute, value)
        if inspect.iscoroutinefunction(getattr(value, method, None)):
            raise _checks.refuse(
                attribute,
                f"its {method} is a coroutine function: use it with safegen.aio's async moderators",
            )

    return refuse_async


_backend = _sync_port(ImageBackend, "an image backend (name and detect)", "detect")
observer_setting = _checks.optional(_checks.instance_of(Observer, what="an Observer"))


def _ask_for(instance: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None:
        return
    _checks.score(instance, attribute, value)
    floor = instance.policy.min_confidence
    if isinstance(value, int | float) and value > floor:
        raise _checks.refuse(
            attribute,
            f"{value:g} is above the policy's {floor:g}: the backend would leave out labels "
            "the policy needs",
        )


ask_for = _ask_for


class ImageJudging:
    """What the sync and async image moderators share: everything but the backend's call.

    A shell (:class:`ImageModerator`, :class:`safegen.aio.AsyncImageModerator`) checks the
    image with :meth:`_prepare`, asks its backend for :meth:`_floor`, and turns the answer, or
    the exception the call raised, into a verdict with :meth:`_conclude`: the same verdict,
    failures included, whichever shell asked.
    """

    __slots__ = ()
    policy: ModerationPolicy
    fail_open: bool
    on_failure: Action
    preflight: Preflight | None
    min_confidence: float | None
    observer: Observer | None
    _overrides: PolicyCache[Any]

    @property
    def _backend_name(self) -> str:
        name: str = getattr(self, "backend").name  # noqa: B009 (each shell types its backend)
        return name

    def judge(self, report: ImageReport) -> PolicyDecision:
        """Return the policy's decision on *report*, and on each of its parts: the strictest.

        A report that combines several looks (the ``parts`` of an
        :class:`~safegen.ImageReport`) is judged as a whole and look by look, so no look's
        labels are softened by another's content types or labels. Every look is judged with
        the whole's coverage: what one look cannot see but another did is evaluated, not
        blind. Ties go to the whole, which explains the most.

        :raises SafegenError: the policy cannot read the report (e.g. coverage naming no
            category).
        """
        if not isinstance(report, ImageReport):
            raise InvalidLabelError(f"report: expected an ImageReport, got {type(report).__name__}")
        return self._judge(report, report.coverage)

    def _judge(self, report: ImageReport, coverage: tuple[str, ...] | None) -> PolicyDecision:
        decision = self.policy.evaluate(report.labels, report.content_types, coverage=coverage)
        for part in report.parts:
            other = self._judge(part, coverage)
            if other.action.severity > decision.action.severity:
                decision = other
        return decision

    def _for_policy(self, policy: object) -> Any:
        """Return this moderator judging by *policy* (itself for ``None``), built once per hash.

        The copy asks the backend down to the override's ``min_confidence`` (or this
        moderator's own lower floor), so no label the override needs is left out.
        """
        override = overriding_policy(policy)
        if override is None:
            return self
        return self._overrides.get(override, lambda: self._with_policy(override))

    def _with_policy(self, policy: ModerationPolicy) -> Any:
        floor = self.min_confidence
        if floor is not None:
            floor = min(floor, policy.min_confidence)
        return attrs.evolve(cast("Any", self), policy=policy, min_confidence=floor, observer=None)

    def _floor(self) -> float:
        return self.policy.min_confidence if self.min_confidence is None else self.min_confidence

    def _stamped(self, verdict: ImageVerdict) -> ImageVerdict:
        return attrs.evolve(
            verdict, policy_sha256=self.policy.sha256, policy_version=self.policy.version
        )

    def _prepare(
        self, image: ImageSource, start: float
    ) -> tuple[ImageSource, tuple[str, ...]] | ImageVerdict:
        """Return the image to send and its repairs, or the verdict on one preflight refuses."""
        if self.preflight is None or isinstance(image, S3Object):
            return image, ()
        try:
            prepared = self.preflight.check(image)
        except InvalidImageError as error:
            return self._stamped(
                ImageVerdict(
                    self.on_failure,
                    error=f"preflight ({error.limit}): {error}",
                    seconds=time.perf_counter() - start,
                    backend=self._backend_name,
                )
            )
        return prepared.data, prepared.repairs

    def _conclude(self, answer: object, repairs: tuple[str, ...], start: float) -> ImageVerdict:
        """Judge the backend's *answer*; an exception it raised (or a bad answer) fails closed."""
        name = self._backend_name
        try:
            if isinstance(answer, BaseException):
                raise answer
            report = checked_image_report(answer, name)
            # A report the policy cannot read (coverage naming no category) is the
            # backend's failure too.
            decision = self.judge(report)
        except Exception as error:
            code = getattr(error, "code", type(error).__name__)
            _log.warning("image backend %s failed (%s)", name, code)
            reason = error_text(error)
            return self._stamped(
                ImageVerdict(
                    Action.ALLOW if self.fail_open else self.on_failure,
                    error=f"{name}: {reason}",
                    fail_open=self.fail_open,
                    seconds=time.perf_counter() - start,
                    repairs=repairs,
                    backend=name,
                )
            )
        return self._stamped(
            ImageVerdict(
                decision.action,
                decision,
                report,
                seconds=time.perf_counter() - start,
                repairs=repairs,
                backend=name,
            )
        )

    @property
    def _observers(self) -> tuple[Observer, ...]:
        return observers(self.observer)


@attrs.frozen(eq=False)
class ImageModerator(ImageJudging):
    """Moderate images with a backend, judged by a policy.

    Frozen: a moderator's settings are checked when it is built and cannot be changed
    afterwards; ``attrs.evolve`` makes a changed copy, checked again.

    :param backend: what looks at the images, e.g. :class:`safegen.aws.RekognitionModerator`.
    :param policy: what "unsafe" means; Rekognition's defaults if not given.
    :param fail_open: count a backend failure as ``ALLOW``. Off by default: moderation fails
        closed.
    :param on_failure: the action when the backend fails (and not ``fail_open``): ``BLOCK``
        by default, or ``REVIEW``.
    :param preflight: check (and, if it allows, repair) image bytes against the backend's
        limits before sending them. An image that fails preflight gets *on_failure*, even
        with ``fail_open``: an unreadable image is not a backend outage.
    :param min_confidence: ask the backend for labels down to this confidence (0-100)
        instead of the policy's :attr:`~safegen.ModerationPolicy.min_confidence`, to see
        near misses too (a :class:`~safegen.Cascade`'s first look does). Never above the
        policy's: the backend would leave out labels the policy needs.
    :param observer: told about every verdict (:mod:`safegen.observe`); its failures never
        change one.
    :raises ConfigurationError: a setting is refused (``on_failure`` is ``ALLOW``, a backend
        without ``detect``, ...); the message names it.

    >>> from safegen import ModerationLabel
    >>> from safegen.testing import FakeImageBackend
    >>> backend = FakeImageBackend(labels=[ModerationLabel("Weapons", 91.0, parent="Violence")])
    >>> ImageModerator(backend).moderate(b"...image bytes...").action
    <Action.BLOCK: 'block'>
    """

    backend: ImageBackend = attrs.field(validator=_backend)
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
    min_confidence: float | None = attrs.field(default=None, kw_only=True, validator=_ask_for)
    observer: Observer | None = attrs.field(default=None, kw_only=True, validator=observer_setting)
    _overrides: PolicyCache[ImageModerator] = attrs.field(
        init=False, factory=PolicyCache, repr=False
    )

    def moderate(
        self, image: ImageSource, *, policy: ModerationPolicy | None = None
    ) -> ImageVerdict:
        """Moderate one image; a bad image or a failed backend is in the verdict, not raised.

        :param policy: judge this image by *policy* instead of the moderator's (a stricter
            policy for one account, say); the backend is asked down to its
            ``min_confidence``. The verdict records which policy judged it.
        :raises TypeError: *image* is not an image at all: not bytes (``bytes``,
            ``bytearray``, ``memoryview``) nor an :class:`S3Object`. A file name (``str`` or
            a path) is not read: pass ``Path(name).read_bytes()``. The error is also an
            :class:`~safegen.InvalidImageError` (``limit="type"``), and nothing is sent.
        :raises ConfigurationError: *policy* is not a :class:`~safegen.ModerationPolicy`.
        """
        verdict = self._check(_image_source(image), policy)
        tell(self._observers, "image_checked", verdict)
        return verdict

    def _check(
        self, image: ImageSource, policy: ModerationPolicy | None, pace: _Pacer | None = None
    ) -> ImageVerdict:
        """Moderate an image already known to be one, telling no observer."""
        moderator: ImageModerator = self._for_policy(policy)
        return moderator._moderate(image, pace)

    def _moderate(self, image: ImageSource, pace: _Pacer | None) -> ImageVerdict:
        start = time.perf_counter()
        prepared = self._prepare(image, start)
        if isinstance(prepared, ImageVerdict):
            return prepared
        data, repairs = prepared
        try:
            answer: object = self._detect(data, pace)
        except Exception as error:
            answer = error
        return self._conclude(answer, repairs, start)

    def _detect(self, image: ImageSource, pace: _Pacer | None) -> ImageReport:
        floor = self._floor()
        if pace is None:
            return self.backend.detect(image, min_confidence=floor)
        for attempt in range(_PACED_ATTEMPTS):
            pace.wait()
            try:
                return self.backend.detect(image, min_confidence=floor)
            except ThrottledError:
                # Throttled despite pacing (a burst elsewhere, jitter): wait a turn again
                # rather than retrying out of turn against a saturated quota.
                if attempt == _PACED_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def moderate_many(
        self,
        images: Iterable[ImageSource],
        *,
        max_workers: int = 8,
        per_second: float | None = None,
        policy: ModerationPolicy | None = None,
    ) -> list[ImageVerdict]:
        """Moderate many images in parallel, at most *max_workers* at a time.

        The verdicts come back in the order of *images*; a failure stays in its own verdict
        and does not affect the others.

        :param per_second: start at most this many requests a second, evenly spaced: set it
            to the backend's quota (Rekognition's TPS) and requests are not throttled in
            the first place, instead of being retried after they are. A request throttled
            anyway waits its turn again, up to 3 times in all; give the backend a client
            with botocore's retries off (``total_max_attempts=1``) so that every attempt
            waits its turn and none steals the quota out of turn.
        :param policy: judge every image by *policy* instead (see :meth:`moderate`).
        :raises ConfigurationError: *max_workers* is not a whole number of at least 1, or
            *per_second* is not a finite number of at least one request a day, or *policy*
            is not a :class:`~safegen.ModerationPolicy`.
        :raises InvalidImageError: *images* is not a collection of images (``limit="type"``);
            one image (bytes, a string, an :class:`S3Object`) goes to :meth:`moderate`. A bad
            image is not raised: it fails closed in its own verdict, as with :meth:`moderate`.
        :raises TypeError: an item is not an image at all (a file name, say), as with
            :meth:`moderate`; raised before any image is sent.
        """
        verdicts = self._check_many(
            images, max_workers=max_workers, per_second=per_second, policy=policy
        )
        for verdict in verdicts:
            tell(self._observers, "image_checked", verdict)
        return verdicts

    def _check_many(
        self,
        images: Iterable[ImageSource],
        *,
        max_workers: int = 8,
        per_second: float | None = None,
        policy: ModerationPolicy | None = None,
    ) -> list[ImageVerdict]:
        _check_workers(max_workers, per_second)
        moderator: ImageModerator = self._for_policy(policy)
        batch = _batch(images)
        pace = None if per_second is None else _Pacer(per_second)
        moderate = functools.partial(moderator._moderate, pace=pace)

        if len(batch) <= 1 or max_workers == 1:
            return [moderate(image) for image in batch]
        workers = min(max_workers, len(batch))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="safegen-image") as pool:
            return list(pool.map(moderate, batch))


def _batch(images: object) -> Sequence[ImageSource]:
    """Return a batch of images as a list; one image, or no collection at all, is refused.

    :raises InvalidImageError: ``limit="type"``, naming *images*.
    """
    if isinstance(images, str | bytes | bytearray | memoryview | S3Object) or not isinstance(
        images, Iterable
    ):
        raise InvalidImageError(
            f"images: expected a collection of images, got {type(images).__name__}"
            " (moderate() takes one)",
            limit="type",
        )
    return [_image_source(image, f"images[{index}]") for index, image in enumerate(images)]


class _NotAnImageError(InvalidImageError, TypeError):
    """A value that is not an image at all, given where an image goes: a caller's mistake."""


def _image_source(image: object, where: str = "image") -> ImageSource:
    """Return *image* if it is one a backend takes (bytes or an :class:`S3Object`).

    A value of any other type is a programming mistake, not an image that failed: it is
    raised, not turned into a BLOCK whose reason hides in ``verdict.error``.

    :raises TypeError: also an :class:`~safegen.InvalidImageError` (``limit="type"``); the
        message says what to pass instead (a file name is not read: pass its bytes).
    """
    if isinstance(image, bytes | bytearray | memoryview | S3Object):
        return cast("ImageSource", image)  # bytes-like: taken as bytes by every backend
    if isinstance(image, str | os.PathLike):
        hint = "a file name is not read: pass the file's bytes, e.g. Path(name).read_bytes()"
    elif type(image).__module__.startswith("PIL."):
        hint = "a PIL image: save it to bytes first (image.save(buffer, 'PNG'))"
    else:
        hint = "pass the image's bytes or an S3Object"
    raise _NotAnImageError(
        f"{where}: expected image bytes or an S3Object, got {type(image).__name__}; {hint}",
        limit="type",
    )


_SLOWEST_RATE = 1 / 86_400  # one request a day: anything slower is a hang, not a quota


def _check_workers(max_workers: object, per_second: object = None) -> None:
    """Refuse a *max_workers* below 1 or a *per_second* below one a day (or not a number).

    :raises ConfigurationError: naming the setting.
    """
    if isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1:
        raise ConfigurationError(
            f"max_workers: must be positive, got {_checks.number(max_workers)}"
        )
    rate = _numbers.finite(per_second)
    if per_second is not None and (rate is None or rate < _SLOWEST_RATE):
        raise ConfigurationError(f"per_second: must be positive, got {_checks.number(per_second)}")


class _Pacer:
    """Space out calls from many threads: at most *per_second* starts a second, evenly."""

    def __init__(self, per_second: float) -> None:
        self._interval = 1.0 / per_second
        self._next = time.monotonic()
        self._lock = threading.Lock()

    def wait(self) -> None:
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self._interval
        if start > now:
            time.sleep(start - now)
