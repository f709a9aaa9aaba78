"""Error codes of dispatch (API: add, never rename)."""

from __future__ import annotations

from enum import StrEnum


class DispatchErrorCode(StrEnum):
    TEAM_NOT_FOUND = "team_not_found"
    TEAM_NOT_DISPATCHABLE = "team_not_dispatchable"  # off duty, out of service, inactive
    TEAM_ALREADY_ON_INCIDENT = "team_already_on_incident"
    TASK_NOT_FOUND = "task_not_found"
    ILLEGAL_TASK_TRANSITION = "illegal_task_transition"  # extra: {from, action}
    NOT_TEAM_MEMBER = "not_team_member"
    INCIDENT_NOT_DISPATCHABLE = "incident_not_dispatchable"
    COMMAND_POST_IN_CHARGE = "command_post_in_charge"
    COMMAND_POST_EXISTS = "command_post_exists"
    PINGS_INVALID = "pings_invalid"
    # Tasks work (services/tasks.py, room.py, command_post.py)
    INCIDENT_HAS_OPEN_TASKS = "incident_has_open_tasks"  # resolve refused; extra: {task_ids}
    COMMAND_POST_NOT_FOUND = "command_post_not_found"  # no open post on the incident
    NOT_ON_INCIDENT = "not_on_incident"  # incident room: not a participant
