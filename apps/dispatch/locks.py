"""Row locks of dispatch, always taken in one order: incident, then task(s) by pk, then
command post (conventions R3).

The incident comes first because every task write also writes the incident (timeline,
``in_progress``, loop): two responders of two teams acting on one incident serialise on
the incident row instead of deadlocking on task-then-incident vs. incident-then-task.
Team rows are never locked here: ``team_status_refresh`` (teams work) takes its own
lock last, after ours.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Subquery

from apps.core.errors import ApplicationError
from apps.dispatch.errors import DispatchErrorCode
from apps.dispatch.models import CommandPost, DispatchTask
from apps.incidents.locks import incident_for_update
from apps.incidents.models import Incident

__all__ = [
    "command_post_for_update",
    "incident_and_task_for_update",
    "incident_for_update",
    "task_incident_id",
    "tasks_for_update",
]


def task_incident_id(task_id: int) -> int:
    """The incident of a task, read without a lock (a task never changes incident)."""
    incident_id = DispatchTask.objects.filter(pk=task_id).values_list("incident_id", flat=True)
    found = incident_id.first()
    if found is None:
        raise ApplicationError(DispatchErrorCode.TASK_NOT_FOUND, status=404)
    return found


def incident_and_task_for_update(task_id: int) -> tuple[Incident, DispatchTask]:
    """Lock the task's incident, then the task; both freshly read.

    The incident is found by a subquery on the task (a task never changes incident), so
    this is two round trips, not three; the hot path of every responder action.
    """
    of_task = DispatchTask.objects.filter(pk=task_id).values("incident_id")[:1]
    incident = Incident.objects.select_for_update(of=("self",)).filter(pk=Subquery(of_task)).first()
    if incident is None:
        raise ApplicationError(DispatchErrorCode.TASK_NOT_FOUND, status=404)
    task = DispatchTask.objects.select_for_update(of=("self",)).get(pk=task_id)
    task.incident = incident  # the locked instance, so callers never re-read it
    return incident, task


def tasks_for_update(task_ids: Iterable[int]) -> list[DispatchTask]:
    """Lock several tasks in pk order (call after locking their incident)."""
    return list(
        DispatchTask.objects.filter(pk__in=list(task_ids))
        .order_by("pk")
        .select_for_update(of=("self",))
    )


def command_post_for_update(incident_id: int) -> CommandPost | None:
    """The incident's command post row, locked (call after locking the incident)."""
    return (
        CommandPost.objects.filter(incident_id=incident_id).select_for_update(of=("self",)).first()
    )
