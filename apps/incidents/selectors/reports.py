"""Reads of citizen reports and their photos, each scoped to who is asking.

Three kinds of requester, one rule each:

- the reporter: by ownership (``reporter`` is the logged-in user) or by the tracking
  token (a capability handed out at submission);
- staff: roles with ``report.read`` (operators, commanders, admins, liaisons) by region
  scope (``apps.accounts.permissions``); a field role's scope does not open the staff
  view, whatever ``is_staff`` says;
- anyone else: the same 404 as for a report that does not exist, so neither ids nor
  tokens can be probed.
"""

from __future__ import annotations

import secrets
from typing import Any

from django.db.models import Prefetch, QuerySet
from django.utils.translation import gettext_lazy as _

from apps.accounts.permissions import Capability, can, can_somewhere, capability_scope
from apps.core.errors import ApplicationError, ErrorCode
from apps.incidents.errors import IncidentErrorCode
from apps.incidents.models import Attachment, IncidentEvent, Report
from apps.incidents.policies import attachment_visible

# The timeline kinds a reporter sees: status changes only. Notes, classification,
# casualty figures, ratings and staff actors stay internal.
PUBLIC_EVENT_KINDS = frozenset(
    {
        IncidentEvent.Kind.CREATED,
        IncidentEvent.Kind.ACCEPTED,
        IncidentEvent.Kind.STARTED,
        IncidentEvent.Kind.RESOLVED,
        IncidentEvent.Kind.CLOSED,
        IncidentEvent.Kind.REOPENED,
        IncidentEvent.Kind.REJECTED,
        IncidentEvent.Kind.MERGED,
    }
)
TOKEN_MAX_LENGTH = 64


def _not_found() -> ApplicationError:
    return ApplicationError(IncidentErrorCode.REPORT_NOT_FOUND, _("Report not found."), status=404)


def same_token(expected: str, given: str) -> bool:
    """Constant-time comparison; bytes, because ``compare_digest`` refuses non-ASCII str."""
    return secrets.compare_digest(expected.encode(), given[:TOKEN_MAX_LENGTH].encode())


def _citizen_queryset() -> QuerySet[Report]:
    """Everything the citizen views render, in a fixed number of queries."""
    return Report.objects.select_related(
        "category", "region", "incident", "incident__merged_into"
    ).prefetch_related(Prefetch("attachments", queryset=Attachment.objects.order_by("id")))


def report_list_mine(*, user: Any) -> QuerySet[Report]:
    """The logged-in citizen's own reports, newest first."""
    if not getattr(user, "is_authenticated", False):
        return Report.objects.none()
    return _citizen_queryset().filter(reporter=user).order_by("-created_at", "-id")


def report_get_for_reporter(*, report_id: int, user: Any) -> Report:
    """The report ``report_id`` if ``user`` submitted it; 404 otherwise."""
    if not getattr(user, "is_authenticated", False):
        raise _not_found()
    report = _citizen_queryset().filter(pk=report_id, reporter=user).first()
    if report is None:
        raise _not_found()
    return report


def report_get_by_token(*, token: str) -> Report:
    """The report whose tracking token is ``token``; 404 otherwise."""
    if not isinstance(token, str) or not token or len(token) > TOKEN_MAX_LENGTH:
        raise _not_found()
    report = _citizen_queryset().filter(token=token).first()
    # The index lookup already matched; compare again in constant time so a
    # collation or trailing-space quirk of a backend can never widen the match.
    if report is None or not same_token(report.token, token):
        raise _not_found()
    return report


def report_public_timeline(*, report: Report) -> list[IncidentEvent]:
    """The status changes of the report's incident the reporter may see: public rows
    of the status kinds only, without actors (the API never renders ``actor``)."""
    if report.incident_id is None:
        return []
    return list(
        IncidentEvent.objects.filter(
            incident_id=report.incident_id, public=True, kind__in=PUBLIC_EVENT_KINDS
        )
        .only("id", "kind", "at", "incident_id")
        .order_by("at", "id")
    )


# --- Staff -------------------------------------------------------------------------------


def report_can_read_as_staff(user: Any) -> bool:
    """Does ``user`` read citizen reports as staff somewhere (``report.read``)?"""
    return can_somewhere(user, Capability.REPORT_READ)


def report_can_triage(user: Any) -> bool:
    """Does ``user`` triage somewhere (``report.triage``: not liaisons)?"""
    return can_somewhere(user, Capability.REPORT_TRIAGE)


def _staff_queryset(user: Any, capability: Capability = Capability.REPORT_READ) -> QuerySet[Report]:
    scope = capability_scope(user, capability)
    return (
        Report.objects.filter(scope.q("region__path"))
        .select_related("category", "region", "incident", "incident__merged_into", "reporter")
        .prefetch_related(Prefetch("attachments", queryset=Attachment.objects.order_by("id")))
    )


def report_triage_queue(*, user: Any) -> QuerySet[Report]:
    """Submitted reports in ``user``'s scope: SOS first, then oldest first (the order
    the partial index ``incidents_report_triage_idx`` serves)."""
    if not report_can_triage(user):
        return Report.objects.none()
    queue = _staff_queryset(user, Capability.REPORT_TRIAGE).pending_triage()
    return queue.order_by("-is_sos", "created_at", "id")


def report_get_for_staff(*, report_id: int, user: Any) -> Report:
    """A report in ``user``'s ``report.read`` scope; 404 otherwise."""
    if not report_can_read_as_staff(user):
        raise _not_found()
    report = _staff_queryset(user).filter(pk=report_id).first()
    if report is None:
        raise _not_found()
    return report


def report_get_for_triage(*, report_id: int, user: Any) -> Report:
    """A report ``user`` may triage (``report.triage`` over its region); 403 if they
    only read it (a liaison), 404 if they may not even see it."""
    report = report_get_for_staff(report_id=report_id, user=user)
    if not can(user, Capability.REPORT_TRIAGE, report.region.path):
        raise ApplicationError(ErrorCode.PERMISSION_DENIED, status=403)
    return report


# --- Photos ------------------------------------------------------------------------------


def attachment_get_for_download(
    *, attachment_id: int, user: Any, token: str = "", signature: str = ""
) -> Attachment:
    """An attachment the requester may fetch; 404 otherwise.

    The rule is ``apps.incidents.policies.attachment_visible``: the reporter (logged
    in, or holding the report's tracking token, or a fresh signed link), staff with
    ``reporter.contact`` over its region, the incident's assigned team and command post.
    """
    attachment = (
        Attachment.objects.select_related(
            "report", "report__region", "incident", "incident__region"
        )
        .filter(pk=attachment_id)
        .first()
    )
    if attachment is None or not attachment_visible(
        user, attachment, token=token, signature=signature
    ):
        raise ApplicationError(ErrorCode.NOT_FOUND, status=404)
    return attachment
