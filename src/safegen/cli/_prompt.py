"""``safegen prompt TEXT``: the forbidden-term filter, plus Comprehend with ``--backend aws``."""

from __future__ import annotations

import argparse
import sys

from safegen.cli._common import emit_json, exit_code
from safegen.cli._files import printable
from safegen.prompt import CheckStatus, PromptModerator
from safegen.text import RuleFilter


def run_prompt(args: argparse.Namespace) -> int:
    """Moderate one prompt and say what matched, where, and through which disguise."""
    text = sys.stdin.read() if args.text == "-" else args.text
    classifiers = []
    if args.backend in ("aws", "cascade"):
        from safegen.aws import ComprehendToxicity

        classifiers.append(ComprehendToxicity.from_session(region_name=args.region))
    moderator = PromptModerator(RuleFilter.default(), classifiers)
    verdict = moderator.moderate(text)
    failures = len(verdict.failed)
    if args.json:
        emit_json(verdict.to_dict())
        return exit_code([verdict.action], failures=failures)
    checks = ", ".join(f"{c.name} {c.status.value}" for c in verdict.checks)
    print(f"{verdict.action.value.upper():<7} ({checks})")
    for finding in verdict.findings:
        where = ""
        if finding.span is not None:
            start, end = finding.span
            where = f' as "{printable(text[start:end])}" at {start}-{end}'
        disguise = ""
        if finding.match is not None and finding.match.transforms:
            disguise = " through " + ", ".join(sorted(t.value for t in finding.match.transforms))
        print(
            f"        {finding.action.value}: {finding.source} found {finding.label!r}"
            f"{f' ({finding.category})' if finding.category else ''}{where}{disguise}"
        )
    for check in verdict.checks:
        if check.status is CheckStatus.FAILED:
            print(f"        {check.name} could not run: {printable(str(check.error))}")
    return exit_code([verdict.action], failures=failures)
