"""Several offline backends as one: each looks, and the report holds what any of them saw."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from safegen.errors import PolicyError
from safegen.image import ImageReport, ImageSource
from safegen.local.calibration import CalibratedBackend
from safegen.policy import Thresholds

__all__ = ["Ensemble"]


class Ensemble:
    """Run several backends on each image and report everything they found.

    The policy judges each category on its most confident report, so the most alarmed
    backend wins; the coverage is the union of theirs. A backend that fails fails the
    whole ensemble (and the moderator fails closed).

    :param backends: the backends, e.g. ``[OpenNSFW(), NudeNet()]``.
    :raises PolicyError: *backends* is empty or two of them calibrated the same label.
    """

    def __init__(self, backends: Sequence[CalibratedBackend]) -> None:
        if not backends:
            raise PolicyError("Ensemble: give at least one backend")
        self.backends = tuple(backends)
        thresholds: dict[str, Thresholds] = {}
        for backend in self.backends:
            for name, value in backend.thresholds.items():
                if name in thresholds:
                    raise PolicyError(f"Ensemble: two backends calibrate {name!r}")
                thresholds[name] = value
        self._thresholds = thresholds

    @property
    def name(self) -> str:
        """The backends' names joined with ``+``, e.g. ``"opennsfw+nudenet"``."""
        return "+".join(backend.name for backend in self.backends)

    @property
    def thresholds(self) -> Mapping[str, Thresholds]:
        """Every backend's calibrated thresholds."""
        return self._thresholds

    def detect(self, image: ImageSource, *, min_confidence: float) -> ImageReport:
        """Ask every backend, in order; merge their labels, coverage and warnings."""
        reports = [b.detect(image, min_confidence=min_confidence) for b in self.backends]
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
        )
