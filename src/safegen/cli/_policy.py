"""``safegen policy check FILE`` and ``safegen evaluate POLICY RESPONSE``."""

from __future__ import annotations

import argparse
import json

from safegen.cli._common import (
    EXIT_ALLOWED,
    choose_policy,
    emit_json,
    exit_code,
    load_policy,
    read_text_input,
)
from safegen.cli._files import CommandError, printable
from safegen.policy import EffectiveThresholds
from safegen.prompt_policy import (
    SHIPPED_CATEGORIES,
    TOXICITY_LABELS,
    ClassifierThresholds,
    PromptPolicy,
)
from safegen.text.terms import default_terms


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
                "prompts": _prompts_dict(policy.prompts),
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
    print()
    _print_prompts(policy.prompts)
    return EXIT_ALLOWED


# -- the prompt side ([prompts]) -----------------------------------------------------------------


def category_names(prompts: PromptPolicy) -> list[str]:
    """Return the shipped term categories, then the policy's own, in order."""
    return [*SHIPPED_CATEGORIES, *(c for c in prompts.categories if c not in SHIPPED_CATEGORIES)]


def _term_counts(prompts: PromptPolicy) -> dict[tuple[str, str], int]:
    """How many terms each category uses, by severity: shipped ones kept, plus its own."""
    counts: dict[tuple[str, str], int] = {}
    for text, category, severity in default_terms():
        if text.casefold() not in prompts.remove:
            counts[category, severity] = counts.get((category, severity), 0) + 1
    for term in prompts.own_terms():
        counts[term.category, term.severity] = counts.get((term.category, term.severity), 0) + 1
    return counts


def _labels_shown(prompts: PromptPolicy) -> list[str]:
    return [*TOXICITY_LABELS, *(name for name in prompts.classes if name not in TOXICITY_LABELS)]


def _prompts_dict(prompts: PromptPolicy) -> dict[str, object]:
    counts = _term_counts(prompts)
    categories = []
    for name in category_names(prompts):
        entry: dict[str, object] = {"name": name, "shipped": name in SHIPPED_CATEGORIES}
        for severity in ("severe", "mild"):
            judged = prompts.judge_term(name, severity)
            entry[severity] = {
                "action": judged.action.value,
                "source": judged.source,
                "terms": counts.get((name, severity), 0),
            }
        categories.append(entry)
    return {
        "categories": categories,
        "negated": "at most review",
        "labels": [_label_dict(prompts.thresholds_for(label)) for label in _labels_shown(prompts)],
        "other_labels": _label_dict(prompts.thresholds_for("")) | {"label": None},
        "on_failure": prompts.on_failure.value,
        "fail_open": sorted(prompts.fail_open),
        "allow": list(prompts.allow),
        "remove": list(prompts.remove),
    }


def _label_dict(row: ClassifierThresholds) -> dict[str, object]:
    return {
        "label": row.label,
        "block_at": row.block_at,
        "review_at": row.review_at,
        "block_source": row.block_source,
        "review_source": row.review_source,
    }


def _print_prompts(prompts: PromptPolicy) -> None:
    print("Prompts ([prompts]): what a term's match calls for, by category and severity")
    print('(a negated match, such as "no nudity", calls for at most review):')
    print()
    counts = _term_counts(prompts)
    names = category_names(prompts)
    width = max(len("category"), *(len(printable(n)) for n in names))
    print(
        f"{'category':<{width}}  {'severe':<6}  {'mild':<6}  {'terms':>11}  set by (severe; mild)"
    )
    for name in names:
        severe, mild = prompts.judge_term(name, "severe"), prompts.judge_term(name, "mild")
        terms = f"{counts.get((name, 'severe'), 0)}+{counts.get((name, 'mild'), 0)} mild"
        sources = (
            severe.source if severe.source == mild.source else f"{severe.source}; {mild.source}"
        )
        print(
            f"{printable(name):<{width}}  {severe.action.value:<6}  {mild.action.value:<6}  "
            f"{terms:>11}  {printable(sources)}"
        )
    print()
    print("Classifier scores (0-100; Comprehend toxicity labels and custom classes):")
    print()
    labels = _labels_shown(prompts)
    width = max(len("any other label"), *(len(printable(label)) for label in labels))
    print(f"{'label':<{width}}  {'review_at':>9}  {'block_at':>8}  set by (block_at; review_at)")
    rows = [prompts.thresholds_for(label) for label in labels]
    for row, shown in [
        *((r, printable(r.label)) for r in rows),
        (prompts.thresholds_for(""), "any other label"),
    ]:
        review = "-" if row.review_at == row.block_at else f"{row.review_at:g}"
        sources = row.block_source
        if review != "-" and row.review_source != row.block_source:
            sources += f"; {row.review_source}"
        print(f"{shown:<{width}}  {review:>9}  {row.block_at:>8g}  {printable(sources)}")
    print()
    fail_open = ", ".join(printable(n) for n in sorted(prompts.fail_open)) or "none"
    print(
        f"a check that cannot run: {prompts.on_failure.value} (on_failure); fail_open: {fail_open}"
    )
    if prompts.allow:
        print(f"never counted (allow): {', '.join(printable(a) for a in prompts.allow)}")
    if prompts.remove:
        print(f"shipped terms not used (remove): {', '.join(printable(r) for r in prompts.remove)}")


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

    chosen = choose_policy(args.policy)
    policy = chosen.policy
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
        emit_json(
            {
                "model_version": response.model_version,
                **decision.to_dict(),
                "policy": chosen.to_dict(),
            }
        )
    else:
        model = printable(response.model_version or "unknown")
        print(f"{decision.action.value.upper()}  (model {model})")
        for reason in decision.reasons():
            print(f"  {printable(reason)}")
    return exit_code([decision.action])
