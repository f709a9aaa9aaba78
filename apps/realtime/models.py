"""Domain events: the outbox every realtime stream is served and replayed from.

A departure from the first plan ("realtime has no models"), on purpose: delivery must
not depend on a socket having been open, so every change a client must see is written as
an :class:`Event` row *in the transaction of the change* and only published after commit.
A client that reconnects reads what it missed from this table.

Two tables, both written only through ``apps.realtime.events`` (or, by the high-throughput
intake path, with the very same SQL statements, ``events.RESERVE_SQL`` and
``events.INSERT_EVENTS_SQL``):

``realtime_streamcounter (stream text PRIMARY KEY, last_seq bigint)``
    One row per stream, bumped by ``INSERT .. ON CONFLICT (stream) DO UPDATE SET
    last_seq = last_seq + n RETURNING last_seq``: one statement reserves ``n`` sequence
    numbers. The row stays locked until the transaction ends, so the next transaction
    emitting to the same stream waits for this one to commit or roll back: per stream,
    sequence order is commit order, and a rolled-back transaction gives its numbers back.
    That is what makes replay gap-free: once ``seq = s`` is visible, every ``seq < s`` is.
    Counters are never deleted (a stream's numbers never restart).

``realtime_event (id, stream, seq, kind, payload jsonb, created_at)``
    Append-only, unique on ``(stream, seq)``; purged after ``EVENTS_RETENTION_HOURS``.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

# Channels refuses group names of 100 characters or more; a stream name is a group name.
STREAM_MAX_LENGTH = 99
KIND_MAX_LENGTH = 64


class StreamCounter(models.Model):
    """The last sequence number handed out on a stream (``user.7``, ``region.fengdong``)."""

    stream = models.CharField(_("stream"), max_length=STREAM_MAX_LENGTH, primary_key=True)
    last_seq = models.BigIntegerField(_("last sequence number"))

    class Meta:
        verbose_name = _("stream counter")
        verbose_name_plural = _("stream counters")
        ordering = ["stream"]

    def __str__(self) -> str:
        return f"{self.stream} @ {self.last_seq}"


class Event(models.Model):
    """One change a client must see, numbered within its stream. Append-only (conventions R11).

    ``payload`` is the ``data`` of the frame sent to clients; its shape is a TypedDict of
    the emitting app, named by ``kind`` (``incident.accepted``, ``task.dispatched`` ...).
    """

    stream = models.CharField(_("stream"), max_length=STREAM_MAX_LENGTH)
    seq = models.BigIntegerField(_("sequence number"))
    kind = models.CharField(_("kind"), max_length=KIND_MAX_LENGTH)
    payload = models.JSONField(_("payload"), default=dict)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("event")
        verbose_name_plural = _("events")
        ordering = ["stream", "seq"]
        constraints = [
            # Replay: WHERE stream = %s AND seq > %s ORDER BY seq (the constraint's index).
            models.UniqueConstraint(
                fields=["stream", "seq"], name="realtime_event_stream_seq_uniq"
            ),
        ]
        indexes = [
            # Retention sweep: DELETE ... WHERE created_at < cutoff.
            models.Index(fields=["created_at"], name="realtime_event_age_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.stream}#{self.seq} {self.kind}"
