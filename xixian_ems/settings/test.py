"""Test settings: real PostgreSQL/Redis when reachable, SQLite/in-memory otherwise.

``XEMS_REQUIRE_SERVICES=1`` (CI) turns a missing service into an error instead of a
fallback. The probe result is exported as ``XEMS_SERVICES`` so conftest can skip the
service-only tests with the reason shown.
"""

from __future__ import annotations

import socket
from urllib.parse import urlparse

from django.core.exceptions import ImproperlyConfigured

from xixian_ems.settings.base import *
from xixian_ems.settings.base import env


def _reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection(
            (parsed.hostname or "127.0.0.1", parsed.port or default_port), timeout=0.5
        ):
            return True
    except OSError:
        return False


TEST_DATABASE_URL = env.str(
    "TEST_DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/xixian_ems"
)
TEST_REDIS_URL = env.str("TEST_REDIS_URL", default="redis://127.0.0.1:6379/15")
XEMS_REQUIRE_SERVICES = env.bool("XEMS_REQUIRE_SERVICES", default=False)

XEMS_SERVICES = {
    "postgres": _reachable(TEST_DATABASE_URL, 5432),
    "redis": _reachable(TEST_REDIS_URL, 6379),
}
_missing = [name for name, up in XEMS_SERVICES.items() if not up]
if XEMS_REQUIRE_SERVICES and _missing:
    raise ImproperlyConfigured(
        f"XEMS_REQUIRE_SERVICES=1 but unreachable: {', '.join(_missing)} "
        f"(database {TEST_DATABASE_URL}, redis {TEST_REDIS_URL})"
    )

if XEMS_SERVICES["postgres"]:
    DATABASES = {"default": env.db_url_config(TEST_DATABASE_URL)}
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # Own name per checkout/session when several suites share one server.
    DATABASES["default"]["TEST"] = {
        "NAME": env.str("TEST_DATABASE_NAME", default="test_xixian_ems")
    }
else:
    DATABASES = {
        "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:", "TEST": {}}
    }

# Unit tests stay in-process and fast (conventions R14); service tests opt into Redis explicitly.
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
CELERY_BROKER_URL = "memory://"
CELERY_BROKER_TRANSPORT_OPTIONS = {}
CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = True
REDIS_URL = ""

# No collectstatic in tests: the manifest storage would refuse unknown files.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
SMS_BACKEND = "apps.core.sms.LocmemSmsBackend"
EVENTS_PAYLOAD_STRICT = True  # a datetime slipping into an event payload fails the test
EVENTS_HEAD_CHECK_SECONDS = 0.0  # no background queries; tests/realtime turn it on to test it
NOTIFICATIONS_PUSH_BACKEND = "apps.notifications.backends.LocmemPushBackend"
LANGUAGE_CODE = "en"
DEBUG = False
LOGGING = {"version": 1, "disable_existing_loggers": False}
