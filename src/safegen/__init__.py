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
    InvalidPromptError,
    MalformedResponseError,
    PolicyError,
    SafegenError,
    UnknownLabelError,
)
from safegen.labels import ContentType, ModerationLabel
from safegen.policy import ContentTypeRule, ModerationPolicy, Thresholds
from safegen.taxonomy import REKOGNITION_V7, Category, Taxonomy
from safegen.text import RuleFilter, RuleMatch, Term

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
    "InvalidPromptError",
    "MalformedResponseError",
    "ModerationLabel",
    "ModerationPolicy",
    "PolicyDecision",
    "PolicyError",
    "PolicySource",
    "RuleFilter",
    "RuleMatch",
    "SafegenError",
    "Taxonomy",
    "Term",
    "Thresholds",
    "UnknownLabelError",
    "Violation",
]
