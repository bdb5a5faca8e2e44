"""The ``safegen`` command.

``safegen evaluate POLICY RESPONSE`` judges a saved Rekognition ``DetectModerationLabels``
response (the JSON that boto3 or ``aws rekognition detect-moderation-labels`` prints) against a
policy file, and prints the decision with its reasons.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from safegen.errors import SafegenError
from safegen.policy import ModerationPolicy

__all__ = ["main"]

EXIT_OK = 0
EXIT_ERROR = 2  # argparse's own code for a usage error


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="safegen", description="Moderation for generative-image applications."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    evaluate = commands.add_parser(
        "evaluate",
        help="judge a saved Rekognition response against a policy file",
        description="Judge a saved Rekognition DetectModerationLabels response (JSON) "
        "against a policy file (TOML) and print the decision with its reasons.",
    )
    evaluate.add_argument("policy", help="the policy file (TOML)")
    evaluate.add_argument(
        "response", help="the DetectModerationLabels response (JSON); - for stdin"
    )
    evaluate.add_argument("--json", action="store_true", help="print the decision as JSON")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the process exit code."""
    args = _parser().parse_args(argv)
    try:
        return _evaluate(args.policy, args.response, as_json=args.json)
    except (SafegenError, OSError, json.JSONDecodeError) as e:
        print(f"safegen: error: {e}", file=sys.stderr)
        return EXIT_ERROR


def _evaluate(policy_path: str, response_path: str, *, as_json: bool) -> int:
    from safegen.aws.rekognition import parse_moderation_response  # AWS code only when used

    policy = ModerationPolicy.from_toml(policy_path)
    if response_path == "-":
        raw = json.load(sys.stdin)
    else:
        with open(response_path, encoding="utf-8") as f:
            raw = json.load(f)
    response = parse_moderation_response(raw)
    decision = policy.evaluate(response.labels, response.content_types)
    if as_json:
        payload = {"model_version": response.model_version, **decision.to_dict()}
        print(json.dumps(payload, indent=2))
    else:
        print(f"{decision.action.value.upper()}  (model {response.model_version or 'unknown'})")
        for reason in decision.reasons():
            print(f"  {reason}")
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover - exercised through the console script
    raise SystemExit(main())
