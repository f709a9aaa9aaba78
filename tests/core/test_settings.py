"""Settings: time zone, language, and production hardening."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]


def test_time_is_aware_and_in_shanghai() -> None:
    assert settings.USE_TZ is True
    assert settings.TIME_ZONE == "Asia/Shanghai"
    assert settings.CELERY_TIMEZONE == "Asia/Shanghai"


def test_chinese_is_the_default_language_with_english_available() -> None:
    from xixian_ems.settings import base

    assert base.LANGUAGE_CODE == "zh-hans"
    assert [code for code, _ in settings.LANGUAGES] == ["zh-hans", "en"]


def test_no_persistent_database_connections_under_asgi() -> None:
    from xixian_ems.settings import base

    assert base.DATABASES["default"]["CONN_MAX_AGE"] == 0


def _run_check(extra_env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "DATABASE_URL", "REDIS_URL"))
    }
    env.update(extra_env)
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_production_settings_pass_the_deploy_check_without_warnings() -> None:
    result = _run_check(
        {
            "DJANGO_SETTINGS_MODULE": "xixian_ems.settings.production",
            "DJANGO_SECRET_KEY": "k" * 20 + "-production-secret-for-the-check-0123456789",
            "DJANGO_ALLOWED_HOSTS": "ems.example.org",
            "DATABASE_URL": "postgres://ems@db.example.org:5432/ems",
            "REDIS_URL": "redis://cache.example.org:6379/0",
            "TRUSTED_PROXIES": "172.30.64.2",
        }
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_to_start_without_a_real_secret() -> None:
    result = _run_check(
        {
            "DJANGO_SETTINGS_MODULE": "xixian_ems.settings.production",
            "DJANGO_ALLOWED_HOSTS": "ems.example.org",
        }
    )
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr
