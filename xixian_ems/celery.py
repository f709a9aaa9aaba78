"""The Celery application. Configuration comes from Django settings (CELERY_* keys)."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "xixian_ems.settings.local")

app = Celery("xixian_ems")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
