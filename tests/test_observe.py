"""Tests of the observers: OpenTelemetry spans, CloudWatch EMF documents, fan-out, no content."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from safegen import Action, ImageModerator, ModerationLabel, PromptModerator, RuleFilter
from safegen.errors import ConfigurationError, ServiceUnavailableError
from safegen.image import ImageVerdict
from safegen.observe import (
    EVENTS,
    CloudWatchEMFObserver,
    Observer,
    Observers,
    OpenTelemetryObserver,
    RecordingObserver,
    failure_cause,
    notify,
)
from safegen.pipeline import Pipeline, PipelineResult
from safegen.prompt import CheckResult, CheckStatus, PromptFinding, PromptVerdict
from safegen.reports import ImageReport
from safegen.testing import FakeGenerator, FakeImageBackend
from tests.strategies import (
    make_image,
    observed_image_verdicts,
    observed_prompt_verdicts,
    secret_prompts,
)

END = 1_700_000_000_000_000_000  # the clock's reading when an observer is told, in ns
THROTTLED = "comprehend.DetectToxicContent failed (ThrottlingException): a cat on a mat"

# -- the EMF specification, as a checker ------------------------------------------------------

_UNITS = {
    "Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes",
    "Terabytes", "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count",
    "Bytes/Second", "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second",
    "Terabytes/Second", "Bits/Second", "Kilobits/Second", "Megabits/Second", "Gigabits/Second",
    "Terabits/Second", "Count/Second", "None",
}  # fmt: skip


def check_emf(document: dict[str, Any]) -> None:
    """Assert *document* is a valid embedded metric format document (AWS's specification)."""
    assert len(json.dumps(document)) < 256 * 1024
    meta = document["_aws"]
    assert set(meta) <= {"Timestamp", "CloudWatchMetrics"}
    assert isinstance(meta["Timestamp"], int)
    assert meta["Timestamp"] >= 0
    directives = meta["CloudWatchMetrics"]
    assert isinstance(directives, list)
    assert directives
    for directive in directives:
        assert set(directive) == {"Namespace", "Dimensions", "Metrics"}
        assert re.fullmatch(r"[0-9A-Za-z._/#: -]{1,255}", directive["Namespace"])
        for dimension_set in directive["Dimensions"]:
            assert 1 <= len(dimension_set) <= 30
            for key in dimension_set:
                value = document[key]  # a dimension is a member of the root, a string
                assert isinstance(value, str)
                assert value.strip()
                assert len(value) <= 1024
                assert value.isascii()
                assert value.isprintable()
                assert 1 <= len(key) <= 255
                assert not key.startswith(":")
        metrics = directive["Metrics"]
        assert 1 <= len(metrics) <= 100
        for metric in metrics:
            assert set(metric) <= {"Name", "Unit", "StorageResolution"}
            assert metric.get("Unit", "None") in _UNITS
            value = document[metric["Name"]]
            assert isinstance(value, int | float)
            assert not isinstance(value, bool)


def emf(clock: float = 1_700_000_000.0, **options: Any) -> tuple[CloudWatchEMFObserver, list[str]]:
    lines: list[str] = []
    return CloudWatchEMFObserver(lines.append, clock=lambda: clock, **options), lines


def total(documents: list[dict[str, Any]], metric: str, **dimensions: str) -> float:
    """Sum *metric* over the documents whose dimensions include *dimensions*."""
    return sum(
        float(d[metric])
        for d in documents
        if metric in d and all(d.get(k) == v for k, v in dimensions.items())
    )


# -- verdicts ------------------------------------------------------------------------------------


def prompt_verdict() -> PromptVerdict:
    return PromptVerdict(
        Action.BLOCK,
        (
            PromptFinding("rules", "gore", 100.0, Action.BLOCK, "violence", (6, 10)),
            PromptFinding("comprehend-toxicity", "INSULT", 81.5, Action.BLOCK),
        ),
        (
            CheckResult("rules", CheckStatus.OK, 0.001),
            CheckResult("comprehend-toxicity", CheckStatus.OK, 0.2),
            CheckResult("custom", CheckStatus.FAILED, 0.3, THROTTLED),
        ),
    )


def image_verdict() -> ImageVerdict:
    moderator = ImageModerator(
        FakeImageBackend([ModerationLabel("Explicit", 90.0, level=1)], name="rekognition")
    )
    return moderator.moderate(make_image("PNG", (64, 64), seed=3))


def pipeline_result() -> PipelineResult:
    return Pipeline(
        PromptModerator(rules=RuleFilter(["gore"])),
        FakeGenerator([make_image("PNG", (64, 64), seed=1)]),
        ImageModerator(FakeImageBackend(name="rekognition")),
    ).run("a lake at dawn", images=2)


@attrs.frozen
class Timed(PromptVerdict):
    """A verdict that carries its own total time (the checks may have run at once)."""

    seconds: float | None = None


# -- the cause of a failure --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "name", "cause"),
    [
        (THROTTLED, None, "ThrottlingException"),
        (f"rekognition: {THROTTLED}", "rekognition", "ThrottlingException"),
        (
            "bedrock-runtime.ApplyGuardrail failed (ValidationException): x",
            None,
            "ValidationException",
        ),
        ("fake: KeyError('a cat on a mat')", "fake", "KeyError"),
        ("MyBackendError('a cat')", None, "MyBackendError"),
        ("Secret(words) of a prompt", None, "unclassified"),
        ("preflight (max_pixels): 9000 x 9000", None, "preflight:max_pixels"),
        ("DetectToxicContent: no ResultList", None, "unclassified"),
        (None, None, None),
    ],
)
def test_a_failure_cause_is_read_from_the_fixed_prefix_only(
    error: str | None, name: str | None, cause: str | None
) -> None:
    """The cause is the code or class safegen wrote first; a message quoting text is never read."""
    assert failure_cause(error, name) == cause


# -- recording and fan-out ---------------------------------------------------------------------


class Broken:
    def prompt_checked(self, verdict: PromptVerdict) -> None:
        raise RuntimeError("boom")

    def image_checked(self, verdict: ImageVerdict) -> None:
        raise RuntimeError("boom")

    def pipeline_ran(self, result: PipelineResult) -> None:
        raise RuntimeError("boom")


def test_observers_tell_every_observer_in_order_past_one_that_fails(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A broken observer's failure is logged by type and the next observer still hears."""
    first, last = RecordingObserver(), RecordingObserver()
    fan = Observers([first, Broken(), last])
    verdict = prompt_verdict()
    for event in EVENTS:
        notify(fan, event, verdict)
    assert first.events == last.events == [(event, verdict) for event in EVENTS]
    assert last.of("image_checked") == [verdict]
    assert [r.getMessage() for r in caplog.records].count(
        "observer Broken failed in prompt_checked (RuntimeError); the verdict stands"
    ) == 1
    assert isinstance(fan, Observer)


@pytest.mark.parametrize("observers", [["not an observer"], "abc", 3])
def test_observers_refuse_what_is_not_an_observer(observers: Any) -> None:
    """A member without the three methods, or no collection at all, is a ConfigurationError."""
    with pytest.raises(ConfigurationError, match="observers"):
        Observers(observers)


# -- CloudWatch EMF -------------------------------------------------------------------------------


def test_a_prompt_verdict_becomes_counts_latencies_findings_and_failures() -> None:
    """Count and latency by action, per check, findings by label (rules by category), failures."""
    observer, lines = emf(dimensions={"Service": "api"})
    observer.prompt_checked(prompt_verdict())
    documents = [json.loads(line) for line in lines]
    for document in documents:
        check_emf(document)
        assert document["Service"] == "api"
        assert document["_aws"]["Timestamp"] == 1_700_000_000_000
        assert all(
            s[0] == "Service" for s in document["_aws"]["CloudWatchMetrics"][0]["Dimensions"]
        )
    assert total(documents, "Count", Stage="prompt", Action="block") == 1
    assert total(documents, "Latency", Stage="prompt") == 501.0
    assert total(documents, "Latency", Stage="prompt.check", Check="comprehend-toxicity") == 200.0
    assert total(documents, "Count", Stage="prompt.check", Status="failed") == 1
    assert total(documents, "Findings", Label="rules:violence") == 1
    assert total(documents, "Findings", Label="INSULT") == 1
    assert total(documents, "Failures", Cause="ThrottlingException") == 1
    assert "gore" not in "".join(lines)
    assert "a cat" not in "".join(lines)


def test_an_image_verdict_counts_by_action_backend_and_label() -> None:
    """An image verdict: Count by action and backend, Findings per violating label."""
    observer, lines = emf()
    observer.image_checked(image_verdict())
    documents = [json.loads(line) for line in lines]
    for document in documents:
        check_emf(document)
    assert total(documents, "Count", Stage="image", Action="block", Backend="rekognition") == 1
    assert total(documents, "Findings", Stage="image", Label="Explicit") == 1


def test_a_failed_image_verdict_counts_its_cause() -> None:
    """A backend failure is a Failures count under its AWS code, the message left out."""
    observer, lines = emf()
    error = ServiceUnavailableError("a cat", service="rekognition", operation="Op", code="Internal")
    observer.image_checked(ImageModerator(FakeImageBackend(error=error)).moderate(b"x" * 100))
    documents = [json.loads(line) for line in lines]
    assert total(documents, "Failures", Stage="image", Cause="Internal") == 1
    assert "a cat" not in "".join(lines)


def test_a_pipeline_result_counts_its_status_stages_and_images() -> None:
    """A run: Count by status, latency per stage, images by status."""
    observer, lines = emf()
    result = pipeline_result()
    observer.pipeline_ran(result)
    documents = [json.loads(line) for line in lines]
    for document in documents:
        check_emf(document)
    assert total(documents, "Count", Stage="pipeline", Status="ok") == 1
    assert {d["Stage"] for d in documents} >= {"pipeline.prompt", "pipeline.generate"}
    assert total(documents, "Images", ImageStatus="safe") == 2
    assert "lake" not in "".join(lines)


def test_a_failed_generation_counts_under_its_cause() -> None:
    """A generation that failed is a Failures count at Stage=generate."""
    down = ServiceUnavailableError("down", service="sagemaker-runtime", operation="Op", code="X1")
    result = Pipeline(None, FakeGenerator(error=down), ImageModerator(FakeImageBackend())).run("x")
    observer, lines = emf()
    observer.pipeline_ran(result)
    documents = [json.loads(line) for line in lines]
    assert total(documents, "Failures", Stage="generate", Cause="X1") == 1
    assert total(documents, "Count", Stage="pipeline", Status="failed") == 1


def test_a_stream_gets_one_line_per_document() -> None:
    """Given a stream, each document is one JSON line ending in a newline."""
    stream = io.StringIO()
    observer = CloudWatchEMFObserver(stream, clock=lambda: 1.0)
    observer.prompt_checked(prompt_verdict())
    text = stream.getvalue()
    assert text.endswith("\n")
    parsed = [json.loads(line) for line in text.splitlines()]
    assert parsed == observer.documents("prompt_checked", prompt_verdict())


def test_standard_output_is_the_default(capsys: pytest.CaptureFixture[str]) -> None:
    """Without write, documents go to standard output (what Lambda ships to CloudWatch)."""
    CloudWatchEMFObserver().image_checked(image_verdict())
    for line in capsys.readouterr().out.splitlines():
        check_emf(json.loads(line))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"namespace": ""}, "namespace"),
        ({"namespace": "x" * 256}, "namespace"),
        ({"namespace": "safe\u00e9gen"}, "namespace"),
        ({"namespace": "AWS/Bedrock"}, "reserved"),
        ({"dimensions": {"Stage": "x"}}, "sets itself"),
        ({"dimensions": {"Count": "api"}}, "metric safegen writes"),
        ({"dimensions": {"Latency": "eu"}}, "metric safegen writes"),
        ({"dimensions": {"Failures": "x"}}, "metric safegen writes"),
        ({"dimensions": {":x": "y"}}, "dimension name"),
        ({"dimensions": {"Service": "caf\u00e9"}}, "printable ASCII"),
        ({"dimensions": {"Service": " "}}, "printable ASCII"),
        ({"dimensions": {"Service": "x" * 1025}}, "printable ASCII"),
        ({"dimensions": {f"D{i}": "v" for i in range(28)}}, "at most 27"),
        ({"dimensions": ["Service"]}, "mapping"),
        ({"write": 3}, "write"),
    ],
)
def test_settings_cloudwatch_would_refuse_are_refused(
    options: dict[str, Any], message: str
) -> None:
    """A namespace or dimension CloudWatch would drop is a ConfigurationError when built."""
    with pytest.raises(ConfigurationError, match=message):
        CloudWatchEMFObserver(**options)


def test_the_limits_themselves_are_accepted() -> None:
    """255 namespace characters, 27 dimensions of our own and 1,024-character values pass."""
    dimensions = {f"D{i}": "v" * 1024 for i in range(27)}
    observer, lines = emf(namespace="n" * 255, dimensions=dimensions)
    observer.prompt_checked(prompt_verdict())
    for line in lines:
        document = json.loads(line)
        check_emf(document)
        sets = document["_aws"]["CloudWatchMetrics"][0]["Dimensions"]
        assert max(len(s) for s in sets) <= 30


def test_dimension_values_from_verdicts_are_made_valid() -> None:
    """A label or check named outside printable ASCII still yields a valid dimension value."""
    verdict = PromptVerdict(
        Action.REVIEW,
        (PromptFinding("custom", "caf\u00e9\n", 60.0, Action.REVIEW),),
        (CheckResult("custom", CheckStatus.OK, 0.1),),
    )
    observer, lines = emf()
    observer.prompt_checked(verdict)
    for line in lines:
        check_emf(json.loads(line))
    assert total([json.loads(x) for x in lines], "Findings", Label="caf\\xe9?") == 1


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_emf_documents_are_valid_count_everything_and_quote_nothing(data: st.DataObject) -> None:
    """For any verdicts: valid EMF, counts add up, and the prompt is in no document."""
    secret = data.draw(secret_prompts)
    prompts = data.draw(st.lists(observed_prompt_verdicts(secret), max_size=3))
    images = data.draw(st.lists(observed_image_verdicts(secret), max_size=3))
    observer, lines = emf()
    for verdict in prompts:
        observer.prompt_checked(verdict)
    for image in images:
        observer.image_checked(image)
    assert all(secret not in line for line in lines)
    documents = [json.loads(line) for line in lines]
    for document in documents:
        check_emf(document)
    assert total(documents, "Count", Stage="prompt") == len(prompts)
    assert total(documents, "Count", Stage="prompt.check") == sum(len(v.checks) for v in prompts)
    assert total(documents, "Findings", Stage="prompt") == sum(len(v.findings) for v in prompts)
    assert total(documents, "Failures", Stage="prompt.check") == sum(len(v.failed) for v in prompts)
    assert total(documents, "Count", Stage="image") == len(images)
    assert total(documents, "Failures", Stage="image") == sum(i.failed for i in images)
    violations = sum(len(i.decision.violations) for i in images if i.decision is not None)
    assert total(documents, "Findings", Stage="image") == violations
    for action in Action:
        expected = sum(v.action is action for v in prompts)
        assert total(documents, "Count", Stage="prompt", Action=action.value) == expected


# -- OpenTelemetry ------------------------------------------------------------------------------


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    yield exporter
    exporter.clear()


def otel(exporter: InMemorySpanExporter) -> OpenTelemetryObserver:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return OpenTelemetryObserver(tracer_provider=provider, clock=lambda: END)


def attr(span: ReadableSpan, key: str) -> Any:
    """Return a span's attribute *key*."""
    return dict(span.attributes or {})[key]


def start_time(span: ReadableSpan) -> int:
    assert span.start_time is not None
    return span.start_time


def end_time(span: ReadableSpan) -> int:
    assert span.end_time is not None
    return span.end_time


def by_name(spans: tuple[ReadableSpan, ...], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


def test_a_prompt_verdict_is_a_span_with_a_child_per_check(
    exporter: InMemorySpanExporter,
) -> None:
    """The prompt span ends now and lasts the checks' time; each check a child, laid in order."""
    otel(exporter).prompt_checked(prompt_verdict())
    spans = exporter.get_finished_spans()
    (prompt,) = by_name(spans, "safegen.prompt")
    checks = by_name(spans, "safegen.prompt.check")
    assert end_time(prompt) == END
    assert start_time(prompt) == END - 501_000_000
    assert [attr(c, "safegen.check.name") for c in checks] == [
        "rules",
        "comprehend-toxicity",
        "custom",
    ]
    assert all(c.parent is not None and c.parent.span_id == prompt.context.span_id for c in checks)
    assert start_time(checks[0]) == start_time(prompt)
    assert start_time(checks[1]) == end_time(checks[0])
    assert attr(prompt, "safegen.action") == "block"
    assert list(attr(prompt, "safegen.finding.labels")) == ["rules:violence", "INSULT"]
    assert list(attr(prompt, "safegen.finding.scores")) == [100.0, 81.5]
    failed = checks[2]
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.status.description == "ThrottlingException"
    assert attr(failed, "safegen.failure.cause") == "ThrottlingException"


def test_checks_that_ran_at_once_all_start_with_their_prompt(
    exporter: InMemorySpanExporter,
) -> None:
    """When the checks' times add up to more than the verdict's, they ran in parallel."""
    verdict = Timed(**attrs.asdict(prompt_verdict(), recurse=False), seconds=0.3)
    otel(exporter).prompt_checked(verdict)
    spans = exporter.get_finished_spans()
    (prompt,) = by_name(spans, "safegen.prompt")
    assert start_time(prompt) == END - 300_000_000
    for check in by_name(spans, "safegen.prompt.check"):
        assert start_time(check) == start_time(prompt)
        assert end_time(check) <= END


def test_policy_hash_and_version_are_attributes_when_the_verdict_has_them(
    exporter: InMemorySpanExporter,
) -> None:
    """``policy_sha256`` / ``policy_version`` on a verdict become span attributes."""
    verdict = attrs.evolve(prompt_verdict(), policy_sha256="ab" * 32, policy_version="v3")
    otel(exporter).prompt_checked(verdict)
    (prompt,) = by_name(exporter.get_finished_spans(), "safegen.prompt")
    assert attr(prompt, "safegen.policy.sha256") == "ab" * 32
    assert attr(prompt, "safegen.policy.version") == "v3"


def test_an_image_verdict_is_a_span_with_labels_and_versions(
    exporter: InMemorySpanExporter,
) -> None:
    """Labels with confidences, violations, backend and model version; no status when judged."""
    otel(exporter).image_checked(image_verdict())
    (image,) = exporter.get_finished_spans()
    assert image.name == "safegen.image"
    assert list(attr(image, "safegen.labels")) == ["Explicit"]
    assert list(attr(image, "safegen.label_confidences")) == [90.0]
    assert list(attr(image, "safegen.violations")) == ["Explicit"]
    assert attr(image, "safegen.backend") == "rekognition"
    assert attr(image, "safegen.model_version") == "7.0"
    assert image.status.status_code is StatusCode.UNSET


def test_a_pipeline_run_is_a_tree_of_its_stages(exporter: InMemorySpanExporter) -> None:
    """A pipeline -> prompt (-> checks), generate, moderate (-> one image span per image)."""
    otel(exporter).pipeline_ran(pipeline_result())
    spans = exporter.get_finished_spans()
    (root,) = by_name(spans, "safegen.pipeline")
    ids = {s.context.span_id: s for s in spans}

    def parent(span: ReadableSpan) -> str:
        assert span.parent is not None
        return ids[span.parent.span_id].name

    assert root.parent is None
    assert end_time(root) == END
    assert [parent(s) for s in by_name(spans, "safegen.prompt")] == ["safegen.pipeline"]
    assert [parent(s) for s in by_name(spans, "safegen.generate")] == ["safegen.pipeline"]
    assert [parent(s) for s in by_name(spans, "safegen.image")] == ["safegen.moderate"] * 2
    assert [parent(s) for s in by_name(spans, "safegen.prompt.check")] == ["safegen.prompt"]
    for span in spans:
        assert start_time(root) <= start_time(span) <= end_time(span) <= end_time(root)
    assert attr(root, "safegen.status") == "ok"
    assert list(attr(root, "safegen.image_statuses")) == ["safe", "safe"]


def test_verdicts_already_shown_are_not_shown_again_under_the_pipeline(
    exporter: InMemorySpanExporter,
) -> None:
    """Told about the prompt and images first, the pipeline's tree does not repeat them."""
    observer = otel(exporter)
    result = pipeline_result()
    assert result.prompt is not None
    observer.prompt_checked(result.prompt)
    for attempt in result.attempts:
        for verdict in attempt.verdicts:
            observer.image_checked(verdict)
    observer.pipeline_ran(result)
    spans = exporter.get_finished_spans()
    assert len(by_name(spans, "safegen.prompt")) == 1
    assert len(by_name(spans, "safegen.image")) == 2
    assert len(by_name(spans, "safegen.generate")) == 1


def test_a_span_becomes_a_child_of_the_current_span(exporter: InMemorySpanExporter) -> None:
    """Told inside the application's own span, the verdict's span is its child."""
    observer = otel(exporter)
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with provider.get_tracer("app").start_as_current_span("request") as request:
        observer.image_checked(image_verdict())
    image = by_name(exporter.get_finished_spans(), "safegen.image")[0]
    assert image.parent is not None
    assert image.parent.span_id == request.get_span_context().span_id


def test_a_tracer_and_a_provider_together_are_refused() -> None:
    """Only one source of tracer."""
    provider = TracerProvider()
    with pytest.raises(ConfigurationError, match="tracer"):
        OpenTelemetryObserver(provider.get_tracer("x"), tracer_provider=provider)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_no_span_attribute_quotes_the_prompt(data: st.DataObject) -> None:
    """For any verdict, no span name, attribute or status holds the prompt or a matched span."""
    secret = data.draw(secret_prompts)
    exporter = InMemorySpanExporter()
    observer = otel(exporter)
    for verdict in data.draw(st.lists(observed_prompt_verdicts(secret), max_size=3)):
        observer.prompt_checked(verdict)
    for image in data.draw(st.lists(observed_image_verdicts(secret), max_size=3)):
        observer.image_checked(image)
    for span in exporter.get_finished_spans():
        told = [span.name, span.status.description or ""]
        for value in (span.attributes or {}).values():
            told += [str(v) for v in value] if isinstance(value, tuple | list) else [str(value)]
        assert all(secret not in text for text in told)


# -- off by default --------------------------------------------------------------------------------


def test_observers_import_nothing_they_are_not_configured_for() -> None:
    """safegen.observe, the EMF and recording observers leave opentelemetry and boto3 unimported."""
    code = (
        "import sys, safegen, safegen.observe as o\n"
        "o.CloudWatchEMFObserver(lambda line: None).image_checked(\n"
        "    __import__('safegen.image', fromlist=['x']).ImageVerdict("
        "safegen.Action.ALLOW, seconds=0.1))\n"
        "o.Observers([o.RecordingObserver()])\n"
        "loaded = [m for m in ('opentelemetry', 'boto3', 'botocore') if m in sys.modules]\n"
        "print(loaded)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_image_report_coverage_is_an_attribute(exporter: InMemorySpanExporter) -> None:
    """An offline backend's coverage shows on the span, so blind spots are visible."""
    report = ImageReport((), model_version="nsfw-1", coverage=("Explicit",))
    verdict = ImageVerdict(Action.ALLOW, None, report, seconds=0.01, backend="local")
    otel(exporter).image_checked(verdict)
    (image,) = exporter.get_finished_spans()
    assert list(attr(image, "safegen.coverage")) == ["Explicit"]


# -- red team 16 (#8, #9) -------------------------------------------------------------------------


def test_a_pipeline_with_one_tracing_observer_draws_one_tree(
    exporter: InMemorySpanExporter,
) -> None:
    """Observer on the Pipeline only: prompt and images are under safegen.pipeline, once each."""
    observer = otel(exporter)
    pipeline = Pipeline(
        PromptModerator(RuleFilter(["gore"])),
        FakeGenerator([make_image("PNG", (64, 64), seed=1)]),
        ImageModerator(FakeImageBackend()),
        observer=observer,
    )
    pipeline.run("a cat", images=2)
    spans = exporter.get_finished_spans()
    ids = {s.context.span_id: s for s in spans}

    def parent(span: ReadableSpan) -> str | None:
        return None if span.parent is None else ids[span.parent.span_id].name

    assert [parent(s) for s in by_name(spans, "safegen.prompt")] == ["safegen.pipeline"]
    assert [parent(s) for s in by_name(spans, "safegen.image")] == ["safegen.moderate"] * 2
    assert [parent(s) for s in spans if s.parent is None] == [None]


def test_a_service_message_that_echoes_the_prompt_stays_out_of_the_result() -> None:
    """A generator error quoting the prompt: the result's JSON has the code, not the message."""
    secret = "my neighbour Jane Doe at 12 Elm Street"
    error = ServiceUnavailableError(
        f"CUDA OOM while encoding prompt '{secret}'",
        service="sagemaker-runtime",
        operation="InvokeEndpoint",
        code="ModelError",
    )
    pipeline = Pipeline(None, FakeGenerator(error=error), ImageModerator(FakeImageBackend()))
    result = pipeline.run(secret)
    text = json.dumps(result.to_dict())
    assert "Jane Doe" not in text
    assert "sagemaker-runtime.InvokeEndpoint failed (ModelError)" in text
    assert failure_cause(result.attempts[0].error) == "ModelError"
