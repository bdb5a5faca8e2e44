"""The `safegen` command end to end, in a real process.

Real files, the real offline model, and the AWS emulator (over loopback) wherever AWS is
asked for.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from safegen.cli._common import choose_policy
from safegen.testing import AWSEmulator
from tests.synthetic import borderline, png

ROOT = Path(__file__).parent.parent
LANDSCAPE = str(ROOT / "examples" / "images" / "landscape.png")
OFFLINE_POLICY = str(ROOT / "examples" / "offline-policy.toml")
POLICY = str(ROOT / "examples" / "policy.toml")
NO_AWS = {
    # No credentials, no region, no instance metadata: nothing can reach AWS by accident.
    "AWS_ACCESS_KEY_ID": "",
    "AWS_SECRET_ACCESS_KEY": "",
    "AWS_SESSION_TOKEN": "",
    "AWS_REGION": "",
    "AWS_DEFAULT_REGION": "",
    "AWS_PROFILE": "",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
    "AWS_CONFIG_FILE": "/nonexistent",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_ENDPOINT_URL": "",
}


def safegen(
    *args: str, env: Mapping[str, str] | None = None, stdin: str | None = None, cwd: Path = ROOT
) -> subprocess.CompletedProcess[str]:
    """Run the installed command in a fresh process."""
    environment = {**os.environ, **NO_AWS, **(env or {})}
    environment = {k: v for k, v in environment.items() if v != ""}
    command = shutil.which("safegen", path=str(Path(sys.executable).parent))
    assert command is not None, "the console script is not installed"
    return subprocess.run(
        [command, *args],
        capture_output=True,
        text=True,
        env=environment,
        input=stdin,
        cwd=cwd,
        check=False,
        timeout=120,
    )


@pytest.fixture
def aws() -> Iterator[tuple[AWSEmulator, dict[str, str]]]:
    with AWSEmulator(seed=3) as emulator:
        env = {
            "AWS_ENDPOINT_URL": emulator.endpoint_url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        yield emulator, env


# -- offline ------------------------------------------------------------------------------


def test_the_readme_main_job_runs_offline() -> None:
    done = safegen("image", LANDSCAPE, "--policy", OFFLINE_POLICY)
    assert done.returncode == 0, done.stderr
    policy, first, second = done.stdout.splitlines()
    assert policy == f"policy: {OFFLINE_POLICY} (file)"
    assert first.startswith(f"ALLOW   {LANDSCAPE}  (opennsfw, ")
    assert "opennsfw cannot see" in second
    assert done.stderr == ""


def test_without_a_policy_a_harmless_picture_is_allowed_by_the_offline_preset() -> None:
    """A fresh install's first run: the offline preset, named, accepts what it cannot see."""
    done = safegen("image", LANDSCAPE, "--json")
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    assert record["path"] == LANDSCAPE
    assert record["action"] == "allow"
    assert record["policy"] == {
        "name": "offline",
        "source": "preset",
        "sha256": choose_policy("offline").sha256,
    }
    assert record["backend"] == "opennsfw"
    assert record["coverage"] == ["Explicit"]
    assert record["decision"]["not_evaluated"]["action"] == "allow"
    blind = [path[-1] for path in record["decision"]["not_evaluated"]["paths"]]
    assert "Violence" in blind
    text = safegen("image", LANDSCAPE)
    assert text.stdout.splitlines()[0] == "policy: offline (preset, the default)"
    assert text.stdout.splitlines()[1].startswith(f"ALLOW   {LANDSCAPE}  (opennsfw, ")


def test_when_what_the_model_cannot_see_decides_one_line_says_what_to_do() -> None:
    """The general preset offline: REVIEW for the gap, and a line naming the ways out."""
    done = safegen("image", LANDSCAPE, "--policy", "general")
    assert done.returncode == 1
    policy, verdict, why, hint = done.stdout.splitlines()
    assert policy == "policy: general (preset)"
    assert verdict.startswith("REVIEW  ")
    assert "opennsfw cannot see" in why
    assert hint.strip() == (
        "to accept what opennsfw cannot see: safegen policy show general > mine.toml, "
        'set not_evaluated = "allow" in it; to check it: --backend cascade or aws; '
        "or exclude those categories"
    )


def test_several_files_one_unreadable(tmp_path: Path) -> None:
    text = tmp_path / "notes.png"
    text.write_text("not a picture")
    done = safegen("image", LANDSCAPE, str(text), "--policy", OFFLINE_POLICY)
    assert done.returncode == 3  # something could not be checked
    lines = done.stdout.splitlines()[1:]
    assert lines[0].startswith("ALLOW")
    assert lines[2].startswith(f"ERROR   {text}")
    assert "not a readable image" in lines[3]
    assert done.stderr == ""


def test_errors_are_one_line_and_debug_shows_the_traceback(tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.png")
    done = safegen("image", missing)
    assert done.returncode == 3
    assert done.stdout.splitlines() == [
        "policy: offline (preset, the default)",
        f"ERROR   {missing}  (not checked, 0 ms)",
        "        could not be checked: cannot read: No such file or directory",
    ]
    assert done.stderr == ""
    bad_policy = tmp_path / "policy.toml"
    bad_policy.write_bytes(b"block_at = \xff\n")
    one_line = safegen("image", LANDSCAPE, "--policy", str(bad_policy))
    assert one_line.returncode == 3
    assert one_line.stderr.startswith("safegen: error: ")
    assert str(bad_policy) in one_line.stderr
    assert len(one_line.stderr.splitlines()) == 1
    debug = safegen("--debug", "image", LANDSCAPE, "--policy", str(bad_policy))
    assert debug.returncode == 1  # Python's own code for an uncaught exception
    assert "Traceback" in debug.stderr
    usage = safegen("image")
    assert usage.returncode == 2
    assert "usage: safegen image" in usage.stderr


def test_scan_writes_json_lines_and_resumes(tmp_path: Path) -> None:
    pictures = tmp_path / "pictures"
    (pictures / "nested").mkdir(parents=True)
    shutil.copy(LANDSCAPE, pictures / "a.png")
    shutil.copy(LANDSCAPE, pictures / "nested" / "b.png")
    (pictures / "nested" / "c.jpg").write_bytes(png(borderline(0)))
    (pictures / "readme.txt").write_text("not an image, and not named like one")
    output = tmp_path / "results.jsonl"

    first = safegen("scan", str(pictures), "-o", str(output), "--policy", OFFLINE_POLICY)
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines()[:2] == [
        f"policy: {OFFLINE_POLICY} (file)",
        f"scanned 3 images; skipped 0 already in {output}",
    ]
    assert "allow          3" in first.stdout
    records = [json.loads(line) for line in output.read_text().splitlines()]
    assert sorted(Path(r["path"]).name for r in records) == ["a.png", "b.png", "c.jpg"]

    # An interrupted run leaves a cut line; a new picture arrives: both are done next time.
    with output.open("a") as f:
        f.write('{"path": "' + str(pictures / "d.png"))
    shutil.copy(LANDSCAPE, pictures / "d.png")
    again = safegen("scan", str(pictures), "-o", str(output), "--json", "--policy", OFFLINE_POLICY)
    summary = json.loads(again.stdout)
    assert summary["scanned"] == 1
    assert summary["skipped"] == 3
    assert summary["policy"]["name"] == OFFLINE_POLICY
    assert summary["allow"] == 1
    assert again.returncode == 0
    # Another policy would skip everything unjudged: refused, in one line, nothing written.
    before = output.read_bytes()
    other = safegen("scan", str(pictures), "-o", str(output), "--policy", "general")
    assert other.returncode == 3
    assert "judged by another policy" in other.stderr
    assert output.read_bytes() == before


def test_prompt_explains_what_matched() -> None:
    done = safegen("prompt", "a ph0t0 of a n@ked person")
    assert done.returncode == 1
    assert done.stdout.splitlines()[0] == "BLOCK   (rules ok)"
    assert "found 'naked' (sexual) as \"n@ked\" at 13-18 through leetspeak" in done.stdout
    clean = safegen("prompt", "-", "--json", stdin="a watercolour of a lighthouse")
    assert clean.returncode == 0
    assert json.loads(clean.stdout)["action"] == "allow"


def test_policy_check_prints_the_thresholds_in_force() -> None:
    done = safegen("policy", "check", POLICY)
    assert done.returncode == 0, done.stderr
    rows = {re.split(r"\s{2,}", line.strip())[0]: line for line in done.stdout.splitlines()[4:]}
    assert 'labels."Explicit Nudity".block_at' in rows["Exposed Female Nipple"]
    assert 'excluded: exclude "Kissing on the Lips"' in rows["Kissing on the Lips"]
    animated = safegen("policy", "check", POLICY, "--content-type", "Animated", "--json")
    table = {tuple(row["path"]): row for row in json.loads(animated.stdout)["thresholds"]}
    assert table[("Violence",)]["block_at"] == 95
    assert table[("Violence", "Weapons")]["excluded_by"] == (
        'content_types.Animated.exclude "Weapons"'
    )


def test_a_bad_policy_is_one_located_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[labels]\n"Weapon" = 50\n')
    done = safegen("policy", "check", str(bad))
    assert done.returncode == 3
    assert done.stderr.startswith(f'safegen: error: {bad}: labels."Weapon": unknown')
    assert "'Weapons'" in done.stderr
    assert len(done.stderr.splitlines()) == 1


# -- AWS, through the emulator ---------------------------------------------------------------


def test_no_region_and_no_credentials_are_said_plainly(
    aws: tuple[AWSEmulator, dict[str, str]],
) -> None:
    no_region = safegen("image", LANDSCAPE, "--backend", "aws")
    assert no_region.returncode == 3
    assert no_region.stderr == (
        "safegen: error: no AWS region: pass --region or set AWS_DEFAULT_REGION "
        "(or use --backend local)\n"
    )
    emulator, env = aws
    no_credentials = safegen(
        "image",
        LANDSCAPE,
        "--backend",
        "aws",
        env={"AWS_ENDPOINT_URL": env["AWS_ENDPOINT_URL"], "AWS_DEFAULT_REGION": "us-east-1"},
    )
    assert no_credentials.returncode == 3
    assert "could not be checked" in no_credentials.stdout
    assert "Unable to locate credentials" in no_credentials.stdout
    assert emulator.counts("DetectModerationLabels").received == 0


def test_image_on_rekognition(aws: tuple[AWSEmulator, dict[str, str]]) -> None:
    emulator, env = aws
    response = json.loads((ROOT / "examples" / "rekognition-response.json").read_text())
    emulator.respond("DetectModerationLabels", response)
    done = safegen("image", LANDSCAPE, "--backend", "aws", "--policy", POLICY, env=env)
    assert done.returncode == 1, done.stderr
    assert done.stdout.startswith(f"policy: {POLICY} (file)\nREVIEW  {LANDSCAPE}  (rekognition, ")
    assert "Female Swimwear or Underwear at 71.3 >= 60" in done.stdout
    assert emulator.counts("DetectModerationLabels").received == 1


def test_the_cascade_asks_rekognition_only_when_the_policy_needs_it(
    aws: tuple[AWSEmulator, dict[str, str]], tmp_path: Path
) -> None:
    emulator, env = aws
    accepting = safegen(
        "image", LANDSCAPE, "--backend", "cascade", "--policy", OFFLINE_POLICY, "--json", env=env
    )
    assert accepting.returncode == 0, accepting.stderr
    assert json.loads(accepting.stdout)["backend"] == "opennsfw"
    assert emulator.counts("DetectModerationLabels").received == 0

    strict = safegen("image", LANDSCAPE, "--backend", "cascade", "--json", env=env)
    record = json.loads(strict.stdout)
    assert record["backend"] == "rekognition"
    assert record["escalation"].startswith("the policy needs what opennsfw cannot see")
    assert record["action"] == "allow"  # the emulator finds nothing by default
    assert strict.returncode == 0
    assert emulator.counts("DetectModerationLabels").received == 1


def test_prompt_with_comprehend(aws: tuple[AWSEmulator, dict[str, str]]) -> None:
    emulator, env = aws
    done = safegen("prompt", "a lighthouse at dusk", "--backend", "aws", env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ALLOW   (rules ok, comprehend-toxicity ok)")
    assert emulator.counts("DetectToxicContent").received == 1


def test_generate_runs_the_pipeline(
    aws: tuple[AWSEmulator, dict[str, str]], tmp_path: Path
) -> None:
    import base64

    emulator, env = aws
    picture = base64.b64encode(Path(LANDSCAPE).read_bytes()).decode()
    emulator.respond("InvokeEndpoint", {"generated_images": [picture], "prompt": "x"})
    out = tmp_path / "out"
    done = safegen(
        "generate", "a lighthouse", "--endpoint", "sd-endpoint", "--out", str(out), env=env
    )
    assert done.returncode == 0, done.stderr + done.stdout
    assert done.stdout.startswith("policy: general (preset, the default)\nOK")
    saved = out / "image-1.png"
    assert saved.read_bytes() == Path(LANDSCAPE).read_bytes()
    assert emulator.counts("InvokeEndpoint").received == 1
    assert emulator.counts("DetectModerationLabels").received == 1


def test_a_missing_endpoint_is_said_plainly() -> None:
    # The emulator serves any endpoint name; this is what SageMaker says for a missing one.
    from safegen.aws._errors import translate
    from safegen.cli._common import describe

    error = ClientError(
        {"Error": {"Code": "ValidationError", "Message": "Endpoint sd of account 1 not found."}},
        "InvokeEndpoint",
    )
    line = describe(translate(error, service="sagemaker-runtime", operation="InvokeEndpoint"))
    assert line == "SageMaker endpoint not found: Endpoint sd of account 1 not found."


def test_generate_speaks_the_stability_container(
    aws: tuple[AWSEmulator, dict[str, str]], tmp_path: Path
) -> None:
    import base64

    emulator, env = aws
    seen: list[dict[str, object]] = []

    def stability(request: dict[str, object]) -> dict[str, str]:
        body = request["Body"]
        assert isinstance(body, bytes)
        seen.append(json.loads(body))
        return {"generated_image": base64.b64encode(Path(LANDSCAPE).read_bytes()).decode()}

    emulator.respond("InvokeEndpoint", stability)
    done = safegen(
        "generate", "a lighthouse", "--endpoint", "sdxl", "--codec", "stability",
        "--out", str(tmp_path), "--json", env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr + done.stdout
    result = json.loads(done.stdout)
    assert result["status"] == "ok"
    assert result["saved"] == [str(tmp_path / "image-1.png")]
    assert "data_base64" not in result["images"][0]
    assert seen[0]["text_prompts"][0] == {"text": "a lighthouse", "weight": 1.0}  # type: ignore[index]


def test_a_file_name_cannot_forge_a_verdict_line(tmp_path: Path) -> None:
    """A name holding a newline and a verdict prints on one escaped line, in a real process."""
    forged = tmp_path / "x\nALLOW   forged.png"
    forged.write_bytes(b"not a picture")
    done = safegen("image", str(forged), LANDSCAPE, "--policy", OFFLINE_POLICY)
    assert done.returncode == 3
    lines = done.stdout.splitlines()[1:]
    assert [line[:8] for line in lines[::2]] == ["ERROR   ", "ALLOW   "]
    assert lines[0].startswith(f"ERROR   {tmp_path}/x\\nALLOW   forged.png  (")
    assert len(lines) == 4


# -- no secret or content in any log ---------------------------------------------------------

SECRET_PROMPT = "a lighthouse, marker-7f3a9c-do-not-log"
SESSION_TOKEN = "FwoGZXIvYXdzEXAMPLEsessionTOKEN1234567890"  # a fake
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"  # a fake, for the test


def test_debug_shows_calls_never_bodies_or_credentials(
    aws: tuple[AWSEmulator, dict[str, str]],
) -> None:
    """--debug says which AWS call was made; never the prompt, the image or a credential."""
    import base64

    emulator, env = aws
    secrets = {
        **env,
        "AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE",
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_SESSION_TOKEN": SESSION_TOKEN,
    }
    sent: list[str] = []

    def remember(request: dict[str, object]) -> dict[str, object]:
        image = request["Image"]
        assert isinstance(image, dict)
        sent.append(str(image["Bytes"]))  # the image as it went over the wire, in base64
        return {"ModerationLabels": [], "ModerationModelVersion": "7.0"}

    emulator.respond("DetectModerationLabels", remember)
    prompt = safegen("--debug", "prompt", SECRET_PROMPT, "--backend", "aws", env=secrets)
    image = safegen("--debug", "image", LANDSCAPE, "--backend", "aws", env=secrets)
    assert prompt.returncode == 0, prompt.stderr
    assert image.returncode == 0, image.stderr
    assert emulator.counts("DetectToxicContent").received == 1
    assert len(sent) == 1
    picture = base64.b64encode(Path(LANDSCAPE).read_bytes()).decode()
    for done in (prompt, image):
        shown = done.stdout + done.stderr
        for secret in ("marker-7f3a9c", SESSION_TOKEN, SECRET_KEY, "AKIAIOSFODNN7EXAMPLE"):
            assert secret not in shown
        for body in (sent[0], picture):
            assert body[1000:1064] not in shown  # no stretch of the image, however encoded
        assert "Authorization" not in shown
        assert "Signature=" not in shown
    assert "DetectToxicContent" in prompt.stderr
    assert "DetectModerationLabels" in image.stderr


# -- presets, credentials, closed pipes (issue 12) -------------------------------------------


def test_a_user_starts_from_a_preset_shown_to_a_file(tmp_path: Path) -> None:
    """`policy show general > mine.toml`, then `--policy mine.toml` and `policy check` work."""
    shown = safegen("policy", "show", "general")
    assert shown.returncode == 0, shown.stderr
    mine = tmp_path / "mine.toml"
    mine.write_text(shown.stdout.replace('not_evaluated = "review"', 'not_evaluated = "allow"'))
    checked = safegen("policy", "check", str(mine))
    assert checked.returncode == 0, checked.stderr
    done = safegen("image", LANDSCAPE, "--policy", str(mine))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == f"policy: {mine} (file)"
    assert done.stdout.splitlines()[1].startswith("ALLOW   ")


def _closed_stdout(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[bytes]:
    """Run safegen with standard output a pipe whose reading end is already closed."""
    read, write = os.pipe()
    os.close(read)  # every write now fails with EPIPE: no race with the reader
    command = shutil.which("safegen", path=str(Path(sys.executable).parent))
    assert command is not None
    environment = {k: v for k, v in {**os.environ, **NO_AWS}.items() if v != ""}
    try:
        return subprocess.run(
            [command, *args],
            stdout=write,
            stderr=subprocess.PIPE,
            env=environment,
            cwd=cwd,
            check=False,
            timeout=120,
        )
    finally:
        os.close(write)


@pytest.mark.parametrize(
    "args",
    [("policy", "show", "general"), ("policy", "list"), ("image", LANDSCAPE)],
    ids=["show", "list", "image"],
)
def test_a_closed_pipe_ends_silently(args: tuple[str, ...]) -> None:
    """`| head -1` closing the pipe: exit 141, nothing on standard error, no traceback."""
    done = _closed_stdout(*args)
    assert done.stderr == b""
    assert done.returncode == 141


def test_a_scan_into_a_closed_pipe_stops_before_checking_anything(tmp_path: Path) -> None:
    """Nobody reads: the first line (the policy) ends the run, before any image; no traceback."""
    pictures = tmp_path / "pictures"
    pictures.mkdir()
    shutil.copy(LANDSCAPE, pictures / "a.png")
    output = tmp_path / "results.jsonl"
    for extra in ((), ("--json",)):
        done = _closed_stdout("scan", str(pictures), "-o", str(output), *extra)
        assert done.stderr == b""
        assert done.returncode == 141
        assert not output.exists() or output.read_bytes() == b""


def test_generate_without_credentials_exits_3_naming_the_cause(tmp_path: Path) -> None:
    """No AWS credentials anywhere: exit 3, one line saying so, nothing saved or sent."""
    done = safegen(
        "generate", "a lake", "--endpoint", "sd", "--out", str(tmp_path / "out"),
        env={"AWS_DEFAULT_REGION": "us-east-1"},
    )  # fmt: skip
    assert done.returncode == 3
    assert done.stdout == ""
    assert done.stderr.startswith("safegen: error: no usable AWS credentials: ")
    assert len(done.stderr.splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_generate_whose_prompt_check_cannot_run_exits_3(
    aws: tuple[AWSEmulator, dict[str, str]], tmp_path: Path
) -> None:
    """Comprehend failing is 'could not check' (3) with the check's error, not a rejection (1)."""
    from safegen.testing import Faults

    emulator, env = aws
    emulator.faults("DetectToxicContent", Faults(script=("error",) * 10))
    done = safegen("generate", "a lighthouse", "--endpoint", "sd", "--out", str(tmp_path), env=env)
    assert done.returncode == 3, done.stderr
    assert "comprehend-toxicity could not run: " in done.stdout
    assert emulator.counts("InvokeEndpoint").received == 0


def test_generate_judges_the_prompt_by_the_policys_prompt_section(
    aws: tuple[AWSEmulator, dict[str, str]], tmp_path: Path
) -> None:
    """One policy for both: the strict preset's [prompts] blocks a suggestive prompt unmade."""
    emulator, env = aws
    done = safegen(
        "generate", "a woman in a bikini", "--endpoint", "sd", "--policy", "strict",
        "--out", str(tmp_path), env=env,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    policy, status = done.stdout.splitlines()[:2]
    assert policy == "policy: strict (preset)"
    assert status.startswith("REJECTED")
    assert emulator.counts("InvokeEndpoint").received == 0


def test_generate_with_a_prompt_sent_to_review_exits_1(
    aws: tuple[AWSEmulator, dict[str, str]], tmp_path: Path
) -> None:
    """The general preset reviews a suggestive prompt: the images are made, and the exit is 1."""
    emulator, env = aws
    picture = base64.b64encode(Path(LANDSCAPE).read_bytes()).decode()
    emulator.respond("InvokeEndpoint", {"generated_images": [picture], "prompt": "x"})
    emulator.respond(
        "DetectModerationLabels", {"ModerationLabels": [], "ModerationModelVersion": "7.0"}
    )
    done = safegen(
        "generate", "a woman in a bikini", "--endpoint", "sd", "--out", str(tmp_path), env=env
    )
    assert done.returncode == 1, done.stderr
    assert "the prompt needs review: bikini" in done.stdout
