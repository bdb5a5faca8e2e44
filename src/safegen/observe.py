"""Making moderation visible: a small hook interface the moderators and the Pipeline call.

An :class:`Observer` is told about every finished verdict. Verdicts already carry their timings,
so an observer can turn them into spans or metrics without the application writing code. It
is told *what was decided*, never the prompt or the image: a verdict's JSON form holds neither.

Observers are off by default. A failing observer never changes a verdict: :func:`notify`
logs the failure (its type only) and moderation goes on.

Four observers come with safegen, none importing anything until it is built:

- :class:`OpenTelemetryObserver`: one span per stage (each prompt check, image moderation,
  generation, the Pipeline with a child span per stage), built after the fact from the
  verdict's timings;
- :class:`CloudWatchEMFObserver`: CloudWatch embedded metric format documents (counts per
  action and per label, latency per stage, failures by cause), one JSON line each;
- :class:`RecordingObserver`: keeps what it is told, for tests;
- :class:`Observers`: tells several observers, each failure contained on its own.

What they emit is *about* content, never content: actions, check names and statuses, label
names and confidences (a rule match is named by its category, never by the term or the words
that matched), backends, model and adapter versions, the policy's sha256 and version, and a
failure's cause (an AWS error code or an exception's class, read from the error's fixed
prefix by :func:`failure_cause`, never its message, which may quote the prompt).
"""

from __future__ import annotations

import builtins
import contextlib
import json
import logging
import math
import re
import sys
import threading
import time
import weakref
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import attrs

from safegen.errors import ConfigurationError

if TYPE_CHECKING:
    from safegen.verdicts import ImageVerdict, PipelineResult, PromptVerdict

__all__ = [
    "EVENTS",
    "CloudWatchEMFObserver",
    "Observer",
    "Observers",
    "OpenTelemetryObserver",
    "RecordingObserver",
    "failure_cause",
    "notify",
]

_log = logging.getLogger(__name__)

#: The events an observer is told about, as :func:`notify` names them.
EVENTS = ("prompt_checked", "image_checked", "pipeline_ran")


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
        """Receive a finished Pipeline run, before its prompt and image verdicts are told."""
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


# -- what may be said about a verdict ----------------------------------------------------------

# An error string starts with a fixed prefix that safegen writes: "[name: ]service.Operation
# failed (Code): message" for a service error, "[name: ]ClassName(...)" for another exception,
# "preflight (limit): ..." for a refused image. Only the prefix's token is read.
_SERVICE = re.compile(
    r"(?:[A-Za-z0-9_-]{1,64}\.){1,2}[A-Za-z0-9_]{1,64} failed \(([A-Za-z0-9_.:-]{1,100})\)"
)
_PREFLIGHT = re.compile(r"preflight \(([A-Za-z0-9_-]{1,64})\)")
_EXCEPTION = re.compile(r"([A-Z][A-Za-z0-9_]{0,99})\(")
_UNCLASSIFIED = "unclassified"


def failure_cause(error: str | None, name: str | None = None) -> str | None:
    """Return a failure's cause as a short token: an AWS error code, an exception class, or so.

    *error* is a verdict's ``error`` (or a check's): free text that may quote the prompt
    after its prefix. Only the fixed prefix safegen writes is read: the service's error code
    (``ThrottlingException``), a non-safegen exception's class (``KeyError``; a builtin
    exception or a name ending in ``Error``, ``Exception``, ...),
    ``preflight:<limit>`` for a refused image; anything else is ``"unclassified"``. The token
    is ASCII without spaces, at most 100 characters.

    :param name: the check or backend name that may stand before the prefix (``"rekognition: "``).

    >>> failure_cause("comprehend.DetectToxicContent failed (ThrottlingException): Rate exceeded")
    'ThrottlingException'
    >>> failure_cause("fake: KeyError('a secret prompt')", "fake")
    'KeyError'
    >>> failure_cause("the model said: a secret prompt")
    'unclassified'
    """
    if error is None:
        return None
    text = error
    if name and text.startswith(f"{name}: "):
        text = text[len(name) + 2 :]
    for pattern, form in ((_SERVICE, "{}"), (_PREFLIGHT, "preflight:{}"), (_EXCEPTION, "{}")):
        found = pattern.match(text)
        if found is not None and (pattern is not _EXCEPTION or _exception_name(found.group(1))):
            return form.format(found.group(1))
    return _UNCLASSIFIED


def _exception_name(name: str) -> bool:
    """Say whether *name* reads as an exception class (a builtin one, or ``...Error``)."""
    builtin = getattr(builtins, name, None)
    if isinstance(builtin, type) and issubclass(builtin, BaseException):
        return True
    return name.endswith(("Error", "Exception", "Timeout", "Interrupt", "Exit"))


def _finding_label(finding: Any) -> str:
    """Name a finding without content: a rule match by its category, a classifier by its label."""
    if finding.source == "rules":
        return f"rules:{finding.category or 'custom'}"
    return str(finding.label)


def _seconds(value: object) -> float:
    """Return a duration as given, or 0 when it is not a finite non-negative number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0
    return float(value) if math.isfinite(value) and value >= 0 else 0.0


def _prompt_seconds(verdict: PromptVerdict) -> float:
    own = getattr(verdict, "seconds", None)
    if own is not None:
        return _seconds(own)
    return sum(_seconds(c.seconds) for c in verdict.checks)


def _policy_facts(value: object) -> dict[str, str]:
    facts = {}
    for attribute, key in (("policy_sha256", "sha256"), ("policy_version", "version")):
        found = getattr(value, attribute, None)
        if isinstance(found, str) and found:
            facts[key] = found
    return facts


# -- recording and fan-out ---------------------------------------------------------------------


@attrs.frozen(eq=False)
class RecordingObserver:
    """Keep every event it is told about, in order (for tests and examples).

    >>> recorder = RecordingObserver()
    >>> notify(recorder, "prompt_checked", "a verdict")
    >>> recorder.events
    [('prompt_checked', 'a verdict')]
    """

    events: list[tuple[str, Any]] = attrs.field(factory=list, init=False)

    def prompt_checked(self, verdict: PromptVerdict) -> None:
        """Record a prompt verdict."""
        self.events.append(("prompt_checked", verdict))

    def image_checked(self, verdict: ImageVerdict) -> None:
        """Record an image verdict."""
        self.events.append(("image_checked", verdict))

    def pipeline_ran(self, result: PipelineResult) -> None:
        """Record a Pipeline result."""
        self.events.append(("pipeline_ran", result))

    def of(self, event: str) -> list[Any]:
        """Return what was recorded for *event* (one of :data:`EVENTS`), in order."""
        return [value for name, value in self.events if name == event]


def _observer_tuple(value: object) -> tuple[Observer, ...]:
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise ConfigurationError(f"observers: expected a collection, got {type(value).__name__}")
    return tuple(value)


def _each_observer(_: object, attribute: attrs.Attribute[Any], value: tuple[object, ...]) -> None:
    for observer in value:
        if not isinstance(observer, Observer):
            raise ConfigurationError(
                f"{attribute.name}: expected observers (prompt_checked, image_checked, "
                f"pipeline_ran), got {type(observer).__name__}"
            )


@attrs.frozen(eq=False)
class Observers:
    """Tell several observers, in order; each one's failure is contained on its own.

    :param observers: the observers, e.g. ``Observers([otel, emf])``.
    :raises ConfigurationError: one of them is not an :class:`Observer`.
    """

    observers: tuple[Observer, ...] = attrs.field(
        converter=_observer_tuple, validator=_each_observer
    )

    def prompt_checked(self, verdict: PromptVerdict) -> None:
        """Tell every observer about a prompt verdict."""
        for observer in self.observers:
            notify(observer, "prompt_checked", verdict)

    def image_checked(self, verdict: ImageVerdict) -> None:
        """Tell every observer about an image verdict."""
        for observer in self.observers:
            notify(observer, "image_checked", verdict)

    def pipeline_ran(self, result: PipelineResult) -> None:
        """Tell every observer about a Pipeline result."""
        for observer in self.observers:
            notify(observer, "pipeline_ran", result)


# -- OpenTelemetry -------------------------------------------------------------------------------


def _ns(seconds: float) -> int:
    return round(seconds * 1_000_000_000)


def _attributes(**values: object) -> dict[str, Any]:
    """Span attributes under ``safegen.``, leaving out what is unknown (``None``)."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if value is None:
            continue
        if isinstance(value, tuple | list):
            value = list(value)
        out[f"safegen.{key}"] = value
    return out


def _prompt_attributes(verdict: PromptVerdict) -> dict[str, Any]:
    findings = verdict.findings
    policy = _policy_facts(verdict)
    return _attributes(
        action=verdict.action.value,
        **{
            "checks": [c.name for c in verdict.checks],
            "check_statuses": [c.status.value for c in verdict.checks],
            "failed_checks": [c.name for c in verdict.failed],
            "finding.labels": [_finding_label(f) for f in findings],
            "finding.sources": [f.source for f in findings],
            "finding.scores": [float(f.score) for f in findings],
            "finding.actions": [f.action.value for f in findings],
            "policy.sha256": policy.get("sha256"),
            "policy.version": policy.get("version"),
        },
    )


def _image_attributes(verdict: ImageVerdict) -> dict[str, Any]:
    report, decision = verdict.report, verdict.decision
    labels = () if report is None else report.labels
    policy = _policy_facts(verdict)
    return _attributes(
        action=verdict.action.value,
        backend=verdict.backend,
        fail_open=verdict.fail_open,
        **{
            "model_version": None if report is None else report.model_version,
            "adapter_version": None if report is None else report.adapter_version,
            "coverage": None if report is None else report.coverage,
            "labels": [label.name for label in labels],
            "label_confidences": [float(label.confidence) for label in labels],
            "violations": [] if decision is None else [v.label.name for v in decision.violations],
            "failure.cause": failure_cause(verdict.error, verdict.backend),
            "policy.sha256": policy.get("sha256"),
            "policy.version": policy.get("version"),
        },
    )


def _tracer_from(instance: OpenTelemetryObserver) -> Any:
    if instance.tracer is not None:
        if instance.tracer_provider is not None:
            raise ConfigurationError(
                "tracer_provider: give a tracer or a tracer_provider, not both"
            )
        return instance.tracer
    from opentelemetry import trace  # only when an OpenTelemetry observer is built

    return trace.get_tracer("safegen", tracer_provider=instance.tracer_provider)


@attrs.frozen(eq=False)
class OpenTelemetryObserver:
    """Turn verdicts into OpenTelemetry spans, after the fact, from their timings.

    A span ends when the observer is told (the verdict has just finished) and starts its
    ``seconds`` before; a parent's children are laid out one after the other from its start
    (prompt checks that ran in parallel all start with it). Spans are children of the span
    current when the observer is told (your request's span, say). Spans:

    - ``safegen.prompt`` with a ``safegen.prompt.check`` child per check;
    - ``safegen.image`` for an image verdict;
    - ``safegen.pipeline`` with children ``safegen.prompt`` (and its checks), then per attempt
      ``safegen.generate`` and ``safegen.moderate`` (with a ``safegen.image`` per image).

    A failed check, image or generation gets an ERROR status whose description, like the
    ``safegen.failure.cause`` attribute, is :func:`failure_cause`'s token, never the message.
    A verdict is shown once: a :class:`~safegen.Pipeline` tells its observer ``pipeline_ran``
    before the verdict events, so its prompt and images are drawn under ``safegen.pipeline``
    and not again as spans of their own; a verdict shown on its own first (a moderator's
    observer told before the pipeline ran) is not shown again under the pipeline.

    :param tracer: an OpenTelemetry tracer; else one named ``safegen`` from *tracer_provider*.
    :param tracer_provider: where to get the tracer; the global provider if neither is given.
    :param clock: nanoseconds since the epoch, the end of each span told about.
    :raises ConfigurationError: both *tracer* and *tracer_provider*.
    :raises ModuleNotFoundError: opentelemetry-api is not installed (``safegen[otel]``).
    """

    tracer: Any = attrs.field(default=None)
    tracer_provider: Any = attrs.field(default=None, kw_only=True)
    clock: Callable[[], int] = attrs.field(default=time.time_ns, kw_only=True, repr=False)
    _tracer: Any = attrs.field(init=False, repr=False)
    # The verdicts already shown as spans of their own (by identity, while they live): a
    # pipeline run told afterwards does not show them twice.
    _shown: weakref.WeakValueDictionary[int, Any] = attrs.field(
        factory=weakref.WeakValueDictionary, init=False, repr=False
    )
    _lock: threading.Lock = attrs.field(factory=threading.Lock, init=False, repr=False)

    @_tracer.default
    def _resolve(self) -> Any:
        return _tracer_from(self)

    def prompt_checked(self, verdict: PromptVerdict) -> None:
        """Emit a ``safegen.prompt`` span with one child per check (none if already shown)."""
        if self._was_shown(verdict):
            return
        end = self.clock()
        self._prompt(verdict, end - _ns(_prompt_seconds(verdict)), end, None)
        self._remember(verdict)

    def image_checked(self, verdict: ImageVerdict) -> None:
        """Emit a ``safegen.image`` span (none if already shown)."""
        if self._was_shown(verdict):
            return
        end = self.clock()
        self._image(verdict, end - _ns(_seconds(verdict.seconds)), end, None)
        self._remember(verdict)

    def pipeline_ran(self, result: PipelineResult) -> None:
        """Emit a ``safegen.pipeline`` span with a child per stage."""
        end = self.clock()
        timings = result.timings
        stages = _seconds(timings.get("prompt", 0.0)) + sum(
            _seconds(a.generate_seconds) + _seconds(a.moderate_seconds) for a in result.attempts
        )
        total = _seconds(timings.get("total", stages)) or stages
        start = end - _ns(total)
        span = self._start(
            "safegen.pipeline",
            start,
            None,
            _attributes(
                status=result.status,
                attempts=len(result.attempts),
                images=len(result.images),
                image_statuses=[i.status.value for i in result.images],
                warnings=len(result.warnings),
                **_policy_keys(result),
            ),
        )
        cursor = start
        if result.prompt is not None:
            seconds = _seconds(timings.get("prompt", _prompt_seconds(result.prompt)))
            after = min(cursor + _ns(seconds), end)
            if not self._was_shown(result.prompt):
                self._prompt(result.prompt, cursor, after, span)
                self._remember(result.prompt)
            cursor = after
        for number, attempt in enumerate(result.attempts, 1):
            after = min(cursor + _ns(_seconds(attempt.generate_seconds)), end)
            cause = failure_cause(attempt.error)
            images = 0 if attempt.generation is None else len(attempt.generation.images)
            generate = self._start(
                "safegen.generate",
                cursor,
                span,
                _attributes(attempt=number, images=images, **{"failure.cause": cause}),
            )
            self._end(generate, after, cause)
            cursor = after
            after = min(cursor + _ns(_seconds(attempt.moderate_seconds)), end)
            moderate = self._start(
                "safegen.moderate", cursor, span, _attributes(attempt=number, images=images)
            )
            for verdict in attempt.verdicts:
                seconds = _seconds(verdict.seconds)
                if not self._was_shown(verdict):
                    self._image(verdict, cursor, min(cursor + _ns(seconds), after), moderate)
                    self._remember(verdict)
            self._end(moderate, after, None)
            cursor = after
        self._end(span, end, "failed" if result.status == "failed" else None)

    def _remember(self, verdict: object) -> None:
        with contextlib.suppress(TypeError), self._lock:  # a verdict without weak references
            self._shown[id(verdict)] = verdict

    def _was_shown(self, verdict: object) -> bool:
        with self._lock:
            return self._shown.get(id(verdict)) is verdict

    def _prompt(self, verdict: PromptVerdict, start: int, end: int, parent: Any) -> None:
        span = self._start("safegen.prompt", start, parent, _prompt_attributes(verdict))
        checks = verdict.checks
        sequential = sum(_ns(_seconds(c.seconds)) for c in checks) <= end - start
        cursor = start
        for check in checks:
            after = min((cursor if sequential else start) + _ns(_seconds(check.seconds)), end)
            cause = failure_cause(check.error)
            child = self._start(
                "safegen.prompt.check",
                cursor if sequential else start,
                span,
                _attributes(
                    **{
                        "check.name": check.name,
                        "check.status": check.status.value,
                        "check.fail_open": check.fail_open,
                        "failure.cause": cause,
                    }
                ),
            )
            self._end(child, after, cause)
            if sequential:
                cursor = after
        self._end(span, end, None)

    def _image(self, verdict: ImageVerdict, start: int, end: int, parent: Any) -> None:
        attributes = _image_attributes(verdict)
        span = self._start("safegen.image", start, parent, attributes)
        self._end(span, end, attributes.get("safegen.failure.cause"))

    def _start(self, name: str, start: int, parent: Any, attributes: dict[str, Any]) -> Any:
        from opentelemetry import trace

        context = None if parent is None else trace.set_span_in_context(parent)
        return self._tracer.start_span(
            name, context=context, start_time=start, attributes=attributes
        )

    @staticmethod
    def _end(span: Any, end: int, cause: str | None) -> None:
        if cause is not None:
            from opentelemetry.trace import Status, StatusCode

            span.set_status(Status(StatusCode.ERROR, cause))
        span.end(end_time=end)


def _policy_keys(value: object) -> dict[str, str]:
    return {f"policy.{key}": found for key, found in _policy_facts(value).items()}


# -- CloudWatch embedded metric format -----------------------------------------------------------

#: CloudWatch's limits on an embedded metric format document (the EMF specification).
EMF_MAX_METRICS = 100
EMF_MAX_DIMENSIONS = 30
_DIMENSION_VALUE_CHARS = 1024
_NAME_CHARS = 255
_NAMESPACE = re.compile(r"[0-9A-Za-z._/#: -]{1,255}")
# The dimension keys the observer sets itself (a document uses at most three).
_OWN_KEYS = ("Stage", "Action", "Backend", "Check", "Status", "Label", "Cause", "ImageStatus")
_OWN_PER_SET = 3
# The metric names the observer writes: a document's keys, so never a dimension's too.
_METRIC_NAMES = ("Count", "Latency", "Findings", "Images", "Failures")


def _dimension_value(value: object) -> str:
    """Return a dimension value CloudWatch accepts: printable ASCII, not blank, <= 1,024 chars."""
    text = str(value).encode("ascii", "backslashreplace").decode("ascii")
    text = "".join(c if " " <= c <= "~" else "?" for c in text).strip()
    return text[:_DIMENSION_VALUE_CHARS] or "unknown"


def _namespace(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    text: object = value
    if not isinstance(text, str) or not _NAMESPACE.fullmatch(text) or not text.strip():
        raise ConfigurationError(
            f"{attribute.name}: 1 to 255 of the characters 0-9 A-Z a-z . - _ / # : and space, "
            f"got {value!r}"
        )
    if text.startswith("AWS/"):
        raise ConfigurationError(f"{attribute.name}: the AWS/ prefix is reserved for AWS")


def _static_dimensions(value: object) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigurationError(f"dimensions: expected a mapping, got {type(value).__name__}")
    out: dict[str, str] = {}
    for key, item in value.items():
        if (
            not isinstance(key, str)
            or not 0 < len(key) <= _NAME_CHARS
            or not key.isascii()
            or not key.isprintable()
            or not key.strip()
            or key.startswith(":")
            or key == "_aws"
        ):
            raise ConfigurationError(
                f"dimensions: {key!r} is not a dimension name CloudWatch accepts (1 to 255 "
                "printable ASCII characters, not starting with ':')"
            )
        if key in _OWN_KEYS:
            raise ConfigurationError(f"dimensions: {key!r} is a dimension safegen sets itself")
        if key in _METRIC_NAMES:
            raise ConfigurationError(
                f"dimensions: {key!r} is a metric safegen writes (a name is a dimension or a "
                "metric, never both)"
            )
        if not isinstance(item, str) or _dimension_value(item) != item:
            raise ConfigurationError(
                f"dimensions.{key}: must be 1 to 1,024 printable ASCII characters, not blank"
            )
        out[key] = item
    if len(out) > EMF_MAX_DIMENSIONS - _OWN_PER_SET:
        raise ConfigurationError(
            f"dimensions: at most {EMF_MAX_DIMENSIONS - _OWN_PER_SET} (a dimension set holds "
            f"{EMF_MAX_DIMENSIONS} keys and safegen adds up to {_OWN_PER_SET})"
        )
    return out


def _writer(value: object) -> Callable[[str], object] | None:
    if value is None:
        return None
    write = getattr(value, "write", None)
    if callable(write):
        return lambda line: write(line + "\n")
    if callable(value):
        return value
    raise ConfigurationError(
        f"write: expected a callable or a stream with write(), got {type(value).__name__}"
    )


@attrs.frozen
class _Metric:
    name: str
    value: float
    unit: str


@attrs.frozen(eq=False)
class CloudWatchEMFObserver:
    """Write CloudWatch embedded metric format (EMF) documents, one JSON line each.

    CloudWatch Logs turns each line into metrics (Lambda's standard output, the CloudWatch
    agent, or any log group reading them). Per event:

    - ``prompt_checked``: ``Count`` and ``Latency`` by ``Stage=prompt`` and ``Action``; per
      check ``Count`` and ``Latency`` by ``Stage=prompt.check``, ``Check`` and ``Status``;
      ``Findings`` by ``Label`` (a rule match counts under ``rules:<category>``); ``Failures``
      by ``Cause`` for each check that could not run;
    - ``image_checked``: ``Count`` and ``Latency`` by ``Stage=image``, ``Action`` and
      ``Backend``; ``Findings`` by ``Label`` for each label that counted (a violation);
      ``Failures`` by ``Cause``;
    - ``pipeline_ran``: ``Count`` and ``Latency`` by ``Stage=pipeline`` and ``Status``;
      ``Latency`` per stage (``Stage=pipeline.prompt``, ``pipeline.generate``,
      ``pipeline.moderate``); ``Images`` by ``ImageStatus``; ``Failures`` by ``Cause``
      (``Stage=generate``) for each generation that failed.

    Latencies are in milliseconds, counts in ``Count``. Each document holds at most 100
    metrics and dimension sets of at most 30 keys; dimension values are printable ASCII of
    at most 1,024 characters. Nothing else is written: no prompt, no image, no request body.

    :param write: where each line goes: a callable taking the line (without a newline) or a
        text stream (the line and a newline); standard output when ``None``.
    :param namespace: the CloudWatch namespace of the metrics.
    :param dimensions: dimensions of your own added to every metric (``{"Service": "api"}``).
    :param clock: seconds since the epoch, for each document's timestamp.
    :raises ConfigurationError: a namespace or dimension CloudWatch would refuse.
    """

    write: Callable[[str], object] | None = attrs.field(default=None, converter=_writer)
    namespace: str = attrs.field(default="safegen", kw_only=True, validator=_namespace)
    dimensions: dict[str, str] = attrs.field(
        default=None, kw_only=True, converter=_static_dimensions
    )
    clock: Callable[[], float] = attrs.field(default=time.time, kw_only=True, repr=False)
    _lock: threading.Lock = attrs.field(factory=threading.Lock, init=False, repr=False)

    def prompt_checked(self, verdict: PromptVerdict) -> None:
        """Write the documents for a prompt verdict."""
        self._emit(self.documents("prompt_checked", verdict))

    def image_checked(self, verdict: ImageVerdict) -> None:
        """Write the documents for an image verdict."""
        self._emit(self.documents("image_checked", verdict))

    def pipeline_ran(self, result: PipelineResult) -> None:
        """Write the documents for a Pipeline result."""
        self._emit(self.documents("pipeline_ran", result))

    def documents(self, event: str, value: Any) -> list[dict[str, Any]]:
        """Return the EMF documents for *event* (one of :data:`EVENTS`) without writing them."""
        timestamp = int(self.clock() * 1000)
        return [
            self._document(timestamp, dimensions, sets, metrics)
            for dimensions, sets, measured in _measurements(event, value)
            for metrics in _chunks(measured, EMF_MAX_METRICS)
        ]

    def _document(
        self,
        timestamp: int,
        dimensions: dict[str, str],
        sets: Sequence[Sequence[str]],
        metrics: Sequence[_Metric],
    ) -> dict[str, Any]:
        own = {key: _dimension_value(value) for key, value in dimensions.items()}
        static = list(self.dimensions)
        document: dict[str, Any] = {
            "_aws": {
                "Timestamp": timestamp,
                "CloudWatchMetrics": [
                    {
                        "Namespace": self.namespace,
                        "Dimensions": [[*static, *keys] for keys in sets],
                        "Metrics": [{"Name": m.name, "Unit": m.unit} for m in metrics],
                    }
                ],
            },
            **self.dimensions,
            **own,
        }
        for metric in metrics:
            document[metric.name] = metric.value
        return document

    def _emit(self, documents: list[dict[str, Any]]) -> None:
        lines = [json.dumps(d, separators=(",", ":"), allow_nan=False) for d in documents]
        write = self.write or (lambda line: sys.stdout.write(line + "\n"))
        with self._lock:  # lines from several threads never interleave
            for line in lines:
                write(line)


def _chunks(items: Sequence[_Metric], size: int) -> Iterator[Sequence[_Metric]]:
    for first in range(0, len(items), size):
        yield items[first : first + size]


_Measurement = tuple[dict[str, str], tuple[tuple[str, ...], ...], list[_Metric]]


def _count(n: float = 1.0) -> _Metric:
    return _Metric("Count", n, "Count")


def _latency(seconds: float) -> _Metric:
    return _Metric("Latency", round(_seconds(seconds) * 1000.0, 3), "Milliseconds")


def _measurements(event: str, value: Any) -> list[_Measurement]:
    if event == "prompt_checked":
        return _prompt_measurements(value)
    if event == "image_checked":
        return _image_measurements(value)
    if event == "pipeline_ran":
        return _pipeline_measurements(value)
    raise ConfigurationError(f"event: expected one of {', '.join(EVENTS)}, got {event!r}")


def _by_label(stage: str, labels: Iterable[str]) -> list[_Measurement]:
    return [
        ({"Stage": stage, "Label": label}, (("Stage", "Label"),), [_Metric("Findings", n, "Count")])
        for label, n in sorted(Counter(labels).items())
    ]


def _failure(stage: str, cause: str) -> _Measurement:
    return (
        {"Stage": stage, "Cause": cause},
        (("Stage", "Cause"),),
        [_Metric("Failures", 1, "Count")],
    )


def _prompt_measurements(verdict: PromptVerdict) -> list[_Measurement]:
    out: list[_Measurement] = [
        (
            {"Stage": "prompt", "Action": verdict.action.value},
            (("Stage",), ("Stage", "Action")),
            [_count(), _latency(_prompt_seconds(verdict))],
        )
    ]
    out += [
        (
            {"Stage": "prompt.check", "Check": check.name, "Status": check.status.value},
            (("Stage", "Check"), ("Stage", "Check", "Status")),
            [_count(), _latency(check.seconds)],
        )
        for check in verdict.checks
    ]
    out += _by_label("prompt", (_finding_label(f) for f in verdict.findings))
    out += [
        _failure("prompt.check", failure_cause(c.error) or _UNCLASSIFIED) for c in verdict.failed
    ]
    return out


def _image_measurements(verdict: ImageVerdict) -> list[_Measurement]:
    out: list[_Measurement] = [
        (
            {
                "Stage": "image",
                "Action": verdict.action.value,
                "Backend": verdict.backend or "unknown",
            },
            (("Stage",), ("Stage", "Action"), ("Stage", "Backend")),
            [_count(), _latency(verdict.seconds)],
        )
    ]
    decision = verdict.decision
    if decision is not None:
        out += _by_label("image", (v.label.name for v in decision.violations))
    if verdict.error is not None:
        out.append(
            _failure("image", failure_cause(verdict.error, verdict.backend) or _UNCLASSIFIED)
        )
    return out


def _pipeline_measurements(result: PipelineResult) -> list[_Measurement]:
    timings = result.timings
    out: list[_Measurement] = [
        (
            {"Stage": "pipeline", "Status": result.status},
            (("Stage",), ("Stage", "Status")),
            [_count(), _latency(timings.get("total", 0.0))],
        )
    ]
    out += [
        ({"Stage": f"pipeline.{stage}"}, (("Stage",),), [_latency(timings[stage])])
        for stage in ("prompt", "generate", "moderate")
        if stage in timings
    ]
    for status, n in sorted(Counter(i.status.value for i in result.images).items()):
        out.append(
            (
                {"Stage": "pipeline", "ImageStatus": status},
                (("Stage", "ImageStatus"),),
                [_Metric("Images", n, "Count")],
            )
        )
    out += [
        _failure("generate", failure_cause(a.error) or _UNCLASSIFIED)
        for a in result.attempts
        if a.error is not None
    ]
    return out
