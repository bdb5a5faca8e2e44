"""What the async shells share: checked async ports, per-call timeouts, bounded concurrency."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeVar

import attrs

from safegen import _checks, _numbers
from safegen.errors import ConfigurationError, ServiceUnavailableError

_T = TypeVar("_T")
_R = TypeVar("_R")

#: Seconds a moderation call may take before it counts as failed (fail closed).
DEFAULT_TIMEOUT = 60.0
#: Seconds a generation may take before it counts as failed.
DEFAULT_GENERATE_TIMEOUT = 300.0


def async_port(protocol: type, what: str, method: str) -> _checks.Validator:
    """Refuse what does not satisfy *protocol* or whose *method* is not a coroutine function.

    A sync backend satisfies the async Protocols' shape too (the same names); it would hand
    the moderator a report where an awaitable is due, so it is refused, with the fix.
    """
    check = _checks.port(protocol, what)

    def validate(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        check(instance, attribute, value)
        if not inspect.iscoroutinefunction(getattr(value, method, None)):
            raise _checks.refuse(
                attribute,
                f"expected {what}, got {_checks.kind(value)} whose {method} is not a coroutine "
                "function (wrap it with safegen.aio.in_thread)",
            )

    return validate


def timeout_setting(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """Refuse a timeout that is not ``None`` or a positive finite number of seconds."""
    if value is None:
        return
    seconds = _numbers.finite(value)
    if seconds is None or seconds <= 0:
        raise _checks.refuse(
            attribute, f"must be a positive number of seconds or None, got {_checks.number(value)}"
        )


def concurrency(value: object) -> int:
    """Check how many calls may be in flight at once.

    :raises ConfigurationError: not a whole number of at least 1.
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(f"concurrency: must be positive, got {_checks.number(value)}")
    return value


async def answer(
    call: Callable[[], Awaitable[object]], timeout: float | None, name: str, operation: str
) -> object:
    """Await *call*; return its answer, or the exception it raised (a timeout included).

    Only the call's failures are returned: a cancellation of the caller propagates, so a
    cancelled run stops here and leaves nothing running.
    """
    try:
        async with asyncio.timeout(timeout) as scope:
            return await call()
    except TimeoutError as error:
        if scope.expired():
            return ServiceUnavailableError(
                f"no answer within {timeout:g} s",
                service=name,
                operation=operation,
                code="Timeout",
            )
        return error
    except Exception as error:  # judged by the shared core: fails closed there
        return error


async def gather_bounded(
    items: Sequence[_T], work: Callable[[_T], Awaitable[_R]], limit: int
) -> list[_R]:
    """Run *work* on every item, at most *limit* at once, in a task group; results in order.

    A failure or a cancellation cancels the rest and waits for them: no task outlives this.
    """
    if len(items) <= 1:
        return [await work(item) for item in items]
    gate = asyncio.Semaphore(limit)

    async def bounded(item: _T) -> _R:
        async with gate:
            return await work(item)

    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(bounded(item)) for item in items]
    return [task.result() for task in tasks]


def listed(values: Iterable[_T]) -> list[_T]:
    """Return *values* as a list."""
    return list(values)
