"""A loopback server that speaks AWS's wire protocols, with faults you choose.

Real boto3 clients pointed at it (``endpoint_url``) go through botocore's whole stack:
signing, HTTP, parsing, retries. It answers Rekognition ``DetectModerationLabels`` and the
Rekognition job operations (bulk analysis: ``StartMediaAnalysisJob``, ``GetMediaAnalysisJob``,
``ListMediaAnalysisJobs``; stored video: ``StartContentModeration``,
``GetContentModeration``; see :meth:`AWSEmulator.jobs`), Comprehend ``DetectToxicContent``
and ``ClassifyDocument`` (JSON 1.1, routed by ``X-Amz-Target``), SageMaker Runtime
``InvokeEndpoint`` and Bedrock Runtime ``InvokeModel`` (REST-JSON), with scripted responses,
latency, a requests-per-second quota, and injected errors, hangs, dropped connections and
malformed bodies, all from one seed. It counts what it received.

It speaks each service truthfully: an operation it does not implement gets AWS's answer for
an unknown operation (``UnknownOperationException``), and injected errors use the codes,
HTTP statuses and members of the operation's own errors, read from botocore's service model.
"""

from __future__ import annotations

import base64
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

__all__ = ["JOB_OPERATIONS", "OPERATIONS", "AWSEmulator", "Counts", "Faults"]

_JOB_TARGETS = {
    f"RekognitionService.{name}": ("rekognition", name)
    for name in ("StartMediaAnalysisJob", "GetMediaAnalysisJob", "ListMediaAnalysisJobs",
                 "StartContentModeration", "GetContentModeration")
}  # fmt: skip
_TARGETS = {
    "RekognitionService.DetectModerationLabels": ("rekognition", "DetectModerationLabels"),
    "Comprehend_20171127.DetectToxicContent": ("comprehend", "DetectToxicContent"),
    "Comprehend_20171127.ClassifyDocument": ("comprehend", "ClassifyDocument"),
}
_REST = {  # (first path segment, last path segment) -> service and operation
    ("endpoints", "invocations"): ("sagemaker-runtime", "InvokeEndpoint"),
    ("model", "invoke"): ("bedrock-runtime", "InvokeModel"),
}
#: Every request-response operation the emulator implements, as (service, operation).
OPERATIONS: tuple[tuple[str, str], ...] = (*_TARGETS.values(), *_REST.values())
#: The Rekognition job operations it implements (see :meth:`AWSEmulator.jobs`).
JOB_OPERATIONS: tuple[tuple[str, str], ...] = tuple(_JOB_TARGETS.values())
_SERVICE_OF = {operation: service for service, operation in (*OPERATIONS, *JOB_OPERATIONS)}
_TARGETS.update(_JOB_TARGETS)
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
    :param s3: a boto3 S3 client (e.g. one pointed at a ``moto.server.ThreadedMotoServer``)
        where bulk-analysis jobs read their manifest and write their results; without one,
        ``StartMediaAnalysisJob`` answers ``InternalServerError``.
    :param sns: a boto3 SNS client (moto) where stored-video jobs started with a
        ``NotificationChannel`` publish their completion, as Rekognition does.
    """

    def __init__(
        self,
        *,
        seed: int = 0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        s3: Any = None,
        sns: Any = None,
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
        self._job_lock = threading.Lock()
        self._jobs = _JobBook(s3, sns, self._detect_for_job)

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

    def jobs(
        self,
        operation: str,
        *,
        statuses: Iterable[str] | None = None,
        failure: str | None = None,
        message: str = "the job failed (emulated)",
        max_concurrent: int | None = None,
        closed: bool = False,
        detections: Iterable[Mapping[str, Any]]
        | Callable[[Mapping[str, Any]], Iterable[Mapping[str, Any]]] = (),
        video_metadata: Mapping[str, Any] | None = None,
        line_key: str = "line-numer",
    ) -> None:
        """Script the jobs that *operation* starts from now on.

        :param operation: ``"StartMediaAnalysisJob"`` (bulk analysis) or
            ``"StartContentModeration"`` (stored video).
        :param statuses: what successive polls (``GetMediaAnalysisJob``,
            ``GetContentModeration``) report, in order; the last one stays. Each must be a
            status of the job's kind in botocore's model. Default: ``CREATED, QUEUED,
            IN_PROGRESS, SUCCEEDED`` for bulk analysis, ``IN_PROGRESS, IN_PROGRESS,
            SUCCEEDED`` for video; ``failure`` alone makes the last one ``FAILED``.
        :param failure: a bulk job's ``FailureDetails.Code`` when it fails (one of the
            model's ``MediaAnalysisJobFailureCode``).
        :param message: the failure's ``Message`` (``StatusMessage`` for video).
        :param max_concurrent: unfinished jobs allowed at once; one more start answers
            ``LimitExceededException``.
        :param closed: every call answers ``AccessDeniedException``, as bulk analysis does
            for accounts it is closed to.
        :param detections: a video's ``ModerationLabels`` items in the ``SEGMENTS`` shape
            (``Timestamp``, ``StartTimestampMillis``, ``EndTimestampMillis``,
            ``ModerationLabel``, ``ContentTypes``), or a function of the start request
            returning them. A bulk job's images are answered by ``DetectModerationLabels``'s
            responder (see :meth:`respond`).
        :param video_metadata: the ``VideoMetadata`` every page repeats.
        :param line_key: the line-number key of ``manifest-summary.json`` errors
            (``line-numer`` as AWS's documentation spells it, or ``line-number``).
        :raises ValueError: an unknown operation, status or failure code.
        """
        if operation not in _STATUS_ENUM:
            raise ValueError(f"jobs: {operation!r} starts no job; use {sorted(_STATUS_ENUM)}")
        chosen = _DEFAULT_STATUSES[operation] if statuses is None else _strings(statuses)
        if statuses is None and failure is not None:
            chosen = (*chosen[:-1], "FAILED")
        known = _model_enum(*_STATUS_ENUM[operation])
        wrong = [status for status in chosen if status not in known]
        if not chosen or wrong:
            raise ValueError(f"jobs: statuses {wrong or '()'} are not among {known}")
        if failure is not None and failure not in _model_enum(
            "GetMediaAnalysisJob", "FailureDetails.Code"
        ):
            raise ValueError(f"jobs: {failure!r} is not a FailureDetails code")
        settings = _JobSettings(
            statuses=chosen,
            failure=failure,
            message=message,
            max_concurrent=max_concurrent,
            closed=closed,
            detections=detections if callable(detections) else tuple(detections),
            video_metadata=_METADATA if video_metadata is None else dict(video_metadata),
            line_key=line_key,
        )
        with self._job_lock:
            self._jobs.configure(operation, settings)

    def started(self, operation: str) -> tuple[str, ...]:
        """Return the JobIds of the jobs *operation* started, oldest first.

        A start repeated with the same ``ClientRequestToken`` starts nothing new.
        """
        with self._job_lock:
            return self._jobs.started(operation)

    def advance_jobs(self) -> None:
        """Move every job on to its next scripted status, as time passing would.

        Polling moves a job on too; call this where a client waits without polling (for
        an SNS notification on an SQS queue), e.g. from the sleep you inject into it.
        """
        with self._job_lock:
            self._jobs.advance()

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
        elif responder is None and operation in _START_OF:
            try:
                with self._job_lock:
                    body = self._jobs.answer(operation, request)
            except _Refusal as refusal:
                status = _status(_error_codes(operation)[refusal.code])
                self._send_error(http, status, refusal.code, {"Message": refusal.message},
                                 rest=False)  # fmt: skip
            else:
                self._send(http, 200, body, rest=False)
        else:
            body = responder(request) if responder else _default(operation, request)
            if rest and isinstance(body, bytes):
                self._send_raw(http, 200, body, "application/json")
            else:
                self._send(http, 200, body, rest=rest)

    def _detect_for_job(self, request: Mapping[str, Any]) -> Any:
        """Answer one image of a bulk-analysis job as ``DetectModerationLabels`` would."""
        with self._lock:
            responder = self._responders.get("DetectModerationLabels")
        return responder(request) if responder else _default("DetectModerationLabels", request)

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


# -- Rekognition's job operations (bulk analysis, stored video) ---------------------------------

_START_OF = {
    "StartMediaAnalysisJob": "StartMediaAnalysisJob",
    "GetMediaAnalysisJob": "StartMediaAnalysisJob",
    "ListMediaAnalysisJobs": "StartMediaAnalysisJob",
    "StartContentModeration": "StartContentModeration",
    "GetContentModeration": "StartContentModeration",
}
_STATUS_ENUM = {  # the status shape each kind of job reports, in botocore's model
    "StartMediaAnalysisJob": ("GetMediaAnalysisJob", "Status"),
    "StartContentModeration": ("GetContentModeration", "JobStatus"),
}
_DEFAULT_STATUSES = {
    "StartMediaAnalysisJob": ("CREATED", "QUEUED", "IN_PROGRESS", "SUCCEEDED"),
    "StartContentModeration": ("IN_PROGRESS", "IN_PROGRESS", "SUCCEEDED"),
}
_TERMINAL = frozenset({"SUCCEEDED", "FAILED"})
_MANIFEST_LIMIT = 10_000  # images per bulk-analysis job
_LIST_PAGE = (1, 100)  # ListMediaAnalysisJobs MaxResults bounds
_VIDEO_PAGE = 1000  # GetContentModeration: default and cap of MaxResults
_METADATA = {"Codec": "h264", "DurationMillis": 15020, "Format": "QuickTime / MOV",
             "FrameRate": 24.0, "FrameHeight": 720, "FrameWidth": 1280,
             "ColorRange": "LIMITED"}  # fmt: skip
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
_FORWARDED = ("MinConfidence", "ProjectVersion")  # from a bulk job's settings to each image


class _Refusal(Exception):
    """An operation's error answer: the code (one of the operation's, in botocore's model)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _model_enum(operation: str, member: str) -> tuple[str, ...]:
    from safegen.aws._model import operation_model

    shape: Any = operation_model("rekognition", operation).output_shape
    for name in member.split("."):
        shape = shape.members[name]
    return tuple(shape.enum)


@attrs.frozen(kw_only=True)
class _JobSettings:
    """How the jobs of one kind behave (see :meth:`AWSEmulator.jobs`)."""

    statuses: tuple[str, ...]
    failure: str | None = None
    message: str = "the job failed (emulated)"
    max_concurrent: int | None = None
    closed: bool = False
    detections: Any = ()
    video_metadata: Mapping[str, Any] = _METADATA
    line_key: str = "line-numer"
    model_version: str = "7.0"


@attrs.define
class _Job:
    kind: str
    job_id: str
    seq: int
    request: dict[str, Any]
    settings: _JobSettings
    created: float
    position: int = 0
    completed: float | None = None
    manifest: list[str] = attrs.Factory(list)
    outputs: dict[str, Any] = attrs.Factory(dict)
    detections: list[dict[str, Any]] = attrs.Factory(list)

    @property
    def status(self) -> str:
        return self.settings.statuses[self.position]


class _JobBook:
    """Every job the emulator started: statuses that move on each poll, idempotency, caps.

    The S3 client (a moto server's, or moto in-process) is where bulk-analysis jobs read
    their manifest and write ``results.json`` and ``manifest-summary.json``; the SNS client
    is where stored-video jobs with a ``NotificationChannel`` publish their completion.
    """

    def __init__(self, s3: Any, sns: Any, detect: Callable[[Mapping[str, Any]], Any]) -> None:
        self._s3 = s3
        self._sns = sns
        self._detect = detect
        self._settings = {kind: _JobSettings(statuses=statuses)
                          for kind, statuses in _DEFAULT_STATUSES.items()}  # fmt: skip
        self._jobs: dict[str, _Job] = {}
        self._tokens: dict[tuple[str, str], tuple[str, str]] = {}
        self._seq = 0

    def configure(self, kind: str, settings: _JobSettings) -> None:
        self._settings[kind] = settings

    def started(self, kind: str) -> tuple[str, ...]:
        return tuple(j.job_id for j in sorted(self._jobs.values(), key=lambda j: j.seq)
                     if j.kind == kind)  # fmt: skip

    def advance(self) -> None:
        for job in list(self._jobs.values()):
            self._step(job)

    def answer(self, operation: str, request: dict[str, Any]) -> Any:
        kind = _START_OF[operation]
        if self._settings[kind].closed:
            raise _Refusal(
                "AccessDeniedException",
                "Amazon Rekognition bulk analysis is no longer open to new customers",
            )
        if operation == kind:
            return {"JobId": self._start(kind, request)}
        if operation == "ListMediaAnalysisJobs":
            return self._list(request)
        job = self._jobs.get(str(request.get("JobId")))
        if job is None or job.kind != kind:
            code = "ResourceNotFoundException"
            raise _Refusal(code, f"no job with the id {request.get('JobId')!r}")
        if operation == "GetMediaAnalysisJob":
            answer = self._describe(job)
            self._step(job)
            return answer
        return self._video_page(job, request)

    # -- starting ------------------------------------------------------------------------------

    def _start(self, kind: str, request: dict[str, Any]) -> str:
        settings = self._settings[kind]
        token = request.pop("ClientRequestToken", None)
        fingerprint = json.dumps(request, sort_keys=True, default=str)
        if isinstance(token, str):
            known = self._tokens.get((kind, token))
            if known is not None:
                if known[0] != fingerprint:
                    raise _Refusal(
                        "IdempotentParameterMismatchException",
                        "the ClientRequestToken was used with different parameters",
                    )
                return known[1]
        if kind == "StartContentModeration":
            _check_min_confidence(request.get("MinConfidence"))
        running = [j for j in self._jobs.values() if j.kind == kind and j.status not in _TERMINAL]
        if settings.max_concurrent is not None and len(running) >= settings.max_concurrent:
            raise _Refusal("LimitExceededException", "too many concurrent jobs")
        suffix = random.Random(self._seq).getrandbits(96)
        job = _Job(kind=kind, job_id=f"{self._seq + 1:04d}{suffix:024x}", seq=self._seq,
                   request=request, settings=settings, created=time.time())  # fmt: skip
        if kind == "StartMediaAnalysisJob":
            job.manifest = self._manifest(request)
        else:
            job.detections = _detections(settings.detections, request)
        self._seq += 1
        self._jobs[job.job_id] = job
        if isinstance(token, str):
            self._tokens[kind, token] = (fingerprint, job.job_id)
        if job.status in _TERMINAL:
            self._finish(job)
        return job.job_id

    def _manifest(self, request: Mapping[str, Any]) -> list[str]:
        config = request.get("OperationsConfig", {}).get("DetectModerationLabels", {})
        _check_min_confidence(config.get("MinConfidence"))
        source = request.get("Input", {}).get("S3Object", {})
        if self._s3 is None:
            raise _Refusal("InternalServerError", "the emulator was started without an S3 client")
        where = {"Bucket": source.get("Bucket", ""), "Key": source.get("Name", "")}
        if source.get("Version"):
            where["VersionId"] = source["Version"]
        try:
            text = self._s3.get_object(**where)["Body"].read().decode("utf-8")
        except Exception as error:  # NoSuchKey, NoSuchBucket, not UTF-8
            raise _Refusal(
                "InvalidS3ObjectException", f"cannot read the manifest: {type(error).__name__}"
            ) from None
        lines: list[str] = text.splitlines()
        if not any(line.strip() for line in lines):
            raise _Refusal("InvalidManifestException", "the manifest is empty")
        if len(lines) > _MANIFEST_LIMIT:
            raise _Refusal(
                "InvalidManifestException",
                f"the manifest has {len(lines)} lines; the limit is {_MANIFEST_LIMIT}",
            )
        return lines

    # -- progress ------------------------------------------------------------------------------

    def _step(self, job: _Job) -> None:
        """Move *job* to its next scripted status (the last one stays)."""
        if job.position + 1 < len(job.settings.statuses):
            job.position += 1
            if job.status in _TERMINAL:
                self._finish(job)

    def _finish(self, job: _Job) -> None:
        job.completed = time.time()
        if job.kind == "StartMediaAnalysisJob" and job.status == "SUCCEEDED":
            self._write_outputs(job)
        channel = job.request.get("NotificationChannel")
        if job.kind == "StartContentModeration" and channel and self._sns is not None:
            video = job.request.get("Video", {}).get("S3Object", {})
            message = {"JobId": job.job_id, "Status": job.status, "API": "StartContentModeration",
                       "JobTag": job.request.get("JobTag", ""), "Message": "",
                       "Timestamp": int(job.completed * 1000),
                       "Video": {"S3ObjectName": video.get("Name", ""),
                                 "S3Bucket": video.get("Bucket", "")}}  # fmt: skip
            self._sns.publish(TopicArn=channel["SNSTopicArn"], Message=json.dumps(message))

    def _write_outputs(self, job: _Job) -> None:
        config = job.request["OperationsConfig"].get("DetectModerationLabels", {})
        output = job.request["OutputConfig"]
        prefix = output.get("S3KeyPrefix", "")
        base = f"{prefix}{'' if not prefix or prefix.endswith('/') else '/'}{job.job_id}"
        results, errors = [], []
        for number, line in enumerate(job.manifest, start=1):
            if not line.strip():
                continue
            ref, problem = _manifest_line(line)
            if problem is not None:
                errors.append({job.settings.line_key: number, "source-ref": ref,
                               "code": problem[0], "message": problem[1]})  # fmt: skip
                continue
            bucket, _, key = ref[len("s3://") :].partition("/")
            detect: dict[str, Any] = {"Image": {"S3Object": {"Bucket": bucket, "Name": key}}}
            detect.update({k: v for k, v in config.items() if k in _FORWARDED})
            results.append({"source-ref": ref, "detect-moderation-labels": self._detect(detect)})
        total = sum(1 for line in job.manifest if line.strip())
        statistics = {"total-json-lines": total, "valid-json-lines": total - len(errors),
                      "invalid-json-lines": len(errors)}  # fmt: skip
        summary = {"version": "1.0", "statistics": statistics, "errors": errors}
        keys = {"results": f"{base}/results.json", "summary": f"{base}/manifest-summary.json"}
        body = "".join(json.dumps(r) + "\n" for r in results)
        self._s3.put_object(Bucket=output["S3Bucket"], Key=keys["results"], Body=body.encode())
        self._s3.put_object(
            Bucket=output["S3Bucket"], Key=keys["summary"], Body=json.dumps(summary).encode()
        )
        bucket = output["S3Bucket"]
        job.outputs = {
            "Results": {"S3Object": {"Bucket": bucket, "Name": keys["results"]},
                        "ModelVersions": {"Moderation": job.settings.model_version}},
            "ManifestSummary": {"S3Object": {"Bucket": bucket, "Name": keys["summary"]}},
        }  # fmt: skip

    # -- reading ---------------------------------------------------------------------------

    def _describe(self, job: _Job) -> dict[str, Any]:
        answer: dict[str, Any] = {
            "JobId": job.job_id,
            "OperationsConfig": job.request.get("OperationsConfig", {}),
            "Status": job.status,
            "CreationTimestamp": job.created,
            "Input": job.request.get("Input", {}),
            "OutputConfig": job.request.get("OutputConfig", {}),
        }
        for key in ("JobName", "KmsKeyId"):
            if key in job.request:
                answer[key] = job.request[key]
        if job.status in _TERMINAL:
            answer["CompletionTimestamp"] = job.completed
        if job.status == "FAILED":
            code = job.settings.failure or "INTERNAL_ERROR"
            answer["FailureDetails"] = {"Code": code, "Message": job.settings.message}
        elif job.status == "SUCCEEDED":
            answer.update(job.outputs)
        return answer

    def _list(self, request: Mapping[str, Any]) -> dict[str, Any]:
        size = request.get("MaxResults", _LIST_PAGE[1])
        if not isinstance(size, int) or not _LIST_PAGE[0] <= size <= _LIST_PAGE[1]:
            raise _Refusal("InvalidParameterException", f"MaxResults must be 1 to 100: {size}")
        before = _token(request.get("NextToken"), "ListMediaAnalysisJobs")
        jobs = sorted((j for j in self._jobs.values() if j.kind == "StartMediaAnalysisJob"
                       and (before is None or j.seq < before["before"])),
                      key=lambda j: -j.seq)  # fmt: skip
        page = jobs[:size]
        answer: dict[str, Any] = {"MediaAnalysisJobs": [self._describe(j) for j in page]}
        if len(jobs) > size:
            answer["NextToken"] = _make_token({"before": page[-1].seq}, "ListMediaAnalysisJobs")
        return answer

    def _video_page(self, job: _Job, request: Mapping[str, Any]) -> dict[str, Any]:
        sort = request.get("SortBy", "TIMESTAMP")
        aggregate = request.get("AggregateBy", "TIMESTAMPS")
        if sort not in ("NAME", "TIMESTAMP") or aggregate not in ("TIMESTAMPS", "SEGMENTS"):
            raise _Refusal("InvalidParameterException", "SortBy or AggregateBy is not valid")
        size = min(int(request.get("MaxResults", _VIDEO_PAGE)), _VIDEO_PAGE)
        where = f"GetContentModeration {job.job_id} {sort} {aggregate}"
        cursor = _token(request.get("NextToken"), where)
        status = job.status
        self._step(job)
        answer: dict[str, Any] = {
            "JobStatus": status,
            "JobId": job.job_id,
            "Video": job.request.get("Video", {}),
            "GetRequestMetadata": {"SortBy": sort, "AggregateBy": aggregate},
            "ModerationLabels": [],
        }
        if "JobTag" in job.request:
            answer["JobTag"] = job.request["JobTag"]
        if status == "FAILED":
            answer["StatusMessage"] = job.settings.message
        if status != "SUCCEEDED":
            return answer
        items = [_shown(d, aggregate) for d in job.detections]
        if sort == "NAME":
            items.sort(key=lambda d: (d["ModerationLabel"]["Name"],
                                      -d["ModerationLabel"]["Confidence"]))  # fmt: skip
        else:
            items.sort(key=lambda d: d["Timestamp"])
        start = 0 if cursor is None else int(cursor["at"])
        answer["ModerationLabels"] = items[start : start + size]
        answer["VideoMetadata"] = dict(job.settings.video_metadata)
        answer["ModerationModelVersion"] = job.settings.model_version
        if start + size < len(items):
            answer["NextToken"] = _make_token({"at": start + size}, where)
        return answer


def _check_min_confidence(value: object) -> None:
    if value is not None and not (isinstance(value, int | float) and 0 <= value <= 100):
        raise _Refusal("InvalidParameterException", f"MinConfidence must be 0 to 100: {value}")


def _manifest_line(line: str) -> tuple[str, tuple[str, str] | None]:
    """Return a manifest line's ``source-ref`` and what is wrong with it, if anything."""
    try:
        entry = json.loads(line)
    except ValueError:
        return "", ("INVALID_JSON_LINE", "the line is not JSON")
    ref = entry.get("source-ref") if isinstance(entry, dict) else None
    if not isinstance(ref, str) or not ref.startswith("s3://") or "/" not in ref[5:]:
        return str(ref or ""), ("INVALID_SOURCE_REF", "no s3:// source-ref")
    if not ref.lower().endswith(_IMAGE_SUFFIXES):
        return ref, ("INVALID_IMAGE_FORMAT", "only JPEG and PNG images are analysed")
    return ref, None


def _detections(scripted: Any, request: Mapping[str, Any]) -> list[dict[str, Any]]:
    items = scripted(request) if callable(scripted) else scripted
    return [dict(item) for item in items]


def _shown(detection: Mapping[str, Any], aggregate: str) -> dict[str, Any]:
    """One detection as GetContentModeration shows it for *aggregate*."""
    shown = {"Timestamp": detection.get("Timestamp", detection.get("StartTimestampMillis", 0)),
             "ModerationLabel": detection["ModerationLabel"],
             "ContentTypes": detection.get("ContentTypes", [])}  # fmt: skip
    if aggregate == "SEGMENTS":
        start = detection.get("StartTimestampMillis", shown["Timestamp"])
        end = detection.get("EndTimestampMillis", start)
        shown.update(StartTimestampMillis=start, EndTimestampMillis=end, DurationMillis=end - start)
    return shown


def _make_token(state: Mapping[str, Any], where: str) -> str:
    raw = json.dumps({**state, "w": where}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _token(token: object, where: str) -> dict[str, Any] | None:
    if token is None:
        return None
    try:
        state = json.loads(base64.urlsafe_b64decode(str(token).encode()))
        if state.pop("w") == where:
            return dict(state)
    except (ValueError, TypeError, KeyError, AttributeError):
        pass
    raise _Refusal("InvalidPaginationTokenException", "the NextToken is not valid here")
