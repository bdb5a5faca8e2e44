"""One store configuration that the application, ``safegen review`` and the review page share.

A :class:`~safegen.review.store.ReviewStore` only purges a rejected image from a CDN and tells
subscribers about a change when *the store that makes the change* has an invalidator and
notifiers. A script or a review page that opened the same directory or bucket without them
would reject an image that stays cached until its TTL runs out, and that nobody hears about.
So every opener reads one file: the application builds its store with
:meth:`StoreConfig.open`, and ``safegen review`` reads the same file (``--config``, or
:data:`CONFIG_NAME` in the store's directory). A TOML file::

    [store]
    directory = "/srv/uploads"        # or: bucket, table (and live_prefix, backup_prefix,
    pending_deliverable = false       #     backup_bucket, region) for S3 and DynamoDB
    audit = "audit.sqlite3"           # relative to this file; .jsonl for JSON Lines

    [cloudfront]
    distribution = "E2EXAMPLE12345"
    path_prefix = "/images/"

    [sns]
    topic = "arn:aws:sns:eu-west-1:123456789012:uploads"

    [eventbridge]
    bus = "default"
    source = "com.example.uploads"

An application whose hooks are its own code (a :class:`~safegen.review.notify.Callback`)
names a function that builds its fully configured store instead, and every opener calls it::

    [store]
    factory = "myapp.uploads:review_store"
"""

from __future__ import annotations

import importlib
import os
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from safegen.errors import ConfigurationError

if TYPE_CHECKING:
    from safegen.review.audit import AuditTrail
    from safegen.review.events import Notifier
    from safegen.review.store import Moderates, ReviewStore

__all__ = ["CONFIG_NAME", "StoreConfig"]

CONFIG_NAME = "safegen-review.toml"
"""The configuration's file name in a store's directory, where ``safegen review`` looks first."""

_TABLES: dict[str, frozenset[str]] = {
    "store": frozenset(
        {
            "directory",
            "bucket",
            "table",
            "live_prefix",
            "backup_prefix",
            "backup_bucket",
            "region",
            "audit",
            "pending_deliverable",
            "factory",
        }
    ),
    "cloudfront": frozenset({"distribution", "path_prefix"}),
    "sns": frozenset({"topic"}),
    "eventbridge": frozenset({"bus", "source", "detail_type"}),
}


def _optional_text(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and (not isinstance(value, str) or not value or "\x00" in value):
        raise ConfigurationError(f"store configuration: {attribute.name} must be a non-empty text")


def _text(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str):
        raise ConfigurationError(f"store configuration: {attribute.name} must be a text")


def _flag(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if type(value) is not bool:
        raise ConfigurationError(f"store configuration: {attribute.name} must be true or false")


def _path(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str | Path) or not str(value) or "\x00" in str(value):
        raise ConfigurationError("store configuration: a path must be a non-empty text")
    return str(value)


@attrs.frozen(kw_only=True)
class StoreConfig:
    """Where a review store is and which hooks it has: what every opener of it must agree on.

    Read one with :meth:`from_file`; build the store with :meth:`open`. Exactly one of
    *directory* (embedded), *bucket* and *table* (AWS) or *factory* says where the store is.

    :param directory: the embedded store's directory.
    :param bucket: the S3 bucket (with *table*, the DynamoDB table).
    :param table: the DynamoDB table of the records.
    :param live_prefix: the live area's prefix in S3.
    :param backup_prefix: the backup area's prefix in S3.
    :param backup_bucket: a separate bucket for the backup area.
    :param region: the AWS region of every client (the default chain's when ``None``).
    :param audit: the audit trail's file (SQLite, or JSON Lines if it ends ``.jsonl``).
    :param pending_deliverable: as :class:`~safegen.review.store.ReviewStore`'s; it must be
        the same for every store on one directory or bucket.
    :param factory: ``"module:function"``: a function of no arguments returning the
        application's fully configured store; then nothing else may be set.
    :param cloudfront_distribution: purge rejected images from this CloudFront distribution
        (:class:`~safegen.aws.publish.CloudFrontInvalidator`).
    :param cloudfront_path_prefix: where the distribution serves the live images from.
    :param sns_topic: publish every status change to this SNS topic
        (:class:`~safegen.aws.publish.SNSNotifier`).
    :param event_bus: put every status change on this EventBridge bus
        (:class:`~safegen.aws.publish.EventBridgeNotifier`).
    :param event_source: the events' ``source``.
    :param event_detail_type: the events' ``detail-type``.
    :raises ConfigurationError: a setting of the wrong type, or not exactly one location.
    """

    directory: str | None = attrs.field(default=None, converter=_path)
    bucket: str | None = attrs.field(default=None, validator=_optional_text)
    table: str | None = attrs.field(default=None, validator=_optional_text)
    live_prefix: str = attrs.field(default="live/", validator=_text)
    backup_prefix: str = attrs.field(default="backup/", validator=_text)
    backup_bucket: str | None = attrs.field(default=None, validator=_optional_text)
    region: str | None = attrs.field(default=None, validator=_optional_text)
    audit: str | None = attrs.field(default=None, converter=_path)
    pending_deliverable: bool = attrs.field(default=False, validator=_flag)
    factory: str | None = attrs.field(default=None, validator=_optional_text)
    cloudfront_distribution: str | None = attrs.field(default=None, validator=_optional_text)
    cloudfront_path_prefix: str = attrs.field(default="/", validator=_text)
    sns_topic: str | None = attrs.field(default=None, validator=_optional_text)
    event_bus: str | None = attrs.field(default=None, validator=_optional_text)
    event_source: str = attrs.field(default="safegen.review", validator=_text)
    event_detail_type: str = attrs.field(default="Review status change", validator=_text)

    def __attrs_post_init__(self) -> None:
        """Refuse a configuration that does not say, exactly once, where the store is."""
        where = [
            self.directory is not None,
            self.bucket is not None or self.table is not None,
            self.factory is not None,
        ]
        if sum(where) != 1:
            raise ConfigurationError(
                "store configuration: give exactly one of directory, bucket and table, or factory"
            )
        if (self.bucket is None) != (self.table is None):
            raise ConfigurationError("store configuration: an AWS store needs bucket and table")
        if self.factory is not None and (self.hooks or self.audit or self.pending_deliverable):
            raise ConfigurationError(
                "store configuration: with factory, the factory's store has every setting"
            )

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> StoreConfig:
        """Read a TOML configuration; relative paths in it are relative to its directory.

        :raises ConfigurationError: the file cannot be read or parsed, has an unknown table
            or setting, or a setting cannot be used.
        """
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
            raise ConfigurationError(
                f"cannot read the store configuration: {type(error).__name__}"
            ) from None
        unknown = sorted(set(data) - set(_TABLES))
        if unknown:
            raise ConfigurationError(f"store configuration: unknown table [{unknown[0]}]")
        settings: dict[str, Any] = {}
        prefixes = {"cloudfront": "cloudfront_", "sns": "sns_", "eventbridge": "event_"}
        for table, names in _TABLES.items():
            values = data.get(table, {})
            if not isinstance(values, dict):
                raise ConfigurationError(f"store configuration: [{table}] must be a table")
            for name, value in values.items():
                if name not in names:
                    raise ConfigurationError(
                        f"store configuration: unknown setting {name!r} in [{table}]"
                    )
                settings[prefixes.get(table, "") + name] = value
        for name in ("directory", "audit"):
            if isinstance(settings.get(name), str):
                settings[name] = path.parent / Path(settings[name]).expanduser()
        return cls(**settings)

    @property
    def hooks(self) -> tuple[str, ...]:
        """The hooks configured here, by name (``"cloudfront"``, ``"sns"``, ``"eventbridge"``)."""
        named = (
            ("cloudfront", self.cloudfront_distribution),
            ("sns", self.sns_topic),
            ("eventbridge", self.event_bus),
        )
        return tuple(name for name, value in named if value is not None)

    def open_audit(self) -> AuditTrail | None:
        """Return the audit trail the configuration names (``None`` when it names none)."""
        from safegen.review.audit import AuditTrail

        if self.audit is None:
            return None
        if self.audit.endswith(".jsonl"):
            return AuditTrail.jsonl(self.audit)
        return AuditTrail.sqlite(self.audit)

    def open(
        self,
        *,
        moderator: Moderates | None = None,
        audit: AuditTrail | None = None,
        notify: Notifier | Sequence[Notifier] = (),
        session: Any = None,
    ) -> ReviewStore:
        """Build the store, with the invalidator and notifiers the configuration names.

        :param moderator: what judges uploads (the application passes its own; a script or
            the review page, which only decide, need none).
        :param audit: the audit trail; the configured one (:meth:`open_audit`) by default.
        :param notify: notifiers of the caller's own, besides the configured ones.
        :param session: the ``boto3.Session`` AWS clients are made from (the default one when
            ``None``).
        :raises ConfigurationError: the factory cannot be imported or returns no store.
        """
        from safegen.review.store import ReviewStore

        if self.factory is not None:
            return self._from_factory()
        hooks: list[Any] = [notify] if callable(notify) else list(notify)
        invalidate = None
        if self.hooks:
            try:
                from safegen.aws.publish import (
                    CloudFrontInvalidator,
                    EventBridgeNotifier,
                    SNSNotifier,
                )
            except ImportError:
                raise ConfigurationError(
                    f"the store's hooks ({', '.join(self.hooks)}) need boto3: "
                    "pip install 'safegen[aws]'"
                ) from None

            if self.sns_topic is not None:
                hooks.append(
                    SNSNotifier.from_session(self.sns_topic, session, region_name=self.region)
                )
            if self.event_bus is not None:
                hooks.append(
                    EventBridgeNotifier.from_session(
                        self.event_bus,
                        self.event_source,
                        self.event_detail_type,
                        session,
                        region_name=self.region,
                    )
                )
            if self.cloudfront_distribution is not None:
                invalidate = CloudFrontInvalidator.from_session(
                    self.cloudfront_distribution, session, path_prefix=self.cloudfront_path_prefix
                )
        trail = self.open_audit() if audit is None else audit
        if self.directory is not None:
            return ReviewStore.embedded(
                self.directory,
                moderator=moderator,
                audit=trail,
                notify=hooks,
                invalidate=invalidate,
                pending_deliverable=self.pending_deliverable,
            )
        from safegen.aws.review_store import aws_review_store

        assert self.bucket is not None  # both, by __attrs_post_init__
        assert self.table is not None
        return aws_review_store(
            bucket=self.bucket,
            table=self.table,
            live_prefix=self.live_prefix,
            backup_prefix=self.backup_prefix,
            backup_bucket=self.backup_bucket,
            session=session,
            region_name=self.region,
            moderator=moderator,
            audit=trail,
            notify=hooks,
            invalidate=invalidate,
            pending_deliverable=self.pending_deliverable,
        )

    def _from_factory(self) -> ReviewStore:
        from safegen.review.store import ReviewStore

        assert self.factory is not None
        module, colon, name = self.factory.partition(":")
        if not colon or not module or not name:
            raise ConfigurationError("store configuration: factory reads 'module:function'")
        try:
            function = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError) as error:
            raise ConfigurationError(
                f"store configuration: cannot import the factory ({type(error).__name__})"
            ) from None
        store = function()
        if not isinstance(store, ReviewStore):
            raise ConfigurationError(
                f"store configuration: the factory returned a {type(store).__name__}, "
                "not a ReviewStore"
            )
        return store
