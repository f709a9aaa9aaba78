"""The one table of dispatch-task transitions (docs/architecture.md section 3).

Every task service looks its action up here after locking the incident and the task;
nothing else decides which status may follow which. Actions that leave the status alone
(instructions, delivery receipt) are listed too, so "what may I do now?" has one answer
for services, API (``allowed_actions`` in the task output) and admin alike.

::

    dispatched ─accept─▶ accepted ─en_route─▶ en_route ─on_scene─▶ on_scene ─complete─▶ completed
     │  │                   └──────────on_scene──────────────────────▲                   │   │
     │  └─decline─▶ declined                                                  verify ───┘   │ return
     └─expire──▶ expired                                              verified ◀─┘          ▼
                                                                                         returned
        returned ─en_route / on_scene / complete─▶ (the work goes on: returned is live)
        any live status ─cancel / reassign─▶ cancelled

Decisions (documented here because the table is the contract):

- **returned is a live status** (重办). The first design said "returned (back to on_scene)"; rather
  than bouncing through two statuses in one step, a returned task *stays* ``returned``
  (so the board sees "rework ordered" until the team reacts) and ``en_route``,
  ``on_scene`` and ``complete`` proceed from it again. ``returned_at``/``return_reason``
  record the last return; every return is also a TaskEvent.
- **on_scene straight from accepted**: a grid worker or a team already at the place
  does not travel; forcing a fake ``en_route`` would fake the KPI instead.
- **cancel from every live status**, ``completed`` included (the first design: "cancelled from any
  live state"): e.g. the incident turned out to be a duplicate before verification.
  The result text stays on the row.
- **ack_delivery from every status**: a phone acknowledging the push late (after an
  expiry) still tells the delivery KPI when it arrived; it never changes the status.
"""

from __future__ import annotations

from enum import StrEnum

from django.utils.translation import gettext_lazy as _

from apps.core import state_machine
from apps.core.state_machine import Transition
from apps.dispatch.errors import DispatchErrorCode
from apps.dispatch.models import LIVE_TASK_STATUSES, TaskStatus

S = TaskStatus


class TaskAction(StrEnum):
    ACCEPT = "accept"
    DECLINE = "decline"
    EXPIRE = "expire"
    EN_ROUTE = "en_route"
    ON_SCENE = "on_scene"
    COMPLETE = "complete"
    VERIFY = "verify"
    RETURN = "return"
    CANCEL = "cancel"
    REASSIGN = "reassign"
    INSTRUCTIONS = "instructions"
    ACK_DELIVERY = "ack_delivery"


ALL_STATUSES = frozenset(S.values)
LIVE = frozenset(str(status) for status in LIVE_TASK_STATUSES)
# Done with the work, waiting at most for verification: these do not hold up "resolve".
WORK_DONE = frozenset({S.COMPLETED, S.VERIFIED})
# Live statuses in which the team is still working (resolve waits for these).
WORKING = LIVE - WORK_DONE

TRANSITIONS: dict[TaskAction, Transition] = {
    TaskAction.ACCEPT: Transition(frozenset({S.DISPATCHED}), S.ACCEPTED),
    TaskAction.DECLINE: Transition(frozenset({S.DISPATCHED}), S.DECLINED),
    # System only (the SLA sweeper): no answer in time.
    TaskAction.EXPIRE: Transition(frozenset({S.DISPATCHED}), S.EXPIRED),
    TaskAction.EN_ROUTE: Transition(frozenset({S.ACCEPTED, S.RETURNED}), S.EN_ROUTE),
    TaskAction.ON_SCENE: Transition(frozenset({S.ACCEPTED, S.EN_ROUTE, S.RETURNED}), S.ON_SCENE),
    TaskAction.COMPLETE: Transition(frozenset({S.ON_SCENE, S.RETURNED}), S.COMPLETED),
    TaskAction.VERIFY: Transition(frozenset({S.COMPLETED}), S.VERIFIED),
    TaskAction.RETURN: Transition(frozenset({S.COMPLETED}), S.RETURNED),
    TaskAction.CANCEL: Transition(LIVE, S.CANCELLED),
    # Cancel this task and dispatch another team in the same transaction.
    TaskAction.REASSIGN: Transition(LIVE, S.CANCELLED),
    TaskAction.INSTRUCTIONS: Transition(LIVE),
    TaskAction.ACK_DELIVERY: Transition(ALL_STATUSES),
}

# Which timestamp column each target status stamps (the "first-time" KPIs).
TIMESTAMP_FIELD: dict[str, str] = {
    S.ACCEPTED: "accepted_at",
    S.DECLINED: "declined_at",
    S.EXPIRED: "expired_at",
    S.EN_ROUTE: "en_route_at",
    S.ON_SCENE: "on_scene_at",
    S.COMPLETED: "completed_at",
    S.VERIFIED: "verified_at",
    S.RETURNED: "returned_at",
    S.CANCELLED: "cancelled_at",
}


def task_transition_target(*, status: str, action: TaskAction) -> str | None:
    """The status ``action`` leads to from ``status`` (``None``: unchanged), or raise
    ``illegal_task_transition`` (409) with ``extra = {"from", "action", "to"}``."""
    return state_machine.transition_target(
        TRANSITIONS,
        status=status,
        action=action,
        code=DispatchErrorCode.ILLEGAL_TASK_TRANSITION,
        message=_("This action is not allowed in the task's current status."),
    )


def task_allowed_actions(status: str) -> list[str]:
    """The actions allowed from ``status``, in table order (for clients and admin)."""
    return state_machine.allowed_actions(TRANSITIONS, status)
