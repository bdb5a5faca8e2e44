"""Fuzzing the faces: the Lambda proxy's events, printed names, and scan results files."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import tempfile
import unicodedata
from pathlib import Path
from typing import Any

import pytest
from examples.lambda_proxy import handler as proxy
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from safegen import ImageModerator, Pipeline, PromptModerator, RuleFilter
from safegen.cli import _files, _images, main
from safegen.cli._common import choose_policy, emit_json
from safegen.cli._files import printable
from safegen.decision import Action
from safegen.image import ImageVerdict
from safegen.testing import FakeGenerator, FakeImageBackend
from tests.strategies import make_image

PICTURE = make_image(seed=1)
PIPELINE = Pipeline(
    PromptModerator(rules=RuleFilter.default()),
    FakeGenerator([PICTURE]),
    ImageModerator(FakeImageBackend()),
)

# -- the Lambda proxy: any event is a 2xx or a 4xx with a JSON body, never an exception -------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
fields = st.dictionaries(
    st.sampled_from([*proxy._FIELDS, "promt", ""]),
    st.one_of(json_values, st.integers(-5, 3000), st.text(max_size=30)),
    max_size=6,
)
json_bodies = st.one_of(
    fields.map(json.dumps),
    st.builds(lambda d, p: json.dumps({"prompt": p, **d}), fields, st.text(max_size=30)),
    json_values.map(json.dumps),
    st.integers(1, 5000).map(lambda n: "[" * n + "]" * n),
)
bodies = st.one_of(
    st.none(),
    json_values,
    json_bodies,
    st.text(max_size=50),
    json_bodies.map(lambda s: base64.b64encode(s.encode("utf-8", "surrogatepass")).decode()),
    st.binary(max_size=40).map(lambda b: base64.b64encode(b).decode()),
)
events = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {},
        optional={
            "body": bodies,
            "isBase64Encoded": st.one_of(st.booleans(), json_values),
            "headers": json_values,
            "httpMethod": json_values,
        },
    ),
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(event=events)
@example(event=None)
@example(event={"body": {"prompt": "an object, not text"}})
@example(event={"body": "[" * 30_000 + "]" * 30_000})
@example(event={"body": "%%%", "isBase64Encoded": True})
@example(event={"body": '{"prompt": "a lighthouse"}'})
def test_any_event_gets_a_2xx_or_4xx_with_a_json_body(event: Any) -> None:
    """Whatever API Gateway (or anyone) sends, the answer is well-formed and never a 5xx."""
    response = proxy.handler(event, None, pipeline=PIPELINE)
    assert 200 <= response["statusCode"] < 300 or 400 <= response["statusCode"] < 500
    body = json.loads(response["body"])
    assert isinstance(body, dict)
    if response["statusCode"] >= 400 and response["statusCode"] != 422:
        assert set(body) == {"error"}


# -- printed names: nothing a terminal acts on, and distinct names stay distinct ---------------

names = st.one_of(
    st.text(),
    st.binary().map(os.fsdecode),  # names that are not UTF-8, as Python decodes them
    st.lists(
        st.sampled_from(["\n", "\r", "\x1b[2K", "\u202e", "\u2028", "\\", "ALLOW   ", "a"])
    ).map("".join),
)
_HIDDEN = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}


@given(name=names)
def test_a_printed_name_is_one_line_of_visible_text(name: str) -> None:
    """No control, format or separator character survives, and the result is valid UTF-8."""
    shown = printable(name)
    assert not any(unicodedata.category(c) in _HIDDEN for c in shown)
    assert len(shown.splitlines()) <= 1
    shown.encode("utf-8")
    if name.isprintable() and "\\" not in name:
        assert shown == name


@given(first=names, second=names)
def test_distinct_names_print_distinctly(first: str, second: str) -> None:
    """Escaping is injective: two files are never shown under one name."""
    if first != second:
        assert printable(first) != printable(second)


# -- results files: any content is resumed (repaired) or refused untouched, in one line -------

_DEFAULT = json.dumps(choose_policy(None, backend="local").to_dict()).encode()
RECORD = b'{"path": "%s", "action": "allow", "error": null, "policy": ' + _DEFAULT + b"}\n"
NOT_FINITE = [b"NaN", b"-Infinity", b"Infinity", b"1e999", b"-1e400"]
lines = st.one_of(
    st.sampled_from([b"a.png", b"b.png", b"c.png"]).map(lambda n: RECORD % n),
    st.binary(max_size=30).map(lambda b: b + b"\n"),
    st.just(b"\n"),
    st.sampled_from([b"[" * 3000 + b"\n", b"[1]\n", b'{"path": 1, "action": "allow"}\n']),
    st.sampled_from(NOT_FINITE).map(
        lambda n: b'{"path": "a.png", "action": "allow", "seconds": %s}\n' % n
    ),
)
tails = st.one_of(
    st.just(b""),
    st.binary(max_size=30),
    st.sampled_from([b'{"path": "a.p', (RECORD % b"b.png").rstrip(b"\n")]),
)


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(content=st.builds(lambda ls, t: b"".join(ls) + t, st.lists(lines, max_size=5), tails))
@example(content=RECORD % b"a.png" + b'{"path": "b.p')
@example(content=b"\xff\xfe\n")
def test_any_results_file_is_resumed_or_refused_untouched(content: bytes) -> None:
    """After a scan the file is all records, or the scan refused it in one line, unchanged."""
    with tempfile.TemporaryDirectory() as folder, pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            _images, "image_moderator", lambda args, chosen: ImageModerator(FakeImageBackend())
        )
        root = Path(folder) / "d"
        root.mkdir()
        for name in ("a.png", "b.png", "c.png"):
            (root / name).write_bytes(PICTURE)
        output = Path(folder) / "results.jsonl"
        output.write_bytes(content)
        err, out = io.StringIO(), io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            code = main(["scan", str(root), "-o", str(output), "--json"])
        if code == 3:
            assert output.read_bytes() == content
            assert err.getvalue().startswith(f"safegen: error: {output} line ")
            assert err.getvalue().count("\n") == 1
            return
        assert code == 0, err.getvalue()
        text = output.read_bytes().decode("utf-8")
        assert text.endswith("\n")
        records = [json.loads(line) for line in text.split("\n") if line.strip()]
        assert {Path(r["path"]).name for r in records} >= {"a.png", "b.png", "c.png"}


# -- resuming: for any results file and any cut point, no record is lost or duplicated --------

disk_names = st.binary(min_size=1, max_size=12).filter(
    lambda b: b"/" not in b and b"\0" not in b and b not in (b".", b"..")
)
verdicts = st.builds(
    lambda action, error: ImageVerdict(action, error=error),
    st.sampled_from(list(Action)),
    st.none() | st.text(max_size=20),
)


def _written(path: str, verdict: ImageVerdict) -> bytes:
    """The line a scan writes for *path*."""
    out = io.StringIO()
    emit_json(_images.record(path, verdict), out)
    return out.getvalue().encode("utf-8")


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(entries=st.lists(st.tuples(disk_names, verdicts), max_size=4), data=st.data())
def test_any_cut_of_a_results_file_is_repaired_to_its_whole_records(
    entries: list[tuple[bytes, ImageVerdict]], data: st.DataObject
) -> None:
    """Cut anywhere, a results file resumes with exactly the records written whole before it."""
    with tempfile.TemporaryDirectory() as folder:
        base = os.fsencode(os.path.realpath(folder))
        lines = [_written(os.fsdecode(base + b"/" + n), v) for n, v in entries]
        content = b"".join(lines)
        cut = data.draw(st.integers(0, len(content)), label="cut")
        output = Path(folder) / "r.jsonl"
        output.write_bytes(content[:cut])
        whole, end = [], 0
        for (name, _), line in zip(entries, lines, strict=True):
            end += len(line)
            if end - 1 <= cut:  # the record is in the file; perhaps not its newline
                whole.append((base + b"/" + name, line))
        with _files.open_results(output, _files.PathKeys()) as (done, _sink):
            pass
        assert set(done) == {key for key, _ in whole}
        assert output.read_bytes() == b"".join(line for _, line in whole)


@pytest.fixture(scope="module")
def scanned(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    """A directory of three pictures and the results a scan of it wrote, shared by examples."""
    root = tmp_path_factory.mktemp("resume") / "d"
    root.mkdir()
    for name in ("a.png", "b.png", "c\udcff.png"):  # the last is not UTF-8 on disk
        (root / name).write_bytes(PICTURE)
    output = root.parent / "r.jsonl"
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(io.StringIO()):
        patch.setattr(
            _images, "image_moderator", lambda args, chosen: ImageModerator(FakeImageBackend())
        )
        assert main(["scan", str(root), "-o", str(output)]) == 0
    return root, output.read_bytes()


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_scan_cut_anywhere_resumes_with_each_image_once(
    scanned: tuple[Path, bytes], data: st.DataObject
) -> None:
    """Interrupt a scan after any byte and run it again: every image has exactly one record."""
    root, content = scanned
    cut = data.draw(st.integers(0, len(content)), label="cut")
    with tempfile.TemporaryDirectory() as folder, pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            _images, "image_moderator", lambda args, chosen: ImageModerator(FakeImageBackend())
        )
        output = Path(folder) / "r.jsonl"
        output.write_bytes(content[:cut])
        with contextlib.redirect_stdout(io.StringIO()):
            assert main(["scan", str(root), "-o", str(output)]) == 0
        text = output.read_bytes().decode("utf-8")
        records = [json.loads(line) for line in text.split("\n")[:-1]]
    paths = sorted(
        base64.b64decode(r["path_base64"]) if "path_base64" in r else os.fsencode(r["path"])
        for r in records
    )
    assert paths == sorted(os.fsencode(str(root / n)) for n in ("a.png", "b.png", "c\udcff.png"))


@given(value=st.text(max_size=30) | st.sampled_from(["general", "genral", "x.toml", "a/b", "."]))
@example(value="strict\x00")
@example(value="mine.toml\x00")
@example(value="")
def test_any_policy_value_is_a_policy_or_one_line_error(value: str) -> None:
    """--policy with any text: a preset, a file, or one printable line (never a stray error)."""
    from safegen import presets
    from safegen.cli._common import choose_policy
    from safegen.cli._files import CommandError
    from safegen.errors import SafegenError

    with tempfile.TemporaryDirectory() as folder, pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        try:
            chosen = choose_policy(value)
        except (CommandError, SafegenError) as error:
            line = printable(str(error))
            assert "\n" not in line
            assert value not in presets.names()
            return
    assert chosen.preset
    assert chosen.name in presets.names()
