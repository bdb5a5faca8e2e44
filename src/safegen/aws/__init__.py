"""Adapters for Amazon Web Services.

This package is the only place that knows AWS wire formats. Nothing here is imported by
``import safegen``; import :mod:`safegen.aws` when you use AWS.
"""

from safegen.aws.bedrock import BedrockGenerator
from safegen.aws.comprehend import TOXICITY_LABELS, ComprehendClassifier, ComprehendToxicity
from safegen.aws.guardrails import BedrockGuardrail, BedrockGuardrailImageBackend
from safegen.aws.rekognition import (
    HumanReview,
    ModerationResponse,
    RekognitionModerator,
    parse_moderation_response,
)
from safegen.aws.sagemaker import STABILITY, TXT2IMG, Codec, SageMakerGenerator

__all__ = [
    "STABILITY",
    "TOXICITY_LABELS",
    "TXT2IMG",
    "BedrockGenerator",
    "BedrockGuardrail",
    "BedrockGuardrailImageBackend",
    "Codec",
    "ComprehendClassifier",
    "ComprehendToxicity",
    "HumanReview",
    "ModerationResponse",
    "RekognitionModerator",
    "SageMakerGenerator",
    "parse_moderation_response",
]
