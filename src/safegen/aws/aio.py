"""The AWS adapters for an event loop, on aiobotocore: same settings, same answers, same errors.

Each class here is the async twin of a sync adapter in :mod:`safegen.aws` and satisfies the
matching async port (:class:`~safegen.ports.AsyncImageBackend`,
:class:`~safegen.ports.AsyncTextClassifier`, :class:`~safegen.ports.AsyncGenerator`). It is
the same class underneath: the settings, their validation, the request building, the
response checks and every fallback are the sync adapter's, written once as an exchange of
calls (``safegen.aws._client``); only the driver differs, awaiting an aiobotocore
client instead of calling a boto3 one. Failures leave through the same choke point, as the
same :class:`~safegen.errors.SafegenError` subclasses with the same codes.

Two ways to build one:

- inject a client you manage (the testable path)::

      async with session.create_client("rekognition") as client:
          backend = AsyncRekognitionBackend(client)
          report = await backend.detect(image, min_confidence=50)

- or let the adapter open its own, with the sync twin's retry settings, and close it::

      async with await AsyncRekognitionBackend.from_session(region_name="eu-west-1") as backend:
          report = await backend.detect(image, min_confidence=50)

An adapter closes only the client it opened: :meth:`~AsyncRekognitionBackend.aclose` (or
leaving ``async with``) does nothing to an injected client. A copy made with ``attrs.evolve``
or ``with_policy`` shares its original's client without owning it. Once an adapter's own
client is closed, every call on it or on its copies fails at once with a
:class:`~safegen.errors.ServiceError` coded ``ClientClosed`` (no request, no retries).

Cancelling a call cancels its HTTP request: the connection is closed, nothing keeps running.
Importing this module imports neither aiobotocore nor aiohttp; ``from_session`` does.
Install them with the ``aio`` extra.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Awaitable, Callable, Collection, Mapping
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any, Self, TypeVar

import attrs

from safegen._thresholds import ThresholdsLike
from safegen.aws._client import Call, Exchange, client_options
from safegen.aws._errors import aws_call
from safegen.aws.bedrock import _Bedrock
from safegen.aws.comprehend import _Classifier, _Toxicity
from safegen.aws.rekognition import HumanReview, _Rekognition
from safegen.aws.sagemaker import TXT2IMG, Codec, _SageMaker
from safegen.errors import SafegenError, ServiceError
from safegen.generate import Generation, GenerationRequest
from safegen.prompt import TextReport
from safegen.reports import ImageReport, ImageSource
from safegen.taxonomy import REKOGNITION_V7, Taxonomy

if TYPE_CHECKING:
    from types import TracebackType

    from aiobotocore.config import AioConfig
    from aiobotocore.session import AioSession

__all__ = [
    "AsyncBedrockGenerator",
    "AsyncComprehendClassifier",
    "AsyncComprehendToxicity",
    "AsyncRekognitionBackend",
    "AsyncSageMakerGenerator",
]

T = TypeVar("T")


async def perform(client: Any, call: Call) -> Any:
    """Make *call* on an aiobotocore client; every failure leaves as a :class:`SafegenError`.

    A streaming answer is read in full, and its connection released, inside the call.
    Cancellation is not a failure: it propagates, and aiobotocore closes the connection.
    """
    with aws_call(call.service, call.operation):
        response = await getattr(client, call.method)(**call.params)
        if call.body is not None:
            async with response[call.body] as stream:
                return await stream.read()
        return response


async def _refuse(client: Any, call: Call) -> Any:
    raise ServiceError(
        "the adapter is closed: its client makes no more calls",
        code="ClientClosed",
        service=call.service,
        operation=call.operation,
    )


async def run(
    client: Any,
    exchange: Exchange[T],
    *,
    perform: Callable[[Any, Call], Awaitable[Any]] = perform,
) -> T:
    """Drive *exchange* on an aiobotocore client and return its result.

    The async twin of :func:`safegen.aws._client.run`: a failed call's error is thrown into
    the exchange where it yielded; a cancelled call closes the exchange and propagates.

    :param perform: how a call is made (the default sends it).
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
                value, failed = await perform(client, call), False
            except SafegenError as error:
                value, failed = error, True


# The clients an adapter opened and then closed. Keyed by the client, so every copy of the
# adapter (attrs.evolve, with_policy), which shares the client, refuses calls once it is closed.
_CLOSED: weakref.WeakSet[Any] = weakref.WeakSet()


class _Closing:
    """``aclose`` and ``async with`` for an adapter: closes what :func:`_open` opened for it."""

    __slots__ = ()
    _client: Any
    _resources: AsyncExitStack

    async def aclose(self) -> None:
        """Close the client :meth:`from_session` opened; an injected client is left open.

        Idempotent. Calls made after it, on this adapter or any copy of it, fail with a
        ``ClientClosed`` :class:`~safegen.errors.ServiceError`.
        """
        await self._resources.aclose()

    async def _run(self, exchange: Exchange[T]) -> T:
        refused = self._client in _CLOSED
        return await run(self._client, exchange, perform=_refuse if refused else perform)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()


A = TypeVar("A", bound=_Closing)


async def _open(
    build: Callable[[Any], A],
    service: str,
    session: AioSession | None,
    *,
    region_name: str | None,
    endpoint_url: str | None,
    config: AioConfig | None,
    max_attempts: int,
    read_timeout: float | None = None,
) -> A:
    """Open an aiobotocore client with the sync adapters' retry settings; build the adapter.

    *config*, if given, is merged over those settings (its values win). The adapter owns the
    client: closing the adapter closes it. A setting the adapter refuses closes it at once.
    """
    from aiobotocore.config import AioConfig
    from aiobotocore.session import get_session

    stack = AsyncExitStack()
    try:
        with aws_call(service, "CreateClient"):
            settings = AioConfig(**client_options(max_attempts, read_timeout))
            if config is not None:
                settings = settings.merge(config)
            # The stubs type create_client() per service name; this helper serves several.
            create: Any = (session or get_session()).create_client
            context = create(
                service, region_name=region_name, endpoint_url=endpoint_url, config=settings
            )
            client = await stack.enter_async_context(context)
        adapter = build(client)
    except BaseException:
        await stack.aclose()
        raise

    async def close() -> None:
        _CLOSED.add(client)
        await stack.aclose()

    adapter._resources.push_async_callback(close)
    return adapter


@attrs.frozen(eq=False)
class AsyncRekognitionBackend(_Closing, _Rekognition):
    """Amazon Rekognition ``DetectModerationLabels`` as an async image backend.

    The twin of :class:`~safegen.aws.RekognitionModerator`, with the same settings and the
    same report for the same answer: S3 objects or bytes, a Custom Moderation adapter
    (with the warning when it has expired), A2I human review (moderated without a loop, and
    said so, when the quota is exhausted), the model-version warning.

    :param client: an aiobotocore ``rekognition`` client (see :meth:`from_session`).
    :param adapter_arn: a Custom Moderation adapter (``ProjectVersion``) to use.
    :param human_review: start an A2I human loop when its conditions are met.
    :param taxonomy: the taxonomy whose model version this code knows.
    :param name: the backend's name in verdicts.
    :raises ConfigurationError: a setting that cannot be used.
    """

    _resources: AsyncExitStack = attrs.field(init=False, factory=AsyncExitStack, repr=False)

    @classmethod
    async def from_session(
        cls,
        session: AioSession | None = None,
        *,
        region_name: str | None = None,
        endpoint_url: str | None = None,
        config: AioConfig | None = None,
        max_attempts: int = 5,
        adapter_arn: str | None = None,
        human_review: HumanReview | None = None,
        taxonomy: Taxonomy = REKOGNITION_V7,
        name: str = "rekognition",
    ) -> AsyncRekognitionBackend:
        """Open a client that retries throttling (botocore standard mode); own and close it.

        :param session: an aiobotocore session; a new default one if ``None``.
        :param endpoint_url: another endpoint than AWS's (a VPC endpoint, an emulator).
        :param config: an ``AioConfig`` merged over the retry settings (its values win).
        :param max_attempts: attempts in all, the first included.

        The other keywords are the constructor's.
        """
        return await _open(
            lambda client: cls(
                client,
                adapter_arn=adapter_arn,
                human_review=human_review,
                taxonomy=taxonomy,
                name=name,
            ),
            "rekognition",
            session,
            region_name=region_name,
            endpoint_url=endpoint_url,
            config=config,
            max_attempts=max_attempts,
        )

    async def detect(self, image: ImageSource, *, min_confidence: float) -> ImageReport:
        """Ask Rekognition for the moderation labels of *image*.

        :raises ServiceError: the call failed; the AWS error code is kept.
        :raises MalformedResponseError: the response is not of the documented shape.
        """
        return await self._run(self._detect(image, min_confidence))


@attrs.frozen(eq=False)
class AsyncComprehendToxicity(_Closing, _Toxicity):
    """Amazon Comprehend ``DetectToxicContent`` as an async prompt check.

    The twin of :class:`~safegen.aws.ComprehendToxicity`: the same segments, calls,
    thresholds, notes and refusals of malformed answers.

    :param client: an aiobotocore ``comprehend`` client (see :meth:`from_session`).
    :param thresholds: per label, a number (block at) or ``{"block_at", "review_at"}``.
    :param block_at: the threshold for labels without an entry.
    :param review_at: the review threshold for labels without one; ``None`` for none.
    :param name: the check's name in verdicts.
    :raises PolicyError: an unknown label or a threshold out of range.
    :raises ConfigurationError: a name that is not a non-empty string.
    """

    _resources: AsyncExitStack = attrs.field(init=False, factory=AsyncExitStack, repr=False)

    @classmethod
    async def from_session(
        cls,
        session: AioSession | None = None,
        *,
        region_name: str | None = None,
        endpoint_url: str | None = None,
        config: AioConfig | None = None,
        max_attempts: int = 5,
        thresholds: Mapping[str, ThresholdsLike] | None = None,
        block_at: float = 50.0,
        review_at: float | None = None,
        name: str = "comprehend-toxicity",
    ) -> AsyncComprehendToxicity:
        """Open a client that retries throttling (botocore standard mode); own and close it.

        The keywords are :meth:`AsyncRekognitionBackend.from_session`'s and the constructor's.
        """
        return await _open(
            lambda client: cls(
                client, thresholds=thresholds, block_at=block_at, review_at=review_at, name=name
            ),
            "comprehend",
            session,
            region_name=region_name,
            endpoint_url=endpoint_url,
            config=config,
            max_attempts=max_attempts,
        )

    async def classify(self, text: str) -> TextReport:
        """Score *text* with DetectToxicContent.

        :raises ServiceError: the call failed (throttled past retries, access denied, ...).
        :raises MalformedResponseError: the response is not a well-formed answer to the request.
        """
        return await self._run(self._classify(text))


@attrs.frozen(eq=False)
class AsyncComprehendClassifier(_Closing, _Classifier):
    """A Comprehend custom classifier endpoint (``ClassifyDocument``) as an async prompt check.

    The twin of :class:`~safegen.aws.ComprehendClassifier`: the same pieces, thresholds and
    refusal of an answer that does not score every unsafe class.

    :param client: an aiobotocore ``comprehend`` client (see :meth:`from_session`).
    :param endpoint_arn: the classifier endpoint's ARN.
    :param unsafe_classes: the class or label names that mean unsafe.
    :param block_at: the score (0-100) at or above which an unsafe class blocks.
    :param review_at: the score at or above which it sends the prompt to review.
    :param thresholds: per unsafe class, thresholds over *block_at* and *review_at*.
    :param name: the check's name in verdicts.
    :raises ConfigurationError: no unsafe classes, or an ARN the service would refuse.
    :raises PolicyError: a threshold out of range.
    """

    _resources: AsyncExitStack = attrs.field(init=False, factory=AsyncExitStack, repr=False)

    @classmethod
    async def from_session(
        cls,
        endpoint_arn: str,
        session: AioSession | None = None,
        *,
        unsafe_classes: Collection[str],
        region_name: str | None = None,
        endpoint_url: str | None = None,
        config: AioConfig | None = None,
        max_attempts: int = 5,
        block_at: float = 50.0,
        review_at: float | None = None,
        name: str = "comprehend-classifier",
    ) -> AsyncComprehendClassifier:
        """Open a client that retries throttling (botocore standard mode); own and close it.

        The keywords are :meth:`AsyncRekognitionBackend.from_session`'s and the constructor's.
        """
        return await _open(
            lambda client: cls(
                client,
                endpoint_arn,
                unsafe_classes=unsafe_classes,
                block_at=block_at,
                review_at=review_at,
                name=name,
            ),
            "comprehend",
            session,
            region_name=region_name,
            endpoint_url=endpoint_url,
            config=config,
            max_attempts=max_attempts,
        )

    async def classify(self, text: str) -> TextReport:
        """Score *text* with the endpoint.

        :raises ServiceUnavailableError: the endpoint is not in service or the service is down.
        :raises ServiceError: any other failed call.
        :raises MalformedResponseError: an answer that does not score every unsafe class.
        """
        return await self._run(self._classify(text))


@attrs.frozen(eq=False)
class AsyncSageMakerGenerator(_Closing, _SageMaker):
    """A JumpStart Stable Diffusion endpoint as an :class:`~safegen.ports.AsyncGenerator`.

    The twin of :class:`~safegen.aws.SageMakerGenerator`: the same codecs, body limit, seeds
    and refusal of an answer without the images asked for.

    :param client: an aiobotocore ``sagemaker-runtime`` client (see :meth:`from_session`).
    :param endpoint_name: the endpoint.
    :param codec: the container family: :data:`~safegen.aws.TXT2IMG` (default) or
        :data:`~safegen.aws.STABILITY`.
    :param name: the generator's name in results.
    :raises ConfigurationError: an endpoint name SageMaker would refuse, or not a codec.
    """

    _resources: AsyncExitStack = attrs.field(init=False, factory=AsyncExitStack, repr=False)

    @classmethod
    async def from_session(
        cls,
        endpoint_name: str,
        session: AioSession | None = None,
        *,
        region_name: str | None = None,
        endpoint_url: str | None = None,
        config: AioConfig | None = None,
        read_timeout: float = 120.0,
        max_attempts: int = 3,
        codec: Codec = TXT2IMG,
        name: str = "sagemaker",
    ) -> AsyncSageMakerGenerator:
        """Open a client suited to slow models (standard retries); own and close it.

        :param read_timeout: seconds to wait for the image.

        The other keywords are :meth:`AsyncRekognitionBackend.from_session`'s and the
        constructor's.
        """
        return await _open(
            lambda client: cls(client, endpoint_name, codec=codec, name=name),
            "sagemaker-runtime",
            session,
            region_name=region_name,
            endpoint_url=endpoint_url,
            config=config,
            max_attempts=max_attempts,
            read_timeout=read_timeout,
        )

    async def generate(self, request: GenerationRequest) -> Generation:
        """Generate the images asked for.

        :raises GenerationRequestError: a size not a multiple of 8, or a body over 6 MB.
        :raises ServiceError: the call failed (a ``ModelError`` keeps the container's status).
        :raises MalformedResponseError: the response is not the codec's shape.
        """
        return await self._run(self._generate(request))


@attrs.frozen(eq=False)
class AsyncBedrockGenerator(_Closing, _Bedrock):
    """A Bedrock image model as an :class:`~safegen.ports.AsyncGenerator`.

    The twin of :class:`~safegen.aws.BedrockGenerator`: the same request schemas, and the
    model's content filters reported in ``filtered`` rather than raised.

    :param client: an aiobotocore ``bedrock-runtime`` client (see :meth:`from_session`).
    :param model_id: e.g. ``"amazon.nova-canvas-v1:0"`` or ``"stability.sd3-5-large-v1:0"``.
    :param name: the generator's name in results.
    :raises ConfigurationError: a model family this generator does not speak.
    """

    _resources: AsyncExitStack = attrs.field(init=False, factory=AsyncExitStack, repr=False)

    @classmethod
    async def from_session(
        cls,
        model_id: str,
        session: AioSession | None = None,
        *,
        region_name: str | None = None,
        endpoint_url: str | None = None,
        config: AioConfig | None = None,
        read_timeout: float = 120.0,
        max_attempts: int = 3,
        name: str = "bedrock",
    ) -> AsyncBedrockGenerator:
        """Open a client suited to slow models (standard retries); own and close it.

        The keywords are :meth:`AsyncSageMakerGenerator.from_session`'s.
        """
        return await _open(
            lambda client: cls(client, model_id, name=name),
            "bedrock-runtime",
            session,
            region_name=region_name,
            endpoint_url=endpoint_url,
            config=config,
            max_attempts=max_attempts,
            read_timeout=read_timeout,
        )

    async def generate(self, request: GenerationRequest) -> Generation:
        """Generate the images asked for; content-filter refusals are in ``filtered``.

        :raises ServiceError: the call failed for any other reason (the AWS code is kept).
        :raises MalformedResponseError: the response is not the model's shape.
        """
        return await self._run(self._generate(request))
