"""Tests pinning the public façade: what `import safegen` exports and what it must not import."""

from __future__ import annotations

import ast
import importlib
import inspect
import subprocess
import sys
from pathlib import Path

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
    "ClassifierThresholds",
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
    "PolicyConfigurable",
    "PolicyDecision",
    "PolicyError",
    "PolicySource",
    "Preflight",
    "PreparedImage",
    "PromptCategory",
    "PromptFinding",
    "PromptJudgement",
    "PromptModerator",
    "PromptPolicy",
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


# -- the import graph ------------------------------------------------------------------------


def _module_names(root: Path) -> dict[str, Path]:
    modules = {}
    for path in root.rglob("*.py"):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Every safegen module *name* imports: at the top, under TYPE_CHECKING, in functions."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            for alias in node.names:
                if f"{target}.{alias.name}" in modules:
                    found.add(f"{target}.{alias.name}")  # a submodule
                elif target == "safegen" and alias.name in safegen._EXPORTS:
                    found.add(safegen._EXPORTS[alias.name])  # through the lazy façade
                else:
                    found.add(target)
    return {module for module in found if module in modules and module != name}


def _circles(graph: dict[str, set[str]]) -> set[frozenset[str]]:
    """The strongly connected groups of more than one module (each holds a circle)."""
    reach: dict[str, set[str]] = {}
    for start in graph:
        seen, stack = set(), [start]
        while stack:
            for successor in graph[stack.pop()]:
                if successor not in seen:
                    seen.add(successor)
                    stack.append(successor)
        reach[start] = seen
    return {
        frozenset({start, *(other for other in reach[start] if start in reach[other])})
        for start in graph
        if start in reach[start]
    }


def test_no_module_imports_back_up_the_stack() -> None:
    """The safegen import graph has no circle, counting TYPE_CHECKING and function imports.

    The lazy façade (``safegen/__init__.py``) names every public module for type checkers
    and imports none of them at run time, so its own imports are left out; an import *through*
    it counts as an import of the module behind the name.
    """
    root = Path(safegen.__file__).parent
    modules = _module_names(root)
    graph = {
        name: set() if name == "safegen" else _imports(name, path, modules)
        for name, path in modules.items()
    }
    assert {"safegen.ports", "safegen.reports", "safegen.image"} <= set(graph)
    assert "safegen.reports" in graph["safegen.ports"]
    assert _circles(graph) == set()


def test_the_circle_finder_finds_circles() -> None:
    """A check that could never fail proves nothing: a made-up circle is found."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert _circles(graph) == {frozenset({"a", "b", "c"})}


def test_the_version_is_the_installed_distributions() -> None:
    """``safegen.__version__`` and ``safegen --version`` say what is installed."""
    import importlib.metadata

    from safegen.cli import main

    installed = importlib.metadata.version("safegen")
    assert safegen.__version__ == installed
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
