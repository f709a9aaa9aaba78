"""The audit trail: writes through the API and the admin, anonymous writes, personal-data
reads, each one row with who, when, what, how it ended and from where."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient

from apps.accounts.models import Role, User
from apps.accounts.services import tokens_issue
from apps.audit.models import AuditEntry
from apps.incidents.models import Report
from apps.regions import geo
from apps.regions.models import Region
from apps.regions.services import regions_load_fixture
from tests.factories.accounts import CitizenFactory, StaffUserFactory
from tests.factories.incidents import CategoryFactory, ReportFactory

pytestmark = pytest.mark.django_db

SANQIAO = (34.276, 108.85)
CITIZEN_ADDRESS = "203.0.113.50"
ROUTER = "172.30.64.2"
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0"


@pytest.fixture
def xixian(monkeypatch: pytest.MonkeyPatch) -> dict[str, Region]:
    monkeypatch.setattr(geo, "_index", None)
    regions_load_fixture()
    return {region.code: region for region in Region.objects.all()}


@pytest.fixture
def operator(xixian: dict[str, Region]) -> User:
    return StaffUserFactory(username="op-audit", region=xixian["fengdong"])


def _only(**filters: Any) -> AuditEntry:
    entries = list(AuditEntry.objects.filter(**filters))
    assert len(entries) == 1, entries
    return entries[0]


def test_an_api_write_leaves_one_entry_with_actor_object_status_and_origin(
    operator: User, xixian: dict[str, Region], settings: Any
) -> None:
    # given: a report to accept, and the request arriving through our router
    settings.TRUSTED_PROXIES = [ROUTER]
    report = ReportFactory(region=xixian["fd-sanqiao"], phone="+8613900000001")
    client = APIClient()
    client.force_authenticate(operator)
    # when
    response = client.post(
        f"/api/v1/reports/{report.pk}/accept/",
        {},
        REMOTE_ADDR=ROUTER,
        HTTP_X_FORWARDED_FOR=f"198.51.100.1, {CITIZEN_ADDRESS}",
        HTTP_USER_AGENT=BROWSER,
    )
    # then
    assert response.status_code == 200, response.content
    entry = _only(action=AuditEntry.Action.WRITE)
    assert entry.channel == AuditEntry.Channel.API
    assert entry.actor_id == operator.pk
    assert entry.actor_label == "op-audit"
    assert (entry.method, entry.path) == ("POST", f"/api/v1/reports/{report.pk}/accept/")
    assert entry.view == "v1:report-accept"
    assert (entry.object_type, entry.object_id) == ("report", str(report.pk))
    assert entry.status == 200
    assert entry.client_address == CITIZEN_ADDRESS  # the client, not the router
    assert entry.user_agent == BROWSER
    # and the answer showed the reporter's phone: that read is recorded too
    read = _only(action=AuditEntry.Action.PERSONAL_READ)
    assert (read.object_type, read.object_id) == ("incidents.report", str(report.pk))
    assert read.detail == {"fields": ["phone"]}


def test_a_refused_write_is_recorded_with_its_status(operator: User) -> None:
    client = APIClient()
    client.force_authenticate(operator)
    response = client.post("/api/v1/reports/999999/accept/", {})
    assert response.status_code == 404
    entry = _only(action=AuditEntry.Action.WRITE)
    assert (entry.status, entry.object_id, entry.actor_id) == (404, "999999", operator.pk)


def test_an_anonymous_citizen_report_leaves_one_entry_without_an_actor(
    api_client: APIClient, xixian: dict[str, Region], django_capture_on_commit_callbacks: Any
) -> None:
    # given
    CategoryFactory(code="A01")
    # when
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client.post(
            "/api/v1/reports/",
            {"category": "A01", "lat": SANQIAO[0], "lng": SANQIAO[1], "text": "路面塌陷"},
            REMOTE_ADDR=CITIZEN_ADDRESS,
            HTTP_USER_AGENT="XixianApp/2.1 (Android 15)",
        )
    # then
    assert response.status_code == 201, response.content
    entry = _only()
    assert entry.action == AuditEntry.Action.WRITE
    assert (entry.actor_id, entry.actor_label) == (None, "")
    assert entry.view == "v1:report-submit"
    assert (entry.object_type, entry.object_id) == ("report", str(response.json()["id"]))
    assert (entry.status, entry.client_address) == (201, CITIZEN_ADDRESS)
    assert entry.user_agent == "XixianApp/2.1 (Android 15)"
    # the tracking token, a capability, appears nowhere in the trail
    token = Report.objects.get().token
    assert token not in str(entry.detail)
    assert token not in entry.path


def test_an_admin_write_leaves_one_entry_naming_the_object(
    client: Client, xixian: dict[str, Region]
) -> None:
    # given
    admin = User.objects.create_superuser("root-audit", password="x" * 12)
    client.force_login(admin)
    # when: a user is added through the admin
    response = client.post(
        "/admin/accounts/user/add/",
        {
            "username": "new-operator",
            "display_name": "新值班员",
            "phone": "13900000002",
            "password1": "long-enough-Passw0rd",
            "password2": "long-enough-Passw0rd",
            "usable_password": "true",
            "memberships-TOTAL_FORMS": "0",
            "memberships-INITIAL_FORMS": "0",
        },
        REMOTE_ADDR="198.51.100.20",
    )
    # then
    assert response.status_code == 302
    created = User.objects.get(username="new-operator")
    entry = _only(action=AuditEntry.Action.WRITE)
    assert entry.channel == AuditEntry.Channel.ADMIN
    assert entry.actor_id == admin.pk
    assert entry.view == "admin:accounts_user_add"
    assert (entry.object_type, entry.object_id) == ("accounts.user", str(created.pk))
    assert (entry.status, entry.client_address) == (302, "198.51.100.20")
    assert "long-enough" not in str(entry.detail)  # bodies are never stored


def test_reading_a_users_phone_in_the_admin_is_recorded(
    client: Client, xixian: dict[str, Region]
) -> None:
    # given
    admin = User.objects.create_superuser("root-reader", password="x" * 12)
    citizen = CitizenFactory()
    client.force_login(admin)
    # when
    page = client.get(f"/admin/accounts/user/{citizen.pk}/change/")
    listing = client.get("/admin/accounts/user/")
    # then
    assert page.status_code == listing.status_code == 200
    reads = AuditEntry.objects.filter(action=AuditEntry.Action.PERSONAL_READ).order_by("id")
    assert [(r.view, r.object_type, r.object_id, r.detail["fields"]) for r in reads] == [
        ("admin:accounts_user_change", "accounts.user", str(citizen.pk), ["phone"]),
        ("admin:accounts_user_changelist", "accounts.user", str(citizen.pk), ["phone"]),
    ]
    assert {r.actor_id for r in reads} == {admin.pk}
    assert not AuditEntry.objects.filter(action=AuditEntry.Action.WRITE).exists()


def test_a_staff_read_of_a_reporters_phone_is_recorded_once_per_report(
    operator: User, xixian: dict[str, Region]
) -> None:
    # given: two reports with a phone, one without
    street = xixian["fd-sanqiao"]
    with_phone = [ReportFactory(region=street, phone=f"+861390000001{i}") for i in range(2)]
    ReportFactory(region=street, phone="")
    client = APIClient()
    client.force_authenticate(operator)
    # when
    queue = client.get("/api/v1/reports/triage/")
    detail = client.get(f"/api/v1/reports/{with_phone[0].pk}/")
    # then
    assert queue.status_code == detail.status_code == 200
    reads = AuditEntry.objects.filter(action=AuditEntry.Action.PERSONAL_READ)
    assert sorted((r.view, r.object_id) for r in reads) == sorted(
        [("v1:report-triage", str(r.pk)) for r in with_phone]
        + [("v1:report-detail", str(with_phone[0].pk))]
    )
    assert {r.actor_id for r in reads} == {operator.pk}


def test_the_actor_of_a_bearer_token_write_is_the_tokens_user(operator: User) -> None:
    """JWT is authenticated by DRF inside the view, after the middlewares ran: the trail
    reads the user once the answer exists."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens_issue(user=operator).access}")
    response = client.post("/api/v1/auth/logout/", {"all": True})
    assert response.status_code == 204
    entry = _only()
    assert (entry.actor_id, entry.view, entry.status) == (operator.pk, "v1:auth-logout", 204)


def test_plain_reads_leave_no_entry(operator: User) -> None:
    client = APIClient()
    client.force_authenticate(operator)
    assert client.get("/api/v1/me/").status_code == 200
    assert not AuditEntry.objects.exists()


def test_a_failing_audit_write_never_fails_the_request(
    operator: User, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # given: the audit table cannot be written
    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(AuditEntry.objects, "bulk_create", broken)
    client = APIClient()
    client.force_authenticate(operator)
    # when
    response = client.post("/api/v1/auth/logout/", {"all": True})
    # then
    assert response.status_code == 204
    assert "audit entries lost" in caplog.text


def test_commanders_and_admins_may_search_the_trail_operators_may_not(
    xixian: dict[str, Region],
) -> None:
    commander = StaffUserFactory(region=xixian["fengdong"], region__role=Role.COMMANDER)
    admin = StaffUserFactory(region=xixian["xixian"], region__role=Role.ADMIN)
    operator = StaffUserFactory(region=xixian["fengdong"])
    assert commander.has_perm("audit.view_auditentry")
    assert admin.has_perm("audit.view_auditentry")
    assert not operator.has_perm("audit.view_auditentry")
