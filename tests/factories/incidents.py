"""factory_boy factories for apps.incidents.

``IncidentFactory`` writes the row directly in any status (test set-up, not a
transition); use the services to *move* an incident. ``CategoryFactory`` reuses a
category by code, so ``CategoryFactory(code="N02", ...)`` is safe to call twice.
(``ReportFactory`` belongs in this module too; it is added by the reports work.)
"""

from __future__ import annotations

import io
import secrets
from typing import Any

import factory
from factory.django import DjangoModelFactory

from apps.incidents.models import Attachment, Category, Incident, IncidentClass, Report
from tests.factories.regions import StreetFactory

WATERLOGGING_FIELDS: list[dict[str, Any]] = [
    {
        "name": "waterlogging_depth_cm",
        "type": "integer",
        "unit": "cm",
        "min": 0,
        "max": 1000,
        "label_zh": "积水深度",
        "label_en": "Water depth",
        "required": False,
    },
    {
        "name": "vehicles_stalled",
        "type": "boolean",
        "label_zh": "有车辆熄火被困",
        "label_en": "Vehicles stalled in the water",
        "required": False,
    },
]


class CategoryFactory(DjangoModelFactory):
    class Meta:
        model = Category
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"T{n:03d}")
    incident_class = IncidentClass.ACCIDENT
    name_zh = factory.Sequence(lambda n: f"测试类别{n}")
    name_en = factory.Sequence(lambda n: f"Test category {n}")
    lead_department = "应急"
    extra_fields: Any = factory.LazyFunction(list)
    related_codes: Any = factory.LazyFunction(list)


class WaterloggingCategoryFactory(CategoryFactory):
    """城市内涝 N02 with its depth field, as in the fixture."""

    code = "N02"
    incident_class = IncidentClass.NATURAL
    name_zh = "城市内涝 / 积水"
    name_en = "Urban waterlogging"
    lead_department = "城管 / 水务"
    extra_fields: Any = factory.LazyFunction(lambda: [dict(f) for f in WATERLOGGING_FIELDS])


class IncidentFactory(DjangoModelFactory):
    class Meta:
        model = Incident

    number = factory.Sequence(lambda n: f"20250101-{n:06d}")
    title = factory.Sequence(lambda n: f"测试事件{n}")
    category = factory.SubFactory(CategoryFactory)
    region = factory.SubFactory(StreetFactory)
    source = Incident.Source.OPERATOR
    lat = 34.27
    lng = 108.80
    address = "测试地址"


# --- Citizen reports (added by the reports work) -------------------------------------------


class ReportFactory(DjangoModelFactory):
    """A submitted citizen report written directly (set-up, not intake); use
    ``report_submit`` to exercise validation, photos and the after-commit hook."""

    class Meta:
        model = Report

    token = factory.LazyFunction(lambda: secrets.token_urlsafe(32))
    channel = Report.Channel.APP
    category = factory.SubFactory(CategoryFactory)
    region = factory.SubFactory(StreetFactory)
    text = factory.Sequence(lambda n: f"测试上报{n}")
    lat = 34.27
    lng = 108.80
    status = Report.Status.SUBMITTED


class AttachmentFactory(DjangoModelFactory):
    """A small JPEG photo (and thumbnail) on a report, stored in the default storage."""

    class Meta:
        model = Attachment

    report = factory.SubFactory(ReportFactory)
    file = factory.django.ImageField(format="JPEG", width=64, height=48, filename="photo.jpg")
    thumbnail = factory.django.ImageField(format="JPEG", width=32, height=24, filename="t.jpg")
    content_type = "image/jpeg"
    width = 64
    height = 48
    size = 1000
    sha256 = "0" * 64


def photo_bytes(
    *,
    image_format: str = "JPEG",
    size: tuple[int, int] = (640, 480),
    gps: tuple[float, float] | None = None,
    orientation: int | None = None,
) -> bytes:
    """An encoded test photo; with ``gps`` it carries an EXIF GPS IFD (and a camera
    make), as a phone camera writes it."""
    from PIL import Image
    from PIL.ExifTags import GPS, IFD, Base

    image = Image.new("RGB", size, (180, 40, 40))
    exif = Image.Exif()
    if gps is not None:
        lat, lng = gps
        exif[Base.Make] = "TestPhone"
        exif[IFD.GPSInfo] = {
            GPS.GPSLatitudeRef: "N" if lat >= 0 else "S",
            GPS.GPSLatitude: _dms(abs(lat)),
            GPS.GPSLongitudeRef: "E" if lng >= 0 else "W",
            GPS.GPSLongitude: _dms(abs(lng)),
        }
    if orientation is not None:
        exif[Base.Orientation] = orientation
    buffer = io.BytesIO()
    options: dict[str, Any] = {"exif": exif} if len(exif) else {}
    image.save(buffer, format=image_format, **options)
    return buffer.getvalue()


def _dms(value: float) -> tuple[float, float, float]:
    degrees = int(value)
    minutes = int((value - degrees) * 60)
    seconds = round(((value - degrees) * 60 - minutes) * 60, 4)
    return (float(degrees), float(minutes), seconds)


# --- A small real-shaped tree: 沣东 and 沣西, one street each ------------------------------


class TwoTowns:
    """新区 → 沣东新城 → 三桥街道 and 新区 → 沣西新城 → 钓台街道, with centres and square
    boundaries around the (estimated) street centres of xixian-data.md §1.3."""

    def __init__(self) -> None:
        from apps.regions.models import RegionKind
        from tests.factories.regions import NewTownFactory, RegionFactory, square_boundary

        self.root = RegionFactory()
        self.fengdong = NewTownFactory(code="fengdong", name_zh="沣东新城", parent=self.root)
        self.fengxi = NewTownFactory(code="fengxi", name_zh="沣西新城", parent=self.root)
        self.sanqiao = StreetFactory(
            code="fd-sanqiao",
            name_zh="三桥街道",
            parent=self.fengdong,
            kind=RegionKind.SUBDISTRICT,
            centre_lat=34.276,
            centre_lng=108.850,
            boundary=square_boundary(34.276, 108.850, 0.02),
        )
        self.diaotai = StreetFactory(
            code="fx-diaotai",
            name_zh="钓台街道",
            parent=self.fengxi,
            kind=RegionKind.SUBDISTRICT,
            centre_lat=34.305,
            centre_lng=108.718,
            boundary=square_boundary(34.305, 108.718, 0.02),
        )
