"""Periodic housekeeping of realtime (Celery beat, ``CELERY_BEAT_SCHEDULE``)."""

from __future__ import annotations

from celery import shared_task

from apps.realtime.services import events_purge, events_retention_cutoff


@shared_task(ignore_result=True)
def events_purge_old() -> int:
    """Delete events older than ``EVENTS_RETENTION_HOURS`` (default 72); idempotent."""
    return events_purge(older_than=events_retention_cutoff())
