"""Every endpoint the project serves, from the URL resolver, and how the matrix calls it.

:func:`served_endpoints` walks ``ROOT_URLCONF`` and lists each (method, route) of the
API (``/api/v1/``) and Open311 (``/open311/v2/``), the methods read off the view (what
it implements, or a viewset's action map). The matrix (``docs/authz-matrix.md``) must
have rows for exactly these, and :data:`RECIPES` must know how to call each: a new
endpoint fails the test until it has both.

A recipe names the kind of object in its path (and so the objects the matrix rows
use), the JSON body, the query string, and a ``prepare`` step that puts the object in
the state the action needs (a task must be ``dispatched`` to be accepted...), run
inside the cell's rolled-back savepoint.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

from apps.dispatch.models import CommandPost, DispatchTask, TaskStatus, Team
from apps.incidents.models import Incident, IncidentStatus, Report
from tests.authz.world import World

METHODS = ("get", "post", "put", "patch", "delete")
PREFIXES = ("/api/v1/", "/open311/v2/")
# Routes outside the API that the matrix does not cover, each for a reason.
NOT_IN_MATRIX = {
    "/admin/": "Django admin: session login, RegionScopedAdminMixin (tests/*/test_admin*)",
    "/i18n/setlang/": "language switch, no data",
    "/api/schema/": "the OpenAPI document, public",
    "/api/docs/": "Swagger UI, public",
    "/api/redoc/": "ReDoc, public",
    "/healthz": "liveness probe",
    "/readyz": "readiness probe",
}

# --- Objects -----------------------------------------------------------------------------

OBJECTS: dict[str, tuple[str, ...]] = {
    "incident": ("in", "out", "cross"),
    "report": ("own", "other", "out"),
    "task": ("in", "out", "cross"),
    "attachment": ("own", "other", "out"),
    "token": ("own", "unknown"),
    "team": ("in", "out"),
    "region": ("in", "out"),
    "device": ("own", "other"),
    "notification": ("own", "other"),
    "open311_request": ("own", "out"),
    "warning": ("in", "out"),
    "cap_message": ("in", "out"),  # a CAP alert for 三桥 / for 钓台 (the import's body)
}
NO_OBJECT = "-"


def path_kwargs(world: World, kind: str | None, name: str) -> dict[str, Any]:
    """The route's path parameters for object ``name`` of ``kind``."""
    kwargs: dict[str, Any] = {"fmt": "json", "service_code": world.category.code}
    if kind == "incident":
        kwargs["incident_id"] = world.incidents[name].pk
    elif kind == "report":
        kwargs["report_id"] = world.reports[name].pk
    elif kind == "task":
        kwargs["task_id"] = world.tasks[name].pk
    elif kind == "attachment":
        kwargs["attachment_id"] = world.attachments[name].pk
    elif kind == "token":
        kwargs["token"] = world.tokens[name]
    elif kind == "team":
        kwargs["code"] = world.teams[name].code
    elif kind == "region":
        kwargs["code"] = world.regions[name].code
    elif kind == "device":
        kwargs["device_id"] = world.devices[name].pk
    elif kind == "notification":
        kwargs["notification_id"] = world.notifications[name].pk
    elif kind == "warning":
        kwargs["warning_id"] = world.warnings[name].pk
    elif kind == "open311_request":
        kwargs["service_request_id"] = world.reports[name].pk
    return kwargs


# --- State for the actions ---------------------------------------------------------------


def _incident_status(status: str) -> Callable[[World, str], None]:
    def prepare(world: World, name: str) -> None:
        incident = world.incidents[name]
        stamps: dict[str, Any] = {}
        now = timezone.now()
        if status in (IncidentStatus.RESOLVED, IncidentStatus.CLOSED):
            stamps = {"resolved_at": now}
        if status == IncidentStatus.CLOSED:
            stamps["closed_at"] = now
        Incident.objects.filter(pk=incident.pk).update(status=status, **stamps)
        if status != IncidentStatus.IN_PROGRESS:
            # nothing under way any more (resolving waits for the tasks)
            DispatchTask.objects.filter(incident=incident).update(
                status=TaskStatus.VERIFIED, verified_at=now
            )

    return prepare


def _task_status(status: str) -> Callable[[World, str], None]:
    def prepare(world: World, name: str) -> None:
        DispatchTask.objects.filter(pk=world.tasks[name].pk).update(status=status)

    return prepare


def _closed_report(world: World, name: str) -> None:
    """The report accepted into an incident closed a moment ago (rate, ask to reopen)."""
    report = world.reports[name]
    incident = world.incidents["out" if name == "out" else "in"]
    now = timezone.now()
    Incident.objects.filter(pk=incident.pk).update(
        status=IncidentStatus.CLOSED, resolved_at=now - timedelta(minutes=1), closed_at=now
    )
    Report.objects.filter(pk=report.pk).update(
        status=Report.Status.ACCEPTED, incident=incident, triaged_at=now
    )


def _token_report_closed(world: World, name: str) -> None:
    if name == "own":
        _closed_report(world, "own")


def _open_post(world: World, name: str) -> None:
    """An open command post on the incident, commanded by the new-area commander."""
    incident = world.incidents[name]
    commander = world.users["commander"]
    CommandPost.objects.update_or_create(
        incident=incident,
        defaults={
            "commander": commander,
            "lat": incident.lat,
            "lng": incident.lng,
            "established_at": timezone.now(),
            "closed_at": None,
        },
    )


def _team_b_available(world: World, name: str) -> None:
    Team.objects.filter(pk=world.spare_team.pk).update(status="available")


# --- Recipes -----------------------------------------------------------------------------

Body = dict[str, Any] | Callable[[World, str], dict[str, Any]] | None


@dataclass(frozen=True)
class Recipe:
    kind: str | None = None  # object kind of the path (None: no object)
    body: Body = None
    query: str = ""
    prepare: Callable[[World, str], None] | None = None
    multipart: bool = False
    headers: dict[str, str] = field(default_factory=dict)
    # A raw body sent as ``content_type`` instead of JSON (e.g. CAP XML).
    raw: Callable[[World, str], bytes] | None = None
    content_type: str = "application/json"

    def objects(self) -> tuple[str, ...]:
        return OBJECTS[self.kind] if self.kind else (NO_OBJECT,)

    def body_for(self, world: World, name: str) -> dict[str, Any] | None:
        return self.body(world, name) if callable(self.body) else self.body


def _post_member(world: World, name: str) -> dict[str, Any]:
    """Someone eligible for the incident's post (a liaison of 沣东, an operator of 沣西)."""
    member = world.users["operator_out" if name == "out" else "liaison"]
    return {"add": [member.pk]}  # type: ignore[union-attr]


def _cap_message(world: World, name: str) -> bytes:
    """A CAP 1.2 alert whose geocode XIXIAN-REGION names 三桥 (``in``) or 钓台 (``out``)."""
    region = world.regions[name]
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>AUTHZ-{name}</identifier>
  <sender>authz@upstream.example</sender>
  <sent>2025-07-15T14:30:00+08:00</sent>
  <status>Actual</status>
  <msgType>Alert</msgType>
  <scope>Public</scope>
  <info>
    <category>Met</category>
    <event>暴雨蓝色预警</event>
    <urgency>Future</urgency>
    <severity>Minor</severity>
    <certainty>Likely</certainty>
    <area>
      <areaDesc>{region.name_zh}</areaDesc>
      <geocode><valueName>XIXIAN-REGION</valueName><value>{region.code}</value></geocode>
    </area>
  </info>
</alert>
""".encode()


SANQIAO = {"lat": 34.276, "lng": 108.85}
R = Recipe

RECIPES: dict[str, Recipe] = {
    # --- accounts
    "POST /api/v1/auth/token/": R(body={"username": "authz-op-fd", "password": "wrong"}),
    "POST /api/v1/auth/token/refresh/": R(body={"refresh": "not-a-token"}),
    "POST /api/v1/auth/logout/": R(body={"refresh": "not-a-token"}),
    "POST /api/v1/auth/otp/request/": R(body={"phone": "+8613800009999"}),
    "POST /api/v1/auth/otp/verify/": R(body={"phone": "+8613800009999", "code": "000000"}),
    "GET /api/v1/me/": R(),
    "GET /api/v1/devices/": R(),
    "POST /api/v1/devices/": R(body={"token": "fcm-authz-" + "x" * 140, "platform": "android"}),
    "DELETE /api/v1/devices/{device_id}/": R(kind="device"),
    # --- regions
    "GET /api/v1/regions/tree/": R(),
    "GET /api/v1/regions/lookup/": R(query="lat=34.276&lng=108.85"),
    "GET /api/v1/regions/{code}/communities/": R(kind="region"),
    "GET /api/v1/regions/": R(),
    "GET /api/v1/regions/{code}/": R(kind="region"),
    # --- incidents
    "GET /api/v1/incidents/": R(),
    "POST /api/v1/incidents/": R(body={"category": "A01", "title": "热线转来", **SANQIAO}),
    "GET /api/v1/incidents/changes/": R(),
    "GET /api/v1/incidents/{incident_id}/": R(kind="incident"),
    "POST /api/v1/incidents/{incident_id}/accept/": R(
        kind="incident", body={}, prepare=_incident_status(IncidentStatus.REPORTED)
    ),
    "POST /api/v1/incidents/{incident_id}/reject/": R(
        kind="incident", body={"reason": "误报"}, prepare=_incident_status(IncidentStatus.REPORTED)
    ),
    "POST /api/v1/incidents/{incident_id}/start/": R(
        kind="incident", body={}, prepare=_incident_status(IncidentStatus.ACCEPTED)
    ),
    "POST /api/v1/incidents/{incident_id}/resolve/": R(
        kind="incident",
        body={"resolution": "已处置"},
        prepare=lambda world, name: DispatchTask.objects.filter(
            incident=world.incidents[name]
        ).update(status=TaskStatus.VERIFIED),
    ),
    "POST /api/v1/incidents/{incident_id}/close/": R(
        kind="incident", body={}, prepare=_incident_status(IncidentStatus.RESOLVED)
    ),
    "POST /api/v1/incidents/{incident_id}/reopen/": R(
        kind="incident",
        body={"reason": "复查未通过"},
        prepare=_incident_status(IncidentStatus.CLOSED),
    ),
    "POST /api/v1/incidents/{incident_id}/merge/": R(
        kind="incident", body=lambda world, name: {"into": world.spare_incident.pk}
    ),
    "POST /api/v1/incidents/{incident_id}/classify/": R(kind="incident", body={"severity": "III"}),
    "POST /api/v1/incidents/{incident_id}/casualties/": R(kind="incident", body={"injured": 1}),
    "POST /api/v1/incidents/{incident_id}/notes/": R(kind="incident", body={"text": "已联系"}),
    # --- citizen reports
    "POST /api/v1/reports/": R(body={"category": "A01", "text": "积水", **SANQIAO}),
    "POST /api/v1/reports/sos/": R(body=dict(SANQIAO)),
    "GET /api/v1/reports/mine/": R(),
    "GET /api/v1/reports/track/{token}/": R(kind="token"),
    "POST /api/v1/reports/track/{token}/rating/": R(
        kind="token", body={"rating": 5}, prepare=_token_report_closed
    ),
    "POST /api/v1/reports/track/{token}/reopen/": R(
        kind="token", body={"reason": "又积水了"}, prepare=_token_report_closed
    ),
    "GET /api/v1/reports/{report_id}/": R(kind="report"),
    "POST /api/v1/reports/{report_id}/rating/": R(
        kind="report", body={"rating": 4}, prepare=_closed_report
    ),
    "POST /api/v1/reports/{report_id}/reopen/": R(
        kind="report", body={"reason": "又积水了"}, prepare=_closed_report
    ),
    "GET /api/v1/reports/triage/": R(),
    "POST /api/v1/reports/{report_id}/accept/": R(kind="report", body={}),
    "POST /api/v1/reports/{report_id}/reject/": R(kind="report", body={"reason": "重复"}),
    "POST /api/v1/reports/{report_id}/duplicate/": R(
        kind="report", body=lambda world, name: {"incident_id": world.spare_incident.pk}
    ),
    "GET /api/v1/reports/{report_id}/duplicates/": R(kind="report"),
    "GET /api/v1/attachments/{attachment_id}/": R(kind="attachment"),
    "GET /api/v1/attachments/{attachment_id}/thumbnail/": R(kind="attachment"),
    # --- teams, dispatch
    "GET /api/v1/teams/": R(),
    "GET /api/v1/teams/{code}/": R(kind="team"),
    "GET /api/v1/incidents/{incident_id}/recommendations/": R(kind="incident"),
    "POST /api/v1/me/duty/": R(body={"on_duty": True}),
    "GET /api/v1/me/team/": R(),
    "POST /api/v1/incidents/{incident_id}/dispatch/": R(
        kind="incident",
        body=lambda world, name: {"team_ids": [world.spare_team.pk]},
        prepare=_team_b_available,
    ),
    "GET /api/v1/incidents/{incident_id}/tasks/": R(kind="incident"),
    "POST /api/v1/tasks/{task_id}/cancel/": R(kind="task", body={"reason": "改派"}),
    "POST /api/v1/tasks/{task_id}/reassign/": R(
        kind="task",
        body=lambda world, name: {"to_team_id": world.spare_team.pk, "reason": "就近"},
        prepare=_team_b_available,
    ),
    "POST /api/v1/tasks/{task_id}/instructions/": R(kind="task", body={"text": "注意燃气"}),
    "POST /api/v1/tasks/{task_id}/verify/": R(
        kind="task", body={}, prepare=_task_status(TaskStatus.COMPLETED)
    ),
    "POST /api/v1/tasks/{task_id}/return/": R(
        kind="task", body={"reason": "未处置完"}, prepare=_task_status(TaskStatus.COMPLETED)
    ),
    "GET /api/v1/me/tasks/": R(),
    "GET /api/v1/me/tasks/current/": R(),
    "GET /api/v1/tasks/{task_id}/": R(kind="task"),
    "POST /api/v1/tasks/{task_id}/accept/": R(
        kind="task", body={}, prepare=_task_status(TaskStatus.DISPATCHED)
    ),
    "POST /api/v1/tasks/{task_id}/decline/": R(
        kind="task", body={"reason": "车辆故障"}, prepare=_task_status(TaskStatus.DISPATCHED)
    ),
    "POST /api/v1/tasks/{task_id}/en-route/": R(kind="task", body={}),
    "POST /api/v1/tasks/{task_id}/on-scene/": R(
        kind="task", body={}, prepare=_task_status(TaskStatus.EN_ROUTE)
    ),
    "POST /api/v1/tasks/{task_id}/complete/": R(
        kind="task", body={"result": "已处置"}, prepare=_task_status(TaskStatus.ON_SCENE)
    ),
    "POST /api/v1/tasks/{task_id}/ack/": R(
        kind="task", body={}, prepare=_task_status(TaskStatus.DISPATCHED)
    ),
    "POST /api/v1/responder/tasks/{task_id}/delivered/": R(
        kind="task", body={}, prepare=_task_status(TaskStatus.DISPATCHED)
    ),
    "GET /api/v1/incidents/{incident_id}/room/": R(kind="incident"),
    "POST /api/v1/incidents/{incident_id}/room/": R(kind="incident", body={"text": "收到"}),
    "GET /api/v1/incidents/{incident_id}/command-post/": R(kind="incident", prepare=_open_post),
    "POST /api/v1/incidents/{incident_id}/command-post/": R(
        kind="incident",
        body=lambda world, name: {
            "commander_id": world.users["commander"].pk,  # type: ignore[union-attr]
            "lat": 34.277,
            "lng": 108.851,
        },
    ),
    "POST /api/v1/incidents/{incident_id}/command-post/close/": R(
        kind="incident", body={}, prepare=_open_post
    ),
    "POST /api/v1/incidents/{incident_id}/command-post/members/": R(
        kind="incident", body=_post_member, prepare=_open_post
    ),
    # --- positions
    "POST /api/v1/me/positions/": R(
        body=lambda world, name: {
            "points": [{"t": timezone.now().isoformat(), "lat": 34.276, "lng": 108.85}]
        }
    ),
    "GET /api/v1/incidents/{incident_id}/tracks/": R(kind="incident"),
    "GET /api/v1/positions/latest/": R(),
    # --- notifications, KPIs
    "POST /api/v1/notifications/{notification_id}/ack/": R(kind="notification", body={}),
    "GET /api/v1/me/notification-preferences/": R(),
    "PUT /api/v1/me/notification-preferences/": R(body={"mute_off_duty": False}),
    "GET /api/v1/analytics/kpis/": R(),
    # --- early warnings
    "GET /api/v1/warnings/active/": R(query="region=fd-sanqiao"),
    "GET /api/v1/warnings/history/": R(),
    "GET /api/v1/warnings/topics/": R(query="home_region=fd-sanqiao&lat=34.276&lng=108.85"),
    "GET /api/v1/me/warning-acks/": R(),
    "POST /api/v1/warnings/{warning_id}/ack/": R(kind="warning", body={}),
    "GET /api/v1/warnings/": R(),
    "GET /api/v1/warnings/{warning_id}/": R(kind="warning"),
    "GET /api/v1/warnings/{warning_id}/cap/": R(kind="warning"),
    "GET /api/v1/warnings/feed/": R(),
    "POST /api/v1/warnings/import/": R(
        kind="cap_message", raw=_cap_message, content_type="application/cap+xml"
    ),
    # --- Open311 GeoReport v2 (public by design: redacted, no reporter)
    "GET /open311/v2/discovery.{fmt}": R(),
    "GET /open311/v2/services.{fmt}": R(),
    "GET /open311/v2/services/{service_code}.{fmt}": R(),
    "GET /open311/v2/requests.{fmt}": R(),
    "POST /open311/v2/requests.{fmt}": R(
        body={"service_code": "A01", "lat": "34.276", "long": "108.85", "description": "积水"},
        multipart=True,
    ),
    "GET /open311/v2/requests/{service_request_id}.{fmt}": R(kind="open311_request"),
    "GET /open311/v2/tokens/{token}.{fmt}": R(kind="token"),
}


# --- The resolver ------------------------------------------------------------------------

_CONVERTER = re.compile(r"<(?:\w+:)?(\w+)>")
_NAMED_GROUP = re.compile(r"\(\?P<(\w+)>[^)]*\)")


def _template(pattern: str) -> str:
    text = _NAMED_GROUP.sub(r"{\1}", pattern)
    text = _CONVERTER.sub(r"{\1}", text)
    return text.replace("^", "").replace("$", "").replace("\\.", ".")


def _walk(patterns: list[Any], prefix: str = "/") -> Iterator[tuple[str, Any]]:
    for entry in patterns:
        if isinstance(entry, URLResolver):
            yield from _walk(entry.url_patterns, prefix + _template(str(entry.pattern)))
        elif isinstance(entry, URLPattern):
            yield prefix + _template(str(entry.pattern)), entry.callback


def _methods(callback: Any) -> list[str]:
    actions = getattr(callback, "actions", None)
    if actions:  # a viewset route: its action map
        return sorted(method for method in actions if method in METHODS)
    view = getattr(callback, "view_class", None) or getattr(callback, "cls", None)
    if view is None:
        return ["get"]  # a function view
    return sorted(method for method in METHODS if hasattr(view, method))


def served_routes() -> list[str]:
    """Every route the URLconf serves (templates, leading slash)."""
    return [route for route, _callback in _walk(get_resolver().url_patterns)]


def served_endpoints() -> list[str]:
    """``"METHOD /route"`` for every API and Open311 endpoint, sorted."""
    found = set()
    for route, callback in _walk(get_resolver().url_patterns):
        if route.startswith(PREFIXES):
            found.update(f"{method.upper()} {route}" for method in _methods(callback))
    return sorted(found)
