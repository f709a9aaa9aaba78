"""The track chunk codec: a responder's GPS points for one time bucket as one compact row.

A ``TrackChunk.points`` value is a JSON list of ``[t_ms_offset, lat_e6, lng_e6,
accuracy_dm]``:

- ``t_ms_offset``: milliseconds since the chunk's ``bucket_start`` (0 ≤ offset < bucket);
- ``lat_e6``/``lng_e6``: degrees × 10⁶ as integers (about 0.1 m, finer than any phone fix);
- ``accuracy_dm``: the fix's horizontal accuracy in decimetres, or ``null`` if unknown.

The list is sorted by offset and holds at most one point per offset: a timestamp is the
identity of a point, so a phone that resends a batch it already sent (lost answer,
offline replay) adds nothing. The first stored point of a timestamp wins, which makes a
replay a no-op even if the phone rounded its coordinates differently the second time.

Buckets are ``DISPATCH_TRACK_BUCKET_MINUTES`` long (default 10) and aligned on the Unix
epoch, so a point's bucket depends only on its own time: points collected offline and
sent late, or batches that arrive out of order, land in the bucket they belong to. A
10-minute bucket of a phone pinging every 5 s holds 120 points (about 3 KB of JSON), so
a day of 5,000 responders is about 720 k rows instead of 86 M point rows.

Changing the bucket length applies to chunks written afterwards; older chunks keep
their own ``bucket_start`` and are still read correctly (readers use each chunk's
``bucket_start``, never the setting). Duplicate detection is per bucket, so a point
resent across such a change could be stored twice — harmless for replay.

Pure functions only: no ORM, so the codec is tested without a database.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings

# One stored point: [t_ms_offset, lat_e6, lng_e6, accuracy_dm | None].
EncodedPoint = list[int | None]

DEFAULT_BUCKET_MINUTES = 10
COORD_SCALE = 1_000_000  # degrees → micro-degrees
ACCURACY_SCALE = 10  # metres → decimetres
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class TrackPoint:
    """A decoded point: absolute time (aware, UTC), degrees and metres."""

    at: datetime
    lat: float
    lng: float
    accuracy_m: float | None


def bucket_length_ms() -> int:
    """The bucket length of new chunks, from ``DISPATCH_TRACK_BUCKET_MINUTES``."""
    minutes = int(getattr(settings, "DISPATCH_TRACK_BUCKET_MINUTES", DEFAULT_BUCKET_MINUTES))
    if minutes <= 0:
        raise ValueError("DISPATCH_TRACK_BUCKET_MINUTES must be positive")
    return minutes * 60_000


def to_epoch_ms(at: datetime) -> int:
    """Milliseconds since the epoch of an aware datetime (exact, no float rounding)."""
    delta = at - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def from_epoch_ms(ms: int) -> datetime:
    """The aware UTC datetime of ``ms`` milliseconds since the epoch."""
    return _EPOCH + timedelta(milliseconds=ms)


def bucket_start_ms(t_ms: int, length_ms: int) -> int:
    """Start (epoch ms) of the bucket holding ``t_ms``; buckets are aligned on the epoch."""
    return t_ms - t_ms % length_ms


def encode_point(
    *, offset_ms: int, lat: float, lng: float, accuracy_m: float | None
) -> EncodedPoint:
    """One stored point; ``offset_ms`` is relative to the chunk's ``bucket_start``."""
    accuracy = None if accuracy_m is None else round(accuracy_m * ACCURACY_SCALE)
    return [offset_ms, round(lat * COORD_SCALE), round(lng * COORD_SCALE), accuracy]


def decode_points(
    bucket_start: datetime, points: Iterable[Sequence[int | None]]
) -> list[TrackPoint]:
    """``TrackPoint``\\ s of a stored chunk, in stored (time) order."""
    base = to_epoch_ms(bucket_start)
    decoded = []
    for point in points:
        offset, lat, lng = point[0], point[1], point[2]
        accuracy = point[3] if len(point) > 3 else None
        decoded.append(
            TrackPoint(
                at=from_epoch_ms(base + int(offset or 0)),
                lat=int(lat or 0) / COORD_SCALE,
                lng=int(lng or 0) / COORD_SCALE,
                accuracy_m=None if accuracy is None else int(accuracy) / ACCURACY_SCALE,
            )
        )
    return decoded


@dataclass(frozen=True, slots=True)
class MergeResult:
    """``points`` merged and sorted; ``added`` new ones; ``duplicates`` already there."""

    points: list[EncodedPoint]
    added: int
    duplicates: int


def merge_points(
    existing: Sequence[Sequence[int | None]], incoming: Iterable[Sequence[int | None]]
) -> MergeResult:
    """Merge ``incoming`` into ``existing`` (both chunk-encoded for the same bucket).

    1. Index the existing points by offset (a stored chunk is sorted and unique, but a
       hand-edited or legacy one need not be: it is normalised on the way).
    2. Add each incoming point whose offset is new; count the others as duplicates —
       including a second point of the same offset inside ``incoming`` itself.
    3. Return the union sorted by offset. The existing point wins a tie, so a replayed
       batch never rewrites history.
    """
    by_offset: dict[int, EncodedPoint] = {}
    for point in existing:
        by_offset.setdefault(int(point[0] or 0), list(point))
    added = duplicates = 0
    for point in incoming:
        offset = int(point[0] or 0)
        if offset in by_offset:
            duplicates += 1
            continue
        by_offset[offset] = list(point)
        added += 1
    merged = [by_offset[offset] for offset in sorted(by_offset)]
    return MergeResult(points=merged, added=added, duplicates=duplicates)


def downsample_points(
    points: Sequence[Sequence[int | None]], keep_every_ms: int
) -> list[EncodedPoint]:
    """Thin a sorted chunk to the first point of every ``keep_every_ms`` window.

    Windows are aligned on the bucket start, so thinning a thinned chunk keeps it as it
    is (the sweep may run twice). The first point of the chunk is always kept.
    """
    if keep_every_ms <= 0:
        return [list(p) for p in points]
    kept: list[EncodedPoint] = []
    last_window: int | None = None
    for point in points:
        window = int(point[0] or 0) // keep_every_ms
        if window != last_window:
            kept.append(list(point))
            last_window = window
    return kept


def points_in_window(
    bucket_start: datetime,
    points: Sequence[Sequence[int | None]],
    since: datetime,
    until: datetime,
) -> list[TrackPoint]:
    """The decoded points of a chunk with ``since <= at < until``."""
    base = to_epoch_ms(bucket_start)
    low, high = to_epoch_ms(since) - base, to_epoch_ms(until) - base
    return decode_points(bucket_start, (p for p in points if low <= int(p[0] or 0) < high))
