"""What dispatch puts on the realtime streams (``apps.realtime``), and who may follow an
incident's stream.

Called by the services inside their transaction, after the change (``docs/realtime.md``):

==================  =================================================  ======================
kind                streams                                            payload
==================  =================================================  ======================
``task.<kind>``     ``incident.<id>``, the region streams of its       :class:`TaskEventPayload`
                    street and ancestors, ``user.<id>`` of every
                    active member of the task's team
``room.message``    ``incident.<id>``                                  :class:`RoomMessagePayload`
==================  =================================================  ======================

``<kind>`` is the ``TaskEvent`` kind: dispatched, accepted, declined, expired, en_route,
on_scene, completed, verified, returned, cancelled, reassigned, instructions, delivered.
The responder's phone subscribes to its own ``user.<id>`` stream: ``task.dispatched``
there is "the phone rings"; a reconnect with the last number catches up on anything
missed while the phone was off the network. Command-post changes are incident timeline
rows and travel as ``incident.command_post_*`` (``apps.incidents.realtime``).

GPS positions are not events: high-volume and worthless once superseded, they would
flood the table and every replay. The live map reads ``positions/latest/``.
"""

from __future__ import annotations

from typing import Any, TypedDict

from apps.dispatch import policies
from apps.dispatch.models import DispatchTask, RoomMessage, TeamMember
from apps.incidents.models import Incident, IncidentEvent
from apps.incidents.realtime import (
    IncidentSummary,
    TimelineEntry,
    incident_streams,
    incident_summary,
    timeline_entry,
)
from apps.realtime import events, streams
from apps.realtime.frames import iso


class TaskSummary(TypedDict):
    """The task after the change."""

    id: int
    incident_id: int
    team_id: int
    team: str  # team name
    status: str
    instructions: str
    cross_department: bool
    dispatched_at: str  # ISO 8601, Asia/Shanghai
    delivered_at: str | None


class TaskEventPayload(TypedDict):
    """``task.<kind>``: the task, its incident and the incident timeline row of the
    change (``None`` for ``delivered``, which writes no timeline row)."""

    task: TaskSummary
    incident: IncidentSummary
    entry: TimelineEntry | None


class RoomMessagePayload(TypedDict):
    """``room.message``: one message of the incident room (会商)."""

    id: int
    incident_id: int
    author_id: int | None
    author: str  # display name
    text: str
    attachment_id: int | None


def task_summary(task: DispatchTask) -> TaskSummary:
    return {
        "id": task.pk,
        "incident_id": task.incident_id,
        "team_id": task.team_id,
        "team": task.team.name,
        "status": str(task.status),
        "instructions": task.instructions,
        "cross_department": bool(task.cross_department),
        "dispatched_at": iso(task.dispatched_at),
        "delivered_at": iso(task.delivered_at) if task.delivered_at else None,
    }


def task_changed(
    task: DispatchTask, incident: Incident, kind: str, entry: IncidentEvent | None
) -> None:
    """``task.<kind>`` on the incident's streams and the task team's members' streams."""
    members = TeamMember.objects.filter(team_id=task.team_id, is_active=True).values_list(
        "user_id", flat=True
    )
    payload: TaskEventPayload = {
        "task": task_summary(task),
        "incident": incident_summary(incident),
        "entry": timeline_entry(entry) if entry is not None else None,
    }
    events.emit(
        [*incident_streams(incident), *(streams.user(user_id) for user_id in members)],
        f"task.{kind}",
        payload,
    )


def room_message_posted(message: RoomMessage) -> None:
    author = message.author
    payload: RoomMessagePayload = {
        "id": message.pk,
        "incident_id": message.incident_id,
        "author_id": message.author_id,
        "author": str(author) if author is not None else "",
        "text": message.text,
        "attachment_id": message.attachment_id,
    }
    events.emit([streams.incident(message.incident_id)], "room.message", payload)


def incident_stream_key(user: Any, key: str | None, token: str | None) -> str | None:
    """May ``user`` follow ``incident.<key>``? (``REALTIME_STREAM_AUTHORIZERS``.)

    Yes if they may read the incident by role and region (``incident.read``), they are
    an active member of a team with a live task on it, or they are the commander or a
    member of its open command post, still eligible for it (``apps.dispatch.policies``).
    Unknown incidents look forbidden. No payload on the stream carries the reporter's
    contact (``apps.incidents.realtime``).
    """
    if user is None or key is None or token is not None:
        return None
    incident = Incident.objects.select_related("region").filter(pk=int(key)).first()
    if incident is None:
        return None
    if (
        policies.can_read_incident(user, incident)
        or policies.on_live_team(user, incident.pk)
        or policies.on_command_post(user, incident)
    ):
        return key
    return None
