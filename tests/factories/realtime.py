"""factory_boy factories for apps.realtime.

``EventFactory`` writes an event row directly (set-up for reads and the retention
sweep: e.g. old rows); it does not bump the stream's counter. Use
``apps.realtime.events.emit`` to exercise the real path (counter, rows, publishing)::

    EventFactory(stream="incident.7", seq=1, created_at=timezone.now() - timedelta(days=4))
    StreamCounterFactory(stream="incident.7", last_seq=1)
"""

from __future__ import annotations

from typing import Any

import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

from apps.realtime.models import Event, StreamCounter


class StreamCounterFactory(DjangoModelFactory):
    class Meta:
        model = StreamCounter
        django_get_or_create = ("stream",)

    stream = factory.Sequence(lambda n: f"incident.{n + 1}")
    last_seq = 0


class EventFactory(DjangoModelFactory):
    class Meta:
        model = Event

    stream = "incident.1"
    seq = factory.Sequence(lambda n: n + 1)
    kind = "incident.note"
    payload: Any = factory.LazyFunction(lambda: {"text": "测试"})
    created_at = factory.LazyFunction(timezone.now)
