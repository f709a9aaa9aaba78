"""Triage services: accept (new or existing incident), reject, duplicate; scope; races."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connection

from apps.accounts.models import Role
from apps.accounts.services import membership_grant
from apps.core.errors import ApplicationError
from apps.incidents.models import Incident, IncidentEvent, Report
from apps.incidents.public_status import public_status_for
from apps.incidents.services.reports import report_accept, report_mark_duplicate, report_reject
from apps.regions import geo
from apps.regions.models import Region
from apps.regions.services import regions_load_fixture
from tests.factories.accounts import CitizenFactory, StaffUserFactory
from tests.factories.incidents import (
    CategoryFactory,
    IncidentFactory,
    ReportFactory,
    WaterloggingCategoryFactory,
)


@pytest.fixture
def xixian(db: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, Region]:
    monkeypatch.setattr(geo, "_index", None)
    regions_load_fixture()
    return {region.code: region for region in Region.objects.all()}


@pytest.fixture
def operator(xixian: dict[str, Region]) -> Any:
    """An operator of 沣东新城 (its streets, e.g. 三桥街道, are in scope)."""
    return StaffUserFactory(region=xixian["fengdong"])


@pytest.fixture
def report(xixian: dict[str, Region]) -> Report:
    return ReportFactory(region=xixian["fd-sanqiao"], lat=34.276, lng=108.85, text="井盖丢失\n详情")


@pytest.mark.django_db
def test_accept_creates_an_accepted_incident_linked_to_the_report(
    operator: Any, report: Report
) -> None:
    # when
    accepted = report_accept(report_id=report.pk, by=operator, severity="IV", loop="medium")
    # then
    accepted.refresh_from_db()
    incident = accepted.incident
    assert accepted.status == Report.Status.ACCEPTED
    assert accepted.triaged_by == operator
    assert accepted.triaged_at is not None
    assert incident.status == Incident.Status.ACCEPTED
    assert incident.source == Incident.Source.CITIZEN_REPORT
    assert (incident.severity, incident.loop) == ("IV", "medium")
    assert incident.region == report.region
    assert incident.title.endswith("井盖丢失")
    kinds = list(incident.events.values_list("kind", flat=True))
    assert kinds == [IncidentEvent.Kind.CREATED, IncidentEvent.Kind.REPORT_LINKED]
    assert public_status_for(accepted) == "received"


@pytest.mark.django_db
def test_accept_can_reclassify_and_suggests_severity_from_category_fields(
    operator: Any, xixian: dict[str, Region]
) -> None:
    WaterloggingCategoryFactory()
    report = ReportFactory(
        region=xixian["fd-sanqiao"], category=CategoryFactory(code="O99"), extra={}
    )
    accepted = report_accept(report_id=report.pk, by=operator, category="N02")
    assert accepted.incident.category.code == "N02"
    water = ReportFactory(
        region=xixian["fd-sanqiao"],
        category=WaterloggingCategoryFactory(),
        extra={"waterlogging_depth_cm": 45},
    )
    graded = report_accept(report_id=water.pk, by=operator)
    assert graded.incident.severity == "III"


@pytest.mark.django_db
def test_an_sos_report_becomes_an_sos_priority_incident(
    operator: Any, xixian: dict[str, Region]
) -> None:
    sos = ReportFactory(region=xixian["fd-sanqiao"], is_sos=True)
    accepted = report_accept(report_id=sos.pk, by=operator)
    assert accepted.incident.priority == Incident.Priority.SOS


@pytest.mark.django_db
def test_accept_can_link_to_an_existing_open_incident(operator: Any, report: Report) -> None:
    incident = IncidentFactory(region=report.region, status=Incident.Status.IN_PROGRESS)
    accepted = report_accept(report_id=report.pk, by=operator, incident_id=incident.pk)
    assert accepted.incident == incident
    assert Incident.objects.count() == 1
    assert incident.events.filter(kind="report_linked").count() == 1
    assert public_status_for(accepted) == "in_progress"


@pytest.mark.django_db
def test_a_second_accept_is_refused_as_already_triaged(operator: Any, report: Report) -> None:
    report_accept(report_id=report.pk, by=operator)
    with pytest.raises(ApplicationError) as refused:
        report_accept(report_id=report.pk, by=operator)
    assert refused.value.code == "report_already_triaged"
    assert refused.value.status == 409
    assert Incident.objects.count() == 1


@pytest.mark.django_db
def test_reject_records_the_reason_shown_to_the_citizen(operator: Any, report: Report) -> None:
    rejected = report_reject(report_id=report.pk, by=operator, reason="  非应急事项，请拨12345 ")
    rejected.refresh_from_db()
    assert rejected.status == Report.Status.REJECTED
    assert rejected.rejection_reason == "非应急事项，请拨12345"
    assert rejected.incident is None
    assert public_status_for(rejected) == "rejected"


@pytest.mark.django_db
def test_reject_without_a_reason_is_a_field_error(operator: Any, report: Report) -> None:
    with pytest.raises(ApplicationError) as refused:
        report_reject(report_id=report.pk, by=operator, reason="   ")
    assert refused.value.status == 400
    assert "reason" in refused.value.extra["fields"]
    report.refresh_from_db()
    assert report.status == Report.Status.SUBMITTED


@pytest.mark.django_db
def test_mark_duplicate_links_the_report_to_the_open_incident(
    operator: Any, report: Report
) -> None:
    incident = IncidentFactory(region=report.region, status=Incident.Status.ACCEPTED)
    duplicate = report_mark_duplicate(report_id=report.pk, by=operator, incident_id=incident.pk)
    assert duplicate.status == Report.Status.DUPLICATE
    assert duplicate.incident == incident
    event = incident.events.get(kind="report_linked")
    assert event.data == {"report_id": report.pk, "as": "duplicate", "sos": False}


@pytest.mark.django_db
@pytest.mark.parametrize("status", ["closed", "rejected"])
def test_a_report_cannot_be_linked_to_a_finished_incident(
    operator: Any, report: Report, status: str
) -> None:
    incident = IncidentFactory(region=report.region, status=status)
    with pytest.raises(ApplicationError) as refused:
        report_mark_duplicate(report_id=report.pk, by=operator, incident_id=incident.pk)
    assert refused.value.code == "merge_target_invalid"
    report.refresh_from_db()
    assert report.status == Report.Status.SUBMITTED


@pytest.mark.django_db
def test_an_operator_out_of_scope_gets_not_found_for_the_report_and_the_incident(
    xixian: dict[str, Region], report: Report
) -> None:
    # given: an operator of 沣西新城 and an incident of 沣西
    outsider = StaffUserFactory(region=xixian["fengxi"])
    insider = StaffUserFactory(region=xixian["fengdong"])
    fengxi_incident = IncidentFactory(region=xixian["fx-mawang"])
    # when / then
    with pytest.raises(ApplicationError) as refused:
        report_accept(report_id=report.pk, by=outsider)
    assert (refused.value.code, refused.value.status) == ("report_not_found", 404)
    with pytest.raises(ApplicationError) as refused:
        report_mark_duplicate(report_id=report.pk, by=insider, incident_id=fengxi_incident.pk)
    assert (refused.value.code, refused.value.status) == ("incident_not_found", 404)
    report.refresh_from_db()
    assert report.status == Report.Status.SUBMITTED


@pytest.mark.django_db
def test_a_citizen_or_responder_cannot_triage(xixian: dict[str, Region], report: Report) -> None:
    responder = StaffUserFactory(region=xixian["fengdong"], region__role=Role.RESPONDER)
    for user in (CitizenFactory(), responder):
        with pytest.raises(ApplicationError) as refused:
            report_accept(report_id=report.pk, by=user)
        assert refused.value.status == 403


# --- The race ----------------------------------------------------------------------------


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_two_operators_accepting_one_report_at_once_make_exactly_one_incident(
    xixian: dict[str, Region],
) -> None:
    # given: two operators in scope and one submitted report (all committed)
    first, second = (StaffUserFactory(region=xixian["fengdong"]) for _ in range(2))
    report = ReportFactory(region=xixian["fd-sanqiao"])
    barrier = threading.Barrier(2)
    outcomes: list[str] = []
    lock = threading.Lock()

    def accept(operator: Any) -> None:
        try:
            barrier.wait(timeout=10)
            report_accept(report_id=report.pk, by=operator)
            result = "won"
        except ApplicationError as exc:
            result = exc.code
        finally:
            connection.close()
        with lock:
            outcomes.append(result)

    # when
    threads = [threading.Thread(target=accept, args=(op,)) for op in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    # then
    assert sorted(outcomes) == ["report_already_triaged", "won"]
    assert Incident.objects.count() == 1
    report.refresh_from_db()
    assert report.status == Report.Status.ACCEPTED
    assert report.incident_id == Incident.objects.get().pk
    assert IncidentEvent.objects.filter(kind="report_linked").count() == 1


# --- The liaison ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_liaison_in_scope_may_neither_reject_an_sos_nor_accept_a_report(
    xixian: dict[str, Region],
) -> None:
    # given: a department liaison of 沣东 (staff, in scope) and an SOS press at 三桥
    liaison = StaffUserFactory(region=xixian["fengdong"], region__role=Role.DEPARTMENT_LIAISON)
    sos = ReportFactory(
        region=xixian["fd-sanqiao"], is_sos=True, category=CategoryFactory(code="O99")
    )
    incident = IncidentFactory(region=xixian["fd-sanqiao"], status="accepted")
    # when / then: every triage action is refused as "visible, not yours" (403)
    for attempt in (
        lambda: report_reject(report_id=sos.pk, by=liaison, reason="误触"),
        lambda: report_accept(report_id=sos.pk, by=liaison),
        lambda: report_mark_duplicate(report_id=sos.pk, by=liaison, incident_id=incident.pk),
    ):
        with pytest.raises(ApplicationError) as refused:
            attempt()
        assert (refused.value.code, refused.value.status) == ("permission_denied", 403)
    sos.refresh_from_db()
    assert sos.status == Report.Status.SUBMITTED


@pytest.mark.django_db
def test_an_operator_who_is_a_liaison_elsewhere_triages_only_where_they_operate(
    xixian: dict[str, Region],
) -> None:
    # given: operator of 沣东, liaison of 沣西
    user = StaffUserFactory(region=xixian["fengdong"])
    membership_grant(user=user, region=xixian["fengxi"], role=Role.DEPARTMENT_LIAISON)
    here = ReportFactory(region=xixian["fd-sanqiao"])
    there = ReportFactory(region=xixian["fx-mawang"])
    # then
    assert report_accept(report_id=here.pk, by=user).status == Report.Status.ACCEPTED
    with pytest.raises(ApplicationError) as refused:
        report_reject(report_id=there.pk, by=user, reason="x")
    assert refused.value.status == 403
