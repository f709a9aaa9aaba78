"""Uploads are never public: no route serves ``MEDIA_URL`` (DEBUG or not), and with the
router serving files Django answers an allowed download with ``X-Accel-Redirect`` only.

The real router, gunicorn and uvicorn: ``tests/incidents/test_media_router.py``."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.test import override_settings
from django.urls import Resolver404, clear_url_caches, resolve
from rest_framework.test import APIClient

from apps.incidents.api.attachments import accel_redirect_uri
from apps.incidents.models import Attachment
from tests.factories.accounts import StaffUserFactory
from tests.factories.incidents import AttachmentFactory, ReportFactory, TwoTowns

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def debug_urls() -> Iterator[None]:
    """The URLconf as ``DEBUG=True`` builds it (``static()`` would add media there)."""
    import xixian_ems.urls

    with override_settings(DEBUG=True):
        importlib.reload(xixian_ems.urls)
        clear_url_caches()
        yield
    importlib.reload(xixian_ems.urls)
    clear_url_caches()


def test_no_route_serves_media_even_with_debug_on(debug_urls: None) -> None:
    with pytest.raises(Resolver404):
        resolve("/media/attachments/2025/07/20/photo.jpg")


@pytest.fixture
def photo(db: None) -> tuple[Attachment, TwoTowns]:
    tree = TwoTowns()
    return AttachmentFactory(report=ReportFactory(region=tree.sanqiao)), tree


@override_settings(MEDIA_ACCEL_REDIRECT="/protected-media/")
def test_with_the_router_serving_files_django_sends_the_redirect_and_no_bytes(
    photo: tuple[Attachment, TwoTowns],
) -> None:
    attachment, tree = photo
    client = APIClient()
    client.force_authenticate(StaffUserFactory(region=tree.fengdong))
    # when
    response = client.get(f"/api/v1/attachments/{attachment.pk}/")
    thumb = client.get(f"/api/v1/attachments/{attachment.pk}/thumbnail/")
    # then
    assert response.status_code == 200
    assert response["X-Accel-Redirect"] == f"/protected-media/{attachment.file.name}"
    assert response.content == b""
    assert response["Content-Type"] == "image/jpeg"
    assert response["Content-Disposition"].startswith("inline;")
    assert "private" in response["Cache-Control"]
    assert thumb["X-Accel-Redirect"] == f"/protected-media/{attachment.thumbnail.name}"
    # and a caller the check refuses gets the envelope, no redirect
    outsider = APIClient()
    outsider.force_authenticate(StaffUserFactory(region=tree.fengxi))
    refused = outsider.get(f"/api/v1/attachments/{attachment.pk}/")
    assert refused.status_code == 404
    assert "X-Accel-Redirect" not in refused


@pytest.mark.parametrize(
    "name", ["", "/etc/passwd", "../secret.jpg", "attachments/../../x", "a//b.jpg", "a/./b.jpg"]
)
def test_a_redirect_never_leaves_the_media_directory(name: str) -> None:
    with (
        override_settings(MEDIA_ACCEL_REDIRECT="/protected-media/"),
        pytest.raises(ValueError, match="not a stored file name"),
    ):
        accel_redirect_uri(name)


def test_a_stored_name_is_percent_encoded_under_the_prefix() -> None:
    with override_settings(MEDIA_ACCEL_REDIRECT="/protected-media"):
        assert accel_redirect_uri("attachments/2025/a b.jpg") == (
            "/protected-media/attachments/2025/a%20b.jpg"
        )


def test_production_sends_photos_through_the_router_by_default() -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "DJANGO_"))},
        "DJANGO_SETTINGS_MODULE": "xixian_ems.settings.production",
        "DJANGO_SECRET_KEY": "k" * 20 + "-production-secret-for-the-check-0123456789",
        "DJANGO_ALLOWED_HOSTS": "ems.example.org",
    }
    code = "from django.conf import settings; print(settings.MEDIA_ACCEL_REDIRECT)"
    result = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "/protected-media/"
