"""Our warning vocabulary ↔ CAP 1.2 (the tables and their reasons: ``docs/cap.md``).

Export: :func:`warning_to_alert` turns one published version of a warning, described by
:class:`WarningData` (``apps.early_warnings.cap_adapter`` adapts the model to it), into an
:class:`~apps.early_warnings.cap.model.Alert`. Import: :func:`alert_to_received` turns a
parsed upstream alert into :class:`ReceivedWarning`, what the importer stores. Both are
pure: no database, no clock (``sent`` is given), no network.

Import never fails on vocabulary: an unknown type reads as ``other``, an unknown or
``Unknown`` severity as the nearest level, each with a note in ``ReceivedWarning.notes``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.utils.translation import gettext as _

from apps.early_warnings.cap.errors import Problem, cap_unrepresentable
from apps.early_warnings.cap.model import (
    Alert,
    Area,
    CapValueError,
    Category,
    Certainty,
    Circle,
    Info,
    MsgType,
    Point,
    Polygon,
    Reference,
    ResponseType,
    Scope,
    Severity,
    Status,
    Urgency,
    ValuePair,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
TYPE_CODE_NAME = "XIXIAN-EW-TYPE"  # eventCode valueName: our type code
LEVEL_CODE_NAME = "XIXIAN-EW-LEVEL"  # eventCode valueName: our level code
REGION_GEOCODE_NAME = "XIXIAN-REGION"  # geocode valueName: our region code (apps.regions)
ADMIN_GEOCODE_NAME = "GB/T2260"  # geocode valueName: national administrative division code
LANGUAGE_ZH = "zh-CN"
LANGUAGE_EN = "en-US"
DRILL_NOTE = "演练 Exercise"

OTHER = "other"


@dataclass(frozen=True)
class WarningType:
    code: str
    name_zh: str  # as the type is called in our UI
    name_en: str
    categories: tuple[Category, ...]
    event_zh: str  # the stem of the CAP event: event_zh + level colour + "预警"
    keywords: tuple[str, ...] = ()  # import: matched in event and headline texts


_M, _G, _S, _H = Category.MET, Category.GEO, Category.SAFETY, Category.HEALTH

WARNING_TYPES: dict[str, WarningType] = {
    t.code: t
    for t in (
        WarningType("rainstorm", "暴雨", "Rainstorm", (_M,), "暴雨", ("heavy rain", "rainstorm")),
        WarningType("snowstorm", "暴雪", "Snowstorm", (_M,), "暴雪", ("snowstorm", "blizzard")),
        WarningType("cold_wave", "寒潮", "Cold Wave", (_M,), "寒潮", ("cold wave",)),
        WarningType(
            "gale", "大风", "Gale", (_M,), "大风", ("台风", "gale", "high wind", "strong wind")
        ),
        WarningType(
            "sandstorm", "沙尘暴", "Sandstorm", (_M,), "沙尘暴", ("沙尘", "sandstorm", "dust storm")
        ),
        WarningType("heat", "高温", "Heat", (_M,), "高温", ("heat", "heat wave")),
        WarningType("drought", "干旱", "Drought", (_M,), "干旱", ("drought",)),
        WarningType(
            "lightning", "雷电", "Lightning", (_M,), "雷电", ("雷暴", "lightning", "thunderstorm")
        ),
        WarningType("hail", "冰雹", "Hail", (_M,), "冰雹", ("hail",)),
        WarningType("frost", "霜冻", "Frost", (_M,), "霜冻", ("frost",)),
        WarningType("fog", "大雾", "Fog", (_M,), "大雾", ("浓雾", "fog", "dense fog")),
        WarningType("haze", "霾", "Haze", (_M, Category.ENV), "霾", ("haze", "smog")),
        WarningType(
            "road_icing",
            "道路结冰",
            "Road Icing",
            (_M, Category.TRANSPORT),
            "道路结冰",
            ("结冰", "road icing", "icy road"),
        ),
        WarningType("flood", "洪水", "Flood", (_M,), "洪水", ("洪涝", "flood", "flash flood")),
        WarningType(
            "waterlogging",
            "内涝",
            "Waterlogging",
            (_M, Category.INFRA),
            "内涝",
            ("城市内涝", "积水", "waterlogging", "urban flooding"),
        ),
        WarningType(
            "geological",
            "地质灾害",
            "Geological Hazard",
            (_G,),
            "地质灾害",
            ("滑坡", "泥石流", "崩塌", "地面塌陷", "landslide", "debris flow", "geological"),
        ),
        WarningType(
            "lifeline",
            "城市生命线",
            "Urban Lifeline",
            (Category.INFRA,),
            "城市生命线",
            ("燃气", "供水", "管网", "桥梁", "lifeline", "gas leak", "pipeline"),
        ),
        WarningType(
            "public_health",
            "公共卫生",
            "Public Health",
            (_H,),
            "公共卫生",
            ("传染病", "疫情", "食物中毒", "public health", "epidemic", "outbreak"),
        ),
        WarningType(
            "production_safety",
            "安全生产",
            "Production Safety",
            (_S,),
            "安全生产",
            ("危险化学品", "危化品", "production safety", "hazardous chemical"),
        ),
        WarningType(
            "sensor", "监测预警", "Monitoring Alarm", (Category.OTHER,), "监测", ("监测", "sensor")
        ),
        WarningType(OTHER, "其他", "Other", (Category.OTHER,), "突发事件", ()),
    )
}


@dataclass(frozen=True)
class WarningLevel:
    code: str
    colour_zh: str
    colour_en: str
    severity: Severity
    urgency: Urgency  # when the hazard is at hand; see urgency_for()
    response: ResponseType


LEVELS: dict[str, WarningLevel] = {
    level.code: level
    for level in (
        WarningLevel("blue", "蓝色", "Blue", Severity.MINOR, Urgency.FUTURE, ResponseType.MONITOR),
        WarningLevel(
            "yellow", "黄色", "Yellow", Severity.MODERATE, Urgency.EXPECTED, ResponseType.PREPARE
        ),
        WarningLevel(
            "orange", "橙色", "Orange", Severity.SEVERE, Urgency.IMMEDIATE, ResponseType.PREPARE
        ),
        WarningLevel(
            "red", "红色", "Red", Severity.EXTREME, Urgency.IMMEDIATE, ResponseType.EXECUTE
        ),
    )
}
LEVEL_ORDER = ("blue", "yellow", "orange", "red")

MSG_TYPES = {"alert": MsgType.ALERT, "update": MsgType.UPDATE, "cancel": MsgType.CANCEL}

# Lead time (onset - sent) past which a warning is less urgent than its level says.
EXPECTED_AFTER = timedelta(hours=1)  # CAP "Expected": action within the next hour
FUTURE_AFTER = timedelta(hours=6)  # beyond the short-range nowcast: "Future"
_URGENCY_RANK = (Urgency.FUTURE, Urgency.EXPECTED, Urgency.IMMEDIATE)


# --- the one-way functions (each row of docs/cap.md) -------------------------------------


def categories_for(type_code: str) -> tuple[Category, ...]:
    return _type(type_code).categories


def event_for(type_code: str, level_code: str, *, english: bool = False) -> str:
    """``暴雨橙色预警`` / ``Rainstorm Orange Warning``."""
    warning_type, level = _type(type_code), _level(level_code)
    if english:
        return f"{warning_type.name_en} {level.colour_en} Warning"
    return f"{warning_type.event_zh}{level.colour_zh}预警"


def severity_for(level_code: str) -> Severity:
    return _level(level_code).severity


def urgency_for(level_code: str, *, sent: datetime, onset: datetime | None = None) -> Urgency:
    """The level's urgency, lowered when the hazard starts well after the message.

    Red and orange signals (气象灾害预警信号 and those modelled on them) mean the hazard
    is happening or imminent: ``Immediate``. Yellow means within hours: ``Expected``. Blue is the
    lowest signal, a heads-up: ``Future``. An ``onset`` more than an hour after ``sent``
    makes it at most ``Expected``, more than six hours at most ``Future``.
    """
    urgency = _level(level_code).urgency
    if onset is not None:
        lead = onset - sent
        cap = (
            Urgency.FUTURE
            if lead > FUTURE_AFTER
            else Urgency.EXPECTED
            if lead > EXPECTED_AFTER
            else Urgency.IMMEDIATE
        )
        urgency = min(urgency, cap, key=_URGENCY_RANK.index)
    return urgency


def certainty_for(type_code: str, *, observed: bool = False) -> Certainty:
    """``Observed`` for what a sensor measured (the ``sensor`` type, or ``observed``),
    ``Likely`` (p > ~50%) for forecasts: a published warning is the forecaster's call."""
    if observed or type_code == "sensor":
        return Certainty.OBSERVED
    return Certainty.LIKELY


def response_types_for(level_code: str, msg_type: str) -> tuple[ResponseType, ...]:
    if msg_type == "cancel":
        return (ResponseType.ALL_CLEAR,)
    return (_level(level_code).response,)


def ring_from_lonlat(coordinates: Iterable[Iterable[float]]) -> Polygon:
    """A CAP ring from (lon, lat) pairs (GeoJSON, Shapely, ``apps.regions``): swapped to
    (lat, lon) and closed if it is not."""
    points = [Point(lat=float(lat), lon=float(lon)) for lon, lat in coordinates]
    if points and points[0] != points[-1]:
        points.append(points[0])
    return tuple(points)


# --- export -----------------------------------------------------------------------------


@dataclass(frozen=True)
class WarningArea:
    area_desc: str
    polygons: tuple[Polygon, ...] = ()  # rings of (lat, lon) Points: see ring_from_lonlat
    circles: tuple[Circle, ...] = ()
    region_codes: tuple[str, ...] = ()  # our region codes → geocode XIXIAN-REGION
    admin_codes: tuple[str, ...] = ()  # GB/T 2260 codes where known → geocode GB/T2260
    area_desc_en: str | None = None


@dataclass(frozen=True)
class WarningData:
    """One published version of a warning, as CAP needs it (no model, no database)."""

    identifier: str  # unique per version, e.g. "XXEW-2025-0012.3"
    sender: str  # e.g. "yjglj@xixianxinqu.gov.cn"
    sent: datetime
    msg_type: str  # alert | update | cancel
    type: str  # a WARNING_TYPES code
    level: str  # blue | yellow | orange | red
    title: str
    description: str
    instruction: str = ""
    references: tuple[Reference, ...] = ()  # the earlier versions (update, cancel)
    title_en: str | None = None
    description_en: str | None = None
    instruction_en: str | None = None
    onset: datetime | None = None
    expires: datetime | None = None
    web: str | None = None
    contact: str | None = None
    sender_name: str | None = None
    areas: tuple[WarningArea, ...] = ()
    is_drill: bool = False
    observed: bool = False  # sensor-derived: certainty Observed

    @property
    def has_english(self) -> bool:
        return bool(self.title_en or self.description_en or self.instruction_en)


def warning_to_alert(warning: WarningData) -> Alert:
    """The CAP alert of one published version; ``cap_unrepresentable`` when it cannot be."""
    try:
        return _warning_to_alert(warning)
    except CapValueError as exc:
        raise cap_unrepresentable([Problem(line=None, path=exc.path, reason=exc.reason)]) from None


def _warning_to_alert(w: WarningData) -> Alert:
    if w.msg_type not in MSG_TYPES:
        raise CapValueError("msg_type", f"{w.msg_type!r} is not alert, update or cancel")
    if w.type not in WARNING_TYPES:
        raise CapValueError("type", f"{w.type!r} is not a warning type")
    if w.level not in LEVELS:
        raise CapValueError("level", f"{w.level!r} is not a warning level")
    if w.msg_type != "alert" and not w.references:
        raise CapValueError("references", "an update or a cancel names what it replaces")
    sent = _local(w.sent)
    common = {
        "categories": categories_for(w.type),
        "response_types": response_types_for(w.level, w.msg_type),
        "urgency": (
            Urgency.PAST
            if w.msg_type == "cancel"
            else urgency_for(w.level, sent=sent, onset=_local(w.onset))
        ),
        "severity": severity_for(w.level),
        "certainty": certainty_for(w.type, observed=w.observed),
        "event_codes": (
            ValuePair(TYPE_CODE_NAME, w.type),
            ValuePair(LEVEL_CODE_NAME, w.level),
        ),
        "onset": _local(w.onset),
        "expires": _local(w.expires),
        "web": w.web,
        "contact": w.contact,
    }
    infos = [
        Info(
            language=LANGUAGE_ZH,
            event=event_for(w.type, w.level),
            sender_name=w.sender_name,
            headline=w.title,
            description=w.description,
            instruction=w.instruction or None,
            areas=tuple(_area(area, english=False) for area in w.areas),
            **common,
        )
    ]
    if w.has_english:
        infos.append(
            Info(
                language=LANGUAGE_EN,
                event=event_for(w.type, w.level, english=True),
                headline=w.title_en or event_for(w.type, w.level, english=True),
                description=w.description_en,
                instruction=w.instruction_en,
                areas=tuple(_area(area, english=True) for area in w.areas),
                **common,
            )
        )
    return Alert(
        identifier=w.identifier,
        sender=w.sender,
        sent=sent,
        status=Status.EXERCISE if w.is_drill else Status.ACTUAL,
        msg_type=MSG_TYPES[w.msg_type],
        scope=Scope.PUBLIC,
        note=DRILL_NOTE if w.is_drill else None,
        references=tuple(Reference(r.sender, r.identifier, _local(r.sent)) for r in w.references),
        infos=tuple(infos),
    )


def _area(area: WarningArea, *, english: bool) -> Area:
    geocodes = [ValuePair(REGION_GEOCODE_NAME, code) for code in area.region_codes]
    geocodes += [ValuePair(ADMIN_GEOCODE_NAME, code) for code in area.admin_codes]
    return Area(
        area_desc=(area.area_desc_en or area.area_desc) if english else area.area_desc,
        polygons=area.polygons,
        circles=area.circles,
        geocodes=tuple(geocodes),
    )


# --- import -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ReceivedWarning:
    """What the importer stores of an upstream CAP alert (times in Asia/Shanghai)."""

    sender: str
    identifier: str
    sent: datetime
    status: Status
    msg_type: str  # alert | update | cancel | ack | error
    references: tuple[Reference, ...]
    type: str
    level: str
    title: str  # the headline, else the event
    description: str
    instruction: str
    event: str
    language: str | None
    onset: datetime | None
    expires: datetime | None
    web: str | None
    sender_name: str | None
    area_descs: tuple[str, ...]
    region_codes: tuple[str, ...]  # geocodes XIXIAN-REGION
    admin_codes: tuple[str, ...]  # geocodes GB/T2260
    polygons: tuple[Polygon, ...]
    circles: tuple[Circle, ...]
    raw_xml: bytes
    notes: tuple[str, ...] = field(default=())  # how type and level were inferred

    @property
    def is_actual(self) -> bool:
        """Only ``Actual`` alerts are real; Exercise, Test, System and Draft are not."""
        return self.status is Status.ACTUAL


def alert_to_received(alert: Alert, *, raw_xml: bytes = b"") -> ReceivedWarning:
    """Our reading of an upstream alert: the zh info (else the first) decides the texts."""
    info = _chosen_info(alert.infos)
    notes: list[str] = []
    if info is None:
        type_code, level_code = OTHER, "blue"
        notes.append(_("The alert has no info block: type “other”, level blue."))
    else:
        type_code = _type_from_info(info, notes)
        level_code = _level_from_info(info, notes)
    areas = info.areas if info is not None else ()
    geocodes = [pair for area in areas for pair in area.geocodes]
    return ReceivedWarning(
        sender=alert.sender,
        identifier=alert.identifier,
        sent=alert.sent.astimezone(SHANGHAI),
        status=alert.status,
        msg_type=alert.msg_type.value.lower(),
        references=tuple(
            Reference(r.sender, r.identifier, r.sent.astimezone(SHANGHAI)) for r in alert.references
        ),
        type=type_code,
        level=level_code,
        title=(info.headline or info.event) if info else "",
        description=(info.description or "") if info else "",
        instruction=(info.instruction or "") if info else "",
        event=info.event if info else "",
        language=info.language if info else None,
        onset=_local(info.onset) if info else None,
        expires=_local(info.expires) if info else None,
        web=info.web if info else None,
        sender_name=info.sender_name if info else None,
        area_descs=tuple(area.area_desc for area in areas),
        region_codes=tuple(p.value for p in geocodes if p.value_name == REGION_GEOCODE_NAME),
        admin_codes=tuple(p.value for p in geocodes if p.value_name == ADMIN_GEOCODE_NAME),
        polygons=tuple(ring for area in areas for ring in area.polygons),
        circles=tuple(circle for area in areas for circle in area.circles),
        raw_xml=raw_xml,
        notes=tuple(notes),
    )


def type_from_info(info: Info) -> tuple[str, list[str]]:
    notes: list[str] = []
    return _type_from_info(info, notes), notes


def level_from_info(info: Info) -> tuple[str, list[str]]:
    notes: list[str] = []
    return _level_from_info(info, notes), notes


def _type_from_info(info: Info, notes: list[str]) -> str:
    """eventCode XIXIAN-EW-TYPE, else a keyword in event/headline, else ``other``."""
    for pair in info.event_codes:
        if pair.value_name == TYPE_CODE_NAME:
            if pair.value in WARNING_TYPES:
                return pair.value
            notes.append(_("Unknown warning type code “%(code)s”.") % {"code": pair.value})
    for text in (info.event, info.headline or ""):
        found = _keyword_type(text)
        if found is not None:
            notes.append(
                _("Type “%(type)s” inferred from the text “%(text)s”.")
                % {"type": found, "text": text}
            )
            return found
    notes.append(_("No known warning type in “%(event)s”: type “other”.") % {"event": info.event})
    return OTHER


def _level_from_info(info: Info, notes: list[str]) -> str:
    """eventCode XIXIAN-EW-LEVEL, else severity, else a colour word, else yellow."""
    for pair in info.event_codes:
        if pair.value_name == LEVEL_CODE_NAME:
            if pair.value in LEVELS:
                return pair.value
            notes.append(_("Unknown warning level code “%(code)s”.") % {"code": pair.value})
    for code, level in LEVELS.items():
        if info.severity is level.severity:
            return code
    for text in (info.event, info.headline or ""):
        for code, level in LEVELS.items():
            if level.colour_zh in text or re.search(rf"\b{level.colour_en}\b", text, re.I):
                notes.append(
                    _("Severity unknown: level “%(level)s” from the text “%(text)s”.")
                    % {"level": code, "text": text}
                )
                return code
    notes.append(_("Severity unknown: level yellow assumed."))
    return "yellow"


_KEYWORDS: tuple[tuple[str, str], ...] = tuple(
    sorted(
        (
            (keyword, warning_type.code)
            for warning_type in WARNING_TYPES.values()
            if warning_type.code != OTHER
            for keyword in {warning_type.name_zh, warning_type.event_zh, *warning_type.keywords}
        ),
        key=lambda pair: (-len(pair[0]), pair[0]),
    )
)


def _keyword_type(text: str) -> str | None:
    """The type of the longest keyword found (CJK: substring; Latin: whole words)."""
    for keyword, code in _KEYWORDS:
        if keyword.isascii():
            if re.search(rf"\b{re.escape(keyword)}\b", text, re.I):
                return code
        elif keyword in text:
            return code
    return None


def _chosen_info(infos: tuple[Info, ...]) -> Info | None:
    for info in infos:
        if info.language.lower().startswith("zh"):
            return info
    return infos[0] if infos else None


def _type(code: str) -> WarningType:
    try:
        return WARNING_TYPES[code]
    except KeyError:
        raise CapValueError("type", f"{code!r} is not a warning type") from None


def _level(code: str) -> WarningLevel:
    try:
        return LEVELS[code]
    except KeyError:
        raise CapValueError("level", f"{code!r} is not a warning level") from None


def _local(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.utcoffset() is None:
        raise CapValueError("datetime", "must be timezone-aware")
    return value.astimezone(SHANGHAI)
