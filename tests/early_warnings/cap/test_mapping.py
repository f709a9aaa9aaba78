"""The vocabulary mapping: every type and level maps, and our output maps back."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, timedelta

import pytest

from apps.core.errors import ApplicationError
from apps.early_warnings.cap.build import alert_to_xml
from apps.early_warnings.cap.errors import CapErrorCode
from apps.early_warnings.cap.mapping import (
    LEVELS,
    SHANGHAI,
    WARNING_TYPES,
    alert_to_received,
    categories_for,
    certainty_for,
    event_for,
    level_from_info,
    ring_from_lonlat,
    severity_for,
    type_from_info,
    urgency_for,
    warning_to_alert,
)
from apps.early_warnings.cap.model import (
    Category,
    Certainty,
    Info,
    MsgType,
    Point,
    ResponseType,
    Scope,
    Severity,
    Status,
    Urgency,
    ValuePair,
)
from apps.early_warnings.cap.parse import parse_alert
from tests.early_warnings.cap.conftest import (
    FENGDONG_LONLAT,
    SENT,
    example,
    make_warning,
    reference_to,
)

TYPES = [
    "rainstorm",
    "snowstorm",
    "cold_wave",
    "gale",
    "sandstorm",
    "heat",
    "drought",
    "lightning",
    "hail",
    "frost",
    "fog",
    "haze",
    "road_icing",
    "flood",
    "waterlogging",
    "geological",
    "lifeline",
    "public_health",
    "production_safety",
    "sensor",
    "other",
]
LEVEL_CODES = ["blue", "yellow", "orange", "red"]


def info_of(event: str, severity: str = "Severe", **fields: object) -> Info:
    return Info(
        categories=["Met"],
        event=event,
        urgency="Expected",
        severity=severity,
        certainty="Likely",
        **fields,  # type: ignore[arg-type]
    )


def test_the_tables_hold_exactly_our_type_and_level_codes() -> None:
    assert list(WARNING_TYPES) == TYPES
    assert list(LEVELS) == LEVEL_CODES


@pytest.mark.parametrize("type_code", TYPES)
def test_every_type_has_cap_categories_and_an_event_in_chinese_and_english(type_code: str) -> None:
    categories = categories_for(type_code)

    assert categories
    assert all(isinstance(c, Category) for c in categories)
    assert event_for(type_code, "orange").endswith("橙色预警")
    assert event_for(type_code, "orange", english=True).endswith(" Orange Warning")


def test_events_read_as_the_chinese_name_colour_and_warning() -> None:
    assert event_for("rainstorm", "orange") == "暴雨橙色预警"
    assert event_for("road_icing", "yellow") == "道路结冰黄色预警"
    assert event_for("haze", "red", english=True) == "Haze Red Warning"
    assert categories_for("geological") == (Category.GEO,)
    assert categories_for("public_health") == (Category.HEALTH,)
    assert categories_for("production_safety") == (Category.SAFETY,)
    assert categories_for("lifeline") == (Category.INFRA,)


@pytest.mark.parametrize(
    ("level", "severity", "urgency"),
    [
        ("blue", Severity.MINOR, Urgency.FUTURE),
        ("yellow", Severity.MODERATE, Urgency.EXPECTED),
        ("orange", Severity.SEVERE, Urgency.IMMEDIATE),
        ("red", Severity.EXTREME, Urgency.IMMEDIATE),
    ],
)
def test_every_level_has_a_severity_and_an_urgency(
    level: str, severity: Severity, urgency: Urgency
) -> None:
    assert severity_for(level) is severity
    assert urgency_for(level, sent=SENT, onset=SENT) is urgency
    assert urgency_for(level, sent=SENT) is urgency


def test_urgency_drops_when_the_onset_is_hours_away_and_never_rises() -> None:
    in_3h, in_12h = SENT + timedelta(hours=3), SENT + timedelta(hours=12)

    assert urgency_for("red", sent=SENT, onset=SENT + timedelta(minutes=30)) is Urgency.IMMEDIATE
    assert urgency_for("red", sent=SENT, onset=in_3h) is Urgency.EXPECTED
    assert urgency_for("red", sent=SENT, onset=in_12h) is Urgency.FUTURE
    assert urgency_for("yellow", sent=SENT, onset=in_12h) is Urgency.FUTURE
    assert urgency_for("blue", sent=SENT, onset=SENT) is Urgency.FUTURE


def test_certainty_is_observed_for_sensor_readings_and_likely_for_forecasts() -> None:
    assert certainty_for("rainstorm") is Certainty.LIKELY
    assert certainty_for("sensor") is Certainty.OBSERVED
    assert certainty_for("flood", observed=True) is Certainty.OBSERVED


def test_a_published_alert_carries_the_mapped_fields() -> None:
    alert = warning_to_alert(make_warning(onset=SENT + timedelta(hours=2)))
    (info,) = alert.infos

    assert (alert.status, alert.msg_type, alert.scope) == (
        Status.ACTUAL,
        MsgType.ALERT,
        Scope.PUBLIC,
    )
    assert alert.sent.utcoffset() == timedelta(hours=8)
    assert info.language == "zh-CN"
    assert info.categories == (Category.MET,)
    assert info.event == "暴雨橙色预警"
    assert (info.urgency, info.severity, info.certainty) == (
        Urgency.EXPECTED,
        Severity.SEVERE,
        Certainty.LIKELY,
    )
    assert info.response_types == (ResponseType.PREPARE,)
    assert info.event_codes == (
        ValuePair("XIXIAN-EW-TYPE", "rainstorm"),
        ValuePair("XIXIAN-EW-LEVEL", "orange"),
    )
    assert info.headline == "西咸新区气象台发布暴雨橙色预警"
    assert info.sender_name == "西咸新区应急管理局"
    assert [a.area_desc for a in info.areas] == ["沣东新城", "秦汉新城渭河沿岸"]
    assert info.areas[0].geocodes == (
        ValuePair("XIXIAN-REGION", "610400-FD"),
        ValuePair("GB/T2260", "611101"),
    )


def test_a_drill_is_an_exercise_and_a_cancel_is_all_clear() -> None:
    first = make_warning()
    drill = warning_to_alert(make_warning(is_drill=True))
    cancel = warning_to_alert(
        make_warning(msg_type="cancel", identifier="C-2", references=(reference_to(first),))
    )

    assert drill.status is Status.EXERCISE
    assert drill.note
    assert cancel.msg_type is MsgType.CANCEL
    assert cancel.references == (reference_to(first),)
    assert cancel.infos[0].response_types == (ResponseType.ALL_CLEAR,)
    assert cancel.infos[0].urgency is Urgency.PAST


def test_times_given_in_another_zone_are_published_in_shanghai_time() -> None:
    alert = warning_to_alert(make_warning(sent=SENT.astimezone(UTC)))

    assert b"<sent>2025-07-15T14:30:05+08:00</sent>" in alert_to_xml(alert)


@pytest.mark.parametrize(
    ("overrides", "path"),
    [
        ({"type": "tsunami"}, "type"),
        ({"level": "purple"}, "level"),
        ({"msg_type": "ack"}, "msg_type"),
        ({"msg_type": "update"}, "references"),
        ({"sent": SENT.replace(tzinfo=None)}, "datetime"),
        ({"description": "bad\x00"}, "description"),
    ],
)
def test_a_warning_cap_cannot_express_is_refused_with_the_field(
    overrides: dict[str, object], path: str
) -> None:
    with pytest.raises(ApplicationError) as caught:
        warning_to_alert(make_warning(**overrides))

    assert caught.value.code == CapErrorCode.CAP_UNREPRESENTABLE
    assert caught.value.extra["problems"][0]["path"] == path


def test_a_lon_lat_ring_is_swapped_to_lat_lon_and_closed() -> None:
    ring = ring_from_lonlat(FENGDONG_LONLAT)

    assert ring[0] == Point(lat=34.27, lon=108.80)
    assert ring[0] == ring[-1]
    assert len(ring) == len(FENGDONG_LONLAT) + 1
    assert ring_from_lonlat([*FENGDONG_LONLAT, FENGDONG_LONLAT[0]]) == ring


# --- the reverse direction --------------------------------------------------------------


@pytest.mark.parametrize("type_code", TYPES)
@pytest.mark.parametrize("level", LEVEL_CODES)
def test_our_own_output_maps_back_to_its_type_and_level(type_code: str, level: str) -> None:
    data = alert_to_xml(warning_to_alert(make_warning(type=type_code, level=level)))

    received = alert_to_received(parse_alert(data), raw_xml=data)

    assert (received.type, received.level) == (type_code, level)
    assert received.notes == ()


@pytest.mark.parametrize("type_code", [t for t in TYPES if t != "other"])
@pytest.mark.parametrize("level", LEVEL_CODES)
def test_without_our_event_codes_the_event_text_and_severity_still_map_back(
    type_code: str, level: str
) -> None:
    (info,) = warning_to_alert(make_warning(type=type_code, level=level)).infos
    foreign = replace(info, event_codes=(ValuePair("SAME", "XYZ"),))

    assert type_from_info(foreign)[0] == type_code
    assert level_from_info(foreign)[0] == level


def test_the_other_type_reads_back_as_other_with_a_note_without_codes() -> None:
    (info,) = warning_to_alert(make_warning(type="other", title="突发事件预警")).infos
    found, notes = type_from_info(replace(info, event_codes=()))

    assert found == "other"
    assert notes


def test_an_unknown_type_code_falls_back_to_the_text_with_notes() -> None:
    info = info_of("暴雪黄色预警", event_codes=[ValuePair("XIXIAN-EW-TYPE", "tsunami")])

    found, notes = type_from_info(info)

    assert found == "snowstorm"
    assert len(notes) == 2


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        ("SEVERE THUNDERSTORM", "lightning"),
        ("Flash Flood Warning", "flood"),
        ("Urban flooding advisory", "waterlogging"),
        ("Dense Fog Advisory", "fog"),
        ("Wheat harvest notice", "other"),  # "heat" only as a whole word
        ("沙尘暴蓝色预警", "sandstorm"),
        ("地质灾害气象风险预警", "geological"),
        ("Earthquake", "other"),
    ],
)
def test_keywords_match_the_longest_name_and_latin_words_whole(event: str, expected: str) -> None:
    assert type_from_info(info_of(event))[0] == expected


@pytest.mark.parametrize(
    ("severity", "event", "level", "noted"),
    [
        ("Extreme", "x", "red", False),
        ("Minor", "x", "blue", False),
        ("Unknown", "大风红色预警", "red", True),
        ("Unknown", "Gale Blue Warning", "blue", True),
        ("Unknown", "Something", "yellow", True),
    ],
)
def test_the_level_comes_from_severity_else_a_colour_word_else_yellow(
    severity: str, event: str, level: str, noted: bool
) -> None:
    found, notes = level_from_info(info_of(event, severity=severity))

    assert found == level
    assert bool(notes) is noted


def test_an_unknown_level_code_falls_back_to_severity_with_a_note() -> None:
    info = info_of("x", severity="Moderate", event_codes=[ValuePair("XIXIAN-EW-LEVEL", "pink")])

    assert level_from_info(info) == ("yellow", [level_from_info(info)[1][0]])


def test_a_received_warning_holds_what_the_importer_stores() -> None:
    first = make_warning()
    warning = make_warning(
        msg_type="update", identifier="U-2", references=(reference_to(first),), level="red"
    )
    data = alert_to_xml(warning_to_alert(warning))

    received = alert_to_received(parse_alert(data), raw_xml=data)

    assert (received.sender, received.identifier, received.msg_type) == (
        warning.sender,
        "U-2",
        "update",
    )
    assert received.sent == SENT
    assert received.sent.tzinfo == SHANGHAI
    assert received.references == (reference_to(first),)
    assert received.is_actual
    assert received.title == warning.title
    assert received.description == warning.description
    assert received.instruction == warning.instruction
    assert (received.onset, received.expires) == (warning.onset, warning.expires)
    assert received.region_codes == ("610400-FD", "610400-QH")
    assert received.admin_codes == ("611101",)
    assert received.polygons == warning.areas[0].polygons
    assert received.circles == warning.areas[1].circles
    assert received.area_descs == ("沣东新城", "秦汉新城渭河沿岸")
    assert received.raw_xml == data


def test_the_chinese_info_is_preferred_when_a_message_has_several() -> None:
    warning = make_warning(title_en="Rainstorm warning")
    alert = warning_to_alert(warning)
    english_first = replace(alert, infos=tuple(reversed(alert.infos)))

    assert alert_to_received(english_first).title == warning.title


@pytest.mark.parametrize(
    ("name", "type_code", "level"),
    [
        ("ThunderstormWarning", "lightning", "orange"),
        ("EarthquakeReport", "other", "blue"),
        ("HomelandAlert", "other", "orange"),
        ("AmberAlert", "other", "orange"),
    ],
)
def test_the_oasis_examples_import_without_a_crash(name: str, type_code: str, level: str) -> None:
    data = example(name)

    received = alert_to_received(parse_alert(data), raw_xml=data)

    assert (received.type, received.level) == (type_code, level)
    assert received.notes  # inferred, not coded: the operator sees how
    assert received.sent.utcoffset() == timedelta(hours=8)


def test_a_cancel_without_info_imports_as_other_blue_with_a_note() -> None:
    alert = replace(
        warning_to_alert(
            make_warning(
                msg_type="cancel", identifier="C-1", references=(reference_to(make_warning()),)
            )
        ),
        infos=(),
    )

    received = alert_to_received(alert)

    assert (received.msg_type, received.type, received.level) == ("cancel", "other", "blue")
    assert received.notes
    assert received.references
