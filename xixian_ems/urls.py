"""Root URLconf: admin, API v1, API schema/docs, probes."""

from csp.decorators import csp_update
from django.contrib import admin
from django.urls import include, path
from django.utils.translation import gettext_lazy as _
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from apps.core import health

admin.site.site_header = _("Xixian Emergency Connect command centre")
admin.site.site_title = _("Xixian Emergency Connect")
admin.site.index_title = _("Command centre")

# Swagger UI and ReDoc start from an inline script and style themselves inline (ReDoc in
# a worker from a blob): their two pages relax the site's Content-Security-Policy.
_docs_csp = csp_update(
    {
        "script-src": ["'unsafe-inline'"],
        "style-src": ["'unsafe-inline'"],
        "worker-src": ["'self'", "blob:"],
    }
)

api_v1 = [
    path("", include("apps.core.api.urls")),
    path("", include("apps.accounts.api.urls")),
    path("", include("apps.regions.api.urls")),
    path("", include("apps.incidents.api.urls")),
    path("", include("apps.dispatch.api.urls")),
    path("", include("apps.notifications.api.urls")),
    path("", include("apps.early_warnings.api.urls")),
    path("", include("apps.analytics.api.urls")),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("api/v1/", include((api_v1, "api"), namespace="v1")),
    path("open311/v2/", include("apps.open311.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path(
        "api/docs/", _docs_csp(SpectacularSwaggerView.as_view(url_name="schema")), name="api-docs"
    ),
    path(
        "api/redoc/", _docs_csp(SpectacularRedocView.as_view(url_name="schema")), name="api-redoc"
    ),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
]

# No route serves MEDIA_URL, not even with DEBUG on: uploads are citizens' photos, and
# attachments/{id}/ (checked per request) is their only way out (docs/roles.md, "Media").

handler400 = "apps.core.exceptions.json_bad_request"
handler403 = "apps.core.exceptions.json_permission_denied"
handler404 = "apps.core.exceptions.json_not_found"
handler500 = "apps.core.exceptions.json_server_error"
