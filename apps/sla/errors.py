"""Error codes of the SLA engine (API: add, never rename)."""

from __future__ import annotations

from enum import StrEnum


class SlaErrorCode(StrEnum):
    CLOCK_NOT_FOUND = "sla_clock_not_found"
    CLOCK_NOT_RUNNING = "sla_clock_not_running"  # pause of a paused/stopped clock
    CLOCK_NOT_PAUSED = "sla_clock_not_paused"  # resume of a running/stopped clock
    DEADLINE_REQUIRED = "sla_deadline_required"  # the policy takes the subject's deadline
    SUBJECT_UNKNOWN = "sla_subject_unknown"  # no handler registered for the subject type
