"""Finding an offline model's file inside its installed package, and never anywhere else."""

from __future__ import annotations

import importlib.metadata
import importlib.resources
import os

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
