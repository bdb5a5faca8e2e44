"""``safegen prompt TEXT``: the forbidden-term filter, plus Comprehend with ``--backend aws``.

With ``--policy``, the policy's ``[prompts]`` section judges every finding, and the output
names the categories it does not check (``not_checked``).
"""

from __future__ import annotations

import argparse
import sys

from safegen.cli._common import choose_policy, emit_json, exit_code
from safegen.cli._files import printable
from safegen.cli._policy import category_names
from safegen.decision import Action
from safegen.prompt import CheckStatus, PromptModerator
from safegen.prompt_policy import PromptPolicy
from safegen.text import RuleFilter


def not_checked(prompts: PromptPolicy) -> list[str]:
    """Name what the policy's ``[prompts]`` does not check: its categories set to "allow".

    A category whose terms all allow is named alone (``self_harm``); one whose mild terms
    only allow, with ``(mild terms)``. The image side lists what it ignores; so does this.
    """
    names = []
    for name in category_names(prompts):
        severe = prompts.judge_term(name, "severe").action is Action.ALLOW
        mild = prompts.judge_term(name, "mild").action is Action.ALLOW
        if severe and mild:
            names.append(name)
        elif mild:
            names.append(f"{name} (mild terms)")
    return names


def run_prompt(args: argparse.Namespace) -> int:
    """Moderate one prompt and say what matched, where, and through which disguise."""
    text = sys.stdin.read() if args.text == "-" else args.text
    classifiers = []
    if args.backend in ("aws", "cascade"):
        from safegen.aws import ComprehendToxicity

        classifiers.append(ComprehendToxicity.from_session(region_name=args.region))
    chosen = None
    unchecked: list[str] = []
    if getattr(args, "policy", None) is not None:
        chosen = choose_policy(args.policy)
        moderator = PromptModerator.from_policy(chosen.policy, classifiers=classifiers)
        unchecked = not_checked(chosen.policy.prompts)
    else:
        moderator = PromptModerator(RuleFilter.default(), classifiers)
    verdict = moderator.moderate(text)
    failures = len(verdict.failed)
    if args.json:
        payload = verdict.to_dict()
        if chosen is not None:
            payload["policy"] = chosen.to_dict()
            payload["not_checked"] = unchecked
        emit_json(payload)
        return exit_code([verdict.action], failures=failures)
    checks = ", ".join(f"{c.name} {c.status.value}" for c in verdict.checks)
    judged = f"; policy {chosen}" if chosen is not None else ""
    print(f"{verdict.action.value.upper():<7} ({checks}{judged})")
    for finding in verdict.findings:
        where = ""
        if finding.span is not None:
            start, end = finding.span
            where = f' as "{printable(text[start:end])}" at {start}-{end}'
        disguise = ""
        if finding.match is not None and finding.match.transforms:
            disguise = " through " + ", ".join(sorted(t.value for t in finding.match.transforms))
        reason = f"; {printable(finding.reason)}" if finding.reason else ""
        print(
            f"        {finding.action.value}: {finding.source} found {finding.label!r}"
            f"{f' ({finding.category})' if finding.category else ''}{where}{disguise}{reason}"
        )
    for check in verdict.checks:
        if check.status is CheckStatus.FAILED:
            print(f"        {check.name} could not run: {printable(str(check.error))}")
    if unchecked:
        shown = ", ".join(printable(name) for name in unchecked)
        print(f"        not checked: {shown} (allow in the policy's [prompts.categories])")
    return exit_code([verdict.action], failures=failures)
