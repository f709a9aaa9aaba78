"""parse_alert: the OASIS examples round-trip; broken or hostile input is refused, listed."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from django.utils import translation

from apps.core.errors import ApplicationError
from apps.early_warnings.cap.build import alert_to_xml
from apps.early_warnings.cap.errors import CapErrorCode
from apps.early_warnings.cap.mapping import warning_to_alert
from apps.early_warnings.cap.model import (
    Category,
    Circle,
    MsgType,
    Point,
    Reference,
    ResponseType,
    Severity,
    ValuePair,
)
from apps.early_warnings.cap.parse import MAX_DEPTH, parse_alert
from tests.early_warnings.cap.conftest import example, make_warning, reference_to

EXAMPLES = ["HomelandAlert", "ThunderstormWarning", "EarthquakeReport", "AmberAlert"]
PDT = timezone(timedelta(hours=-7))

VALID = """<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>T-1</identifier>
  <sender>test@example.org</sender>
  <sent>2025-07-15T14:30:05+08:00</sent>
  <status>Actual</status>
  <msgType>Alert</msgType>
  <scope>Public</scope>
  <info>
    <category>Met</category>
    <event>暴雨橙色预警</event>
    <urgency>Immediate</urgency>
    <severity>Severe</severity>
    <certainty>Likely</certainty>
    <area>
      <areaDesc>沣东新城</areaDesc>
      <polygon>34.27,108.8 34.27,108.9 34.33,108.9 34.27,108.8</polygon>
    </area>
  </info>
</alert>
""".encode()


def refusal(data: bytes, **kwargs: int) -> ApplicationError:
    with pytest.raises(ApplicationError) as caught:
        parse_alert(data, **kwargs)
    return caught.value


def test_a_valid_message_parses() -> None:
    alert = parse_alert(VALID)

    assert alert.identifier == "T-1"
    assert alert.infos[0].areas[0].polygons[0][0] == Point(34.27, 108.8)


@pytest.mark.parametrize("name", EXAMPLES)
def test_each_oasis_example_parses_reserialises_validly_and_reparses_equal(name: str) -> None:
    first = parse_alert(example(name))

    again = parse_alert(alert_to_xml(first))  # alert_to_xml validates its own output

    assert again == first


def test_the_homeland_example_keeps_its_resource_and_parameter() -> None:
    alert = parse_alert(example("HomelandAlert"))
    (info,) = alert.infos

    assert alert.identifier == "43b080713727"
    assert alert.sent == datetime(2003, 4, 2, 14, 39, 1, tzinfo=timezone(timedelta(hours=-5)))
    assert info.language == "en-US"  # absent: the XSD's default
    assert info.categories == (Category.SECURITY,)
    assert info.parameters == (ValuePair("HSAS", "ORANGE"),)
    assert info.resources[0].mime_type == "image/gif"
    assert info.resources[0].uri == "http://www.dhs.gov/dhspublic/getAdvisoryImage"
    assert info.areas[0].area_desc == "U.S. nationwide and interests worldwide"


def test_the_earthquake_example_is_an_update_with_its_reference_and_a_circle() -> None:
    alert = parse_alert(example("EarthquakeReport"))

    assert alert.identifier == "TRI13970876.2"
    assert alert.msg_type is MsgType.UPDATE
    assert alert.references == (
        Reference("trinet@caltech.edu", "TRI13970876.1", datetime(2003, 6, 11, 20, 30, tzinfo=PDT)),
    )
    assert alert.infos[0].areas[0].circles == (Circle(Point(32.9525, -115.5527), 0),)
    assert len(alert.infos[0].parameters) == 5


def test_the_thunderstorm_example_has_its_polygon_and_geocodes() -> None:
    (info,) = parse_alert(example("ThunderstormWarning")).infos
    (area,) = info.areas

    assert info.response_types == (ResponseType.SHELTER,)
    assert info.severity is Severity.SEVERE
    assert info.event_codes == (ValuePair("SAME", "SVR"),)
    assert info.expires == datetime(2003, 6, 17, 16, 0, tzinfo=PDT)
    assert area.polygons[0][0] == Point(38.47, -120.14)
    assert area.polygons[0][0] == area.polygons[0][-1]
    assert len(area.polygons[0]) == 5
    assert [g.value for g in area.geocodes] == ["006109", "006009", "006003"]
    assert {g.value_name for g in area.geocodes} == {"SAME"}


def test_the_amber_example_has_two_infos_in_two_languages() -> None:
    alert = parse_alert(example("AmberAlert"))

    assert alert.source == "SW"
    assert [i.language for i in alert.infos] == ["en-US", "es-US"]
    assert alert.infos[1].event == "Abducción de Niño"
    assert [i.areas[0].geocodes for i in alert.infos] == [(ValuePair("SAME", "006037"),)] * 2


def test_our_own_alerts_round_trip_exactly() -> None:
    first = make_warning(title_en="Rainstorm warning", description_en="Heavy rain.")
    for warning in (
        first,
        make_warning(msg_type="update", identifier="U-2", references=(reference_to(first),)),
        make_warning(msg_type="cancel", identifier="C-3", references=(reference_to(first),)),
        make_warning(is_drill=True, type="sensor", level="blue"),
    ):
        alert = warning_to_alert(warning)
        assert parse_alert(alert_to_xml(alert)) == alert


# --- refusals ---------------------------------------------------------------------------


def test_something_that_is_not_xml_is_refused_with_its_line() -> None:
    error = refusal(b"subject: flood\n\nthis is not xml")

    assert error.code == CapErrorCode.CAP_INVALID
    assert error.status == 422
    (problem,) = error.extra["problems"]
    assert problem["line"] == 1
    assert "not well-formed" in problem["reason"]


def test_a_truncated_document_is_refused() -> None:
    error = refusal(VALID[:200])

    assert "not well-formed" in error.extra["problems"][0]["reason"]


def test_a_missing_required_element_is_named() -> None:
    error = refusal(VALID.replace(b"  <sender>test@example.org</sender>\n", b""))

    (problem,) = error.extra["problems"]
    assert problem["path"] == "/alert"
    assert problem["line"] == 2
    assert "sender" in problem["reason"]


def test_every_wrong_enumeration_value_is_listed_with_line_and_path() -> None:
    data = VALID.replace(b"<severity>Severe</severity>", b"<severity>Orange</severity>").replace(
        b"<status>Actual</status>", b"<status>Real</status>"
    )

    problems = refusal(data).extra["problems"]

    assert [(p["line"], p["path"]) for p in problems] == [
        (6, "/alert/status"),
        (13, "/alert/info/severity"),
    ]
    assert all("must be one of" in p["reason"] for p in problems)


def test_a_utc_z_timestamp_is_refused_by_the_schema_pattern() -> None:
    data = VALID.replace(b"2025-07-15T14:30:05+08:00", b"2025-07-15T06:30:05Z")

    (problem,) = refusal(data).extra["problems"]
    assert problem["path"] == "/alert/sent"


def test_what_the_schema_allows_but_cap_forbids_is_refused_too() -> None:
    data = VALID.replace(b" 34.27,108.8</polygon>", b" 34.33,108.8</polygon>").replace(
        b"<identifier>T-1</identifier>", b"<identifier>T 1</identifier>"
    )

    problems = refusal(data).extra["problems"]

    assert [(p["line"], p["path"]) for p in problems] == [
        (17, "/alert/info[1]/area[1]/polygon[1]"),
        (2, "/alert"),
    ]
    assert "closed" in problems[0]["reason"]
    assert "identifier" in problems[1]["reason"]


def test_a_reference_that_cannot_be_read_is_refused() -> None:
    data = VALID.replace(
        b"<scope>Public</scope>", b"<scope>Public</scope>\n  <references>a,b</references>"
    )

    (problem,) = refusal(data).extra["problems"]
    assert problem["path"] == "/alert/references"


def test_a_billion_laughs_bomb_is_refused_before_any_expansion() -> None:
    # 10 levels of 10 references: expanded, this would be 10**10 "lol"s (30 GB).
    entities = '<!ENTITY lol0 "lol">' + "".join(
        f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 11)
    )
    bomb = f'<?xml version="1.0"?><!DOCTYPE alert [{entities}]><alert>&lol10;</alert>'

    (problem,) = refusal(bomb.encode()).extra["problems"]
    assert "DTDForbidden" in problem["reason"]


def test_an_external_entity_is_refused_without_being_fetched() -> None:
    xxe = (
        b'<?xml version="1.0"?><!DOCTYPE alert [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b"<alert>&x;</alert>"
    )

    (problem,) = refusal(xxe).extra["problems"]
    assert "forbidden" in problem["reason"]


def test_an_external_dtd_is_refused() -> None:
    data = b'<?xml version="1.0"?><!DOCTYPE alert SYSTEM "http://example.org/a.dtd"><alert/>'

    assert "DTDForbidden" in refusal(data).extra["problems"][0]["reason"]


def test_an_undeclared_entity_is_refused_as_malformed() -> None:
    data = VALID.replace(b"<note>", b"").replace(b"T-1", b"T-1&foo;")

    assert "undefined entity" in refusal(data).extra["problems"][0]["reason"]


def test_a_deeply_nested_document_is_refused_while_reading() -> None:
    data = b"<a>" * (MAX_DEPTH + 1) + b"</a>" * (MAX_DEPTH + 1)

    assert "nested deeper" in refusal(data).extra["problems"][0]["reason"]


def test_a_message_over_the_size_limit_is_refused_unread() -> None:
    error = refusal(VALID, max_bytes=len(VALID) - 1)

    assert error.code == CapErrorCode.CAP_TOO_LARGE
    assert error.status == 413
    assert error.extra["limit"] == len(VALID) - 1


def test_the_default_size_limit_refuses_a_two_megabyte_message() -> None:
    big = VALID.replace(b"<event>", b"<event>" + b"x" * (2 * 1024 * 1024))

    assert refusal(big).code == CapErrorCode.CAP_TOO_LARGE


def test_another_root_element_is_refused() -> None:
    data = b'<feed xmlns="http://www.w3.org/2005/Atom"><title>x</title></feed>'

    assert refusal(data).extra["problems"]


def test_text_is_not_accepted_in_place_of_bytes() -> None:
    with pytest.raises(TypeError):
        parse_alert(VALID.decode())  # type: ignore[arg-type]


def test_the_refusal_message_is_translated_for_operators() -> None:
    with translation.override("zh-hans"):
        assert str(refusal(b"x").message) == "该消息不是有效的 CAP 1.2 预警消息。"
