"""safegen: make generative-image applications safe.

The names here are the public API; the modules behind them are free to move. Each name's
module is imported the first time the name is used, so ``import safegen`` costs next to nothing
and a program pays only for the parts it uses. AWS adapters live in :mod:`safegen.aws`.
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

# A library's warnings are the application's to show: without a handler of its own, Python's
# last-resort handler would print them on standard error.
logging.getLogger(__name__).addHandler(logging.NullHandler())

if TYPE_CHECKING:  # what type checkers (and readers) see; at run time, see __getattr__
    from safegen.cascade import Cascade
    from safegen.decision import (
        Action,
        ContentTypeMatch,
        IgnoredLabel,
        IgnoreReason,
        NotEvaluated,
        PolicyDecision,
        PolicySource,
        Violation,
    )
    from safegen.errors import (
        AccessDeniedError,
        ConfigurationError,
        GenerationRequestError,
        InvalidImageError,
        InvalidLabelError,
        InvalidPromptError,
        InvalidRequestError,
        LocalModelError,
        MalformedResponseError,
        PolicyError,
        SafegenError,
        ServiceError,
        ServiceUnavailableError,
        ThrottledError,
        UnknownLabelError,
    )
    from safegen.generate import (
        DEFAULT_NEGATIVE_PROMPTS,
        ContentFilterFinding,
        GeneratedImage,
        Generation,
        GenerationRequest,
        negative_prompt,
    )
    from safegen.image import ImageModerator, ImageVerdict
    from safegen.labels import Box, ContentType, ModerationLabel
    from safegen.pipeline import Attempt, DeliveredImage, ImageStatus, Pipeline, PipelineResult
    from safegen.policy import ContentTypeRule, EffectiveThresholds, ModerationPolicy, Thresholds
    from safegen.ports import Generator, ImageBackend, TextClassifier
    from safegen.preflight import Preflight, PreparedImage
    from safegen.prompt import CheckResult, CheckStatus, PromptModerator, PromptVerdict
    from safegen.prompt_policy import (
        ClassifierThresholds,
        PolicyConfigurable,
        PromptCategory,
        PromptJudgement,
        PromptPolicy,
    )
    from safegen.redaction import redact
    from safegen.reports import HumanLoop, ImageReport, PromptFinding, S3Object, TextReport
    from safegen.taxonomy import REKOGNITION_V7, Category, Taxonomy
    from safegen.text import RuleFilter, RuleMatch, Term

# Public name -> the module that defines it (a test checks this matches the imports above).
_EXPORTS = {
    "Action": "safegen.decision",
    "Cascade": "safegen.cascade",
    "ContentTypeMatch": "safegen.decision",
    "IgnoreReason": "safegen.decision",
    "IgnoredLabel": "safegen.decision",
    "NotEvaluated": "safegen.decision",
    "PolicyDecision": "safegen.decision",
    "PolicySource": "safegen.decision",
    "Violation": "safegen.decision",
    "AccessDeniedError": "safegen.errors",
    "ConfigurationError": "safegen.errors",
    "GenerationRequestError": "safegen.errors",
    "InvalidImageError": "safegen.errors",
    "InvalidLabelError": "safegen.errors",
    "InvalidPromptError": "safegen.errors",
    "InvalidRequestError": "safegen.errors",
    "LocalModelError": "safegen.errors",
    "MalformedResponseError": "safegen.errors",
    "PolicyError": "safegen.errors",
    "SafegenError": "safegen.errors",
    "ServiceError": "safegen.errors",
    "ServiceUnavailableError": "safegen.errors",
    "ThrottledError": "safegen.errors",
    "UnknownLabelError": "safegen.errors",
    "ContentFilterFinding": "safegen.generate",
    "DEFAULT_NEGATIVE_PROMPTS": "safegen.generate",
    "GeneratedImage": "safegen.generate",
    "Generation": "safegen.generate",
    "GenerationRequest": "safegen.generate",
    "negative_prompt": "safegen.generate",
    "HumanLoop": "safegen.reports",
    "ImageModerator": "safegen.image",
    "ImageReport": "safegen.reports",
    "ImageVerdict": "safegen.image",
    "S3Object": "safegen.reports",
    "ContentType": "safegen.labels",
    "ModerationLabel": "safegen.labels",
    "Attempt": "safegen.pipeline",
    "DeliveredImage": "safegen.pipeline",
    "ImageStatus": "safegen.pipeline",
    "Pipeline": "safegen.pipeline",
    "PipelineResult": "safegen.pipeline",
    "ContentTypeRule": "safegen.policy",
    "EffectiveThresholds": "safegen.policy",
    "ModerationPolicy": "safegen.policy",
    "Thresholds": "safegen.policy",
    "Generator": "safegen.ports",
    "ImageBackend": "safegen.ports",
    "TextClassifier": "safegen.ports",
    "Preflight": "safegen.preflight",
    "PreparedImage": "safegen.preflight",
    "CheckResult": "safegen.prompt",
    "CheckStatus": "safegen.prompt",
    "PromptFinding": "safegen.reports",
    "PromptModerator": "safegen.prompt",
    "PromptVerdict": "safegen.prompt",
    "ClassifierThresholds": "safegen.prompt_policy",
    "PolicyConfigurable": "safegen.prompt_policy",
    "PromptCategory": "safegen.prompt_policy",
    "PromptJudgement": "safegen.prompt_policy",
    "PromptPolicy": "safegen.prompt_policy",
    "TextReport": "safegen.reports",
    "Box": "safegen.labels",
    "redact": "safegen.redaction",
    "Category": "safegen.taxonomy",
    "REKOGNITION_V7": "safegen.taxonomy",
    "Taxonomy": "safegen.taxonomy",
    "RuleFilter": "safegen.text",
    "RuleMatch": "safegen.text",
    "Term": "safegen.text",
}

__all__ = [
    "DEFAULT_NEGATIVE_PROMPTS",
    "REKOGNITION_V7",
    "AccessDeniedError",
    "Action",
    "Attempt",
    "Box",
    "Cascade",
    "Category",
    "CheckResult",
    "CheckStatus",
    "ClassifierThresholds",
    "ConfigurationError",
    "ContentFilterFinding",
    "ContentType",
    "ContentTypeMatch",
    "ContentTypeRule",
    "DeliveredImage",
    "EffectiveThresholds",
    "GeneratedImage",
    "Generation",
    "GenerationRequest",
    "GenerationRequestError",
    "Generator",
    "HumanLoop",
    "IgnoreReason",
    "IgnoredLabel",
    "ImageBackend",
    "ImageModerator",
    "ImageReport",
    "ImageStatus",
    "ImageVerdict",
    "InvalidImageError",
    "InvalidLabelError",
    "InvalidPromptError",
    "InvalidRequestError",
    "LocalModelError",
    "MalformedResponseError",
    "ModerationLabel",
    "ModerationPolicy",
    "NotEvaluated",
    "Pipeline",
    "PipelineResult",
    "PolicyConfigurable",
    "PolicyDecision",
    "PolicyError",
    "PolicySource",
    "Preflight",
    "PreparedImage",
    "PromptCategory",
    "PromptFinding",
    "PromptJudgement",
    "PromptModerator",
    "PromptPolicy",
    "PromptVerdict",
    "RuleFilter",
    "RuleMatch",
    "S3Object",
    "SafegenError",
    "ServiceError",
    "ServiceUnavailableError",
    "Taxonomy",
    "Term",
    "TextClassifier",
    "TextReport",
    "Thresholds",
    "ThrottledError",
    "UnknownLabelError",
    "Violation",
    "negative_prompt",
    "redact",
]


__version__: str
"""The installed distribution's version, read from its metadata when first used."""


def __getattr__(name: str) -> Any:
    """Import a public name's module when the name is first used (PEP 562)."""
    if name == "__version__":
        from importlib import metadata

        version = globals()["__version__"] = metadata.version("safegen")
        return version
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'safegen' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups find it directly
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
