"""Sphinx configuration for safegen's documentation."""

from __future__ import annotations

import importlib.metadata

project = "safegen"
author = "The safegen developers"
copyright = "2026, The safegen developers"
release = importlib.metadata.version("safegen")
version = ".".join(release.split(".")[:2])

# Not sphinx.ext.doctest: the pages' examples run in the test suite (docs/conftest.py), and
# without it a ``testcode`` block, which that suite would not run, cannot be written.
extensions = ["sphinx.ext.autodoc"]

html_theme = "furo"
html_title = "safegen"

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented_params"
autodoc_preserve_defaults = True
autodoc_type_aliases = {
    "LabelEntries": "safegen.policy.LabelEntries",
    "ThresholdsLike": "safegen.policy.ThresholdsLike",
    "Explanation": "safegen.decision.Explanation",
}

# Docs are built with -W -n (warnings are errors, every reference must resolve). The build
# machines have no network, so intersphinx cannot fetch Python's inventory: references into
# the standard library and typing are left unlinked rather than failing the build.
nitpick_ignore_regex = [
    ("py:class", r"(collections\.abc|typing|types|os|enum|random|pathlib)\..*"),
    ("py:class", r"(Mapping|Iterable|Callable|Any|TypeAlias|Literal|Sequence|Iterator)"),
    ("py:class", r"(str|int|float|bool|dict|tuple|list|frozenset|object|None|type)"),
    ("py:class", r"(ValueError|Exception|KeyError)"),
    ("py:class", r"attr\..*"),  # attrs internals in generated signatures
    ("py:class", r"Attribute\[Any\]"),
    ("py:class", r"safegen\.policy\.(Path|Setting)"),
    # Names only for type checkers: the boto3 stubs' client classes and the aliases for how
    # policy entries may be written (their forms are described in the docstrings).
    ("py:class", r"(types_boto3_\w+\.)?\w+Client"),
    ("py:class", r"(aiobotocore\.\w+\.)?Aio(Session|Config)"),  # the aio extra's own types
    ("py:class", r"(safegen\.policy\.)?(ThresholdsLike|LabelEntries)"),
    ("py:class", r"(safegen\.image\.)?ImageSource"),  # bytes or S3Object, as documented
]
