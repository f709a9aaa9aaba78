"""The triage queue and the report page: accept, reject, mark duplicate.

URLs (under ``/admin/incidents/report/``):

==============================  ===============================================================
``?status__exact=submitted``    the queue: submitted first, SOS first among them, oldest first
``<id>/change/``                the report page: the citizen's words, photos, the nearby
                                duplicate candidates (``apps.incidents.duplicates``) and the
                                triage buttons
``<id>/triage/<action>/``       accept (new incident, classified, at a community of the
                                street) · reject (reason shown to the citizen) · duplicate
                                (link to an open incident): confirm, then the service
``export/``                     the list as CSV/XLSX
==============================  ===============================================================

The services check the region scope and the report's status themselves
(``report_accept`` & co.); the admin adds the role's permission (``change_report``).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Case, IntegerField, QuerySet, Value, When
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.translation import gettext_lazy as _
from import_export.admin import ExportMixin
from unfold.admin import ModelAdmin
from unfold.contrib.filters.admin import RangeDateTimeFilter
from unfold.contrib.import_export.forms import ExportForm

from apps.audit.personal import PersonalDataAdminMixin
from apps.console import forms as f
from apps.console.exports import ReportResource, phone_for
from apps.console.photos import photo_links
from apps.core.errors import ApplicationError
from apps.core.exports import ExportAdminMixin
from apps.incidents.admin import ReasonActionForm, ReportAttachmentInline, run_each
from apps.incidents.duplicates import duplicate_candidates
from apps.incidents.models import Incident, Report
from apps.incidents.services import reports as report_services
from apps.regions.admin_mixins import RegionScopedAdminMixin
from apps.regions.models import RegionLevel
from apps.regions.selectors import street_communities

DUPLICATE_LIMIT = 8

TRIAGE = {
    "accept": (
        _("Accept: new incident"),
        f.TriageAcceptForm,
        _("Report accepted: incident %(number)s."),
    ),
    "duplicate": (
        _("Duplicate of an open incident"),
        f.TriageDuplicateForm,
        _("Report linked to incident %(number)s as a duplicate."),
    ),
    "reject": (_("Reject (reason to the citizen)"), f.TriageRejectForm, _("Report rejected.")),
}


@admin.register(Report)
class ReportAdmin(
    PersonalDataAdminMixin, RegionScopedAdminMixin, ExportAdminMixin, ExportMixin, ModelAdmin
):
    audit_personal_fields = ("phone",)  # each showing of a reporter's number is audited

    """The triage queue: submitted reports first, SOS first among them, oldest first."""

    region_path_field = "region__path"
    resource_classes = [ReportResource]
    export_form_class = ExportForm
    list_display = (
        "created_at",
        "is_sos",
        "status",
        "category",
        "region",
        "short_text",
        "incident",
        "channel",
    )
    list_filter = (
        "status",
        "is_sos",
        "channel",
        "category",
        ("created_at", RangeDateTimeFilter),
    )
    list_filter_submit = True
    list_select_related = ("category", "region", "incident")
    search_fields = ("text", "address")
    inlines = (ReportAttachmentInline,)
    action_form = ReasonActionForm
    actions = ("accept_selected", "reject_selected")
    list_per_page = 50

    def get_ordering(self, request: HttpRequest) -> list[Any]:
        pending_first = Case(
            When(status=Report.Status.SUBMITTED, then=Value(0)),
            default=Value(1),
            output_field=IntegerField(),
        )
        return [pending_first.asc(), "-is_sos", "created_at", "id"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # reports come from citizens (app, Open311, SOS)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description=_("text"))
    def short_text(self, obj: Report) -> str:
        return obj.text if len(obj.text) <= 40 else f"{obj.text[:40]}…"

    # --- URLs and the report page --------------------------------------------------------------

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "<path:object_id>/triage/<slug:action>/",
                self.admin_site.admin_view(self.triage_view),
                name="incidents_report_triage",
            ),
            *super().get_urls(),
        ]

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        report = self.get_object(request, object_id)
        if report is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_view_permission(request, report):
            raise PermissionDenied
        may_triage = self.has_change_permission(request, report)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": report,
            "report": report,
            "title": _("Citizen report #%(id)s") % {"id": report.pk},
            "phone": phone_for(
                request.user, report.incident or Incident(region=report.region), report.phone
            ),
            "attachments": photo_links(report.attachments.order_by("id")),
            "candidates": self._candidates(request, report),
            "buttons": [
                {"name": name, "label": spec[0], "url": self._triage_url(report, name)}
                for name, spec in TRIAGE.items()
            ]
            if may_triage and report.status == Report.Status.SUBMITTED
            else [],
        }
        return TemplateResponse(request, "admin/incidents/report/page.html", context)

    def triage_view(self, request: HttpRequest, object_id: str, action: str) -> HttpResponse:
        report = self.get_object(request, object_id)
        spec = TRIAGE.get(action)
        if report is None or spec is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        page_url = reverse("admin:incidents_report_change", args=[report.pk])
        if not self.has_change_permission(request, report):
            self.message_user(
                request, _("Your role does not allow triaging reports."), messages.ERROR
            )
            return HttpResponseRedirect(page_url)
        label, form_class, done = spec
        candidates = self._candidates(request, report)
        context = {
            "candidates": candidates,
            "duplicate_choices": [
                (
                    c.incident.pk,
                    _("%(number)s %(title)s · %(distance).0f m")
                    % {
                        "number": c.incident.number,
                        "title": c.incident.title,
                        "distance": c.distance_m,
                    },
                )
                for c in candidates
            ],
            "community_choices": self._community_choices(report),
        }
        initial = {"category": report.category.code} if action == "accept" else None
        form = form_class(request.POST or None, initial=initial, context=context)
        if request.method == "POST" and form.is_valid():
            try:
                result = self.run(request, report, action, form.cleaned_data)
            except ApplicationError as exc:
                if not f.errors_to_form(form, exc, {"incident_id": "incident"}):
                    self.message_user(request, exc.message, messages.ERROR)
            else:
                number = result.incident.number if result.incident_id else ""
                self.message_user(request, done % {"number": number}, messages.SUCCESS)
                if result.incident_id:
                    return HttpResponseRedirect(
                        reverse("admin:incidents_incident_change", args=[result.incident_id])
                    )
                return HttpResponseRedirect(page_url)
        return TemplateResponse(
            request,
            "admin/incidents/report/triage.html",
            {
                **self.admin_site.each_context(request),
                **context,
                "opts": self.opts,
                "original": report,
                "report": report,
                "form": form,
                "title": label,
                "page_url": page_url,
            },
        )

    def run(
        self, request: HttpRequest, report: Report, action: str, data: dict[str, Any]
    ) -> Report:
        """The one service call of each triage action (the same the API makes)."""
        if action == "accept":
            return report_services.report_accept(
                report_id=report.pk,
                by=request.user,
                category=data["category"] or None,
                severity=data["severity"] or None,
                loop=data["loop"] or None,
                community=data["community"] or None,
            )
        if action == "duplicate":
            return report_services.report_mark_duplicate(
                report_id=report.pk, by=request.user, incident_id=data["incident"]
            )
        return report_services.report_reject(
            report_id=report.pk, by=request.user, reason=data["reason"]
        )

    def _candidates(self, request: HttpRequest, report: Report) -> list[Any]:
        return duplicate_candidates(
            lat=report.lat,
            lng=report.lng,
            category=report.category,
            at=report.created_at,
            limit=DUPLICATE_LIMIT,
            visible_to=request.user,
        )

    def _community_choices(self, report: Report) -> list[tuple[str, str]]:
        street = (
            report.region if report.region.level == RegionLevel.STREET else report.region.parent
        )
        if street is None:
            return []
        try:
            units = street_communities(street_code=street.code)
        except ApplicationError:
            return []
        return [(unit.code, unit.name_zh) for unit in units]

    def _triage_url(self, report: Report, action: str) -> str:
        return reverse("admin:incidents_report_triage", args=[report.pk, action])

    # --- Bulk (the same services, one report at a time) ----------------------------------------

    @admin.action(description=_("Accept selected reports (new incident)"), permissions=["change"])
    def accept_selected(self, request: HttpRequest, queryset: QuerySet[Report]) -> None:
        run_each(
            self,
            request,
            queryset,
            lambda report: report_services.report_accept(report_id=report.pk, by=request.user),
            _("%(count)d report(s) accepted."),
        )

    @admin.action(description=_("Reject selected reports (give a reason)"), permissions=["change"])
    def reject_selected(self, request: HttpRequest, queryset: QuerySet[Report]) -> None:
        reason = request.POST.get("reason", "").strip()
        if not reason:
            self.message_user(
                request, _("Enter the reason for rejecting in the box."), messages.ERROR
            )
            return
        run_each(
            self,
            request,
            queryset,
            lambda report: report_services.report_reject(
                report_id=report.pk, by=request.user, reason=reason
            ),
            _("%(count)d report(s) rejected."),
        )
