from typing import Any

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


def _error_document(request: Any, status: int, message: str) -> Any:
    """A refusal made before the views (a NUL in the query ...) as the spec's error list."""
    from apps.open311.renderers import Format, error_response

    fmt = Format.JSON if str(request.path).endswith(".json") else Format.XML
    return error_response([(status, message)], fmt=fmt, status=status)


class Open311Config(AppConfig):
    name = "apps.open311"
    label = "open311"
    verbose_name = _("Open311")

    def ready(self) -> None:
        from apps.core.middleware import register_error_renderer

        register_error_renderer("/open311/", _error_document)
