"""Tests of the error tree: one root, builtin bases where the meaning matches, drawn in the docs."""

from __future__ import annotations

import inspect

import safegen
import safegen.errors as errors


def public_errors() -> list[type[BaseException]]:
    return [
        obj
        for name in errors.__all__
        if isinstance(obj := getattr(errors, name), type) and issubclass(obj, BaseException)
    ]


def test_every_error_descends_from_safegen_error() -> None:
    """Catching SafegenError catches everything safegen raises on purpose."""
    for error in public_errors():
        assert issubclass(error, safegen.SafegenError)


def test_bad_values_are_also_value_errors() -> None:
    """A bad policy, label or response means what ValueError means, so it is one."""
    for error in (
        safegen.ConfigurationError,
        safegen.PolicyError,
        safegen.InvalidLabelError,
        safegen.MalformedResponseError,
    ):
        assert issubclass(error, ValueError)
    assert issubclass(safegen.UnknownLabelError, safegen.PolicyError)


def test_the_module_docstring_draws_every_error() -> None:
    """The tree in the docstring names each error class, so it cannot silently go stale."""
    doc = inspect.getdoc(errors) or ""
    for error in public_errors():
        assert error.__name__ in doc
