"""Upload moderation as a service: statuses, backup, overrides, an audit trail, a review page."""

from safegen.review.events import AssetStatus, Invalidator, Notifier, StatusChange, VerdictSummary

__all__ = ["AssetStatus", "Invalidator", "Notifier", "StatusChange", "VerdictSummary"]
