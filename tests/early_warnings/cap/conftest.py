"""Shared helpers of the CAP tests: the shipped OASIS examples and a WarningData builder."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from apps.early_warnings.cap.mapping import WarningArea, WarningData, ring_from_lonlat
from apps.early_warnings.cap.model import Circle, Point, Reference

EXAMPLES = Path(__file__).resolve().parent / "examples"
SHANGHAI = ZoneInfo("Asia/Shanghai")
SENT = datetime(2025, 7, 15, 14, 30, 5, tzinfo=SHANGHAI)
SENDER = "yjglj@xixianxinqu.gov.cn"

# A small ring around 沣东新城, as apps.regions keeps boundaries: (lon, lat).
FENGDONG_LONLAT = [(108.80, 34.27), (108.90, 34.27), (108.90, 34.33), (108.80, 34.33)]


def example(name: str) -> bytes:
    return (EXAMPLES / f"Oasis_{name}.xml").read_bytes()


def make_warning(**overrides: Any) -> WarningData:
    warning = WarningData(
        identifier="XXEW-2025-0012.1",
        sender=SENDER,
        sent=SENT,
        msg_type="alert",
        type="rainstorm",
        level="orange",
        title="西咸新区气象台发布暴雨橙色预警",
        description="预计未来3小时内沣东新城将出现50毫米以上降水。",
        instruction="停止户外作业，远离低洼地带。",
        onset=SENT,
        expires=datetime(2025, 7, 15, 20, 0, tzinfo=SHANGHAI),
        web="https://yjgl.xixianxinqu.gov.cn/warnings/XXEW-2025-0012",
        contact="029-12345678",
        sender_name="西咸新区应急管理局",
        areas=(
            WarningArea(
                area_desc="沣东新城",
                polygons=(ring_from_lonlat(FENGDONG_LONLAT),),
                region_codes=("610400-FD",),
                admin_codes=("611101",),
            ),
            WarningArea(
                area_desc="秦汉新城渭河沿岸",
                circles=(Circle(Point(34.40, 108.75), 5),),
                region_codes=("610400-QH",),
            ),
        ),
    )
    return replace(warning, **overrides)


def reference_to(warning: WarningData) -> Reference:
    return Reference(warning.sender, warning.identifier, warning.sent)
