"""Several offline backends as one: each looks, and no look is lost in the combining."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from safegen import _checks
from safegen.local.calibration import CalibratedBackend
from safegen.policy import Thresholds
from safegen.reports import ImageReport, ImageSource, checked_image_report

__all__ = ["Ensemble"]


def _backend_tuple(value: Iterable[CalibratedBackend]) -> tuple[CalibratedBackend, ...]:
    return _checks.to_tuple(value, "backends")


def _backends(instance: object, attribute: attrs.Attribute[Any], value: tuple[object, ...]) -> None:
    if not value:
        raise _checks.refuse(attribute, "give at least one backend")
    calibrated: set[str] = set()
    for backend in value:
        if not isinstance(backend, CalibratedBackend):
            raise _checks.refuse(
                attribute,
                "expected calibrated backends (name, detect and thresholds), got "
                + _checks.kind(backend),
            )
        for name in backend.thresholds:
            if name in calibrated:
                raise _checks.refuse(attribute, f"two backends calibrate {name!r}")
            calibrated.add(name)


@attrs.frozen(eq=False)
class Ensemble:
    """Run several backends on each image, as one backend.

    Its report holds what every backend found (labels, content types, warnings) and sees
    what any of them sees (the union of their coverage); it also keeps each backend's own
    report as one of its ``parts`` (see :class:`~safegen.ImageReport`). A moderator judges the whole
    *and* each part, and the strictest decision wins, so the ensemble is never less strict
    than its strictest member: one backend's content type cannot exempt another's labels,
    one backend's label cannot explain away another's. What one backend cannot see but
    another can is judged by the one that sees it: each part is judged with the ensemble's
    coverage, so adding a member never adds a blind spot. A backend that fails, or
    answers with something that is not a report, fails the whole ensemble (and the
    moderator fails closed).

    Frozen: ``attrs.evolve`` makes a changed copy, checked again.

    :param backends: the backends, e.g. ``[OpenNSFW(), NudeNet()]``.
    :raises ConfigurationError: *backends* is empty, holds something that is not a
        calibrated backend, or two of them calibrated the same label.
    """

    backends: tuple[CalibratedBackend, ...] = attrs.field(
        converter=_backend_tuple, validator=_backends
    )

    @property
    def name(self) -> str:
        """The backends' names joined with ``+``, e.g. ``"opennsfw+nudenet"``."""
        return "+".join(backend.name for backend in self.backends)

    @property
    def thresholds(self) -> Mapping[str, Thresholds]:
        """Every backend's calibrated thresholds."""
        return {name: t for backend in self.backends for name, t in backend.thresholds.items()}

    def detect(self, image: ImageSource, *, min_confidence: float) -> ImageReport:
        """Ask every backend, in order; combine their reports, keeping each as a part.

        :raises MalformedResponseError: a backend answered with something that is not an
            :class:`~safegen.ImageReport`.
        """
        reports = []
        for backend in self.backends:
            report = backend.detect(image, min_confidence=min_confidence)
            reports.append(checked_image_report(report, backend.name))
        coverage: tuple[str, ...] | None = ()
        for report in reports:
            if report.coverage is None or coverage is None:
                coverage = None
            else:
                coverage = (*coverage, *report.coverage)
        return ImageReport(
            labels=tuple(label for report in reports for label in report.labels),
            content_types=tuple(c for report in reports for c in report.content_types),
            model_version=" + ".join(r.model_version for r in reports if r.model_version),
            warnings=tuple(w for report in reports for w in report.warnings),
            coverage=coverage,
            parts=tuple(reports),
        )
