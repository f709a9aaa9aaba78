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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from apps.accounts.permissions import Capability, can, can_somewhere
from apps.accounts.phones import PhoneNumberError, phone_normalise
from apps.core.bulk import rows_insert
from apps.core.errors import ApplicationError, ErrorCode
from apps.core.idempotency import Claim, Replay, claims_answer, claims_replay, claims_take
from apps.core.transactions import on_commit
from apps.incidents import duplicates, locks
from apps.incidents.catalogue import Catalogue
from apps.incidents.catalogue import catalogue as catalogue_current
from apps.incidents.errors import IncidentErrorCode
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
    reports_submitted_emit,
)
from apps.incidents.services import sla as sla_hooks
from apps.incidents.services.attachments import (
    StoredPhoto,
    attachments_create,
    photo_files_delete,
    photo_files_write,
    photos_process,
)
from apps.incidents.services.incidents import incident_create
from apps.incidents.taxonomy import category_fields_validate, severity_suggestion
from apps.incidents.timeline import timeline_append
from apps.notifications.models import Kind as NotificationKind
from apps.notifications.models import Priority
from apps.notifications.services import PushSpec, notify_many
from apps.regions.errors import RegionErrorCode
from apps.regions.geo import StreetIndex
from apps.regions.models import Region, RegionLevel
from apps.regions.selectors import locate_point, street_community
from apps.sla.models import Audience
from apps.sla.recipients import region_audience_users_many

logger = logging.getLogger(__name__)

TEXT_MAX_LENGTH = 2000
ADDRESS_MAX_LENGTH = 300
REASON_MAX_LENGTH = 1000
DEFAULT_SOS_CATEGORY_CODE = "O99"
DEFAULT_REOPEN_WINDOW_DAYS = 7
EMERGENCY_NUMBERS = ("110", "119", "120")
DUPLICATE_LIMIT = 5  # candidates on the board's "new report" event

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


def _category_for_citizen(code: Any, *, sos: bool, catalogue: Catalogue | None = None) -> Category:
    # The in-process catalogue: no query per report (apps.incidents.catalogue).
    category = (catalogue or catalogue_current()).citizen_category(code, sos=sos)
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


def _street_for(lat: Any, lng: Any, *, sos: bool, index: StreetIndex | None = None) -> Region:
    try:
        return locate_point(lat, lng, index=index).street
    except ApplicationError as exc:
        if sos and exc.code == RegionErrorCode.POINT_OUTSIDE_AREA:
            # The app shows these instead of a dead end: outside the new area the
            # national emergency numbers still answer.
            exc.extra = {**exc.extra, "emergency_numbers": list(EMERGENCY_NUMBERS)}
        raise


@dataclass
class ReportDraft:
    """A checked citizen report, ready to insert (:func:`report_draft` builds it).

    Everything that can be refused has been by the time a draft exists; what is left for
    :func:`reports_submit_many` is the transaction. ``claim`` carries the request's
    ``Idempotency-Key``; ``photos`` the files already written to storage.
    """

    category: Category
    street: Region  # where the location is routed
    lat: float
    lng: float
    text: str = ""
    phone: str = ""
    address: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    is_sos: bool = False
    channel: str = Report.Channel.APP
    reporter_id: int | None = None
    client_ip: str | None = None
    device_id: str = ""
    claim: Claim | None = None
    photos: Sequence[StoredPhoto] = ()
    community: Region | None = None  # the reporter's pick inside the street, if any
    token: str = field(default_factory=report_token_new)
    created_at: datetime = field(default_factory=timezone.now)


@dataclass(frozen=True)
class Submitted:
    """What became of one draft: a new ``report``, the ``replay`` of the request that
    already ran under its key, or the ``error`` that refused it (nothing was written)."""

    draft: ReportDraft
    report: Report | None = None
    replay: Replay | None = None
    error: ApplicationError | None = None


AnswerFor = Callable[[Report, ReportDraft], dict[str, Any]]


def report_draft(
    *,
    category_code: Any,
    lat: Any,
    lng: Any,
    text: str = "",
    phone: str = "",
    address: str = "",
    extra: Mapping[str, Any] | None = None,
    is_sos: bool = False,
    channel: str = Report.Channel.APP,
    reporter: Any = None,
    client_ip: str | None = None,
    device_id: str = "",
    claim: Claim | None = None,
    community: str = "",
    catalogue: Catalogue | None = None,
    index: StreetIndex | None = None,
) -> ReportDraft:
    """Check a citizen report (no query once the catalogue and street index are warm,
    one more when the reporter picked a ``community``).

    Refusals (nothing is written): unknown/inactive/non-reportable category → 400
    ``category_unknown`` (field ``category``); bad coordinates → 400 ``invalid`` (fields
    ``lat``/``lng``); outside the new area → 422 ``point_outside_area`` (an SOS also gets
    ``extra.emergency_numbers``); category fields → 400 ``category_field_invalid``; phone
    → 400 ``invalid`` (field ``phone``); a ``community`` (code) that is not a community or
    village of the street the location is routed to → 400 ``invalid`` (field
    ``community``): the report is then filed at that community, inside its street.
    ``reporter`` is the logged-in citizen (a user or
    a user id); the one-query check that it is an active account, and the call-back phone
    of a registered citizen who typed none, come with the insert.
    """
    category = _category_for_citizen(category_code, sos=is_sos, catalogue=catalogue)
    street = _street_for(lat, lng, sos=is_sos, index=index)
    fields = {} if is_sos and not extra else category_fields_validate(category, extra)
    contact = _phone_or_blank(phone)
    reporter_id = _reporter_id(reporter)
    if not contact and reporter_id is not None and getattr(reporter, "phone", ""):
        contact = reporter.phone  # a registered citizen can be called back without retyping
    if channel not in Report.Channel.values:
        raise _field_error("channel", "invalid_choice", _("Unknown channel."))
    picked = street_community(street=street, code=community) if community else None
    return ReportDraft(
        category=category,
        street=street,
        lat=float(lat),
        lng=float(lng),
        text=_text_checked("text", text, TEXT_MAX_LENGTH),
        phone=contact,
        address=_text_checked("address", address, ADDRESS_MAX_LENGTH),
        extra=fields,
        is_sos=is_sos,
        channel=channel,
        reporter_id=reporter_id,
        client_ip=client_ip or None,
        device_id=(device_id or "")[:64],
        claim=claim,
        community=picked,
    )


def _reporter_id(reporter: Any) -> int | None:
    if reporter is None:
        return None
    if isinstance(reporter, int):
        return reporter
    return int(reporter.pk) if getattr(reporter, "is_authenticated", False) else None


@transaction.atomic
def reports_submit_many(
    drafts: Sequence[ReportDraft], *, answer: AnswerFor | None = None, via: str = "service"
) -> list[Submitted]:
    """Take in checked reports in ONE transaction: the one write path of citizen reports.

    The Django views (one report each, with or without photos), the fast intake path
    (a batch from its group-commit writer) and SOS all call this, so a report never
    exists without what belongs to it. In order:

    1. the idempotency keys of the drafts that carry one: a key used before gets its
       stored answer (or its refusal) and writes nothing;
    2. the reporters: a logged-in citizen's account must be active (else that draft is
       refused with 401 ``not_authenticated``), and their phone is the call-back number
       when they typed none;
    3. the reports, one INSERT;
    4. the photo rows of drafts that have photos;
    5. each report's triage clock (``report_triage``), one INSERT: a report is never on
       the board without its clock;
    6. duplicate candidates (one query for the batch on PostgreSQL);
    7. the answers stored on the keys (``answer(report, draft)``: the 201 body);
    8. an SOS alarm pushed to the duty officers of the street and the new town (outbox
       rows; delivery is enqueued after commit);
    9. the events of the operator boards and the citizens' report streams, last (their
       sequence counters stay locked until COMMIT; holding them briefly keeps the new
       area's shared stream moving).

    Returns one :class:`Submitted` per draft, in order. Publishing the events and
    delivering the pushes happen after COMMIT. ``via`` names the caller in the log line
    (``"fast path"``).
    """
    if any(d.claim is not None for d in drafts) and answer is None:
        raise ValueError("drafts with an Idempotency-Key need an answer to store")
    outcomes: dict[int, Submitted] = {}
    # 1. Keys.
    claims = [d.claim for d in drafts if d.claim is not None]
    taken = claims_take(claims)
    live: list[ReportDraft] = []
    key_ids: dict[int, int] = {}  # id(draft) → key row
    seen: set[Any] = set()
    waiting: list[ReportDraft] = []
    for draft in drafts:
        if draft.claim is None:
            live.append(draft)
            continue
        ident = draft.claim.ident
        if ident in taken and ident not in seen:
            seen.add(ident)
            key_ids[id(draft)] = taken[ident]
            live.append(draft)
        else:
            waiting.append(draft)  # one key twice, or a retry: answered from the key row
    # 2. Reporters.
    live = _with_reporters(live, outcomes)
    # 3-5. Reports, photos, clocks.
    reports = _reports_insert(live)
    for draft, report in zip(live, reports, strict=True):
        if draft.photos:
            attachments_create(stored=draft.photos, report=report, uploaded_by_id=draft.reporter_id)
    sla_hooks.on_reports_submitted(reports)
    # 6. Duplicate candidates.
    candidates = duplicates.duplicate_candidates_many(
        [(r.lat, r.lng, r.category, r.created_at) for r in reports], limit=DUPLICATE_LIMIT
    )
    # 7. Stored answers.
    if answer is not None:
        claims_answer(
            [
                (key_ids[id(draft)], 201, answer(report, draft))
                for draft, report in zip(live, reports, strict=True)
                if id(draft) in key_ids
            ]
        )
    for draft, report in zip(live, reports, strict=True):
        outcomes[id(draft)] = Submitted(draft=draft, report=report)
    # Retries and repeated keys see the answers stored above or earlier.
    replays = claims_replay([d.claim for d in waiting if d.claim is not None])
    for draft in waiting:
        found = replays[draft.claim.ident] if draft.claim is not None else None
        if isinstance(found, ApplicationError):
            outcomes[id(draft)] = Submitted(draft=draft, error=found)
        else:
            outcomes[id(draft)] = Submitted(draft=draft, replay=found)
    # 8. SOS alarms; 9. events, last.
    sos = [report for report in reports if report.is_sos]
    if sos:
        sos_alert(sos)
    reports_submitted_emit(reports, candidates)
    if reports:
        ids, sos_ids = [r.pk for r in reports], [r.pk for r in sos]
        on_commit(lambda: _after_submit(ids, sos_ids, via))
    return [outcomes[id(draft)] for draft in drafts]


def _with_reporters(drafts: list[ReportDraft], outcomes: dict[int, Submitted]) -> list[ReportDraft]:
    """Drafts whose reporter is an active account (phone filled in when typed none);
    the others are refused into ``outcomes``."""
    wanted = {d.reporter_id for d in drafts if d.reporter_id is not None}
    if not wanted:
        return drafts
    phones = dict(
        get_user_model().objects.filter(pk__in=wanted, is_active=True).values_list("pk", "phone")
    )
    kept = []
    for draft in drafts:
        if draft.reporter_id is None:
            kept.append(draft)
        elif draft.reporter_id not in phones:
            outcomes[id(draft)] = Submitted(
                draft=draft, error=ApplicationError(ErrorCode.NOT_AUTHENTICATED, status=401)
            )
        else:
            if not draft.phone and phones[draft.reporter_id]:
                draft.phone = phones[draft.reporter_id]
            kept.append(draft)
    return kept


def _reports_insert(drafts: Sequence[ReportDraft]) -> list[Report]:
    rows = [
        Report(
            token=d.token,
            reporter_id=d.reporter_id,
            phone=d.phone,
            channel=d.channel,
            category=d.category,
            text=d.text,
            lat=d.lat,
            lng=d.lng,
            address=d.address,
            region=d.community or d.street,
            extra=d.extra,
            is_sos=d.is_sos,
            client_ip=d.client_ip,
            device_id=d.device_id,
            created_at=d.created_at,
            updated_at=d.created_at,
        )
        for d in drafts
    ]
    ids = dict(rows_insert(Report, rows, returning=("token", "id")))
    for row in rows:
        row.pk = ids[row.token]
        row._state.adding = False
        row._state.db = "default"
    return rows


def report_take(
    *,
    category_code: str | None = None,
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
    claim: Claim | None = None,
    answer: AnswerFor | None = None,
    community: str = "",
) -> Submitted:
    """Take in one citizen report with its photos; committed when this returns.

    :func:`report_draft` checks it (its refusals are raised); the photos are decoded,
    sanitised and written to storage *before* the transaction (seconds of CPU and I/O
    must not hold row locks), then :func:`reports_submit_many` writes it with everything
    that belongs to it; if that fails, the files are deleted. A refusal inside the
    transaction (a key reused for another request) is raised too; the retry of a request
    that already ran comes back as ``Submitted.replay``. An SOS without a category takes
    the SOS category (``INCIDENTS_SOS_CATEGORY_CODE``).
    """
    draft = report_draft(
        category_code=sos_category_code() if is_sos and category_code is None else category_code,
        lat=lat,
        lng=lng,
        text=text,
        phone=phone,
        address=address,
        extra=extra,
        is_sos=is_sos,
        channel=channel,
        reporter=reporter,
        client_ip=client_ip,
        device_id=device_id,
        claim=claim,
        community=community,
    )
    draft.photos = photo_files_write(photos_process(list(photos)))
    try:
        (outcome,) = reports_submit_many([draft], answer=answer)
    except BaseException:
        photo_files_delete(draft.photos)
        raise
    if outcome.report is None:
        photo_files_delete(draft.photos)  # a replay or a refusal wrote no row for them
    if outcome.error is not None:
        raise outcome.error
    return outcome


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
    """:func:`report_take` for callers without an ``Idempotency-Key`` (Open311, imports,
    tests): the new report, committed."""
    outcome = report_take(
        category_code=category_code,
        lat=lat,
        lng=lng,
        text=text,
        phone=phone,
        photos=photos,
        extra=extra,
        reporter=reporter,
        channel=channel,
        is_sos=is_sos,
        address=address,
        client_ip=client_ip,
        device_id=device_id,
    )
    if outcome.report is None:  # only a claim can end without a new report
        raise RuntimeError("report_take without a claim made no report")
    return outcome.report


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
    with ``is_sos=True``, which puts it at the top of the triage queue and alarms the duty
    officers of its street and new town."""
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


def sos_alert(reports: Sequence[Report]) -> None:
    """Push a high-priority SOS alarm to the duty officers of each report's street and
    new town (operators holding the street; operators and commanders holding the new
    town), in the caller's transaction. Never muted (``Kind.SOS``); keyed by report, so
    a retried write pushes once. A batch costs two queries and one INSERT, and its
    alarms leave in one delivery message after commit."""
    audiences = (Audience.STREET_DUTY, Audience.NEW_TOWN_COMMAND)
    holders = region_audience_users_many([r.region.path for r in reports], audiences)
    specs = []
    for report in reports:
        user_ids = {pk for ids in holders[report.region.path].values() for pk in ids}
        if not user_ids:
            logger.warning("SOS %s in %s: no duty officer to alarm", report.pk, report.region.code)
            continue
        specs.append(
            PushSpec(
                user_ids=user_ids,
                kind=NotificationKind.SOS,
                priority=Priority.HIGH,
                title=_("SOS in %(street)s"),
                body=_("Report %(report)s at %(place)s: %(text)s")
                if report.text
                else _("Report %(report)s at %(place)s: one-touch SOS, no text."),
                args={
                    "street": report.region.name_zh,
                    "text": report.text[:200],
                    "report": report.pk,
                    "place": report.address or f"{report.lat:.5f}, {report.lng:.5f}",
                },
                data={"report_id": report.pk, "region": report.region.code, "sos": "1"},
                dedupe_key_prefix=f"sos:{report.pk}",
            )
        )
    notify_many(specs)


def _after_submit(ids: list[int], sos: list[int], via: str) -> None:
    """Runs once the reports are committed (robust: a failure here is logged and never
    turns the citizen's 201 into an error)."""
    logger.info(
        "reports submitted via %s: %d (ids %s..%s), SOS %s", via, len(ids), ids[0], ids[-1], sos
    )


# --- Triage ------------------------------------------------------------------------------


def _require_triage_scope(by: Any, region: Region, *, missing: str) -> None:
    """``report.triage`` over ``region`` (operators, commanders, admins:
    ``apps.accounts.permissions``). A liaison, who reads the report but does not triage
    citizens' reports (nor rejects an SOS), gets 403; staff out of scope get the
    not-found answer (existence is not leaked); anyone else 403."""
    if not getattr(by, "is_authenticated", False):
        raise ApplicationError(ErrorCode.PERMISSION_DENIED, status=403)
    if can(by, Capability.REPORT_TRIAGE, region.path):
        return
    if can(by, Capability.REPORT_READ, region.path):
        raise ApplicationError(ErrorCode.PERMISSION_DENIED, status=403)
    if can_somewhere(by, Capability.REPORT_READ):
        raise _error(missing, status=404)
    raise ApplicationError(ErrorCode.PERMISSION_DENIED, status=403)


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
    community: str | None = None,
) -> Report:
    """受理: create an accepted incident from the report (classified with ``category``,
    ``severity``, ``loop`` — defaults: the report's category, the severity the category
    fields suggest, small loop — and filed at ``community``, a community or village of
    the report's street, when the operator picks one; default: where the report is
    filed), or link the report to the open incident ``incident_id`` in the operator's
    scope. Either way the incident's timeline gets ``report_linked``.

    Refusals: 404 out of scope or unknown; 409 ``report_already_triaged`` if someone
    else triaged it first; 409 ``merge_target_invalid`` if the incident is not open;
    400 ``invalid`` (field ``community``) for a community outside the report's street.
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
        region = report.region
        if community:
            street = region if region.level == RegionLevel.STREET else region.parent
            region = street_community(street=street, code=community)
        incident = incident_create(
            category=report_category,
            region=region,
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
