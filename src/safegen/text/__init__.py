"""Prompt text: normalisation that sees through obfuscation, and the forbidden-term filter."""

from safegen.text.normalize import Transform
from safegen.text.rules import RuleFilter, RuleMatch, Term

__all__ = ["RuleFilter", "RuleMatch", "Term", "Transform"]
