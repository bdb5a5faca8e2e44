"""A loopback server that speaks AWS's wire protocols, with faults you choose.

Real boto3 clients pointed at it (``endpoint_url``) go through botocore's whole stack:
signing, HTTP, parsing, retries. It answers Rekognition ``DetectModerationLabels``,
Comprehend ``DetectToxicContent`` and ``ClassifyDocument`` (JSON 1.1, routed by
``X-Amz-Target``), SageMaker Runtime ``InvokeEndpoint`` and Bedrock Runtime ``InvokeModel``
(REST-JSON), with scripted responses, latency, a requests-per-second quota, and injected
errors, hangs, dropped connections and malformed bodies, all from one seed. It counts what
it received.

It speaks each service truthfully: an operation it does not implement gets AWS's answer for
an unknown operation (``UnknownOperationException``), and injected errors use the codes,
HTTP statuses and members of the operation's own errors, read from botocore's service model.
"""

from __future__ import annotations

import contextlib
import json
import random
import select
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import attrs

__all__ = ["OPERATIONS", "AWSEmulator", "Counts", "Faults"]

_TARGETS = {
    "RekognitionService.DetectModerationLabels": ("rekognition", "DetectModerationLabels"),
    "Comprehend_20171127.DetectToxicContent": ("comprehend", "DetectToxicContent"),
    "Comprehend_20171127.ClassifyDocument": ("comprehend", "ClassifyDocument"),
}
_REST = {  # (first path segment, last path segment) -> service and operation
    ("endpoints", "invocations"): ("sagemaker-runtime", "InvokeEndpoint"),
    ("model", "invoke"): ("bedrock-runtime", "InvokeModel"),
}
#: Every operation the emulator implements, as (service, operation).
OPERATIONS: tuple[tuple[str, str], ...] = (*_TARGETS.values(), *_REST.values())
_SERVICE_OF = {operation: service for service, operation in OPERATIONS}
_TOXIC_LABELS = ("PROFANITY", "HATE_SPEECH", "INSULT", "GRAPHIC", "HARASSMENT_OR_ABUSE",
                 "SEXUAL", "VIOLENCE_OR_THREAT")  # fmt: skip
# An 80x80 JPEG and PNG (the smallest pictures Rekognition takes), for generators' answers.
_JPEG = (
    "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAgGBgcGBQgHBwcJCQgKDBQNDAsLDBkSEw8UHRofHh0aHBwgJC4nICIsIxwc"
    "KDcpLDAxNDQ0Hyc5PTgyPC4zNDL/2wBDAQkJCQwLDBgNDRgyIRwhMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIy"
    "MjIyMjIyMjIyMjIyMjIyMjIyMjL/wAARCABQAFADASIAAhEBAxEB/8QAFQABAQAAAAAAAAAAAAAAAAAAAAP/xAAUEAEA"
    "AAAAAAAAAAAAAAAAAAAA/8QAFgEBAQEAAAAAAAAAAAAAAAAAAAUG/8QAFBEBAAAAAAAAAAAAAAAAAAAAAP/aAAwDAQAC"
    "EQMRAD8AoA0SIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA//Z"
)
_PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAFAAAABQCAIAAAABc2X6AAAAaUlEQVR42u3PAQEAMAQAMB5TJsHEeg+2BsvqiUteHCMs"
    "LCwsLCwsLCwsLCwsLCwsLCwsLCwsLCwsLCwsLCwsLCwsLCwsLCwsLCwsLCwsLCwsLCwsLCwsLCwsLCwsLCwsLCwsLCws"
    "LLzbB1mwAk6p2zujAAAAAElFTkSuQmCC"
)
_FATES = ("answer", "throttle", "error", "hang", "drop", "malformed")

Responder = Callable[[Mapping[str, Any]], Any]
# Which Counts field each fate increments.
_COUNTED_AS = {"throttle": "throttled", "error": "errors", "hang": "hung", "drop": "dropped",
               "malformed": "malformed"}  # fmt: skip


def _default(operation: str, request: Mapping[str, Any]) -> Any:
    """Answer as each operation does when nothing is scripted: nothing unsafe."""
    if operation == "DetectModerationLabels":
        answer: dict[str, Any] = {
            "ModerationLabels": [],
            "ModerationModelVersion": "7.0",
            "ContentTypes": [],
        }
        if isinstance(request.get("ProjectVersion"), str):
            answer["ProjectVersion"] = request["ProjectVersion"]
        return answer
    if operation == "DetectToxicContent":
        result = {"Labels": [{"Name": n, "Score": 0.01} for n in _TOXIC_LABELS], "Toxicity": 0.01}
        segments = request.get("TextSegments")
        return {"ResultList": [result] * (len(segments) if isinstance(segments, list) else 0)}
    if operation == "ClassifyDocument":
        return {"Classes": [{"Name": "SAFE", "Score": 0.99}, {"Name": "UNSAFE", "Score": 0.01}]}
    body = _json_object(request.get("Body", b""))
    if operation == "InvokeEndpoint":
        if "text_prompts" in body:  # Stability AI's container: one image a call
            return {"generated_image": _PNG}
        count = _count(body.get("num_images_per_prompt"))
        return {"generated_images": [_JPEG] * count, "prompt": body.get("prompt", "")}
    if "stability." in str(request.get("modelId", "")):
        seed = body.get("seed", 0)
        return {"seeds": [seed if isinstance(seed, int) else 0], "finish_reasons": [None],
                "images": [_PNG]}  # fmt: skip
    config = body.get("imageGenerationConfig")
    count = _count(config.get("numberOfImages") if isinstance(config, dict) else None)
    return {"images": [_PNG] * count, "error": None}


def _json_object(raw: object) -> dict[str, Any]:
    try:
        value = json.loads(raw) if isinstance(raw, bytes | str) and raw else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 1


def _rate(_: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{attribute.name} must be from 0 to 1, got {value!r}")


def _strings(values: Iterable[str]) -> tuple[str, ...]:
    return (values,) if isinstance(values, str) else tuple(values)


def _fates(_: object, attribute: attrs.Attribute[Any], value: tuple[str, ...]) -> None:
    unknown = sorted(set(value) - set(_FATES))
    if unknown:
        raise ValueError(f"{attribute.name}: unknown fate(s) {unknown}; known: {_FATES}")


@attrs.frozen(kw_only=True)
class Faults:
    """What goes wrong, and how often (rates from 0 to 1, drawn from the emulator's seed).

    :param latency: seconds added to every answer, or a function of a ``random.Random``
        returning them (for a distribution).
    :param requests_per_second: a quota; requests above it get ``ThrottlingException``.
    :param throttle_rate: share of requests answered ``ThrottlingException`` regardless.
    :param error_rate: share answered with a 500 or 503 server error.
    :param hang_rate: share that get no answer for ``hang_seconds`` (a client timeout).
    :param hang_seconds: how long a hang lasts.
    :param drop_rate: share whose connection is closed without an answer.
    :param malformed_rate: share answered 200 with a body that is not JSON.
    :param script: fates for the next requests, in order, before the rates apply: each one
        of ``"answer"``, ``"throttle"``, ``"error"``, ``"hang"``, ``"drop"``,
        ``"malformed"``. For tests that must not depend on chance.
    :param error_code: the error an ``"error"`` fate answers with, e.g. ``"ModelError"``; it
        must be one of the operation's errors in botocore's model. ``None``: one of the
        operation's server errors (HTTP 5xx), chosen from the seed.

    Throttling uses the operation's own throttling error from botocore's model (e.g.
    Rekognition's ``ProvisionedThroughputExceededException``), else the service's (e.g.
    Comprehend's ``TooManyRequestsException``), else AWS's common ``ThrottlingException``.
    """

    latency: float | Callable[[random.Random], float] = 0.0
    requests_per_second: float | None = None
    throttle_rate: float = attrs.field(default=0.0, validator=_rate)
    error_rate: float = attrs.field(default=0.0, validator=_rate)
    hang_rate: float = attrs.field(default=0.0, validator=_rate)
    hang_seconds: float = 2.0
    drop_rate: float = attrs.field(default=0.0, validator=_rate)
    malformed_rate: float = attrs.field(default=0.0, validator=_rate)
    script: tuple[str, ...] = attrs.field(default=(), converter=_strings, validator=_fates)
    error_code: str | None = None


@attrs.define
class Counts:
    """What the emulator received for one operation, and what it did."""

    received: int = 0
    answered: int = 0
    throttled: int = 0
    errors: int = 0
    hung: int = 0
    dropped: int = 0
    malformed: int = 0
    #: hung requests whose client gave up and closed the connection before the hang ended
    hung_up: int = 0


class _QuietServer(ThreadingHTTPServer):
    """A server that does not print tracebacks when a client hangs up (timeouts do that)."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Ignore connections the client closed; report anything else."""
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class AWSEmulator:
    """A local AWS for tests: start it, point clients at it, script it, count what it saw.

    Use it as a context manager (it binds 127.0.0.1 on a free port and stops on exit)::

        with AWSEmulator(seed=7) as aws:
            aws.faults("DetectModerationLabels", Faults(requests_per_second=50))
            rekognition = aws.client("rekognition")

    :param seed: seeds every random fault, for reproducible runs.
    :param clock: seconds on a monotonic clock, for the requests-per-second quota; pass a
        fake one to make quota tests independent of timing.
    :param sleep: how latency and hangs wait.
    """

    def __init__(
        self,
        *,
        seed: int = 0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._rng = random.Random(seed)
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._responders: dict[str, Responder] = {}
        self._faults: dict[str, Faults] = {}
        self._default_faults = Faults()
        self._scripted: dict[str, int] = {}  # how much of each operation's script is used
        self._counts: dict[str, Counts] = {}
        self._windows: dict[str, list[float]] = {}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> AWSEmulator:
        """Start serving on 127.0.0.1, on a free port."""
        emulator = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                emulator._handle(self)

            def do_GET(self) -> None:
                emulator._unknown(self, rest=True)

            do_PUT = do_DELETE = do_HEAD = do_PATCH = do_GET

            def log_message(self, format: str, *args: Any) -> None:
                """Stay quiet: tests read counts, not access logs."""

        self._server = _QuietServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> AWSEmulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def endpoint_url(self) -> str:
        """Where clients should send requests."""
        if self._server is None:
            raise RuntimeError("the emulator is not running: use it in a with block")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def client(self, service: str, **config: Any) -> Any:
        """Return a boto3 client for *service* pointed at the emulator (fake credentials).

        :param config: passed to ``botocore.config.Config`` (retries, timeouts, ...).
        """
        import boto3
        from botocore.config import Config

        factory: Any = boto3.client
        return factory(
            service,
            region_name="us-east-1",
            endpoint_url=self.endpoint_url,
            aws_access_key_id="emulator",
            aws_secret_access_key="emulator",
            config=Config(**config),
        )

    def async_client(self, service: str, **config: Any) -> Any:
        """Return an aiobotocore client context for *service* pointed at the emulator.

        Use it as ``async with aws.async_client("rekognition") as client:`` (leaving the
        block closes the client's connections).

        :param config: passed to ``aiobotocore.config.AioConfig`` (retries, timeouts, ...).
        """
        from aiobotocore.config import AioConfig
        from aiobotocore.session import get_session

        create: Any = get_session().create_client  # typed per service name in the stubs
        return create(
            service,
            region_name="us-east-1",
            endpoint_url=self.endpoint_url,
            aws_access_key_id="emulator",
            aws_secret_access_key="emulator",
            config=AioConfig(**config),
        )

    # -- scripting -------------------------------------------------------------------------

    def respond(self, operation: str, response: Any) -> None:
        """Answer *operation* with *response*: a JSON-able value, or a function of the request.

        For ``InvokeEndpoint`` the request is ``{"EndpointName", "Body"}``, for
        ``InvokeModel`` ``{"modelId", "Body"}``; a ``bytes`` response is sent as the body
        as it is.

        :raises ValueError: an operation the emulator does not implement.
        """
        _service(operation)
        responder = response if callable(response) else (lambda _request: response)
        with self._lock:
            self._responders[operation] = responder

    def faults(self, operation: str | None, faults: Faults) -> None:
        """Set the faults for one operation, or for every operation (``None``).

        :raises ValueError: an operation the emulator does not implement, or an
            ``error_code`` that is not one of the operation's errors in botocore's model.
        """
        if faults.error_code is not None:
            for name in [operation] if operation is not None else list(_SERVICE_OF):
                if faults.error_code not in _error_codes(name):
                    raise ValueError(
                        f"{faults.error_code} is not an error of {name}; "
                        f"its errors are {sorted(_error_codes(name))}"
                    )
        elif operation is not None:
            _service(operation)
        with self._lock:
            if operation is None:
                self._default_faults = faults
                self._scripted.clear()
            else:
                self._faults[operation] = faults
                self._scripted.pop(operation, None)

    def counts(self, operation: str) -> Counts:
        """Return a copy of what was counted for *operation*."""
        with self._lock:
            return attrs.evolve(self._counts.get(operation, Counts()))

    # -- serving ---------------------------------------------------------------------------

    def _handle(self, http: BaseHTTPRequestHandler) -> None:
        length = int(http.headers.get("Content-Length") or 0)
        raw = http.rfile.read(length)
        target = http.headers.get("X-Amz-Target", "")
        parts = http.path.split("?", 1)[0].strip("/").split("/")
        request: dict[str, Any]
        if target:
            if target not in _TARGETS:
                self._unknown(http, rest=False, what=target)
                return
            operation = _TARGETS[target][1]
            request = _json_object(raw)
        elif len(parts) == 3 and (parts[0], parts[2]) in _REST:
            operation = _REST[parts[0], parts[2]][1]
            name = urllib.parse.unquote(parts[1])
            key = "EndpointName" if operation == "InvokeEndpoint" else "modelId"
            request = {key: name, "Body": raw}
        else:
            self._unknown(http, rest=True, what=http.path)
            return
        faults, responder, fate, delay = self._decide(operation)
        if delay:
            self._sleep(delay)
        if fate == "drop":
            http.close_connection = True
            with contextlib.suppress(OSError):  # already gone is fine
                http.connection.shutdown(socket.SHUT_RDWR)
            return
        if fate == "hang" and self._hang(http, faults.hang_seconds):
            with self._lock:
                self._counts[operation].hung_up += 1
            return
        rest = operation in ("InvokeEndpoint", "InvokeModel")
        if fate in ("throttle", "error"):
            with self._lock:
                code, status, members = _fault(operation, fate, faults.error_code, self._rng)
            self._send_error(http, status, code, members, rest=rest)
        elif fate == "malformed":
            self._send_raw(http, 200, b"{not json", "application/json")
        else:
            body = responder(request) if responder else _default(operation, request)
            if rest and isinstance(body, bytes):
                self._send_raw(http, 200, body, "application/json")
            else:
                self._send(http, 200, body, rest=rest)

    def _hang(self, http: BaseHTTPRequestHandler, seconds: float) -> bool:
        """Wait *seconds*, as a hung service does; return whether the client hung up meanwhile.

        Waits in short steps (through the injected ``sleep``) and looks at the socket after
        each, so a client that times out or is cancelled is seen going away.
        """
        left = seconds
        while left > 0:
            step = min(_HANG_STEP, left)
            self._sleep(step)
            left -= step
            if _closed_by_peer(http.connection):
                return True
        return False

    def _unknown(self, http: BaseHTTPRequestHandler, *, rest: bool, what: str = "") -> None:
        """Answer as AWS does a request for an operation it does not have."""
        length = int(http.headers.get("Content-Length") or 0)
        if http.command not in ("POST",) and length:
            http.rfile.read(length)
        message = f"Unknown operation {what or http.path}"
        if rest:  # REST services: no route, 404, the code in x-amzn-ErrorType
            self._send_error(http, 404, "UnknownOperationException", {"message": message},
                             rest=True)  # fmt: skip
        else:
            self._send_error(http, 400, "UnknownOperationException", {"message": message},
                             rest=False)  # fmt: skip

    def _decide(self, operation: str) -> tuple[Faults, Responder | None, str, float]:
        with self._lock:
            counts = self._counts.setdefault(operation, Counts())
            counts.received += 1
            faults = self._faults.get(operation, self._default_faults)
            responder = self._responders.get(operation)
            latency = faults.latency
            delay = latency(self._rng) if callable(latency) else latency
            fate = "answer"
            key = operation if operation in self._faults else ""
            used = self._scripted.get(key, 0)
            if used < len(faults.script):
                fate = faults.script[used]
                self._scripted[key] = used + 1
            elif faults.requests_per_second is not None and self._over_quota(operation, faults):
                fate = "throttle"
            else:
                roll = self._rng.random()
                for name, rate in (("throttle", faults.throttle_rate), ("error", faults.error_rate),
                                   ("hang", faults.hang_rate), ("drop", faults.drop_rate),
                                   ("malformed", faults.malformed_rate)):  # fmt: skip
                    if roll < rate:
                        fate = name
                        break
                    roll -= rate
            field = _COUNTED_AS.get(fate, "answered")
            setattr(counts, field, getattr(counts, field) + 1)
            return faults, responder, fate, delay

    def _over_quota(self, operation: str, faults: Faults) -> bool:
        """Return whether a request is over quota (a sliding one-second window)."""
        now = self._clock()
        window = [t for t in self._windows.get(operation, []) if now - t < 1.0]
        assert faults.requests_per_second is not None
        if len(window) >= faults.requests_per_second:
            self._windows[operation] = window
            return True
        window.append(now)
        self._windows[operation] = window
        return False

    @staticmethod
    def _send(http: BaseHTTPRequestHandler, status: int, payload: Any, *, rest: bool) -> None:
        content_type = "application/json" if rest else "application/x-amz-json-1.1"
        AWSEmulator._send_raw(http, status, json.dumps(payload).encode(), content_type)

    @staticmethod
    def _send_error(
        http: BaseHTTPRequestHandler,
        status: int,
        code: str,
        members: Mapping[str, Any],
        *,
        rest: bool,
    ) -> None:
        """Send an error the way the protocol does: JSON 1.1 names it in ``__type``."""
        if rest:
            body, content_type = dict(members), "application/json"
        else:
            body, content_type = {"__type": code, **members}, "application/x-amz-json-1.1"
        AWSEmulator._send_raw(
            http, status, json.dumps(body).encode(), content_type, {"x-amzn-ErrorType": code}
        )

    @staticmethod
    def _send_raw(
        http: BaseHTTPRequestHandler,
        status: int,
        body: bytes,
        content_type: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        http.send_response(status)
        http.send_header("Content-Type", content_type)
        http.send_header("Content-Length", str(len(body)))
        http.send_header("x-amzn-RequestId", "emulated")
        for name, value in (headers or {}).items():
            http.send_header(name, value)
        http.end_headers()
        http.wfile.write(body)


_HANG_STEP = 0.02  # seconds between looks at a hung connection


def _closed_by_peer(connection: socket.socket) -> bool:
    """Return whether the client closed *connection* (readable, and nothing left to read)."""
    try:
        readable, _, _ = select.select([connection], [], [], 0)
        return bool(readable) and connection.recv(1, socket.MSG_PEEK) == b""
    except (OSError, ValueError):  # reset, or already closed on this side
        return True


# -- what botocore's models say ---------------------------------------------------------------


def _service(operation: str) -> str:
    try:
        return _SERVICE_OF[operation]
    except KeyError:
        raise ValueError(
            f"the emulator does not implement {operation!r}; it has {sorted(_SERVICE_OF)}"
        ) from None


def _error_codes(operation: str) -> dict[str, Any]:
    """Return the operation's modelled errors, by code."""
    from safegen.aws._model import operation_model

    model = operation_model(_service(operation), operation)
    return {shape.name: shape for shape in model.error_shapes}


def _status(shape: Any) -> int:
    """Return an error's HTTP status: the model's, else 5xx for a server fault, else 400."""
    status = shape.metadata.get("error", {}).get("httpStatusCode")
    if isinstance(status, int):
        return status
    if "Unavailable" in shape.name:
        return 503
    return 500 if shape.metadata.get("fault") or "Internal" in shape.name else 400


def _is_throttling(shape: Any) -> bool:
    from botocore.retries.standard import ThrottledRetryableChecker

    retryable = shape.metadata.get("retryable", {})
    if retryable.get("throttling") is False:
        return False
    known = getattr(ThrottledRetryableChecker, "_THROTTLED_ERROR_CODES", ("ThrottlingException",))
    return bool(retryable.get("throttling")) or shape.name in known


def _fault(
    operation: str, fate: str, error_code: str | None, rng: random.Random
) -> tuple[str, int, dict[str, Any]]:
    """Choose the error a fault answers with, from botocore's model: code, status, members."""
    from safegen.aws._model import service_model

    errors = _error_codes(operation)
    if fate == "error" and error_code is not None:
        chosen = [errors[error_code]]
    elif fate == "error":
        chosen = [shape for shape in errors.values() if _status(shape) >= 500]
    else:
        chosen = [shape for shape in errors.values() if _is_throttling(shape)]
        if not chosen:
            service = service_model(_service(operation))
            chosen = [shape for shape in service.error_shapes if _is_throttling(shape)]
    if not chosen:  # AWS's common errors, for a model that names none of its own
        return ("ThrottlingException", 400, {"message": "Rate exceeded"})
    shape = rng.choice(sorted(chosen, key=lambda s: s.name))
    return shape.name, _status(shape), _members(shape)


def _members(shape: Any) -> dict[str, Any]:
    """Fill an error's members: the message, and placeholders of the right type."""
    members: dict[str, Any] = {}
    for name, member in shape.members.items():
        if name.lower() == "message":
            members[name] = "injected by the emulator"
        elif member.type_name == "integer":
            members[name] = 500
        elif member.type_name == "string":
            members[name] = "injected"
    if not any(name.lower() == "message" for name in members):
        members["message"] = "injected by the emulator"
    return members
