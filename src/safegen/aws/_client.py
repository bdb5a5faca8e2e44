"""Building AWS clients the way every adapter wants them, calling them, keeping logs clean.

Every adapter is written once, as an *exchange*: a generator that yields the :class:`Call` s
it needs and receives their answers (or has the translated error thrown in at the ``yield``),
then returns its report. :func:`run` drives an exchange on a boto3 client; the async adapters
(:mod:`safegen.aws.aio`) drive the same exchange on an aiobotocore client. Request building,
response checking and error handling therefore exist once, for both.

botocore's DEBUG logs carry whole requests and responses: the prompt, the image in base64,
the signed headers with the session token. safegen promises that no content and no secret
reaches a log at any level, so every adapter passes its client through :func:`instrument`,
which calls :func:`quiet_wire_logs` and adds one debug line per call of safegen's own (which
service and operation, the HTTP status, how long it took; never parameters or bodies).
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Generator
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

import attrs
from botocore import xform_name

from safegen import _logs
from safegen.aws._errors import WrongTypeError, aws_call
from safegen.errors import SafegenError

if TYPE_CHECKING:
    import boto3

__all__ = [
    "Call",
    "Exchange",
    "client_options",
    "instrument",
    "make_client",
    "perform",
    "quiet_wire_logs",
    "run",
]

T = TypeVar("T")

_log = logging.getLogger("safegen.aws")

# The libraries under a boto3 client; every logger below these names is kept under WARNING.
_WIRE_ROOTS = ("botocore", "boto3", "urllib3", "s3transfer", "aiobotocore", "aiohttp")
# The module loggers known to log requests, responses, headers or credentials at DEBUG,
# filtered by name too, so that a level set on them later (e.g. by
# ``boto3.set_stream_logger``) still lets nothing through below WARNING.
_WIRE_LOGGERS = (
    "botocore.auth",
    "botocore.awsrequest",
    "botocore.client",
    "botocore.credentials",
    "botocore.endpoint",
    "botocore.handlers",
    "botocore.hooks",
    "botocore.httpchecksum",
    "botocore.httpsession",
    "botocore.parsers",
    "botocore.regions",
    "botocore.retries.standard",
    "botocore.retryhandler",
    "botocore.utils",
    "urllib3.connection",
    "urllib3.connectionpool",
    "urllib3.response",
    "urllib3.util.retry",
)
_STARTED = "safegen_started"  # where before-call leaves its clock reading in botocore's context


def quiet_wire_logs() -> None:
    """Keep boto3, botocore, urllib3 and s3transfer from logging requests and credentials.

    Their loggers are set to WARNING and the ones known to log wire content get a filter that
    drops anything below WARNING, so even a root logger at DEBUG (or ``--debug``) never shows
    a prompt, an image, a header or a token. Idempotent; adapters call it when they are built.
    The debug line safegen logs instead comes from :func:`instrument`.
    """
    _logs.hush(_WIRE_ROOTS, _WIRE_LOGGERS)


def _before_call(model: Any, context: dict[str, Any], **_: Any) -> None:
    context[_STARTED] = (time.perf_counter(), model.service_model.service_name, model.name)


def _after_call(http_response: Any, context: dict[str, Any], **_: Any) -> None:
    _log_call(context, f"HTTP {getattr(http_response, 'status_code', '?')}")


def _after_error(exception: BaseException, context: dict[str, Any], **_: Any) -> None:
    _log_call(context, f"failed ({type(exception).__name__})")


def _log_call(context: dict[str, Any], outcome: str) -> None:
    started = context.get(_STARTED)
    if started is None:
        return
    began, service, operation = started
    elapsed = (time.perf_counter() - began) * 1000.0
    _log.debug("aws call %s.%s: %s in %.1f ms", service, operation, outcome, elapsed)


def _check_raw(operation_model: Any, response_dict: dict[str, Any], **_: Any) -> None:
    """Refuse a JSON answer whose fields have the wrong JSON types, before botocore reads it.

    botocore's parser trusts the model: it turns ``{}`` where a list belongs into ``[]`` (an
    empty finding list out of nothing) and crashes on other mismatches. Checking the raw
    JSON against the output shape first makes every such answer one error, raised here and
    turned into a :class:`~safegen.errors.ServiceError` by the choke point. JSON ``null``
    is left alone (botocore drops it; the adapters then see the field missing).
    """
    body = response_dict.get("body")
    shape = operation_model.output_shape
    protocol = getattr(operation_model.service_model, "resolved_protocol", "")
    status = response_dict.get("status_code", 0)
    if shape is None or not isinstance(body, bytes) or status >= 300 or not body.strip():
        return
    if protocol not in ("json", "rest-json") or shape.serialization.get("payload"):
        return
    try:
        data = json.loads(body)
    except ValueError:
        return  # not JSON at all: botocore's parser says so, and the adapters refuse it
    problem = _type_problem(data, shape, "")
    if problem is not None:
        raise WrongTypeError(f"{operation_model.name} answer: {problem}")


_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "structure": (dict,),
    "map": (dict,),
    "list": (list,),
    "string": (str,),
    "boolean": (bool,),
    "integer": (int,),
    "long": (int,),
    "float": (int, float),
    "double": (int, float),
    "blob": (str,),
    "timestamp": (int, float, str),
}


def _type_problem(value: Any, shape: Any, where: str) -> str | None:
    if value is None:
        return None
    expected = _JSON_TYPES.get(shape.type_name)
    if expected is None:
        return None
    numeric = shape.type_name in ("integer", "long", "float", "double", "timestamp")
    if not isinstance(value, expected) or (numeric and isinstance(value, bool)):
        return f"{where or 'the body'} should be a {shape.type_name}, got {type(value).__name__}"
    # Only the types are checked here; the adapters judge the values (NaN, ranges).
    data: Any = value
    if shape.type_name == "structure":
        for name, member in shape.members.items():
            if member.serialization.get("location"):  # a header, not in the body
                continue
            key = member.serialization.get("name", name)
            problem = _type_problem(data.get(key), member, f"{where}.{key}".lstrip("."))
            if problem is not None:
                return problem
    elif shape.type_name == "list":
        for index, item in enumerate(data):
            problem = _type_problem(item, shape.member, f"{where}[{index}]")
            if problem is not None:
                return problem
    elif shape.type_name == "map":
        for key, item in data.items():
            problem = _type_problem(item, shape.value, f"{where}[{key!r}]")
            if problem is not None:
                return problem
    return None


def instrument(client: Any) -> Any:
    """Quiet *client*'s wire logs and add safegen's per-call debug line; return *client*.

    It also checks every JSON answer's field types against botocore's output shape before
    botocore parses it (see :func:`_check_raw`).

    Safe to call on any object: one without botocore's event system (a test double) is
    returned as it is. Registering twice is a no-op.
    """
    quiet_wire_logs()
    events = getattr(getattr(client, "meta", None), "events", None)
    if events is not None and hasattr(events, "register"):
        events.register("before-call", _before_call, unique_id="safegen-before-call")
        events.register("after-call", _after_call, unique_id="safegen-after-call")
        events.register("after-call-error", _after_error, unique_id="safegen-after-call-error")
        events.register("before-parse", _check_raw, unique_id="safegen-check-raw")
    return client


def client_options(max_attempts: int, read_timeout: float | None = None) -> dict[str, Any]:
    """Return the client ``Config`` keywords every adapter uses, sync and async alike.

    :param max_attempts: attempts in all, the first included (botocore's standard mode,
        which retries throttling, 5xx answers and dropped connections).
    :param read_timeout: seconds to wait for a response (botocore's default is 60).
    """
    options: dict[str, Any] = {"retries": {"mode": "standard", "total_max_attempts": max_attempts}}
    if read_timeout is not None:
        options["read_timeout"] = read_timeout
    return options


def make_client(
    service: str,
    session: boto3.Session | None,
    *,
    region_name: str | None,
    max_attempts: int,
    read_timeout: float | None = None,
) -> Any:
    """Return a client that retries throttling in botocore's standard mode.

    :param max_attempts: attempts in all, the first included.
    :param read_timeout: seconds to wait for a response (botocore's default is 60).
    """
    import boto3
    from botocore.config import Config

    options = client_options(max_attempts, read_timeout)
    with aws_call(service, "CreateClient"):  # no region is botocore's NoRegionError
        session = session or boto3.Session()
        # The stubs type client() per service name; this helper serves several services.
        factory: Any = session.client
        return instrument(factory(service, region_name=region_name, config=Config(**options)))


@attrs.frozen
class Call:
    """One service call an exchange asks for.

    :param service: the botocore service name, e.g. ``"rekognition"``.
    :param operation: the operation, e.g. ``"DetectModerationLabels"``.
    :param params: the keyword arguments of the client method.
    :param body: the streaming member of the answer to read in full (``"Body"``), inside the
        call so that a connection dropped mid-body fails the call; ``None`` for JSON answers.
    """

    service: str
    operation: str
    params: dict[str, Any]
    body: str | None = None

    @property
    def method(self) -> str:
        """The client method's name, as botocore derives it from the operation."""
        return xform_name(self.operation)


#: What every adapter's logic is: it yields calls, receives answers, returns a result.
Exchange: TypeAlias = Generator[Call, Any, T]


def perform(client: Any, call: Call) -> Any:
    """Make *call* on a boto3 client; every failure leaves as a :class:`SafegenError`."""
    with aws_call(call.service, call.operation):
        response = getattr(client, call.method)(**call.params)
        if call.body is not None:
            return response[call.body].read()
        return response


def run(client: Any, exchange: Exchange[T]) -> T:
    """Drive *exchange* on a boto3 client and return its result.

    A failed call's :class:`SafegenError` is thrown into the exchange where it yielded, so
    the exchange decides (fall back, report, or let it propagate).
    """
    with contextlib.closing(exchange):
        value: Any = None
        failed = False
        while True:
            try:
                call = exchange.throw(value) if failed else exchange.send(value)
            except StopIteration as done:
                result: T = done.value
                return result
            try:
                value, failed = perform(client, call), False
            except SafegenError as error:
                value, failed = error, True
