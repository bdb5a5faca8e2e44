"""Policies shipped with safegen, by name: start from one, or use it as it is.

Each preset is a commented policy file (TOML) inside the package, in the format of
``docs/policies.rst``; every choice in it says why. :func:`load` reads one as a
:class:`~safegen.ModerationPolicy`, :func:`text` returns its file (comments included) to
start your own from, and the command line takes a preset name wherever it takes a policy
file (``--policy general``, ``safegen policy show general > mine.toml``).

- ``general``: a general-audience platform. Blocks explicit, graphic and hateful content
  and sends the borderline (partial nudity, weapons, drugs) to review.
- ``strict``: a children's platform. Lower thresholds, early review, every category
  moderated, and what the backend cannot see goes to review (a person), never blocked.
- ``explicit``: explicit content only. Nothing else is moderated.
- ``offline``: the general preset with ``not_evaluated = "allow"``, so that what an offline
  model cannot see is accepted: the command line's default offline.

>>> from safegen import presets
>>> presets.names()
('explicit', 'general', 'offline', 'strict')
>>> presets.load("offline").not_evaluated
<Action.ALLOW: 'allow'>
>>> presets.load("genral")  # doctest: +ELLIPSIS
Traceback (most recent call last):
  ...
safegen.errors.PolicyError: unknown preset 'genral'; did you mean 'general'? (presets: ...)
"""

from __future__ import annotations

import difflib
import functools
import importlib.resources
import tomllib

from safegen import _numbers
from safegen.errors import PolicyError
from safegen.policy import ModerationPolicy

__all__ = ["describe", "load", "names", "text"]

_SUFFIX = ".toml"


@functools.cache
def names() -> tuple[str, ...]:
    """Return the names of the shipped presets, sorted."""
    found = (
        entry.name.removesuffix(_SUFFIX)
        for entry in importlib.resources.files(__name__).iterdir()
        if entry.name.endswith(_SUFFIX) and entry.is_file()
    )
    return tuple(sorted(found))


def _known(name: object) -> str:
    if not isinstance(name, str):
        raise PolicyError(f"preset: expected a name (str), got {_numbers.show(name)}")
    if name in names():
        return name
    close = difflib.get_close_matches(name.strip().lower(), names(), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise PolicyError(f"unknown preset {_numbers.show(name)}{hint} (presets: {', '.join(names())})")


def text(name: str) -> str:
    """Return preset *name* as its policy file: TOML, comments included.

    :raises PolicyError: *name* is not a preset; the message suggests the closest.
    """
    return _text(_known(name))


@functools.cache
def _text(name: str) -> str:
    resource = importlib.resources.files(__name__).joinpath(name + _SUFFIX)
    return resource.read_text(encoding="utf-8")


def describe(name: str) -> str:
    """Return preset *name*'s one-line description (the first line of its file).

    :raises PolicyError: *name* is not a preset; the message suggests the closest.

    >>> describe("explicit")
    'Explicit content only: blocks sexual content and exposed intimate parts, and nothing else.'
    """
    return text(name).partition("\n")[0].removeprefix("#").strip()


def load(name: str) -> ModerationPolicy:
    """Return preset *name* as a policy (frozen: the same object every time).

    :raises PolicyError: *name* is not a preset; the message suggests the closest.
    """
    return _load(_known(name))


@functools.cache
def _load(name: str) -> ModerationPolicy:
    source = _text(name)
    try:
        return ModerationPolicy.from_mapping(tomllib.loads(source))
    except PolicyError as error:  # pragma: no cover - the tests load every preset
        error.args = (f"preset {name}: {error}",)
        raise
