"""Citizen reports: intake (normal and SOS), triage, and the citizen's follow-up.

Intake is built so that an accepted report is never lost and the database is held for as
little time as possible:

1. Validate everything that needs no lock: category, coordinates → street (the in-process
   street index, zero queries when warm), category fields, phone.
2. Decode and sanitise the photos and write them to storage *before* the transaction
   opens (seconds of CPU and network I/O must not hold row locks or a pool connection
   in a transaction).
3. One short transaction inserts the report and its attachment rows; if it fails, the
   files written in step 2 are deleted.
4. After commit, :func:`_after_submit` runs (the hook for realtime and push).

Triage (accept / reject / mark duplicate) is race-safe: the report row is locked and its
status re-checked under the lock, so of two operators pressing "accept" at once exactly
one wins and the other gets 409 ``report_already_triaged``. Locks are taken incident
first, then report (``apps.incidents.locks``), so two triage actions never deadlock.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from apps.accounts.phones import PhoneNumberError, phone_normalise
from apps.core.errors import ApplicationError, ErrorCode
from apps.core.scoping import scope_for
from apps.core.transactions import on_commit
from apps.incidents import locks
from apps.incidents.catalogue import catalogue
from apps.incidents.errors import IncidentErrorCode
from apps.incidents.intake.events import report_submitted_emit
from apps.incidents.models import (
    OPEN_STATUSES,
    Category,
    Incident,
    IncidentEvent,
    PublicStatus,
    Report,
)
from apps.incidents.public_status import MAX_MERGE_DEPTH, public_status_for
from apps.incidents.realtime import (
    report_linked,
    report_rated,
    report_rejected,
    report_reopen_requested,
)
from apps.incidents.services import sla as sla_hooks
from apps.incidents.services.attachments import (
    attachments_create,
    photo_files_delete,
    photo_files_write,
    photos_process,
)
from apps.incidents.services.incidents import incident_create
from apps.incidents.taxonomy import category_fields_validate, severity_suggestion
from apps.incidents.timeline import timeline_append
from apps.regions.errors import RegionErrorCode
from apps.regions.models import Region
from apps.regions.selectors import locate_street

logger = logging.getLogger(__name__)

TEXT_MAX_LENGTH = 2000
ADDRESS_MAX_LENGTH = 300
REASON_MAX_LENGTH = 1000
DEFAULT_SOS_CATEGORY_CODE = "O99"
DEFAULT_REOPEN_WINDOW_DAYS = 7
EMERGENCY_NUMBERS = ("110", "119", "120")

MESSAGES: dict[str, Any] = {
    IncidentErrorCode.CATEGORY_UNKNOWN: _("Unknown category."),
    IncidentErrorCode.REPORT_NOT_FOUND: _("Report not found."),
    IncidentErrorCode.INCIDENT_NOT_FOUND: _("Incident not found."),
    IncidentErrorCode.REPORT_ALREADY_TRIAGED: _("This report has already been triaged."),
    IncidentErrorCode.MERGE_TARGET_INVALID: _("The incident is not open."),
    IncidentErrorCode.REPORT_NOT_RATEABLE: _("A report can be rated once its case is closed."),
    IncidentErrorCode.REPORT_ALREADY_RATED: _("This report has already been rated."),
    IncidentErrorCode.REOPEN_NOT_ALLOWED: _("Reopening can only be requested for a closed case."),
    IncidentErrorCode.REOPEN_WINDOW_CLOSED: _("The time to request reopening has passed."),
}


def _error(code: str, *, status: int, **extra: Any) -> ApplicationError:
    return ApplicationError(code, MESSAGES[code], extra=extra, status=status)


def _field_error(
    field: str, code: str, message: Any, *, error_code: str = ErrorCode.INVALID
) -> ApplicationError:
    """A 400 envelope with one field error, the shape serializer errors have."""
    return ApplicationError(
        error_code,
        message if error_code != ErrorCode.INVALID else None,
        extra={"fields": {field: [{"code": code, "message": str(message)}]}},
        status=400,
    )


def sos_category_code() -> str:
    return str(getattr(settings, "INCIDENTS_SOS_CATEGORY_CODE", DEFAULT_SOS_CATEGORY_CODE))


def reopen_window() -> timedelta:
    days = getattr(settings, "INCIDENTS_REOPEN_WINDOW_DAYS", DEFAULT_REOPEN_WINDOW_DAYS)
    return timedelta(days=float(days))


def report_token_new() -> str:
    """A 256-bit tracking token (43 URL-safe characters): the anonymous reporter's only key."""
    return secrets.token_urlsafe(32)


# --- Intake ------------------------------------------------------------------------------


def _category_for_citizen(code: Any, *, sos: bool) -> Category:
    # The in-process catalogue: no query per report (apps.incidents.catalogue).
    category = catalogue().citizen_category(code, sos=sos)
    if category is None:
        raise _field_error(
            "category",
            IncidentErrorCode.CATEGORY_UNKNOWN,
            MESSAGES[IncidentErrorCode.CATEGORY_UNKNOWN],
            error_code=IncidentErrorCode.CATEGORY_UNKNOWN,
        )
    return category


def _phone_or_blank(phone: str) -> str:
    if not phone or not phone.strip():
        return ""
    try:
        return phone_normalise(phone)
    except PhoneNumberError as exc:
        raise _field_error("phone", "invalid", exc.message) from None


def _text_checked(field: str, value: str, limit: int) -> str:
    text = (value or "").strip()
    if len(text) > limit:
        message = _("At most %(limit)s characters.") % {"limit": limit}
        raise _field_error(field, "max_length", message)
    return text


def _street_for(lat: Any, lng: Any, *, sos: bool) -> Region:
    try:
        return locate_street(lat, lng)
    except ApplicationError as exc:
        if sos and exc.code == RegionErrorCode.POINT_OUTSIDE_AREA:
            # The app shows these instead of a dead end: outside the new area the
            # national emergency numbers still answer.
            exc.extra = {**exc.extra, "emergency_numbers": list(EMERGENCY_NUMBERS)}
        raise


def report_submit(
    *,
    category_code: str,
    lat: float,
    lng: float,
    text: str = "",
    phone: str = "",
    photos: Sequence[Any] = (),
    extra: Mapping[str, Any] | None = None,
    reporter: Any = None,
    channel: str = Report.Channel.APP,
    is_sos: bool = False,
    address: str = "",
    client_ip: str | None = None,
    device_id: str = "",
) -> Report:
    """Take in a citizen report with its photos; committed when this returns.

    Refusals (nothing is written): unknown/inactive/non-reportable category → 400
    ``category_unknown`` (field ``category``); bad coordinates → 400 ``invalid``
    (fields ``lat``/``lng``); outside the new area → 422 ``point_outside_area``;
    category fields → 400 ``category_field_invalid``; photos → 400
    ``attachment_invalid`` / ``attachment_too_large`` / ``too_many_attachments``
    (field ``photos``); phone → 400 ``invalid`` (field ``phone``).
    """
    # 1. Validation that needs no lock and no transaction.
    category = _category_for_citizen(category_code, sos=is_sos)
    region = _street_for(lat, lng, sos=is_sos)
    fields = {} if is_sos and not extra else category_fields_validate(category, extra)
    contact = _phone_or_blank(phone)
    user = reporter if getattr(reporter, "is_authenticated", False) else None
    if not contact and user is not None and user.phone:
        contact = user.phone  # a registered citizen can be called back without retyping
    clean_text = _text_checked("text", text, TEXT_MAX_LENGTH)
    clean_address = _text_checked("address", address, ADDRESS_MAX_LENGTH)
    if channel not in Report.Channel.values:
        raise _field_error("channel", "invalid_choice", _("Unknown channel."))

    # 2. CPU and storage I/O before the transaction.
    processed = photos_process(list(photos))
    stored = photo_files_write(processed)

    # 3. One short transaction; 4. the hook after commit.
    try:
        with transaction.atomic():
            report = Report.objects.create(
                token=report_token_new(),
                reporter=user,
                phone=contact,
                channel=channel,
                category=category,
                text=clean_text,
                lat=float(lat),
                lng=float(lng),
                address=clean_address,
                region=region,
                extra=fields,
                is_sos=is_sos,
                client_ip=client_ip or None,
                device_id=(device_id or "")[:64],
            )
            attachments_create(stored=stored, report=report, uploaded_by=user)
            sla_hooks.on_report_submitted(report)  # the triage clock (5 min by default)
            # The operator board and the citizen's stream (the fast path writes the same).
            report_submitted_emit(report)
            report_id = report.pk
            region_code, is_sos = report.region.code, report.is_sos
            on_commit(lambda: _after_submit(report_id, region_code, is_sos))
    except BaseException:
        photo_files_delete(stored)
        raise
    return report


def report_submit_sos(
    *,
    lat: float,
    lng: float,
    text: str = "",
    reporter: Any = None,
    phone: str = "",
    channel: str = Report.Channel.APP,
    client_ip: str | None = None,
    device_id: str = "",
) -> Report:
    """One-touch SOS: a report in the configured SOS category (``INCIDENTS_SOS_CATEGORY_CODE``)
    with ``is_sos=True``, which puts it at the top of the triage queue."""
    return report_submit(
        category_code=sos_category_code(),
        lat=lat,
        lng=lng,
        text=text,
        phone=phone,
        reporter=reporter,
        channel=channel,
        is_sos=True,
        client_ip=client_ip,
        device_id=device_id,
    )


def _after_submit(report_id: int, region_code: str, is_sos: bool) -> None:
    """Runs once the report is committed: where realtime (operator board) and push
    (duty officer) hook in when notifications land. Robust on-commit: a failure here
    is logged and never turns the citizen's 201 into an error. Takes what it needs as
    arguments: a re-read cost a query per report in the intake benchmark."""
    logger.info("report submitted: id=%s region=%s sos=%s", report_id, region_code, is_sos)


# --- Triage ------------------------------------------------------------------------------


def _require_triage_scope(by: Any, region: Region, *, missing: str) -> None:
    """Staff with scope over ``region``; anyone else gets the not-found answer (out of
    scope reads as 404: existence is not leaked)."""
    if not getattr(by, "is_authenticated", False) or not by.is_staff:
        raise ApplicationError(ErrorCode.PERMISSION_DENIED, status=403)
    if not scope_for(by).covers(region.path):
        raise _error(missing, status=404)


def _locked_open_incident(incident_id: int, by: Any) -> Incident:
    """Lock the incident a report is linked to; it must be open and in ``by``'s scope."""
    incident = locks.incident_for_update(incident_id)
    _require_triage_scope(by, incident.region, missing=IncidentErrorCode.INCIDENT_NOT_FOUND)
    if incident.status not in OPEN_STATUSES:
        # A closed, rejected or merged incident takes no new reports: the operator
        # links to the live one (a merged incident names it in merged_into_id).
        raise _error(
            IncidentErrorCode.MERGE_TARGET_INVALID,
            status=409,
            incident_status=incident.status,
            merged_into_id=incident.merged_into_id,
        )
    return incident


def _locked_submitted_report(report_id: int, by: Any) -> Report:
    report = locks.report_for_update(report_id)
    _require_triage_scope(by, report.region, missing=IncidentErrorCode.REPORT_NOT_FOUND)
    if report.status != Report.Status.SUBMITTED:
        raise _error(
            IncidentErrorCode.REPORT_ALREADY_TRIAGED,
            status=409,
            report_status=report.status,
            incident_id=report.incident_id,
        )
    return report


def _choice(field: str, value: str | None, choices: list[str]) -> str | None:
    if value is None or value == "":
        return None
    if value not in choices:
        raise _field_error(field, "invalid_choice", _("Not one of the allowed values."))
    return value


def _category_for_staff(code: str | None) -> Category | None:
    if not code:
        return None
    category = Category.objects.filter(code=code, is_active=True).first()
    if category is None:
        raise _field_error(
            "category",
            IncidentErrorCode.CATEGORY_UNKNOWN,
            MESSAGES[IncidentErrorCode.CATEGORY_UNKNOWN],
            error_code=IncidentErrorCode.CATEGORY_UNKNOWN,
        )
    return category


def _mark_triaged(
    report: Report, *, status: str, by: Any, incident: Incident | None, reason: str = ""
) -> None:
    report.status = status
    report.incident = incident
    report.rejection_reason = reason
    report.triaged_at = timezone.now()
    report.triaged_by = by
    report.save(
        update_fields=[
            "status",
            "incident",
            "rejection_reason",
            "triaged_at",
            "triaged_by",
            "updated_at",
        ]
    )
    sla_hooks.on_report_triaged(report)


def _incident_title(report: Report, category: Category) -> str:
    """``<category>: <first line of the text | address | street>``, at most 200 chars."""
    lines = report.text.strip().splitlines()
    detail = (lines[0] if lines else "") or report.address or report.region.name_zh
    return f"{category.name_zh}: {detail}"[:200]


@transaction.atomic
def report_accept(
    *,
    report_id: int,
    by: Any,
    incident_id: int | None = None,
    category: str | None = None,
    severity: str | None = None,
    loop: str | None = None,
) -> Report:
    """受理: create an accepted incident from the report (classified with ``category``,
    ``severity``, ``loop`` — defaults: the report's category, the severity the category
    fields suggest, small loop), or link the report to the open incident ``incident_id``
    in the operator's scope. Either way the incident's timeline gets ``report_linked``.

    Refusals: 404 out of scope or unknown; 409 ``report_already_triaged`` if someone
    else triaged it first; 409 ``merge_target_invalid`` if the incident is not open.
    """
    severity = _choice("severity", severity, Incident.Severity.values)
    loop = _choice("loop", loop, Incident.Loop.values)
    chosen_category = _category_for_staff(category)
    if incident_id is not None:
        incident = _locked_open_incident(incident_id, by)  # lock order: incident, report
        report = _locked_submitted_report(report_id, by)
    else:
        report = _locked_submitted_report(report_id, by)
        report_category = chosen_category or report.category
        incident = incident_create(
            category=report_category,
            region=report.region,
            lat=report.lat,
            lng=report.lng,
            source=Incident.Source.CITIZEN_REPORT,
            title=_incident_title(report, report_category),
            by=by,
            description=report.text,
            address=report.address,
            severity=severity or severity_suggestion(report_category, report.extra),
            loop=loop or Incident.Loop.SMALL,
            priority=Incident.Priority.SOS if report.is_sos else Incident.Priority.NORMAL,
            extra=report.extra if report_category.pk == report.category_id else {},
            reporter_phone=report.phone,
            status=Incident.Status.ACCEPTED,
        )
        # The report's photos are evidence of the incident; they stay owned by the
        # report (the citizen's access follows it) and are reached through it.
    _mark_triaged(report, status=Report.Status.ACCEPTED, by=by, incident=incident)
    entry = timeline_append(
        incident=incident,
        kind=IncidentEvent.Kind.REPORT_LINKED,
        actor=by,
        data={"report_id": report.pk, "as": "accepted", "sos": report.is_sos},
    )
    report_linked(report, incident, entry)
    _log_triage(report, "accepted")
    return report


@transaction.atomic
def report_reject(*, report_id: int, by: Any, reason: str) -> Report:
    """不予受理 with a reason the citizen sees. A blank reason is refused (400, field
    ``reason``): a citizen told "no" deserves to know why."""
    clean_reason = _text_checked("reason", reason, REASON_MAX_LENGTH)
    if not clean_reason:
        raise _field_error("reason", "required", _("Give the reason the citizen will see."))
    report = _locked_submitted_report(report_id, by)
    _mark_triaged(report, status=Report.Status.REJECTED, by=by, incident=None, reason=clean_reason)
    report_rejected(report)
    _log_triage(report, "rejected")
    return report


@transaction.atomic
def report_mark_duplicate(*, report_id: int, by: Any, incident_id: int) -> Report:
    """The report is about an incident already open: link it as a duplicate (the
    citizen then follows that incident's public status)."""
    incident = _locked_open_incident(incident_id, by)  # lock order: incident, report
    report = _locked_submitted_report(report_id, by)
    _mark_triaged(report, status=Report.Status.DUPLICATE, by=by, incident=incident)
    entry = timeline_append(
        incident=incident,
        kind=IncidentEvent.Kind.REPORT_LINKED,
        actor=by,
        data={"report_id": report.pk, "as": "duplicate", "sos": report.is_sos},
    )
    report_linked(report, incident, entry)
    _log_triage(report, "duplicate")
    return report


def _log_triage(report: Report, outcome: str) -> None:
    report_id = report.pk
    on_commit(lambda: logger.info("report triaged: id=%s outcome=%s", report_id, outcome))


# --- The citizen's follow-up ---------------------------------------------------------------


def _current_incident(report: Report) -> Incident | None:
    """The incident whose status the citizen sees: the linked one, or where it was
    merged into (the chain ``public_status_for`` follows too)."""
    incident = report.incident
    for _hop in range(MAX_MERGE_DEPTH):
        if incident is None or incident.merged_into_id is None:
            return incident
        incident = incident.merged_into
    return incident


@transaction.atomic
def report_rate(*, report: Report, rating: int, comment: str = "", by: Any = None) -> Report:
    """The reporter rates the handling (1–5) with an optional comment, once.

    Only when the public status is *closed* (核查销号), not already at *resolved*:
    resolved is the handlers' own claim that the work is done and verification can
    still fail and reopen the case, so a rating then would judge an unfinished loop,
    and it would be anchored before the citizen knows the outcome. The caller has
    established that the requester is the reporter (owner or tracking token).
    """
    if isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 5:
        raise _field_error("rating", "invalid", _("Give a rating from 1 to 5."))
    clean_comment = _text_checked("comment", comment, REASON_MAX_LENGTH)
    locked = locks.report_for_update(report.pk)
    if public_status_for(locked) != PublicStatus.CLOSED:
        raise _error(IncidentErrorCode.REPORT_NOT_RATEABLE, status=409)
    if locked.rated_at is not None:
        raise _error(IncidentErrorCode.REPORT_ALREADY_RATED, status=409)
    locked.rating = rating
    locked.rating_comment = clean_comment
    locked.rated_at = timezone.now()
    locked.save(update_fields=["rating", "rating_comment", "rated_at", "updated_at"])
    incident = _current_incident(locked)
    entry = None
    if incident is not None:
        entry = timeline_append(
            incident=incident,
            kind=IncidentEvent.Kind.RATED,
            actor=by,
            data={"report_id": locked.pk, "rating": rating, "comment": clean_comment},
        )
    sla_hooks.on_citizen_feedback(incident, rating=rating)
    report_rated(locked, incident, entry)
    return locked


@transaction.atomic
def report_request_reopen(*, report: Report, reason: str, by: Any = None) -> Report:
    """The reporter says the closed case is not fixed, within
    ``INCIDENTS_REOPEN_WINDOW_DAYS`` (default 7) of closure.

    This records the request (on the report and as ``reopen_requested`` on the
    incident timeline) and does not reopen the incident: reopening restarts dispatch
    and SLA clocks and belongs to the verifying operator, who weighs the request
    against the handlers' result; one citizen (mistaken, or about a different hazard
    at the same spot) cannot reopen a closed loop by themselves. One pending request
    per closure: a new one is accepted only after the case was reopened and closed
    again.
    """
    clean_reason = _text_checked("reason", reason, REASON_MAX_LENGTH)
    if not clean_reason:
        raise _field_error("reason", "required", _("Say what is still wrong."))
    locked = locks.report_for_update(report.pk)
    incident = _current_incident(locked)
    if public_status_for(locked) != PublicStatus.CLOSED or incident is None:
        raise _error(IncidentErrorCode.REOPEN_NOT_ALLOWED, status=409)
    closed_at = incident.closed_at or incident.updated_at
    now = timezone.now()
    if now - closed_at > reopen_window():
        raise _error(
            IncidentErrorCode.REOPEN_WINDOW_CLOSED,
            status=409,
            closed_at=closed_at.isoformat(),
            window_days=reopen_window().days,
        )
    if locked.reopen_requested_at is not None and locked.reopen_requested_at >= closed_at:
        raise _error(IncidentErrorCode.REOPEN_NOT_ALLOWED, status=409, already_requested=True)
    locked.reopen_requested_at = now
    locked.reopen_reason = clean_reason
    locked.save(update_fields=["reopen_requested_at", "reopen_reason", "updated_at"])
    entry = timeline_append(
        incident=incident,
        kind=IncidentEvent.Kind.REOPEN_REQUESTED,
        actor=by,
        data={"report_id": locked.pk, "reason": clean_reason},
    )
    sla_hooks.on_citizen_feedback(incident, reopen_requested=True)
    report_reopen_requested(locked, incident, entry)
    return locked
