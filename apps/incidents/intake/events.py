"""The events of a new report, written by the group-commit writer in its transaction.

A new report goes to the operator board of its street and every ancestor (``region.*``
streams: a 新城 operator sees every street below) as ``report.submitted`` with its
duplicate candidates, and to its own ``report.<id>`` stream (what the citizen follows by
token: the public status only). :func:`apps.incidents.realtime.report_submitted_emit`
writes the same events for a report the view took in; the payload builders here are
shared, so both paths put the same thing on the streams.

The writer runs the realtime app's own two statements (``events.RESERVE_SQL`` and
``events.INSERT_EVENTS_SQL``, the only statements that write those tables) for the
whole batch at once, and publishes after COMMIT, in commit order, from one task per
process (:class:`Publisher`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypedDict

from apps.realtime import events, publisher, streams
from apps.realtime.frames import event_frame_from_text, iso
from apps.realtime.publisher import LiveEvent

if TYPE_CHECKING:
    import psycopg

    from apps.incidents.intake.parse import Submission

logger = logging.getLogger(__name__)

SUBMITTED = "report.submitted"


class DuplicateCandidate(TypedDict):
    incident_id: int
    distance_m: float
    score: float


class BoardReport(TypedDict):
    id: int
    category: str
    text: str
    address: str
    lat: float
    lng: float
    region: str  # street code
    is_sos: bool
    created_at: str


class ReportSubmittedPayload(TypedDict):
    """``report.submitted`` on the region streams: a new report for triage."""

    report: BoardReport
    duplicate_candidates: list[DuplicateCandidate]


class ReportReceivedPayload(TypedDict):
    """``report.submitted`` on ``report.<id>``: what the citizen sees."""

    report_id: int
    public_status: str


def board_payload(
    *,
    report_id: int,
    category_code: str,
    text: str,
    address: str,
    lat: float,
    lng: float,
    region_code: str,
    is_sos: bool,
    created_at: datetime,
    candidates: list[DuplicateCandidate],
) -> ReportSubmittedPayload:
    return {
        "report": {
            "id": report_id,
            "category": category_code,
            "text": text,
            "address": address,
            "lat": lat,
            "lng": lng,
            "region": region_code,
            "is_sos": is_sos,
            "created_at": iso(created_at),
        },
        "duplicate_candidates": candidates,
    }


def received_payload(report_id: int) -> ReportReceivedPayload:
    return {"report_id": report_id, "public_status": "received"}


def _dumps(payload: Any) -> str:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


async def board_events(
    conn: psycopg.AsyncConnection[Any],
    new: Sequence[Submission],
    ids: dict[str, int],
    candidates: dict[str, list[DuplicateCandidate]],
) -> list[LiveEvent]:
    """Write the batch's events (one reserve, one insert); what to publish after commit."""
    planned: list[tuple[str, str, datetime]] = []  # (stream, payload text, at)
    for s in new:
        report_id = ids[s.token]
        board = _dumps(
            board_payload(
                report_id=report_id,
                category_code=s.category.code,
                text=s.text,
                address=s.address,
                lat=s.lat,
                lng=s.lng,
                region_code=s.street.code,
                is_sos=False,
                created_at=s.created_at,
                candidates=candidates.get(s.token, []),
            )
        )
        for stream in streams.region_and_ancestors(s.street):
            planned.append((stream, board, s.created_at))
        planned.append(
            (streams.report(report_id), _dumps(received_payload(report_id)), s.created_at)
        )
    counts = Counter(stream for stream, _text, _at in planned)
    ordered = sorted(counts)
    cur = await conn.execute(events.RESERVE_SQL, [ordered, [counts[s] for s in ordered]])
    last = {stream: int(seq) for stream, seq in await cur.fetchall()}
    next_seq = {stream: last[stream] - n + 1 for stream, n in counts.items()}
    rows: list[tuple[str, int, str, str, datetime]] = []
    for stream, text, at in planned:
        rows.append((stream, next_seq[stream], SUBMITTED, text, at))
        next_seq[stream] += 1
    columns = [list(column) for column in zip(*rows, strict=True)]
    await conn.execute(events.INSERT_EVENTS_SQL, columns)
    return [
        LiveEvent(stream, seq, event_frame_from_text(stream, seq, kind, at, text))
        for stream, seq, kind, text, at in rows
    ]


class Publisher:
    """Publishes committed batches' events in commit order, off the request path.

    One task per process drains a queue; a Redis publish runs in a thread (redis-py is
    synchronous), any other channel layer's ``group_send`` on this loop. Publishing is
    best effort, as everywhere: the events are committed and clients catch up from the
    database.
    """

    def __init__(self) -> None:
        self._queue: asyncio.Queue[list[LiveEvent] | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def put(self, live: list[LiveEvent]) -> None:
        if not live:
            return
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="intake-publisher")
        self._queue.put_nowait(live)

    async def _run(self) -> None:
        while True:
            live = await self._queue.get()
            if live is None:
                return
            await publisher.apublish(live)

    async def close(self) -> None:
        if self._task is not None and not self._task.done():
            self._queue.put_nowait(None)
            with contextlib.suppress(Exception):
                await self._task


def report_submitted_emit(report: Any, *, limit: int = 5) -> None:
    """The same events for a report the view took in (photos, a registered citizen, an
    SOS), inside ``report_submit``'s transaction."""
    from apps.incidents import duplicates

    found = duplicates.duplicate_candidates(
        lat=report.lat, lng=report.lng, category=report.category, at=report.created_at, limit=limit
    )
    candidates: list[DuplicateCandidate] = [
        {"incident_id": c.incident.pk, "distance_m": c.distance_m, "score": c.score} for c in found
    ]
    board = board_payload(
        report_id=report.pk,
        category_code=report.category.code,
        text=report.text,
        address=report.address,
        lat=report.lat,
        lng=report.lng,
        region_code=report.region.code,
        is_sos=report.is_sos,
        created_at=report.created_at,
        candidates=candidates,
    )
    events.emit_many(
        [
            (streams.region_and_ancestors(report.region), SUBMITTED, board),
            ([streams.report(report.pk)], SUBMITTED, received_payload(report.pk)),
        ]
    )
