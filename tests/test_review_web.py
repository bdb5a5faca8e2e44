"""The review page, in process: sign-in, sessions, CSRF, headers, hostile keys, escaping, audit."""

from __future__ import annotations

import html
import re
import subprocess
import sys
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from safegen import ImageModerator, ModerationLabel, ModerationPolicy
from safegen.errors import ConfigurationError
from safegen.image import ImageReport, ImageSource
from safegen.review.audit import AuditTrail
from safegen.review.events import AssetStatus
from safegen.review.store import ReviewStore
from safegen.review.web import (
    MAX_REASON_CHARS,
    LoginBackoff,
    ReviewerCredentials,
    create_app,
    hash_password,
)
from safegen.testing import FakeImageBackend

TOKEN = "correct-horse-battery-staple"
PENDING, APPROVED, REJECTED = "pending/one.png", "approved/two.png", "rejected/three.png"
HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'

# -- helpers (the browser test uses them too) ---------------------------------------------------


class Clock:
    """Monotonic seconds that move only when a test moves them."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def png(seed: int) -> bytes:
    """A small PNG, different for each seed."""
    from tests.synthetic import harmless
    from tests.synthetic import png as encode

    return encode(harmless(seed).resize((64, 48)))


_SAYS = {
    "allow": (),
    "review": (ModerationLabel("Weapons", 60.0, parent="Violence", level=2),),
    "block": (ModerationLabel("Weapons", 95.0, parent="Violence", level=2),),
}


class Uploads:
    """A real embedded store whose moderator says, for each upload, what the test scripts."""

    def __init__(self, directory: Path) -> None:
        self.next: tuple[ModerationLabel, ...] = ()
        backend = FakeImageBackend(respond=self._respond, name="scripted")
        policy = ModerationPolicy(block_at=80, review_at=40)
        self.directory = directory
        self.audit_path = directory.parent / f"{directory.name}-audit.sqlite3"
        self.audit = AuditTrail.sqlite(self.audit_path)
        self.store = ReviewStore.embedded(
            directory, moderator=ImageModerator(backend, policy), audit=self.audit
        )

    def _respond(self, image: ImageSource) -> ImageReport:
        return ImageReport(labels=self.next, model_version="7.0")

    def put(
        self,
        data: bytes,
        *,
        key: str,
        action: str,
        labels: Sequence[ModerationLabel] | None = None,
        metadata: dict[str, str] | None = None,
    ) -> Any:
        """Upload *data* under *key*; the moderator reports *labels* (or what gives *action*)."""
        self.next = tuple(_SAYS[action] if labels is None else labels)
        return self.store.put(data, key=key, metadata=metadata)


@pytest.fixture
def clock() -> Clock:
    """A clock the test moves by hand."""
    return Clock()


@pytest.fixture
def seeded(tmp_path: Path) -> Uploads:
    """A store with one image in each status, and its audit trail."""
    uploads = Uploads(tmp_path / "store")
    uploads.put(png(1), key=PENDING, metadata={"uploader": "ann"}, action="review")
    uploads.put(png(2), key=APPROVED, action="allow")
    uploads.put(png(3), key=REJECTED, action="block")
    return uploads


@pytest.fixture
def client(seeded: Uploads, clock: Clock) -> TestClient:
    """A client of the app over the seeded store (not signed in)."""
    store, audit = seeded.store, seeded.audit
    app = create_app(store, audit=audit, credentials=ReviewerCredentials.shared(TOKEN), clock=clock)
    return TestClient(app, base_url="http://testserver")


def csrf_of(page: str) -> str:
    """The CSRF token in a page's first form."""
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found is not None, "no CSRF field on the page"
    return found.group(1)


def sign_in(client: TestClient, name: str = "ann", secret: str = TOKEN) -> Any:
    """Sign in through the login form; return the response to the POST."""
    token = csrf_of(client.get("/login").text)
    return client.post(
        "/login", data={"name": name, "secret": secret, "csrf": token}, follow_redirects=False
    )


def signed_in(client: TestClient, name: str = "ann") -> str:
    """Sign in and return the session's CSRF token (from a page)."""
    assert sign_in(client, name).status_code == 303
    return csrf_of(client.get("/queue/pending").text)


# -- packaging ---------------------------------------------------------------------------------


def test_import_review_does_not_import_the_web_stack() -> None:
    """``import safegen.review`` loads neither starlette nor jinja2 nor itsdangerous."""
    code = (
        "import sys, safegen.review; "
        "print([m for m in ('starlette', 'jinja2', 'itsdangerous', 'uvicorn') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# -- authentication ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/", "/queue/pending", "/queue/rejected", f"/asset?key={PENDING}"]
)
def test_pages_need_a_signed_in_reviewer(client: TestClient, path: str) -> None:
    """Every page sends a visitor who is not signed in to the login form."""
    response = client.get(path, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login"


@pytest.mark.parametrize("key", [PENDING, REJECTED, APPROVED])
@pytest.mark.parametrize("size", ["", "&size=thumb"])
def test_images_need_a_signed_in_reviewer(client: TestClient, key: str, size: str) -> None:
    """No image, thumbnail or full, whatever its status, goes to a visitor not signed in."""
    response = client.get(f"/image?key={key}{size}")
    assert response.status_code == 401
    assert not response.content.startswith(b"\x89PNG")


def test_wrong_secret_is_refused(client: TestClient) -> None:
    """A wrong token signs nobody in, and no session cookie grants a page afterwards."""
    response = sign_in(client, secret=TOKEN + "x")
    assert response.status_code == 401
    assert client.get("/queue/pending", follow_redirects=False).status_code == 303


def test_session_cookie_attributes_over_http(client: TestClient) -> None:
    """The session cookie is HttpOnly, SameSite=Strict, and not Secure over plain http."""
    cookie = sign_in(client).headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=strict" in cookie
    assert "path=/" in cookie
    assert "secure" not in cookie.replace("samesite", "")


def test_session_cookie_is_secure_over_https(seeded: Uploads) -> None:
    """Over https the session cookie is Secure."""
    store, audit = seeded.store, seeded.audit
    app = create_app(store, audit=audit, credentials=ReviewerCredentials.shared(TOKEN))
    client = TestClient(app, base_url="https://testserver")
    cookie = sign_in(client).headers["set-cookie"].lower()
    assert "; secure" in cookie
    assert "httponly" in cookie
    assert "samesite=strict" in cookie


def test_a_forged_cookie_is_no_session(client: TestClient) -> None:
    """A cookie not signed by the app (or edited) is ignored."""
    signed_in(client)
    value = client.cookies["safegen_review"]
    client.cookies.clear()
    client.cookies.set("safegen_review", value[:-2] + ("AA" if value[-2:] != "AA" else "BB"))
    assert client.get("/queue/pending", follow_redirects=False).status_code == 303


def test_signing_out_ends_the_session_on_the_server(client: TestClient) -> None:
    """After signing out, the old cookie, replayed, grants nothing."""
    token = signed_in(client)
    old = client.cookies["safegen_review"]
    response = client.post("/logout", data={"csrf": token}, follow_redirects=False)
    assert response.status_code == 303
    client.cookies.clear()
    client.cookies.set("safegen_review", old)
    assert client.get("/queue/pending", follow_redirects=False).status_code == 303


def test_signing_in_starts_a_new_session(client: TestClient) -> None:
    """The session after sign-in is not the one before (no session fixation)."""
    client.get("/login")
    before = client.cookies["safegen_review"]
    sign_in(client)
    assert client.cookies["safegen_review"] != before


def test_sessions_expire(client: TestClient, clock: Clock) -> None:
    """A session ends after its lifetime (8 hours by default) on the server's clock."""
    signed_in(client)
    clock.now += 8 * 3600 + 1
    assert client.get("/queue/pending", follow_redirects=False).status_code == 303


# -- failed logins -----------------------------------------------------------------------------


def test_backoff_after_five_failures(client: TestClient, clock: Clock) -> None:
    """Five failures are free; the sixth attempt, even right, waits; then the wait doubles."""
    for _ in range(4):
        assert sign_in(client, secret="wrong-wrong-wrong-wrong").status_code == 401
    assert sign_in(client).status_code == 303  # four failures: no wait yet
    client.cookies.clear()
    for _ in range(5):
        assert sign_in(client, secret="wrong-wrong-wrong-wrong").status_code == 401
    refused = sign_in(client)
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "1"
    clock.now += 1.0  # exactly the wait: allowed again
    assert sign_in(client, secret="wrong-wrong-wrong-wrong").status_code == 401
    clock.now += 1.999  # a sixth failure waits two seconds
    assert sign_in(client).status_code == 429
    clock.now += 0.001
    assert sign_in(client).status_code == 303


def test_backoff_is_per_client_and_capped() -> None:
    """One client's failures do not slow another; the wait never exceeds the cap."""
    clock = Clock()
    backoff = LoginBackoff(free=1, base=1.0, cap=10.0, clock=clock)
    for _ in range(40):
        backoff.failed("a")
    assert backoff.wait("a") == 10.0
    assert backoff.wait("b") == 0.0
    backoff.succeeded("a")
    assert backoff.wait("a") == 0.0


def test_backoff_remembers_a_bounded_number_of_clients() -> None:
    """A flood of addresses cannot grow the table past its bound."""
    backoff = LoginBackoff(free=0, clients=3, clock=Clock())
    for n in range(10):
        backoff.failed(f"10.0.0.{n}")
    assert [backoff.wait(f"10.0.0.{n}") > 0 for n in range(10)] == [False] * 7 + [True] * 3


# -- CSRF and methods ----------------------------------------------------------------------------


def test_approve_with_the_token_works_and_is_audited(client: TestClient, seeded: Uploads) -> None:
    """A same-origin POST with the session's token approves, and the audit names the reviewer."""
    store, audit = seeded.store, seeded.audit
    token = signed_in(client, "Beatrix")
    response = client.post(
        "/asset/approve",
        data={"csrf": token, "key": PENDING, "reason": "a cat, not a weapon"},
        headers={"origin": "http://testserver"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert store.get(PENDING).status is AssetStatus.APPROVED
    last = audit.history(PENDING)[-1]
    assert (last.event, last.actor, last.reason) == ("approve", "Beatrix", "a cat, not a weapon")
    page = client.get(response.headers["location"]).text
    assert "Image approved." in page
    assert "a cat, not a weapon" in page


@pytest.mark.parametrize(
    "headers",
    [
        {"origin": "http://evil.example"},
        {"origin": "null"},
        {"origin": "http://testserver:8080"},
        {"origin": "https://testserver"},
        {"referer": "http://evil.example/asset?key=x"},
        {"referer": "http://testserver.evil.example/"},
        {"origin": "http://evil.example", "referer": "http://testserver/"},
    ],
)
def test_cross_origin_posts_are_refused(
    client: TestClient, seeded: Uploads, headers: dict[str, str]
) -> None:
    """A POST from another origin is refused even with a valid token; nothing changes."""
    store = seeded.store
    token = signed_in(client)
    response = client.post("/asset/reject", data={"csrf": token, "key": APPROVED}, headers=headers)
    assert response.status_code == 403
    assert store.get(APPROVED).status is AssetStatus.APPROVED


ascii_header = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=200)


@settings(max_examples=100, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(header=st.sampled_from(["origin", "referer"]), value=ascii_header)
@example(header="origin", value="http://testserver:80")
@example(header="referer", value="http://[::1")
@example(header="origin", value="http://testserver:99999")
def test_any_origin_or_referer_is_judged_never_crashes(
    client: TestClient, seeded: Uploads, header: str, value: str
) -> None:
    """Any Origin or Referer is refused (403) unless it is this origin; never a 500."""
    if "safegen_review" not in client.cookies:
        signed_in(client)
    token = csrf_of(client.get("/queue/pending").text)
    response = client.post(
        "/asset/reject",
        data={"csrf": token, "key": REJECTED},
        headers={header: value},
        follow_redirects=False,
    )
    same = value.lower().rstrip("/").split("/")[:3] in (
        ["http:", "", "testserver"],
        ["http:", "", "testserver:80"],
    )
    assert response.status_code == (303 if same else 403), value


@pytest.mark.parametrize("token", [None, "", "x", "A" * 43])
@pytest.mark.parametrize("action", ["approve", "reject"])
def test_posts_without_the_sessions_token_are_refused(
    client: TestClient, seeded: Uploads, token: str | None, action: str
) -> None:
    """No token, an empty one or another one: refused, and the image keeps its status."""
    store = seeded.store
    signed_in(client)
    data = {"key": PENDING} if token is None else {"key": PENDING, "csrf": token}
    assert client.post(f"/asset/{action}", data=data).status_code == 403
    assert store.get(PENDING).status is AssetStatus.PENDING


def test_another_sessions_token_is_refused(seeded: Uploads, client: TestClient) -> None:
    """A token from one reviewer's session does not work in another's."""
    store, audit = seeded.store, seeded.audit
    other = TestClient(
        create_app(store, audit=audit, credentials=ReviewerCredentials.shared(TOKEN))
    )
    theirs = signed_in(other, "mallory")
    signed_in(client, "ann")
    assert client.post("/asset/reject", data={"csrf": theirs, "key": APPROVED}).status_code == 403
    assert store.get(APPROVED).status is AssetStatus.APPROVED


def test_login_needs_the_forms_token(client: TestClient) -> None:
    """A login POST without the login form's token is refused (no login CSRF)."""
    response = client.post("/login", data={"name": "ann", "secret": TOKEN})
    assert response.status_code == 403
    assert client.get("/queue/pending", follow_redirects=False).status_code == 303


def test_logout_needs_the_token(client: TestClient) -> None:
    """A cross-site page cannot sign a reviewer out (logout is a POST with the token)."""
    signed_in(client)
    assert client.post("/logout", data={"next": "/"}).status_code == 403
    assert client.get("/logout").status_code == 405
    assert client.get("/queue/pending", follow_redirects=False).status_code == 200


@pytest.mark.parametrize("path", [f"/asset/approve?key={PENDING}", f"/asset/reject?key={APPROVED}"])
def test_get_never_changes_state(client: TestClient, seeded: Uploads, path: str) -> None:
    """A GET to an action's address is refused and changes nothing."""
    store = seeded.store
    signed_in(client)
    assert client.get(path).status_code == 405
    assert store.get(PENDING).status is AssetStatus.PENDING
    assert store.get(APPROVED).status is AssetStatus.APPROVED


def test_a_form_too_large_or_of_another_kind_is_refused(client: TestClient) -> None:
    """Over 64 KiB is 413; multipart or JSON is 415; a field given twice is 400."""
    token = signed_in(client)
    big = client.post("/asset/approve", data={"csrf": token, "key": PENDING, "x": "a" * 70_000})
    assert big.status_code == 413
    multi = client.post(
        "/asset/approve", data={"csrf": token, "key": PENDING}, files={"f": ("a", b"b")}
    )
    assert multi.status_code == 415
    twice = client.post(
        "/asset/approve",
        content=f"csrf={token}&key={PENDING}&key={APPROVED}",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert twice.status_code == 400


def test_reason_length_limit(client: TestClient, seeded: Uploads) -> None:
    """A reason of exactly the limit is taken; one character more is refused."""
    store = seeded.store
    token = signed_in(client)
    over = {"csrf": token, "key": PENDING, "reason": "r" * (MAX_REASON_CHARS + 1)}
    assert client.post("/asset/approve", data=over).status_code == 400
    assert store.get(PENDING).status is AssetStatus.PENDING
    at = {"csrf": token, "key": PENDING, "reason": "r" * MAX_REASON_CHARS}
    assert client.post("/asset/approve", data=at, follow_redirects=False).status_code == 303
    assert store.get(PENDING).status is AssetStatus.APPROVED


# -- headers and images -------------------------------------------------------------------------


def _assert_security_headers(response: Any) -> None:
    csp = response.headers["content-security-policy"]
    assert "default-src 'none'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "script-src" not in csp
    assert "unsafe-inline" not in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "same-origin"
    assert response.headers["cache-control"] == "no-store"


def test_security_headers_on_every_response(client: TestClient) -> None:
    """Pages, images, errors, redirects and the stylesheet all carry the security headers."""
    responses = [
        client.get("/login"),
        client.get("/queue/pending", follow_redirects=False),
        client.get("/no/such/page"),
        client.get("/static/review.css"),
    ]
    signed_in(client)
    responses += [
        client.get("/queue/pending"),
        client.get(f"/asset?key={REJECTED}"),
        client.get(f"/image?key={REJECTED}"),
        client.get(f"/image?key={REJECTED}&size=thumb"),
        client.get("/asset?key=../etc/passwd"),
        client.post("/asset/approve", data={}),
    ]
    for response in responses:
        _assert_security_headers(response)


@pytest.mark.parametrize("key", [PENDING, REJECTED, APPROVED])
def test_reviewers_get_every_image_with_its_type(client: TestClient, key: str) -> None:
    """A reviewer gets pending and rejected images too, typed as the store says, nosniff."""
    signed_in(client)
    full = client.get(f"/image?key={key}")
    assert full.status_code == 200
    assert full.headers["content-type"] == "image/png"
    assert (
        full.content == png(int(key[-5]) if key[-5].isdigit() else 0)
        or full.content[:4] == b"\x89PNG"
    )
    thumb = client.get(f"/image?key={key}&size=thumb")
    assert thumb.status_code == 200
    assert thumb.content[:4] == b"\x89PNG"


def test_queues_and_pages_show_labels_and_paginate(tmp_path: Path) -> None:
    """A queue lists its images a page at a time through the store's cursor, with labels."""
    uploads = Uploads(tmp_path / "s")
    keys = [f"q/{n:03d}.png" for n in range(7)]
    weapons = [ModerationLabel("Weapons", 61.5, parent="Violence", level=2)]
    for n, key in enumerate(keys):
        uploads.put(png(n), key=key, action="review", labels=weapons)
    client = TestClient(
        create_app(
            uploads.store,
            audit=uploads.audit,
            credentials=ReviewerCredentials.shared(TOKEN),
            page_size=3,
        )
    )
    signed_in(client)
    seen: list[str] = []
    url: str | None = "/queue/pending"
    while url is not None:
        page = client.get(url).text
        assert "Weapons" in page
        assert "61.5" in page
        seen += re.findall(r'data-key="([^"]+)"', page)
        found = re.search(r'id="next" href="([^"]+)"', page)
        url = None if found is None else html.unescape(found.group(1))
    assert seen == keys
    assert client.get("/queue/pending?after=%00garbage").status_code == 400
    assert client.get("/queue/everything").status_code == 404


def test_an_image_not_typed_as_a_plain_image_is_a_download(seeded: Uploads) -> None:
    """A record whose type was tampered to HTML is served as an attachment, never rendered."""
    import attrs

    state = seeded.store.state
    record = state.get(PENDING)
    assert record is not None
    tampered = attrs.evolve(record, version=record.version + 1, content_type="text/html")
    state.update(tampered, expected_version=record.version)
    client = TestClient(
        create_app(seeded.store, audit=seeded.audit, credentials=ReviewerCredentials.shared(TOKEN))
    )
    signed_in(client)
    response = client.get(f"/image?key={PENDING}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["content-disposition"] == "attachment"
    assert response.headers["x-content-type-options"] == "nosniff"


# -- escaping ----------------------------------------------------------------------------------


def test_everything_shown_is_escaped(tmp_path: Path) -> None:
    """Labels, metadata, reasons and the reviewer's name are shown escaped, never as markup."""
    uploads = Uploads(tmp_path / "s")
    uploads.put(
        png(5),
        key="x/evil.png",
        metadata={HOSTILE: HOSTILE, "note": "\"'><svg onload=alert(1)>"},
        action="block",
        labels=[ModerationLabel(HOSTILE, 90.0)],
    )
    app = create_app(
        uploads.store, audit=uploads.audit, credentials=ReviewerCredentials.shared(TOKEN)
    )
    client = TestClient(app)
    name = "<b onclick=alert(1)>"
    assert sign_in(client, name).status_code == 303
    token = csrf_of(client.get("/asset?key=x/evil.png").text)
    reason = "</td><script>alert(2)</script>"
    approved = {"csrf": token, "key": "x/evil.png", "reason": reason}
    assert client.post("/asset/approve", data=approved, follow_redirects=False).status_code == 303
    pages = [
        client.get("/asset?key=x/evil.png").text,
        client.get("/queue/approved").text,
    ]
    for page in pages:
        assert "<script" not in page
        assert "<svg" not in page
        assert "<b onclick" not in page
        assert "onerror=alert" not in page.replace("onerror=alert(1)&gt;", "")
    assert html.escape(reason, quote=True) in pages[0]
    assert "&lt;b onclick=alert(1)&gt;" in pages[0]
    assert uploads.audit.history("x/evil.png")[-1].actor == name


# -- keys --------------------------------------------------------------------------------------

TRAVERSALS = [
    "../outside.txt",
    "..%2foutside.txt",
    "%2e%2e/outside.txt",
    "%2e%2e%2foutside.txt",
    "..\\outside.txt",
    "a/../../outside.txt",
    "/etc/passwd",
    "//etc/passwd",
    "C:\\Windows\\win.ini",
    "pending/one.png\x00.txt",
    "pending/one.png/..",
    "./pending/one.png",
    ".",
    "..",
    "",
    "a" * 10_000,
    "a/" * 200 + "b",
    "\uff2e\uff35\uff2c",
    "\u202e/gnp.eno",
    "pending/one.png\n",
    "pending/one.png ",
    "%00",
    "..%c0%af",
    "..%252f",
]
hostile_keys = st.one_of(
    st.sampled_from(TRAVERSALS),
    st.lists(
        st.sampled_from(["..", ".", "%2e%2e", "%2f", "\\", "/", "\x00", "a", "outside.txt"]),
        max_size=12,
    ).map("".join),
    st.text(max_size=300),
)


@pytest.fixture
def outside(tmp_path: Path) -> bytes:
    """A file next to the store that no request may read."""
    secret = b"OUTSIDE-THE-STORE-" + bytes(range(48, 58))
    (tmp_path / "outside.txt").write_bytes(secret)
    (tmp_path / "store" / "outside.txt").write_bytes(secret)
    return secret


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=hostile_keys)
@example(key="../outside.txt")
@example(key="a" * 257)
def test_hostile_keys_get_400_or_404(client: TestClient, outside: bytes, key: str) -> None:
    """Any key a request names gets its page, 400 or 404: never a 500 or bytes from outside."""
    if "safegen_review" not in client.cookies:
        signed_in(client)
    token = csrf_of(client.get("/queue/pending").text)
    responses = [
        client.get("/asset", params={"key": key}),
        client.get("/image", params={"key": key}),
        client.get("/image", params={"key": key, "size": "thumb"}),
        client.post("/asset/reject", data={"csrf": token, "key": key}),
    ]
    known = key in (PENDING, APPROVED, REJECTED)
    for response in responses:
        assert response.status_code in ((200, 303, 409) if known else (400, 404)), key
        assert outside not in response.content
    listed = client.get("/queue/pending", params={"after": key})  # a hostile cursor
    assert listed.status_code in (200, 400)


@pytest.mark.parametrize(
    "path",
    [
        "/static/../web.py",
        "/static/..%2fweb.py",
        "/static/%2e%2e/web.py",
        "/static/review.css/..%2f..%2fweb.py",
        "/image/../../outside.txt",
        "/asset/..%2f..%2foutside.txt",
        "/queue/..%2f..%2foutside.txt",
        "/%2e%2e/%2e%2e/outside.txt",
        "/static/review.css%00.py",
    ],
)
def test_hostile_paths_reach_no_file(client: TestClient, outside: bytes, path: str) -> None:
    """Traversal in the path itself reaches no file: 404 (or 405), never a 500."""
    signed_in(client)
    response = client.get(path)
    assert response.status_code in (404, 405)
    assert outside not in response.content
    assert b"def create_app" not in response.content


# -- credentials -------------------------------------------------------------------------------


def test_credentials_from_a_file_of_named_reviewers(tmp_path: Path) -> None:
    """Named reviewers with tokens or hashed passwords; the name is theirs only."""
    hashed = hash_password("a fine password", n=2**14)
    path = tmp_path / "reviewers"
    path.write_text(f"# reviewers\nann:{TOKEN}\n\nbob:{hashed}\n", encoding="utf-8")
    credentials = ReviewerCredentials.from_file(path)
    assert not credentials.is_shared
    assert credentials.check("ann", TOKEN) == "ann"
    assert credentials.check("bob", "a fine password") == "bob"
    assert credentials.check("bob", TOKEN) is None
    assert credentials.check("ann", "a fine password") is None
    assert credentials.check("carol", TOKEN) is None
    assert credentials.check("ann", TOKEN + "\x00") is None


def test_a_single_line_file_is_a_shared_token(tmp_path: Path) -> None:
    """One line without a colon is a shared token; reviewers name themselves."""
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n", encoding="utf-8")
    credentials = ReviewerCredentials.from_file(path)
    assert credentials.is_shared
    assert credentials.check("zoe", TOKEN) == "zoe"
    assert credentials.check("zoe", TOKEN[:-1]) is None
    assert credentials.check("", TOKEN) is None
    assert credentials.check("a:b", TOKEN) is None


@pytest.mark.parametrize(
    "text",
    [
        "",
        "# nobody\n",
        "short\n",
        "ann:short\n",
        "ann:" + TOKEN + "\nann:" + TOKEN + "\n",
        "ann\nbob\n",
        "ann:scrypt$1$2$3$x$y\n",
        ":" + TOKEN + "\n",
    ],
)
def test_unusable_credentials_files_are_refused(tmp_path: Path, text: str) -> None:
    """An empty file, a short token, a duplicate name or a broken hash is refused by name."""
    path = tmp_path / "reviewers"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigurationError) as caught:
        ReviewerCredentials.from_file(path)
    assert TOKEN not in str(caught.value)
    assert "short" not in str(caught.value).replace("shorter", "")


@given(name=st.text(max_size=80), secret=st.text(max_size=80))
@example(name="ann", secret=TOKEN)
@example(name="ann\x00", secret=TOKEN)
def test_only_the_exact_secret_signs_in(name: str, secret: str) -> None:
    """For any name and secret, check never raises and passes only the configured secret."""
    credentials = ReviewerCredentials.shared(TOKEN)
    found = credentials.check(name, secret)
    if secret != TOKEN:
        assert found is None
    elif found is not None:
        assert found == unicodedata.normalize("NFC", name.strip())


def test_token_length_boundary() -> None:
    """A 16-character token is taken, a 15-character one refused."""
    assert ReviewerCredentials.shared("x" * 16).check("a", "x" * 16) == "a"
    with pytest.raises(ConfigurationError):
        ReviewerCredentials.shared("x" * 15)


def test_credentials_from_the_environment(tmp_path: Path) -> None:
    """The token file variable wins over the token variable; neither set is refused."""
    path = tmp_path / "token"
    path.write_text(f"ann:{TOKEN}\n", encoding="utf-8")
    both = {"SAFEGEN_REVIEW_TOKEN": "y" * 20, "SAFEGEN_REVIEW_TOKEN_FILE": str(path)}
    assert ReviewerCredentials.from_environment(both).check("ann", TOKEN) == "ann"
    assert ReviewerCredentials.from_environment({"SAFEGEN_REVIEW_TOKEN": "y" * 20}).is_shared
    with pytest.raises(ConfigurationError, match="SAFEGEN_REVIEW_TOKEN"):
        ReviewerCredentials.from_environment({})


def test_create_app_needs_credentials(seeded: Uploads) -> None:
    """The app refuses to exist without credentials."""
    with pytest.raises(ConfigurationError):
        create_app(seeded.store, credentials=None)  # type: ignore[arg-type]


def test_hash_password_refuses_short_passwords() -> None:
    """A password under 8 characters is not hashed; exactly 8 is."""
    with pytest.raises(ConfigurationError):
        hash_password("1234567")
    assert hash_password("12345678", n=2**14).startswith("scrypt$16384$8$1$")


@pytest.mark.parametrize(
    ("n", "r"), [(2**13, 8), (2**21, 1), (3 * 2**14, 8), (2**20, 2), (2**14, 17), (2**14, 0)]
)
def test_scrypt_settings_out_of_range_are_refused(tmp_path: Path, n: int, r: int) -> None:
    """Weak or memory-hungry scrypt settings are refused, in a file and when hashing."""
    with pytest.raises(ConfigurationError):
        hash_password("a long enough password", n=n, r=r)
    good = hash_password("a long enough password", n=2**14).split("$")
    path = tmp_path / "reviewers"
    path.write_text("ann:" + "$".join(["scrypt", str(n), str(r), *good[3:]]), encoding="utf-8")
    with pytest.raises(ConfigurationError):
        ReviewerCredentials.from_file(path)


# -- the command line --------------------------------------------------------------------------


@pytest.fixture
def no_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """No reviewers' credentials in the environment."""
    monkeypatch.delenv("SAFEGEN_REVIEW_TOKEN", raising=False)
    monkeypatch.delenv("SAFEGEN_REVIEW_TOKEN_FILE", raising=False)


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """What ``uvicorn.run`` was asked to serve (it is not run)."""
    import uvicorn

    calls: list[dict[str, Any]] = []

    def run(app: Any, **kwargs: Any) -> None:
        calls.append({"app": app, **kwargs})

    monkeypatch.setattr(uvicorn, "run", run)
    return calls


@pytest.mark.usefixtures("no_credentials")
def test_serve_refuses_to_start_without_credentials(
    seeded: Uploads, served: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    """Without a token file or variable, serve exits 3 naming them, and serves nothing."""
    from safegen.cli import main

    assert main(["review", "serve", "--store", str(seeded.directory)]) == 3
    assert "SAFEGEN_REVIEW_TOKEN" in capsys.readouterr().err
    assert served == []


@pytest.mark.usefixtures("no_credentials")
def test_serve_takes_no_secret_on_the_command_line(seeded: Uploads) -> None:
    """There is no option to give a token on the command line, where ps would show it."""
    from safegen.cli import main

    with pytest.raises(SystemExit) as caught:
        main(["review", "serve", "--store", str(seeded.directory), "--token", TOKEN])
    assert caught.value.code == 2


@pytest.mark.usefixtures("no_credentials")
def test_serve_binds_loopback_with_a_token_file(
    seeded: Uploads,
    served: list[dict[str, Any]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """With a token file it serves on 127.0.0.1:8000 and says nothing about the network."""
    from safegen.cli import main

    token_file = tmp_path / "token"
    token_file.write_text(TOKEN, encoding="utf-8")
    store = str(seeded.directory)
    command = ["review", "serve", "--store", store, "--no-hooks", "--token-file", str(token_file)]
    assert main(command) == 0
    (call,) = served
    assert (call["host"], call["port"], call["access_log"]) == ("127.0.0.1", 8000, False)
    assert capsys.readouterr().err == ""
    client = TestClient(call["app"])
    assert sign_in(client).status_code == 303


def test_serve_warns_off_loopback(
    seeded: Uploads,
    served: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Bound to another address, serve says the secrets cross the network and to use TLS."""
    from safegen.cli import main

    monkeypatch.setenv("SAFEGEN_REVIEW_TOKEN", TOKEN)
    store = str(seeded.directory)
    assert main(["review", "serve", "--store", store, "--no-hooks", "--host", "0.0.0.0"]) == 0
    assert "TLS" in capsys.readouterr().err
    assert served[0]["host"] == "0.0.0.0"


def test_cli_list_approve_reject(seeded: Uploads, capsys: pytest.CaptureFixture[str]) -> None:
    """Scripts list a queue and approve or reject with an actor and a reason, audited."""
    from safegen.cli import main

    where = ["--store", str(seeded.directory), "--audit", str(seeded.audit_path), "--no-hooks"]
    assert main(["review", "list", *where, "--status", "pending"]) == 0
    assert PENDING in capsys.readouterr().out
    assert main(["review", "approve", PENDING, *where, "--by", "ops", "--reason", "fine"]) == 0
    assert main(["review", "reject", APPROVED, *where, "--by", "ops", "--json"]) == 0
    assert '"status": "rejected"' in capsys.readouterr().out
    assert seeded.store.get(PENDING).status is AssetStatus.APPROVED
    last = seeded.audit.history(PENDING)[-1]
    assert (last.event, last.actor, last.reason) == ("approve", "ops", "fine")
    assert main(["review", "approve", "../outside", *where, "--by", "ops"]) == 3


def test_cli_hash_password(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """hash-password reads a piped password and prints a hash the credentials file takes."""
    import io

    from safegen.cli import main

    monkeypatch.setattr(sys, "stdin", io.StringIO("a long enough password\n"))
    assert main(["review", "hash-password"]) == 0
    hashed = capsys.readouterr().out.strip()
    assert hashed.startswith("scrypt$")
    assert "a long enough" not in hashed
    path = tmp_path / "reviewers"
    path.write_text(f"ann:{hashed}\n", encoding="utf-8")
    assert ReviewerCredentials.from_file(path).check("ann", "a long enough password") == "ann"


# -- concurrent sign-ins (red team #6) -----------------------------------------------------------


async def _asgi(
    app: Any,
    method: str,
    path: str,
    *,
    headers: Sequence[tuple[str, str]] = (),
    body: bytes = b"",
    client: str = "10.0.0.1",
) -> tuple[int, dict[str, str], bytes]:
    """Call *app* once in this event loop (so that many calls can be in flight at once)."""
    import anyio

    path, _, query = path.partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(k.encode(), v.encode()) for k, v in [("host", "testserver"), *headers]],
        "client": (client, 5555),
        "server": ("testserver", 80),
    }
    sent = False
    status, out = 0, bytearray()
    out_headers: dict[str, str] = {}

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
            out_headers.update((k.decode(), v.decode()) for k, v in message["headers"])
        elif message["type"] == "http.response.body":
            out.extend(message.get("body", b""))

    await app(scope, receive, send)
    return status, out_headers, bytes(out)


async def _login_form(app: Any, client: str = "10.0.0.1") -> tuple[str, str]:
    """The session cookie and CSRF token a client gets from the login page."""
    _, headers, body = await _asgi(app, "GET", "/login", client=client)
    return headers["set-cookie"].split(";")[0], csrf_of(body.decode())


async def _guess(app: Any, cookie: str, token: str, secret: str, client: str = "10.0.0.1") -> int:
    """POST one sign-in; return its status."""
    import urllib.parse

    form = urllib.parse.urlencode({"csrf": token, "name": "ann", "secret": secret}).encode()
    kind = ("content-type", "application/x-www-form-urlencoded")
    status, _, _ = await _asgi(
        app, "POST", "/login", headers=[("cookie", cookie), kind], body=form, client=client
    )
    return status


@pytest.mark.anyio
@pytest.mark.parametrize("burst", [6, 40])
async def test_concurrent_guesses_are_counted_as_they_arrive(seeded: Uploads, burst: int) -> None:
    """Guesses sent at once from one address: only the free ones are checked, the rest get 429."""
    import anyio

    backoff = LoginBackoff(free=5, clock=Clock())
    app = create_app(
        seeded.store,
        credentials=ReviewerCredentials.shared(TOKEN),
        backoff=backoff,
        max_checks=64,
    )
    cookie, token = await _login_form(app)
    codes: list[int] = []

    async def one(n: int) -> None:
        codes.append(await _guess(app, cookie, token, f"wrong-guess-{n}-padding"))

    async with anyio.create_task_group() as group:
        for n in range(burst):
            group.start_soon(one, n)
    assert sorted(codes) == [401] * 5 + [429] * (burst - 5)
    assert await _guess(app, cookie, token, TOKEN) == 429  # the right secret waits too


@pytest.mark.anyio
async def test_sign_in_checks_in_flight_are_bounded_globally(
    seeded: Uploads, monkeypatch: pytest.MonkeyPatch
) -> None:
    """From many addresses at once, at most max_checks secrets are checked; the others get 503."""
    import threading

    import anyio

    release, lock = threading.Event(), threading.Lock()
    entered: list[str] = []

    def slow_check(self: ReviewerCredentials, name: str, secret: str) -> str | None:
        with lock:
            entered.append(secret)
        release.wait(30)
        return None

    monkeypatch.setattr(ReviewerCredentials, "check", slow_check)
    app = create_app(seeded.store, credentials=ReviewerCredentials.shared(TOKEN), max_checks=2)
    forms = [await _login_form(app, client=f"10.0.1.{n}") for n in range(6)]
    codes: list[int] = []

    async def one(n: int) -> None:
        cookie, token = forms[n]
        codes.append(await _guess(app, cookie, token, f"guess-{n}", client=f"10.0.1.{n}"))

    async with anyio.create_task_group() as group:
        for n in range(6):
            group.start_soon(one, n)
        while len(codes) < 4 or len(entered) < 2:  # readiness, not a timing assertion
            await anyio.sleep(0.01)
        assert sorted(codes) == [503] * 4  # answered without a check, while two are held
        release.set()
    assert sorted(codes) == [401] * 2 + [503] * 4
    assert len(entered) == 2


# -- thumbnails of decompression bombs (red team #7) ---------------------------------------------


def _declared_png(width: int, height: int, colour: int = 6) -> bytes:
    """A PNG whose header declares *width* x *height* (8-bit, RGBA by default), with tiny data."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


_STORED = {0: 1, 2: 4, 4: 4, 6: 4}  # PNG colour type: bytes Pillow keeps a decoded pixel in


@given(
    side=st.tuples(st.integers(1, 60_000), st.integers(1, 60_000)),
    colour=st.sampled_from([0, 2, 4, 6]),
)
@example(side=(7000, 7000), colour=6)  # the red team's bomb: 49 M pixels, under the old cap
@example(side=(4096, 2049), colour=2)  # just over 64 MiB at 4 + 4 bytes a pixel
@example(side=(4096, 3277), colour=0)  # just over 64 MiB at 1 + 4 bytes a pixel
@settings(max_examples=60, deadline=None)
def test_a_thumbnail_over_its_budget_is_refused_from_the_header(
    side: tuple[int, int], colour: int
) -> None:
    """Any PNG declaring more than the thumbnail budget gets no thumbnail, and nothing decoded."""
    assume(side[0] * side[1] * (_STORED[colour] + 4) > 64 * 1024 * 1024)
    from PIL import ImageFile

    from safegen.review.web import _thumbnail

    decoded: list[tuple[int, int]] = []
    real = ImageFile.ImageFile.load

    def load(self: Any) -> Any:
        decoded.append(self.size)  # recorded: the caller may swallow what load raises
        return real(self)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ImageFile.ImageFile, "load", load)
        assert _thumbnail(_declared_png(*side, colour)) is None
    assert decoded == []


def test_a_thumbnail_within_its_budget_is_made() -> None:
    """A real picture well within the budget still gets a thumbnail at most 240 a side."""
    import io

    from PIL import Image

    from safegen.review.web import THUMBNAIL_SIDE, _thumbnail

    out = io.BytesIO()
    Image.new("RGB", (2000, 1000), "orange").save(out, "PNG")
    thumb = _thumbnail(out.getvalue())
    assert thumb is not None
    assert max(Image.open(io.BytesIO(thumb)).size) == THUMBNAIL_SIDE


def test_a_queue_page_makes_each_thumbnail_once(
    client: TestClient, seeded: Uploads, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Thumbnails are cached by the image's SHA-256: asked again, none is decoded again."""
    from safegen.review import web

    made: list[int] = []
    real = web._thumbnail

    def counting(data: bytes) -> bytes | None:
        made.append(len(data))
        return real(data)

    monkeypatch.setattr(web, "_thumbnail", counting)
    signed_in(client)
    for _ in range(3):
        for key in (PENDING, APPROVED, REJECTED):
            response = client.get("/image", params={"key": key, "size": "thumb"})
            assert response.status_code == 200
    assert len(made) == 3


@pytest.mark.anyio
async def test_thumbnails_are_made_a_few_at_a_time(
    seeded: Uploads, monkeypatch: pytest.MonkeyPatch
) -> None:
    """However many thumbnails are asked for at once, at most THUMBNAIL_WORKERS are made at once."""
    import threading

    import anyio

    from safegen.review import web

    keys = [f"many/{n}.png" for n in range(6)]
    for n, key in enumerate(keys):
        seeded.put(png(100 + n), key=key, action="allow")
    release, lock = threading.Event(), threading.Lock()
    inside: list[int] = []

    def held(data: bytes) -> bytes | None:
        with lock:
            inside.append(len(data))
        release.wait(30)
        return None

    monkeypatch.setattr(web, "_thumbnail", held)
    app = create_app(seeded.store, credentials=ReviewerCredentials.shared(TOKEN))
    cookie, token = await _login_form(app)
    import urllib.parse

    form = urllib.parse.urlencode({"csrf": token, "name": "ann", "secret": TOKEN}).encode()
    kind = ("content-type", "application/x-www-form-urlencoded")
    _, headers, _ = await _asgi(
        app, "POST", "/login", headers=[("cookie", cookie), kind], body=form
    )
    session = headers["set-cookie"].split(";")[0]
    codes: list[int] = []

    async def one(key: str) -> None:
        query = urllib.parse.urlencode({"key": key, "size": "thumb"})
        status, _, _ = await _asgi(app, "GET", f"/image?{query}", headers=[("cookie", session)])
        codes.append(status)

    async with anyio.create_task_group() as group:
        for key in keys:
            group.start_soon(one, key)
        while len(inside) < web.THUMBNAIL_WORKERS:  # readiness, not a timing assertion
            await anyio.sleep(0.01)
        for _ in range(20):  # give the other four every chance to get in
            await anyio.sleep(0.01)
        assert len(inside) == web.THUMBNAIL_WORKERS
        release.set()
    assert codes == [404] * 6
    assert len(inside) == 6


# -- the CLI and the page use the application's hooks (red team #1) ------------------------------


@pytest.mark.parametrize("command", ["approve", "reject", "serve"])
def test_a_decision_on_a_store_without_configuration_is_refused(
    seeded: Uploads,
    served: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: str,
) -> None:
    """Without the configuration the application reads (or --no-hooks), nothing is decided."""
    from safegen.cli import main

    monkeypatch.setenv("SAFEGEN_REVIEW_TOKEN", TOKEN)
    where = ["--store", str(seeded.directory), "--audit", str(seeded.audit_path)]
    args = [APPROVED, "--by", "ops"] if command != "serve" else []
    assert main(["review", command, *args, *where]) == 3
    assert "configuration" in capsys.readouterr().err
    assert seeded.store.get(APPROVED).status is AssetStatus.APPROVED
    assert served == []


def test_a_script_decides_through_the_applications_own_store(
    seeded: Uploads, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With factory=, the CLI opens the application's store: its invalidator and notifier run."""
    from safegen.cli import main

    module = tmp_path / "uploads_app_for_test.py"
    module.write_text(
        "from safegen.review import ReviewStore\n"
        "from safegen.review.audit import AuditTrail\n"
        "PURGED, HEARD = [], []\n"
        "def review_store():\n"
        f"    return ReviewStore.embedded({str(seeded.directory)!r},\n"
        f"        audit=AuditTrail.sqlite({str(seeded.audit_path)!r}),\n"
        "        notify=HEARD.append, invalidate=PURGED.extend)\n",
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    config = tmp_path / "review.toml"
    config.write_text('[store]\nfactory = "uploads_app_for_test:review_store"\n', "utf-8")
    assert main(["review", "reject", APPROVED, "--config", str(config), "--by", "ops"]) == 0
    import uploads_app_for_test as app  # type: ignore[import-not-found]

    assert app.PURGED == [APPROVED]
    assert [(c.key, c.after) for c in app.HEARD] == [(APPROVED, AssetStatus.REJECTED)]
    assert seeded.audit.history(APPROVED)[-1].actor == "ops"


def test_the_configuration_in_the_store_directory_purges_and_notifies_on_aws(
    seeded: Uploads, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """DIR/safegen-review.toml names CloudFront and SNS: a rejection from the CLI uses both."""
    import json

    from moto import mock_aws

    from safegen.cli import main
    from safegen.review.config import CONFIG_NAME
    from tests.aws import fake_client
    from tests.test_aws_publish import distribution, invalidated, queue, received

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    with mock_aws():
        client, ident = distribution()
        sns = fake_client("sns")
        topic = sns.create_topic(Name="uploads")["TopicArn"]
        sqs, url, arn = queue("decisions")
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
        (seeded.directory / CONFIG_NAME).write_text(
            f'[store]\ndirectory = "."\naudit = "../{seeded.audit_path.name}"\n'
            f'region = "us-east-1"\n[cloudfront]\ndistribution = "{ident}"\n'
            f'path_prefix = "/images/"\n[sns]\ntopic = "{topic}"\n',
            encoding="utf-8",
        )
        where = ["--store", str(seeded.directory)]
        assert main(["review", "reject", APPROVED, *where, "--by", "ops"]) == 0
        assert invalidated(client, ident) == [[f"/images/{APPROVED}"]]
        (envelope,) = received(sqs, url)
        assert json.loads(envelope["Message"])["after"] == "rejected"
    assert "WARNING" not in capsys.readouterr().err
    assert seeded.audit.history(APPROVED)[-1].event == "reject"


def test_serve_warns_when_the_configured_store_has_no_hooks(
    seeded: Uploads,
    served: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A configuration without hooks is served, with a warning on stderr and in the log."""
    from safegen.cli import main
    from safegen.review.config import CONFIG_NAME

    monkeypatch.setenv("SAFEGEN_REVIEW_TOKEN", TOKEN)
    (seeded.directory / CONFIG_NAME).write_text('[store]\ndirectory = "."\n', "utf-8")
    assert main(["review", "serve", "--store", str(seeded.directory)]) == 0
    assert "no invalidator" in capsys.readouterr().err
    assert "no invalidator" in caplog.text
    assert len(served) == 1


@pytest.mark.parametrize(
    "text",
    [
        "[store]\n",  # no location
        '[store]\ndirectory = "."\nbucket = "b"\ntable = "t"\n',  # two
        '[store]\nbucket = "b"\n',  # no table
        '[store]\ndirectory = "."\ncloudfront = "E1"\n',  # misplaced setting
        '[store]\ndirectory = "."\n[cdn]\ndistribution = "E1"\n',  # unknown table
        '[store]\nfactory = "m:f"\n[sns]\ntopic = "arn"\n',  # factory and hooks
        '[store]\ndirectory = "."\npending_deliverable = "yes"\n',
        "[store\n",
    ],
)
def test_a_configuration_that_cannot_be_followed_is_refused(tmp_path: Path, text: str) -> None:
    """A misspelt or ambiguous configuration is an error, never a store without its hooks."""
    from safegen.review.config import StoreConfig

    path = tmp_path / "review.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigurationError):
        StoreConfig.from_file(path)


@given(st.lists(st.sampled_from(["attempt", "succeed"]), max_size=60), st.integers(0, 8))
def test_attempts_granted_between_successes_never_exceed_the_free_ones(
    steps: list[str], free: int
) -> None:
    """However attempts and successes interleave (no time passing), at most *free* are checked."""
    backoff = LoginBackoff(free=free, clock=Clock())
    granted = 0
    for step in steps:
        if step == "succeed":
            backoff.succeeded("a")
            granted = 0
        elif backoff.attempt("a") == 0:
            granted += 1
        assert granted <= max(free, 1)  # free=0: each attempt waits for the one before
        assert granted >= free or backoff.wait("a") == 0  # nothing waits before the free ones
