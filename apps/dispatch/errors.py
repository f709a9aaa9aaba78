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
