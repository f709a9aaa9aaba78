"""The dataclasses refuse what CAP cannot carry and normalise what it writes one way."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from apps.early_warnings.cap.model import (
    Alert,
    Area,
    CapValueError,
    Circle,
    Info,
    MsgType,
    Point,
    Reference,
    Scope,
    Severity,
    Status,
)
from tests.early_warnings.cap.conftest import SENDER, SENT

SQUARE = [Point(34.0, 108.0), Point(34.0, 109.0), Point(35.0, 109.0), Point(34.0, 108.0)]


def alert(**overrides: object) -> Alert:
    fields: dict[str, object] = {
        "identifier": "A-1",
        "sender": SENDER,
        "sent": SENT,
        "status": "Actual",
        "msg_type": "Alert",
        "scope": "Public",
    }
    fields.update(overrides)
    return Alert(**fields)  # type: ignore[arg-type]


def info(**overrides: object) -> Info:
    fields: dict[str, object] = {
        "categories": ["Met"],
        "event": "暴雨橙色预警",
        "urgency": "Immediate",
        "severity": "Severe",
        "certainty": "Likely",
    }
    fields.update(overrides)
    return Info(**fields)  # type: ignore[arg-type]


def test_enumerations_and_lists_are_normalised_so_equal_messages_compare_equal() -> None:
    first = alert(infos=[info(areas=[Area("沣东新城", polygons=[SQUARE])])])
    second = alert(infos=(info(areas=(Area("沣东新城", polygons=(tuple(SQUARE),)),)),))

    assert first == second
    assert first.status is Status.ACTUAL
    assert first.msg_type is MsgType.ALERT
    assert first.scope is Scope.PUBLIC
    assert first.infos[0].severity is Severity.SEVERE


def test_an_unknown_enumeration_value_is_refused_with_its_field() -> None:
    with pytest.raises(CapValueError) as caught:
        info(severity="橙色")

    assert caught.value.path == "severity"


def test_a_naive_datetime_is_refused_and_microseconds_are_dropped() -> None:
    with pytest.raises(CapValueError, match="timezone-aware"):
        alert(sent=datetime(2025, 7, 15, 14, 30))  # noqa: DTZ001 - the refused case

    assert alert(sent=SENT.replace(microsecond=123456)).sent == SENT


def test_an_offset_in_seconds_cannot_be_written_and_is_refused() -> None:
    odd = timezone(timedelta(hours=8, seconds=5))
    with pytest.raises(CapValueError, match="whole minutes"):
        alert(sent=SENT.replace(tzinfo=odd))


@pytest.mark.parametrize("identifier", ["A 1", "A,1", "A<1", "A&1", ""])
def test_identifiers_with_spaces_commas_or_restricted_characters_are_refused(
    identifier: str,
) -> None:
    with pytest.raises(CapValueError) as caught:
        alert(identifier=identifier)

    assert caught.value.path == "identifier"


def test_a_reference_is_checked_like_the_alert_it_names() -> None:
    with pytest.raises(CapValueError):
        Reference("a b", "A-1", SENT)


def test_characters_xml_cannot_carry_are_refused_and_line_ends_are_normalised() -> None:
    with pytest.raises(CapValueError, match="U\\+0001"):
        info(description="bad\x01")

    assert info(description="一\r\n二\r三").description == "一\n二\n三"


def test_an_empty_optional_text_reads_as_absent() -> None:
    assert info(headline="").headline is None


def test_a_polygon_must_be_closed_and_have_four_points() -> None:
    with pytest.raises(CapValueError, match="closed"):
        Area("x", polygons=[[*SQUARE[:-1], Point(35.0, 108.0)]])
    with pytest.raises(CapValueError, match="four"):
        Area("x", polygons=[[SQUARE[0], SQUARE[1], SQUARE[0]]])


@pytest.mark.parametrize(("lat", "lon"), [(90.5, 0), (-91, 0), (0, 180.1), (0, -181)])
def test_coordinates_outside_wgs84_are_refused(lat: float, lon: float) -> None:
    with pytest.raises(CapValueError):
        Point(lat, lon)


def test_a_circle_has_a_non_negative_finite_radius() -> None:
    with pytest.raises(CapValueError):
        Circle(Point(34, 108), -1)
    with pytest.raises(CapValueError):
        Circle(Point(34, 108), float("inf"))

    assert Circle(Point(34, 108), 5).radius_km == 5.0


def test_a_ceiling_needs_an_altitude() -> None:
    with pytest.raises(CapValueError, match="altitude"):
        Area("x", ceiling=1000)


def test_an_info_needs_a_category() -> None:
    with pytest.raises(CapValueError, match="category"):
        info(categories=[])


def test_addresses_cannot_hold_a_double_quote() -> None:
    with pytest.raises(CapValueError):
        alert(scope="Private", addresses=['a"b'])
