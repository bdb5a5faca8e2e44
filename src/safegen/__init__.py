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
    InvalidLabelError,
    MalformedResponseError,
    PolicyError,
    SafegenError,
    UnknownLabelError,
)
from safegen.labels import ContentType, ModerationLabel
from safegen.policy import ContentTypeRule, ModerationPolicy, Thresholds
from safegen.taxonomy import REKOGNITION_V7, Category, Taxonomy

__all__ = [
    "REKOGNITION_V7",
    "Action",
    "Category",
    "ContentType",
    "ContentTypeMatch",
    "ContentTypeRule",
    "IgnoreReason",
    "IgnoredLabel",
    "InvalidLabelError",
    "MalformedResponseError",
    "ModerationLabel",
    "ModerationPolicy",
    "PolicyDecision",
    "PolicyError",
    "PolicySource",
    "SafegenError",
    "Taxonomy",
    "Thresholds",
    "UnknownLabelError",
    "Violation",
]
