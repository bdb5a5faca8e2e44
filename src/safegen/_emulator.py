"""A loopback server that speaks AWS's wire protocols, with faults you choose.

Real boto3 clients pointed at it (``endpoint_url``) go through botocore's whole stack:
signing, HTTP, parsing, retries. It answers Rekognition ``DetectModerationLabels``,
Comprehend ``DetectToxicContent`` and ``ClassifyDocument`` (JSON 1.1, routed by
``X-Amz-Target``) and SageMaker Runtime ``InvokeEndpoint`` (REST-JSON), with scripted
responses, latency, a requests-per-second quota, and injected errors, hangs, dropped
connections and malformed bodies, all from one seed. It counts what it received.
"""

from __future__ import annotations

import contextlib
import json
import random
import socket
import threading
import time
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import attrs

__all__ = ["AWSEmulator", "Counts", "Faults"]

_TARGETS = {
    "RekognitionService.DetectModerationLabels": "DetectModerationLabels",
    "Comprehend_20171127.DetectToxicContent": "DetectToxicContent",
    "Comprehend_20171127.ClassifyDocument": "ClassifyDocument",
}
_TOXIC_LABELS = ("PROFANITY", "HATE_SPEECH", "INSULT", "GRAPHIC", "HARASSMENT_OR_ABUSE",
                 "SEXUAL", "VIOLENCE_OR_THREAT")  # fmt: skip

Responder = Callable[[Mapping[str, Any]], Any]
# Which Counts field each fate increments.
_COUNTED_AS = {"throttle": "throttled", "error": "errors", "hang": "hung", "drop": "dropped",
               "malformed": "malformed"}  # fmt: skip


def _default(operation: str, request: Mapping[str, Any]) -> Any:
    """Answer as each operation does when nothing is scripted: nothing unsafe."""
    if operation == "DetectModerationLabels":
        return {"ModerationLabels": [], "ModerationModelVersion": "7.0", "ContentTypes": []}
    if operation == "DetectToxicContent":
        result = {"Labels": [{"Name": n, "Score": 0.01} for n in _TOXIC_LABELS], "Toxicity": 0.01}
        return {"ResultList": [result for _ in request.get("TextSegments", [])]}
    if operation == "ClassifyDocument":
        return {"Classes": [{"Name": "SAFE", "Score": 0.99}, {"Name": "UNSAFE", "Score": 0.01}]}
    return {"generated_images": []}  # InvokeEndpoint


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
    """

    latency: float | Callable[[random.Random], float] = 0.0
    requests_per_second: float | None = None
    throttle_rate: float = 0.0
    error_rate: float = 0.0
    hang_rate: float = 0.0
    hang_seconds: float = 2.0
    drop_rate: float = 0.0
    malformed_rate: float = 0.0


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
    """

    def __init__(self, *, seed: int = 0) -> None:
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._responders: dict[str, Responder] = {}
        self._faults: dict[str, Faults] = {}
        self._default_faults = Faults()
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

    # -- scripting -------------------------------------------------------------------------

    def respond(self, operation: str, response: Any) -> None:
        """Answer *operation* with *response*: a JSON-able value, or a function of the request.

        For ``InvokeEndpoint`` the request is ``{"EndpointName", "Body"}`` and a ``bytes``
        response is sent as the body as it is.
        """
        responder = response if callable(response) else (lambda _request: response)
        with self._lock:
            self._responders[operation] = responder

    def faults(self, operation: str | None, faults: Faults) -> None:
        """Set the faults for one operation, or for every operation (``None``)."""
        with self._lock:
            if operation is None:
                self._default_faults = faults
            else:
                self._faults[operation] = faults

    def counts(self, operation: str) -> Counts:
        """Return a copy of what was counted for *operation*."""
        with self._lock:
            return attrs.evolve(self._counts.get(operation, Counts()))

    # -- serving ---------------------------------------------------------------------------

    def _handle(self, http: BaseHTTPRequestHandler) -> None:
        length = int(http.headers.get("Content-Length") or 0)
        raw = http.rfile.read(length)
        target = http.headers.get("X-Amz-Target", "")
        if target:
            operation = _TARGETS.get(target, target)
            try:
                request = json.loads(raw or b"{}")
            except ValueError:
                request = {}
        elif http.path.startswith("/endpoints/") and http.path.endswith("/invocations"):
            operation = "InvokeEndpoint"
            request = {"EndpointName": http.path.split("/")[2], "Body": raw}
        else:
            self._send(http, 404, {"__type": "UnknownOperationException"}, json_rest=True)
            return
        faults, responder, fate, delay = self._decide(operation)
        if delay:
            time.sleep(delay)
        if fate == "drop":
            http.close_connection = True
            with contextlib.suppress(OSError):  # already gone is fine
                http.connection.shutdown(socket.SHUT_RDWR)
            return
        if fate == "hang":
            time.sleep(faults.hang_seconds)
        rest = operation == "InvokeEndpoint"
        if fate == "throttle":
            self._send(http, 400, {"__type": "ThrottlingException", "message": "Rate exceeded"},
                       json_rest=rest, error="ThrottlingException")  # fmt: skip
        elif fate == "error":
            status = 503 if self._draw() < 0.5 else 500
            code = "ServiceUnavailableException" if status == 503 else "InternalServerError"
            self._send(http, status, {"__type": code, "message": "injected"}, json_rest=rest,
                       error=code)  # fmt: skip
        elif fate == "malformed":
            self._send_raw(http, 200, b"{not json", "application/json")
        else:
            body = responder(request) if responder else _default(operation, request)
            if rest and isinstance(body, bytes):
                self._send_raw(http, 200, body, "application/json")
            else:
                self._send(http, 200, body, json_rest=rest)

    def _decide(self, operation: str) -> tuple[Faults, Responder | None, str, float]:
        with self._lock:
            counts = self._counts.setdefault(operation, Counts())
            counts.received += 1
            faults = self._faults.get(operation, self._default_faults)
            responder = self._responders.get(operation)
            latency = faults.latency
            delay = latency(self._rng) if callable(latency) else latency
            fate = "answer"
            if faults.requests_per_second is not None and self._over_quota(operation, faults):
                fate, counts.throttled = "throttle", counts.throttled + 1
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
        now = time.monotonic()
        window = [t for t in self._windows.get(operation, []) if now - t < 1.0]
        assert faults.requests_per_second is not None
        if len(window) >= faults.requests_per_second:
            self._windows[operation] = window
            return True
        window.append(now)
        self._windows[operation] = window
        return False

    def _draw(self) -> float:
        with self._lock:
            return self._rng.random()

    @staticmethod
    def _send(
        http: BaseHTTPRequestHandler,
        status: int,
        payload: Any,
        *,
        json_rest: bool,
        error: str | None = None,
    ) -> None:
        content_type = "application/json" if json_rest else "application/x-amz-json-1.1"
        body = json.dumps(payload).encode()
        http.send_response(status)
        http.send_header("Content-Type", content_type)
        http.send_header("Content-Length", str(len(body)))
        http.send_header("x-amzn-RequestId", "emulated")
        if error is not None:
            http.send_header("x-amzn-ErrorType", error)
        http.end_headers()
        http.wfile.write(body)

    @staticmethod
    def _send_raw(
        http: BaseHTTPRequestHandler, status: int, body: bytes, content_type: str
    ) -> None:
        http.send_response(status)
        http.send_header("Content-Type", content_type)
        http.send_header("Content-Length", str(len(body)))
        http.send_header("x-amzn-RequestId", "emulated")
        http.end_headers()
        http.wfile.write(body)
