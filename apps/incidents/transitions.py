"""The one table of incident transitions (docs/architecture.md section 3).

Every incident service looks its action up here after locking the row; nothing else
decides which status may follow which. Actions without a target status (classify,
casualty revision, note) are listed too, so "what may I do now?" has one answer for
services, API (``allowed_actions`` in the detail) and admin alike.

::

    reported ──accept──▶ accepted ──start──▶ in_progress ──resolve──▶ resolved ──close──▶ closed
       │  ╲                 │                    │   ▲                    │                  │
     reject merge         merge                merge └──── reopen ◀───────┴──────────────────┘
       ▼     ╲              ▼                    ▼      (verification failed, → in_progress)
    rejected  ╲───────▶ merged ◀─────────────────┘
"""

from __future__ import annotations

from enum import StrEnum

from django.utils.translation import gettext_lazy as _

from apps.core import state_machine
from apps.core.state_machine import Transition
from apps.incidents.errors import IncidentErrorCode
from apps.incidents.models import IncidentStatus

S = IncidentStatus


class IncidentAction(StrEnum):
    ACCEPT = "accept"
    REJECT = "reject"
    START = "start"
    RESOLVE = "resolve"
    CLOSE = "close"
    REOPEN = "reopen"
    MERGE = "merge"
    CLASSIFY = "classify"
    REVISE_CASUALTIES = "casualties"
    NOTE = "note"


ALL_STATUSES = frozenset(S.values)
OPEN = frozenset({S.REPORTED, S.ACCEPTED, S.IN_PROGRESS, S.RESOLVED})

TRANSITIONS: dict[IncidentAction, Transition] = {
    IncidentAction.ACCEPT: Transition(frozenset({S.REPORTED}), S.ACCEPTED),
    # 不予受理 is a triage decision: once accepted, an incident ends by being resolved.
    IncidentAction.REJECT: Transition(frozenset({S.REPORTED}), S.REJECTED),
    IncidentAction.START: Transition(frozenset({S.ACCEPTED}), S.IN_PROGRESS),
    IncidentAction.RESOLVE: Transition(frozenset({S.IN_PROGRESS}), S.RESOLVED),
    IncidentAction.CLOSE: Transition(frozenset({S.RESOLVED}), S.CLOSED),
    # Verification failed (核查不合格): before 销号 (resolved) or found later (closed, e.g.
    # on the reporter's complaint); work resumes and the resolution clock starts again.
    IncidentAction.REOPEN: Transition(frozenset({S.RESOLVED, S.CLOSED}), S.IN_PROGRESS),
    # A resolved incident carries its own result and is not merged away.
    IncidentAction.MERGE: Transition(frozenset({S.REPORTED, S.ACCEPTED, S.IN_PROGRESS}), S.MERGED),
    IncidentAction.CLASSIFY: Transition(OPEN),
    # Casualty figures keep being revised after closure (final counts come days later);
    # rejected and merged incidents have no figures of their own.
    IncidentAction.REVISE_CASUALTIES: Transition(OPEN | {S.CLOSED}),
    IncidentAction.NOTE: Transition(ALL_STATUSES),
}

# Where a merged incident's duplicates may be merged into (merge target).
MERGE_TARGET_STATUSES = OPEN


def transition_target(*, status: str, action: IncidentAction) -> str | None:
    """The status ``action`` leads to from ``status`` (``None``: unchanged), or raise
    ``illegal_transition`` (409) with ``extra = {"from", "action", "to"}``."""
    return state_machine.transition_target(
        TRANSITIONS,
        status=status,
        action=action,
        code=IncidentErrorCode.ILLEGAL_TRANSITION,
        message=_("This action is not allowed in the incident's current status."),
    )


def allowed_actions(status: str) -> list[str]:
    """The actions allowed from ``status``, in table order (for clients and admin)."""
    return state_machine.allowed_actions(TRANSITIONS, status)
