"""Telling others that an image's status changed: a callback adapter and a fan-out.

A :class:`~safegen.review.events.Notifier` is any callable taking a
:class:`~safegen.review.events.StatusChange`. :class:`Callback` adapts a plain function (and
can listen for some statuses only); :class:`FanOut` delivers one change to several notifiers,
every one of them even when some fail, and says which failed. The SNS and EventBridge
publishers are in :mod:`safegen.aws.publish`; their messages are :func:`change_message`:
the change only (key, statuses, actor, reason, time), never the image.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

import attrs

from safegen.errors import SafegenError
from safegen.review.events import AssetStatus, Notifier, StatusChange

__all__ = ["Callback", "Delivery", "FanOut", "NotificationError", "change_message"]

_log = logging.getLogger(__name__)


def change_message(change: StatusChange) -> dict[str, Any]:
    """Return *change* as the plain JSON-ready data every publisher sends.

    ``{"key", "before", "after", "actor", "reason", "at"}``; statuses are their values
    (``"approved"``), ``before`` is ``None`` for a new upload.
    """
    return {
        "key": change.key,
        "before": None if change.before is None else change.before.value,
        "after": change.after.value,
        "actor": change.actor,
        "reason": change.reason,
        "at": change.at,
    }


def _statuses(value: Iterable[AssetStatus] | None) -> frozenset[AssetStatus] | None:
    return None if value is None else frozenset(value)


def _callable(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not callable(value):
        raise ValueError(f"{type(instance).__name__}.{attribute.name}: must be callable")


@attrs.frozen
class Callback:
    """A notifier that calls *function* with each change (to the given statuses only).

    :param function: called with the :class:`~safegen.review.events.StatusChange`; what it
        returns is ignored, what it raises is the delivery's failure.
    :param statuses: call it only for changes *to* these statuses; ``None`` for all.
    :param name: how :class:`FanOut` names it in a failure.
    """

    function: Callable[[StatusChange], object] = attrs.field(validator=_callable)
    statuses: frozenset[AssetStatus] | None = attrs.field(
        default=None, kw_only=True, converter=_statuses
    )
    name: str | None = attrs.field(default=None, kw_only=True)

    def __call__(self, change: StatusChange) -> None:
        """Call the function with *change*, if its new status is one listened for."""
        if self.statuses is None or change.after in self.statuses:
            self.function(change)


@attrs.frozen
class Delivery:
    """What :meth:`FanOut.deliver` did.

    :param delivered: the names of the notifiers that took the change.
    :param failed: for each notifier that raised, its name and the exception.
    """

    delivered: tuple[str, ...]
    failed: tuple[tuple[str, BaseException], ...]

    @property
    def ok(self) -> bool:
        """Whether every notifier took the change."""
        return not self.failed


class NotificationError(SafegenError):
    """One or more notifiers could not deliver a change (the others did).

    :param delivery: who took the change and who failed, with their exceptions.
    """

    def __init__(self, message: str, *, delivery: Delivery) -> None:
        super().__init__(message)
        self.delivery = delivery


def _name(notifier: Notifier, index: int) -> str:
    name = getattr(notifier, "name", None)
    return name if isinstance(name, str) and name else f"{index}:{type(notifier).__name__}"


def _notifiers(value: Iterable[Notifier]) -> tuple[Notifier, ...]:
    return tuple(value)


def _all_callable(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    assert isinstance(value, tuple)
    for notifier in value:
        if not callable(notifier):
            raise ValueError(f"FanOut: {type(notifier).__name__} is not a notifier (callable)")


@attrs.frozen
class FanOut:
    """A notifier that delivers each change to all of *notifiers*, in order.

    One notifier's failure never keeps the change from the others. :meth:`deliver` returns
    who failed; calling the fan-out raises :class:`NotificationError` after trying all, so
    it is itself a :class:`~safegen.review.events.Notifier` that fails when any part did.
    Failures are logged with the notifier's name and the exception's type only (a message
    could quote a key or a reason).

    :param notifiers: the notifiers (any callables taking a change).
    """

    notifiers: tuple[Notifier, ...] = attrs.field(converter=_notifiers, validator=_all_callable)

    def deliver(self, change: StatusChange) -> Delivery:
        """Deliver *change* to every notifier; return who took it and who failed."""
        delivered: list[str] = []
        failed: list[tuple[str, BaseException]] = []
        for index, notifier in enumerate(self.notifiers):
            name = _name(notifier, index)
            try:
                notifier(change)
            except Exception as error:  # every notifier is tried, whatever one raises
                _log.warning("notifier %s failed (%s)", name, type(error).__name__)
                failed.append((name, error))
            else:
                delivered.append(name)
        return Delivery(delivered=tuple(delivered), failed=tuple(failed))

    def __call__(self, change: StatusChange) -> None:
        """Deliver *change* to all; raise :class:`NotificationError` if any failed."""
        delivery = self.deliver(change)
        if delivery.failed:
            names = ", ".join(f"{name} ({type(error).__name__})" for name, error in delivery.failed)
            raise NotificationError(
                f"{len(delivery.failed)} of {len(self.notifiers)} notifiers failed: {names}",
                delivery=delivery,
            ) from delivery.failed[0][1]
