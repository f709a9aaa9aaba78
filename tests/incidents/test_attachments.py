"""Photos: validated by content, EXIF (GPS) gone from what is served, protected downloads."""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from PIL import Image
from PIL.ExifTags import IFD
from rest_framework.test import APIClient

from apps.core.errors import ApplicationError
from apps.incidents.models import Attachment
from apps.incidents.services.attachments import photo_process, photos_process
from apps.regions import geo
from apps.regions.models import Region
from apps.regions.services import regions_load_fixture
from tests.factories.accounts import CitizenFactory, StaffUserFactory
from tests.factories.incidents import (
    AttachmentFactory,
    CategoryFactory,
    IncidentFactory,
    ReportFactory,
    photo_bytes,
)

HOME = (34.3376389, 108.7170139)  # where the citizen stood (lives?) when taking the photo


def served(response: Any) -> bytes:
    return b"".join(response.streaming_content)


def assert_no_metadata(data: bytes) -> None:
    image = Image.open(io.BytesIO(data))
    assert len(image.getexif()) == 0
    assert image.getexif().get_ifd(IFD.GPSInfo) == {}
    assert b"Exif\x00\x00" not in data
    assert b"TestPhone" not in data


# --- Processing (no database) ------------------------------------------------------------


def test_a_jpeg_with_gps_exif_is_re_encoded_without_any_metadata() -> None:
    # given
    original = photo_bytes(gps=HOME)
    assert Image.open(io.BytesIO(original)).getexif().get_ifd(IFD.GPSInfo)
    # when
    photo = photo_process(io.BytesIO(original))
    # then
    assert_no_metadata(photo.content)
    assert_no_metadata(photo.thumbnail)
    assert photo.exif_lat == pytest.approx(HOME[0], abs=1e-5)
    assert photo.exif_lng == pytest.approx(HOME[1], abs=1e-5)
    assert photo.content_type == "image/jpeg"


def test_the_exif_orientation_is_applied_before_it_is_dropped() -> None:
    # orientation 6: the camera was held sideways; the pixels must be turned upright
    photo = photo_process(io.BytesIO(photo_bytes(size=(640, 480), orientation=6)))
    assert (photo.width, photo.height) == (480, 640)


def test_the_thumbnail_fits_in_320_pixels() -> None:
    photo = photo_process(io.BytesIO(photo_bytes(size=(2000, 1000))))
    thumb = Image.open(io.BytesIO(photo.thumbnail))
    assert thumb.format == "JPEG"
    assert max(thumb.size) == 320


@pytest.mark.parametrize("image_format", ["PNG", "WEBP"])
def test_png_and_webp_are_accepted_in_their_own_format(image_format: str) -> None:
    photo = photo_process(io.BytesIO(photo_bytes(image_format=image_format)))
    assert photo.content_type == f"image/{image_format.lower()}"
    assert Image.open(io.BytesIO(photo.content)).format == image_format


@pytest.mark.parametrize(
    "content",
    [
        b"just some text pretending to be a jpg",
        b"\xff\xd8\xff\xe0" + b"\x00" * 50,  # a JPEG signature and nothing else
        b"GIF89a" + b"\x00" * 100,
    ],
)
def test_files_that_are_not_usable_images_are_refused(content: bytes) -> None:
    with pytest.raises(ApplicationError) as refused:
        photo_process(io.BytesIO(content))
    assert refused.value.code == "attachment_invalid"
    assert refused.value.extra["fields"]["photos"][0]["code"] == "attachment_invalid"


def test_a_gif_is_refused_even_though_it_is_an_image() -> None:
    buffer = io.BytesIO()
    Image.new("P", (10, 10)).save(buffer, format="GIF")
    with pytest.raises(ApplicationError) as refused:
        photo_process(io.BytesIO(buffer.getvalue()))
    assert refused.value.code == "attachment_invalid"


def test_a_decompression_bomb_is_refused_from_its_header(settings: Any) -> None:
    # given: a small file declaring more pixels than allowed
    settings.INCIDENTS_MAX_PHOTO_PIXELS = 1_000_000
    buffer = io.BytesIO()
    Image.new("1", (3000, 3000)).save(buffer, format="PNG")
    assert len(buffer.getvalue()) < 100_000
    # when / then
    with pytest.raises(ApplicationError) as refused:
        photo_process(io.BytesIO(buffer.getvalue()))
    assert refused.value.code == "attachment_too_large"


def test_a_file_over_the_size_limit_is_refused_without_decoding(settings: Any) -> None:
    settings.INCIDENTS_MAX_PHOTO_BYTES = 100
    with pytest.raises(ApplicationError) as refused:
        photo_process(SimpleUploadedFile("a.jpg", photo_bytes()))
    assert refused.value.code == "attachment_too_large"
    assert refused.value.extra["max_bytes"] == 100


def test_more_than_nine_photos_are_refused() -> None:
    with pytest.raises(ApplicationError) as refused:
        photos_process([io.BytesIO(b"x")] * 10)
    assert refused.value.code == "too_many_attachments"


# --- Served bytes and access -------------------------------------------------------------


@pytest.fixture
def xixian(db: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, Region]:
    monkeypatch.setattr(geo, "_index", None)
    regions_load_fixture()
    return {region.code: region for region in Region.objects.all()}


@pytest.fixture
def submitted(xixian: dict[str, Region], api_client: APIClient) -> dict[str, Any]:
    """An anonymous report with one GPS-tagged photo, submitted through the API."""
    CategoryFactory(code="A01")
    upload = SimpleUploadedFile("IMG_0001.jpg", photo_bytes(gps=HOME), "image/jpeg")
    response = api_client.post(
        "/api/v1/reports/",
        {"category": "A01", "lat": 34.276, "lng": 108.85, "photos": [upload]},
        format="multipart",
    )
    assert response.status_code == 201
    body = response.json()
    return {"token": body["token"], "attachment": Attachment.objects.get(report_id=body["id"])}


@pytest.mark.django_db
def test_the_served_photo_and_thumbnail_carry_no_exif_gps(
    api_client: APIClient, submitted: dict[str, Any]
) -> None:
    # given
    attachment, token = submitted["attachment"], submitted["token"]
    # when
    photo = api_client.get(f"/api/v1/attachments/{attachment.pk}/?token={token}")
    thumb = api_client.get(f"/api/v1/attachments/{attachment.pk}/thumbnail/?token={token}")
    # then
    assert photo.status_code == thumb.status_code == 200
    assert photo["Content-Type"] == "image/jpeg"
    assert photo["X-Content-Type-Options"] == "nosniff"
    assert "private" in photo["Cache-Control"]
    assert_no_metadata(served(photo))
    assert_no_metadata(served(thumb))
    # the position is kept for staff only
    assert attachment.exif_lat == pytest.approx(HOME[0], abs=1e-5)


@pytest.mark.django_db
def test_the_tracking_view_links_photos_through_the_protected_download(
    api_client: APIClient, submitted: dict[str, Any]
) -> None:
    body = api_client.get(f"/api/v1/reports/track/{submitted['token']}/").json()
    url = body["attachments"][0]["url"]
    # a signed link to this one photo; the tracking token itself is not in it
    assert f"/api/v1/attachments/{submitted['attachment'].pk}/?sig=" in url
    assert submitted["token"] not in url
    assert "exif_lat" not in body["attachments"][0]
    assert "/media/" not in url
    assert api_client.get(url).status_code == 200
    assert api_client.get(body["attachments"][0]["thumbnail_url"]).status_code == 200


@pytest.mark.django_db
def test_a_signed_photo_link_expires_and_opens_no_other_photo(
    api_client: APIClient, submitted: dict[str, Any], xixian: dict[str, Region]
) -> None:
    # given: the signed link the tracking view hands out, and another citizen's photo
    body = api_client.get(f"/api/v1/reports/track/{submitted['token']}/").json()
    url = body["attachments"][0]["url"]
    signature = url.split("?sig=", 1)[1]
    other = AttachmentFactory(report=ReportFactory(region=xixian["fd-sanqiao"]))
    # when / then: it opens nothing else
    assert api_client.get(f"/api/v1/attachments/{other.pk}/?sig={signature}").status_code == 404
    assert api_client.get(f"/api/v1/attachments/{submitted['attachment'].pk}/").status_code == 404
    # and nothing at all once it is older than ATTACHMENTS_SIGNED_URL_SECONDS
    with time_machine.travel(timezone.now() + timedelta(minutes=16)):
        assert api_client.get(url).status_code == 404


@pytest.mark.django_db
def test_a_photo_is_not_served_without_the_token_or_with_another_reports_token(
    api_client: APIClient, submitted: dict[str, Any], xixian: dict[str, Region]
) -> None:
    attachment = submitted["attachment"]
    other = ReportFactory(region=xixian["fd-sanqiao"])
    anonymous = api_client.get(f"/api/v1/attachments/{attachment.pk}/")
    wrong = api_client.get(f"/api/v1/attachments/{attachment.pk}/?token={other.token}")
    assert anonymous.status_code == wrong.status_code == 404
    assert anonymous.json()["code"] == "not_found"


@pytest.mark.django_db
def test_a_citizen_gets_their_own_photo_but_not_another_citizens(
    xixian: dict[str, Region],
) -> None:
    # given
    alice, bob = CitizenFactory(), CitizenFactory()
    bobs_photo = AttachmentFactory(report=ReportFactory(reporter=bob, region=xixian["fd-sanqiao"]))
    alice_client, bob_client = APIClient(), APIClient()
    alice_client.force_authenticate(alice)
    bob_client.force_authenticate(bob)
    # when / then
    assert alice_client.get(f"/api/v1/attachments/{bobs_photo.pk}/").status_code == 404
    assert bob_client.get(f"/api/v1/attachments/{bobs_photo.pk}/").status_code == 200


@pytest.mark.django_db
def test_staff_get_photos_only_in_their_scope(xixian: dict[str, Region]) -> None:
    photo = AttachmentFactory(report=ReportFactory(region=xixian["fd-sanqiao"]))
    incident_photo = AttachmentFactory(
        report=None, incident=IncidentFactory(region=xixian["fd-sanqiao"])
    )
    insider, outsider = APIClient(), APIClient()
    insider.force_authenticate(StaffUserFactory(region=xixian["fengdong"]))
    outsider.force_authenticate(StaffUserFactory(region=xixian["fengxi"]))
    for attachment in (photo, incident_photo):
        assert insider.get(f"/api/v1/attachments/{attachment.pk}/").status_code == 200
        assert outsider.get(f"/api/v1/attachments/{attachment.pk}/").status_code == 404


@pytest.mark.django_db
def test_an_image_accept_header_still_gets_the_json_404(api_client: APIClient) -> None:
    response = api_client.get("/api/v1/attachments/999999/", HTTP_ACCEPT="image/*")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
