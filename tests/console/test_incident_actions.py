"""Every operator action of the incident page goes through the service the API calls:
each test presses the button as an operator would (the confirmation page, then confirm)
and checks what the service leaves behind — the timeline row, the event on the region's
stream, the clocks — and that refusals come back as a message, never a 500."""

from __future__ import annotations

import pytest

from apps.dispatch.models import CommandPost, DispatchTask, TaskStatus
from apps.incidents.models import IncidentEvent, IncidentStatus, Loop
from apps.sla.models import ClockStatus, SlaClock, SlaKind
from tests.console.conftest import (
    ZH,
    act_url,
    client_for,
    messages_of,
    page_url,
    region_events,
    task_url,
)
from tests.dispatch.task_support import Scene
from tests.factories.incidents import IncidentFactory

pytestmark = pytest.mark.django_db


def _clock(incident_id: int, kind: str, subject_type: str = "incident") -> SlaClock | None:
    return (
        SlaClock.objects.filter(subject_type=subject_type, subject_id=incident_id, kind=kind)
        .order_by("-id")
        .first()
    )


def _kinds(incident: object) -> list[str]:
    return list(
        IncidentEvent.objects.filter(incident=incident)
        .order_by("at", "id")
        .values_list("kind", flat=True)
    )


def test_the_incident_page_shows_everything_and_the_buttons_the_status_allows(
    scene: Scene,
) -> None:
    html = client_for(scene.operator).get(page_url(scene.incident), **ZH).content.decode()

    for section in ("xc-facts", "xc-tasks", "xc-timeline", "xc-clocks", "xc-post", "xc-reports"):
        assert f'id="{section}"' in html
    assert 'id="xc-recommendations"' in html  # accepted: teams are proposed, with reasons
    assert 'data-action="dispatch"' in html
    assert 'data-action="accept"' not in html  # already accepted: the table says no
    assert "+8613900000001" in html  # the operator calls back: full number


def test_accept_classifies_starts_the_clocks_and_writes_the_timeline(scene: Scene) -> None:
    incident = IncidentFactory(region=scene.street, status=IncidentStatus.REPORTED)
    client = client_for(scene.operator)
    before = region_events(scene)

    confirm_page = client.get(act_url(incident, "accept"), **ZH)
    response = client.post(
        act_url(incident, "accept"),
        {"category": "", "severity": "III", "loop": "", "confirm": "on"},
        **ZH,
    )

    assert confirm_page.status_code == 200
    assert 'name="confirm"' in confirm_page.content.decode()
    assert response.status_code == 302
    assert response["Location"] == page_url(incident)
    incident.refresh_from_db()
    assert (incident.status, incident.severity) == (IncidentStatus.ACCEPTED, "III")
    assert _kinds(incident)[-1] == IncidentEvent.Kind.ACCEPTED
    assert region_events(scene) > before
    assert _clock(incident.pk, SlaKind.DISPATCH).status == ClockStatus.RUNNING
    assert _clock(incident.pk, SlaKind.INCIDENT_RESOLUTION).status == ClockStatus.RUNNING


def test_nothing_happens_without_the_confirmation(scene: Scene) -> None:
    incident = IncidentFactory(region=scene.street, status=IncidentStatus.REPORTED)

    response = client_for(scene.operator).post(
        act_url(incident, "accept"), {"severity": "III"}, **ZH
    )

    assert response.status_code == 200  # the page again, with the field error
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.REPORTED
    assert _kinds(incident) == []


def test_dispatch_offers_the_recommendations_with_reasons_and_sends_the_chosen_teams(
    scene: Scene,
) -> None:
    client = client_for(scene.operator)

    page = client.get(act_url(scene.incident, "dispatch"), **ZH).content.decode()
    response = client.post(
        act_url(scene.incident, "dispatch"),
        {
            "teams": [scene.team.pk, scene.other_team.pk],
            "instructions": "先排水，注意触电",
            "confirm": "on",
        },
        **ZH,
    )

    assert 'id="xc-recommendation-table"' in page
    assert f'data-team-id="{scene.team.pk}"' in page
    assert f'name="teams" value="{scene.team.pk}"' in page  # ticked in the ranked table
    assert "公里" in page  # the distance reason, in Chinese
    assert response.status_code == 302
    tasks = DispatchTask.objects.filter(incident=scene.incident).order_by("id")
    assert [t.team_id for t in tasks] == [scene.team.pk, scene.other_team.pk]
    assert all(t.instructions == "先排水，注意触电" for t in tasks)
    assert _kinds(scene.incident).count(IncidentEvent.Kind.TASK_DISPATCHED) == 2
    assert _clock(tasks[0].pk, SlaKind.TASK_ACCEPT, "task").status == ClockStatus.RUNNING


def test_resolving_with_live_tasks_is_refused_with_the_services_message(scene: Scene) -> None:
    scene.incident.status = IncidentStatus.IN_PROGRESS
    scene.incident.save(update_fields=["status"])
    scene.task("on_scene")

    response = client_for(scene.operator).post(
        act_url(scene.incident, "resolve"),
        {"resolution": "已排水", "confirm": "on"},
        **ZH,
    )

    assert response.status_code == 200  # the confirmation page again, never a 500
    assert messages_of(response)  # the service's refusal, as a message
    scene.incident.refresh_from_db()
    assert scene.incident.status == IncidentStatus.IN_PROGRESS


def test_resolve_close_and_reopen_run_the_verification_loop(scene: Scene) -> None:
    scene.incident.status = IncidentStatus.IN_PROGRESS
    scene.incident.save(update_fields=["status"])
    client = client_for(scene.operator)

    client.post(act_url(scene.incident, "resolve"), {"resolution": "已排水", "confirm": "on"})
    verification = _clock(scene.incident.pk, SlaKind.INCIDENT_VERIFICATION)
    client.post(act_url(scene.incident, "close"), {"note": "现场核查通过", "confirm": "on"})
    client.post(act_url(scene.incident, "reopen"), {"reason": "群众反映仍有积水", "confirm": "on"})

    scene.incident.refresh_from_db()
    assert scene.incident.status == IncidentStatus.IN_PROGRESS
    assert _kinds(scene.incident)[-3:] == [
        IncidentEvent.Kind.RESOLVED,
        IncidentEvent.Kind.CLOSED,
        IncidentEvent.Kind.REOPENED,
    ]
    assert verification is not None
    verification.refresh_from_db()
    assert verification.status == ClockStatus.STOPPED


def test_classify_supervise_raise_note_and_casualties_each_write_their_row(
    scene: Scene,
) -> None:
    client = client_for(scene.operator)
    ok = {"confirm": "on"}

    client.post(act_url(scene.incident, "classify"), {**ok, "severity": "II", "loop": ""})
    client.post(act_url(scene.incident, "supervise"), {**ok, "reason": "群众多次来电"})
    client.post(act_url(scene.incident, "raise_loop"), {**ok, "reason": "需跨部门协同"})
    client.post(act_url(scene.incident, "note"), {**ok, "text": "已通知水务", "public": ""})
    client.post(act_url(scene.incident, "casualties"), {**ok, "injured": "2", "note": ""})

    scene.incident.refresh_from_db()
    assert scene.incident.severity == "II"
    assert scene.incident.supervised_at is not None
    assert scene.incident.loop == Loop.MEDIUM
    assert scene.incident.injured == 2
    assert _kinds(scene.incident) == [
        IncidentEvent.Kind.CLASSIFIED,
        IncidentEvent.Kind.SUPERVISED,
        IncidentEvent.Kind.LOOP_RAISED,
        IncidentEvent.Kind.NOTE,
        IncidentEvent.Kind.CASUALTIES_REVISED,
    ]
    # The medium loop gets its own resolution clock (the old one was restarted).
    assert _clock(scene.incident.pk, SlaKind.INCIDENT_RESOLUTION).loop == Loop.MEDIUM


def test_a_blank_reason_is_the_services_field_error_on_the_form(scene: Scene) -> None:
    response = client_for(scene.operator).post(
        act_url(scene.incident, "raise_loop"), {"reason": "   ", "confirm": "on"}, **ZH
    )

    assert response.status_code == 200
    assert response.context["form"].errors  # shown beside the field
    scene.incident.refresh_from_db()
    assert scene.incident.loop == Loop.SMALL


def test_task_actions_cancel_reassign_instruct_verify_and_return(scene: Scene) -> None:
    client = client_for(scene.operator)
    ok = {"confirm": "on"}
    live = scene.task("accepted")
    done = scene.task("completed", team=scene.other_team)
    third = scene.new_team()
    scene.add_member(third)

    client.post(task_url(live, "instructions"), {**ok, "text": "带上水泵"})
    # Reassigning offers the recommended teams not already on the incident.
    form = client.get(task_url(live, "reassign")).context["form"]
    assert list(dict(form.fields["to_team"].choices)) == [third.pk]
    client.post(task_url(live, "reassign"), {**ok, "to_team": third.pk, "reason": ""})
    client.post(task_url(done, "return"), {**ok, "reason": "现场仍有积水"})

    live.refresh_from_db()
    done.refresh_from_db()
    assert live.status == TaskStatus.CANCELLED
    assert done.status == TaskStatus.RETURNED
    new = DispatchTask.objects.exclude(pk__in=[live.pk, done.pk]).get()
    assert "带上水泵" in new.instructions

    client.post(task_url(new, "cancel"), {**ok, "reason": "误派"})
    new.refresh_from_db()
    assert new.status == TaskStatus.CANCELLED
    assert IncidentEvent.Kind.TASK_REASSIGNED in _kinds(scene.incident)
    assert IncidentEvent.Kind.TASK_INSTRUCTIONS in _kinds(scene.incident)
    assert IncidentEvent.Kind.TASK_RETURNED in _kinds(scene.incident)


def test_verify_a_completed_task(scene: Scene) -> None:
    task = scene.task("completed")

    client_for(scene.operator).post(task_url(task, "verify"), {"confirm": "on"})

    task.refresh_from_db()
    assert task.status == TaskStatus.VERIFIED
    assert _kinds(scene.incident)[-1] == IncidentEvent.Kind.TASK_VERIFIED


def test_a_task_of_another_incident_is_not_found_under_this_one(scene: Scene) -> None:
    other = IncidentFactory(region=scene.street, status=IncidentStatus.ACCEPTED)
    task = scene.task("accepted")
    url = f"/admin/incidents/incident/{other.pk}/task/{task.pk}/cancel/"

    response = client_for(scene.operator).post(url, {"confirm": "on", "reason": "x"})

    assert response.status_code == 302
    task.refresh_from_db()
    assert task.status == TaskStatus.ACCEPTED


def test_a_command_post_is_set_up_handed_over_and_closed(scene: Scene, commander: object) -> None:
    client = client_for(scene.operator)
    ok = {"confirm": "on"}

    form = client.get(act_url(scene.incident, "post_setup")).context["form"]
    choices = dict(form.fields["commander"].choices)
    assert commander.pk in choices
    assert scene.operator.pk in choices
    client.post(
        act_url(scene.incident, "post_setup"),
        {**ok, "commander": scene.operator.pk, "lat": "34.276", "lng": "108.85", "address": "桥下"},
    )
    client.post(
        act_url(scene.incident, "post_handover"), {**ok, "commander": commander.pk, "note": "交接"}
    )
    post = CommandPost.objects.get(incident=scene.incident)
    assert post.commander_id == commander.pk
    assert list(post.members.values_list("pk", flat=True)) == [scene.operator.pk]
    client.post(act_url(scene.incident, "post_members"), {**ok, "remove": [scene.operator.pk]})
    assert not post.members.exists()

    client.post(act_url(scene.incident, "post_close"), ok)

    post.refresh_from_db()
    assert post.closed_at is not None
    assert _kinds(scene.incident) == [
        IncidentEvent.Kind.COMMAND_POST_ESTABLISHED,
        IncidentEvent.Kind.COMMAND_POST_HANDED_OVER,
        IncidentEvent.Kind.COMMAND_POST_MEMBERS,
        IncidentEvent.Kind.COMMAND_POST_CLOSED,
    ]


def test_merge_offers_the_nearby_open_incidents_and_merges(scene: Scene) -> None:
    duplicate = IncidentFactory(
        region=scene.street,
        category=scene.incident.category,
        lat=scene.incident.lat,
        lng=scene.incident.lng,
        status=IncidentStatus.REPORTED,
    )
    client = client_for(scene.operator)

    form = client.get(act_url(duplicate, "merge")).context["form"]
    client.post(act_url(duplicate, "merge"), {"confirm": "on", "into": scene.incident.pk})

    assert scene.incident.pk in dict(form.fields["into"].choices)
    duplicate.refresh_from_db()
    assert (duplicate.status, duplicate.merged_into_id) == (
        IncidentStatus.MERGED,
        scene.incident.pk,
    )


# --- Who may ---------------------------------------------------------------------------------


def test_an_incident_outside_the_operators_regions_does_not_exist_for_them(scene: Scene) -> None:
    client = client_for(scene.outsider_operator)

    page = client.get(page_url(scene.incident), **ZH)
    action = client.post(act_url(scene.incident, "supervise"), {"confirm": "on", "reason": "x"})

    assert page.status_code == 302  # the admin's "does not exist" answer
    assert action.status_code == 302
    assert "不存在" in messages_of(page)[0]
    scene.incident.refresh_from_db()
    assert scene.incident.supervised_at is None


def test_a_liaison_reads_the_incident_but_is_refused_every_action(
    scene: Scene, liaison: object
) -> None:
    client = client_for(liaison)

    page = client.get(page_url(scene.incident), **ZH)
    action = client.post(
        act_url(scene.incident, "supervise"), {"confirm": "on", "reason": "x"}, **ZH
    )

    html = page.content.decode()
    assert page.status_code == 200
    assert 'id="xc-actions"' not in html  # no buttons
    assert "+8613900000001" not in html  # and no caller's number
    assert action.status_code == 302
    assert "角色" in messages_of(action)[0]  # "your role does not allow this action"
    scene.incident.refresh_from_db()
    assert scene.incident.supervised_at is None


def test_while_a_command_post_is_open_only_its_people_dispatch(
    scene: Scene, commander: object
) -> None:
    from apps.dispatch.services.command_post import command_post_establish

    command_post_establish(
        incident_id=scene.incident.pk, by=commander, commander_id=commander.pk, lat=34.2, lng=108.8
    )

    response = client_for(scene.operator).post(
        act_url(scene.incident, "dispatch"), {"confirm": "on", "teams": [scene.team.pk]}, **ZH
    )

    assert response.status_code == 200  # the page again, with the service's refusal
    assert "指挥部" in messages_of(response)[0]  # command_post_in_charge, in Chinese
    assert not DispatchTask.objects.filter(incident=scene.incident).exists()
