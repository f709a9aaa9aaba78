"""The duty board's read model (值班台, ``apps/console/board.py``): the open incidents and
pending citizen reports of the user's region subtree, each with its live tasks and its
most urgent SLA clock, sorted by urgency.

Constant in queries whatever the number of rows (``tests/console/test_board.py``): one
query each for the incidents, their tasks, the pending reports and the open clocks of
all of them (subject subqueries, no id lists), plus the scope resolution. Rows are plain
dicts of codes (JSON-ready, the same for the first paint and ``board/rows/``); names of
streets and categories travel once per response in ``BoardData.streets``/``categories``.

Urgency (:func:`urgency_key`, mirrored by ``board.js``): breached first, then 督办, then
the nearest deadline, then SOS, then the oldest.

Times leave PostgreSQL as ISO 8601 strings in the project's zone (:class:`LocalIso`):
turning 9,000 ``timestamptz`` values of a 2,000-incident board into aware datetimes and
back into strings in Python was more than half of the selector's time
(``bench/bench_board.py``). The strings share one format and one offset, so they sort as
the times do.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db.models import BooleanField, CharField, ExpressionWrapper, F, Func, Q
from django.db.models.functions import Substr
from django.utils import timezone, translation

from apps.core.scoping import restrict, scope_for
from apps.dispatch.models import DispatchTask
from apps.incidents.models import OPEN_STATUSES, Category, Incident, Priority, Report
from apps.incidents.services.sla import SUBJECT_INCIDENT, SUBJECT_REPORT
from apps.realtime import streams
from apps.realtime.models import StreamCounter
from apps.regions.models import Region, RegionLevel
from apps.sla.models import ClockStatus, SlaClock

SUBJECT_TASK = "task"  # apps.dispatch.services.sla.SUBJECT_TASK
KIND_INCIDENT = "incident"
KIND_REPORT = "report"


class LocalIso(Func):
    """``2026-07-01T12:03:11.214512+08:00``: a ``timestamptz`` formatted by PostgreSQL in
    the project's zone (``TIME_ZONE``, Asia/Shanghai: a fixed offset, no daylight saving)."""

    output_field = CharField()

    def __init__(self, expression: Any) -> None:
        offset = timezone.localtime(timezone.now()).strftime("%z")
        self.offset = f"{offset[:3]}:{offset[3:]}"
        super().__init__(expression)

    def as_sql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        sql, params = compiler.compile(self.source_expressions[0])
        if connection.vendor != "postgresql":  # SQLite (the embedded default): UTC text
            sign, hours, minutes = self.offset[0], self.offset[1:3], self.offset[4:6]
            shift = [f"{sign}{int(hours)} hours", f"{sign}{int(minutes)} minutes"]
            return (
                f"strftime('%%Y-%%m-%%dT%%H:%%M:%%f', {sql}, %s, %s) || %s",
                [*params, *shift, self.offset],
            )
        zone = settings.TIME_ZONE
        return (
            f"to_char(({sql}) AT TIME ZONE %s, 'YYYY-MM-DD\"T\"HH24:MI:SS.US') || %s",
            [*params, zone, self.offset],
        )


def local_iso(value: datetime) -> str:
    """The same format from Python (for comparing with :class:`LocalIso` strings)."""
    return timezone.localtime(value).isoformat(timespec="microseconds")


@dataclass
class BoardData:
    """The rows (urgent first) and the names their codes refer to."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    streets: dict[str, str] = field(default_factory=dict)
    categories: dict[str, str] = field(default_factory=dict)
    now: datetime = field(default_factory=timezone.now)


@dataclass
class _Clock:
    due: str | None = None  # LocalIso strings
    started: str | None = None
    kind: str = ""
    breached: bool = False
    paused: bool = False

    def take(self, clock: tuple[Any, ...]) -> None:
        _type, _id, kind, status, started, due, late = clock
        if late:
            self.breached = True
        if status != ClockStatus.RUNNING:
            self.paused = self.paused or self.due is None
            return
        if self.due is None or due < self.due:
            self.due, self.started, self.kind = due, started, kind
            self.paused = False


def board_names(user: Any) -> tuple[dict[str, str], dict[str, str]]:
    """The names of every region in ``user``'s scope and of every category, by code, in
    two queries: a row that arrives by event (a report in a street the board has not
    shown yet) is drawn with names at once, not with codes until its row is fetched."""
    english = not (translation.get_language() or "zh").startswith("zh")
    regions = restrict(Region.objects.all(), user, "path").values_list("code", "name_zh", "name_en")
    categories = Category.objects.values_list("code", "name_zh", "name_en")
    return (
        {code: (english and en) or zh for code, zh, en in regions},
        {code: (english and en) or zh for code, zh, en in categories},
    )


def board_streams(user: Any) -> list[str]:
    """The region streams the board follows: the top region of each membership (a
    subscription covers everything below it, ``docs/realtime.md``); the new area for a
    user whose scope is the whole tree."""
    scope = scope_for(user)
    if scope.is_global:
        codes = Region.objects.filter(level=RegionLevel.NEW_AREA).values_list("code", flat=True)
        return [streams.region(code) for code in codes]
    return [streams.region(path.strip("/").rsplit("/", 1)[-1]) for path in scope.paths]


def stream_heads(names: Collection[str]) -> dict[str, int]:
    """The last sequence number of each stream (0: nothing yet), in one query. Read
    *before* the rows: the board subscribes with these as ``since``, so nothing that
    happens between the read and the socket is missed (at worst applied twice)."""
    found = dict(
        StreamCounter.objects.filter(stream__in=list(names)).values_list("stream", "last_seq")
    )
    return {name: int(found.get(name, 0)) for name in names}


def board_rows(
    user: Any,
    *,
    incident_ids: Collection[int] | None = None,
    report_ids: Collection[int] | None = None,
) -> BoardData:
    """The board of ``user`` (``visible_to``: their region subtrees). With ids, only those
    rows (``board/rows/``); ids out of scope, closed or unknown are simply not there."""
    now = timezone.now()
    data = BoardData(now=now)
    english = not (translation.get_language() or "zh").startswith("zh")
    incidents = Incident.objects.visible_to(user).filter(status__in=OPEN_STATUSES)
    reports = Report.objects.visible_to(user).pending_triage()
    if incident_ids is not None or report_ids is not None:
        incidents = incidents.filter(pk__in=list(incident_ids or ()))
        reports = reports.filter(pk__in=list(report_ids or ()))
    incident_pks = incidents.values("pk")
    tasks = DispatchTask.objects.filter(incident__in=incident_pks)
    clocks = SlaClock.objects.filter(status__in=(ClockStatus.RUNNING, ClockStatus.PAUSED)).filter(
        Q(subject_type=SUBJECT_INCIDENT, subject_id__in=incident_pks)
        | Q(subject_type=SUBJECT_TASK, subject_id__in=tasks.values("pk"))
        | Q(subject_type=SUBJECT_REPORT, subject_id__in=reports.values("pk"))
    )

    rows: dict[tuple[str, int], dict[str, Any]] = {}
    clock_of: dict[tuple[str, int], _Clock] = {}
    place = ("category__code", "category__name_zh", "category__name_en", "region__code")
    place += ("region__name_zh", "region__name_en")
    supervised = ExpressionWrapper(Q(supervised_at__isnull=False), output_field=BooleanField())
    for (
        pk,
        number,
        title,
        status,
        severity,
        loop,
        priority,
        address,
        drill,
        *names,
    ) in incidents.values_list(
        "pk",
        "number",
        "title",
        "status",
        "severity",
        "loop",
        "priority",
        "address",
        "is_drill",
        *place,
        supervised,
        LocalIso(F("created_at")),
    ):
        category, street = _names(data, names, english)
        rows[(KIND_INCIDENT, pk)] = {
            "kind": KIND_INCIDENT,
            "id": pk,
            "number": number,
            "title": title,
            "status": status,
            "severity": severity,
            "loop": loop,
            "category": category,
            "street": street,
            "address": address,
            "reported_at": names[7],
            "sos": priority >= Priority.SOS,
            "drill": drill,
            "supervised": names[6],
            "tasks": [],
        }
        clock_of[(KIND_INCIDENT, pk)] = _Clock()
    task_incident: dict[int, int] = {}
    for pk, incident_id, status, team in tasks.order_by("dispatched_at", "pk").values_list(
        "pk", "incident_id", "status", "team__name"
    ):
        row = rows.get((KIND_INCIDENT, incident_id))
        if row is not None:
            task_incident[pk] = incident_id
            row["tasks"].append({"id": pk, "team": team, "status": status})
    submitted = str(Report.Status.SUBMITTED)
    for pk, text, address, sos, *names in reports.values_list(
        "pk", Substr("text", 1, 80), "address", "is_sos", *place, LocalIso(F("created_at"))
    ):
        category, street = _names(data, names, english)
        rows[(KIND_REPORT, pk)] = {
            "kind": KIND_REPORT,
            "id": pk,
            "number": "",
            "title": text or "",
            "status": submitted,
            "severity": "",
            "loop": "",
            "category": category,
            "street": street,
            "address": address,
            "reported_at": names[6],
            "sos": sos,
            "drill": False,
            "supervised": False,
            "tasks": [],
        }
        clock_of[(KIND_REPORT, pk)] = _Clock()
    late = Q(breached_at__isnull=False) | Q(status=ClockStatus.RUNNING, due_at__lte=now)
    for clock in clocks.values_list(
        "subject_type",
        "subject_id",
        "kind",
        "status",
        LocalIso(F("started_at")),
        LocalIso(F("due_at")),
        ExpressionWrapper(late, output_field=BooleanField()),
    ):
        subject, subject_id = clock[0], clock[1]
        if subject == SUBJECT_TASK:
            incident_id = task_incident.get(subject_id)
            target = clock_of.get((KIND_INCIDENT, incident_id)) if incident_id else None
        else:
            kind = KIND_INCIDENT if subject == SUBJECT_INCIDENT else KIND_REPORT
            target = clock_of.get((kind, subject_id))
        if target is not None:
            target.take(clock)

    ordered = sorted(rows.items(), key=lambda pair: urgency_key(pair[1], clock_of[pair[0]]))
    for key, row in ordered:
        clock = clock_of[key]
        row["breached"] = clock.breached
        row["paused"] = clock.paused
        row["deadline"] = clock.due
        row["started"] = clock.started
        row["clock"] = clock.kind
        data.rows.append(row)
    return data


def urgency_key(row: dict[str, Any], clock: _Clock) -> tuple[Any, ...]:
    """Breached, then 督办, then the nearest deadline (none: last), SOS, the oldest."""
    tier = 0 if clock.breached else 1 if row["supervised"] else 2
    due = clock.due if clock.due is not None else "~"  # after every time string
    return (tier, due, not row["sos"], row["reported_at"], row["kind"], row["id"])


def _names(data: BoardData, names: list[Any], english: bool) -> tuple[str, str]:
    """Record the names of the row's category and street; their codes."""
    category, category_zh, category_en, street, street_zh, street_en = names[:6]
    if street not in data.streets:
        data.streets[street] = (english and street_en) or street_zh
    if category not in data.categories:
        data.categories[category] = (english and category_en) or category_zh
    return category, street
