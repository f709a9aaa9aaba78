"""Field-level refusals from services, shaped like serializer errors.

Services are also called from the admin, tasks and commands, which skip the API's
serializers; these helpers give them the same ``invalid`` envelope with
``extra.fields = {field: [{code, message}]}``.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _

from apps.core.errors import ApplicationError, ErrorCode


def field_error(field: str, message: Any, *, code: str = "invalid") -> ApplicationError:
    return ApplicationError(
        ErrorCode.INVALID,
        extra={"fields": {field: [{"code": code, "message": str(message)}]}},
    )


def optional_text(field: str, value: str | None, *, max_length: int) -> str:
    """``value`` stripped; refused when longer than ``max_length``."""
    text = (value or "").strip()
    if len(text) > max_length:
        raise field_error(
            field,
            _("At most %(limit)s characters.") % {"limit": max_length},
            code="max_length",
        )
    return text


def required_text(field: str, value: str | None, *, max_length: int) -> str:
    """``value`` stripped; refused when blank or longer than ``max_length``."""
    text = (value or "").strip()
    if not text:
        raise field_error(field, _("This field may not be blank."), code="blank")
    return optional_text(field, text, max_length=max_length)
