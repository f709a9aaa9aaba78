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

from apps.accounts.phones import phone_mask
from apps.core.exports import ExportResource, column, yes_blank
from apps.incidents.models import Incident, Report
from apps.incidents.selectors.incidents import incident_can_command


def contact_visible(user: Any, incident: Incident | None) -> bool:
    """May ``user`` see the reporter's phone of ``incident`` in full?"""
    return incident is not None and incident_can_command(user, incident)


def phone_for(user: Any, incident: Incident | None, phone: str) -> str:
    if not phone or contact_visible(user, incident):
        return phone
    return phone_mask(phone)


class IncidentResource(ExportResource):
    number = column("number", _("number"))
    title = column("title", _("title"))
    status = column("get_status_display", _("status"))
    severity = column("get_severity_display", _("severity"))
    loop = column("get_loop_display", _("loop"))
    category = column("category__name_zh", _("category"))
    source = column("get_source_display", _("source"))
    region = column("region__name_zh", _("region"))
    address = column("address", _("address"))
    lat = column("lat", _("latitude"))
    lng = column("lng", _("longitude"))
    reporter_name = column("reporter_name", _("reporter name"))
    reporter_phone = column("reporter_phone", _("reporter phone"))
    deaths = column("deaths", _("deaths"))
    injured = column("injured", _("injured"))
    missing = column("missing", _("missing"))
    trapped = column("trapped", _("trapped"))
    supervised_at = column("supervised_at", _("supervised since (督办)"))
    created_at = column("created_at", _("created at"))
    accepted_at = column("accepted_at", _("accepted at"))
    in_progress_at = column("in_progress_at", _("in progress since"))
    resolved_at = column("resolved_at", _("resolved at"))
    closed_at = column("closed_at", _("closed at"))
    resolution = column("resolution", _("resolution"))

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


class ReportResource(ExportResource):
    id = column("id", _("id"))
    created_at = column("created_at", _("submitted at"))
    status = column("get_status_display", _("status"))
    is_sos = column("is_sos", _("SOS"))
    channel = column("get_channel_display", _("channel"))
    category = column("category__name_zh", _("category"))
    region = column("region__name_zh", _("region"))
    address = column("address", _("address"))
    lat = column("lat", _("latitude"))
    lng = column("lng", _("longitude"))
    text = column("text", _("text"))
    phone = column("phone", _("contact phone"))
    incident = column("incident__number", _("incident"))
    triaged_at = column("triaged_at", _("triaged at"))
    rejection_reason = column("rejection_reason", _("rejection reason"))
    rating = column("rating", _("rating"))

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
        return yes_blank(report.is_sos)
