"""Responder GPS: batch ingestion into track chunks, last positions, retention.

A phone collects fixes while offline and sends them later in batches: every point
carries its own time, batches may arrive out of order or twice, and a bad point (no fix,
a clock years off) must not cost the good ones. Positions are durable before the phone
gets its 2xx, so it may drop its buffer then.

Writes of one batch (conventions R2/R3), in one transaction, rows always locked in the same
order — the sender's chunks (by ``bucket_start``), the sender's ``LastPosition``, then
the team — so two batches of one responder (a retry racing the original, two devices)
serialise instead of deadlocking, and batches of different responders never wait on
each other except for the one team row:

1. lock the sender's existing chunks of the batch's buckets, merge in Python
   (``tracks.merge_points``) and write them back with one ``bulk_update``;
2. insert the missing buckets with one ``INSERT ... ON CONFLICT DO NOTHING``; a bucket
   a concurrent batch created meanwhile is then locked and merged like step 1;
3. advance ``LastPosition`` with a conditional upsert (only a newer fix moves it);
4. advance the team's ``last_lat``/``last_lng``/``last_position_at`` the same way.

That is three to five statements per batch whatever its number of buckets. The merge is
done in Python under the row lock rather than in SQL (``jsonb`` functions) so SQLite, the
embedded default, runs the same code; the lock makes it race-safe on PostgreSQL, and
SQLite serialises writers anyway.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from apps.core.errors import ApplicationError
from apps.dispatch import tracks
from apps.dispatch.errors import DispatchErrorCode
from apps.dispatch.models import LastPosition, Team, TrackChunk
from apps.dispatch.selectors.positions import responder_team_id

logger = logging.getLogger(__name__)

# Defaults of the settings this module reads (the lead adds them to settings/base.py).
DEFAULTS: dict[str, int] = {
    "DISPATCH_TRACK_RETENTION_DAYS": 30,
    "DISPATCH_TRACK_DOWNSAMPLE_AFTER_HOURS": 24,
    "DISPATCH_TRACK_DOWNSAMPLE_SECONDS": 30,
    "DISPATCH_PING_MAX_BATCH": 500,
    "DISPATCH_PING_MAX_FUTURE_SKEW_SECONDS": 120,
    "DISPATCH_TRACK_REPLAY_MAX_HOURS": 24,
}
# Accuracy above this is not a fix (a phone reports 0 or huge numbers without one).
MAX_ACCURACY_M = 100_000.0
# Epoch milliseconds accepted at all (1970 .. 2200); anything else is garbage, not time.
_MAX_EPOCH_MS = 7_258_118_400_000
# Retention sweeps work in batches so no transaction holds many rows or runs for long.
SWEEP_BATCH = 500


def setting(name: str) -> int:
    """An integer ``DISPATCH_*`` setting, or its default above."""
    return int(getattr(settings, name, DEFAULTS[name]))


class PingRejection(StrEnum):
    """Why one point of a batch was refused (the rest of the batch is still stored)."""

    INVALID = "invalid"  # not an object, or t/lat/lng missing or not numbers
    TIME_INVALID = "time_invalid"  # unparsable, or an ISO time without a UTC offset
    LAT_OUT_OF_RANGE = "lat_out_of_range"
    LNG_OUT_OF_RANGE = "lng_out_of_range"
    ACCURACY_INVALID = "accuracy_invalid"
    TIME_IN_FUTURE = "time_in_future"  # beyond DISPATCH_PING_MAX_FUTURE_SKEW_SECONDS
    TIME_TOO_OLD = "time_too_old"  # older than the retention window


REJECTION_MESSAGES: dict[PingRejection, Any] = {
    PingRejection.INVALID: _("A point needs t, lat and lng as numbers."),
    PingRejection.TIME_INVALID: _(
        "t must be epoch milliseconds or an ISO 8601 time with a UTC offset."
    ),
    PingRejection.LAT_OUT_OF_RANGE: _("Latitude must be between -90 and 90."),
    PingRejection.LNG_OUT_OF_RANGE: _("Longitude must be between -180 and 180."),
    PingRejection.ACCURACY_INVALID: _("Accuracy must be a non-negative number of metres."),
    PingRejection.TIME_IN_FUTURE: _("The point's time is in the future (check the clock)."),
    PingRejection.TIME_TOO_OLD: _("The point is older than the track retention window."),
}


@dataclass(frozen=True, slots=True)
class Ping:
    """One GPS fix from a phone. ``index`` is its place in the batch as sent (for the
    rejection report); ``None`` means its place in the list given to the service."""

    at: datetime
    lat: float
    lng: float
    accuracy_m: float | None = None
    index: int | None = None


@dataclass(frozen=True, slots=True)
class RejectedPing:
    index: int
    code: PingRejection
    message: Any

    @classmethod
    def of(cls, index: int, code: PingRejection) -> RejectedPing:
        return cls(index=index, code=code, message=REJECTION_MESSAGES[code])


@dataclass(frozen=True, slots=True)
class IngestResult:
    """``accepted`` new points stored, ``duplicates`` already stored, ``rejected`` refused."""

    accepted: int
    duplicates: int
    rejected: list[RejectedPing] = field(default_factory=list)
    newest_at: datetime | None = None


# --- Parsing (the API's payload → Ping) ------------------------------------------------------


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _parse_time(value: Any) -> datetime | None:
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            return None
        # A naive time is ambiguous (phone time zone? UTC?): an 8-hour error in a track
        # is worse than a refused point the app developer sees at once.
        return parsed if parsed.tzinfo is not None else None
    number = _number(value)
    if number is None or not 0 <= number < _MAX_EPOCH_MS:
        return None
    return tracks.from_epoch_ms(int(number))


def pings_parse(items: Sequence[Any]) -> tuple[list[Ping], list[RejectedPing]]:
    """Turn a batch as sent (``[{t, lat, lng, accuracy?}]``) into ``Ping``\\ s.

    ``t`` is epoch milliseconds or an ISO 8601 time with an offset. A malformed item is
    rejected on its own, by its index; range and time checks are :func:`pings_ingest`'s.
    """
    pings: list[Ping] = []
    rejected: list[RejectedPing] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            rejected.append(RejectedPing.of(index, PingRejection.INVALID))
            continue
        lat, lng = _number(item.get("lat")), _number(item.get("lng"))
        if lat is None or lng is None or "t" not in item:
            rejected.append(RejectedPing.of(index, PingRejection.INVALID))
            continue
        at = _parse_time(item["t"])
        if at is None:
            rejected.append(RejectedPing.of(index, PingRejection.TIME_INVALID))
            continue
        raw_accuracy = item.get("accuracy")
        accuracy = None if raw_accuracy is None else _number(raw_accuracy)
        if raw_accuracy is not None and accuracy is None:
            rejected.append(RejectedPing.of(index, PingRejection.ACCURACY_INVALID))
            continue
        pings.append(Ping(at=at, lat=lat, lng=lng, accuracy_m=accuracy, index=index))
    return pings, rejected


# --- Ingestion -------------------------------------------------------------------------------


def _check(ping: Ping, earliest: datetime, latest: datetime) -> PingRejection | None:
    if not (math.isfinite(ping.lat) and -90.0 <= ping.lat <= 90.0):
        return PingRejection.LAT_OUT_OF_RANGE
    if not (math.isfinite(ping.lng) and -180.0 <= ping.lng <= 180.0):
        return PingRejection.LNG_OUT_OF_RANGE
    accuracy = ping.accuracy_m
    if accuracy is not None and not (math.isfinite(accuracy) and 0 <= accuracy <= MAX_ACCURACY_M):
        return PingRejection.ACCURACY_INVALID
    if ping.at.tzinfo is None:
        return PingRejection.TIME_INVALID
    if ping.at > latest:
        return PingRejection.TIME_IN_FUTURE
    if ping.at < earliest:
        return PingRejection.TIME_TOO_OLD
    return None


def pings_ingest(
    *, user: Any, points: Sequence[Ping], received_at: datetime | None = None
) -> IngestResult:
    """Store a batch of ``user``'s GPS fixes; see the module docstring for the steps.

    Each point is checked on its own (coordinates, accuracy, time not beyond
    ``DISPATCH_PING_MAX_FUTURE_SKEW_SECONDS`` in the future nor older than
    ``DISPATCH_TRACK_RETENTION_DAYS``); refused points are reported by index, the others
    stored. A point whose timestamp is already stored is a duplicate and changes
    nothing. The sender needs an active membership of an active team
    (``not_team_member``, 403): the chunks and the team position are filed under it.
    """
    received_at = received_at or timezone.now()
    team_id = responder_team_id(user=user)
    if team_id is None:
        raise ApplicationError(
            DispatchErrorCode.NOT_TEAM_MEMBER,
            _("Only responders in an active team can send positions."),
            status=403,
        )
    earliest = received_at - timedelta(days=setting("DISPATCH_TRACK_RETENTION_DAYS"))
    latest = received_at + timedelta(seconds=setting("DISPATCH_PING_MAX_FUTURE_SKEW_SECONDS"))

    length_ms = tracks.bucket_length_ms()
    buckets: dict[int, list[tracks.EncodedPoint]] = {}
    rejected: list[RejectedPing] = []
    newest: Ping | None = None
    for position, ping in enumerate(points):
        reason = _check(ping, earliest, latest)
        if reason is not None:
            index = position if ping.index is None else ping.index
            rejected.append(RejectedPing.of(index, reason))
            continue
        t_ms = tracks.to_epoch_ms(ping.at)
        start = tracks.bucket_start_ms(t_ms, length_ms)
        buckets.setdefault(start, []).append(
            tracks.encode_point(
                offset_ms=t_ms - start, lat=ping.lat, lng=ping.lng, accuracy_m=ping.accuracy_m
            )
        )
        if newest is None or ping.at > newest.at:
            newest = ping
    if newest is None:
        return IngestResult(accepted=0, duplicates=0, rejected=rejected)

    with transaction.atomic():
        _serialise_sender(user.pk)
        accepted, duplicates = _chunks_merge(user.pk, team_id, buckets)
        _last_position_advance(user.pk, team_id, newest, received_at)
        _team_position_advance(team_id, newest)
    return IngestResult(
        accepted=accepted, duplicates=duplicates, rejected=rejected, newest_at=newest.at
    )


# Namespace of the per-sender advisory lock (any constant unique to this use).
_INGEST_LOCK_NAMESPACE = 0x7472  # "tr"


def _serialise_sender(user_id: int) -> None:
    """One batch of a sender at a time (PostgreSQL advisory lock, released at commit).

    Concurrent batches of one phone touch overlapping chunks in different orders: the
    chunks one batch finds existing it locks first, the ones it creates come later, so
    two batches could each hold a chunk the other waits for (a deadlock seen in the
    concurrency test). Different senders never share chunks and still run in parallel;
    SQLite serialises writers anyway.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(%s, %s)", [_INGEST_LOCK_NAMESPACE, user_id]
            )


def _chunks_merge(
    user_id: int, team_id: int, buckets: dict[int, list[tracks.EncodedPoint]]
) -> tuple[int, int]:
    """Steps 1 and 2: merge each bucket's points into the sender's chunk of it."""
    accepted = duplicates = 0
    starts = {start: tracks.from_epoch_ms(start) for start in buckets}
    locked = _chunks_for_update(user_id, list(starts.values()))
    missing = {start: pts for start, pts in buckets.items() if start not in locked}

    if missing:
        fresh = {start: tracks.merge_points([], pts) for start, pts in missing.items()}
        inserted_ids = _chunks_insert(user_id, team_id, starts, fresh)
        if len(inserted_ids) == len(fresh):
            for merged in fresh.values():
                accepted += merged.added
                duplicates += merged.duplicates
        else:
            # A concurrent batch of this user created some of these buckets between our
            # lock query and the insert; ON CONFLICT skipped them. Lock and merge those.
            raced = _chunks_for_update(
                user_id, [starts[s] for s in missing], exclude_ids=inserted_ids
            )
            for start, merged in fresh.items():
                if start not in raced:
                    accepted += merged.added
                    duplicates += merged.duplicates
            locked.update(raced)
            logger.info("track chunk insert raced for user %s: %s bucket(s)", user_id, len(raced))

    changed: list[TrackChunk] = []
    for start, chunk in locked.items():
        if start not in buckets:
            continue
        merged = tracks.merge_points(chunk.points, buckets[start])
        accepted += merged.added
        duplicates += merged.duplicates
        if merged.added:
            first_offset, last_offset = merged.points[0][0] or 0, merged.points[-1][0] or 0
            chunk.points = merged.points
            chunk.count = len(merged.points)
            chunk.first_at = tracks.from_epoch_ms(start + first_offset)
            chunk.last_at = tracks.from_epoch_ms(start + last_offset)
            chunk.team_id = team_id
            # A late point in a thinned chunk: the next sweep thins it again.
            chunk.downsampled = False
            changed.append(chunk)
    if len(changed) == 1:
        # The common case (a phone's batch inside one bucket): a plain UPDATE compiles
        # much cheaper than bulk_update's CASE WHEN.
        (chunk,) = changed
        TrackChunk.objects.filter(pk=chunk.pk).update(
            points=chunk.points,
            count=chunk.count,
            first_at=chunk.first_at,
            last_at=chunk.last_at,
            team_id=team_id,
            downsampled=False,
        )
    elif changed:
        TrackChunk.objects.bulk_update(
            changed, ["points", "count", "first_at", "last_at", "team_id", "downsampled"]
        )
    return accepted, duplicates


def _chunks_for_update(
    user_id: int, bucket_starts: list[datetime], exclude_ids: Sequence[int] = ()
) -> dict[int, TrackChunk]:
    """The user's chunks of these buckets, locked in ``bucket_start`` order (R3)."""
    chunks = (
        TrackChunk.objects.select_for_update()
        .filter(user_id=user_id, bucket_start__in=bucket_starts)
        .exclude(pk__in=list(exclude_ids))
        .order_by("bucket_start")
        .only("id", "bucket_start", "points", "count", "first_at", "last_at", "team_id")
    )
    return {tracks.to_epoch_ms(chunk.bucket_start): chunk for chunk in chunks}


def _chunks_insert(
    user_id: int,
    team_id: int,
    starts: dict[int, datetime],
    fresh: dict[int, tracks.MergeResult],
) -> list[int]:
    """One ``INSERT ... ON CONFLICT DO NOTHING RETURNING id`` for all new buckets.

    Raw SQL because ``bulk_create(ignore_conflicts=True)`` does not say which rows it
    skipped, and a skipped bucket must be merged, not lost. Values go through the model
    fields' ``get_db_prep_save`` so PostgreSQL gets ``jsonb`` and SQLite text.
    """
    opts = TrackChunk._meta
    fields = [
        opts.get_field(name)
        for name in (
            "user",
            "team",
            "bucket_start",
            "first_at",
            "last_at",
            "count",
            "points",
            "downsampled",
        )
    ]
    qn = connection.ops.quote_name
    rows: list[str] = []
    params: list[Any] = []
    row_sql = "(" + ", ".join(["%s"] * len(fields)) + ")"
    for start, merged in fresh.items():
        values = (
            user_id,
            team_id,
            starts[start],
            tracks.from_epoch_ms(start + (merged.points[0][0] or 0)),
            tracks.from_epoch_ms(start + (merged.points[-1][0] or 0)),
            len(merged.points),
            merged.points,
            False,
        )
        params.extend(
            f.get_db_prep_save(v, connection) for f, v in zip(fields, values, strict=True)
        )
        rows.append(row_sql)
    sql = (
        f"INSERT INTO {qn(opts.db_table)} ({', '.join(qn(f.column) for f in fields)}) "  # noqa: S608
        f"VALUES {', '.join(rows)} "
        f"ON CONFLICT ({qn('user_id')}, {qn('bucket_start')}) DO NOTHING RETURNING {qn('id')}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [row[0] for row in cursor.fetchall()]


def _last_position_advance(user_id: int, team_id: int, newest: Ping, received_at: datetime) -> None:
    """Step 3: upsert the user's last position unless a newer fix is already stored.

    One statement on both backends (``ON CONFLICT ... DO UPDATE ... WHERE``): an old
    batch arriving after a newer one never moves the map marker back.
    """
    opts = LastPosition._meta
    names = ("user", "team", "lat", "lng", "accuracy_m", "recorded_at", "received_at")
    fields = [opts.get_field(name) for name in names]
    values = (user_id, team_id, newest.lat, newest.lng, newest.accuracy_m, newest.at, received_at)
    params = [f.get_db_prep_save(v, connection) for f, v in zip(fields, values, strict=True)]
    qn = connection.ops.quote_name
    table = qn(opts.db_table)
    columns = [qn(f.column) for f in fields]
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns[1:])
    sql = (
        f"INSERT INTO {table} ({', '.join(columns)}) "  # noqa: S608
        f"VALUES ({', '.join(['%s'] * len(columns))}) "
        f"ON CONFLICT ({qn('user_id')}) DO UPDATE SET {updates} "
        f"WHERE {table}.{qn('recorded_at')} < excluded.{qn('recorded_at')}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _team_position_advance(team_id: int, newest: Ping) -> None:
    """Step 4: the team's marker follows its freshest member (conditional UPDATE).

    ``updated_at`` is left alone on purpose: a position is not an edit of the team, and
    bumping it every few seconds would flood change feeds keyed on it.
    """
    Team.objects.filter(
        Q(last_position_at__isnull=True) | Q(last_position_at__lt=newest.at), pk=team_id
    ).update(last_lat=newest.lat, last_lng=newest.lng, last_position_at=newest.at)


# --- Retention -------------------------------------------------------------------------------


def tracks_downsample(*, older_than: datetime, keep_every_seconds: int) -> int:
    """Thin chunks whose bucket started before ``older_than`` to one point per
    ``keep_every_seconds``; returns how many chunks were rewritten.

    Batches of :data:`SWEEP_BATCH` chunks, each its own transaction, locked with
    ``SKIP LOCKED`` so a sweep never waits on (or blocks) a phone merging a late point.
    Idempotent: thinned chunks are marked ``downsampled`` and skipped; a late point
    merged into one clears the mark and the next sweep thins it again.
    """
    keep_every_ms = max(1, int(keep_every_seconds)) * 1000
    rewritten = 0
    last_id = 0
    while True:
        with transaction.atomic():
            batch = list(
                TrackChunk.objects.select_for_update(skip_locked=True)
                .filter(bucket_start__lt=older_than, downsampled=False, pk__gt=last_id)
                .order_by("pk")
                .only("id", "bucket_start", "points", "count", "first_at", "last_at")[:SWEEP_BATCH]
            )
            if not batch:
                return rewritten
            last_id = batch[-1].pk
            for chunk in batch:
                thinned = tracks.downsample_points(chunk.points, keep_every_ms)
                base = tracks.to_epoch_ms(chunk.bucket_start)
                chunk.points = thinned
                chunk.count = len(thinned)
                if thinned:
                    chunk.first_at = tracks.from_epoch_ms(base + (thinned[0][0] or 0))
                    chunk.last_at = tracks.from_epoch_ms(base + (thinned[-1][0] or 0))
                chunk.downsampled = True
            TrackChunk.objects.bulk_update(
                batch, ["points", "count", "first_at", "last_at", "downsampled"]
            )
            rewritten += len(batch)


def tracks_purge(*, older_than: datetime) -> int:
    """Delete chunks whose bucket started before ``older_than``; returns the count.

    Whole chunks go (a chunk starting just before the cutoff takes its last few minutes
    with it). Batches of ids keep each DELETE short; running it twice deletes nothing
    the second time. ``LastPosition`` rows are not touched: one per person, the map's.
    """
    deleted = 0
    while True:
        ids = list(
            TrackChunk.objects.filter(bucket_start__lt=older_than)
            .order_by("pk")
            .values_list("pk", flat=True)[: SWEEP_BATCH * 10]
        )
        if not ids:
            return deleted
        count, _by_model = TrackChunk.objects.filter(pk__in=ids).delete()
        deleted += count


def downsample_cutoff(now: datetime | None = None) -> datetime:
    """Chunks older than this are thinned (``DISPATCH_TRACK_DOWNSAMPLE_AFTER_HOURS``)."""
    now = now or timezone.now()
    return now - timedelta(hours=setting("DISPATCH_TRACK_DOWNSAMPLE_AFTER_HOURS"))


def retention_cutoff(now: datetime | None = None) -> datetime:
    """Chunks older than this are deleted (``DISPATCH_TRACK_RETENTION_DAYS``)."""
    now = now or timezone.now()
    return now - timedelta(days=setting("DISPATCH_TRACK_RETENTION_DAYS"))
