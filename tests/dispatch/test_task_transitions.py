"""Every task action from every status: allowed ones move, the others are refused.

The expected matrix is written out here independently of ``task_transitions.TRANSITIONS``
(docs/architecture.md section 3 plus the documented decisions), so a change to the table that the
design did not ask for fails here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from apps.core.errors import ApplicationError
from apps.dispatch.models import DispatchTask, TaskEvent, TaskStatus
from apps.dispatch.services import tasks as services
from apps.dispatch.task_transitions import TRANSITIONS, TaskAction, task_allowed_actions
from apps.incidents.models import IncidentEvent
from tests.dispatch.task_support import Scene

pytestmark = pytest.mark.django_db

S = TaskStatus
LIVE = {S.DISPATCHED, S.ACCEPTED, S.EN_ROUTE, S.ON_SCENE, S.COMPLETED, S.RETURNED}
ALL = set(S)

# action → {from status: to status (None: status unchanged)}
EXPECTED: dict[str, dict[str, str | None]] = {
    "accept": {S.DISPATCHED: S.ACCEPTED},
    "decline": {S.DISPATCHED: S.DECLINED},
    "expire": {S.DISPATCHED: S.EXPIRED},
    "en_route": {S.ACCEPTED: S.EN_ROUTE, S.RETURNED: S.EN_ROUTE},
    "on_scene": {S.ACCEPTED: S.ON_SCENE, S.EN_ROUTE: S.ON_SCENE, S.RETURNED: S.ON_SCENE},
    "complete": {S.ON_SCENE: S.COMPLETED, S.RETURNED: S.COMPLETED},
    "verify": {S.COMPLETED: S.VERIFIED},
    "return": {S.COMPLETED: S.RETURNED},
    "cancel": dict.fromkeys(LIVE, S.CANCELLED),
    "reassign": dict.fromkeys(LIVE, S.CANCELLED),
    "instructions": dict.fromkeys(LIVE),
    "ack_delivery": dict.fromkeys(ALL),
}


def _call(action: str, scene: Scene, task: DispatchTask) -> Any:
    calls: dict[str, Callable[[], Any]] = {
        "accept": lambda: services.task_accept(task_id=task.pk, by=scene.member),
        "decline": lambda: services.task_decline(task_id=task.pk, by=scene.member, reason="车坏"),
        "expire": lambda: services.task_expire(task_id=task.pk),
        "en_route": lambda: services.task_en_route(task_id=task.pk, by=scene.member),
        "on_scene": lambda: services.task_on_scene(task_id=task.pk, by=scene.member),
        "complete": lambda: services.task_complete(task_id=task.pk, by=scene.member, result="好"),
        "verify": lambda: services.task_verify(task_id=task.pk, by=scene.operator),
        "return": lambda: services.task_return(task_id=task.pk, by=scene.operator, reason="未清"),
        "cancel": lambda: services.task_cancel(task_id=task.pk, by=scene.operator, reason="误报"),
        "reassign": lambda: services.task_reassign(
            task_id=task.pk, to_team_id=scene.other_team.pk, by=scene.operator
        ),
        "instructions": lambda: services.task_add_instructions(
            task_id=task.pk, by=scene.operator, text="注意燃气"
        ),
        "ack_delivery": lambda: services.task_ack_delivery(task_id=task.pk, by=scene.member),
    }
    return calls[action]()


CASES = [(action, status) for action in EXPECTED for status in S.values]


def test_the_matrix_covers_every_action_of_the_table() -> None:
    assert set(EXPECTED) == {str(action) for action in TaskAction}
    for action, rule in TRANSITIONS.items():
        assert set(rule.sources) == set(EXPECTED[str(action)]), action


@pytest.mark.parametrize(("action", "status"), CASES, ids=[f"{a}-from-{s}" for a, s in CASES])
def test_every_action_from_every_status(action: str, status: str) -> None:
    # given
    scene = Scene()
    task = scene.task(status)
    events_before = TaskEvent.objects.filter(task=task).count()
    timeline_before = IncidentEvent.objects.filter(incident=scene.incident).count()
    allowed = status in EXPECTED[action]

    # when / then
    if not allowed:
        with pytest.raises(ApplicationError) as refused:
            _call(action, scene, task)
        assert refused.value.code == "illegal_task_transition"
        assert refused.value.status == 409
        assert refused.value.extra["from"] == status
        assert refused.value.extra["action"] == action
        task.refresh_from_db()
        assert task.status == status
        assert TaskEvent.objects.filter(task=task).count() == events_before
        assert IncidentEvent.objects.filter(incident=scene.incident).count() == timeline_before
        return

    _call(action, scene, task)
    task.refresh_from_db()
    target = EXPECTED[action][status]
    assert task.status == (target if target is not None else status)
    if action == "ack_delivery":
        assert task.delivered_at is not None
        assert TaskEvent.objects.filter(task=task, kind="delivered").count() == 1
        return
    assert TaskEvent.objects.filter(task=task).count() == events_before + 1
    new_rows = IncidentEvent.objects.filter(incident=scene.incident).count() - timeline_before
    assert new_rows >= 1
    if target is not None:
        stamp = {
            S.CANCELLED: "cancelled_at",
            S.ACCEPTED: "accepted_at",
            S.DECLINED: "declined_at",
            S.EXPIRED: "expired_at",
            S.EN_ROUTE: "en_route_at",
            S.ON_SCENE: "on_scene_at",
            S.COMPLETED: "completed_at",
            S.VERIFIED: "verified_at",
            S.RETURNED: "returned_at",
        }[target]
        assert getattr(task, stamp) is not None


@pytest.mark.parametrize("status", S.values)
def test_allowed_actions_list_what_the_status_allows(status: str) -> None:
    expected = [action for action, sources in EXPECTED.items() if status in sources]
    assert task_allowed_actions(status) == expected
