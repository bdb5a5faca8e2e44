"""The Ray Data engine: the same moderation as a Ray Data pipeline (extra ``safegen[ray]``).

When a scan outgrows one machine (offline models are CPU-bound; a training set can hold
millions of images), :class:`RayEngine` runs the checks in a pool of Ray actors, each
building its moderator once (``map_batches`` with a callable class), while the driver keeps
the ledger: it sends only what the ledger has not settled and appends every record itself,
so each item still gets exactly one final record and a run resumes like any other.

Items are sent in chunks of ``chunk_size`` (one Ray dataset each), so the driver never
lists the whole source first. Local paths are read by the actors: on a cluster they must be
on storage every node sees; S3 objects are read where they are (Rekognition) or with the
*fetch* the actors build.

Imported only when used: ``import safegen`` does not import Ray.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import attrs

from safegen.batch._engine import REKOGNITION_S3_BYTES, ClientEngine, failure_of, unchecked_of
from safegen.batch._ledger import Ledger, now
from safegen.batch._records import Item, LedgerRecord
from safegen.batch._summary import BatchSummary, Tally
from safegen.errors import ConfigurationError
from safegen.policy import ModerationPolicy
from safegen.reports import S3Object

__all__ = ["RayEngine"]

Build = Callable[[], Any]
"""Builds a moderator (an ImageModerator or a Cascade) in each actor: picklable."""


class _Detached:
    """Stands in for the ledger inside an actor: its policy; the driver stamps the rest.

    A policy does not pickle (its taxonomy holds caches): it travels as its policy-file
    mapping and is rebuilt here. One that does not rebuild to the same ``sha256`` (a
    custom taxonomy) is not used: the moderator then judges by its own policy, and a
    verdict of any policy but the ledger's is recorded as ``policy_mismatch``.
    """

    def __init__(self, mapping: dict[str, Any], sha256: str, version: str | None) -> None:
        try:
            policy: ModerationPolicy | None = ModerationPolicy.from_mapping(mapping)
        except Exception:  # refused here: judged by the moderator's own, checked after
            policy = None
        self.policy = policy if policy is not None and policy.sha256 == sha256 else None
        self.policy_sha256 = sha256
        self.policy_version = version

    @staticmethod
    def next_attempt(ref: str) -> int:
        return 1


class _Moderate:
    """The actor: builds its moderator once, then checks batches of rows by *policy*."""

    def __init__(
        self, build: Build, fetch_build: Build | None, max_bytes: int, policy: tuple[Any, ...]
    ) -> None:
        fetch = None if fetch_build is None else fetch_build()
        self._engine = ClientEngine(build(), max_bytes=max_bytes, fetch=fetch, name="ray")
        self._ledger = _Detached(*policy)

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        import numpy as np

        out: dict[str, list[Any]] = {name: [] for name in _OUT}
        for ref, kind, where, bucket, data in zip(
            batch["ref"], batch["kind"], batch["where"], batch["bucket"], batch["data"],
            strict=True,
        ):  # fmt: skip
            item = Item(str(ref), _source(str(kind), str(where), str(bucket), data))
            record = self._engine._check(item, self._ledger, None)  # type: ignore[arg-type]
            for name in _OUT:
                value = getattr(record, name)
                out[name].append(json.dumps(list(value)) if name == "labels" else value)
        return {name: np.array(values, dtype=object) for name, values in out.items()}


_OUT = (
    "ref", "outcome", "action", "labels", "error", "retryable", "model_version", "policy_sha256",
)  # fmt: skip


def _source(kind: str, where: str, bucket: str, data: Any) -> bytes | S3Object | Path:
    if kind == "path":
        return Path(where)
    if kind == "s3":
        return S3Object(bucket, where)
    return bytes(data)


def _row(item: Item) -> dict[str, Any]:
    source = item.source
    if isinstance(source, Path):
        return {"ref": item.ref, "kind": "path", "where": str(source), "bucket": "", "data": b""}
    if isinstance(source, S3Object):
        return {"ref": item.ref, "kind": "s3", "where": source.key, "bucket": source.bucket,
                "data": b""}  # fmt: skip
    assert isinstance(source, bytes)
    return {"ref": item.ref, "kind": "bytes", "where": "", "bucket": "", "data": source}


def _positive(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(f"{attribute.name}: must be a whole number >= 1")


def _build(value: object) -> Build:
    if callable(getattr(value, "moderate", None)):
        moderator = value
        return lambda: moderator
    if not callable(value):
        raise ConfigurationError("moderator: expected a moderator or a function building one")
    return value


@attrs.frozen
class RayEngine:
    """Moderate a batch on Ray: a pool of actors, each with its own moderator.

    :param moderator: a function building the moderator in each actor (picklable: the
        model is loaded once per actor), or a moderator (pickled to each actor). Each
        image is judged by the ledger's policy, whatever the moderator's own (as
        :class:`~safegen.batch.ClientEngine`).
    :param workers: actors in the pool (Ray Data's ``concurrency``).
    :param batch_size: rows per ``map_batches`` call.
    :param chunk_size: items per Ray dataset: what the driver holds at a time.
    :param max_bytes: as :class:`~safegen.batch.ClientEngine`.
    :param fetch: a function building, in each actor, the reader of S3 bytes for a local
        backend (e.g. ``lambda: safegen.aws.s3.fetcher(boto3.client("s3"))``).
    :param num_cpus: CPUs each actor asks Ray for.
    """

    moderator: Build = attrs.field(converter=_build)
    workers: int = attrs.field(default=2, kw_only=True, validator=_positive)
    batch_size: int = attrs.field(default=16, kw_only=True, validator=_positive)
    chunk_size: int = attrs.field(default=10_000, kw_only=True, validator=_positive)
    max_bytes: int = attrs.field(default=REKOGNITION_S3_BYTES, kw_only=True, validator=_positive)
    fetch: Build | None = attrs.field(default=None, kw_only=True)
    num_cpus: float = attrs.field(default=1.0, kw_only=True)
    name: str = attrs.field(default="ray", kw_only=True)

    def run(self, items: Iterable[Item], ledger: Ledger) -> BatchSummary:
        """Check every item the ledger has not settled, on Ray; return this run's counts."""
        import ray

        if not ray.is_initialized():
            ray.init(include_dashboard=False, log_to_driver=False)
        tally = Tally()
        drawn: dict[str, str | None] = {}  # the chunk's refs and identities: chunk_size
        todo = self._todo(items, ledger, tally, drawn)
        while chunk := list(itertools.islice(todo, self.chunk_size)):
            for row in self._pipeline(chunk, ledger.policy):
                record = self._stamped(row, ledger, drawn)
                ledger.append(record)
                tally.add(record)
            drawn.clear()  # the chunk's refs are in ledger.done now (or retryable)
        ledger.flush()
        return tally.summary()

    def _todo(
        self, items: Iterable[Item], ledger: Ledger, tally: Tally, drawn: dict[str, str | None]
    ) -> Iterator[Item]:
        """Yield what to check; a duplicate is skipped by the ledger, or by *drawn* in a chunk.

        Memory does not grow with the source: earlier chunks' refs are answered by
        ``ledger.is_done`` (their records are appended before the next chunk is drawn), so
        only the current chunk's refs are kept.
        """
        for item in items:
            if ledger.is_done(item.ref, item.identity):
                tally.already_done += 1  # an earlier run's or chunk's, or a duplicate
                continue
            if item.ref in drawn:  # a duplicate within the chunk being drawn: once is enough
                continue
            record = unchecked_of(item, ledger, self.name, self.max_bytes)
            drawn[item.ref] = item.identity
            if record is None and item.source is None:
                record = failure_of(item.ref, "no_source", ledger, self.name)
            if record is not None:
                ledger.append(attrs.evolve(record, identity=item.identity))
                tally.add(record)
                continue
            yield item

    def _pipeline(self, chunk: list[Item], policy: ModerationPolicy) -> Iterator[dict[str, Any]]:
        import ray.data

        shipped = (policy.to_mapping(), policy.sha256, policy.version)
        dataset = ray.data.from_items([_row(item) for item in chunk])
        judged = dataset.map_batches(
            _Moderate,
            fn_constructor_args=(self.moderator, self.fetch, self.max_bytes, shipped),
            batch_size=self.batch_size,
            concurrency=self.workers,
            num_cpus=self.num_cpus,
        )
        yield from judged.iter_rows()

    def _stamped(
        self, row: dict[str, Any], ledger: Ledger, drawn: dict[str, str | None]
    ) -> LedgerRecord:
        ref = str(row["ref"])
        return LedgerRecord(
            ref,
            row["outcome"],
            row["action"],
            labels=json.loads(row["labels"]),
            error=row["error"],
            retryable=bool(row["retryable"]),
            model_version=row["model_version"],
            policy_sha256=row["policy_sha256"],  # the judge's (Ledger.append refuses another)
            policy_version=ledger.policy_version,
            engine=self.name,
            attempt=ledger.next_attempt(ref),
            at=now(),
            identity=drawn.get(ref),
        )
