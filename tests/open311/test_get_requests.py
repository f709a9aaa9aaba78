"""GET Service Requests and GET Service Request: spec shape, filters, statuses, privacy."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.test import Client

from apps.incidents.models import Report
from apps.open311.selectors import RequestFilters, request_list
from tests.factories.incidents import IncidentFactory
from tests.open311 import spec_examples as spec
from tests.open311.conftest import (
    FENGDONG,
    FENGXI,
    JURISDICTION,
    as_json,
    as_xml,
    assert_same_content,
    json_shape,
    link_incident,
    set_report,
    spec_xml_shape,
    url,
    xml_shape,
)

pytestmark = pytest.mark.django_db

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2025, 7, 20, 12, 0, tzinfo=SHANGHAI)
REQUEST_KEYS = set(spec.REQUEST_JSON)

Submit = Callable[..., Report]


@pytest.fixture(autouse=True)
def _now() -> Any:
    with time_machine.travel(NOW, tick=False):
        yield


def submitted_at(submit: Submit, when: datetime, code: str = "N02", **kwargs: Any) -> Report:
    with time_machine.travel(when, tick=False):
        return submit(code, **kwargs)


def ids(data: list[dict[str, Any]]) -> list[str]:
    return [request["service_request_id"] for request in data]


# --- The spec's examples ----------------------------------------------------------------------


def test_requests_xml_has_the_shape_of_the_spec_example(client: Client, submit: Submit) -> None:
    # given: an open and a closed request, as in the spec's example
    open_report = submit("N02", text="路口积水")
    closed_report = submit("A04")
    link_incident(closed_report, status="closed")

    # when: the spec's sample query, with our jurisdiction and this week's dates
    query = (
        spec.REQUESTS_URL.replace(spec.SPEC_JURISDICTION, JURISDICTION)
        .replace("2010-05-24T00:00:00Z", "2025-07-13T00:00:00Z")
        .replace("2010-06-24T00:00:00Z", "2025-07-21T00:00:00Z")
        .replace("&status=open", "")
    )
    root = as_xml(client.get(url(query)))

    # then
    spec_root, spec_shape = spec_xml_shape(spec.REQUESTS_XML)
    assert root.tag == spec_root == "service_requests"
    assert xml_shape(root) == spec_shape
    for request in root.findall("request"):
        assert {child.tag for child in request} == REQUEST_KEYS
    statuses = {r.findtext("service_request_id"): r.findtext("status") for r in root}
    assert statuses == {str(open_report.pk): "open", str(closed_report.pk): "closed"}


def test_requests_json_is_an_array_shaped_like_the_spec_example(
    client: Client, submit: Submit
) -> None:
    # given
    report = submit("N02", extra={"waterlogging_depth_cm": 30})

    # when
    data = as_json(client.get(url("requests.json")))

    # then
    assert json_shape(data) == json_shape(spec.REQUESTS_JSON)
    (request,) = data
    assert request == {
        "service_request_id": str(report.pk),
        "status": "open",
        "status_notes": "Received",
        "service_name": "Urban waterlogging",
        "service_code": "N02",
        "description": None,
        "agency_responsible": "城管 / 水务",
        "service_notice": None,
        "requested_datetime": "2025-07-20T12:00:00+08:00",
        "updated_datetime": "2025-07-20T12:00:00+08:00",
        "expected_datetime": None,
        "address": request["address"],
        "address_id": None,
        "zipcode": None,
        "lat": 34.268,
        "long": 108.812,
        "media_url": None,
    }
    street = report.region
    assert request["address"] == f"{street.name_en or street.name_zh}, " + (
        street.parent.name_en or street.parent.name_zh
    )


def test_a_single_request_is_an_array_of_one_in_both_formats(
    client: Client, submit: Submit
) -> None:
    # given
    report = submit("N02")

    # when: the spec's GET Service Request sample, with our id and jurisdiction
    path = spec.REQUEST_URL.replace("123456", str(report.pk)).replace(
        spec.SPEC_JURISDICTION, JURISDICTION
    )
    data = as_json(client.get(url(path.replace(".xml", ".json"))))
    root = as_xml(client.get(url(path)))

    # then
    assert isinstance(data, list)
    assert len(data) == 1
    assert set(data[0]) == REQUEST_KEYS
    assert root.tag == "service_requests"
    assert [child.tag for child in root] == ["request"]
    assert xml_shape(root) == spec_xml_shape(spec.REQUESTS_XML)[1]


def test_requests_xml_and_json_say_the_same(client: Client, submit: Submit) -> None:
    # given
    report = submit("N02", extra={"vehicles_stalled": True})
    rejected = submit("N07")
    set_report(rejected, status="rejected", rejection_reason="重复上报 <已处理> & 核实")

    # then
    assert_same_content(client, "requests")
    assert_same_content(client, f"requests/{report.pk}")


# --- Status mapping ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("incident_status", "expected"),
    [
        ("reported", "open"),
        ("accepted", "open"),
        ("in_progress", "open"),
        ("resolved", "closed"),
        ("closed", "closed"),
        ("rejected", "closed"),
    ],
)
def test_status_follows_the_public_status_of_the_incident(
    client: Client, submit: Submit, incident_status: str, expected: str
) -> None:
    # given
    report = submit("N02")
    link_incident(report, status=incident_status)

    # when
    (request,) = as_json(client.get(url(f"requests/{report.pk}.json")))
    filtered = as_json(client.get(url(f"requests.json?status={expected}")))

    # then
    assert request["status"] == expected
    assert ids(filtered) == [str(report.pk)]


def test_a_rejected_report_is_closed_with_its_reason(client: Client, submit: Submit) -> None:
    # given
    report = submit("N02")
    set_report(report, status="rejected", rejection_reason="现场核实无积水。")

    # when
    (request,) = as_json(client.get(url(f"requests/{report.pk}.json")))

    # then
    assert request["status"] == "closed"
    assert request["status_notes"] == "现场核实无积水。"


def test_a_duplicate_follows_the_incident_it_duplicates(client: Client, submit: Submit) -> None:
    # given
    report = submit("N02")
    link_incident(report, status="accepted", report_status="duplicate")

    # when
    (request,) = as_json(client.get(url(f"requests/{report.pk}.json")))

    # then
    assert request["status"] == "open"
    assert request["status_notes"] == "Duplicate of a request already being handled."


def test_a_report_on_a_merged_incident_follows_the_surviving_incident(
    client: Client, submit: Submit
) -> None:
    # given: report → incident merged into → incident merged into → closed incident
    report = submit("N02")
    survivor = IncidentFactory(status="closed", region=report.region, category=report.category)
    middle = IncidentFactory(
        status="merged", merged_into=survivor, region=report.region, category=report.category
    )
    link_incident(report, status="merged", merged_into=middle)

    # when
    closed = as_json(client.get(url("requests.json?status=closed")))
    still_open = as_json(client.get(url("requests.json?status=open")))

    # then
    assert ids(closed) == [str(report.pk)]
    assert still_open == []


# --- Filters ------------------------------------------------------------------------------------


def test_service_request_id_lists_several_and_overrides_other_arguments(
    client: Client, submit: Submit
) -> None:
    # given: one of them is too old for the default 90-day window
    old = submitted_at(submit, NOW - timedelta(days=200))
    recent = submit("A04")
    submit("N07")

    # when
    data = as_json(
        client.get(
            url(f"requests.json?service_request_id={old.pk},{recent.pk},999999,abc&status=closed")
        )
    )

    # then
    assert ids(data) == [str(recent.pk), str(old.pk)]


def test_service_code_filters_one_or_several_codes(client: Client, submit: Submit) -> None:
    # given
    n02 = submit("N02")
    a04 = submit("A04")
    submit("N07")

    # then
    assert ids(as_json(client.get(url("requests.json?service_code=N02")))) == [str(n02.pk)]
    both = as_json(client.get(url("requests.json?service_code=N02,A04")))
    assert ids(both) == [str(a04.pk), str(n02.pk)]
    repeated = as_json(client.get(url("requests.json?service_code=N02&service_code=A04")))
    assert ids(repeated) == ids(both)
    assert as_json(client.get(url("requests.json?service_code=001"))) == []


def test_without_dates_the_last_90_days_are_listed(client: Client, submit: Submit) -> None:
    # given
    too_old = submitted_at(submit, NOW - timedelta(days=91))
    inside = submitted_at(submit, NOW - timedelta(days=89))

    # when
    data = as_json(client.get(url("requests.json")))

    # then
    assert ids(data) == [str(inside.pk)]
    assert str(too_old.pk) not in ids(data)


def test_start_and_end_date_bound_the_requested_datetime(client: Client, submit: Submit) -> None:
    # given
    before = submitted_at(submit, datetime(2025, 7, 1, 9, 0, tzinfo=SHANGHAI))
    inside = submitted_at(submit, datetime(2025, 7, 10, 9, 0, tzinfo=SHANGHAI))
    after = submitted_at(submit, datetime(2025, 7, 15, 9, 0, tzinfo=SHANGHAI))

    # when: W3C datetimes in UTC (Z) and with an offset
    utc = as_json(
        client.get(
            url("requests.json?start_date=2025-07-05T00:00:00Z&end_date=2025-07-12T00:00:00Z")
        )
    )
    offset = as_json(
        client.get(
            url("requests.json"),
            {"start_date": "2025-07-10T09:00:00+08:00", "end_date": "2025-07-10T09:00:00+08:00"},
        )
    )
    start_only = as_json(client.get(url("requests.json?start_date=2025-07-12T00:00:00Z")))

    # then
    assert ids(utc) == [str(inside.pk)]
    assert ids(offset) == [str(inside.pk)]
    assert ids(start_only) == [str(after.pk)]
    assert str(before.pk) not in ids(start_only)


def test_an_unencoded_plus_in_an_offset_is_understood(client: Client, submit: Submit) -> None:
    # given
    report = submitted_at(submit, datetime(2025, 7, 10, 9, 0, tzinfo=SHANGHAI))

    # when: "+08:00" typed into a URL arrives as " 08:00"
    data = as_json(client.get(url("requests.json?start_date=2025-07-10T08:00:00+08:00")))

    # then
    assert ids(data) == [str(report.pk)]


def test_status_filters_open_or_closed_or_both(client: Client, submit: Submit) -> None:
    # given
    open_report = submit("N02")
    closed_report = submit("N02")
    set_report(closed_report, status="rejected", rejection_reason="无效")

    # then
    assert ids(as_json(client.get(url("requests.json?status=open")))) == [str(open_report.pk)]
    assert ids(as_json(client.get(url("requests.json?status=closed")))) == [str(closed_report.pk)]
    both = as_json(client.get(url("requests.json?status=open,closed")))
    assert set(ids(both)) == {str(open_report.pk), str(closed_report.pk)}


def test_the_list_is_newest_first_and_capped(submit: Submit, settings: Any) -> None:
    # given
    settings.OPEN311_MAX_REQUESTS = 2
    first = submitted_at(submit, NOW - timedelta(hours=3))
    second = submitted_at(submit, NOW - timedelta(hours=2))
    third = submitted_at(submit, NOW - timedelta(hours=1))

    # when
    rows = request_list(RequestFilters(start=NOW - timedelta(days=1), end=NOW))

    # then
    assert [r.pk for r in rows] == [third.pk, second.pk]
    assert first.pk not in [r.pk for r in rows]


def test_listing_takes_a_fixed_number_of_queries(
    client: Client, submit: Submit, django_assert_max_num_queries: Any
) -> None:
    # given
    for code in ("N02", "A04", "N07", "N02"):
        report = submit(code)
        link_incident(report, status="in_progress")

    # then: no query per row (category, street, incident are joined)
    with django_assert_max_num_queries(2):
        data = as_json(client.get(url("requests.json")))
    assert len(data) == 4


# --- Privacy ------------------------------------------------------------------------------------


def test_no_phone_name_or_exact_position_is_published(
    client: Client, submit: Submit, raw_key: str
) -> None:
    # given: a report through the app and one through Open311, both with a phone
    submit(
        "N02",
        text="我家楼下积水，电话 138 0013 8000",
        phone="13800138000",
        address="沣东新城某小区3号楼2单元502",
        device_id="device-123",
        client_ip="203.0.113.9",
        at=(34.268123, 108.812987),
    )
    client.post(
        url("requests.json"),
        data=(
            f"api_key={raw_key}&service_code=N07&lat={FENGXI[0]}&long={FENGXI[1]}"
            "&first_name=Zhang&last_name=San&email=zhangsan%40example.com&phone=13900139000"
            "&description=big+wind"
        ),
        content_type="application/x-www-form-urlencoded",
    )

    # when
    outputs = [
        client.get(url(path)).content.decode("utf-8") for path in ("requests.json", "requests.xml")
    ]

    # then
    for body in outputs:
        for secret in (
            "13800138000",
            "138 0013 8000",
            "13900139000",
            "Zhang",
            "zhangsan",
            "2单元502",
            "device-123",
            "203.0.113.9",
            "34.268123",
            "108.812987",
            "我家楼下",
        ):
            assert secret not in body
    data = as_json(client.get(url("requests.json")))
    assert {(r["lat"], r["long"]) for r in data} >= {(34.268, 108.813)}


def test_descriptions_are_published_only_when_enabled_and_then_redacted(
    client: Client, submit: Submit, settings: Any
) -> None:
    # given
    report = submit(
        "N02", text="路口积水很深，联系 138-0013-8000 或 a.b@example.com\x01", phone="13800138000"
    )

    # when
    hidden = as_json(client.get(url(f"requests/{report.pk}.json")))[0]["description"]
    settings.OPEN311_PUBLISH_DESCRIPTIONS = True
    shown = as_json(client.get(url(f"requests/{report.pk}.json")))[0]["description"]
    root = as_xml(client.get(url(f"requests/{report.pk}.xml")))  # still well-formed

    # then
    assert hidden is None
    assert shown.startswith("路口积水很深，联系 *** 或 ***")
    assert "8000" not in shown
    assert "example.com" not in shown
    assert root.findtext("request/description", "").startswith("路口积水很深")


def test_sos_alarms_are_never_published(client: Client, submit: Submit) -> None:
    # given
    sos = submit("O99", is_sos=True, at=FENGDONG)

    # when
    listed = as_json(client.get(url("requests.json")))
    single = client.get(url(f"requests/{sos.pk}.json"))

    # then
    assert str(sos.pk) not in ids(listed)
    assert single.status_code == 404
