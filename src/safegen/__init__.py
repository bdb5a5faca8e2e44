"""safegen: make generative-image applications safe.

The names here are the public API; the modules behind them are free to move. AWS adapters live
in :mod:`safegen.aws` and are imported only when used, so ``import safegen`` stays light.
"""

from safegen.decision import (
    Action,
    ContentTypeMatch,
    IgnoredLabel,
    IgnoreReason,
    PolicyDecision,
    PolicySource,
    Violation,
)
from safegen.errors import (
    AccessDeniedError,
    GenerationRequestError,
    InvalidImageError,
    InvalidLabelError,
    InvalidPromptError,
    InvalidRequestError,
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
from safegen.image import (
    HumanLoop,
    ImageModerator,
    ImageReport,
    ImageVerdict,
    S3Object,
)
from safegen.labels import ContentType, ModerationLabel
from safegen.pipeline import Attempt, DeliveredImage, ImageStatus, Pipeline, PipelineResult
from safegen.policy import ContentTypeRule, ModerationPolicy, Thresholds
from safegen.ports import Generator, ImageBackend, TextClassifier
from safegen.preflight import Preflight, PreparedImage
from safegen.prompt import (
    CheckResult,
    CheckStatus,
    PromptFinding,
    PromptModerator,
    PromptVerdict,
    TextReport,
)
from safegen.redact import Box, redact
from safegen.taxonomy import REKOGNITION_V7, Category, Taxonomy
from safegen.text import RuleFilter, RuleMatch, Term

__all__ = [
    "DEFAULT_NEGATIVE_PROMPTS",
    "REKOGNITION_V7",
    "AccessDeniedError",
    "Action",
    "Attempt",
    "Box",
    "Category",
    "CheckResult",
    "CheckStatus",
    "ContentFilterFinding",
    "ContentType",
    "ContentTypeMatch",
    "ContentTypeRule",
    "DeliveredImage",
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
    "MalformedResponseError",
    "ModerationLabel",
    "ModerationPolicy",
    "Pipeline",
    "PipelineResult",
    "PolicyDecision",
    "PolicyError",
    "PolicySource",
    "Preflight",
    "PreparedImage",
    "PromptFinding",
    "PromptModerator",
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
