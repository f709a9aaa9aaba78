"""The triage queue's report page (accept / reject / duplicate, candidates shown) and the
phone-call intake: the same services as the API, scoped the same way."""

from __future__ import annotations

import pytest
from django.urls import reverse

from apps.incidents.models import Incident, IncidentEvent, IncidentStatus, Report
from apps.regions.models import RegionKind
from apps.sla.models import ClockStatus, SlaClock, SlaKind
from tests.console.conftest import ZH, client_for, messages_of, region_events
from tests.dispatch.task_support import Scene
from tests.factories.incidents import ReportFactory
from tests.factories.regions import UnitFactory

pytestmark = pytest.mark.django_db


def _report(scene: Scene, **kwargs: object) -> Report:
    values: dict[str, object] = {
        "region": scene.street,
        "category": scene.incident.category,
        "lat": scene.incident.lat,
        "lng": scene.incident.lng,
        "phone": "+8613700002222",
        **kwargs,
    }
    return ReportFactory(**values)


def _triage(report: Report, action: str) -> str:
    return reverse("admin:incidents_report_triage", args=[report.pk, action])


def _triage_clock(report: Report) -> SlaClock:
    from apps.incidents.services.sla import on_reports_submitted

    on_reports_submitted([report])  # as the intake does in its transaction
    return SlaClock.objects.get(subject_type="report", subject_id=report.pk)


def test_the_report_page_shows_the_nearby_duplicate_candidates_and_the_triage_buttons(
    scene: Scene,
) -> None:
    report = _report(scene)

    html = (
        client_for(scene.operator)
        .get(reverse("admin:incidents_report_change", args=[report.pk]), **ZH)
        .content.decode()
    )

    assert f'data-incident-id="{scene.incident.pk}"' in html  # the open incident next door
    for action in ("accept", "duplicate", "reject"):
        assert f'data-action="{action}"' in html
    assert "+8613700002222" in html


def test_accept_creates_the_incident_at_the_chosen_community_and_stops_the_triage_clock(
    scene: Scene,
) -> None:
    community = UnitFactory(parent=scene.street, code="fd-sanqiao-u99", kind=RegionKind.COMMUNITY)
    report = _report(scene)
    clock = _triage_clock(report)
    before = region_events(scene)

    response = client_for(scene.operator).post(
        _triage(report, "accept"),
        {
            "category": report.category.code,
            "severity": "IV",
            "loop": "",
            "community": community.code,
            "confirm": "on",
        },
        **ZH,
    )

    report.refresh_from_db()
    clock.refresh_from_db()
    assert report.status == Report.Status.ACCEPTED
    assert response["Location"] == reverse(
        "admin:incidents_incident_change", args=[report.incident_id]
    )
    incident = Incident.objects.get(pk=report.incident_id)
    assert (incident.region_id, incident.severity) == (community.pk, "IV")
    assert IncidentEvent.objects.filter(
        incident=incident, kind=IncidentEvent.Kind.REPORT_LINKED
    ).exists()
    assert clock.status == ClockStatus.STOPPED
    assert region_events(scene) > before


def test_mark_duplicate_links_the_report_to_the_chosen_candidate(scene: Scene) -> None:
    report = _report(scene)

    client_for(scene.operator).post(
        _triage(report, "duplicate"), {"incident": scene.incident.pk, "confirm": "on"}, **ZH
    )

    report.refresh_from_db()
    assert (report.status, report.incident_id) == (Report.Status.DUPLICATE, scene.incident.pk)
    assert IncidentEvent.objects.filter(
        incident=scene.incident, kind=IncidentEvent.Kind.REPORT_LINKED
    ).exists()


def test_reject_needs_the_reason_the_citizen_will_see(scene: Scene) -> None:
    report = _report(scene)
    client = client_for(scene.operator)

    blank = client.post(_triage(report, "reject"), {"reason": "", "confirm": "on"}, **ZH)
    client.post(_triage(report, "reject"), {"reason": "非应急事项，请拨打12345", "confirm": "on"})

    assert blank.status_code == 200
    assert blank.context["form"].errors
    report.refresh_from_db()
    assert report.status == Report.Status.REJECTED
    assert report.rejection_reason == "非应急事项，请拨打12345"


def test_a_report_triaged_by_someone_else_first_is_a_message_not_an_error(scene: Scene) -> None:
    report = _report(scene, status=Report.Status.REJECTED)

    response = client_for(scene.operator).post(
        _triage(report, "reject"), {"reason": "重复", "confirm": "on"}, **ZH
    )

    assert response.status_code == 200
    assert messages_of(response)  # report_already_triaged, as the service says it


def test_triage_outside_the_scope_and_by_a_liaison_is_refused(
    scene: Scene, liaison: object
) -> None:
    report = _report(scene)

    outsider = client_for(scene.outsider_operator).post(
        _triage(report, "reject"), {"reason": "x", "confirm": "on"}
    )
    reader = client_for(liaison).post(_triage(report, "reject"), {"reason": "x", "confirm": "on"})

    assert outsider.status_code == 302
    assert reader.status_code == 302
    report.refresh_from_db()
    assert report.status == Report.Status.SUBMITTED


def test_a_phone_call_becomes_an_accepted_incident_at_the_street_of_its_point(
    scene: Scene,
) -> None:
    client = client_for(scene.operator)

    form = client.get(reverse("admin:incidents_incident_add"), **ZH)
    response = client.post(
        reverse("admin:incidents_incident_add"),
        {
            "reporter_name": "李女士",
            "reporter_phone": "13900000009",
            "category": scene.incident.category.code,
            "title": "小区门口井盖缺失",
            "description": "",
            "region": "",
            "address": "三桥路1号",
            "lat": "34.277",
            "lng": "108.851",
            "accept": "on",
            "severity": "IV",
            "loop": "",
            "confirm": "on",
        },
        **ZH,
    )

    assert form.status_code == 200
    incident = Incident.objects.get(title="小区门口井盖缺失")
    assert response["Location"] == reverse("admin:incidents_incident_change", args=[incident.pk])
    assert (incident.region_id, incident.status) == (scene.street.pk, IncidentStatus.ACCEPTED)
    assert incident.source == Incident.Source.HOTLINE
    assert incident.created_by_id == scene.operator.pk
    assert SlaClock.objects.filter(
        subject_type="incident", subject_id=incident.pk, kind=SlaKind.DISPATCH
    ).exists()


def test_a_call_without_coordinates_is_placed_at_the_chosen_streets_centre(scene: Scene) -> None:
    client_for(scene.operator).post(
        reverse("admin:incidents_incident_add"),
        {
            "category": scene.incident.category.code,
            "title": "路灯倒伏",
            "region": scene.street.code,
            "confirm": "on",
        },
    )

    incident = Incident.objects.get(title="路灯倒伏")
    assert (incident.lat, incident.lng) == (scene.street.centre_lat, scene.street.centre_lng)
    assert incident.status == IncidentStatus.REPORTED


def test_a_call_from_outside_the_operators_regions_is_refused(scene: Scene) -> None:
    response = client_for(scene.outsider_operator).post(
        reverse("admin:incidents_incident_add"),
        {
            "category": scene.incident.category.code,
            "title": "越界",
            "lat": "34.276",
            "lng": "108.850",
            "confirm": "on",
        },
        **ZH,
    )

    assert response.status_code == 200
    assert messages_of(response)
    assert not Incident.objects.filter(title="越界").exists()


def test_a_liaison_cannot_take_calls(scene: Scene, liaison: object) -> None:
    assert client_for(liaison).get(reverse("admin:incidents_incident_add")).status_code == 403


def _picker(response: object) -> dict[str, object]:
    import html
    import json
    import re

    found = re.search(r'id="xc-pick"[^>]*data-config="([^"]*)"', response.content.decode())  # type: ignore[attr-defined]
    assert found, "the intake page has no location picker"
    return json.loads(html.unescape(found.group(1)))


def test_the_intake_page_has_a_map_picker_with_the_operators_region_guide_and_no_tiles(
    scene: Scene,
) -> None:
    response = client_for(scene.operator).get(reverse("admin:incidents_incident_add"), **ZH)

    assert response.status_code == 200
    config = _picker(response)
    assert config["tiles"] is None  # offline by default: outlines on a plain background
    assert config["regions_url"] == reverse("admin:console_dutydesk_map_data", args=["regions"])
    page = response.content.decode()
    assert "/static/console/intake_map.js" in page
    assert "/static/console/vendor/leaflet/leaflet.js" in page
    assert "<script>" not in page  # nothing inline (CSP)
    assert "img-src 'self' data:;" in response["Content-Security-Policy"] + ";"


def test_with_tiles_configured_the_intake_page_allows_their_images_and_hands_them_over(
    scene: Scene, settings: object
) -> None:
    settings.CONSOLE_MAP_TILES_URL = (
        "https://t{s}.tianditu.gov.cn/vec_w/wmts?x={x}&y={y}&z={z}&tk=k"  # type: ignore[attr-defined]
    )
    settings.CONSOLE_MAP_TILES_SUBDOMAINS = ["0", "1"]  # type: ignore[attr-defined]

    response = client_for(scene.operator).get(reverse("admin:incidents_incident_add"), **ZH)

    assert _picker(response)["tiles"]["url"].startswith("https://t{s}.tianditu.gov.cn/")  # type: ignore[index]
    csp = response["Content-Security-Policy"]
    assert "https://t0.tianditu.gov.cn" in csp
    assert "https://t1.tianditu.gov.cn" in csp
