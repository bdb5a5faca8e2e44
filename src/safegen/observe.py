"""Making moderation visible: a small hook interface the moderators and the Pipeline call.

An :class:`Observer` is told about every finished verdict. Verdicts already carry their timings,
so an observer can turn them into spans or metrics without the application writing code. It
is told *what was decided*, never the prompt or the image: a verdict's JSON form holds neither.

Observers are off by default. A failing observer never changes a verdict: :func:`notify`
logs the failure (its type only) and moderation goes on.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from safegen.image import ImageVerdict
    from safegen.pipeline import PipelineResult
    from safegen.prompt import PromptVerdict

__all__ = ["Observer", "notify"]

_log = logging.getLogger(__name__)


@runtime_checkable
class Observer(Protocol):
    """Told about each finished verdict; methods it does not care about may do nothing."""

    def prompt_checked(self, verdict: PromptVerdict) -> None:
        """Receive a judged prompt's verdict."""
        ...

    def image_checked(self, verdict: ImageVerdict) -> None:
        """Receive a judged image's verdict."""
        ...

    def pipeline_ran(self, result: PipelineResult) -> None:
        """Receive a finished Pipeline run (its prompt and image verdicts came before)."""
        ...


def notify(observer: Observer | None, event: str, value: object) -> None:
    """Call ``observer.<event>(value)``; an observer's failure is logged, never raised.

    A hook that breaks must not change what moderation decided or hide the verdict from the
    caller, so its exception stops here. The log names the observer's type and the exception's
    type only: an exception message may quote content.
    """
    if observer is None:
        return
    try:
        getattr(observer, event)(value)
    except Exception as e:  # any observer failure is contained, by design
        _log.warning(
            "observer %s failed in %s (%s); the verdict stands",
            type(observer).__name__,
            event,
            type(e).__name__,
        )
