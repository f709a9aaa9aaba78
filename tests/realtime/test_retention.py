"""Events older than EVENTS_RETENTION_HOURS are purged by the beat task; counters stay."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.conf import settings
from django.utils import timezone

from apps.realtime import events
from apps.realtime.models import Event, StreamCounter
from apps.realtime.selectors import replay_since
from apps.realtime.services import events_purge
from apps.realtime.tasks import events_purge_old

pytestmark = pytest.mark.django_db


def test_the_sweep_deletes_only_events_past_the_retention_and_keeps_the_numbers() -> None:
    # given: three events four days ago, one an hour ago (retention 72 h)
    start = timezone.now()
    with time_machine.travel(start - timedelta(days=4)):
        events.emit(["incident.1", "region.xixian"], "incident.created", {})
        events.emit(["incident.1"], "incident.note", {})
    with time_machine.travel(start - timedelta(hours=1)):
        events.emit(["incident.1"], "incident.note", {})
    # when
    with time_machine.travel(start):
        deleted = events_purge_old.delay().get()
        again = events_purge_old.delay().get()
    # then
    assert (deleted, again) == (3, 0)
    assert list(Event.objects.values_list("stream", "seq")) == [("incident.1", 3)]
    assert StreamCounter.objects.get(stream="region.xixian").last_seq == 1
    # a client that last saw 1 is told to resync; one that saw 2 is served
    assert replay_since("incident.1", 1).resync == "purged"
    assert [e.seq for e in replay_since("incident.1", 2).events] == [3]
    # the next event never reuses a purged number
    (event,) = events.emit(["region.xixian"], "incident.note", {})
    assert event.seq == 2


def test_the_sweep_deletes_in_batches() -> None:
    old = timezone.now() - timedelta(hours=settings.EVENTS_RETENTION_HOURS + 1)
    with time_machine.travel(old):
        for _ in range(5):
            events.emit(["user.1"], "task.dispatched", {})
    assert events_purge(older_than=timezone.now(), batch_size=2) == 5
    assert not Event.objects.exists()


def test_the_retention_is_configurable(settings) -> None:
    settings.EVENTS_RETENTION_HOURS = 1
    with time_machine.travel(timezone.now() - timedelta(hours=2)):
        events.emit(["user.1"], "task.dispatched", {})
    assert events_purge_old.delay().get() == 1


def test_the_sweep_is_scheduled_hourly() -> None:
    entry = settings.CELERY_BEAT_SCHEDULE["realtime-events-purge"]
    assert entry == {"task": "apps.realtime.tasks.events_purge_old", "schedule": 3600.0}
