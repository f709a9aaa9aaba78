"""Position reads: the sender's team, track replay of an incident, the live map feed.

Who sees positions: holders of a staff role (operator, commander, department liaison,
admin) and superusers, inside the region subtrees of those roles. Responders' locations
are personal data: field roles do not get other people's tracks or markers here.

Replay is limited to the people the incident concerns: the members of teams that had a
task on it, while that task ran (see :func:`task_windows`). Membership is taken from the
chunks themselves (``TrackChunk.team`` is the team the responder was in when the point
was sent), so someone who changed team later is still shown under the team they were
in, and a new member does not bring their earlier day along.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypedDict

from django.contrib.auth import get_user_model
from django.utils import timezone

from apps.accounts.permissions import Capability, role_scope, roles_with
from apps.dispatch import tracks
from apps.dispatch.models import (
    DispatchTask,
    LastPosition,
    TaskStatus,
    Team,
    TeamMember,
    TrackChunk,
)
from apps.incidents.models import Incident
from apps.regions.models import Region

POSITION_READ_ROLES = roles_with(Capability.POSITIONS_READ)

# Tasks that never sent anyone: their team is not "on" the incident.
_NEVER_WENT = (TaskStatus.DECLINED, TaskStatus.EXPIRED)
# When a finished task stopped counting; live, completed-then-returned tasks run on.
_END_FIELD: dict[str, str] = {
    TaskStatus.CANCELLED: "cancelled_at",
    TaskStatus.COMPLETED: "completed_at",
    TaskStatus.VERIFIED: "verified_at",
}


def responder_team_id(*, user: Any) -> int | None:
    """The team a responder's positions are filed under: their active membership of an
    active team, on-duty memberships first, then the oldest (one query)."""
    return (
        TeamMember.objects.filter(user_id=user.pk, is_active=True, team__is_active=True)
        .order_by("-on_duty", "id")
        .values_list("team_id", flat=True)
        .first()
    )


def positions_can_read(user: Any) -> bool:
    """May ``user`` read tracks and the position map at all (staff roles only)?"""
    return not role_scope(user, POSITION_READ_ROLES).is_empty


def positions_can_read_incident(user: Any, incident: Incident) -> bool:
    """May ``user`` replay ``incident``'s tracks (a staff role covering its region)?"""
    return role_scope(user, POSITION_READ_ROLES).covers(incident.region.path)


# --- Replay -----------------------------------------------------------------------------------


class ReplayPoint(TypedDict):
    t: datetime
    lat: float
    lng: float
    accuracy: float | None


class ReplayResponder(TypedDict):
    id: int
    name: str
    points: list[ReplayPoint]


class ReplayWindow(TypedDict):
    since: datetime
    until: datetime


class ReplayTeam(TypedDict):
    id: int
    code: str
    name: str
    windows: list[ReplayWindow]
    responders: list[ReplayResponder]


class TrackReplay(TypedDict):
    incident: int
    since: datetime
    until: datetime
    teams: list[ReplayTeam]


@dataclass(frozen=True)
class _TeamOnIncident:
    team: Team
    windows: list[tuple[datetime, datetime]]


def _task_end(task: DispatchTask) -> datetime | None:
    end_field = _END_FIELD.get(task.status)
    return getattr(task, end_field) if end_field else None


def _union(intervals: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    merged: list[tuple[datetime, datetime]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def task_windows(
    *, incident: Incident, since: datetime, until: datetime, team_ids: list[int] | None = None
) -> dict[int, _TeamOnIncident]:
    """Per team, the parts of ``[since, until)`` during which it had a task on
    ``incident``: from ``dispatched_at`` to cancellation, completion or verification
    (open while live or returned for rework). Declined and expired tasks sent nobody
    and do not count. One query."""
    tasks = (
        DispatchTask.objects.filter(incident=incident, dispatched_at__lt=until)
        .exclude(status__in=_NEVER_WENT)
        .select_related("team")
        .order_by("dispatched_at", "id")
    )
    if team_ids is not None:
        tasks = tasks.filter(team_id__in=team_ids)
    intervals: dict[int, list[tuple[datetime, datetime]]] = defaultdict(list)
    teams: dict[int, Team] = {}
    for task in tasks:
        end = _task_end(task) or until
        start, stop = max(since, task.dispatched_at), min(until, end)
        if start < stop:
            intervals[task.team_id].append((start, stop))
            teams[task.team_id] = task.team
    return {
        team_id: _TeamOnIncident(team=teams[team_id], windows=_union(spans))
        for team_id, spans in intervals.items()
    }


def track_replay(
    *,
    incident: Incident,
    since: datetime,
    until: datetime,
    team_ids: list[int] | None = None,
    user_ids: list[int] | None = None,
) -> TrackReplay:
    """Positions of the responders of ``incident``'s teams in ``[since, until)``.

    Per team (in order of first dispatch) its task windows and its responders, each with
    their points decoded and in time order; only points inside a window of that team
    count. Three queries whatever the number of points or chunks: tasks with teams,
    chunks, user names. The caller checks access and bounds the window.
    """
    on_incident = task_windows(incident=incident, since=since, until=until, team_ids=team_ids)
    result: TrackReplay = {"incident": incident.pk, "since": since, "until": until, "teams": []}
    if not on_incident:
        return result
    earliest = min(window[0] for team in on_incident.values() for window in team.windows)
    latest = max(window[1] for team in on_incident.values() for window in team.windows)
    bucket = timedelta(milliseconds=tracks.bucket_length_ms())
    chunks = TrackChunk.objects.filter(
        team_id__in=list(on_incident),
        # The index range (team, bucket_start); first/last_at trim the edges exactly.
        bucket_start__gt=earliest - bucket,
        bucket_start__lt=latest,
        last_at__gte=earliest,
    ).order_by("team_id", "user_id", "bucket_start")
    if user_ids is not None:
        chunks = chunks.filter(user_id__in=user_ids)

    points: dict[tuple[int, int], list[ReplayPoint]] = defaultdict(list)
    for team_id, user_id, bucket_start, stored in chunks.values_list(
        "team_id", "user_id", "bucket_start", "points"
    ):
        bucket_end = bucket_start + bucket
        for start, stop in on_incident[team_id].windows:
            if stop <= bucket_start or start >= bucket_end:
                continue
            points[(team_id, user_id)].extend(
                {"t": p.at, "lat": p.lat, "lng": p.lng, "accuracy": p.accuracy_m}
                for p in tracks.points_in_window(bucket_start, stored, start, stop)
            )

    user_ids_seen = {user_id for _team, user_id in points}
    names = {
        pk: display_name or username
        for pk, display_name, username in get_user_model()
        .objects.filter(pk__in=user_ids_seen)
        .values_list("pk", "display_name", "username")
    }
    for team_id, team_on in on_incident.items():
        responders: list[ReplayResponder] = [
            {"id": user_id, "name": names.get(user_id, ""), "points": pts}
            for (t_id, user_id), pts in sorted(points.items())
            if t_id == team_id and pts
        ]
        result["teams"].append(
            {
                "id": team_id,
                "code": team_on.team.code,
                "name": team_on.team.name,
                "windows": [{"since": s, "until": u} for s, u in team_on.windows],
                "responders": responders,
            }
        )
    return result


# --- The live map -----------------------------------------------------------------------------


class MapTeamRef(TypedDict):
    id: int
    code: str
    name: str


class MapResponder(TypedDict):
    user: int
    name: str
    team: MapTeamRef | None
    lat: float
    lng: float
    accuracy: float | None
    recorded_at: datetime
    received_at: datetime
    age_s: int


class MapTeam(TypedDict):
    id: int
    code: str
    name: str
    status: str
    lat: float | None
    lng: float | None
    recorded_at: datetime
    age_s: int


class MapFeed(TypedDict):
    at: datetime
    responders: list[MapResponder]
    teams: list[MapTeam]


def region_path(code: str) -> str | None:
    """The path of an active region by code (``None`` if unknown)."""
    return Region.objects.filter(code=code, is_active=True).values_list("path", flat=True).first()


def last_positions(
    *, user: Any, region: str | None = None, max_age: timedelta | None = None
) -> MapFeed:
    """Last known positions of responders and teams in ``user``'s staff scope.

    A responder belongs where their team's home region is (the team they sent the fix
    under). ``region`` (a code) narrows to that subtree; an unknown code shows nothing.
    ``max_age`` drops stale fixes. Freshest first. Three queries (scope, responders,
    teams) plus one for ``region``; no pagination — one marker per person and team.
    """
    now = timezone.now()
    scope = role_scope(user, POSITION_READ_ROLES)
    feed: MapFeed = {"at": now, "responders": [], "teams": []}
    if scope.is_empty:
        return feed
    responders = LastPosition.objects.filter(scope.q("team__home_region__path")).select_related(
        "user", "team"
    )
    teams = Team.objects.filter(
        scope.q("home_region__path"), is_active=True, last_position_at__isnull=False
    )
    if region is not None:
        path = region_path(region)
        if path is None:
            return feed
        responders = responders.filter(team__home_region__path__startswith=path)
        teams = teams.filter(home_region__path__startswith=path)
    if max_age is not None:
        responders = responders.filter(recorded_at__gte=now - max_age)
        teams = teams.filter(last_position_at__gte=now - max_age)

    for position in responders.order_by("-recorded_at", "user_id"):
        team = position.team
        feed["responders"].append(
            {
                "user": position.user_id,
                "name": str(position.user),
                "team": ({"id": team.pk, "code": team.code, "name": team.name} if team else None),
                "lat": position.lat,
                "lng": position.lng,
                "accuracy": position.accuracy_m,
                "recorded_at": position.recorded_at,
                "received_at": position.received_at,
                "age_s": max(0, int((now - position.recorded_at).total_seconds())),
            }
        )
    for team in teams.order_by("-last_position_at", "id"):
        at = team.last_position_at
        if at is None:  # filtered out above; this narrows the type
            continue
        feed["teams"].append(
            {
                "id": team.pk,
                "code": team.code,
                "name": team.name,
                "status": team.status,
                "lat": team.last_lat,
                "lng": team.last_lng,
                "recorded_at": at,
                "age_s": max(0, int((now - at).total_seconds())),
            }
        )
    return feed
