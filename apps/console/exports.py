"""CSV and XLSX exports of the command-centre lists (django-import-export).

An export is the list the user is looking at: the admin's changelist queryset (region
scope, sidebar filters, search, date range) turned into rows, so nothing out of scope or
filtered away can leave through it. Headers are translated; times are Asia/Shanghai.

Personal data: the caller's phone number leaves in full only for those who may act on
the incident (operator, commander or admin covering it, the people who call back);
everyone else (a department liaison, say) gets it masked (``phone_mask``).
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _
from import_export import fields, resources

from apps.accounts.phones import phone_mask
from apps.incidents.models import Incident, Report
from apps.incidents.selectors.incidents import incident_can_command


def contact_visible(user: Any, incident: Incident | None) -> bool:
    """May ``user`` see the reporter's phone of ``incident`` in full?"""
    return incident is not None and incident_can_command(user, incident)


def phone_for(user: Any, incident: Incident | None, phone: str) -> str:
    if not phone or contact_visible(user, incident):
        return phone
    return phone_mask(phone)


def _field(attribute: str, label: Any, **kwargs: Any) -> fields.Field:
    return fields.Field(attribute=attribute, column_name=str(label), **kwargs)


class ScopedResource(resources.ModelResource):
    """A resource that knows who exports (``get_export_resource_kwargs`` passes it)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.user = kwargs.get("user")

    def get_export_headers(self, selected_fields: Any = None) -> list[str]:
        return [str(h) for h in super().get_export_headers(selected_fields)]


class IncidentResource(ScopedResource):
    number = _field("number", _("number"))
    title = _field("title", _("title"))
    status = _field("get_status_display", _("status"))
    severity = _field("get_severity_display", _("severity"))
    loop = _field("get_loop_display", _("loop"))
    category = _field("category__name_zh", _("category"))
    source = _field("get_source_display", _("source"))
    region = _field("region__name_zh", _("region"))
    address = _field("address", _("address"))
    lat = _field("lat", _("latitude"))
    lng = _field("lng", _("longitude"))
    reporter_name = _field("reporter_name", _("reporter name"))
    reporter_phone = _field("reporter_phone", _("reporter phone"))
    deaths = _field("deaths", _("deaths"))
    injured = _field("injured", _("injured"))
    missing = _field("missing", _("missing"))
    trapped = _field("trapped", _("trapped"))
    supervised_at = _field("supervised_at", _("supervised since (督办)"))
    created_at = _field("created_at", _("created at"))
    accepted_at = _field("accepted_at", _("accepted at"))
    in_progress_at = _field("in_progress_at", _("in progress since"))
    resolved_at = _field("resolved_at", _("resolved at"))
    closed_at = _field("closed_at", _("closed at"))
    resolution = _field("resolution", _("resolution"))

    class Meta:
        model = Incident
        fields = export_order = (
            "number",
            "title",
            "status",
            "severity",
            "loop",
            "category",
            "source",
            "region",
            "address",
            "lat",
            "lng",
            "reporter_name",
            "reporter_phone",
            "deaths",
            "injured",
            "missing",
            "trapped",
            "supervised_at",
            "created_at",
            "accepted_at",
            "in_progress_at",
            "resolved_at",
            "closed_at",
            "resolution",
        )

    def dehydrate_reporter_phone(self, incident: Incident) -> str:
        return phone_for(self.user, incident, incident.reporter_phone)

    def dehydrate_reporter_name(self, incident: Incident) -> str:
        if not incident.reporter_name or contact_visible(self.user, incident):
            return incident.reporter_name
        return incident.reporter_name[:1] + "*"


class ReportResource(ScopedResource):
    id = _field("id", _("id"))
    created_at = _field("created_at", _("submitted at"))
    status = _field("get_status_display", _("status"))
    is_sos = _field("is_sos", _("SOS"))
    channel = _field("get_channel_display", _("channel"))
    category = _field("category__name_zh", _("category"))
    region = _field("region__name_zh", _("region"))
    address = _field("address", _("address"))
    lat = _field("lat", _("latitude"))
    lng = _field("lng", _("longitude"))
    text = _field("text", _("text"))
    phone = _field("phone", _("contact phone"))
    incident = _field("incident__number", _("incident"))
    triaged_at = _field("triaged_at", _("triaged at"))
    rejection_reason = _field("rejection_reason", _("rejection reason"))
    rating = _field("rating", _("rating"))

    class Meta:
        model = Report
        fields = export_order = (
            "id",
            "created_at",
            "status",
            "is_sos",
            "channel",
            "category",
            "region",
            "address",
            "lat",
            "lng",
            "text",
            "phone",
            "incident",
            "triaged_at",
            "rejection_reason",
            "rating",
        )

    def dehydrate_phone(self, report: Report) -> str:
        # The report's contact follows the rule of the incident it became; a report not
        # yet triaged is judged at its own region (the triaging operators may call back).
        if not report.phone:
            return ""
        judge = report.incident or Incident(region=report.region)
        return phone_for(self.user, judge, report.phone)

    def dehydrate_is_sos(self, report: Report) -> str:
        return str(_("yes")) if report.is_sos else ""
