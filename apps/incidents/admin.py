"""Command-centre admin of the incidents app: the category taxonomy, and the building
blocks the incident and report pages use (``apps.console``: those pages need dispatch,
which sits above incidents, so they live in the console app).

Nothing here changes an incident or a report by saving a form: statuses, classification
and triage go through the services, which lock, check the transition table and write
the timeline. The timeline itself is read-only (append-only, R11).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _
from unfold.admin import ModelAdmin, TabularInline
from unfold.forms import ActionForm

from apps.accounts.admin_mixins import InternalAdminMixin
from apps.core.admin_mixins import ReadOnlyInlineMixin
from apps.core.errors import ApplicationError
from apps.incidents.api.attachment_urls import attachment_url
from apps.incidents.models import Attachment, Category, IncidentEvent

# --- Categories ----------------------------------------------------------------------------


@admin.register(Category)
class CategoryAdmin(InternalAdminMixin, ModelAdmin):
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


def run_each(
    admin_obj: ModelAdmin,
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


class AttachmentInline(ReadOnlyInlineMixin, TabularInline):
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


class IncidentEventInline(ReadOnlyInlineMixin, TabularInline):
    """The timeline, oldest first: append-only, so shown and never edited."""

    model = IncidentEvent
    fields = ("at", "kind", "actor", "data", "public")
    readonly_fields = fields
    ordering = ("at", "id")

    def get_queryset(self, request: HttpRequest) -> QuerySet[IncidentEvent]:
        return super().get_queryset(request).select_related("actor")
