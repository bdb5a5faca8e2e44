"""What a batch moderates (:class:`Item`) and what its ledger keeps (:class:`LedgerRecord`)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal, TypeAlias

import attrs

from safegen.reports import S3Object

Outcome: TypeAlias = Literal["checked", "failed", "skipped"]
"""``checked``: judged by the policy; ``failed``: could not be checked (with the cause);
``skipped``: deliberately not checked (the record says why)."""

_OUTCOMES = frozenset({"checked", "failed", "skipped"})
_ACTIONS = frozenset({"allow", "review", "block"})
MAX_REF_CHARS = 4096
"""The longest ``ref`` a ledger takes (an S3 key is at most 1,024 bytes; a path 4,096)."""
_CODE = re.compile(r"^[A-Za-z0-9_.:\-]{1,128}$")


def _ref(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str) or not value or len(value) > MAX_REF_CHARS:
        raise ValueError(
            f"{attribute.name}: expected a non-empty string of at most {MAX_REF_CHARS} "
            f"characters, got {type(value).__name__}"
        )


def _size(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{attribute.name}: expected a size in bytes (>= 0) or None")


def _source(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None or isinstance(value, bytes | S3Object | Path):
        return
    raise TypeError(
        f"{attribute.name}: expected image bytes, an S3Object or a Path, got {type(value).__name__}"
    )


def _identity(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and (not isinstance(value, str) or not 0 < len(value) <= 256):
        raise ValueError(f"{attribute.name}: expected a short string (1-256 characters) or None")


def _code(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and (not isinstance(value, str) or not _CODE.match(value)):
        raise ValueError(
            f"{attribute.name}: expected a cause code ([A-Za-z0-9_.:-], 1-128 characters), "
            "never free text"
        )


@attrs.frozen
class Item:
    """One image of a batch: a stable name for it and how to get it.

    :param ref: what identifies the image across runs and in the ledger: ``"s3://bucket/key"``
        or a local file's canonical path (see :func:`~safegen.batch.directory_items`).
    :param source: the image: its bytes, an :class:`~safegen.S3Object` (moderated where it is
        by a service, read only by a backend that needs the bytes), or a local
        :class:`~pathlib.Path` read when its turn comes. ``None`` with a *problem*.
    :param size: its size in bytes when the listing says (checked against the engine's limit
        before anything is read), else ``None``.
    :param problem: a cause code when the source already knows the image cannot be checked
        (``"too_large"``, ``"bad_manifest_line"``): the engine records it as failed without
        reading anything.
    :param identity: what the source knows of the content's identity (local: size,
        ``mtime_ns``, ``ctime_ns`` and inode; S3: ETag, size and last-modified, or the
        version id), recorded with the item: a later run skips the ref only while this is
        unchanged, so a file replaced under the same name is checked again. ``None`` when
        the source cannot tell (a manifest line): then the ref alone decides.
    :param skip: ``True`` when *problem* is why the source deliberately does not moderate
        this file (``"unsupported_type"``: not a kind of image it takes), rather than a
        failure: the engine records it as skipped (outcome ``"skipped"``, the reason in
        ``error``), reading nothing. Never dropped unseen; an engine that does not know
        this field records the item as failed, which is just as visible.
    """

    ref: str = attrs.field(validator=_ref)
    source: bytes | S3Object | Path | None = attrs.field(default=None, validator=_source)
    size: int | None = attrs.field(default=None, kw_only=True, validator=_size)
    problem: str | None = attrs.field(default=None, kw_only=True, validator=_code)
    identity: str | None = attrs.field(default=None, kw_only=True, validator=_identity)
    skip: bool = attrs.field(
        default=False, kw_only=True, validator=attrs.validators.instance_of(bool)
    )

    @skip.validator
    def _skip_has_reason(self, attribute: attrs.Attribute[bool], value: bool) -> None:
        if value and self.problem is None:
            raise ValueError(f"{attribute.name}: a skipped item needs its reason in problem")


def _labels(value: Iterable[str]) -> tuple[str, ...]:
    if isinstance(value, str):
        raise TypeError("labels: expected a collection of label paths, got one string")
    return tuple(value)


def _each_label(_: object, attribute: attrs.Attribute[Any], value: tuple[object, ...]) -> None:
    for label in value:
        if not isinstance(label, str) or not label or len(label) > 512:
            raise ValueError(f"{attribute.name}: expected label paths (non-empty strings)")


def _outcome(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value not in _OUTCOMES:
        raise ValueError(f"{attribute.name}: expected one of {sorted(_OUTCOMES)}, got {value!r}")


def _action(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and value not in _ACTIONS:
        raise ValueError(f"{attribute.name}: expected one of {sorted(_ACTIONS)} or None")


def _optional_text(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and (not isinstance(value, str) or len(value) > 256):
        raise ValueError(f"{attribute.name}: expected a short string or None")


def _attempt(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{attribute.name}: expected a whole number >= 1")


@attrs.frozen
class LedgerRecord:
    """What happened to one item, as one line of the ledger.

    :param ref: the item (the :class:`Item`'s ``ref``).
    :param outcome: ``"checked"``, ``"failed"`` or ``"skipped"``.
    :param action: ``"allow"``, ``"review"`` or ``"block"``: the policy's action for a
        checked item, the failure action (``"block"`` unless configured) for a failed one,
        ``None`` for a skipped one.
    :param labels: the taxonomy paths (``"Violence/Weapons"``) of what met a threshold.
    :param error: for a failed item, the cause as a code (``"ThrottlingException"``,
        ``"too_large"``); for a skipped one, the reason (``"unsupported_type"``): never the
        service's free text, never content.
    :param policy_sha256: the judging policy's :attr:`~safegen.ModerationPolicy.sha256`.
    :param policy_version: its :attr:`~safegen.ModerationPolicy.version`.
    :param engine: which engine wrote the record (``"client"``, ``"ray"``, ...).
    :param attempt: 1 for the first try of this ref in this ledger, then 2, ...
    :param at: when (ISO 8601, UTC), from the engine's clock.
    :param retryable: for a failed item, whether the cause is transient (throttling, an
        outage): such a record is not final, and a resumed run checks the item again.
    :param model_version: the backend's model version, when it says.
    :param identity: the content identity the source gave (``Item.identity``): a final
        record settles its ref only for that identity; a later final record with another
        identity supersedes it (the file was replaced).
    """

    ref: str = attrs.field(validator=_ref)
    outcome: Outcome = attrs.field(validator=_outcome)
    action: str | None = attrs.field(default=None, validator=_action)
    labels: tuple[str, ...] = attrs.field(default=(), converter=_labels, validator=_each_label)
    error: str | None = attrs.field(default=None, validator=_code)
    policy_sha256: str | None = attrs.field(default=None, validator=_optional_text)
    policy_version: str | None = attrs.field(default=None, validator=_optional_text)
    engine: str = attrs.field(default="client", validator=_code)
    attempt: int = attrs.field(default=1, validator=_attempt)
    at: str | None = attrs.field(default=None, validator=_optional_text)
    retryable: bool = attrs.field(default=False, validator=attrs.validators.instance_of(bool))
    model_version: str | None = attrs.field(default=None, validator=_optional_text)
    identity: str | None = attrs.field(default=None, validator=_identity)

    @property
    def final(self) -> bool:
        """Whether this record settles its item (all but a retryable failure do)."""
        return not (self.outcome == "failed" and self.retryable)

    def to_dict(self) -> dict[str, Any]:
        """Return the record as the JSON object of its ledger line."""
        return {"kind": "item", **attrs.asdict(self, recurse=False), "labels": list(self.labels)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LedgerRecord:
        """Read a record back from its ledger line's object.

        :raises ValueError: or :class:`TypeError`: the object is not a record.
        """
        fields = {field.name for field in attrs.fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in fields})


def local_ref(path: str | os.PathLike[str]) -> str:
    """Return a local file's ref: its directory's real path joined with its name as on disk.

    The name itself is not resolved (a link is its own file); so ``d/x.png``, ``./d/x.png``
    and ``$PWD/d/x.png`` have one ref.
    """
    head, tail = os.path.split(os.fspath(path))
    return os.path.join(os.path.realpath(head or "."), tail)
