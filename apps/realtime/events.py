"""Writing domain events: :func:`emit` in the transaction of the change, publish after commit.

Usage, inside the service's transaction, after the change it describes::

    from apps.realtime import events, streams

    events.emit(
        [streams.incident(incident.pk), *streams.region_and_ancestors(incident.region)],
        "incident.accepted",
        payload,  # a TypedDict of the emitting app, JSON-serialisable
    )

What one call does:

1. reserves one sequence number per stream with ONE statement (:data:`RESERVE_SQL`),
   locking each stream's counter row, in sorted stream order, until the transaction ends;
2. inserts the event rows with one statement (:data:`INSERT_EVENTS_SQL`);
3. registers the events for publishing after commit. All events of a transaction are
   published by ONE on-commit callback in one Redis round trip; events of a savepoint
   that is rolled back are dropped with it, and a rolled-back transaction publishes
   nothing (its rows and its sequence numbers are gone too).

**The ordering rule (deadlocks).** A transaction keeps every counter it reserved locked
until it ends. Two transactions that reserve the same streams in different orders can
deadlock, so: pass *all* the streams an event goes to in one call (they are locked in
sorted order), emit as late as possible in the transaction (right before it ends: the
root region's counter is shared by every incident of the new area, and holding it
longer makes every other incident write wait), and when one transaction-part emits
several events at once (a merge touches two incidents), use :func:`emit_many`, which
reserves the streams of all of them in one sorted statement.

**The raw SQL path.** :data:`RESERVE_SQL` and :data:`INSERT_EVENTS_SQL` are the only
statements that write these tables; a psycopg path outside the ORM (the intake's group
commit) runs the same two in its own transaction and publishes after its commit with
:func:`apps.realtime.publisher.layer_message` / :func:`apps.realtime.frames.event_frame`.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from functools import partial
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone

from apps.realtime import publisher, streams
from apps.realtime.frames import event_frame_from_text
from apps.realtime.models import KIND_MAX_LENGTH, Event
from apps.realtime.publisher import LiveEvent

logger = logging.getLogger(__name__)

# PostgreSQL. Parameters: stream names (text[]) and how many numbers each needs
# (bigint[]); one row per distinct stream. Rows are inserted - and their counter rows
# locked - in byte order of the name (COLLATE "C": the same order on every server, so
# every writer locks in one order). Returns (stream, last_seq): the numbers reserved for
# a stream are last_seq - n + 1 .. last_seq.
RESERVE_SQL = """
INSERT INTO realtime_streamcounter AS counter (stream, last_seq)
SELECT wanted.stream, wanted.n
FROM unnest(%s::text[], %s::bigint[]) AS wanted(stream, n)
ORDER BY wanted.stream COLLATE "C"
ON CONFLICT (stream) DO UPDATE SET last_seq = counter.last_seq + EXCLUDED.last_seq
RETURNING stream, last_seq
""".strip()

# PostgreSQL. Parameters, one array element per event: stream (text[]), seq (bigint[]),
# kind (text[]), payload as JSON text (text[]), created_at (timestamptz[]).
INSERT_EVENTS_SQL = """
INSERT INTO realtime_event (stream, seq, kind, payload, created_at)
SELECT row.stream, row.seq, row.kind, row.payload::jsonb, row.created_at
FROM unnest(%s::text[], %s::bigint[], %s::text[], %s::text[], %s::timestamptz[])
    AS row(stream, seq, kind, payload, created_at)
RETURNING id, stream, seq
""".strip()

# PostgreSQL, what ``emit`` runs: RESERVE_SQL and INSERT_EVENTS_SQL as one statement, one
# round trip (the counters are locked for one round trip less). Parameters: the distinct
# streams (text[]) and their counts (bigint[]) as for RESERVE_SQL; the payloads as ONE
# JSON array (text), each item once however many streams it goes to; created_at; and per
# row: stream (text[]), how far below the stream's reserved last number the row is
# (bigint[]), kind (text[]) and the index of its payload (int[]).
# Why a JSON array, not text[] as in INSERT_EVENTS_SQL: Django's psycopg cursor binds
# parameters client-side, and quoting a text[] of JSON escapes every double quote with a
# Python regex callback - a third of a driver process's CPU per event in the realtime
# bench. One string is escaped by libpq, in C.
EMIT_SQL = """
WITH reserved AS (
    INSERT INTO realtime_streamcounter AS counter (stream, last_seq)
    SELECT wanted.stream, wanted.n
    FROM unnest(%s::text[], %s::bigint[]) AS wanted(stream, n)
    ORDER BY wanted.stream COLLATE "C"
    ON CONFLICT (stream) DO UPDATE SET last_seq = counter.last_seq + EXCLUDED.last_seq
    RETURNING stream, last_seq
), payload AS (
    SELECT %s::jsonb AS items, %s::timestamptz AS created_at
)
INSERT INTO realtime_event (stream, seq, kind, payload, created_at)
SELECT row.stream, reserved.last_seq - row.below_last, row.kind, payload.items -> row.item,
       payload.created_at
FROM unnest(%s::text[], %s::bigint[], %s::text[], %s::int[])
    AS row(stream, below_last, kind, item)
JOIN reserved ON reserved.stream = row.stream
CROSS JOIN payload
RETURNING id, stream, seq
""".strip()

# Other databases (SQLite, the embedded default): one statement per stream, in sorted
# order; SQLite serialises writers anyway.
_RESERVE_ONE_SQL = (
    "INSERT INTO realtime_streamcounter (stream, last_seq) VALUES (%s, %s) "
    "ON CONFLICT (stream) DO UPDATE SET last_seq = last_seq + excluded.last_seq "
    "RETURNING last_seq"
)

Emission = tuple[Iterable[str], str, Mapping[str, Any]]


def emit(streams_to: Iterable[str], kind: str, payload: Mapping[str, Any]) -> list[Event]:
    """Write one event (``kind``, ``payload``) on every stream of ``streams_to`` in the
    current transaction (a transaction of its own outside one); published after commit.
    Returns the rows, one per distinct stream, in sorted stream order."""
    return emit_many([(streams_to, kind, payload)])


def emit_many(
    items: Sequence[Emission], *, using: str | None = None, returning: bool = True
) -> list[Event]:
    """Several events at once: ``[(streams, kind, payload), ...]``. The streams of all of
    them are reserved in one sorted statement (see the ordering rule above); on a stream
    that several items share, the items get consecutive numbers in list order.
    ``returning=False`` skips building the rows' model instances (a batch of hundreds of
    events on the hot intake path does not need them) and returns ``[]``."""
    prepared = [_prepared(streams_to, kind, payload) for streams_to, kind, payload in items]
    prepared = [item for item in prepared if item[0]]
    if not prepared:
        return []
    counts = Counter(stream for item_streams, _kind, _text in prepared for stream in item_streams)
    now = timezone.now()
    with transaction.atomic(using=using, savepoint=False):
        connection = transaction.get_connection(using)
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                rows, ids = _emit_postgresql(cursor, prepared, counts, now)
            else:
                last = reserve_seqs(cursor, counts, vendor=connection.vendor)
                rows = _numbered(prepared, counts, last, now)
                ids = insert_events(cursor, rows, vendor=connection.vendor)
        events = (
            [_event(row, ids[(row[0], row[1])], connection.alias) for row in rows]
            if returning
            else []
        )
        _publish_on_commit(
            connection,
            [
                LiveEvent(stream, seq, event_frame_from_text(stream, seq, kind, at, text))
                for stream, seq, kind, text, at in rows
            ],
        )
    return events


Row = tuple[str, int, str, str, datetime]  # stream, seq, kind, payload JSON, created_at


def _numbered(
    prepared: Sequence[tuple[list[str], str, str]],
    counts: Mapping[str, int],
    last: Mapping[str, int],
    now: datetime,
) -> list[Row]:
    """One row per (item, stream), numbered: on each stream the items take the reserved
    numbers ``last - n + 1 .. last`` in list order."""
    next_seq = {stream: last[stream] - n + 1 for stream, n in counts.items()}
    rows: list[Row] = []
    for item_streams, kind, text in prepared:
        for stream in item_streams:
            rows.append((stream, next_seq[stream], kind, text, now))
            next_seq[stream] += 1
    return rows


def _emit_postgresql(
    cursor: Any,
    prepared: Sequence[tuple[list[str], str, str]],
    counts: Mapping[str, int],
    now: datetime,
) -> tuple[list[Row], dict[tuple[str, int], int]]:
    """:data:`EMIT_SQL`: reserve and insert in one round trip."""
    ordered = sorted(counts)
    remaining = dict(counts)
    row_streams: list[str] = []
    below_last: list[int] = []
    kinds: list[str] = []
    items: list[int] = []
    for index, (item_streams, kind, _text) in enumerate(prepared):
        for stream in item_streams:
            remaining[stream] -= 1
            row_streams.append(stream)
            below_last.append(remaining[stream])
            kinds.append(kind)
            items.append(index)
    payloads = "[" + ",".join(text for _streams, _kind, text in prepared) + "]"
    cursor.execute(
        EMIT_SQL,
        [
            ordered,
            [counts[stream] for stream in ordered],
            payloads,
            now,
            row_streams,
            below_last,
            kinds,
            items,
        ],
    )
    ids = {(stream, int(seq)): int(pk) for pk, stream, seq in cursor.fetchall()}
    last = dict.fromkeys(ordered, 0)
    for stream, seq in ids:
        last[stream] = max(last[stream], seq)
    return _numbered(prepared, counts, last, now), ids


# --- The two statements ------------------------------------------------------------------


def reserve_seqs(cursor: Any, counts: Mapping[str, int], *, vendor: str) -> dict[str, int]:
    """Reserve ``counts[stream]`` numbers on each stream; ``{stream: last_seq}``."""
    ordered = sorted(counts)
    if vendor == "postgresql":
        cursor.execute(RESERVE_SQL, [ordered, [counts[s] for s in ordered]])
        return {stream: int(last) for stream, last in cursor.fetchall()}
    last: dict[str, int] = {}
    for stream in ordered:
        cursor.execute(_RESERVE_ONE_SQL, [stream, counts[stream]])
        last[stream] = int(cursor.fetchone()[0])
    return last


def insert_events(cursor: Any, rows: Sequence[Row], *, vendor: str) -> dict[tuple[str, int], int]:
    """Insert ``(stream, seq, kind, payload_json, created_at)`` rows; ``{(stream, seq): id}``."""
    if vendor == "postgresql":
        columns = list(zip(*rows, strict=True))
        cursor.execute(INSERT_EVENTS_SQL, [list(column) for column in columns])
        return {(stream, int(seq)): int(pk) for pk, stream, seq in cursor.fetchall()}
    created = Event.objects.bulk_create(
        Event(stream=s, seq=q, kind=k, payload=json.loads(p), created_at=t)
        for s, q, k, p, t in rows
    )
    return {(event.stream, event.seq): event.pk for event in created}


# --- Helpers -----------------------------------------------------------------------------


def _prepared(
    streams_to: Iterable[str], kind: str, payload: Mapping[str, Any]
) -> tuple[list[str], str, str]:
    if isinstance(streams_to, str):
        raise TypeError("streams must be an iterable of stream names, not one string")
    names = sorted(set(streams_to))
    for name in names:
        streams.parse(name)  # ValueError on anything but a canonical stream name
    if not kind or len(kind) > KIND_MAX_LENGTH:
        raise ValueError(f"event kind must be 1-{KIND_MAX_LENGTH} characters")
    return names, kind, payload_json(kind, payload)


def payload_json(kind: str, payload: Mapping[str, Any]) -> str:
    """The payload as JSON text, exactly what clients will get.

    With ``EVENTS_PAYLOAD_STRICT`` (the test settings) a payload that is not plain JSON
    is refused: a datetime, a Decimal, a tuple or a non-string key (anything that does not
    come back equal from a JSON round trip), so a test catches it. In production such a
    payload is logged and encoded with Django's JSON encoder rather than failing the
    change it belongs to.
    """
    if not isinstance(payload, Mapping):
        raise TypeError("an event payload is a JSON object")
    strict = bool(getattr(settings, "EVENTS_PAYLOAD_STRICT", False))
    try:
        text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError):
        if strict:
            raise
        logger.exception("event %s: payload is not plain JSON; encoded leniently", kind)
        return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), cls=DjangoJSONEncoder)
    if strict and json.loads(text) != payload:
        raise ValueError(f"event {kind}: payload does not survive a JSON round trip")
    return text


def _event(row: Row, pk: int, alias: str) -> Event:
    stream, seq, kind, text, at = row
    event = Event(id=pk, stream=stream, seq=seq, kind=kind, payload=json.loads(text), created_at=at)
    event._state.adding = False
    event._state.db = alias
    return event


class _CommitBatch:
    """The live events of one transaction and the single on-commit callback publishing
    them (:attr:`callback`). An ``emit`` inside a savepoint adds its events through an
    on-commit callback of its own (:meth:`collect`), so a savepoint rollback drops exactly
    that emit's events (Django discards the callbacks registered inside a rolled-back
    savepoint); at the outermost level they are added at once."""

    __slots__ = ("callback", "live")

    def __init__(self) -> None:
        self.live: list[LiveEvent] = []
        # One bound method, kept: the on-commit list is searched for it by identity.
        self.callback = self.publish

    def collect(self, live: list[LiveEvent]) -> None:
        self.live.extend(live)

    def publish(self) -> None:
        live, self.live = self.live, []
        publisher.publish(live)


def _publish_on_commit(connection: Any, live: list[LiveEvent]) -> None:
    batch = next(
        (
            owner
            for entry in connection.run_on_commit
            if isinstance(owner := getattr(entry[1], "__self__", None), _CommitBatch)
        ),
        None,
    )
    if batch is None:
        batch = _CommitBatch()
    if any(sid is not None for sid in connection.savepoint_ids):
        # Inside a savepoint: collect through a callback of its own, which Django drops
        # if that savepoint is rolled back.
        transaction.on_commit(partial(batch.collect, live), using=connection.alias)
    else:
        # Outermost level: only the whole transaction can drop these, and the batch
        # goes with it.
        batch.collect(live)
    _on_commit_last(connection, batch.callback)


def _on_commit_last(connection: Any, callback: Callable[[], None]) -> None:
    """Make ``callback`` the *last* on-commit callback of the transaction, registered at
    its outermost level, so it runs after every ``collect`` and survives any savepoint
    rollback (a rolled-back transaction still discards it).

    The one hook into Django internals: ``BaseDatabaseWrapper.run_on_commit`` is a list of
    ``(savepoint ids, callback, robust)`` (Django 4.2 to 5.2; pytest-django's
    ``django_capture_on_commit_callbacks`` reads the same list). Robust: a publishing
    failure is logged by Django and never reaches the committed request.
    """
    entries = [entry for entry in connection.run_on_commit if entry[1] is not callback]
    entries.append((set(), callback, True))
    connection.run_on_commit = entries
