"""Run every example in the documentation as part of the test suite.

Sybil (MIT, pure Python, no dependencies) reads each page and runs, in one namespace per page
and in page order, its ``>>>`` doctests *and* its ``.. code-block:: python`` blocks, so a
block that only reads well (a missing import, a name defined nowhere) fails here. pytest's own
``--doctest-glob`` is not used for the pages, so no doctest runs twice. TOML and JSON blocks
must parse; shell blocks are checked by ``tests/test_docs.py``.

Each page runs as a reader would run it after ``pip install safegen``, outside a clone:

* in a new empty working directory, so an example that needs a file makes it (in the block,
  or in an ``.. invisible-code-block: python`` whose comment says what it stands for), or says
  in its text that it runs from a clone and calls :func:`from_the_repository`;
* with AWS pointed nowhere: fake credentials, no configuration files, and an endpoint that
  refuses connections, so no example can reach real AWS. A page whose examples call AWS
  starts safegen's emulator for itself with :func:`aws_emulator` (the page shows that call in
  an invisible block), and its clients made by ``from_session`` talk to the emulator.

A block that cannot run offline at all is skipped with ``.. skip: next`` and a comment in the
source saying why, and its text says what it needs.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
import tomllib
from doctest import ELLIPSIS
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from _pytest._code.code import ExceptionInfo, Traceback
from _pytest.doctest import DoctestTextfile
from sybil import Example, Sybil
from sybil.integration.pytest import SybilItem
from sybil.parsers.rest import CodeBlockParser, DocTestParser, PythonCodeBlockParser, SkipParser

from safegen.testing import AWSEmulator

DOCS = Path(__file__).resolve().parent
REPOSITORY = DOCS.parent
# The repository's own top-level packages, which an installed safegen does not have.
_REPOSITORY_PACKAGES = ("tests", "examples", "benchmarks")

# The environment a page starts with: nothing from the machine's own AWS set-up survives.
_AWS_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "docs-examples",
    "AWS_SECRET_ACCESS_KEY": "docs-examples",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_ENDPOINT_URL": "http://127.0.0.1:9",  # the discard port: connection refused
    "AWS_EC2_METADATA_DISABLED": "true",
}
_AWS_CLEARED = (
    "AWS_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
)


def _set_up_page(namespace: dict[str, Any]) -> None:
    """Give the page an empty working directory, no clone, and an AWS that cannot be reached."""
    page = contextlib.ExitStack()
    namespace["_page"] = page

    environment = dict(os.environ)
    page.callback(_restore_environment, environment)
    for name in _AWS_CLEARED:
        os.environ.pop(name, None)
    os.environ.update(_AWS_ENVIRONMENT)

    # ``python -m pytest`` puts the clone on sys.path, and other tests may have imported its
    # packages: hide both, so ``import examples...`` fails here as it would outside a clone.
    page.callback(sys.path.__setitem__, slice(None), list(sys.path))
    sys.path[:] = [entry for entry in sys.path if _outside_clone(entry)]
    page.callback(_restore_repository_modules, _take_repository_modules())

    workdir = page.enter_context(tempfile.TemporaryDirectory(prefix="safegen-docs-"))
    page.callback(os.chdir, os.getcwd())
    os.chdir(workdir)

    def aws_emulator() -> AWSEmulator:
        """Start safegen's AWS emulator for the rest of the page and send AWS calls to it."""
        emulator = page.enter_context(AWSEmulator(seed=0))
        os.environ["AWS_ENDPOINT_URL"] = emulator.endpoint_url
        return emulator

    def from_the_repository() -> Path:
        """Run the rest of the page from a clone: its root as working directory and on sys.path."""
        os.chdir(REPOSITORY)
        sys.path.insert(0, str(REPOSITORY))
        return REPOSITORY

    namespace["aws_emulator"] = aws_emulator
    namespace["from_the_repository"] = from_the_repository


def _tear_down_page(namespace: dict[str, Any]) -> None:
    """Undo the page's set-up, last step first."""
    namespace["_page"].close()


def _restore_environment(environment: dict[str, str]) -> None:
    os.environ.clear()
    os.environ.update(environment)


def _take_repository_modules() -> dict[str, ModuleType]:
    """Remove the repository's own packages from ``sys.modules``, and return them."""
    names = [name for name in sys.modules if name.partition(".")[0] in _REPOSITORY_PACKAGES]
    return {name: sys.modules.pop(name) for name in names}


def _restore_repository_modules(modules: dict[str, ModuleType]) -> None:
    """Forget what the page imported from the repository, and bring back what was hidden."""
    _take_repository_modules()
    sys.modules.update(modules)


def _outside_clone(entry: str) -> bool:
    """Say whether a sys.path entry is not the clone's root (``""`` is the working directory)."""
    return Path(entry or os.getcwd()).resolve() != REPOSITORY


def _parses_as_toml(example: Example) -> None:
    tomllib.loads(str(example.parsed))


def _parses_as_json(example: Example) -> None:
    json.loads(str(example.parsed))


_sybil_traceback_filter = SybilItem._traceback_filter


def _traceback_filter(self: SybilItem, excinfo: ExceptionInfo[BaseException]) -> Traceback:
    """Sybil's filter, kept from failing on chained exceptions (simplistix/sybil#118).

    pytest filters the traceback of each exception in a chain; Sybil's filter assumes its own
    frame is in every one, and raises ``IndexError`` (an INTERNALERROR hiding the failing
    example) on a chained exception's shorter traceback. Those are shown unfiltered.
    """
    try:
        return _sybil_traceback_filter(self, excinfo)
    except IndexError:
        return excinfo.traceback


SybilItem._traceback_filter = _traceback_filter  # type: ignore[method-assign]

pytest_collect_file = Sybil(
    parsers=[
        DocTestParser(optionflags=ELLIPSIS),  # pytest's doctest default
        PythonCodeBlockParser(),
        CodeBlockParser(language="toml", evaluator=_parses_as_toml),
        CodeBlockParser(language="json", evaluator=_parses_as_json),
        SkipParser(),
    ],
    patterns=["*.rst"],
    setup=_set_up_page,
    teardown=_tear_down_page,
).pytest()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Drop pytest's own doctests of a page named on the command line: Sybil runs them.

    pytest collects a ``.rst`` file given explicitly (``pytest docs/images.rst``) as a doctest
    file whatever ``--doctest-glob`` says; without this its doctests would run twice, the
    second time without the page's code blocks and set-up.
    """
    doubled = [item for item in items if _is_page_doctest(item)]
    if doubled:
        config.hook.pytest_deselected(items=doubled)
        items[:] = [item for item in items if not _is_page_doctest(item)]


def _is_page_doctest(item: pytest.Item) -> bool:
    return isinstance(item.parent, DoctestTextfile) and item.path.parent == DOCS
