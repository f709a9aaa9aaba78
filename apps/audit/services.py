"""Writes of the audit app besides recording: pruning past the retention period."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from apps.audit.models import AuditEntry

logger = logging.getLogger(__name__)

# The Cybersecurity Law (网络安全法 art. 21) and 等保 level 3 ask for network logs to be
# kept at least six months; nothing prunes younger entries (PostgreSQL refuses too).
RETENTION_FLOOR_DAYS = 180


class RetentionTooShort(ValueError):
    pass


def audit_prune(*, older_than_days: int) -> int:
    """Delete entries older than ``older_than_days`` days; refuses fewer than 180."""
    if older_than_days < RETENTION_FLOOR_DAYS:
        raise RetentionTooShort(
            f"audit entries are kept at least {RETENTION_FLOOR_DAYS} days "
            f"(asked to prune after {older_than_days})"
        )
    cutoff = timezone.now() - timedelta(days=older_than_days)
    deleted = AuditEntry.objects.prune(before=cutoff)
    logger.info("audit pruned: %s entries before %s", deleted, cutoff.isoformat())
    return deleted


def audit_prune_by_policy() -> int:
    """Prune by ``AUDIT_RETENTION_DAYS`` (the beat task)."""
    return audit_prune(older_than_days=settings.AUDIT_RETENTION_DAYS)
