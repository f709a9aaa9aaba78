"""The command-centre admin for incidents and the triage queue."""

from __future__ import annotations

import secrets
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from apps.accounts.models import User
from apps.incidents.models import Attachment, Incident, IncidentEvent, IncidentStatus, Report
from apps.incidents.services import incidents as services
from tests.factories.accounts import StaffUserFactory, UserFactory
from tests.factories.incidents import IncidentFactory, TwoTowns

pytestmark = pytest.mark.django_db

ZH = {"HTTP_ACCEPT_LANGUAGE": "zh-hans"}


@pytest.fixture
def tree() -> TwoTowns:
    return TwoTowns()


@pytest.fixture
def fengxi_operator(tree: TwoTowns) -> User:
    """A 沣西 operator with the admin permissions the operator role is meant to carry."""
    user = StaffUserFactory(region=tree.fengxi)
    user.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="incidents",
            codename__in=["view_incident", "change_incident", "view_report", "change_report"],
        )
    )
    return User.objects.get(pk=user.pk)  # drop the cached permissions


@pytest.fixture
def superuser() -> User:
    return UserFactory(is_superuser=True, is_staff=True)


def admin_client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _report(tree: TwoTowns, incident: Incident | None = None, **kwargs: object) -> Report:
    category = incident.category if incident else IncidentFactory(region=tree.diaotai).category
    values: dict[str, object] = {"region": tree.diaotai, **kwargs}
    return Report.objects.create(
        token=secrets.token_urlsafe(32),
        channel=Report.Channel.APP,
        category=category,
        lat=34.305,
        lng=108.718,
        incident=incident,
        **values,
    )


def test_the_incident_changelist_renders_in_chinese(tree: TwoTowns, superuser: User) -> None:
    IncidentFactory(region=tree.diaotai, title="钓台路积水")

    response = admin_client(superuser).get(reverse("admin:incidents_incident_changelist"), **ZH)

    assert response.status_code == 200
    html = response.content.decode()
    assert 'lang="zh-hans"' in html
    assert "钓台路积水" in html
    assert "过滤器" in html  # Django's own zh-hans admin strings are active


def test_an_operator_sees_only_incidents_of_their_region(
    tree: TwoTowns, fengxi_operator: User
) -> None:
    mine = IncidentFactory(region=tree.diaotai, title="沣西的事件")
    theirs = IncidentFactory(region=tree.sanqiao, title="沣东的事件")
    client = admin_client(fengxi_operator)

    listing = client.get(reverse("admin:incidents_incident_changelist"), **ZH)
    own = client.get(reverse("admin:incidents_incident_change", args=[mine.pk]), **ZH)
    other = client.get(reverse("admin:incidents_incident_change", args=[theirs.pk]), **ZH)

    assert listing.status_code == 200
    assert "沣西的事件" in listing.content.decode()
    assert "沣东的事件" not in listing.content.decode()
    assert own.status_code == 200
    assert other.status_code == 302  # Django admin: "does not exist" → back to the index


def test_the_change_page_shows_the_timeline_read_only_and_the_photos(
    tree: TwoTowns, superuser: User
) -> None:
    # given
    incident = IncidentFactory(region=tree.diaotai)
    services.incident_accept(incident_id=incident.pk, by=superuser)
    services.incident_add_note(incident_id=incident.pk, by=superuser, text="已联系水务部门")
    photo = Attachment.objects.create(
        incident=incident,
        file="attachments/2025/07/20/p.jpg",
        thumbnail="attachments/thumbs/2025/07/20/p.jpg",
        content_type="image/jpeg",
        width=640,
        height=480,
        size=1000,
        sha256="1" * 64,
    )

    # when
    response = admin_client(superuser).get(
        reverse("admin:incidents_incident_change", args=[incident.pk]), **ZH
    )

    # then
    assert response.status_code == 200
    html = response.content.decode()
    assert "已联系水务部门" in html
    # the photo through its checked download, never its media path
    assert f"/api/v1/attachments/{photo.pk}/thumbnail/" in html
    assert "attachments/thumbs/2025/07/20/p.jpg" not in html
    assert 'id="xc-timeline"' in html  # the timeline, as rows of text
    assert 'name="events-0-kind"' not in html  # rows shown, never as editable inputs
    assert 'name="title"' not in html  # the incident itself is read-only here


def test_incidents_are_added_only_by_phone_intake_and_never_deleted_in_the_admin(
    tree: TwoTowns, superuser: User
) -> None:
    incident = IncidentFactory(region=tree.diaotai)
    client = admin_client(superuser)

    add = client.get(reverse("admin:incidents_incident_add"))
    assert add.status_code == 200
    assert 'id="xc-intake"' in add.content.decode()  # the phone-call form, not a model form
    assert (
        client.get(reverse("admin:incidents_incident_delete", args=[incident.pk])).status_code
        == 403
    )


def test_the_accept_action_goes_through_the_service(tree: TwoTowns, fengxi_operator: User) -> None:
    incident = IncidentFactory(region=tree.diaotai)

    response = admin_client(fengxi_operator).post(
        reverse("admin:incidents_incident_changelist"),
        {"action": "accept_selected", "_selected_action": [incident.pk]},
        follow=True,
        **ZH,
    )

    assert response.status_code == 200
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.ACCEPTED
    event = IncidentEvent.objects.get(incident=incident)
    assert event.actor == fengxi_operator


def test_an_illegal_action_shows_an_error_message_not_a_500(
    tree: TwoTowns, fengxi_operator: User
) -> None:
    # given one closable and one already closed incident
    closed = IncidentFactory(region=tree.diaotai, status=IncidentStatus.CLOSED)
    resolved = IncidentFactory(region=tree.diaotai, status=IncidentStatus.RESOLVED)

    # when both are closed at once
    response = admin_client(fengxi_operator).post(
        reverse("admin:incidents_incident_changelist"),
        {
            "action": "close_selected",
            "_selected_action": [closed.pk, resolved.pk],
            "reason": "核查通过",
        },
        follow=True,
        **ZH,
    )

    # then the legal one went through and the other is reported
    assert response.status_code == 200
    texts = [(m.level_tag, str(m)) for m in get_messages(response.wsgi_request)]
    errors = [text for level, text in texts if level == "error"]
    assert len(errors) == 1
    assert closed.number in errors[0]
    assert "illegal_transition" in errors[0]
    assert Incident.objects.get(pk=resolved.pk).status == IncidentStatus.CLOSED
    assert IncidentEvent.objects.get(incident=resolved).data["note"] == "核查通过"


def test_an_action_on_an_out_of_scope_incident_cannot_be_smuggled_in(
    tree: TwoTowns, fengxi_operator: User
) -> None:
    theirs = IncidentFactory(region=tree.sanqiao)

    admin_client(fengxi_operator).post(
        reverse("admin:incidents_incident_changelist"),
        {"action": "accept_selected", "_selected_action": [theirs.pk]},
        follow=True,
    )

    assert Incident.objects.get(pk=theirs.pk).status == IncidentStatus.REPORTED


def test_the_triage_queue_puts_submitted_sos_reports_first(
    tree: TwoTowns, fengxi_operator: User
) -> None:
    # given
    now = timezone.now()
    incident = IncidentFactory(region=tree.diaotai)
    _report(
        tree,
        incident,
        status=Report.Status.ACCEPTED,
        text="已处理的报告",
        created_at=now - timedelta(hours=3),
    )
    _report(tree, text="普通报告", created_at=now - timedelta(hours=2))
    _report(tree, text="一键求救", is_sos=True, created_at=now - timedelta(hours=1))
    _report(tree, text="沣东的报告", region=tree.sanqiao)

    # when
    response = admin_client(fengxi_operator).get(reverse("admin:incidents_report_changelist"), **ZH)

    # then
    assert response.status_code == 200
    html = response.content.decode()
    assert "沣东的报告" not in html
    positions = [html.index(text) for text in ("一键求救", "普通报告", "已处理的报告")]
    assert positions == sorted(positions)


def test_the_triage_actions_call_the_report_services(tree: TwoTowns, fengxi_operator: User) -> None:
    # given two submitted reports in 钓台
    to_accept = _report(tree, text="路面积水")
    to_reject = _report(tree, text="测试")
    client = admin_client(fengxi_operator)
    changelist = reverse("admin:incidents_report_changelist")

    # when one is accepted, and the other rejected first without and then with a reason
    client.post(changelist, {"action": "accept_selected", "_selected_action": [to_accept.pk]})
    no_reason = client.post(
        changelist,
        {"action": "reject_selected", "_selected_action": [to_reject.pk], "reason": ""},
        follow=True,
    )
    client.post(
        changelist,
        {"action": "reject_selected", "_selected_action": [to_reject.pk], "reason": "测试数据"},
    )

    # then
    to_accept.refresh_from_db()
    to_reject.refresh_from_db()
    assert to_accept.status == Report.Status.ACCEPTED
    assert to_accept.incident is not None
    assert [m.level_tag for m in get_messages(no_reason.wsgi_request)][-1] == "error"
    assert to_reject.status == Report.Status.REJECTED
    assert to_reject.rejection_reason == "测试数据"
