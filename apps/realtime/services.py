"""Writes of realtime other than ``events.emit``: the retention sweep."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from apps.realtime.models import Event

DEFAULT_RETENTION_HOURS = 72
PURGE_BATCH_SIZE = 5000


def events_retention_cutoff(now: datetime | None = None) -> datetime:
    hours = int(getattr(settings, "EVENTS_RETENTION_HOURS", DEFAULT_RETENTION_HOURS))
    return (now or timezone.now()) - timedelta(hours=hours)


def events_purge(*, older_than: datetime, batch_size: int = PURGE_BATCH_SIZE) -> int:
    """Delete events created before ``older_than``, ``batch_size`` rows per statement
    (short transactions: a sweep after an outage must not hold a huge delete open).

    Counters are kept: a stream's numbers never restart, so a client holding a number
    older than the retention is told to resync instead of being sent wrong events.
    Running twice deletes nothing the second time.
    """
    deleted = 0
    while True:
        ids = list(
            Event.objects.filter(created_at__lt=older_than)
            .order_by("created_at")
            .values_list("pk", flat=True)[:batch_size]
        )
        if not ids:
            return deleted
        count, _ = Event.objects.filter(pk__in=ids).delete()
        deleted += count
