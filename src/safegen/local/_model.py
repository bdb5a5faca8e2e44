"""An offline model's file, found in its package and nowhere else; its answers, checked."""

from __future__ import annotations

import importlib.metadata
import importlib.resources
import os
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from safegen.errors import LocalModelError


def bundled_file(package: str, filename: str, *, extra: str) -> str:
    """Return the path of *filename* shipped inside *package*.

    :raises LocalModelError: the package is not installed, or the file is not in it. The
        packages would fall back to a download; safegen fails closed instead.
    """
    try:
        path = importlib.resources.files(package).joinpath(filename)
    except ModuleNotFoundError:
        raise LocalModelError(
            f"the {package} package is not installed: pip install 'safegen[{extra}]'"
        ) from None
    if not path.is_file():
        raise LocalModelError(
            f"{package} is installed without its model {filename}; reinstall it with "
            f"pip install --force-reinstall 'safegen[{extra}]' (safegen never downloads models)"
        )
    return os.fspath(str(path))


def version(distribution: str) -> str:
    """Return an installed distribution's version, for the report's model version."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - imported, so installed
        return "unknown"


Check = Callable[[Sequence[Any]], None]


@attrs.frozen
class CheckedSession:
    """An onnxruntime session whose every answer is checked before anyone reads it.

    A model that fails to run, or answers with anything but the finite numbers of the shape
    its *check* expects, is a :class:`~safegen.LocalModelError`: never an empty, safe answer.
    """

    session: Any
    check: Check
    model: str

    def get_inputs(self) -> Any:
        """Return the wrapped session's inputs."""
        return self.session.get_inputs()

    def get_outputs(self) -> Any:
        """Return the wrapped session's outputs."""
        return self.session.get_outputs()

    def run(self, output_names: Any, feeds: Any, run_options: Any = None) -> Any:
        """Run the model and check its outputs.

        :raises LocalModelError: the model failed, or its answer is malformed.
        """
        try:
            outputs = self.session.run(output_names, feeds, run_options)
        except Exception as error:  # onnxruntime raises its own types; all mean "failed"
            raise LocalModelError(f"{self.model} failed: {error}") from None
        if not isinstance(outputs, list | tuple) or not outputs:
            raise LocalModelError(f"{self.model} answered no output")
        self.check(outputs)
        return outputs


def finite(output: Any, *, model: str, shape: tuple[int | None, ...]) -> Any:
    """Return *output* as an array of finite numbers of *shape* (``None``: any non-zero size).

    :raises LocalModelError: not numbers, an empty or other shape, NaN or infinite values.
    """
    import numpy as np

    try:
        array = np.asarray(output)
    except Exception as error:  # an object numpy cannot hold
        raise LocalModelError(f"{model} answered something that is not an array: {error}") from None
    if array.dtype.kind not in "fiu":
        raise LocalModelError(f"{model} answered {array.dtype} values, not numbers")
    if (
        array.ndim != len(shape)
        or array.size == 0
        or any(w is not None and w != got for w, got in zip(shape, array.shape, strict=True))
    ):
        raise LocalModelError(f"{model} answered an array of shape {array.shape}, not {shape}")
    if not np.isfinite(array).all():
        raise LocalModelError(f"{model} answered a value that is not a finite number")
    return array


def probabilities(array: Any, *, model: str) -> None:
    """Refuse scores outside 0-1.

    :raises LocalModelError: a score below 0 or above 1.
    """
    if (array < 0).any() or (array > 1).any():
        raise LocalModelError(f"{model} answered a score outside 0-1")
