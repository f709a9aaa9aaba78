"""alert_to_xml: schema-valid CAP 1.2, in the XSD's order, +08:00, zh-CN (+ en-US)."""

from __future__ import annotations

import re
from dataclasses import replace
from decimal import Decimal
from xml.etree.ElementTree import Element

import defusedxml.ElementTree as SafeET
import pytest

from apps.core.errors import ApplicationError
from apps.early_warnings.cap import build
from apps.early_warnings.cap.build import alert_to_xml, format_number
from apps.early_warnings.cap.errors import CapErrorCode
from apps.early_warnings.cap.mapping import warning_to_alert
from apps.early_warnings.cap.model import CAP_NAMESPACE, Area, Point
from apps.early_warnings.cap.parse import document_problems
from apps.early_warnings.cap.schema import cap_schema
from tests.early_warnings.cap.conftest import make_warning, reference_to

NS = "{" + CAP_NAMESPACE + "}"
DATETIME_PATTERN = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+08:00"


def local(element: Element) -> str:
    return element.tag.removeprefix(NS)


def schema_order(path: str) -> list[str]:
    """Child element names of the element at ``path``, in the order of the XSD's sequence."""
    element = cap_schema().elements["alert"]
    for name in path.split("/")[1:]:
        (element,) = [e for e in element.type.content.iter_elements() if e.local_name == name]
    return [e.local_name for e in element.type.content.iter_elements()]


def assert_in_schema_order(element: Element, path: str) -> None:
    order = schema_order(path)
    positions = [order.index(local(child)) for child in element]
    assert positions == sorted(positions), f"{path}: {[local(c) for c in element]}"


def versions() -> dict[str, bytes]:
    first = make_warning(title_en="Rainstorm Orange Warning for Fengdong")
    update = make_warning(
        identifier="XXEW-2025-0012.2",
        msg_type="update",
        level="red",
        references=(reference_to(first),),
    )
    cancel = make_warning(
        identifier="XXEW-2025-0012.3",
        msg_type="cancel",
        level="red",
        references=(reference_to(first), reference_to(update)),
    )
    return {
        name: alert_to_xml(warning_to_alert(w))
        for name, w in (("alert", first), ("update", update), ("cancel", cancel))
    }


@pytest.mark.parametrize("msg_type", ["alert", "update", "cancel"])
def test_alert_update_and_cancel_validate_against_the_xsd(msg_type: str) -> None:
    data = versions()[msg_type]

    assert document_problems(data) == []
    assert cap_schema().is_valid(SafeET.fromstring(data))
    root = SafeET.fromstring(data)
    assert root.tag == NS + "alert"
    assert root.findtext(NS + "msgType") == msg_type.capitalize()


def test_the_document_is_utf8_with_a_declaration_and_the_cap_default_namespace() -> None:
    data = versions()["alert"]

    assert data.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<alert xmlns="urn:oasis')
    assert "暴雨橙色预警".encode() in data


def test_every_date_time_has_the_shanghai_offset_and_no_fraction() -> None:
    root = SafeET.fromstring(versions()["update"])
    stamps = [root.findtext(NS + "sent")]
    stamps += [e.text for e in root.iter() if local(e) in {"onset", "expires"}]
    references = root.findtext(NS + "references")

    assert len(stamps) == 3  # sent, onset, expires
    for stamp in stamps:
        assert re.fullmatch(DATETIME_PATTERN, stamp or ""), stamp
    assert references == "yjglj@xixianxinqu.gov.cn,XXEW-2025-0012.1,2025-07-15T14:30:05+08:00"


def test_elements_follow_the_xsd_sequence_at_every_level() -> None:
    for data in versions().values():
        root = SafeET.fromstring(data)
        assert_in_schema_order(root, "alert")
        for info in root.findall(NS + "info"):
            assert_in_schema_order(info, "alert/info")
            for area in info.findall(NS + "area"):
                assert_in_schema_order(area, "alert/info/area")
                for geocode in area.findall(NS + "geocode"):
                    assert [local(c) for c in geocode] == ["valueName", "value"]


def test_the_chinese_info_comes_first_and_english_follows_when_given() -> None:
    root = SafeET.fromstring(versions()["alert"])
    infos = root.findall(NS + "info")

    assert [i.findtext(NS + "language") for i in infos] == ["zh-CN", "en-US"]
    assert infos[0].findtext(NS + "event") == "暴雨橙色预警"
    assert infos[1].findtext(NS + "event") == "Rainstorm Orange Warning"
    assert infos[1].findtext(NS + "headline") == "Rainstorm Orange Warning for Fengdong"


def test_without_english_text_there_is_only_the_chinese_info() -> None:
    root = SafeET.fromstring(alert_to_xml(warning_to_alert(make_warning())))

    assert [i.findtext(NS + "language") for i in root.findall(NS + "info")] == ["zh-CN"]


def test_polygons_are_lat_lon_pairs_and_circles_carry_a_radius_in_km() -> None:
    root = SafeET.fromstring(versions()["alert"])
    info = root.find(NS + "info")
    assert info is not None
    first, second = info.findall(NS + "area")

    assert first.findtext(NS + "polygon") == (
        "34.27,108.8 34.27,108.9 34.33,108.9 34.33,108.8 34.27,108.8"
    )
    assert [
        (g.findtext(NS + "valueName"), g.findtext(NS + "value"))
        for g in first.findall(NS + "geocode")
    ] == [("XIXIAN-REGION", "610400-FD"), ("GB/T2260", "611101")]
    assert second.findtext(NS + "circle") == "34.4,108.75 5.0"


def test_numbers_are_written_without_exponents() -> None:
    assert format_number(0.00001) == "0.00001"
    assert format_number(Decimal("1E+3")) == "1000"
    assert format_number(-120.14) == "-120.14"


def test_altitude_and_ceiling_are_written_in_order() -> None:
    alert = warning_to_alert(make_warning())
    area = Area("高空", polygons=alert.infos[0].areas[0].polygons, altitude=100, ceiling=2000)
    info = replace(alert.infos[0], areas=(area,))
    data = alert_to_xml(replace(alert, infos=(info,)))

    assert b"<altitude>100</altitude>\n      <ceiling>2000</ceiling>" in data


def test_an_invalid_output_is_never_returned(monkeypatch: pytest.MonkeyPatch) -> None:
    real = build.alert_element

    def without_sender(alert):  # type: ignore[no-untyped-def]
        root = real(alert)
        root.remove(root.find(NS + "sender"))
        return root

    monkeypatch.setattr(build, "alert_element", without_sender)

    with pytest.raises(ApplicationError) as caught:
        alert_to_xml(warning_to_alert(make_warning()))

    assert caught.value.code == CapErrorCode.CAP_UNREPRESENTABLE
    assert caught.value.extra["problems"][0]["path"] == "/alert"


def test_a_point_order_mistake_is_caught_by_the_model_not_written() -> None:
    # (lon, lat) given as (lat, lon): 108 is not a latitude.
    with pytest.raises(ValueError, match="lat"):
        Point(108.8, 34.27)
