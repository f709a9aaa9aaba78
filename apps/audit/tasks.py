"""Periodic housekeeping of the audit trail (conventions R5)."""

from __future__ import annotations

from celery import shared_task

from apps.audit.services import audit_prune_by_policy


@shared_task(ignore_result=True)
def audit_prune() -> int:
    """Drop entries past AUDIT_RETENTION_DAYS (never fewer than 180 days)."""
    return audit_prune_by_policy()
