"""Tests of the `safegen` command."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from safegen.cli import main

EXAMPLES = Path(__file__).parent.parent / "examples"
POLICY = str(EXAMPLES / "policy.toml")
RESPONSE = str(EXAMPLES / "rekognition-response.json")


def test_evaluate_prints_the_decision_and_its_reasons(capsys: pytest.CaptureFixture[str]) -> None:
    """The README's main job: REVIEW, with the violation and every ignored label explained."""
    assert main(["evaluate", POLICY, RESPONSE]) == 1  # REVIEW: something was flagged
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "REVIEW  (model 7.0)"
    assert "  content type Animated at 88.4 >= 80: its rule applies" in lines
    assert (
        "  review: Swimwear or Underwear / Female Swimwear or Underwear at 71.3 >= 60 "
        '(labels."Female Swimwear or Underwear".review_at)'
    ) in lines
    assert any('excluded (exclude "Kissing on the Lips")' in line for line in lines)
    assert any('excluded (content_types.Animated.exclude "Weapons")' in line for line in lines)


def test_evaluate_json_is_the_decisions_stable_form(capsys: pytest.CaptureFixture[str]) -> None:
    """--json prints the decision's to_dict() plus the model version."""
    assert main(["evaluate", POLICY, RESPONSE, "--json"]) == 1
    payload = json.loads(capsys.readouterr().out)
    assert payload["action"] == "review"
    assert payload["model_version"] == "7.0"
    assert [v["label"]["name"] for v in payload["violations"]] == ["Female Swimwear or Underwear"]


def test_evaluate_reads_the_response_from_stdin(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`-` reads the response from standard input, for piping from the AWS CLI."""
    monkeypatch.setattr(sys, "stdin", io.StringIO(Path(RESPONSE).read_text()))
    assert main(["evaluate", POLICY, "-"]) == 1
    assert capsys.readouterr().out.startswith("REVIEW")


@pytest.mark.parametrize(
    ("policy_text", "response_text", "message"),
    [
        ('[labels]\n"Suggestive" = 1\n', "{}", "Rekognition v6 label"),
        ("block_at = 50\n", "not json", "Expecting value"),
        ("block_at = 50\n", '{"ModerationLabels": 3}', "ModerationLabels must be a list"),
    ],
)
def test_bad_input_exits_3_with_one_clear_line(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    policy_text: str,
    response_text: str,
    message: str,
) -> None:
    """Bad files end with exit code 3 (could not check) and one line on stderr."""
    (tmp_path / "p.toml").write_text(policy_text)
    (tmp_path / "r.json").write_text(response_text)
    assert main(["evaluate", str(tmp_path / "p.toml"), str(tmp_path / "r.json")]) == 3
    err = capsys.readouterr().err
    assert err.startswith("safegen: error: ")
    assert message in err
    assert "Traceback" not in err


def test_a_missing_file_exits_3(capsys: pytest.CaptureFixture[str]) -> None:
    """A path that does not exist is reported, not raised."""
    assert main(["evaluate", "/nonexistent/policy.toml", RESPONSE]) == 3
    assert capsys.readouterr().err == "safegen: error: no such file: /nonexistent/policy.toml\n"


def test_python_dash_m_safegen_runs_the_command() -> None:
    """`python -m safegen` is the same command as the console script."""
    done = subprocess.run(
        [sys.executable, "-m", "safegen", "evaluate", POLICY, RESPONSE],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert done.stdout.startswith("REVIEW")


def test_scan_progress_draws_on_a_terminal_only() -> None:
    import io
    from collections import Counter

    from safegen.cli._images import _Progress

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal, pipe = Terminal(), io.StringIO()
    for stream in (terminal, pipe):
        progress = _Progress(4, stream)
        for done in range(1, 5):
            progress.step(Counter(allow=done))
        progress.close()
    assert pipe.getvalue() == ""
    frames = terminal.getvalue().split("\r")
    assert frames[-1].startswith("[" + "#" * 30 + "] 4/4 ")
    assert "allow 4 review 0 block 0 error 0" in frames[-1]
