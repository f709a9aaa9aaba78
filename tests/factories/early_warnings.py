"""Warnings for tests, made through the services (the state machine is the point)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone

from apps.early_warnings import services
from apps.early_warnings.models import WarningVersion


def draft(*, by: Any, targets: list[Any], level: str = "blue", **kwargs: Any) -> WarningVersion:
    now = timezone.now()
    values: dict[str, Any] = {
        "warning_type": "rainstorm",
        "level": level,
        "title": "暴雨预警",
        "description": "预计未来6小时内降雨量将达50毫米以上。",
        "instruction": "注意防范城市内涝，减少外出。",
        "onset": now,
        "expires": now + timedelta(hours=6),
    }
    values.update(kwargs)
    return services.warning_create(by=by, targets=targets, **values)


def published(
    *, by: Any, approver: Any, targets: list[Any], level: str = "blue", **kwargs: Any
) -> WarningVersion:
    version = draft(by=by, targets=targets, level=level, **kwargs)
    services.warning_submit(version_id=version.pk, by=by)
    return services.warning_approve(version_id=version.pk, by=approver)
