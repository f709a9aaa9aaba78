"""GeoReport v2 routes; the project mounts them at ``/open311/v2/``.

Every resource takes a format suffix (``.xml`` or ``.json``). Anything else under the
prefix answers with the spec's 404 error document (the last route), so a client never
sees the project's own error envelope or an HTML page here.
"""

from __future__ import annotations

from django.urls import re_path

from apps.open311 import views

app_name = "open311"

_FMT = r"\.(?P<fmt>xml|json)$"

urlpatterns = [
    re_path(rf"^discovery{_FMT}", views.DiscoveryView.as_view(), name="discovery"),
    re_path(rf"^services{_FMT}", views.ServiceListView.as_view(), name="services"),
    re_path(
        rf"^services/(?P<service_code>[^/]*){_FMT}",
        views.ServiceDefinitionView.as_view(),
        name="service-definition",
    ),
    re_path(rf"^requests{_FMT}", views.RequestsView.as_view(), name="requests"),
    re_path(
        rf"^requests/(?P<service_request_id>[^/]*){_FMT}",
        views.RequestDetailView.as_view(),
        name="request",
    ),
    re_path(rf"^tokens/(?P<token>[^/]*){_FMT}", views.TokenView.as_view(), name="token"),
    re_path(r"^", views.NotFoundView.as_view(), name="not-found"),
]
