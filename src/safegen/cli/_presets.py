"""``safegen policy list`` and ``safegen policy show NAME``: the presets shipped with safegen."""

from __future__ import annotations

import argparse
import sys

from safegen import presets
from safegen.cli._common import DEFAULT_PRESETS, EXIT_ALLOWED, emit_json


def run_list(args: argparse.Namespace) -> int:
    """Print every preset's name and one-line description."""
    defaults = {
        name: [b for b, n in DEFAULT_PRESETS.items() if n == name] for name in presets.names()
    }
    if args.json:
        for name in presets.names():
            emit_json(
                {"name": name, "description": presets.describe(name), "default_for": defaults[name]}
            )
        return EXIT_ALLOWED
    width = max(len(name) for name in presets.names())
    for name in presets.names():
        print(f"{name:<{width}}  {presets.describe(name)}")
    print()
    print("safegen policy show NAME prints one as a policy file to start your own from;")
    print("--policy NAME uses it. Without --policy: offline with --backend local, else general.")
    return EXIT_ALLOWED


def run_show(args: argparse.Namespace) -> int:
    """Print a preset as its policy file (TOML, comments included), to start your own from.

    :raises PolicyError: the name is not a preset (the message suggests the closest).
    """
    sys.stdout.write(presets.text(args.name))
    return EXIT_ALLOWED
