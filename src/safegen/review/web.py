"""The review page: a small web app where reviewers browse, approve and reject uploads.

:func:`create_app` builds an ASGI app (Starlette) over a review store; ``safegen review serve``
runs it with uvicorn. It needs the ``review`` extra: ``pip install 'safegen[review]'``.

What it enforces, whatever the request:

- every page and every image is for signed-in reviewers only; credentials come from
  configuration (:class:`ReviewerCredentials`), are compared in constant time, and a client
  that keeps failing waits longer and longer (:class:`LoginBackoff`);
- the session is a random id in a signed cookie (``HttpOnly``, ``SameSite=Strict``, ``Secure``
  over https) kept on the server, so signing out ends it;
- every request that changes something is a POST carrying the session's CSRF token, and a
  request from another origin (``Origin`` or ``Referer``) is refused; a GET changes nothing;
- keys are read from query strings and form fields, never from the path, and refused (400)
  before the store when they cannot be keys; the store refuses the rest;
- everything shown is HTML-escaped (Jinja2 with autoescaping), no page runs a script, and the
  headers forbid framing, sniffing, caching and inline script.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import importlib.resources
import logging
import os
import re
import secrets
import threading
import time
import unicodedata
import urllib.parse
from collections import OrderedDict
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import attrs
import itsdangerous
import jinja2
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from safegen.errors import ConfigurationError
from safegen.review.audit import AuditTrail
from safegen.review.events import AssetStatus
from safegen.review.ports import ConflictError, InvalidKeyError, check_key
from safegen.review.store import Asset, ReviewStore

__all__ = [
    "THUMBNAIL_CACHE_BYTES",
    "THUMBNAIL_MEMORY",
    "THUMBNAIL_PIXELS",
    "THUMBNAIL_WORKERS",
    "TOKEN_ENV",
    "TOKEN_FILE_ENV",
    "LoginBackoff",
    "ReviewerCredentials",
    "create_app",
    "hash_password",
]

_log = logging.getLogger(__name__)

TOKEN_ENV = "SAFEGEN_REVIEW_TOKEN"
"""The environment variable holding a shared reviewers' token."""
TOKEN_FILE_ENV = "SAFEGEN_REVIEW_TOKEN_FILE"
"""The environment variable naming a credentials file (:meth:`ReviewerCredentials.from_file`)."""

MIN_TOKEN_CHARS = 16
"""The shortest plain token accepted (a password that short should be hashed instead)."""
MAX_SECRET_CHARS = 1024
MAX_NAME_CHARS = 64
MAX_KEY_CHARS = 1024
MAX_REASON_CHARS = 2000
MAX_CURSOR_CHARS = 2048
MAX_FORM_BYTES = 64 * 1024
MAX_HISTORY = 500
COOKIE = "safegen_review"
THUMBNAIL_SIDE = 240
THUMBNAIL_PIXELS = 64_000_000
"""The most pixels an image's header may declare for it to get a thumbnail."""
THUMBNAIL_MEMORY = 64 * 1024 * 1024
"""The most memory (bytes, estimated from the header before decoding) one thumbnail may take;
a larger image gets none ("too large to preview"). A JPEG is decoded at 1/2 to 1/8 scale to fit."""
THUMBNAIL_WORKERS = 2
"""Thumbnails made at once, whoever asks: the others wait for a slot."""
THUMBNAIL_CACHE_BYTES = 16 * 1024 * 1024
"""The most bytes of thumbnails kept (by the image's SHA-256), so each is made once."""

_SCRYPT = "scrypt"
_SCRYPT_MEMORY = 256 * 1024 * 1024
_NAME = re.compile(r"[^\x00-\x1f\x7f:]{1,64}")
_INLINE_TYPES = frozenset(
    {"image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp", "image/tiff"}
)


# -- credentials ---------------------------------------------------------------------------


def hash_password(password: str, *, n: int = 2**15, r: int = 8, p: int = 1) -> str:
    """Return a salted scrypt hash of *password* for a credentials file.

    The result reads ``scrypt$n$r$p$salt$hash`` (base64); :class:`ReviewerCredentials` checks a
    password against it. ``safegen review hash-password`` prints one.

    :param n: scrypt's cost (a power of two, 16384 to 1048576).
    :param r: scrypt's block size (1-16).
    :param p: scrypt's parallelism (1-16).
    :raises ConfigurationError: the password is shorter than 8 characters, or a setting is out
        of range (at most 128 MiB of memory per check).
    """
    if len(password) < 8:
        raise ConfigurationError("a reviewer's password needs at least 8 characters")
    _scrypt_settings(n, r, p)
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, n, r, p)
    return "$".join((_SCRYPT, str(n), str(r), str(p), _b64(salt), _b64(digest)))


def _scrypt_settings(n: int, r: int, p: int) -> None:
    if (
        not 2**14 <= n <= 2**20
        or n & (n - 1)
        or not 1 <= r <= 16
        or not 1 <= p <= 16
        or 128 * r * n > _SCRYPT_MEMORY // 2
    ):
        raise ConfigurationError(
            "scrypt settings out of range: n a power of two from 16384 to 1048576, r 1-16, "
            "p 1-16, and at most 128 MiB (128 * r * n bytes)"
        )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=_SCRYPT_MEMORY, dklen=32
    )


@attrs.frozen
class _Hashed:
    n: int
    r: int
    p: int
    salt: bytes
    digest: bytes

    @classmethod
    def parse(cls, text: str) -> _Hashed:
        parts = text.split("$")
        try:
            if len(parts) != 6 or parts[0] != _SCRYPT:
                raise ValueError
            n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
            salt = base64.b64decode(parts[4], validate=True)
            digest = base64.b64decode(parts[5], validate=True)
        except ValueError:
            raise ConfigurationError(
                "a hashed password must read scrypt$n$r$p$salt$hash "
                "(safegen review hash-password prints one)"
            ) from None
        if len(digest) != 32:
            raise ConfigurationError("a hashed password's hash must be 32 bytes")
        _scrypt_settings(n, r, p)
        return cls(n, r, p, salt, digest)

    def matches(self, secret: str) -> bool:
        return hmac.compare_digest(_scrypt(secret, self.salt, self.n, self.r, self.p), self.digest)


def _plain(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).digest()


def _check_name(name: str) -> str:
    name = unicodedata.normalize("NFC", name.strip())
    if not _NAME.fullmatch(name) or not name.isprintable():
        raise ConfigurationError(
            f"a reviewer's name must be 1-{MAX_NAME_CHARS} printable characters without ':'"
        )
    return name


def _check_token(token: str, where: str) -> str:
    if len(token) < MIN_TOKEN_CHARS or len(token) > MAX_SECRET_CHARS or not token.isprintable():
        raise ConfigurationError(
            f"{where}: a reviewers' token must be {MIN_TOKEN_CHARS}-{MAX_SECRET_CHARS} printable "
            "characters (hash a shorter password: safegen review hash-password)"
        )
    return token


def _table(named: Mapping[str, bytes | _Hashed]) -> Mapping[str, bytes | _Hashed]:
    return MappingProxyType(dict(named))


@attrs.frozen
class ReviewerCredentials:
    """Who may sign in to the review page.

    Either one shared token (each reviewer types their own name, recorded as the actor: a
    reviewer with the token can sign in under any name), or named reviewers, each with a
    token or a scrypt-hashed password (:func:`hash_password`). Secrets are compared in
    constant time; an unknown name costs as much as a wrong secret.

    Build one with :meth:`shared`, :meth:`from_file` or :meth:`from_environment`.
    """

    _shared: bytes | None = attrs.field(default=None, alias="shared_digest", repr=False)
    _named: Mapping[str, bytes | _Hashed] = attrs.field(
        factory=dict, alias="named", repr=False, converter=_table
    )

    @classmethod
    def shared(cls, token: str) -> ReviewerCredentials:
        """Accept anyone with *token* (at least 16 characters), under the name they give."""
        return cls(shared_digest=_plain(_check_token(token, "the shared token")))

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> ReviewerCredentials:
        """Read credentials from *path*.

        Either one line holding a shared token, or one line per reviewer, ``name:secret``,
        where the secret is a token or a hash from :func:`hash_password`. Blank lines and
        lines starting with ``#`` are skipped.

        :raises ConfigurationError: the file cannot be read, or a line cannot be used (the
            message gives its number, never its content).
        """
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise ConfigurationError(
                f"cannot read the reviewers' credentials file: {type(error).__name__}"
            ) from None
        lines = [
            (number, line.strip())
            for number, line in enumerate(text.splitlines(), 1)
            if line.strip() and not line.strip().startswith("#")
        ]
        if len(lines) == 1 and ":" not in lines[0][1]:
            return cls.shared(lines[0][1])
        named: dict[str, bytes | _Hashed] = {}
        for number, line in lines:
            name, colon, secret = line.partition(":")
            where = f"credentials file, line {number}"
            if not colon:
                raise ConfigurationError(f"{where}: expected name:secret")
            try:
                name = _check_name(name)
            except ConfigurationError as error:
                raise ConfigurationError(f"{where}: {error}") from None
            if name in named:
                raise ConfigurationError(f"{where}: the reviewer {name!r} is named twice")
            secret = secret.strip()
            named[name] = (
                _Hashed.parse(secret)
                if secret.startswith(_SCRYPT + "$")
                else _plain(_check_token(secret, where))
            )
        if not named:
            raise ConfigurationError("the reviewers' credentials file names nobody")
        return cls(named=named)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> ReviewerCredentials:
        """Read :data:`TOKEN_FILE_ENV` (a file, see :meth:`from_file`) or :data:`TOKEN_ENV`.

        :raises ConfigurationError: neither is set, or what is set cannot be used.
        """
        environ = os.environ if environ is None else environ
        if environ.get(TOKEN_FILE_ENV):
            return cls.from_file(environ[TOKEN_FILE_ENV])
        if environ.get(TOKEN_ENV):
            return cls.shared(environ[TOKEN_ENV])
        raise ConfigurationError(
            f"no reviewers' credentials: set {TOKEN_ENV} or {TOKEN_FILE_ENV} (or --token-file)"
        )

    @property
    def is_shared(self) -> bool:
        """Whether reviewers share one token and name themselves."""
        return self._shared is not None

    def check(self, name: str, secret: str) -> str | None:
        """Return the reviewer's name if *secret* is theirs, else ``None``."""
        try:
            name = _check_name(name)
        except ConfigurationError:
            return None
        if len(secret) > MAX_SECRET_CHARS:
            return None
        given = _plain(secret)
        if self._shared is not None:
            return name if hmac.compare_digest(given, self._shared) else None
        expected = self._named.get(name)
        if isinstance(expected, _Hashed):
            return name if expected.matches(secret) else None
        if expected is None:  # cost as much as a known name, so names cannot be probed
            hmac.compare_digest(given, _plain(secrets.token_hex(16)))
            hashed = next((v for v in self._named.values() if isinstance(v, _Hashed)), None)
            if hashed is not None:
                hashed.matches(secret)
            return None
        return name if hmac.compare_digest(given, expected) else None


# -- failed logins ----------------------------------------------------------------------------


@attrs.define
class LoginBackoff:
    """Per-client backoff after failed sign-ins.

    A client (an address) may fail *free* times; after that it waits *base* seconds, doubled at
    each further failure, up to *cap*, before its next attempt is even checked. A success
    forgets its failures. At most *clients* addresses are remembered (the oldest go first).

    :param clock: seconds, monotonic (tests pass their own).
    """

    free: int = 5
    base: float = 1.0
    cap: float = 900.0
    clients: int = 10_000
    clock: Callable[[], float] = time.monotonic
    _failures: OrderedDict[str, tuple[int, float]] = attrs.field(factory=OrderedDict, init=False)
    _lock: threading.Lock = attrs.field(factory=threading.Lock, init=False)

    def wait(self, client: str) -> float:
        """Seconds *client* must still wait before an attempt is checked (0: none)."""
        with self._lock:
            count, last = self._failures.get(client, (0, 0.0))
        if count < self.free:
            return 0.0
        delay = min(self.cap, self.base * 2.0 ** (count - self.free))
        return max(0.0, last + delay - self.clock())

    def attempt(self, client: str) -> float:
        """Reserve an attempt by *client*: ``0`` and counted as failed, or the seconds to wait.

        The attempt is counted *before* its credentials are checked (:meth:`succeeded`
        forgets it), so guesses sent at once are counted as they arrive, not as they finish:
        at most *free* are ever checked before the first wait, however many are in flight.
        An attempt that must wait is not counted.
        """
        with self._lock:
            now = self.clock()
            count, last = self._failures.get(client, (0, 0.0))
            if count >= self.free:
                delay = min(self.cap, self.base * 2.0 ** (count - self.free))
                if last + delay - now > 0:
                    return last + delay - now
            self._failures.pop(client, None)
            self._failures[client] = (count + 1, now)
            while len(self._failures) > self.clients:
                self._failures.popitem(last=False)
        return 0.0

    def failed(self, client: str) -> None:
        """Count a failed attempt by *client*."""
        with self._lock:
            count, _ = self._failures.pop(client, (0, 0.0))
            self._failures[client] = (count + 1, self.clock())
            while len(self._failures) > self.clients:
                self._failures.popitem(last=False)

    def succeeded(self, client: str) -> None:
        """Forget *client*'s failures."""
        with self._lock:
            self._failures.pop(client, None)


# -- sessions ---------------------------------------------------------------------------------


@attrs.frozen
class _Session:
    csrf: str
    reviewer: str | None = None
    sid: str | None = None


@attrs.define
class _Sessions:
    """Signed-in sessions, kept on the server: a cookie names one; signing out forgets it."""

    lifetime: float
    clock: Callable[[], float]
    limit: int = 10_000
    _live: OrderedDict[str, tuple[str, str, float]] = attrs.field(factory=OrderedDict, init=False)
    _lock: threading.Lock = attrs.field(factory=threading.Lock, init=False)

    def start(self, reviewer: str) -> _Session:
        sid, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        with self._lock:
            self._live[sid] = (reviewer, csrf, self.clock() + self.lifetime)
            while len(self._live) > self.limit:
                self._live.popitem(last=False)
        return _Session(csrf=csrf, reviewer=reviewer, sid=sid)

    def find(self, sid: str) -> _Session | None:
        with self._lock:
            found = self._live.get(sid)
            if found is None:
                return None
            if found[2] <= self.clock():
                del self._live[sid]
                return None
        return _Session(csrf=found[1], reviewer=found[0], sid=sid)

    def end(self, sid: str) -> None:
        with self._lock:
            self._live.pop(sid, None)


@attrs.define
class _ThumbnailCache:
    """Thumbnails by the SHA-256 of their image (``None``: it has none), at most *limit* bytes."""

    limit: int = THUMBNAIL_CACHE_BYTES
    _kept: OrderedDict[str, bytes | None] = attrs.field(factory=OrderedDict, init=False)
    _size: int = attrs.field(default=0, init=False)
    _lock: threading.Lock = attrs.field(factory=threading.Lock, init=False)

    def get(self, sha256: str) -> tuple[bool, bytes | None]:
        with self._lock:
            if sha256 not in self._kept:
                return False, None
            self._kept.move_to_end(sha256)
            return True, self._kept[sha256]

    @staticmethod
    def _cost(sha256: str, thumb: bytes | None) -> int:
        return 64 + len(sha256) + (0 if thumb is None else len(thumb))

    def put(self, sha256: str, thumb: bytes | None) -> None:
        with self._lock:
            if sha256 in self._kept:
                self._size -= self._cost(sha256, self._kept.pop(sha256))
            if self._cost(sha256, thumb) > self.limit:
                return
            self._kept[sha256] = thumb
            self._size += self._cost(sha256, thumb)
            while self._size > self.limit:
                self._size -= self._cost(*self._kept.popitem(last=False))

    @property
    def size(self) -> int:
        """Bytes kept, by the cache's own count."""
        return self._size


# -- the app ----------------------------------------------------------------------------------

_CSP = (
    "default-src 'none'; img-src 'self'; style-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
_HEADERS = (
    (b"content-security-policy", _CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"cache-control", b"no-store"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
)


class _SecurityHeaders:
    """Put the security headers on every response, whatever produced it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name for name, _ in _HEADERS}
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
                message["headers"] = headers + list(_HEADERS)
            await send(message)

        await self.app(scope, receive, sending)


def _templates() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("safegen.review", "templates"),
        autoescape=True,  # every template, whatever its name
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _stylesheet() -> bytes:
    return importlib.resources.files("safegen.review").joinpath("templates/review.css").read_bytes()


def _origin(url: str) -> tuple[str, str, int] | None:
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if scheme not in ("http", "https") or not host:
        return None
    return scheme, host, port if port is not None else (443 if scheme == "https" else 80)


def _bad(detail: str) -> HTTPException:
    return HTTPException(400, detail)


def _key(value: object) -> str:
    """Return the key a request names, or raise 400 when it cannot be a key."""
    if not isinstance(value, str) or not value:
        raise _bad("no image named")
    if len(value) > MAX_KEY_CHARS or not value.isprintable():
        raise _bad("not an image key")
    try:
        return check_key(value)
    except InvalidKeyError:
        raise _bad("not an image key") from None


def _status(value: str) -> AssetStatus:
    try:
        return AssetStatus(value)
    except ValueError:
        raise HTTPException(404, "no such queue") from None


@attrs.define
class _ReviewApp:
    store: ReviewStore
    audit: AuditTrail | None
    credentials: ReviewerCredentials
    backoff: LoginBackoff
    sessions: _Sessions
    signer: itsdangerous.URLSafeTimedSerializer
    secure_cookies: bool | None
    page_size: int
    lifetime: float
    checks: threading.BoundedSemaphore
    thumbnails: _ThumbnailCache = attrs.field(factory=lambda: _ThumbnailCache())
    thumbnail_slots: threading.BoundedSemaphore = attrs.field(
        factory=lambda: threading.BoundedSemaphore(THUMBNAIL_WORKERS)
    )
    templates: jinja2.Environment = attrs.field(factory=_templates)
    css: bytes = attrs.field(factory=_stylesheet)

    # -- plumbing --

    def session(self, request: Request) -> _Session | None:
        raw = request.cookies.get(COOKIE)
        if not raw or len(raw) > 512:
            return None
        try:
            data = self.signer.loads(raw, max_age=int(self.lifetime))
        except itsdangerous.BadData:
            return None
        if not isinstance(data, dict):
            return None
        sid, csrf = data.get("s"), data.get("c")
        if isinstance(sid, str):
            return self.sessions.find(sid)
        if isinstance(csrf, str) and len(csrf) == 43:
            return _Session(csrf=csrf)
        return None

    def reviewer(self, request: Request) -> tuple[str, _Session]:
        session = self.session(request)
        if session is None or session.reviewer is None:
            raise HTTPException(401, "sign in first")
        return session.reviewer, session

    def set_cookie(self, response: Response, request: Request, session: _Session) -> None:
        payload = {"s": session.sid} if session.sid else {"c": session.csrf}
        secure = (
            request.url.scheme == "https" if self.secure_cookies is None else self.secure_cookies
        )
        response.set_cookie(
            COOKIE,
            self.signer.dumps(payload),
            max_age=int(self.lifetime),
            path="/",
            secure=secure,
            httponly=True,
            samesite="strict",
        )

    def render(self, request: Request, name: str, code: int = 200, **values: Any) -> Response:
        session = values.pop("session", None)
        body = self.templates.get_template(name).render(
            reviewer=None if session is None else session.reviewer,
            csrf=None if session is None else session.csrf,
            statuses=[
                s.value for s in (AssetStatus.PENDING, AssetStatus.REJECTED, AssetStatus.APPROVED)
            ],
            **values,
        )
        return HTMLResponse(body, status_code=code)

    async def form(self, request: Request, session: _Session | None) -> dict[str, str]:
        """Read a POST's form, refusing what is too big, cross-origin or without the token."""
        self.same_origin(request)
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind != "application/x-www-form-urlencoded":
            raise HTTPException(415, "send the page's own form")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_FORM_BYTES:
                raise HTTPException(413, "form too large")
        try:
            pairs = urllib.parse.parse_qsl(
                body.decode("utf-8"), keep_blank_values=True, max_num_fields=20
            )
        except (UnicodeDecodeError, ValueError):
            raise _bad("unreadable form") from None
        fields: dict[str, str] = {}
        for name, value in pairs:
            if name in fields:
                raise _bad("a field given twice")
            fields[name] = value
        token = fields.get("csrf", "")
        if session is None or not hmac.compare_digest(
            token.encode("utf-8", "surrogatepass"), session.csrf.encode()
        ):
            raise HTTPException(403, "the form has expired: reload the page and try again")
        return fields

    def same_origin(self, request: Request) -> None:
        own = _origin(str(request.base_url))
        for header in ("origin", "referer"):
            value = request.headers.get(header)
            if value is not None:
                if _origin(value) != own or own is None:
                    raise HTTPException(403, "a request from another site is refused")
                return

    # -- pages --

    async def login_page(self, request: Request) -> Response:
        session = self.session(request)
        if session is not None and session.reviewer is not None:
            return RedirectResponse("/queue/pending", status_code=303)
        session = session or _Session(csrf=secrets.token_urlsafe(32))
        response = self.render(
            request, "login.html", session=session, shared=self.credentials.is_shared, error=None
        )
        self.set_cookie(response, request, session)
        return response

    async def login(self, request: Request) -> Response:
        client = request.client.host if request.client else "unknown"
        session = self.session(request)
        fields = await self.form(request, session)
        name, secret = fields.get("name", ""), fields.get("secret", "")
        # One slot of the global bound on checks in flight (scrypt holds up to 128 MiB each),
        # taken without waiting: when all are busy the answer is 503, never a queue.
        if not self.checks.acquire(blocking=False):
            return self.refuse(request, 503, "Too many sign-ins at once: try again.", 1.0)
        try:
            # Counted as a failure before the check (forgotten on success), so guesses sent
            # at once wait as guesses sent one after another do.
            wait = self.backoff.attempt(client)
            if wait > 0:
                return self.refuse(
                    request, 429, "Too many failed sign-ins: wait a little and try again.", wait
                )
            reviewer = await _threaded(self.credentials.check, name, secret)
        finally:
            self.checks.release()
        if reviewer is None:
            fresh = _Session(csrf=secrets.token_urlsafe(32))
            response = self.render(
                request,
                "login.html",
                code=401,
                session=fresh,
                shared=self.credentials.is_shared,
                error="Wrong name or secret.",
            )
            self.set_cookie(response, request, fresh)
            return response
        self.backoff.succeeded(client)
        if session is not None and session.sid is not None:
            self.sessions.end(session.sid)
        response = RedirectResponse("/queue/pending", status_code=303)
        self.set_cookie(response, request, self.sessions.start(reviewer))
        return response

    def refuse(self, request: Request, code: int, message: str, wait: float) -> Response:
        refused = self.render(request, "error.html", code=code, message=message)
        refused.headers["retry-after"] = str(max(1, int(wait + 0.999)))
        return refused

    async def logout(self, request: Request) -> Response:
        session = self.session(request)
        await self.form(request, session)
        if session is not None and session.sid is not None:
            self.sessions.end(session.sid)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
        return response

    async def home(self, request: Request) -> Response:
        self.reviewer(request)
        return RedirectResponse("/queue/pending", status_code=303)

    async def queue(self, request: Request) -> Response:
        _, session = self.reviewer(request)
        status = _status(request.path_params["status"])
        after = request.query_params.get("after") or None
        if after is not None and (len(after) > MAX_CURSOR_CHARS or not after.isprintable()):
            raise _bad("not a page cursor")
        try:
            page = await _threaded(
                self.store.list, status=status, limit=self.page_size, after=after
            )
        except (ValueError, LookupError):
            raise _bad("not a page cursor") from None
        return self.render(
            request,
            "queue.html",
            session=session,
            status=status.value,
            assets=[_view(asset) for asset in page.assets],
            next=page.next,
        )

    async def asset(self, request: Request) -> Response:
        _, session = self.reviewer(request)
        key = _key(request.query_params.get("key"))
        asset = await self.lookup(key)
        history = await _threaded(self.history, key)
        done = request.query_params.get("done")
        return self.render(
            request,
            "asset.html",
            session=session,
            asset=_view(asset),
            verdict=None if asset.verdict is None else asset.verdict.to_dict(),
            metadata=sorted((str(k), v) for k, v in (asset.metadata or {}).items()),
            history=history,
            done=done if done in ("approved", "rejected") else None,
        )

    async def lookup(self, key: str) -> Asset:
        try:
            asset: Asset = await _threaded(self.store.get, key)
        except LookupError:
            raise HTTPException(404, "no such image") from None
        except ValueError:
            raise _bad("not an image key") from None
        return asset

    def history(self, key: str) -> list[dict[str, Any]]:
        if self.audit is None:
            return []
        return [entry.to_dict() for entry in self.audit.history(key)[-MAX_HISTORY:]]

    async def image(self, request: Request) -> Response:
        self.reviewer(request)
        key = _key(request.query_params.get("key"))
        asset = await self.lookup(key)
        if request.query_params.get("size") == "thumb":
            thumb = await self.thumbnail(key, asset)
            if thumb is None:
                raise HTTPException(404, "no preview of this image (unreadable or too large)")
            return Response(thumb, media_type="image/png")
        try:
            data = await _threaded(self.store.open, key, reviewer=True)
        except LookupError:
            raise HTTPException(404, "no such image") from None
        except ValueError:
            raise _bad("not an image key") from None
        except (ConflictError, PermissionError):
            raise HTTPException(409, "this image is changing: try again") from None
        kind = str(asset.content_type or "").lower()
        if kind in _INLINE_TYPES:
            return Response(data, media_type=kind)
        return Response(
            data,
            media_type="application/octet-stream",
            headers={"content-disposition": "attachment"},
        )

    async def thumbnail(self, key: str, asset: Asset) -> bytes | None:
        """Return the image's thumbnail: cached by its SHA-256, else made in one of few slots."""
        if asset.sha256 is not None:
            found, thumb = self.thumbnails.get(asset.sha256)
            if found:
                return thumb
        try:
            made: bytes | None = await _threaded(self.make_thumbnail, key, asset.sha256)
        except LookupError:
            raise HTTPException(404, "no such image") from None
        except ValueError:
            raise _bad("not an image key") from None
        except (ConflictError, PermissionError):
            raise HTTPException(409, "this image is changing: try again") from None
        return made

    def make_thumbnail(self, key: str, sha256: str | None) -> bytes | None:
        with self.thumbnail_slots:  # at most THUMBNAIL_WORKERS decodes at once
            if sha256 is not None:
                found, thumb = self.thumbnails.get(sha256)
                if found:  # made by another request while this one waited
                    return thumb
            data = self.store.open(key, reviewer=True)
            thumb = _thumbnail(data)
            self.thumbnails.put(hashlib.sha256(data).hexdigest(), thumb)
            return thumb

    async def decide(self, request: Request) -> Response:
        action = request.path_params["action"]
        if action not in ("approve", "reject"):
            raise HTTPException(404, "no such action")
        reviewer, session = self.reviewer(request)
        fields = await self.form(request, session)
        key = _key(fields.get("key"))
        reason = fields.get("reason", "").strip() or None
        if reason is not None and (len(reason) > MAX_REASON_CHARS or "\x00" in reason):
            raise _bad(f"a reason is at most {MAX_REASON_CHARS} characters")
        act = self.store.approve if action == "approve" else self.store.reject
        try:
            await _threaded(act, key, by=reviewer, reason=reason)
        except LookupError:
            raise HTTPException(404, "no such image") from None
        except InvalidKeyError:
            raise _bad("not an image key") from None
        except (ConflictError, ValueError, PermissionError) as error:
            raise HTTPException(409, _short(error)) from None
        done = "approved" if action == "approve" else "rejected"
        query = urllib.parse.urlencode({"key": key, "done": done})
        return RedirectResponse(f"/asset?{query}", status_code=303)

    async def stylesheet(self, request: Request) -> Response:
        return Response(self.css, media_type="text/css")

    async def error(self, request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        if status == 401:
            if request.method == "GET" and request.url.path != "/image":
                return RedirectResponse("/login", status_code=303)
            message = "Sign in first."
        else:
            detail = exc.detail if isinstance(exc, HTTPException) else ""
            message = detail if status < 500 else "Something failed."
        session = self.session(request) if status < 500 else None
        if session is not None and not session.reviewer:
            session = None
        return self.render(request, "error.html", code=status, message=message, session=session)


async def _no_icon(request: Request) -> Response:
    return Response(status_code=204)


def _short(error: Exception) -> str:
    return str(error).splitlines()[0][:200] if str(error) else type(error).__name__


async def _threaded(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(function, *args, **kwargs)


def _view(asset: Asset) -> dict[str, Any]:
    verdict = asset.verdict
    return {
        "key": asset.key,
        "status": asset.status.value,
        "content_type": asset.content_type,
        "size": asset.size,
        "sha256": asset.sha256,
        "created": asset.created,
        "updated": asset.updated,
        "updated_by": asset.updated_by,
        "reason": asset.reason,
        "action": None if verdict is None else verdict.action,
        "labels": () if verdict is None else verdict.labels,
        "query": urllib.parse.urlencode({"key": asset.key}),
    }


def _thumbnail(data: bytes) -> bytes | None:
    """Return a PNG at most :data:`THUMBNAIL_SIDE` a side (``None``: the image is unreadable)."""
    import io

    from safegen import _pillow
    from safegen.errors import InvalidImageError

    try:
        # The header is read first: past THUMBNAIL_PIXELS, or THUMBNAIL_MEMORY for the decode
        # plus one full copy (upright, convert), nothing is decoded at all (a small PNG can
        # declare 7000x7000); a large JPEG is decoded at reduced scale to fit instead.
        image = _pillow.open_image(
            data, max_pixels=THUMBNAIL_PIXELS, memory=THUMBNAIL_MEMORY, working=4, reduce=True
        )
        with _pillow.reading():
            image = _pillow.upright(image)
            image.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
            if image.mode not in ("RGB", "RGBA", "L", "LA"):
                image = image.convert("RGBA")
            out = io.BytesIO()
            image.save(out, format="PNG")
    except InvalidImageError:
        return None
    return out.getvalue()


def create_app(
    store: ReviewStore,
    *,
    audit: AuditTrail | None = None,
    credentials: ReviewerCredentials,
    session_secret: bytes | None = None,
    session_hours: float = 8.0,
    secure_cookies: bool | None = None,
    backoff: LoginBackoff | None = None,
    page_size: int = 24,
    max_checks: int = 4,
    clock: Callable[[], float] = time.monotonic,
) -> ASGIApp:
    """Build the review page's ASGI app over *store*.

    :param store: the review store (:class:`~safegen.review.store.ReviewStore`): the app
        approves and rejects through it, so its audit trail records each action with the
        reviewer's name as the actor. Pass the same fully configured store the application
        uses (its invalidator and notifiers, and its ``pending_deliverable``; built from one
        :class:`~safegen.review.config.StoreConfig` both read): a store without an
        invalidator rejects images that stay in the CDN's cache, and one without notifiers
        tells nobody. A store with no invalidator is logged as a warning.
    :param audit: the audit trail to read each image's history from (none shown without);
        the store's own, so what the page shows is what the store appended.
    :param credentials: who may sign in (:class:`ReviewerCredentials`); required.
    :param session_secret: the key that signs session cookies; a random one by default
        (sessions then end when the process does).
    :param session_hours: how long a session lasts.
    :param secure_cookies: mark the cookie ``Secure``: ``None`` (default) when the request
        came over https (behind a proxy, as uvicorn's ``--forwarded-allow-ips`` reports it).
    :param backoff: the failed sign-in policy (:class:`LoginBackoff`).
    :param page_size: images on a queue's page.
    :param max_checks: sign-in checks in flight at once, whoever sends them (each scrypt
        check holds up to 128 MiB); a sign-in beyond them is answered 503 at once.
    :param clock: monotonic seconds for sessions and backoff (tests pass their own).
    :raises ConfigurationError: no credentials, or a setting out of range.
    """
    if not isinstance(credentials, ReviewerCredentials):
        raise ConfigurationError("create_app needs credentials=ReviewerCredentials(...)")
    if type(max_checks) is not int or not 1 <= max_checks <= 64:
        raise ConfigurationError(f"max_checks must be 1-64, got {max_checks!r}")
    if not 1 <= page_size <= 500:
        raise ConfigurationError(f"page_size must be 1-500, got {page_size}")
    if not 0 < session_hours <= 24 * 7:
        raise ConfigurationError(
            f"session_hours must be over 0 and at most 168, got {session_hours}"
        )
    if store.invalidate is None or not store.notify:
        _log.warning(
            "review page: the store has %s: decisions made on the page %s; pass the store "
            "the application uses (safegen.review.config.StoreConfig)",
            "no invalidator" if store.invalidate is None else "no notifier",
            "purge no CDN cache" if store.invalidate is None else "notify nobody",
        )
    secret = secrets.token_bytes(32) if session_secret is None else session_secret
    if len(secret) < 32:
        raise ConfigurationError("session_secret needs at least 32 bytes")
    lifetime = session_hours * 3600.0
    review = _ReviewApp(
        store=store,
        audit=audit,
        credentials=credentials,
        backoff=backoff if backoff is not None else LoginBackoff(clock=clock),
        sessions=_Sessions(lifetime=lifetime, clock=clock),
        signer=itsdangerous.URLSafeTimedSerializer(secret, salt="safegen.review.session"),
        secure_cookies=secure_cookies,
        page_size=page_size,
        lifetime=lifetime,
        checks=threading.BoundedSemaphore(max_checks),
    )
    routes = [
        Route("/", review.home, methods=["GET"]),
        Route("/login", review.login_page, methods=["GET"]),
        Route("/login", review.login, methods=["POST"]),
        Route("/logout", review.logout, methods=["POST"]),
        Route("/queue/{status}", review.queue, methods=["GET"]),
        Route("/asset", review.asset, methods=["GET"]),
        Route("/asset/{action:str}", review.decide, methods=["POST"]),
        Route("/image", review.image, methods=["GET"]),
        Route("/static/review.css", review.stylesheet, methods=["GET"]),
        Route("/favicon.ico", _no_icon, methods=["GET"]),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={HTTPException: review.error, Exception: review.error},
    )
    return _SecurityHeaders(app)
