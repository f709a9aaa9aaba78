"""KPI reads: the "first-time" intervals and SLA compliance, scoped and grouped.

What each figure means is defined in :mod:`apps.analytics.intervals`; how the groups are
folded (in PostgreSQL, or in Python on SQLite) in :mod:`apps.analytics.aggregation`.

**Scope** (conventions R9). Every row query starts from ``visible_to(user)``; a ``region``
narrows it to that subtree, so the figures are the intersection, as with the list
filters: an operator of 沣东 asking for the whole new area gets 沣东's figures. An
unknown region, or one disjoint from the caller's scope, gives an *empty* report (the
list filters' answer too): a probe cannot tell the two apart. The report names the
region only when the caller sees all of it.

**Groups** (``group_by``):

- ``region``: the regions one level below the *base*, each with its whole subtree. The
  base is the requested region when the caller sees all of it, else the caller's scope
  roots inside it (no region asked: all scope roots; the whole tree: its root). Rows
  filed at a base itself (above every child) form a group of their own ("own level").
  Every child is listed, with zeros when nothing happened there.
- ``day`` / ``week`` / ``month``: Asia/Shanghai periods (weeks from Monday), every period
  of the window listed, with zeros when empty.
- ``category``: incidents, their tasks and their clocks by category code; ``team``: task
  intervals and task clocks by team (incident intervals are not a team's: their columns
  are ``None`` in team groups). Only groups with data are listed.

The total is over every row in the window, whatever the grouping: clocks or incidents
that fit no group (a warning clock has no category) still count in it.

**Queries**: three aggregate statements (incidents, tasks, clocks), at most two region
reads and one read of the group labels, whatever the number of rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any, TypedDict

from django.db.models import (
    Case,
    CharField,
    Count,
    DateTimeField,
    F,
    OuterRef,
    Q,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import ExtractIsoWeekDay, Trunc
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from apps.analytics.aggregation import (
    Bucket,
    ClockCounts,
    IntervalSummary,
    empty_bucket,
    fold_clocks,
    fold_rows,
)
from apps.analytics.forms import PERIODS, GroupBy, KpiQuery
from apps.analytics.intervals import (
    INCIDENT_FLAGS,
    INCIDENT_INTERVALS,
    INTERVAL_NAMES,
    TASK_FLAGS,
    TASK_INTERVALS,
    clock_rows,
    incident_rows,
    task_rows,
)
from apps.core.scoping import Scope, scope_for
from apps.dispatch.models import DispatchTask, Team
from apps.dispatch.services.sla import SUBJECT_TASK
from apps.incidents.models import Category, Incident
from apps.incidents.selectors.incidents import incident_can_read
from apps.regions.models import Region
from apps.sla.models import SlaClock, SlaKind

# --- Output shapes -----------------------------------------------------------------------------


class IntervalStats(TypedDict):
    count: int
    mean_s: float | None
    median_s: float | None
    p90_s: float | None


class IncidentCounts(TypedDict):
    total: int
    rejected: int
    merged: int
    reopened: int


class TaskCounts(TypedDict):
    total: int
    declined: int
    expired: int
    cancelled: int


class SlaCompliance(TypedDict):
    kind: str
    met: int
    breached: int
    pending: int
    compliance_rate: float | None


class KpiGroup(TypedDict):
    key: str
    label: str
    incidents: IncidentCounts | None
    tasks: TaskCounts
    intervals: dict[str, IntervalStats | None]
    sla: list[SlaCompliance]


class RegionRef(TypedDict):
    code: str
    name_zh: str
    name_en: str
    level: str


class KpiReportData(TypedDict):
    region: RegionRef | None
    date_from: date
    date_to: date
    group_by: str
    include_drills: bool
    timezone: str
    generated_at: datetime
    total: KpiGroup
    groups: list[KpiGroup]


# --- Access ------------------------------------------------------------------------------------


def kpi_can_read(user: Any) -> bool:
    """Whoever may read incidents (staff and field roles, in some region) may read their
    KPIs, inside the same scope; citizens may not."""
    return incident_can_read(user)


# --- The report --------------------------------------------------------------------------------


def kpi_report(*, user: Any, query: KpiQuery, now: datetime | None = None) -> KpiReportData:
    """The KPIs ``user`` may see for ``query``: the total and the groups.

    1. Resolve the region and the part of the caller's scope it covers (empty report if
       none: unknown, or disjoint from the scope).
    2. Build the three scoped row queries (incidents by creation, tasks by dispatch,
       clocks by start, inside the Asia/Shanghai window; drills out unless asked).
    3. Fold each in one statement, grouped by the key of ``group_by``.
    4. Label and order the groups; enumerated groups (regions, periods) get zeros.
    """
    now = now or timezone.now()
    tz = timezone.get_default_timezone()
    scope = scope_for(user)
    region = _region(query.region_code)
    target = _target(scope, query, region)
    report = _empty_report(query, now, tz, region if target.named else None)
    if target.empty:
        return report

    start, end = window_bounds(query.date_from, query.date_to, tz)
    incidents = Incident.objects.visible_to(user).filter(created_at__gte=start, created_at__lt=end)
    tasks = DispatchTask.objects.visible_to(user).filter(
        dispatched_at__gte=start, dispatched_at__lt=end
    )
    clocks = SlaClock.objects.visible_to(user).filter(started_at__gte=start, started_at__lt=end)
    if region is not None:
        incidents = incidents.filter(region__path__startswith=region.path)
        tasks = tasks.filter(incident__region__path__startswith=region.path)
        clocks = clocks.filter(region__path__startswith=region.path)
    if not query.include_drills:
        incidents = incidents.filter(is_drill=False)
        tasks = tasks.filter(incident__is_drill=False)
        clocks = clocks.filter(is_drill=False)

    grouping = _grouping(query, target, tz)
    incident_key = grouping.incident_key if grouping.incident_key is not None else NO_KEY
    folded_incidents = fold_rows(
        incident_rows(incidents, incident_key),
        flags=INCIDENT_FLAGS,
        intervals=INCIDENT_INTERVALS,
        grouped=grouping.grouped and grouping.incident_key is not None,
    )
    folded_tasks = fold_rows(
        task_rows(tasks, grouping.task_key),
        flags=TASK_FLAGS,
        intervals=TASK_INTERVALS,
        grouped=grouping.grouped,
    )
    folded_clocks = fold_clocks(
        clock_rows(clocks, grouping.clock_key, now=now), grouped=grouping.grouped
    )

    report["total"] = _group(
        "",
        _("All"),
        folded_incidents.total,
        folded_tasks.total,
        folded_clocks.total,
        with_incidents=True,
    )
    if not grouping.grouped:
        return report

    incident_groups = _normalised(folded_incidents.groups, grouping.normalise)
    task_groups = _normalised(folded_tasks.groups, grouping.normalise)
    clock_groups = _normalised(folded_clocks.groups, grouping.normalise)
    with_data = {*incident_groups, *task_groups, *clock_groups} - {None, ""}
    labelled = grouping.labels(with_data)
    for key, label in labelled:
        report["groups"].append(
            _group(
                key,
                label,
                incident_groups.get(key),
                task_groups.get(key),
                clock_groups.get(key, {}),
                with_incidents=grouping.incident_key is not None,
            )
        )
    return report


# --- The heat map ------------------------------------------------------------------------------

# The regions the heat map lists: streets (depth 2); incidents filed above a street (at a
# new town, say) form a row of that region's own.
HEAT_ROW_DEPTH = 2
HEAT_MAX_ROWS = 40


class HeatRow(TypedDict):
    code: str
    label: str
    counts: list[int]  # Monday … Sunday
    total: int


class HeatMap(TypedDict):
    rows: list[HeatRow]
    max: int
    more: int  # rows left out (beyond HEAT_MAX_ROWS, the quietest)


def incident_heatmap(*, user: Any, query: KpiQuery) -> HeatMap:
    """Incidents of the window by street × day of the week (Asia/Shanghai, Monday first),
    busiest streets first: the same scope, region, window and drill rule as
    :func:`kpi_report` (incidents by creation). Two statements whatever the row count:
    the counts, then the street names (plus the scope and region reads)."""
    empty: HeatMap = {"rows": [], "max": 0, "more": 0}
    tz = timezone.get_default_timezone()
    scope = scope_for(user)
    region = _region(query.region_code)
    if _target(scope, query, region).empty:
        return empty
    start, end = window_bounds(query.date_from, query.date_to, tz)
    incidents = Incident.objects.visible_to(user).filter(created_at__gte=start, created_at__lt=end)
    if region is not None:
        incidents = incidents.filter(region__path__startswith=region.path)
    if not query.include_drills:
        incidents = incidents.filter(is_drill=False)
    counted = (
        incidents.annotate(weekday=ExtractIsoWeekDay("created_at", tzinfo=tz))
        .values_list("region__path", "weekday")
        .annotate(n=Count("pk"))
        .order_by()
    )
    grid: dict[str, list[int]] = {}
    for path, weekday, n in counted:
        row = grid.setdefault(heat_row_path(path), [0] * 7)
        row[weekday - 1] += n
    if not grid:
        return empty
    ordered = sorted(grid, key=lambda path: (-sum(grid[path]), path))
    shown = ordered[:HEAT_MAX_ROWS]
    names = {
        path: (code, _localised(zh, en))
        for path, code, zh, en in Region.objects.filter(path__in=shown).values_list(
            "path", "code", "name_zh", "name_en"
        )
    }
    rows: list[HeatRow] = []
    for path in shown:
        code, label = names.get(path, (path.strip("/").rsplit("/", 1)[-1], path))
        rows.append({"code": code, "label": label, "counts": grid[path], "total": sum(grid[path])})
    return {
        "rows": rows,
        "max": max(max(row["counts"]) for row in rows),
        "more": len(ordered) - len(shown),
    }


def heat_row_path(path: str) -> str:
    """The street a region path lies in (``/xixian/fengdong/fd-sanqiao/``), or the path
    itself when it lies above the streets."""
    codes = path.strip("/").split("/")
    if len(codes) <= HEAT_ROW_DEPTH + 1:
        return path
    return "/" + "/".join(codes[: HEAT_ROW_DEPTH + 1]) + "/"


def window_bounds(date_from: date, date_to: date, tz: tzinfo) -> tuple[datetime, datetime]:
    """``[from 00:00, day after to 00:00)`` in ``tz`` (Asia/Shanghai): both days included."""
    start = timezone.make_aware(datetime.combine(date_from, time.min), tz)
    end = timezone.make_aware(datetime.combine(date_to + timedelta(days=1), time.min), tz)
    return start, end


# --- Where: region and scope -------------------------------------------------------------------


@dataclass(frozen=True)
class _Target:
    """The part of the tree the report covers: ``bases`` are the roots of the region
    groups (paths); ``named`` whether the caller sees the whole requested region."""

    empty: bool
    bases: tuple[str, ...] = ()
    named: bool = False


def _region(code: str) -> Region | None:
    if not code:
        return None
    return (
        Region.objects.filter(code=code).only("code", "name_zh", "name_en", "level", "path").first()
    )


def _target(scope: Scope, query: KpiQuery, region: Region | None) -> _Target:
    if scope.is_empty or (query.region_code and region is None):
        return _Target(empty=True)
    if region is None:
        return _Target(empty=False, bases=scope.paths)  # global scope: () = the roots
    if scope.covers(region.path):
        return _Target(empty=False, bases=(region.path,), named=True)
    inside = tuple(path for path in scope.paths if path.startswith(region.path))
    return _Target(empty=not inside, bases=inside)


# --- How: grouping keys and labels -------------------------------------------------------------

NO_KEY = Value("", output_field=CharField())


@dataclass
class _Grouping:
    """The key expression of each row query (``incident_key`` None: incidents are not
    grouped), how a raw key becomes the API key, and the ordered (key, label) list."""

    grouped: bool = False
    incident_key: Any = NO_KEY
    task_key: Any = NO_KEY
    clock_key: Any = NO_KEY
    normalise: Callable[[Any], Any] = field(default=lambda key: key)
    labels: Callable[[set[Any]], list[tuple[str, str]]] = field(default=lambda keys: [])


def _grouping(query: KpiQuery, target: _Target, tz: tzinfo) -> _Grouping:
    group_by = query.group_by
    if not group_by:
        return _Grouping()
    if group_by == GroupBy.CATEGORY:
        return _Grouping(
            grouped=True,
            incident_key=F("category__code"),
            task_key=F("incident__category__code"),
            clock_key=F("category_code"),
            labels=_category_labels,
        )
    if group_by == GroupBy.TEAM:
        task_team = Subquery(
            DispatchTask.objects.filter(pk=OuterRef("subject_id")).values("team__code")[:1]
        )
        return _Grouping(
            grouped=True,
            incident_key=None,
            task_key=F("team__code"),
            clock_key=Case(
                When(subject_type=SUBJECT_TASK, then=task_team),
                default=None,
                output_field=CharField(),
            ),
            labels=_team_labels,
        )
    if group_by == GroupBy.REGION:
        return _region_grouping(target)
    if group_by in PERIODS:
        return _period_grouping(query, group_by, tz)
    raise ValueError(f"unknown group_by {group_by!r}")  # the form allows no other value


def _category_labels(keys: set[Any]) -> list[tuple[str, str]]:
    """Categories in taxonomy order (``sort_order``, code); an unknown code (a category
    deleted since) sorts last under its code."""
    rows = Category.objects.filter(code__in=keys).values_list(
        "code", "name_zh", "name_en", "sort_order"
    )
    names = {code: _localised(zh, en) for code, zh, en, _order in rows}
    order = {code: sort_order for code, _zh, _en, sort_order in rows}
    ordered = sorted(keys, key=lambda code: (code not in order, order.get(code, 0), code))
    return [(code, names.get(code, code)) for code in ordered]


def _team_labels(keys: set[Any]) -> list[tuple[str, str]]:
    names = dict(Team.objects.filter(code__in=keys).values_list("code", "name"))
    return [(code, names.get(code, code)) for code in sorted(keys)]


def _region_grouping(target: _Target) -> _Grouping:
    """The bases and their children (one read), each matching its subtree by path prefix; the
    bases themselves catch rows filed at their own level."""
    if target.bases:
        wanted = Q(path__in=target.bases) | Q(parent__path__in=target.bases)
    else:  # the whole tree: its root(s) and the new towns
        wanted = Q(depth__lte=1)
    fields = ("code", "name_zh", "name_en", "path", "depth", "parent_id", "is_active")
    nodes = list(Region.objects.filter(wanted).only(*fields).order_by("path"))
    base_paths = set(target.bases) or {node.path for node in nodes if node.depth == 0}
    bases = [node for node in nodes if node.path in base_paths]
    children = [node for node in nodes if node.path not in base_paths]

    def key(path_field: str) -> Case:
        whens = [
            When(Q(**{f"{path_field}__startswith": region.path}), then=Value(region.code))
            for region in [*children, *bases]  # children first: the longer prefixes
        ]
        return Case(*whens, default=None, output_field=CharField())

    def labels(with_data: set[Any]) -> list[tuple[str, str]]:
        listed: list[tuple[str, str]] = []
        for base in bases:
            if base.code in with_data:
                name = _localised(base.name_zh, base.name_en)
                listed.append((base.code, _("%(name)s (own level)") % {"name": name}))
            listed += [
                (child.code, _localised(child.name_zh, child.name_en))
                for child in children
                if child.parent_id == base.pk and (child.is_active or child.code in with_data)
            ]
        return listed

    return _Grouping(
        grouped=True,
        incident_key=key("region__path"),
        task_key=key("incident__region__path"),
        clock_key=key("region__path"),
        labels=labels,
    )


def _period_grouping(query: KpiQuery, kind: str, tz: tzinfo) -> _Grouping:
    def key(anchor: str) -> Trunc:
        return Trunc(anchor, kind, output_field=DateTimeField(), tzinfo=tz)

    def normalise(value: Any) -> str | None:
        # PostgreSQL's raw statement returns the local midnight as a naive timestamp,
        # the ORM path an aware one: both name the same Asia/Shanghai date.
        if value is None:
            return None
        if isinstance(value, datetime):
            local = timezone.localtime(value, tz) if timezone.is_aware(value) else value
            return local.date().isoformat()
        return str(value)

    def labels(with_data: set[Any]) -> list[tuple[str, str]]:
        return [
            (start.isoformat(), _period_label(kind, start))
            for start in period_starts(kind, query.date_from, query.date_to)
        ]

    return _Grouping(
        grouped=True,
        incident_key=key("created_at"),
        task_key=key("dispatched_at"),
        clock_key=key("started_at"),
        normalise=normalise,
        labels=labels,
    )


def period_starts(kind: str, date_from: date, date_to: date) -> list[date]:
    """The first day of every period (day, week from Monday, month) touching the window."""
    if kind == GroupBy.DAY:
        first = date_from
    elif kind == GroupBy.WEEK:
        first = date_from - timedelta(days=date_from.weekday())
    else:
        first = date_from.replace(day=1)
    starts = []
    current = first
    while current <= date_to:
        starts.append(current)
        if kind == GroupBy.DAY:
            current += timedelta(days=1)
        elif kind == GroupBy.WEEK:
            current += timedelta(days=7)
        else:
            current = (current.replace(day=28) + timedelta(days=4)).replace(day=1)
    return starts


def _period_label(kind: str, start: date) -> str:
    if kind == GroupBy.MONTH:
        return f"{start:%Y-%m}"
    if kind == GroupBy.WEEK:
        return _("Week of %(date)s") % {"date": start.isoformat()}
    return start.isoformat()


def _localised(name_zh: str, name_en: str) -> str:
    language = translation.get_language() or ""
    if language.startswith("zh") or not name_en:
        return name_zh
    return name_en


def _normalised(groups: dict[Any, Any], normalise: Callable[[Any], Any]) -> dict[Any, Any]:
    return {normalise(key): value for key, value in groups.items()}


# --- Shaping -----------------------------------------------------------------------------------


def _empty_report(
    query: KpiQuery, now: datetime, tz: tzinfo, region: Region | None
) -> KpiReportData:
    return {
        "region": _region_ref(region) if region is not None else None,
        "date_from": query.date_from,
        "date_to": query.date_to,
        "group_by": query.group_by,
        "include_drills": query.include_drills,
        "timezone": str(tz),
        "generated_at": now,
        "total": _group("", _("All"), None, None, {}, with_incidents=True),
        "groups": [],
    }


def _region_ref(region: Region) -> RegionRef:
    return {
        "code": region.code,
        "name_zh": region.name_zh,
        "name_en": region.name_en,
        "level": region.level,
    }


def _group(
    key: str,
    label: str,
    incidents: Bucket | None,
    tasks: Bucket | None,
    clocks: ClockCounts,
    *,
    with_incidents: bool,
) -> KpiGroup:
    incidents = incidents or empty_bucket(INCIDENT_FLAGS, INCIDENT_INTERVALS)
    tasks = tasks or empty_bucket(TASK_FLAGS, TASK_INTERVALS)
    intervals: dict[str, IntervalStats | None] = {}
    for name in INTERVAL_NAMES:
        if name in TASK_INTERVALS:
            intervals[name] = _stats(tasks.intervals[name])
        else:
            intervals[name] = _stats(incidents.intervals[name]) if with_incidents else None
    incident_counts: IncidentCounts | None = None
    if with_incidents:
        incident_counts = {
            "total": incidents.rows,
            "rejected": incidents.flags["rejected"],
            "merged": incidents.flags["merged"],
            "reopened": incidents.flags["reopened"],
        }
    return {
        "key": key,
        "label": label,
        "incidents": incident_counts,
        "tasks": {
            "total": tasks.rows,
            "declined": tasks.flags["declined"],
            "expired": tasks.flags["expired"],
            "cancelled": tasks.flags["cancelled"],
        },
        "intervals": intervals,
        "sla": compliance(clocks),
    }


def _stats(summary: IntervalSummary) -> IntervalStats:
    return {
        "count": summary.count,
        "mean_s": summary.mean,
        "median_s": summary.median,
        "p90_s": summary.p90,
    }


def compliance(counts: ClockCounts) -> list[SlaCompliance]:
    """Per kind (in ``SlaKind`` order, kinds without clocks left out): met, breached,
    pending and the rate met / (met + breached), ``None`` when nothing was decided."""
    rows: list[SlaCompliance] = []
    for kind in _kinds_in_order(counts):
        met, breached = counts[kind]["met"], counts[kind]["breached"]
        decided = met + breached
        rows.append(
            {
                "kind": kind,
                "met": met,
                "breached": breached,
                "pending": counts[kind]["pending"],
                "compliance_rate": round(met / decided, 4) if decided else None,
            }
        )
    return rows


def overall_compliance(rows: Iterable[SlaCompliance]) -> float | None:
    """The rate over every obligation kind: all met / all decided (``None``: nothing
    decided), the headline figure of a group."""
    met = breached = 0
    for row in rows:
        met += row["met"]
        breached += row["breached"]
    return round(met / (met + breached), 4) if met + breached else None


def _kinds_in_order(counts: Iterable[str]) -> list[str]:
    known = [kind for kind in SlaKind.values if kind in counts]
    return known + sorted(set(counts) - set(known))
