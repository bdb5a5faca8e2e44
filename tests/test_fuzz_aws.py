"""Fuzz the AWS adapters with answers of every shape, through botocore's real parser.

For each operation, JSON bodies (near-valid answers with one part broken, and arbitrary JSON)
are handed to a real boto3 client in place of the network. The property: the adapter either
reads a well-formed answer (judged by an oracle written here from the API reference, not from
the adapter) or raises a :class:`~safegen.SafegenError`; never anything else, and never a
report for an answer of the wrong shape, so a moderator can only ALLOW a well-formed answer.
"""

from __future__ import annotations

import base64
import json
import math
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from safegen import SafegenError
from safegen.aws import (
    TOXICITY_LABELS,
    BedrockGenerator,
    ComprehendClassifier,
    ComprehendToxicity,
    RekognitionModerator,
    SageMakerGenerator,
)
from safegen.generate import GenerationRequest

ENDPOINT = "arn:aws:comprehend:us-east-1:123456789012:document-classifier-endpoint/toxicity"
SEVEN = TOXICITY_LABELS[:-1]
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 16).decode()
JPEG = base64.b64encode(b"\xff\xd8\xff\xe0" + b"\x00" * 16).decode()
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class Wire:
    """A real client whose answers are whatever body the test sets, parsed by botocore."""

    def __init__(self, service: str) -> None:
        self.body = b"{}"
        rest = service in ("sagemaker-runtime", "bedrock-runtime")
        self.headers = {
            "Content-Type": "application/json" if rest else "application/x-amz-json-1.1"
        }
        factory: Any = boto3.client
        self.client = factory(
            service,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
        )
        self.client.meta.events.register("before-send", self._send)

    def _send(self, request: Any, **_: Any) -> AWSResponse:
        body = self.body

        class Raw:
            def stream(self, **_: Any) -> Any:
                yield body

            def read(self, *_: Any) -> bytes:
                return body

        return AWSResponse(request.url, 200, self.headers, Raw())  # type: ignore[arg-type]


# -- JSON of every kind, and near-valid answers with one part broken ---------------------------

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 200),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, 1.0, 100.0, 100.0001, -0.0, 1.0000001]),
    st.text(max_size=6),
    st.sampled_from(["", " ", "7.0", "Violence", "UNSAFE", "INSULT", "NaN"]),
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)


@st.composite
def broken(draw: st.DrawFn, value: Any) -> Any:
    """*value* with at most one node replaced, removed, or set to null, anywhere in it."""
    if isinstance(value, dict) and value and draw(st.booleans()):
        key = draw(st.sampled_from(sorted(value)))
        action = draw(st.sampled_from(["descend", "descend", "delete", "replace", "null"]))
        copy = dict(value)
        if action == "delete":
            del copy[key]
        elif action == "null":
            copy[key] = None
        elif action == "replace":
            copy[key] = draw(json_values)
        else:
            copy[key] = draw(broken(value[key]))
        return copy
    if isinstance(value, list) and value and draw(st.booleans()):
        index = draw(st.integers(0, len(value) - 1))
        copy_list = list(value)
        action = draw(st.sampled_from(["descend", "delete", "replace", "duplicate"]))
        if action == "delete":
            del copy_list[index]
        elif action == "replace":
            copy_list[index] = draw(json_values)
        elif action == "duplicate":
            copy_list.append(copy_list[index])
        else:
            copy_list[index] = draw(broken(value[index]))
        return copy_list
    if draw(st.integers(0, 4)) == 0:
        return draw(json_values)
    return value


def bodies(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Valid answers, answers with one part broken, and arbitrary JSON."""
    return st.one_of(valid, valid.flatmap(broken), json_values)


def encode(value: Any) -> bytes:
    return json.dumps(value, allow_nan=True).encode()


# -- the oracles: what a well-formed answer is, written from the API reference ----------------


def number(value: Any, low: float, high: float) -> bool:
    return (
        not isinstance(value, bool)
        and isinstance(value, int | float)
        and math.isfinite(value)
        and low <= value <= high
    )


def name(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def optional(item: dict[str, Any], key: str, check: Any) -> bool:
    return item.get(key) is None or check(item[key])


def good_label(item: Any) -> bool:
    return (
        isinstance(item, dict)
        and name(item.get("Name"))
        and number(item.get("Confidence"), 0, 100)
        and optional(item, "ParentName", lambda p: isinstance(p, str))
        and optional(item, "TaxonomyLevel", lambda n: type(n) is int and n >= 1)
    )


def good_content_type(item: Any) -> bool:
    return (
        isinstance(item, dict) and name(item.get("Name")) and number(item.get("Confidence"), 0, 100)
    )


def well_formed_moderation(body: Any) -> bool:
    return (
        isinstance(body, dict)
        and isinstance(body.get("ModerationModelVersion"), str)
        and isinstance(body.get("ModerationLabels"), list)
        and all(good_label(x) for x in body["ModerationLabels"])
        and optional(
            body, "ContentTypes", lambda c: isinstance(c, list) and all(map(good_content_type, c))
        )
        and optional(body, "ProjectVersion", lambda p: isinstance(p, str))
    )


def good_scores(items: Any) -> bool:
    return isinstance(items, list) and all(
        isinstance(x, dict) and isinstance(x.get("Name"), str) and number(x.get("Score"), 0, 1)
        for x in items
    )


def well_formed_toxicity(body: Any, segments: int) -> bool:
    if not isinstance(body, dict) or not isinstance(body.get("ResultList"), list):
        return False
    results = body["ResultList"]
    return len(results) == segments and all(
        isinstance(r, dict)
        and number(r.get("Toxicity"), 0, 1)
        and good_scores(r.get("Labels"))
        and set(SEVEN) <= {x["Name"] for x in r["Labels"]}
        and "TOXICITY" not in {x["Name"] for x in r["Labels"]}
        for r in results
    )


def well_formed_classification(body: Any, unsafe: str) -> bool:
    if not isinstance(body, dict):
        return False
    lists = [body[k] for k in ("Classes", "Labels") if body.get(k) is not None]
    if not all(good_scores(x) for x in lists):
        return False
    return unsafe in {x["Name"] for items in lists for x in items}


# -- valid answers --------------------------------------------------------------------------

labels = st.fixed_dictionaries(
    {"Name": st.sampled_from(["Violence", "Weapons", "Smoking", "New Label"]),
     "Confidence": st.floats(0, 100)},
    optional={"ParentName": st.sampled_from(["", "Violence"]), "TaxonomyLevel": st.integers(1, 3)},
)  # fmt: skip
moderation = st.fixed_dictionaries(
    {"ModerationModelVersion": st.just("7.0"), "ModerationLabels": st.lists(labels, max_size=3)},
    optional={"ContentTypes": st.lists(st.fixed_dictionaries(
        {"Name": st.sampled_from(["Animated", "Illustrated"]), "Confidence": st.floats(0, 100)}),
        max_size=2)},
)  # fmt: skip
score = st.floats(0, 1)
toxic_result = st.builds(
    lambda scores, toxicity: {
        "Labels": [{"Name": n, "Score": s} for n, s in zip(SEVEN, scores, strict=True)],
        "Toxicity": toxicity,
    },
    st.lists(score, min_size=7, max_size=7),
    score,
)
toxicity = st.builds(lambda r: {"ResultList": [r]}, toxic_result)
classification = st.builds(
    lambda key, unsafe, safe: {
        key: [{"Name": "UNSAFE", "Score": unsafe}, {"Name": "SAFE", "Score": safe}]
    },
    st.sampled_from(["Classes", "Labels"]),
    score,
    score,
)
txt2img = st.builds(lambda n: {"generated_images": [JPEG] * n, "prompt": "x"}, st.integers(0, 3))
nova = st.fixed_dictionaries(
    {"images": st.lists(st.just(PNG), max_size=3)},
    optional={"error": st.none() | st.text(max_size=4)},
)


def safegen_errors_only(run: Any) -> Any:
    """Run *run*; return its result, or None when it raised a SafegenError (anything else fails)."""
    try:
        return run()
    except SafegenError:
        return None


@pytest.fixture(scope="module")
def wires() -> dict[str, Wire]:
    return {
        s: Wire(s) for s in ("rekognition", "comprehend", "sagemaker-runtime", "bedrock-runtime")
    }


@FUZZ
@given(body=bodies(moderation))
@example(body={"ModerationModelVersion": "7.0"})
@example(body={"ModerationModelVersion": "7.0", "ModerationLabels": None})
@example(
    body={
        "ModerationModelVersion": "7.0",
        "ModerationLabels": [{"Name": "Weapons", "Confidence": float("nan")}],
    }
)
def test_moderation_answers_are_read_only_when_well_formed(
    wires: dict[str, Wire], body: Any
) -> None:
    """DetectModerationLabels: a report comes back only for a well-formed answer."""
    wire = wires["rekognition"]
    wire.body = encode(body)
    backend = RekognitionModerator(wire.client)
    report = safegen_errors_only(lambda: backend.detect(b"\xff\xd8\xff", min_confidence=0))
    if report is not None:
        assert well_formed_moderation(body)
        assert len(report.labels) == len(body["ModerationLabels"])
    elif isinstance(body, dict):
        assert not well_formed_moderation(body)


@FUZZ
@given(body=bodies(toxicity))
@example(body={"ResultList": []})
@example(body={"ResultList": [{"Labels": [], "Toxicity": 0.0}]})
def test_toxicity_answers_are_read_only_when_well_formed(wires: dict[str, Wire], body: Any) -> None:
    """DetectToxicContent: scores come back only from a complete answer; high ones are found."""
    wire = wires["comprehend"]
    wire.body = encode(body)
    report = safegen_errors_only(lambda: ComprehendToxicity(wire.client).classify("hello"))
    if report is not None:
        assert well_formed_toxicity(body, segments=1)
        (result,) = body["ResultList"]
        highest = max([result["Toxicity"], *(x["Score"] for x in result["Labels"])])
        assert bool(report.findings) == (highest * 100 >= 50)
    elif isinstance(body, dict):
        assert not well_formed_toxicity(body, segments=1)


@FUZZ
@given(body=bodies(classification))
@example(body={"Classes": []})
@example(body={"Labels": [{"Name": "SAFE", "Score": 0.99}]})
def test_classifier_answers_are_read_only_when_they_score_the_unsafe_class(
    wires: dict[str, Wire], body: Any
) -> None:
    """ClassifyDocument: an answer silent about UNSAFE never clears a prompt."""
    wire = wires["comprehend"]
    wire.body = encode(body)
    check = ComprehendClassifier(wire.client, ENDPOINT, unsafe_classes={"UNSAFE"})
    report = safegen_errors_only(lambda: check.classify("a prompt"))
    if report is not None:
        assert well_formed_classification(body, "UNSAFE")
        unsafe = max(
            x["Score"]
            for k in ("Classes", "Labels")
            for x in body.get(k) or ()
            if x["Name"] == "UNSAFE"
        )
        assert bool(report.findings) == (unsafe * 100 >= 50)


@FUZZ
@given(body=bodies(txt2img), images=st.integers(1, 3))
def test_sagemaker_answers_carry_exactly_the_images_asked_for(
    wires: dict[str, Wire], body: Any, images: int
) -> None:
    """InvokeEndpoint: a result is only the images asked for, each a JPEG or PNG."""
    wire = wires["sagemaker-runtime"]
    wire.body = encode(body)
    generator = SageMakerGenerator(wire.client, "sd")
    made = safegen_errors_only(
        lambda: generator.generate(GenerationRequest(prompt="x", images=images))
    )
    if made is not None:
        assert len(made.images) == images
        assert all(image.format in ("JPEG", "PNG") for image in made.images)


@FUZZ
@given(body=bodies(nova), images=st.integers(1, 3))
def test_bedrock_answers_carry_the_images_asked_for_or_say_why_not(
    wires: dict[str, Wire], body: Any, images: int
) -> None:
    """InvokeModel: fewer images than asked only with an error that becomes a finding."""
    wire = wires["bedrock-runtime"]
    wire.body = encode(body)
    generator = BedrockGenerator(wire.client, "amazon.nova-canvas-v1:0")
    made = safegen_errors_only(
        lambda: generator.generate(GenerationRequest(prompt="x", images=images))
    )
    if made is not None:
        assert len(made.images) == images or made.filtered
        assert len(made.images) <= images


@FUZZ
@given(body=json_values)
def test_any_json_is_a_safegen_error_or_a_well_formed_read_for_every_operation(
    wires: dict[str, Wire], body: Any
) -> None:
    """Arbitrary JSON, including lists, nulls and NaN, never escapes as a non-safegen error."""
    raw = encode(body)
    for wire in wires.values():
        wire.body = raw
    assert safegen_errors_only(
        lambda: RekognitionModerator(wires["rekognition"].client).detect(b"x", min_confidence=50)
    ) is None or well_formed_moderation(body)
    assert safegen_errors_only(
        lambda: ComprehendToxicity(wires["comprehend"].client).classify("x")
    ) is None or well_formed_toxicity(body, 1)
    safegen_errors_only(
        lambda: SageMakerGenerator(wires["sagemaker-runtime"].client, "sd").generate(
            GenerationRequest(prompt="x")
        )
    )
    safegen_errors_only(
        lambda: BedrockGenerator(
            wires["bedrock-runtime"].client, "stability.sd3-5-large-v1:0"
        ).generate(GenerationRequest(prompt="x"))
    )
