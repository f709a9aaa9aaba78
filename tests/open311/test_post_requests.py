"""POST Service Request: the spec's example request, adapted, and every refusal."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from apps.incidents.models import Report
from apps.open311.models import ApiKey
from tests.open311 import spec_examples as spec
from tests.open311.conftest import (
    FENGDONG,
    JURISDICTION,
    as_json,
    as_xml,
    json_shape,
    spec_xml_shape,
    url,
    xml_shape,
)

pytestmark = pytest.mark.django_db


def example_body(raw_key: str, **replace: str) -> str:
    """The spec's example body with our key, jurisdiction, service, point and fields."""
    body = (
        spec.POST_BODY.replace("api_key=xyz", f"api_key={raw_key}")
        .replace("jurisdiction_id=city.gov", f"jurisdiction_id={JURISDICTION}")
        .replace("service_code=001", "service_code=N02")
        .replace("lat=37.76524078", f"lat={FENGDONG[0]}")
        .replace("long=-122.4212043", f"long={FENGDONG[1]}")
        .replace("phone=111111111", "phone=13800138000")
        .replace(
            "attribute[WHISPAWN]=123456&attribute[WHISDORN]=COISL001",
            "attribute[waterlogging_depth_cm]=30&attribute[vehicles_stalled]=true",
        )
    )
    for old, new in replace.items():
        body = body.replace(old, new)
    return body


def post(client: Client, body: str, fmt: str = "json", **extra: Any) -> Any:
    return client.post(
        url(f"requests.{fmt}"), data=body, content_type=spec.POST_CONTENT_TYPE, **extra
    )


def errors_of(response: Any) -> list[dict[str, Any]]:
    data = as_json(response)
    assert isinstance(data, list)
    for error in data:
        assert set(error) == {"code", "description"}
        assert error["code"] == response.status_code
    return data


# --- The example request -------------------------------------------------------------------


def test_example_request_in_xml_answers_with_the_spec_shape(
    client: Client, xixian: Any, raw_key: str
) -> None:
    # when: the spec's example POST, adapted to 西咸新区 and 城市内涝
    response = post(client, example_body(raw_key), fmt="xml")

    # then
    assert response.status_code == 200
    root = as_xml(response)
    spec_root, spec_shape = spec_xml_shape(spec.POST_RESPONSE_XML)
    assert root.tag == spec_root == "service_requests"
    assert xml_shape(root) == spec_shape
    request = root.find("request")
    assert request is not None
    report = Report.objects.get()
    assert request.findtext("service_request_id") == str(report.pk)
    assert request.findtext("service_notice")
    assert request.find("account_id") is not None
    assert request.findtext("account_id") == ""  # <account_id/>


def test_example_request_in_json_answers_with_an_array_of_one(
    client: Client, xixian: Any, raw_key: str
) -> None:
    # when
    response = post(client, example_body(raw_key))

    # then
    assert response.status_code == 200
    data = as_json(response)
    assert json_shape(data) == json_shape(spec.POST_RESPONSE_JSON)
    (created,) = data
    report = Report.objects.get()
    assert created["service_request_id"] == str(report.pk)
    assert created["account_id"] is None
    assert "110" in created["service_notice"]


def test_the_request_becomes_a_citizen_report_in_the_triage_queue(
    client: Client, xixian: Any, api_key: tuple[ApiKey, str]
) -> None:
    # when
    post(client, example_body(api_key[1]), REMOTE_ADDR="203.0.113.7")

    # then: the same report the app would have made, from the open311 channel
    report = Report.objects.get()
    assert report.channel == Report.Channel.OPEN311
    assert report.status == Report.Status.SUBMITTED
    assert report.category.code == "N02"
    assert (report.lat, report.lng) == FENGDONG
    assert report.extra == {"waterlogging_depth_cm": 30, "vehicles_stalled": True}
    assert report.text == (
        "A large sinkhole is destroying the street\n\n"
        "http://farm3.static.flickr.com/2002/2212426634_5ed477a060.jpg"
    )
    assert report.address == "1234 5th street"
    assert report.phone == "+8613800138000"
    assert report.device_id == "tt222111"
    assert report.client_ip == "203.0.113.7"
    assert report.reporter is None
    assert report.region.level == "street"
    # e-mail and names are not kept anywhere on the report
    stored = " ".join(str(v) for v in Report.objects.values().get().values())
    assert "smit333" not in stored
    assert "smith" not in stored
    # the key's use is recorded
    api_key[0].refresh_from_db()
    assert api_key[0].last_used_at is not None


def test_the_created_request_can_be_read_back_as_open(
    client: Client, xixian: Any, raw_key: str
) -> None:
    # given
    (created,) = as_json(post(client, example_body(raw_key)))

    # when
    data = as_json(client.get(url(f"requests/{created['service_request_id']}.json")))

    # then
    (request,) = data
    assert request["service_request_id"] == created["service_request_id"]
    assert request["status"] == "open"
    assert request["service_code"] == "N02"


def test_jurisdiction_and_optional_arguments_may_be_left_out(
    client: Client, xixian: Any, raw_key: str
) -> None:
    # given: only what the spec requires (empty optional arguments count as missing)
    body = f"api_key={raw_key}&service_code=N07&lat=34.30&long=108.75&email=&phone="

    # when
    response = post(client, body)

    # then
    assert response.status_code == 200
    assert Report.objects.get().category.code == "N07"


# --- api_key ---------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_a_missing_api_key_is_refused_with_403(client: Client, xixian: Any, fmt: str) -> None:
    # when
    response = post(client, example_body("").replace("api_key=&", ""), fmt=fmt)

    # then
    assert response.status_code == 403
    if fmt == "json":
        (error,) = errors_of(response)
        assert "api_key" in error["description"]
    else:
        root = as_xml(response)
        assert xml_shape(root) == spec_xml_shape(spec.ERRORS_XML)[1]
        assert root.findtext("error/code") == "403"
    assert not Report.objects.exists()


def test_an_unknown_api_key_is_refused_with_403(client: Client, xixian: Any) -> None:
    # when: the spec's own example key
    response = post(client, example_body("xyz"))

    # then
    assert response.status_code == 403
    assert json_shape(as_json(response)) == json_shape(spec.ERRORS_JSON)
    assert not Report.objects.exists()


def test_a_revoked_api_key_is_refused_with_403(
    client: Client, xixian: Any, api_key: tuple[ApiKey, str]
) -> None:
    # given
    ApiKey.objects.filter(pk=api_key[0].pk).update(is_active=False)

    # when
    response = post(client, example_body(api_key[1]))

    # then
    assert response.status_code == 403
    assert not Report.objects.exists()


def test_only_the_hash_of_a_key_is_stored(api_key: tuple[ApiKey, str]) -> None:
    key, raw = api_key
    assert raw not in {key.key_hash, key.prefix, key.name}
    assert raw.startswith(key.prefix)
    assert len(key.key_hash) == 64


# --- service_code, location, attributes ------------------------------------------------------


def test_an_unknown_service_code_is_404(client: Client, xixian: Any, raw_key: str) -> None:
    # when
    response = post(client, example_body(raw_key, **{"service_code=N02": "service_code=001"}))

    # then
    assert response.status_code == 404
    (error,) = errors_of(response)
    assert "001" in error["description"]
    assert not Report.objects.exists()


def test_a_category_citizens_cannot_report_is_404(
    client: Client, xixian: Any, raw_key: str
) -> None:
    # when: N12 is raised by hazard-point sensors only
    response = post(client, example_body(raw_key, **{"service_code=N02": "service_code=N12"}))

    # then
    assert response.status_code == 404


def test_missing_service_code_and_location_are_both_reported(
    client: Client, xixian: Any, raw_key: str
) -> None:
    # when
    response = post(client, f"api_key={raw_key}&description=water")

    # then
    assert response.status_code == 400
    descriptions = [e["description"] for e in errors_of(response)]
    assert len(descriptions) == 2
    assert "service_code" in descriptions[0]
    assert "lat" in descriptions[1]


def test_an_address_without_coordinates_is_refused(
    client: Client, xixian: Any, raw_key: str
) -> None:
    # given: the spec allows address_string instead of lat/long; we cannot geocode
    body = f"api_key={raw_key}&service_code=N02&address_string=%E6%B2%A3%E4%B8%9C%E6%96%B0%E5%9F%8E"

    # when
    response = post(client, body)

    # then
    assert response.status_code == 400
    (error,) = errors_of(response)
    assert "lat and long are required" in error["description"]


def test_a_point_outside_the_new_area_is_refused(client: Client, xixian: Any, raw_key: str) -> None:
    # when: the spec's own San Francisco coordinates
    response = post(
        client,
        example_body(raw_key, **{f"lat={FENGDONG[0]}": "lat=37.76524078"}).replace(
            f"long={FENGDONG[1]}", "long=-122.4212043"
        ),
    )

    # then
    assert response.status_code == 400
    (error,) = errors_of(response)
    assert "outside" in error["description"]
    assert not Report.objects.exists()


@pytest.mark.parametrize(
    ("attribute", "problem"),
    [
        ("attribute[waterlogging_depth_cm]=deep", "attribute[waterlogging_depth_cm]"),
        ("attribute[waterlogging_depth_cm]=-5", "attribute[waterlogging_depth_cm]"),
        ("attribute[WHISPAWN]=123456", "attribute[WHISPAWN]"),
    ],
)
def test_invalid_attributes_are_refused_naming_the_attribute(
    client: Client, xixian: Any, raw_key: str, attribute: str, problem: str
) -> None:
    # given
    body = f"api_key={raw_key}&service_code=N02&lat={FENGDONG[0]}&long={FENGDONG[1]}&{attribute}"

    # when
    response = post(client, body)

    # then
    assert response.status_code == 400
    (error,) = errors_of(response)
    assert error["description"].startswith(f"{problem}: ")
    assert not Report.objects.exists()


def test_an_invalid_phone_is_refused(client: Client, xixian: Any, raw_key: str) -> None:
    # when: the spec's example phone is not a mainland mobile number
    response = post(client, example_body(raw_key, **{"phone=13800138000": "phone=111111111"}))

    # then
    assert response.status_code == 400
    (error,) = errors_of(response)
    assert error["description"].startswith("phone: ")


def test_a_description_over_4000_characters_is_refused(
    client: Client, xixian: Any, raw_key: str
) -> None:
    # when
    body = f"api_key={raw_key}&service_code=N07&lat=34.30&long=108.75&description={'x' * 4001}"
    response = post(client, body)

    # then
    assert response.status_code == 400
    assert "description" in errors_of(response)[0]["description"]


def test_another_jurisdiction_is_404(client: Client, xixian: Any, raw_key: str) -> None:
    # when: the spec's example jurisdiction
    body = example_body(raw_key, **{f"jurisdiction_id={JURISDICTION}": "jurisdiction_id=city.gov"})
    response = post(client, body)

    # then
    assert response.status_code == 404
    (error,) = errors_of(response)
    assert "city.gov" in error["description"]
    assert not Report.objects.exists()


# --- rate limit ----------------------------------------------------------------------------------


def test_posting_too_fast_from_one_address_is_refused_with_429(
    client: Client, xixian: Any, raw_key: str, settings: Any
) -> None:
    # given
    settings.OPEN311_POST_RATE = "2/m"
    body = f"api_key={raw_key}&service_code=N07&lat=34.30&long=108.75"

    # when
    statuses = [post(client, body, REMOTE_ADDR="198.51.100.1").status_code for _ in range(3)]
    other = post(client, body, REMOTE_ADDR="198.51.100.2")

    # then
    assert statuses == [200, 200, 429]
    assert other.status_code == 200
    refused = post(client, body, REMOTE_ADDR="198.51.100.1")
    assert int(refused["Retry-After"]) > 0
    (error,) = errors_of(refused)
    assert error["code"] == 429
    assert Report.objects.count() == 3
