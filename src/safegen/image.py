"""Image moderation: a backend reports labels, a policy judges them, the verdict says why.

An :class:`ImageModerator` sends an image to an :class:`~safegen.ports.ImageBackend`
(Amazon Rekognition, an offline model, a fake in tests), asking for nothing less confident
than its policy's :attr:`~safegen.ModerationPolicy.min_confidence`, and judges the report with
the policy. It fails closed: when the backend cannot answer, the verdict is ``BLOCK`` (or the
action you choose), never ``ALLOW``, unless you opted in with ``fail_open=True``.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeAlias

import attrs

from safegen.decision import Action, PolicyDecision
from safegen.errors import InvalidImageError, PolicyError, ThrottledError
from safegen.labels import ContentType, ModerationLabel
from safegen.policy import ModerationPolicy
from safegen.ports import ImageBackend
from safegen.preflight import Preflight

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


@attrs.frozen
class S3Object:
    """An image stored in Amazon S3, to be read by the service where it is.

    :param bucket: the bucket's name.
    :param key: the object's key.
    :param version: the object version, if the bucket is versioned.
    """

    bucket: str
    key: str
    version: str | None = None


#: What can be moderated: the image's bytes, or where it lies in S3.
ImageSource: TypeAlias = "bytes | S3Object"


@attrs.frozen
class HumanLoop:
    """A human review that a backend started (Amazon Augmented AI, for Rekognition).

    :param arn: the human loop's ARN.
    :param reasons: why it was started, as the service says.
    :param conditions: the service's evaluation of the activation conditions (JSON text).
    """

    arn: str | None
    reasons: tuple[str, ...] = ()
    conditions: str | None = None


@attrs.frozen
class ImageReport:
    """What an image backend reported for one image.

    :param labels: the moderation labels it found.
    :param content_types: the content types (``Animated``, ``Illustrated``) it found.
    :param model_version: the backend's model version, e.g. ``"7.0"``.
    :param adapter_version: the custom adapter that answered, if any.
    :param human_loop: the human review started, if any.
    :param warnings: what the caller should know (an expired adapter, an unknown model).
    :param coverage: the taxonomy categories (names or paths, each with its subtree) the
        backend evaluates, when that is not the whole taxonomy: an offline model sees a few.
        What a policy moderates outside them is *not evaluated*, never safe. ``None`` means
        the backend sees the whole taxonomy, as Rekognition does.
    """

    labels: tuple[ModerationLabel, ...] = ()
    content_types: tuple[ContentType, ...] = ()
    model_version: str | None = None
    adapter_version: str | None = None
    human_loop: HumanLoop | None = None
    warnings: tuple[str, ...] = ()
    coverage: tuple[str, ...] | None = None


@attrs.frozen
class ImageVerdict:
    """What image moderation decided about one image, and everything it is based on.

    :param action: ``ALLOW``, ``REVIEW`` or ``BLOCK``.
    :param decision: the policy's decision with its reasons; ``None`` when the backend failed.
    :param report: what the backend reported; ``None`` when it failed.
    :param error: why the backend failed, with the service's error code when there is one.
    :param fail_open: whether a failure was configured to count as safe.
    :param seconds: how long moderation took.
    :param repairs: what preflight did to the image before sending it.
    :param backend: the name of the backend whose answer (or failure) was judged.
    :param escalation: when a :class:`~safegen.Cascade` asked its second moderator, why.
    """

    action: Action
    decision: PolicyDecision | None = None
    report: ImageReport | None = None
    error: str | None = None
    fail_open: bool = False
    seconds: float = 0.0
    repairs: tuple[str, ...] = ()
    backend: str | None = None
    escalation: str | None = None

    @property
    def failed(self) -> bool:
        """Whether the backend could not answer."""
        return self.error is not None

    @property
    def warnings(self) -> tuple[str, ...]:
        """What the backend said the caller should know."""
        return () if self.report is None else self.report.warnings

    def to_dict(self) -> dict[str, Any]:
        """Return the verdict as plain JSON-ready data (no image bytes)."""
        report = self.report
        return {
            "action": self.action.value,
            "decision": None if self.decision is None else self.decision.to_dict(),
            "model_version": None if report is None else report.model_version,
            "adapter_version": None if report is None else report.adapter_version,
            "human_loop": None
            if report is None or report.human_loop is None
            else attrs.asdict(report.human_loop),
            "warnings": list(self.warnings),
            "error": self.error,
            "fail_open": self.fail_open,
            "seconds": self.seconds,
            "repairs": list(self.repairs),
            "backend": self.backend,
            "escalation": self.escalation,
            "coverage": None
            if report is None or report.coverage is None
            else list(report.coverage),
        }


class ImageModerator:
    """Moderate images with a backend, judged by a policy.

    :param backend: what looks at the images, e.g. :class:`safegen.aws.RekognitionModerator`.
    :param policy: what "unsafe" means; Rekognition's defaults if not given.
    :param fail_open: count a backend failure as ``ALLOW``. Off by default: moderation fails
        closed.
    :param on_failure: the action when the backend fails (and not ``fail_open``): ``BLOCK``
        by default, or ``REVIEW``.
    :param preflight: check (and, if it allows, repair) image bytes against the backend's
        limits before sending them. An image that fails preflight gets *on_failure*, even
        with ``fail_open``: an unreadable image is not a backend outage.
    :raises PolicyError: ``on_failure`` is ``ALLOW``.

    >>> from safegen.testing import FakeImageBackend
    >>> backend = FakeImageBackend(labels=[ModerationLabel("Weapons", 91.0, parent="Violence")])
    >>> ImageModerator(backend).moderate(b"...image bytes...").action
    <Action.BLOCK: 'block'>
    """

    def __init__(
        self,
        backend: ImageBackend,
        policy: ModerationPolicy | None = None,
        *,
        fail_open: bool = False,
        on_failure: Action = Action.BLOCK,
        preflight: Preflight | None = None,
    ) -> None:
        if on_failure is Action.ALLOW:
            raise PolicyError("on_failure: ALLOW would fail open; say fail_open=True instead")
        self.backend = backend
        self.policy = policy if policy is not None else ModerationPolicy()
        self.fail_open = fail_open
        self.on_failure = on_failure
        self.preflight = preflight

    def moderate(self, image: ImageSource) -> ImageVerdict:
        """Moderate one image; a bad image or a failed backend is in the verdict, not raised."""
        return self._moderate(image, None)

    def _moderate(self, image: ImageSource, pace: _Pacer | None) -> ImageVerdict:
        start = time.perf_counter()
        repairs: tuple[str, ...] = ()
        if self.preflight is not None and not isinstance(image, S3Object):
            try:
                prepared = self.preflight.check(image)
            except InvalidImageError as error:
                return ImageVerdict(
                    self.on_failure,
                    error=f"preflight ({error.limit}): {error}",
                    seconds=time.perf_counter() - start,
                    backend=self.backend.name,
                )
            image, repairs = prepared.data, prepared.repairs
        try:
            report = self._detect(image, pace)
            # A report the policy cannot read (a label that is not a label, coverage naming
            # no category) is the backend's failure too.
            decision = self.policy.evaluate(
                report.labels, report.content_types, coverage=report.coverage
            )
        except Exception as error:
            code = getattr(error, "code", type(error).__name__)
            _log.warning("image backend %s failed (%s)", self.backend.name, code)
            return ImageVerdict(
                Action.ALLOW if self.fail_open else self.on_failure,
                error=f"{self.backend.name}: {error}",
                fail_open=self.fail_open,
                seconds=time.perf_counter() - start,
                repairs=repairs,
                backend=self.backend.name,
            )
        return ImageVerdict(
            decision.action,
            decision,
            report,
            seconds=time.perf_counter() - start,
            repairs=repairs,
            backend=self.backend.name,
        )

    def _detect(self, image: ImageSource, pace: _Pacer | None) -> ImageReport:
        if pace is None:
            return self.backend.detect(image, min_confidence=self.policy.min_confidence)
        for attempt in range(_PACED_ATTEMPTS):
            pace.wait()
            try:
                return self.backend.detect(image, min_confidence=self.policy.min_confidence)
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
        :raises PolicyError: *max_workers* or *per_second* is not positive.
        """
        if max_workers < 1:
            raise PolicyError(f"max_workers: must be positive, got {max_workers}")
        if per_second is not None and per_second <= 0:
            raise PolicyError(f"per_second: must be positive, got {per_second}")
        batch: Sequence[ImageSource] = list(images)
        pace = None if per_second is None else _Pacer(per_second)
        moderate = functools.partial(self._moderate, pace=pace)

        if len(batch) <= 1 or max_workers == 1:
            return [moderate(image) for image in batch]
        workers = min(max_workers, len(batch))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="safegen-image") as pool:
            return list(pool.map(moderate, batch))


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
