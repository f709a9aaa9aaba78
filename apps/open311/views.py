"""Open311 GeoReport v2 endpoints (mounted at ``/open311/v2/``).

Plain Django views, not DRF: under ``/open311/`` the published spec decides the shape of
every response, errors included, so none of the project's API conventions (error
envelope, JWT/session auth, cursor pages, Idempotency-Key) apply here. Reads are public;
``POST requests`` needs an ``api_key``. The format is the URL suffix (``.xml``, the
spec's required format, or ``.json``) and errors come back in it too.

Every failure is an Open311 error document: 400/403/404 as the spec lists, 405 for a
wrong method, 429 when a client posts too fast. An unexpected exception is logged and
answered as the spec's "400 - General service error", never as an HTML 500.
"""

from __future__ import annotations

import logging
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from apps.core.errors import ApplicationError
from apps.open311 import params, selectors, serializers, services, throttles
from apps.open311.errors import Open311Error, bad_request, forbidden, from_application_error
from apps.open311.errors import not_found as not_found_error
from apps.open311.renderers import Format, error_response, open311_response

logger = logging.getLogger(__name__)


def _format_of(request: HttpRequest, kwargs: dict[str, Any]) -> Format:
    fmt = kwargs.get("fmt") or request.path.rsplit(".", 1)[-1]
    # XML is the format every GeoReport client must understand: the fallback.
    return Format.JSON if fmt == Format.JSON else Format.XML


@method_decorator(csrf_exempt, name="dispatch")  # api_key, not cookies, authorises POSTs
class Open311View(View):
    """Format, jurisdiction and error handling shared by every endpoint."""

    http_method_names = ["get", "head", "options"]

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        fmt = _format_of(request, kwargs)
        kwargs["fmt"] = fmt
        try:
            params.check_jurisdiction(request.GET, request.POST)
            return super().dispatch(request, *args, **kwargs)
        except Open311Error as exc:
            return error_response(exc.errors, fmt=fmt, status=exc.status, headers=exc.headers)
        except Exception:
            logger.exception("open311: %s %s failed", request.method, request.path)
            return error_response(
                [(400, _("General service error. Please try again later."))], fmt=fmt, status=400
            )

    def http_method_not_allowed(
        self, request: HttpRequest, *args: Any, **kwargs: Any
    ) -> HttpResponse:
        allowed = ", ".join(m.upper() for m in self._allowed_methods())
        return error_response(
            [(405, _("Method %(method)s is not allowed here.") % {"method": request.method})],
            fmt=kwargs.get("fmt", Format.XML),
            status=405,
            headers={"Allow": allowed},
        )


class DiscoveryView(Open311View):
    """``GET discovery.{fmt}``: where the endpoint is and what it speaks."""

    def get(self, request: HttpRequest, fmt: Format) -> HttpResponse:
        base = request.build_absolute_uri(reverse("open311:discovery", kwargs={"fmt": fmt}))
        url = base.rsplit("/", 1)[0]  # the v2 root, without "discovery.<fmt>"
        data = serializers.discovery_dict(url=url, changeset=selectors.services_changeset())
        return open311_response(data, fmt=fmt, root="discovery")


class ServiceListView(Open311View):
    """``GET services.{fmt}``: the categories a citizen may report."""

    def get(self, request: HttpRequest, fmt: Format) -> HttpResponse:
        data = [serializers.service_dict(c) for c in selectors.service_categories()]
        return open311_response(data, fmt=fmt, root="services")


class ServiceDefinitionView(Open311View):
    """``GET services/{service_code}.{fmt}``: the category's own fields as attributes."""

    def get(self, request: HttpRequest, fmt: Format, service_code: str) -> HttpResponse:
        if not service_code.strip():
            raise bad_request(_("service_code was not provided."))
        category = selectors.service_category(service_code.strip())
        if category is None:
            raise not_found_error(_("service_code '%(code)s' not found.") % {"code": service_code})
        data = serializers.service_definition_dict(category)
        return open311_response(data, fmt=fmt, root="service_definition")


class RequestsView(Open311View):
    """``GET requests.{fmt}`` (public, filtered) and ``POST requests.{fmt}`` (api_key)."""

    http_method_names = ["get", "head", "post", "options"]

    def get(self, request: HttpRequest, fmt: Format) -> HttpResponse:
        filters = params.request_filters(request.GET)
        data = [serializers.request_dict(r) for r in selectors.request_list(filters)]
        return open311_response(data, fmt=fmt, root="service_requests")

    def post(self, request: HttpRequest, fmt: Format) -> HttpResponse:
        # 1. Throttle first: a flood costs one cache hit per request, not a key lookup.
        ip = params.client_ip(request)
        allowed, retry_after = throttles.post_allowed(ip)
        if not allowed:
            message = _("Too many requests. Try again in %(seconds)s seconds.") % {
                "seconds": retry_after
            }
            raise Open311Error(429, [message], headers={"Retry-After": str(retry_after)})
        # 2. The key (body, or query string for clients that put it there).
        raw_key = params.value(request.POST, "api_key") or params.value(request.GET, "api_key")
        api_key = services.api_key_check(raw_key)
        if api_key is None:
            raise forbidden(
                _("api_key was not provided.") if not raw_key else _("Invalid api_key received.")
            )
        # 3. Arguments, then the service code (404, as the spec lists for POST).
        data = params.service_request_input(request.POST)
        if selectors.service_category(data.service_code) is None:
            raise not_found_error(
                _("service_code '%(code)s' not found.") % {"code": data.service_code}
            )
        # 4. The report service; its refusals mapped onto the spec's statuses.
        try:
            report = services.service_request_create(data=data, api_key=api_key, client_ip=ip)
        except ApplicationError as exc:
            raise from_application_error(exc) from exc
        created = [serializers.created_request_dict(report)]
        return open311_response(created, fmt=fmt, root="service_requests")


class RequestDetailView(Open311View):
    """``GET requests/{service_request_id}.{fmt}``: a list of one request (spec)."""

    def get(self, request: HttpRequest, fmt: Format, service_request_id: str) -> HttpResponse:
        report = None
        if service_request_id.isdigit() and len(service_request_id) < 19:
            report = selectors.request_get(int(service_request_id))
        if report is None:
            raise not_found_error(
                _("service_request_id '%(id)s' not found.") % {"id": service_request_id}
            )
        return open311_response(
            [serializers.request_dict(report)], fmt=fmt, root="service_requests"
        )


class TokenView(Open311View):
    """``GET tokens/{token}.{fmt}``: every service is ``realtime`` (the id comes back at
    once), so no token is ever issued and none can be found."""

    def get(self, request: HttpRequest, fmt: Format, token: str) -> HttpResponse:
        raise not_found_error(_("token '%(token)s' not found.") % {"token": token})


class NotFoundView(Open311View):
    """Anything else under ``/open311/v2/``: the spec's 404, not the project's envelope."""

    http_method_names = ["get", "head", "post", "put", "patch", "delete", "options"]

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        fmt = _format_of(request, kwargs)
        return error_response(
            [(404, _("No such Open311 resource: %(path)s") % {"path": request.path})],
            fmt=fmt,
            status=404,
        )
