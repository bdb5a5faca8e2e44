"""Adapters for Amazon Web Services.

This package is the only place that knows AWS wire formats. Nothing here is imported by
``import safegen``; import :mod:`safegen.aws` when you use AWS.
"""

from safegen.aws.comprehend import TOXICITY_LABELS, ComprehendClassifier, ComprehendToxicity
from safegen.aws.rekognition import (
    HumanReview,
    ModerationResponse,
    RekognitionModerator,
    parse_moderation_response,
)

__all__ = [
    "TOXICITY_LABELS",
    "ComprehendClassifier",
    "ComprehendToxicity",
    "HumanReview",
    "ModerationResponse",
    "RekognitionModerator",
    "parse_moderation_response",
]
