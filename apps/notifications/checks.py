"""System checks: a misconfigured FCM backend fails ``manage.py check`` at deploy time,
not silently at the first push of an emergency."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

FCM_BACKEND = "apps.notifications.backends.fcm.FcmPushBackend"


@checks.register(checks.Tags.compatibility)
def fcm_settings_check(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    if settings.NOTIFICATIONS_PUSH_BACKEND != FCM_BACKEND:
        return []
    from apps.notifications.backends.firebase_adapter import check_version

    errors: list[checks.CheckMessage] = []
    try:
        check_version()
    except ImproperlyConfigured as exc:
        errors.append(checks.Error(str(exc), id="notifications.E001"))
    path = settings.FCM_CREDENTIALS_FILE
    if not path or not Path(path).is_file():
        errors.append(
            checks.Error(
                "NOTIFICATIONS_PUSH_BACKEND is FCM but FCM_CREDENTIALS_FILE is not a file.",
                hint="Point FCM_CREDENTIALS_FILE at the Firebase service-account JSON.",
                id="notifications.E002",
            )
        )
    if settings.FCM_ENDPOINT_URL and not settings.DEBUG:
        errors.append(
            checks.Warning(
                "FCM_ENDPOINT_URL overrides the FCM endpoint; it is meant for tests and dev.",
                id="notifications.W001",
            )
        )
    return errors
