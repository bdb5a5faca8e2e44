"""Tests pinning the public façade: what `import safegen` exports and what it must not import."""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys

import pytest

import safegen

EXPECTED = [
    "DEFAULT_NEGATIVE_PROMPTS",
    "REKOGNITION_V7",
    "AccessDeniedError",
    "Action",
    "Attempt",
    "Box",
    "Cascade",
    "Category",
    "CheckResult",
    "CheckStatus",
    "ConfigurationError",
    "ContentFilterFinding",
    "ContentType",
    "ContentTypeMatch",
    "ContentTypeRule",
    "DeliveredImage",
    "EffectiveThresholds",
    "GeneratedImage",
    "Generation",
    "GenerationRequest",
    "GenerationRequestError",
    "Generator",
    "HumanLoop",
    "IgnoreReason",
    "IgnoredLabel",
    "ImageBackend",
    "ImageModerator",
    "ImageReport",
    "ImageStatus",
    "ImageVerdict",
    "InvalidImageError",
    "InvalidLabelError",
    "InvalidPromptError",
    "InvalidRequestError",
    "LocalModelError",
    "MalformedResponseError",
    "ModerationLabel",
    "ModerationPolicy",
    "NotEvaluated",
    "Pipeline",
    "PipelineResult",
    "PolicyDecision",
    "PolicyError",
    "PolicySource",
    "Preflight",
    "PreparedImage",
    "PromptFinding",
    "PromptModerator",
    "PromptVerdict",
    "RuleFilter",
    "RuleMatch",
    "S3Object",
    "SafegenError",
    "ServiceError",
    "ServiceUnavailableError",
    "Taxonomy",
    "Term",
    "TextClassifier",
    "TextReport",
    "Thresholds",
    "ThrottledError",
    "UnknownLabelError",
    "Violation",
    "negative_prompt",
    "redact",
]


def test_all_is_pinned() -> None:
    """Adding or removing a public name is a decision: change this list with it."""
    assert safegen.__all__ == EXPECTED


def test_all_is_sorted_constants_first() -> None:
    """Constants, then classes, each alphabetical (ruff's RUF022 order)."""
    constants = [n for n in safegen.__all__ if n.isupper()]
    others = [n for n in safegen.__all__ if not n.isupper()]
    assert safegen.__all__ == sorted(constants) + sorted(others)


def test_every_public_name_exists_and_is_documented() -> None:
    """Each exported class has a docstring; the constant is documented in the API reference."""
    for name in safegen.__all__:
        obj = getattr(safegen, name)
        if inspect.isclass(obj):
            assert inspect.getdoc(obj), name


def test_import_safegen_does_not_import_aws_code_or_pillow() -> None:
    """`import safegen` stays free of boto3, botocore and Pillow (imported when used)."""
    code = (
        "import sys, safegen, safegen.cli; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in {'boto3', 'botocore', 'PIL'}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_every_public_name_is_in_the_api_reference() -> None:
    """docs/api.rst documents each name of the façade (the docs build checks the rest)."""
    from pathlib import Path

    reference = (Path(__file__).parent.parent / "docs" / "api.rst").read_text()
    documented = {
        line.split("::")[1].strip()
        for line in reference.splitlines()
        if line.startswith(
            (".. autoclass::", ".. autoexception::", ".. autodata::", ".. autofunction::")
        )
    }
    assert set(safegen.__all__) <= documented
    local = importlib.import_module("safegen.local")
    assert set(local.__all__) <= documented


def test_the_lazy_map_matches_what_type_checkers_see() -> None:
    """Every public name resolves, from the module the TYPE_CHECKING imports name."""
    import ast
    import importlib
    from pathlib import Path

    source = Path(safegen.__file__).read_text()
    declared = {
        alias.name: node.module
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("safegen.")
        for alias in node.names
    }
    assert declared == safegen._EXPORTS
    assert set(declared) == set(safegen.__all__)
    for name, module in declared.items():
        assert getattr(safegen, name) is getattr(importlib.import_module(module), name)


def test_an_unknown_name_is_an_attribute_error() -> None:
    """The lazy façade does not invent names."""
    with pytest.raises(AttributeError, match="no attribute 'Nonsense'"):
        safegen.Nonsense  # noqa: B018
