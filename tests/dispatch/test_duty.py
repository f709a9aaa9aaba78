"""Duty, team status, out of service and shift handover (services.teams)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from django.utils import timezone

from apps.core.errors import ApplicationError
from apps.dispatch.models import DispatchTask, Team, TeamMember, TeamStatus
from apps.dispatch.services import teams as services
from tests.factories.accounts import CitizenFactory, StaffUserFactory
from tests.factories.dispatch import ShiftFactory, TeamFactory, TeamMemberFactory
from tests.factories.incidents import IncidentFactory

pytestmark = pytest.mark.django_db

S = TeamStatus


def task(team: Team, status: str) -> DispatchTask:
    return DispatchTask.objects.create(
        incident=IncidentFactory(region=team.home_region),
        team=team,
        status=status,
        dispatched_at=timezone.now(),
    )


def reload(team: Team) -> Team:
    return Team.objects.get(pk=team.pk)


# --- Duty ----------------------------------------------------------------------------------


def test_going_on_duty_makes_an_off_duty_team_available() -> None:
    # given
    member = TeamMemberFactory(team=TeamFactory(status=S.OFF_DUTY))

    # when
    result = services.team_set_duty(user=member.user, on_duty=True)

    # then
    assert result.on_duty is True
    assert result.on_duty_since is not None
    assert reload(member.team).status == S.AVAILABLE


def test_the_last_member_going_off_duty_takes_the_team_off_duty() -> None:
    member = TeamMemberFactory(team=TeamFactory(status=S.AVAILABLE), on_duty=True)

    services.team_set_duty(user=member.user, on_duty=False)

    assert reload(member.team).status == S.OFF_DUTY
    assert TeamMember.objects.get(pk=member.pk).on_duty_since is None


def test_the_team_stays_available_while_another_member_is_on_duty() -> None:
    team = TeamFactory(status=S.AVAILABLE)
    leaving = TeamMemberFactory(team=team, on_duty=True)
    TeamMemberFactory(team=team, on_duty=True)

    services.team_set_duty(user=leaving.user, on_duty=False)

    assert reload(team).status == S.AVAILABLE


@pytest.mark.parametrize("status", [S.OUT_OF_SERVICE, S.DISPATCHED, S.BUSY])
def test_duty_never_overrides_out_of_service_dispatched_or_busy(status: str) -> None:
    member = TeamMemberFactory(team=TeamFactory(status=status), on_duty=True)

    services.team_set_duty(user=member.user, on_duty=False)

    assert reload(member.team).status == status


def test_going_on_duty_twice_keeps_the_first_start_time() -> None:
    member = TeamMemberFactory(team=TeamFactory(status=S.OFF_DUTY))
    first = services.team_set_duty(user=member.user, on_duty=True).on_duty_since

    again = services.team_set_duty(user=member.user, on_duty=True)

    assert again.on_duty_since == first


def test_someone_in_no_team_cannot_go_on_duty() -> None:
    with pytest.raises(ApplicationError) as caught:
        services.team_set_duty(user=CitizenFactory(), on_duty=True)

    assert caught.value.code == "not_team_member"
    assert caught.value.status == 403


def test_a_member_of_two_teams_must_say_which() -> None:
    user = CitizenFactory()
    first = TeamMemberFactory(user=user, team__status=S.OFF_DUTY).team
    second = TeamMemberFactory(user=user, team__status=S.OFF_DUTY).team

    with pytest.raises(ApplicationError) as caught:
        services.team_set_duty(user=user, on_duty=True)
    services.team_set_duty(user=user, on_duty=True, team_id=second.pk)

    assert caught.value.code == "invalid"
    assert (reload(first).status, reload(second).status) == (S.OFF_DUTY, S.AVAILABLE)


def test_an_inactive_membership_does_not_count() -> None:
    member = TeamMemberFactory(is_active=False)

    with pytest.raises(ApplicationError) as caught:
        services.team_set_duty(user=member.user, on_duty=True)

    assert caught.value.code == "not_team_member"


# --- Status from tasks ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("task_status", "expected"),
    [
        (DispatchTask.Status.DISPATCHED, S.AVAILABLE),  # not accepted yet: still free
        (DispatchTask.Status.ACCEPTED, S.DISPATCHED),
        (DispatchTask.Status.EN_ROUTE, S.DISPATCHED),
        (DispatchTask.Status.ON_SCENE, S.BUSY),
        (DispatchTask.Status.RETURNED, S.BUSY),
        (DispatchTask.Status.COMPLETED, S.AVAILABLE),
        (DispatchTask.Status.VERIFIED, S.AVAILABLE),
        (DispatchTask.Status.CANCELLED, S.AVAILABLE),
    ],
)
def test_the_status_follows_the_live_tasks(task_status: str, expected: str) -> None:
    team = TeamFactory(status=S.AVAILABLE)
    TeamMemberFactory(team=team, on_duty=True)
    task(team, task_status)

    assert services.team_status_refresh(team_id=team.pk).status == expected
    assert reload(team).status == expected


def test_on_scene_wins_over_en_route() -> None:
    team = TeamFactory(status=S.AVAILABLE)
    task(team, DispatchTask.Status.EN_ROUTE)
    task(team, DispatchTask.Status.ON_SCENE)

    assert services.team_status_refresh(team_id=team.pk).status == S.BUSY


def test_with_no_task_and_nobody_on_duty_the_team_is_off_duty() -> None:
    team = TeamFactory(status=S.BUSY)
    TeamMemberFactory(team=team, on_duty=False)

    assert services.team_status_refresh(team_id=team.pk).status == S.OFF_DUTY


def test_refresh_never_lifts_out_of_service() -> None:
    team = TeamFactory(status=S.OUT_OF_SERVICE)
    TeamMemberFactory(team=team, on_duty=True)
    task(team, DispatchTask.Status.ON_SCENE)

    assert services.team_status_refresh(team_id=team.pk).status == S.OUT_OF_SERVICE


def test_refresh_of_an_unknown_team_is_not_found() -> None:
    with pytest.raises(ApplicationError) as caught:
        services.team_status_refresh(team_id=999_999)

    assert (caught.value.code, caught.value.status) == ("team_not_found", 404)


# --- Out of service ------------------------------------------------------------------------


def test_out_of_service_needs_a_reason_and_return_derives_the_status() -> None:
    team = TeamFactory(status=S.AVAILABLE)
    TeamMemberFactory(team=team, on_duty=True)
    operator = StaffUserFactory()

    with pytest.raises(ApplicationError):
        services.team_set_out_of_service(team_id=team.pk, by=operator, reason="  ")
    services.team_set_out_of_service(team_id=team.pk, by=operator, reason="泵车故障")
    assert reload(team).status == S.OUT_OF_SERVICE

    services.team_return_to_service(team_id=team.pk, by=operator)
    assert reload(team).status == S.AVAILABLE


# --- Shifts --------------------------------------------------------------------------------


def test_a_shift_is_handed_over_once_with_who_and_when() -> None:
    shift = ShiftFactory()
    leader = CitizenFactory()

    done = services.shift_handover(shift_id=shift.pk, by=leader, note=" 泵车已加油 ")
    with pytest.raises(ApplicationError) as caught:
        services.shift_handover(shift_id=shift.pk, by=leader, note="again")

    assert done.handover_note == "泵车已加油"
    assert done.handed_over_by == leader
    assert done.handed_over_at is not None
    assert (caught.value.code, caught.value.status) == ("conflict", 409)


def test_handing_over_an_unknown_shift_is_not_found() -> None:
    with pytest.raises(ApplicationError) as caught:
        services.shift_handover(shift_id=999_999, by=None, note="")

    assert caught.value.status == 404


# --- Races ---------------------------------------------------------------------------------


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_two_members_leaving_at_once_leave_the_team_off_duty() -> None:
    """Without the team lock each would see the other still on duty and leave the team
    ``available`` with nobody on duty."""
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL")
    team = TeamFactory(status=S.AVAILABLE)
    members = [TeamMemberFactory(team=team, on_duty=True) for _ in range(2)]
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def leave(member: TeamMember) -> None:
        try:
            barrier.wait()
            services.team_set_duty(user=member.user, on_duty=False)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=leave, args=(m,)) for m in members]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert reload(team).status == S.OFF_DUTY
