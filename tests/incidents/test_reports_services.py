"""report_submit / report_submit_sos: validation, one transaction, files, after-commit hook."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.core.errors import ApplicationError
from apps.incidents.models import Attachment, Report
from apps.incidents.services import reports as services
from apps.incidents.services.reports import report_submit, report_submit_sos
from apps.regions import geo
from apps.regions.models import Region
from apps.regions.services import regions_load_fixture
from tests.factories.accounts import CitizenFactory
from tests.factories.incidents import CategoryFactory, WaterloggingCategoryFactory, photo_bytes

pytestmark = pytest.mark.django_db

SANQIAO = (34.276, 108.85)
BELL_TOWER = (34.2612, 108.9423)  # Xi'an city centre: outside the new area


@pytest.fixture
def xixian(monkeypatch: pytest.MonkeyPatch) -> dict[str, Region]:
    monkeypatch.setattr(geo, "_index", None)
    regions_load_fixture()
    return {region.code: region for region in Region.objects.all()}


@pytest.fixture
def category() -> Any:
    return CategoryFactory(code="A01", name_zh="道路塌陷")


def upload(name: str = "p.jpg", **kwargs: Any) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, photo_bytes(**kwargs), content_type="image/jpeg")


def test_a_report_with_photos_is_committed_routed_to_its_street_and_hooked_after_commit(
    xixian: dict[str, Region],
    category: Any,
    django_capture_on_commit_callbacks: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # given
    caplog.set_level(logging.INFO, logger="apps.incidents.services.reports")
    # when
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        report = report_submit(
            category_code="A01",
            lat=SANQIAO[0],
            lng=SANQIAO[1],
            text="路面塌了一个坑",
            photos=[upload(), upload(image_format="PNG", name="b.png")],
            client_ip="10.0.0.1",
            device_id="dev-1",
        )
    # then
    report.refresh_from_db()
    assert report.region.code == "fd-sanqiao"
    assert report.status == Report.Status.SUBMITTED
    assert len(report.token) == 43
    assert report.client_ip == "10.0.0.1"
    photos = list(report.attachments.order_by("id"))
    assert [p.content_type for p in photos] == ["image/jpeg", "image/png"]
    assert all(default_storage.exists(p.file.name) for p in photos)
    assert all(default_storage.exists(p.thumbnail.name) for p in photos)
    assert callbacks  # the after-submit hook and the events' publishing wait for commit
    assert (
        caplog.text.count(f"reports submitted via service: 1 (ids {report.pk}..{report.pk})") == 1
    )


def test_each_report_gets_its_own_unguessable_token(
    xixian: dict[str, Region], category: Any
) -> None:
    first = report_submit(category_code="A01", lat=SANQIAO[0], lng=SANQIAO[1])
    second = report_submit(category_code="A01", lat=SANQIAO[0], lng=SANQIAO[1])
    assert first.token != second.token


def test_a_registered_citizen_is_recorded_with_their_phone_as_contact(
    xixian: dict[str, Region], category: Any
) -> None:
    citizen = CitizenFactory(phone="+8613900000001")
    report = report_submit(category_code="A01", lat=SANQIAO[0], lng=SANQIAO[1], reporter=citizen)
    assert report.reporter == citizen
    assert report.phone == "+8613900000001"


def test_a_given_phone_is_normalised_and_a_bad_one_is_a_field_error(
    xixian: dict[str, Region], category: Any
) -> None:
    report = report_submit(
        category_code="A01", lat=SANQIAO[0], lng=SANQIAO[1], phone="139 0000 0002"
    )
    assert report.phone == "+8613900000002"
    with pytest.raises(ApplicationError) as refused:
        report_submit(category_code="A01", lat=SANQIAO[0], lng=SANQIAO[1], phone="12345")
    assert refused.value.status == 400
    assert "phone" in refused.value.extra["fields"]


@pytest.mark.parametrize(
    ("code", "setup"),
    [
        ("NOPE", None),
        ("X01", {"is_active": False}),
        ("X02", {"citizen_reportable": False}),
    ],
)
def test_an_unknown_inactive_or_internal_category_is_refused_on_the_category_field(
    xixian: dict[str, Region], code: str, setup: dict[str, Any] | None
) -> None:
    if setup is not None:
        CategoryFactory(code=code, **setup)
    with pytest.raises(ApplicationError) as refused:
        report_submit(category_code=code, lat=SANQIAO[0], lng=SANQIAO[1])
    assert refused.value.code == "category_unknown"
    assert refused.value.status == 400
    assert refused.value.extra["fields"]["category"][0]["code"] == "category_unknown"
    assert Report.objects.count() == 0


def test_a_point_outside_the_new_area_is_422_and_nothing_is_written(
    xixian: dict[str, Region], category: Any
) -> None:
    with pytest.raises(ApplicationError) as refused:
        report_submit(category_code="A01", lat=BELL_TOWER[0], lng=BELL_TOWER[1], photos=[upload()])
    assert refused.value.code == "point_outside_area"
    assert refused.value.status == 422
    assert Report.objects.count() == 0
    assert Attachment.objects.count() == 0


def test_category_fields_are_validated_and_normalised(xixian: dict[str, Region]) -> None:
    WaterloggingCategoryFactory()
    report = report_submit(
        category_code="N02",
        lat=SANQIAO[0],
        lng=SANQIAO[1],
        extra={"waterlogging_depth_cm": "45"},
    )
    assert report.extra == {"waterlogging_depth_cm": 45}
    with pytest.raises(ApplicationError) as refused:
        report_submit(
            category_code="N02",
            lat=SANQIAO[0],
            lng=SANQIAO[1],
            extra={"waterlogging_depth_cm": -3},
        )
    assert refused.value.code == "category_field_invalid"


def test_written_files_are_removed_when_the_insert_fails(
    xixian: dict[str, Region], category: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: the attachment insert blows up after the files were written
    written: list[str] = []
    original_write = services.photo_files_write

    def spy_write(photos: Any) -> Any:
        stored = original_write(photos)
        written.extend(name for s in stored for name in (s.file_name, s.thumbnail_name))
        return stored

    def boom(**kwargs: Any) -> None:
        raise RuntimeError("database went away")

    monkeypatch.setattr(services, "photo_files_write", spy_write)
    monkeypatch.setattr(services, "attachments_create", boom)
    # when
    with pytest.raises(RuntimeError):
        report_submit(category_code="A01", lat=SANQIAO[0], lng=SANQIAO[1], photos=[upload()])
    # then
    assert len(written) == 2
    assert not any(default_storage.exists(name) for name in written)
    assert Report.objects.count() == 0


def test_sos_uses_the_configured_category_even_if_not_offered_to_citizens(
    xixian: dict[str, Region], settings: Any
) -> None:
    settings.INCIDENTS_SOS_CATEGORY_CODE = "SOS"
    CategoryFactory(code="SOS", citizen_reportable=False)
    report = report_submit_sos(lat=SANQIAO[0], lng=SANQIAO[1], text="被困")
    assert report.is_sos
    assert report.category.code == "SOS"


def test_sos_outside_the_area_names_the_national_emergency_numbers(
    xixian: dict[str, Region],
) -> None:
    CategoryFactory(code="O99")
    with pytest.raises(ApplicationError) as refused:
        report_submit_sos(lat=BELL_TOWER[0], lng=BELL_TOWER[1])
    assert refused.value.code == "point_outside_area"
    assert refused.value.extra["emergency_numbers"] == ["110", "119", "120"]
