"""Command-centre admin: categories, incidents with their timeline, the triage queue.

Nothing here changes an incident or a report by saving a form: statuses, classification
and triage go through the services (admin actions), which lock, check the transition
table and write the timeline. The timeline itself is read-only (append-only, R11).
Incidents and reports are region-scoped like everything else (``RegionScopedAdminMixin``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.db.models import Case, IntegerField, QuerySet, Value, When
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _

from apps.audit.personal import PersonalDataAdminMixin
from apps.core.admin_mixins import ReadOnlyInlineMixin
from apps.core.errors import ApplicationError
from apps.incidents.api.attachment_urls import attachment_url
from apps.incidents.models import Attachment, Category, Incident, IncidentEvent, Report
from apps.incidents.services import incidents as incident_services
from apps.incidents.services import sla as sla_services
from apps.regions.admin_mixins import RegionScopedAdminMixin

# --- Categories ----------------------------------------------------------------------------


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = (
        "code",
        "name_zh",
        "name_en",
        "incident_class",
        "lead_department",
        "gbt35561_code",
        "citizen_reportable",
        "is_active",
    )
    list_filter = ("incident_class", "citizen_reportable", "is_active")
    search_fields = ("code", "name_zh", "name_en", "lead_department", "gbt35561_code")
    ordering = ("sort_order", "code")


# --- Shared bits ---------------------------------------------------------------------------


class ReasonActionForm(ActionForm):
    """The action bar with a text box: reasons for reject, notes for close."""

    reason = forms.CharField(label=_("Reason / note"), required=False, max_length=2000)


def _run_each(
    admin_obj: admin.ModelAdmin,
    request: HttpRequest,
    queryset: QuerySet[Any],
    call: Callable[[Any], Any],
    done: Any,
) -> None:
    """Apply ``call`` to each selected row; a refusal becomes an error message for that
    row (never a 500), the others still go through."""
    succeeded = 0
    for obj in queryset:
        try:
            call(obj)
        except ApplicationError as exc:
            admin_obj.message_user(
                request,
                _("%(object)s: %(message)s (%(code)s)")
                % {"object": obj, "message": exc.message, "code": exc.code},
                messages.ERROR,
            )
        else:
            succeeded += 1
    if succeeded:
        admin_obj.message_user(request, done % {"count": succeeded}, messages.SUCCESS)


def _thumbnail(attachment: Attachment) -> SafeString | str:
    """The photo through its checked download (the admin session authenticates it);
    media URLs are not served (docs/roles.md, "Media")."""
    if not attachment.thumbnail:
        return "—"
    thumbnail = attachment_url(attachment, thumbnail=True)
    return format_html(
        '<a href="{}" target="_blank" rel="noopener"><img src="{}" alt="" '
        'style="max-height:80px;max-width:120px"></a>',
        attachment_url(attachment) if attachment.file else thumbnail,
        thumbnail,
    )


class AttachmentInline(ReadOnlyInlineMixin, admin.TabularInline):
    model = Attachment
    fields = ("preview", "content_type", "width", "height", "size", "exif_lat", "exif_lng")
    readonly_fields = fields

    @admin.display(description=_("photo"))
    def preview(self, obj: Attachment) -> SafeString | str:
        return _thumbnail(obj)


class IncidentAttachmentInline(AttachmentInline):
    fk_name = "incident"


class ReportAttachmentInline(AttachmentInline):
    fk_name = "report"


# --- Incidents -----------------------------------------------------------------------------


class IncidentEventInline(ReadOnlyInlineMixin, admin.TabularInline):
    """The timeline, oldest first: append-only, so shown and never edited."""

    model = IncidentEvent
    fields = ("at", "kind", "actor", "data", "public")
    readonly_fields = fields
    ordering = ("at", "id")

    def get_queryset(self, request: HttpRequest) -> QuerySet[IncidentEvent]:
        return super().get_queryset(request).select_related("actor")


@admin.register(Incident)
class IncidentAdmin(PersonalDataAdminMixin, RegionScopedAdminMixin, admin.ModelAdmin):
    audit_personal_fields = ("reporter_name", "reporter_phone")  # each showing is audited
    region_path_field = "region__path"
    list_display = (
        "number",
        "title",
        "status",
        "severity",
        "loop",
        "category",
        "region",
        "command_region",
        "supervised_at",
        "is_drill",
        "created_at",
    )
    list_filter = ("status", "severity", "loop", "category", "region", "is_drill", "source")
    list_select_related = ("category", "region", "command_region")
    search_fields = ("number", "title", "address", "reporter_phone")
    date_hierarchy = "created_at"
    ordering = ("-created_at", "-id")
    inlines = (IncidentEventInline, IncidentAttachmentInline)
    action_form = ReasonActionForm
    actions = (
        "accept_selected",
        "close_selected",
        "reopen_selected",
        "confirm_closure_selected",
        "supervise_selected",
        "raise_loop_selected",
    )
    fieldsets = (
        (None, {"fields": ("number", "title", "description", "status", "merged_into")}),
        (
            _("Classification"),
            {"fields": ("category", "severity", "loop", "priority", "source", "is_drill")},
        ),
        (
            _("Command and supervision"),
            {"fields": ("command_region", "supervised_at")},
        ),
        (_("Location"), {"fields": ("region", "address", "lat", "lng")}),
        (_("Reporter"), {"fields": ("reporter_name", "reporter_phone", "extra")}),
        (_("Casualties"), {"fields": ("deaths", "injured", "missing", "trapped")}),
        (
            _("Outcome"),
            {
                "fields": (
                    "rejection_reason",
                    "resolution",
                    "created_at",
                    "accepted_at",
                    "in_progress_at",
                    "resolved_at",
                    "closed_at",
                    "created_by",
                )
            },
        ),
    )

    # Every column is read-only here: a form save would skip the lock, the transition
    # table and the timeline. Changes go through the actions (and the API).
    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [field for _name, opts in self.fieldsets for field in opts["fields"]]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # created by triage, hotline, sensors or the API: services only

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # the record of an emergency is never deleted

    @admin.action(description=_("Accept selected incidents"), permissions=["change"])
    def accept_selected(self, request: HttpRequest, queryset: QuerySet[Incident]) -> None:
        _run_each(
            self,
            request,
            queryset,
            lambda incident: incident_services.incident_accept(
                incident_id=incident.pk, by=request.user
            ),
            _("%(count)d incident(s) accepted."),
        )

    @admin.action(description=_("Close selected incidents (verified)"), permissions=["change"])
    def close_selected(self, request: HttpRequest, queryset: QuerySet[Incident]) -> None:
        note = request.POST.get("reason", "")
        _run_each(
            self,
            request,
            queryset,
            lambda incident: incident_services.incident_close(
                incident_id=incident.pk, by=request.user, note=note
            ),
            _("%(count)d incident(s) closed."),
        )

    # --- Verification and SLA escalation by hand (apps.incidents.services.sla) ---------------

    @admin.action(
        description=_("Verification failed: reopen selected (give the reason)"),
        permissions=["change"],
    )
    def reopen_selected(self, request: HttpRequest, queryset: QuerySet[Incident]) -> None:
        reason = request.POST.get("reason", "").strip()
        if not reason:
            self.message_user(
                request, _("Enter what failed verification in the box."), messages.ERROR
            )
            return
        _run_each(
            self,
            request,
            queryset,
            lambda incident: incident_services.incident_reopen(
                incident_id=incident.pk, by=request.user, reason=reason
            ),
            _("%(count)d incident(s) reopened."),
        )

    @admin.action(
        description=_("Confirm the closure of selected (after the citizen's feedback)"),
        permissions=["change"],
    )
    def confirm_closure_selected(self, request: HttpRequest, queryset: QuerySet[Incident]) -> None:
        note = request.POST.get("reason", "")
        _run_each(
            self,
            request,
            queryset,
            lambda incident: sla_services.incident_verification_confirm(
                incident_id=incident.pk, by=request.user, note=note
            ),
            _("%(count)d closure(s) confirmed."),
        )

    @admin.action(description=_("Supervise selected (督办)"), permissions=["change"])
    def supervise_selected(self, request: HttpRequest, queryset: QuerySet[Incident]) -> None:
        reason = request.POST.get("reason", "")
        _run_each(
            self,
            request,
            queryset,
            lambda incident: sla_services.incident_supervise(
                incident_id=incident.pk, by=request.user, reason=reason
            ),
            _("%(count)d incident(s) supervised."),
        )

    @admin.action(
        description=_("Raise the loop of selected (command moves up)"), permissions=["change"]
    )
    def raise_loop_selected(self, request: HttpRequest, queryset: QuerySet[Incident]) -> None:
        reason = request.POST.get("reason", "")
        _run_each(
            self,
            request,
            queryset,
            lambda incident: sla_services.incident_raise_loop(
                incident_id=incident.pk, by=request.user, reason=reason
            ),
            _("%(count)d incident(s) raised."),
        )


# --- Citizen reports: the triage queue -----------------------------------------------------


@admin.register(Report)
class ReportAdmin(PersonalDataAdminMixin, RegionScopedAdminMixin, admin.ModelAdmin):
    """The triage queue: submitted reports first, SOS first among them, oldest first."""

    audit_personal_fields = ("phone",)  # each showing of a reporter's number is audited

    region_path_field = "region__path"
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
    list_filter = ("status", "is_sos", "channel", "category", "region")
    list_select_related = ("category", "region", "incident")
    search_fields = ("text", "address", "phone")
    inlines = (ReportAttachmentInline,)
    action_form = ReasonActionForm
    actions = ("accept_selected", "reject_selected")
    exclude = ("token", "client_ip", "device_id")

    def get_ordering(self, request: HttpRequest) -> list[Any]:
        # An expression, not an annotation: the ordering is applied inside the base
        # get_queryset, before any annotation a subclass could add.
        pending_first = Case(
            When(status=Report.Status.SUBMITTED, then=Value(0)),
            default=Value(1),
            output_field=IntegerField(),
        )
        return [pending_first.asc(), "-is_sos", "created_at", "id"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        # The citizen's words and the triage outcome are records, not editable data.
        return [f.name for f in Report._meta.fields if f.name not in self.exclude]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description=_("text"))
    def short_text(self, obj: Report) -> str:
        return obj.text if len(obj.text) <= 40 else f"{obj.text[:40]}…"

    @admin.action(description=_("Accept selected reports (new incident)"), permissions=["change"])
    def accept_selected(self, request: HttpRequest, queryset: QuerySet[Report]) -> None:
        from apps.incidents.services import reports as report_services

        _run_each(
            self,
            request,
            queryset,
            lambda report: report_services.report_accept(report_id=report.pk, by=request.user),
            _("%(count)d report(s) accepted."),
        )

    @admin.action(description=_("Reject selected reports (give a reason)"), permissions=["change"])
    def reject_selected(self, request: HttpRequest, queryset: QuerySet[Report]) -> None:
        from apps.incidents.services import reports as report_services

        reason = request.POST.get("reason", "").strip()
        if not reason:
            self.message_user(
                request, _("Enter the reason for rejecting in the box."), messages.ERROR
            )
            return
        _run_each(
            self,
            request,
            queryset,
            lambda report: report_services.report_reject(
                report_id=report.pk, by=request.user, reason=reason
            ),
            _("%(count)d report(s) rejected."),
        )
