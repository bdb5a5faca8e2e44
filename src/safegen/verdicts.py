"""What moderation decided: the verdicts of the moderators and the Pipeline's results.

Value types only, below the moderators that make them, so that what is told about them (the
observers of :mod:`safegen.observe`, audit records) need not import the moderators. Each is
re-exported where it is made (:mod:`safegen.image`, :mod:`safegen.prompt`,
:mod:`safegen.pipeline`) and from :mod:`safegen`.
"""

from __future__ import annotations

import base64
import enum
from typing import Any, Literal

import attrs

from safegen.decision import Action, PolicyDecision
from safegen.errors import SafegenError, ServiceError
from safegen.generate import GeneratedImage, Generation, GenerationRequest
from safegen.reports import ImageReport, PromptFinding

__all__ = [
    "Attempt",
    "CheckResult",
    "CheckStatus",
    "DeliveredImage",
    "ImageStatus",
    "ImageVerdict",
    "PipelineResult",
    "PromptVerdict",
    "error_text",
]


# Failures botocore finds on this machine before anything is sent: their cause is the set-up,
# not the input, so the verdict says it in safegen's own words (never botocore's message).
_SET_UP = {
    "NoCredentialsError": "Unable to locate credentials: configure AWS credentials",
    "PartialCredentialsError": "the AWS credentials are incomplete",
    "CredentialRetrievalError": "the AWS credentials could not be retrieved",
    "NoRegionError": "no AWS region is set",
    "EndpointConnectionError": "could not connect to the service's endpoint",
    "ConnectTimeoutError": "timed out connecting to the service's endpoint",
}


def error_text(error: BaseException) -> str:
    """Return what a verdict or a result records of *error*: never what a service said.

    A service's own message can quote the input (a model container echoing the prompt, a
    validation message quoting a field), so it is left out: a
    :class:`~safegen.errors.ServiceError` is its place and code
    (``comprehend.DetectToxicContent failed (ThrottlingException)``), any other exception not
    safegen's own is its class (``KeyError(...)``); safegen's own errors, whose messages
    never quote content, keep their message. The error itself (with the message) is still
    what the call raised, for a caller who asks for it directly.

    >>> from safegen.errors import ThrottledError
    >>> error_text(ThrottledError("'a secret prompt' refused", service="s", operation="Op",
    ...                           code="ThrottlingException"))
    's.Op failed (ThrottlingException)'
    >>> error_text(ServiceError("...", service="s", operation="Op", code="NoRegionError"))
    's.Op failed (NoRegionError): no AWS region is set'
    >>> error_text(KeyError("a secret prompt"))
    'KeyError(...)'
    """
    if isinstance(error, ServiceError):
        text = f"{error.service}.{error.operation} failed ({error.code})"
        set_up = _SET_UP.get(error.code or "")
        return text if set_up is None else f"{text}: {set_up}"
    if isinstance(error, SafegenError):
        return str(error)
    return f"{type(error).__name__}(...)"


@attrs.frozen
class ImageVerdict:
    """What image moderation decided about one image, and everything it is based on.

    :param action: ``ALLOW``, ``REVIEW`` or ``BLOCK``.
    :param decision: the policy's decision with its reasons; ``None`` when the backend failed.
    :param report: what the backend reported; ``None`` when it failed.
    :param error: why the backend failed, with the service's error code when there is one.
    :param fail_open: whether a failure was configured to count as safe.
    :param seconds: how long moderation took.
    :param repairs: what preflight did to the image before sending it.
    :param backend: the name of the backend whose answer (or failure) was judged.
    :param escalation: when a :class:`~safegen.Cascade` asked its second moderator, why.
    :param policy_sha256: the ``sha256`` of the policy that
        judged the image (the moderator's, or a per-request one).
    :param policy_version: that policy's ``version``.
    """

    action: Action
    decision: PolicyDecision | None = None
    report: ImageReport | None = None
    error: str | None = None
    fail_open: bool = False
    seconds: float = 0.0
    repairs: tuple[str, ...] = ()
    backend: str | None = None
    escalation: str | None = None
    policy_sha256: str | None = None
    policy_version: str | None = None

    @property
    def failed(self) -> bool:
        """Whether the backend could not answer."""
        return self.error is not None

    @property
    def warnings(self) -> tuple[str, ...]:
        """What the backend said the caller should know."""
        return () if self.report is None else self.report.warnings

    def to_dict(self) -> dict[str, Any]:
        """Return the verdict as plain JSON-ready data (no image bytes)."""
        report = self.report
        return {
            "action": self.action.value,
            "decision": None if self.decision is None else self.decision.to_dict(),
            "model_version": None if report is None else report.model_version,
            "adapter_version": None if report is None else report.adapter_version,
            "human_loop": None
            if report is None or report.human_loop is None
            else attrs.asdict(report.human_loop),
            "warnings": list(self.warnings),
            "error": self.error,
            "fail_open": self.fail_open,
            "seconds": self.seconds,
            "repairs": list(self.repairs),
            "backend": self.backend,
            "escalation": self.escalation,
            "coverage": None
            if report is None or report.coverage is None
            else list(report.coverage),
            "policy_sha256": self.policy_sha256,
            "policy_version": self.policy_version,
        }


class CheckStatus(enum.Enum):
    """How one check went."""

    OK = "ok"
    FAILED = "failed"
    """It could not run; the verdict says why and treats it as its ``fail_open`` says."""
    SKIPPED = "skipped"
    """Not needed: the cascade had already blocked the prompt."""


@attrs.frozen
class CheckResult:
    """One check's part in a verdict.

    :param name: the check: ``"rules"`` or a classifier's name.
    :param status: whether it ran, failed or was skipped.
    :param seconds: how long it took.
    :param error: for a failed check, why (with the service's error code when there is one).
    :param fail_open: whether a failure of this check was configured to count as safe.
    :param notes: what the check could not fully judge.
    """

    name: str
    status: CheckStatus
    seconds: float = 0.0
    error: str | None = None
    fail_open: bool = False
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Return the check as plain JSON-ready data."""
        return {
            "name": self.name,
            "status": self.status.value,
            "seconds": self.seconds,
            "error": self.error,
            "fail_open": self.fail_open,
            "notes": list(self.notes),
        }


@attrs.frozen
class PromptVerdict:
    """What prompt moderation decided, and everything it is based on.

    :param action: ``ALLOW``, ``REVIEW`` or ``BLOCK``.
    :param findings: what the checks found, rules first, then classifiers in order.
    :param checks: every check, in order, with its status and timing.
    :param policy_sha256: the ``sha256`` of the policy whose
        ``[prompts]`` section judged the prompt (``None`` for a moderator built without a
        :class:`~safegen.ModerationPolicy`).
    :param policy_version: that policy's ``version``.
    """

    action: Action
    findings: tuple[PromptFinding, ...] = ()
    checks: tuple[CheckResult, ...] = ()
    policy_sha256: str | None = None
    policy_version: str | None = None

    @property
    def failed(self) -> tuple[CheckResult, ...]:
        """The checks that could not run."""
        return tuple(c for c in self.checks if c.status is CheckStatus.FAILED)

    def to_dict(self) -> dict[str, Any]:
        """Return the verdict as plain JSON-ready data (no prompt text but the matched spans)."""
        return {
            "action": self.action.value,
            "findings": [f.to_dict() for f in self.findings],
            "checks": [c.to_dict() for c in self.checks],
            "policy_sha256": self.policy_sha256,
            "policy_version": self.policy_version,
        }


class ImageStatus(enum.Enum):
    """What happened to one generated image."""

    SAFE = "safe"
    """Moderated and allowed: delivered as generated."""
    REDACTED = "redacted"
    """Unsafe (or for review): delivered blurred, pixelated or covered."""
    WITHHELD = "withheld"
    """Not delivered: unsafe and withheld, or its moderation could not run."""
    FLAGGED = "flagged"
    """Unsafe, delivered as generated with a warning, because you chose ``"warn"``."""


@attrs.frozen
class DeliveredImage:
    """One image as the pipeline hands it out.

    :param status: what happened to it.
    :param data: the bytes to show (``None`` when withheld).
    :param format: the image format.
    :param generated: the image as the model made it.
    :param verdict: its moderation verdict.
    :param review: whether its moderation said ``REVIEW`` (a person should look at it).
    """

    status: ImageStatus
    data: bytes | None = attrs.field(repr=lambda d: "None" if d is None else f"<{len(d):,} bytes>")
    format: str
    generated: GeneratedImage
    verdict: ImageVerdict
    review: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Return the image as JSON-ready data, its bytes in base64 (``None`` if withheld)."""
        decision = self.verdict.decision
        report = self.verdict.report
        loop = None if report is None or report.human_loop is None else report.human_loop.arn
        return {
            "status": self.status.value,
            "review": self.review,
            "human_loop": loop,
            "format": self.format,
            "seed": self.generated.seed,
            "data_base64": None if self.data is None else base64.b64encode(self.data).decode(),
            "action": self.verdict.action.value,
            "labels": [] if decision is None else [v.label.name for v in decision.violations],
            "error": self.verdict.error,
        }


@attrs.frozen
class Attempt:
    """One round of generation and image moderation.

    :param request: what the generator was asked.
    :param generation: what it returned (``None`` if it failed).
    :param verdicts: one per generated image, in order.
    :param generate_seconds: time spent generating.
    :param moderate_seconds: time spent moderating the images (all at once).
    :param error: why generation failed.
    """

    request: GenerationRequest
    generation: Generation | None
    verdicts: tuple[ImageVerdict, ...] = ()
    generate_seconds: float = 0.0
    moderate_seconds: float = 0.0
    error: str | None = None


@attrs.frozen
class PipelineResult:
    """Everything one pipeline run did, and what to show.

    :param status: ``"ok"`` (images made), ``"rejected"`` (the prompt was unsafe) or
        ``"failed"`` (generation could not run).
    :param prompt: the prompt verdict (``None`` without a prompt moderator).
    :param attempts: every generation attempt, in order.
    :param images: the images to show, in order, each with its status.
    :param warnings: what to tell the client, one sentence each.
    :param timings: seconds per stage: ``prompt``, ``generate``, ``moderate``, ``total``.
    :param policy_sha256: the ``sha256`` of the policy the run
        was judged by: the per-request one, else the image moderator's (the prompt and image
        verdicts record each their own).
    :param policy_version: that policy's ``version``.
    """

    status: Literal["ok", "rejected", "failed"]
    prompt: PromptVerdict | None
    attempts: tuple[Attempt, ...] = ()
    images: tuple[DeliveredImage, ...] = ()
    warnings: tuple[str, ...] = ()
    timings: dict[str, float] = attrs.field(factory=dict, eq=False)
    policy_sha256: str | None = None
    policy_version: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the result as JSON for an HTTP response or an audit log (no prompt text)."""
        prompt = self.prompt
        return {
            "status": self.status,
            "prompt": None
            if prompt is None
            else {
                "action": prompt.action.value,
                "findings": [f.to_dict() for f in prompt.findings],
                "failed_checks": [c.name for c in prompt.failed],
            },
            "images": [image.to_dict() for image in self.images],
            "warnings": list(self.warnings),
            "attempts": len(self.attempts),
            "timings": dict(self.timings),
            "policy_sha256": self.policy_sha256,
            "policy_version": self.policy_version,
        }
