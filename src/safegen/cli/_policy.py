"""``safegen policy check FILE`` and ``safegen evaluate POLICY RESPONSE``."""

from __future__ import annotations

import argparse
import json

from safegen.cli._common import (
    EXIT_ALLOWED,
    emit_json,
    exit_code,
    load_policy,
    read_text_input,
)
from safegen.cli._files import CommandError, printable
from safegen.policy import EffectiveThresholds


def run_check(args: argparse.Namespace) -> int:
    """Validate a policy file and print the thresholds in force for every category."""
    policy = load_policy(args.file)
    assert policy is not None  # the argument is required
    content_types = [args.content_type] if args.content_type else []
    rows = [policy.thresholds_for(c, content_types) for c in policy.taxonomy]
    if args.json:
        emit_json(
            {
                "policy": args.file,
                "valid": True,
                "not_evaluated": policy.not_evaluated.value,
                "content_type": args.content_type,
                "thresholds": [_row_dict(row) for row in rows],
            }
        )
        return EXIT_ALLOWED
    where = f" with {printable(args.content_type)} reported" if args.content_type else ""
    print(f"{printable(args.file)}: valid. Thresholds in force{where} (0-100; a label at or above")
    print("block_at blocks, at or above review_at goes to review):")
    print()
    width = max(2 * (len(row.category.path) - 1) + len(row.category.name) for row in rows)
    print(f"{'label':<{width}}  {'review_at':>9}  {'block_at':>8}  set by (block_at; review_at)")
    for row in rows:
        name = "  " * (len(row.category.path) - 1) + row.category.name
        if row.excluded_by is not None:
            print(f"{name:<{width}}  {'-':>9}  {'-':>8}  excluded: {row.excluded_by}")
            continue
        review = "-" if row.review_at == row.block_at else f"{row.review_at:g}"
        sources = str(row.block_source)
        if review != "-" and row.review_source != row.block_source:
            sources += f"; {row.review_source}"
        print(f"{name:<{width}}  {review:>9}  {row.block_at:>8g}  {sources}")
    print()
    print(f"not evaluated by a backend: {policy.not_evaluated.value} (not_evaluated)")
    for name in policy.content_types:
        if name != args.content_type:
            shown = printable(name)
            print(f"content type {shown} has its own rule: --content-type {shown} shows it")
    return EXIT_ALLOWED


def _row_dict(row: EffectiveThresholds) -> dict[str, object]:
    return {
        "path": list(row.category.path),
        "block_at": row.block_at,
        "review_at": row.review_at,
        "block_source": str(row.block_source),
        "review_source": str(row.review_source),
        "excluded_by": None if row.excluded_by is None else str(row.excluded_by),
    }


def _shown(name: str) -> str:
    return "standard input" if name == "-" else f"response file {printable(name)}"


def run_evaluate(args: argparse.Namespace) -> int:
    """Judge a saved Rekognition response against a policy file."""
    from safegen.aws.rekognition import parse_moderation_response  # AWS code only when used

    policy = load_policy(args.policy)
    assert policy is not None  # the argument is required
    text = read_text_input(args.response, "response file")
    try:
        raw = json.loads(text)
    except RecursionError:
        raise CommandError(f"{_shown(args.response)}: not JSON (nested too deeply)") from None
    except json.JSONDecodeError as error:
        raise CommandError(f"{_shown(args.response)}: not JSON: {error}") from None
    except ValueError as error:  # e.g. an integer with too many digits
        raise CommandError(f"{_shown(args.response)}: not JSON safegen can read: {error}") from None
    response = parse_moderation_response(raw)
    decision = policy.evaluate(response.labels, response.content_types)
    if args.json:
        print(json.dumps({"model_version": response.model_version, **decision.to_dict()}, indent=2))
    else:
        model = printable(response.model_version or "unknown")
        print(f"{decision.action.value.upper()}  (model {model})")
        for reason in decision.reasons():
            print(f"  {printable(reason)}")
    return exit_code([decision.action])
