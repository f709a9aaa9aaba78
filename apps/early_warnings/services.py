"""Every write of early warnings (conventions R1–R3, R11): compose, approve, publish,
update, cancel, expire, receive from upstream, acknowledge (叫应), the roster.

Workflow (``docs/early-warnings.md``)::

    draft ─submit─▶ pending_approval ─approve─▶ published ─▶ superseded (an update published)
      ▲                    │                        ├──────▶ cancelled  (a cancel published)
      └──────reject────────┘                        └──────▶ expired    (at ``expires``)

An update or a cancel is a new version of the chain (``msg_type`` update | cancel),
composed from the published one and approved by the same rule; the approver of the
live version who composes it publishes it at once (``author_may_approve``).

**Locks.** Every service that changes a chain locks the chain row first (then reads its
versions); the acknowledgement service locks only the person's row, so a thousand
answers do not queue on one warning. The SLA sweeper locks a clock, then its
acknowledgement row without waiting (``apps.early_warnings.sla``), so neither order can
deadlock.

**Side effects.** Outbox rows (``apps.notifications``) and events (``apps.realtime``) are
written in the transaction and leave the process only after it commits: nothing is
pushed for a rolled-back change (conventions R2). ``publish`` fans out to the citizen
topic of every target, the region streams of every target (its ancestors and its
subtree), and one push per responsible person (``fanout``).
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from apps.accounts.models import Membership, Role, User
from apps.accounts.permissions import Capability, can
from apps.core.errors import ApplicationError, ErrorCode
from apps.core.scoping import scope_for
from apps.core.validation import field_error, optional_text, required_text
from apps.early_warnings import approval, cap_adapter, fanout
from apps.early_warnings.cap.mapping import alert_to_received
from apps.early_warnings.cap.parse import parse_alert
from apps.early_warnings.errors import WarningErrorCode
from apps.early_warnings.escalation import SUBJECT_ACK
from apps.early_warnings.models import (
    OPEN_STATUSES,
    AckChannel,
    Acknowledgement,
    MsgType,
    PersonRole,
    ResponsiblePerson,
    Source,
    TimelineKind,
    WarningChain,
    WarningLevel,
    WarningStatus,
    WarningTarget,
    WarningTimelineEntry,
    WarningType,
    WarningVersion,
)
from apps.notifications.services import notifications_acknowledge
from apps.regions.models import Region
from apps.sla.models import SlaClock, SlaKind
from apps.sla.services.clocks import ClockStart, clocks_close, sla_clock_stop, sla_clocks_start_many

logger = logging.getLogger(__name__)

TITLE_MAX = 200
TEXT_MAX = 4000
REASON_MAX = 1000
CONTENT_FIELDS = (
    "warning_type",
    "level",
    "title",
    "description",
    "instruction",
    "title_en",
    "description_en",
    "instruction_en",
    "onset",
    "expires",
    "incident_id",
    "sensor_alarm_ref",
)
# Memberships whose holders answer the warnings of their region by default, and the label
# they answer as (docs/early-warnings.md, "Responsible persons").
ROLE_HOLDERS: dict[str, str] = {
    Role.OPERATOR: PersonRole.DUTY_OFFICER,
    Role.TEAM_LEADER: PersonRole.TEAM_LEADER,
    Role.GRID_WORKER: PersonRole.GRID_WORKER,
}


def sender() -> str:
    return str(getattr(settings, "EARLY_WARNINGS_SENDER", "xixian-ems@xixian.gov.cn"))


def identifier_for(*, chain_id: int, number: int, sent: datetime) -> str:
    """``CN-XIXIAN-EW-<yyyymmdd>-<chain>-v<n>``: the date of ``sent`` in Asia/Shanghai,
    the chain's id and the version number; unique because (chain, number) is."""
    prefix = str(getattr(settings, "EARLY_WARNINGS_IDENTIFIER_PREFIX", "CN-XIXIAN-EW"))
    return f"{prefix}-{timezone.localtime(sent):%Y%m%d}-{chain_id}-v{number}"


# --- Reading and locking -------------------------------------------------------------------------


def _not_found() -> ApplicationError:
    return ApplicationError(WarningErrorCode.WARNING_NOT_FOUND, status=404)


def _chain_for_update(chain_id: int) -> WarningChain:
    chain = WarningChain.objects.select_for_update(of=("self",)).filter(pk=chain_id).first()
    if chain is None:
        raise _not_found()
    return chain


def _version_locked(version_id: int) -> tuple[WarningChain, WarningVersion]:
    """Lock the version's chain (the lock order), then read the version afresh."""
    chain_id = WarningVersion.objects.filter(pk=version_id).values_list("chain_id", flat=True)
    found = chain_id.first()
    if found is None:
        raise _not_found()
    chain = _chain_for_update(found)
    version = (
        WarningVersion.objects.select_related("chain__region")
        .prefetch_related("targets__region")
        .get(pk=version_id)
    )
    return chain, version


def visible(user: Any, version: WarningVersion) -> bool:
    """May ``user`` see this warning as staff? Its targets overlap their scope: a target
    inside it, or a target above a region of it (a new-area warning reaches every town)."""
    if user is None:
        return True  # the system
    scope = scope_for(user)
    if scope.is_global:
        return True
    for region in approval.target_regions(version):
        if scope.covers(region.path) or any(p.startswith(region.path) for p in scope.paths):
            return True
    return False


def _check_visible(user: Any, version: WarningVersion) -> None:
    if not visible(user, version):
        raise _not_found()


def _check_compose(user: Any, regions: Iterable[Region]) -> None:
    if user is None:
        return
    for region in regions:
        if not can(user, Capability.WARNING_COMPOSE, region.path):
            raise ApplicationError(
                ErrorCode.PERMISSION_DENIED,
                _("You may not issue warnings for %(region)s.") % {"region": region.name_zh},
                extra={"region": region.code},
                status=403,
            )


def _illegal(version: WarningVersion, action: str) -> ApplicationError:
    return ApplicationError(
        WarningErrorCode.ILLEGAL_TRANSITION,
        _("The warning's current state does not allow this."),
        extra={"status": version.status, "action": action},
        status=409,
    )


# --- Content -------------------------------------------------------------------------------------


def _choice(field: str, value: Any, choices: Any) -> str:
    if value not in choices.values:
        raise field_error(field, _("Not a valid choice."), code="invalid_choice")
    return str(value)


def _aware(field: str, value: Any) -> datetime:
    if not isinstance(value, datetime):
        raise field_error(field, _("A date and time is required."), code="required")
    if timezone.is_naive(value):
        value = timezone.make_aware(value)
    return value


def _clean(values: dict[str, Any]) -> dict[str, Any]:
    """Validate content fields (whatever is present)."""
    cleaned = dict(values)
    if "warning_type" in values:
        cleaned["warning_type"] = _choice("warning_type", values["warning_type"], WarningType)
    if "level" in values:
        cleaned["level"] = _choice("level", values["level"], WarningLevel)
    if "title" in values:
        cleaned["title"] = required_text("title", values["title"], max_length=TITLE_MAX)
    if "description" in values:
        cleaned["description"] = required_text(
            "description", values["description"], max_length=TEXT_MAX
        )
    for name in ("instruction", "description_en", "instruction_en"):
        if name in values:
            cleaned[name] = optional_text(name, values[name], max_length=TEXT_MAX)
    if "title_en" in values:
        cleaned["title_en"] = optional_text("title_en", values["title_en"], max_length=TITLE_MAX)
    if "sensor_alarm_ref" in values:
        cleaned["sensor_alarm_ref"] = optional_text(
            "sensor_alarm_ref", values["sensor_alarm_ref"], max_length=64
        )
    for name in ("onset", "expires"):
        if name in values:
            cleaned[name] = _aware(name, values[name])
    return cleaned


def _check_times(onset: datetime, expires: datetime) -> None:
    if expires <= onset:
        raise field_error("expires", _("A warning must expire after its onset."))


def _regions(targets: Sequence[Any]) -> list[Region]:
    """Target regions from ids or codes: active, each once, none inside another (a target
    covers its subtree)."""
    if not targets:
        raise field_error("targets", _("Name at least one target region."), code="required")
    ids = {int(t) for t in targets if isinstance(t, int)}
    codes = {str(t) for t in targets if not isinstance(t, int)}
    found = list(Region.objects.filter(is_active=True).filter(Q(pk__in=ids) | Q(code__in=codes)))
    if not ids <= {r.pk for r in found} or not codes <= {r.code for r in found}:
        raise field_error("targets", _("Unknown or inactive region."), code="does_not_exist")
    unique = sorted({r.pk: r for r in found}.values(), key=lambda r: r.path)
    kept: list[Region] = []
    for region in unique:
        if not any(region.path.startswith(k.path) for k in kept):
            kept.append(region)
    return kept


def _common_region(regions: Sequence[Region]) -> Region:
    """The lowest region whose subtree holds every region of ``regions``."""
    parts = [r.path.strip("/").split("/") for r in regions]
    common: list[str] = []
    for level in zip(*parts, strict=False):
        if len(set(level)) != 1:
            break
        common.append(level[0])
    return Region.objects.get(path="/" + "/".join(common) + "/")


def _set_targets(version: WarningVersion, regions: Sequence[Region]) -> None:
    WarningTarget.objects.filter(version=version).delete()
    WarningTarget.objects.bulk_create([WarningTarget(version=version, region=r) for r in regions])
    # The prefetch cache of the version must follow (approval rules read it).
    version._prefetched_objects_cache = {}  # type: ignore[attr-defined]


def _timeline(
    chain: WarningChain,
    version: WarningVersion | None,
    kind: str,
    actor: Any = None,
    *,
    reason: str = "",
    data: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> WarningTimelineEntry:
    return WarningTimelineEntry.objects.create(
        chain=chain,
        version=version,
        kind=kind,
        at=at or timezone.now(),
        actor=actor if actor is not None and getattr(actor, "pk", None) else None,
        reason=reason,
        data=data or {},
    )


# --- Compose -------------------------------------------------------------------------------------


@transaction.atomic
def warning_create(
    *,
    by: Any,
    warning_type: str,
    level: str,
    title: str,
    description: str,
    targets: Sequence[Any],
    onset: datetime,
    expires: datetime,
    instruction: str = "",
    title_en: str = "",
    description_en: str = "",
    instruction_en: str = "",
    incident_id: int | None = None,
    sensor_alarm_ref: str = "",
) -> WarningVersion:
    """A new warning (chain) with its first version, a draft alert. ``targets``: region
    ids or codes; the author needs ``warning.compose`` over each."""
    content = _clean(
        {
            "warning_type": warning_type,
            "level": level,
            "title": title,
            "description": description,
            "instruction": instruction,
            "title_en": title_en,
            "description_en": description_en,
            "instruction_en": instruction_en,
            "onset": onset,
            "expires": expires,
            "sensor_alarm_ref": sensor_alarm_ref,
        }
    )
    _check_times(content["onset"], content["expires"])
    regions = _regions(targets)
    _check_compose(by, regions)
    chain = WarningChain.objects.create(
        region=_common_region(regions), created_by=by, versions_count=1
    )
    version = WarningVersion.objects.create(
        chain=chain,
        number=1,
        msg_type=MsgType.ALERT,
        status=WarningStatus.DRAFT,
        created_by=by,
        incident_id=incident_id,
        **content,
    )
    _set_targets(version, regions)
    _timeline(chain, version, TimelineKind.CREATED, by)
    return version


@transaction.atomic
def warning_update_draft(
    *, version_id: int, by: Any, targets: Sequence[Any] | None = None, **changes: Any
) -> WarningVersion:
    """Edit a draft (a refused one too): content fields and, optionally, the targets."""
    unknown = set(changes) - set(CONTENT_FIELDS)
    if unknown:
        raise TypeError(f"unknown fields: {sorted(unknown)}")
    chain, version = _version_locked(version_id)
    _check_visible(by, version)
    if version.status != WarningStatus.DRAFT:
        raise _illegal(version, "edited")
    content = _clean(changes)
    for name, value in content.items():
        setattr(version, name, value)
    _check_times(version.onset, version.expires)
    regions = _regions(targets) if targets is not None else approval.target_regions(version)
    _check_compose(by, regions)
    version.save()
    if targets is not None:
        _set_targets(version, regions)
    _timeline(chain, version, TimelineKind.EDITED, by, data={"fields": sorted(content)})
    return version


@transaction.atomic
def warning_submit(*, version_id: int, by: Any) -> WarningVersion:
    """A draft goes to approval."""
    chain, version = _version_locked(version_id)
    _check_visible(by, version)
    _check_compose(by, approval.target_regions(version))
    if version.status != WarningStatus.DRAFT:
        raise _illegal(version, "submitted")
    version.status = WarningStatus.PENDING_APPROVAL
    version.submitted_at = timezone.now()
    version.rejection_reason = ""
    version.save(update_fields=["status", "submitted_at", "rejection_reason", "updated_at"])
    _timeline(chain, version, TimelineKind.SUBMITTED, by)
    return version


@transaction.atomic
def warning_approve(*, version_id: int, by: Any) -> WarningVersion:
    """Approve a version awaiting approval: it is published (an alert or update goes out,
    a cancel ends the warning). 404 out of scope; 403 when the rule says no; 409 when it
    is not awaiting approval (the loser of two approvers at once gets this)."""
    chain, version = _version_locked(version_id)
    _check_visible(by, version)
    if version.status != WarningStatus.PENDING_APPROVAL:
        raise _illegal(version, "approved")
    author_may = version.msg_type != MsgType.ALERT and _approved_live(chain, by)
    approval.decide(by, version, author_may_approve=author_may).raise_if_refused()
    return _publish(chain, version, by=by)


@transaction.atomic
def warning_reject(*, version_id: int, by: Any, reason: str) -> WarningVersion:
    """Refuse a version awaiting approval: back to draft with the reason (same rule as
    approval decides who may)."""
    reason = required_text("reason", reason, max_length=REASON_MAX)
    chain, version = _version_locked(version_id)
    _check_visible(by, version)
    if version.status != WarningStatus.PENDING_APPROVAL:
        raise _illegal(version, "refused")
    approval.decide(by, version, author_may_approve=True).raise_if_refused()
    version.status = WarningStatus.DRAFT
    version.rejection_reason = reason
    version.save(update_fields=["status", "rejection_reason", "updated_at"])
    _timeline(chain, version, TimelineKind.REJECTED, by, reason=reason)
    return version


def _approved_live(chain: WarningChain, user: Any) -> bool:
    """Did ``user`` approve the chain's live version?"""
    if user is None:
        return False
    return WarningVersion.objects.filter(
        chain=chain, status=WarningStatus.PUBLISHED, approved_by_id=user.pk
    ).exists()


def _live(chain: WarningChain) -> WarningVersion:
    live = (
        WarningVersion.objects.filter(chain=chain, status=WarningStatus.PUBLISHED)
        .prefetch_related("targets__region")
        .first()
    )
    if live is None:
        raise ApplicationError(
            WarningErrorCode.NOT_ACTIVE,
            _("This warning is no longer in force."),
            status=409,
        )
    return live


def _next_version(
    chain: WarningChain,
    live: WarningVersion,
    *,
    by: Any,
    msg_type: str,
    changes: dict[str, Any],
    regions: Sequence[Region],
) -> WarningVersion:
    if WarningVersion.objects.filter(chain=chain, status__in=OPEN_STATUSES).exists():
        raise ApplicationError(
            WarningErrorCode.CHAIN_BUSY,
            _("An update or cancel of this warning is already awaiting approval."),
            status=409,
        )
    values = {name: getattr(live, name) for name in CONTENT_FIELDS}
    values.update(changes)
    _check_times(values["onset"], values["expires"])
    chain.versions_count += 1
    chain.save(update_fields=["versions_count", "updated_at"])
    version = WarningVersion.objects.create(
        chain=chain,
        number=chain.versions_count,
        msg_type=msg_type,
        status=WarningStatus.PENDING_APPROVAL,
        submitted_at=timezone.now(),
        created_by=by,
        **values,
    )
    _set_targets(version, regions)
    return version


@transaction.atomic
def warning_update(
    *, version_id: int, by: Any, targets: Sequence[Any] | None = None, **changes: Any
) -> WarningVersion:
    """A new version (``update``) of a published warning, with ``changes`` (content fields)
    and optionally new targets; it awaits approval, or is published at once when ``by``
    approved the live version and the rule still lets them approve this one."""
    unknown = set(changes) - set(CONTENT_FIELDS)
    if unknown:
        raise TypeError(f"unknown fields: {sorted(unknown)}")
    chain, given = _version_locked(version_id)
    _check_visible(by, given)
    live = _live(chain)
    regions = _regions(targets) if targets is not None else approval.target_regions(live)
    _check_compose(by, regions)
    version = _next_version(
        chain, live, by=by, msg_type=MsgType.UPDATE, changes=_clean(changes), regions=regions
    )
    _timeline(chain, version, TimelineKind.UPDATED, by, data={"fields": sorted(changes)})
    return _publish_if_approver(chain, version, by)


@transaction.atomic
def warning_cancel(*, version_id: int, by: Any, reason: str) -> WarningVersion:
    """A ``cancel`` version of a published warning (the all-clear); approved like an update
    (at once for the approver of the live version)."""
    reason = required_text("reason", reason, max_length=REASON_MAX)
    chain, given = _version_locked(version_id)
    _check_visible(by, given)
    live = _live(chain)
    regions = approval.target_regions(live)
    _check_compose(by, regions)
    version = _next_version(
        chain, live, by=by, msg_type=MsgType.CANCEL, changes={}, regions=regions
    )
    _timeline(chain, version, TimelineKind.CANCEL_REQUESTED, by, reason=reason)
    return _publish_if_approver(chain, version, by)


def _publish_if_approver(chain: WarningChain, version: WarningVersion, by: Any) -> WarningVersion:
    if _approved_live(chain, by) and approval.can_approve(by, version, author_may_approve=True):
        return _publish(chain, version, by=by)
    return version


# --- Publication ------------------------------------------------------------------------------


def _publish(
    chain: WarningChain,
    version: WarningVersion,
    *,
    by: Any,
    regions: Sequence[Region] | None = None,
) -> WarningVersion:
    """Send ``version`` (chain locked): identity, the previous live version superseded or
    cancelled, 叫应 rows and clocks, timeline, fan-out. ``version`` may be unsaved (a
    received one: ``regions`` are its targets)."""
    now = timezone.now()
    previous = list(
        WarningVersion.objects.filter(chain=chain, status=WarningStatus.PUBLISHED).exclude(
            pk=version.pk
        )
    )
    if version.msg_type != MsgType.ALERT and not previous and version.source == Source.ISSUED:
        raise ApplicationError(
            WarningErrorCode.NOT_ACTIVE, _("This warning is no longer in force."), status=409
        )
    earlier = WarningVersion.objects.filter(chain=chain, identifier__isnull=False).exclude(
        pk=version.pk
    )
    version.references = [
        {"sender": v.sender, "identifier": v.identifier, "sent": v.sent.isoformat()}
        for v in earlier.order_by("number")
    ]
    cancelling = version.msg_type == MsgType.CANCEL
    for old in previous:
        old.status = WarningStatus.CANCELLED if cancelling else WarningStatus.SUPERSEDED
        old.ended_at = now
        old.save(update_fields=["status", "ended_at", "updated_at"])
        _timeline(
            chain,
            old,
            TimelineKind.CANCELLED if cancelling else TimelineKind.SUPERSEDED,
            by,
            at=now,
            data={"by_version": version.number},
        )
    _close_ack_clocks(chain, reason="cancelled" if cancelling else "superseded", at=now)
    version.sender = sender()
    version.sent = now
    version.identifier = identifier_for(chain_id=chain.pk, number=version.number, sent=now)
    version.status = WarningStatus.CANCELLED if cancelling else WarningStatus.PUBLISHED
    version.ended_at = now if cancelling else None
    if by is not None:
        version.approved_by = by
        version.approved_at = now
    version.save()
    if regions is not None:
        _set_targets(version, regions)
    targets = approval.target_regions(
        WarningVersion.objects.prefetch_related("targets__region").get(pk=version.pk)
    )
    if version.source == Source.ISSUED:
        _timeline(chain, version, TimelineKind.APPROVED, by, at=now)
    if cancelling:
        recipients = list(
            Acknowledgement.objects.filter(version__in=previous).values_list("user_id", flat=True)
        )
        event = fanout.CANCELLED
    else:
        acks = _ask(version, targets)
        recipients = [ack.user_id for ack in acks]
        event = fanout.UPDATED if previous else fanout.PUBLISHED
    fanout.announce(version, targets, event=event, person_ids=recipients)
    return version


def responsible_for(regions: Sequence[Region]) -> list[tuple[int, int, str]]:
    """``(user id, region id, role)`` of everyone who must answer a warning for
    ``regions``' subtrees: the roster, then (``EARLY_WARNINGS_ROLE_HOLDERS_ANSWER``) the
    active duty officers (operators), team leaders and grid workers there. One row per
    person (their roster row first, in roster order)."""
    where = Q()
    for region in regions:
        where |= Q(region__path__startswith=region.path)
    found: dict[int, tuple[int, int, str]] = {}
    roster = (
        ResponsiblePerson.objects.filter(where, is_active=True, user__is_active=True)
        .filter(region__is_active=True)
        .order_by("region__path", "order", "id")
        .values_list("user_id", "region_id", "role")
    )
    for user_id, region_id, role in roster:
        found.setdefault(user_id, (user_id, region_id, role))
    if getattr(settings, "EARLY_WARNINGS_ROLE_HOLDERS_ANSWER", True):
        holders = (
            Membership.objects.filter(
                where,
                is_active=True,
                user__is_active=True,
                region__is_active=True,
                role__in=list(ROLE_HOLDERS),
            )
            .order_by("region__path", "id")
            .values_list("user_id", "region_id", "role")
        )
        for user_id, region_id, role in holders:
            found.setdefault(user_id, (user_id, region_id, ROLE_HOLDERS[role]))
    return sorted(found.values())


def _ask(version: WarningVersion, targets: Sequence[Region]) -> list[Acknowledgement]:
    """叫应 rows for everyone responsible, each with its ``warning_ack`` clock."""
    acks = Acknowledgement.objects.bulk_create(
        [
            Acknowledgement(version=version, user_id=user_id, region_id=region_id, role=role)
            for user_id, region_id, role in responsible_for(targets)
        ]
    )
    label = f"{version.identifier} {version.title}"[:200]
    sla_clocks_start_many(
        [
            ClockStart(
                kind=SlaKind.WARNING_ACK,
                subject_type=SUBJECT_ACK,
                subject_id=ack.pk,
                region_id=ack.region_id,
                label=label,
                severity=version.level,
                started_at=version.sent,
            )
            for ack in acks
        ]
    )
    return acks


def _close_ack_clocks(chain: WarningChain, *, reason: str, at: datetime) -> int:
    """Cancel the open 叫应 clocks of every version of the chain."""
    ack_ids = Acknowledgement.objects.filter(version__chain=chain).values("pk")
    return clocks_close(
        SlaClock.objects.open().filter(
            kind=SlaKind.WARNING_ACK, subject_type=SUBJECT_ACK, subject_id__in=ack_ids
        ),
        status="cancelled",
        reason=reason,
        at=at,
    )


# --- Expiry -----------------------------------------------------------------------------------


def warnings_expire_due(*, now: datetime | None = None) -> int:
    """Expire every published version whose ``expires`` has passed (the beat task calls
    this); each in its own transaction with its chain locked, skipping chains another
    worker holds. Idempotent: returns how many this call expired."""
    now = now or timezone.now()
    due = list(
        WarningVersion.objects.filter(status=WarningStatus.PUBLISHED, expires__lte=now)
        .order_by("expires", "pk")
        .values_list("pk", "chain_id")[:500]
    )
    expired = 0
    for version_id, chain_id in due:
        with transaction.atomic():
            chain = (
                WarningChain.objects.select_for_update(of=("self",), skip_locked=True)
                .filter(pk=chain_id)
                .first()
            )
            if chain is None:
                continue
            changed = WarningVersion.objects.filter(
                pk=version_id, status=WarningStatus.PUBLISHED, expires__lte=now
            ).update(status=WarningStatus.EXPIRED, ended_at=now, updated_at=timezone.now())
            if not changed:
                continue
            version = WarningVersion.objects.prefetch_related("targets__region").get(pk=version_id)
            _close_ack_clocks(chain, reason="expired", at=now)
            _timeline(chain, version, TimelineKind.EXPIRED, None, at=now)
            fanout.announce(
                version, approval.target_regions(version), event=fanout.EXPIRED, person_ids=[]
            )
            expired += 1
    return expired


# --- Received from upstream -------------------------------------------------------------------


@transaction.atomic
def warning_receive(
    *,
    upstream_identifier: str,
    upstream_sender: str,
    msg_type: str,
    warning_type: str,
    level: str,
    title: str,
    description: str,
    targets: Sequence[Any],
    onset: datetime,
    expires: datetime,
    references: Sequence[str] = (),
    instruction: str = "",
    title_en: str = "",
    description_en: str = "",
    instruction_en: str = "",
    raw: str = "",
    notes: Sequence[str] = (),
    by: Any = None,
) -> WarningVersion:
    """Store and publish a warning received from upstream (the CAP importer calls this
    with plain values). Idempotent by (upstream sender, identifier): a repeat returns the
    stored version. The chain is the one holding any of ``references`` (upstream or own
    identifiers), else a new one. No approval: upstream approved it; the fan-out and the
    叫应 round run as for a warning issued here. ``notes`` (how the importer read the
    message) and ``by`` (who imported it, ``None``: the system) go to the timeline."""
    upstream_identifier = required_text("upstream_identifier", upstream_identifier, max_length=200)
    existing = WarningVersion.objects.filter(
        upstream_identifier=upstream_identifier, upstream_sender=upstream_sender
    ).first()
    if existing is not None:
        return existing
    msg_type = _choice("msg_type", msg_type, MsgType)
    content = _clean(
        {
            "warning_type": warning_type,
            "level": level,
            "title": title,
            "description": description,
            "instruction": instruction,
            "title_en": title_en,
            "description_en": description_en,
            "instruction_en": instruction_en,
            "onset": onset,
            "expires": expires,
        }
    )
    _check_times(content["onset"], content["expires"])
    regions = _regions(targets)
    refs = [str(r) for r in references if r]
    chain_id = (
        WarningVersion.objects.filter(upstream_identifier__in=refs)
        .values_list("chain_id", flat=True)
        .first()
        or WarningVersion.objects.filter(identifier__in=refs)
        .values_list("chain_id", flat=True)
        .first()
        if refs
        else None
    )
    if chain_id is None:
        chain = WarningChain.objects.create(
            region=_common_region(regions), source=Source.UPSTREAM, versions_count=0
        )
    else:
        chain = _chain_for_update(chain_id)
    chain.versions_count += 1
    chain.save(update_fields=["versions_count", "updated_at"])
    version = WarningVersion(
        chain=chain,
        number=chain.versions_count,
        msg_type=msg_type,
        source=Source.UPSTREAM,
        upstream_sender=optional_text("upstream_sender", upstream_sender, max_length=200),
        upstream_identifier=upstream_identifier,
        upstream_raw=raw,
        **content,
    )
    version = _publish(chain, version, by=None, regions=regions)
    data: dict[str, Any] = {
        "upstream_identifier": upstream_identifier,
        "upstream_sender": upstream_sender,
    }
    if notes:
        data["notes"] = [str(note) for note in notes]
    _timeline(chain, version, TimelineKind.RECEIVED, by, data=data)
    return version


# Namespace of the per-message advisory lock of the CAP import (any constant of its own).
_IMPORT_LOCK_NAMESPACE = 0x6361  # "ca"


def _serialise_import(sender_: str, identifier: str) -> None:
    """One import of a message (sender, identifier) at a time (PostgreSQL advisory lock,
    released at commit): ``warning_receive``'s repeat check then sees the first import's
    row instead of both storing it. SQLite serialises writers anyway."""
    if connection.vendor == "postgresql":
        key = zlib.crc32(f"{sender_}\n{identifier}".encode()) - 2**31
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_IMPORT_LOCK_NAMESPACE, key])


@transaction.atomic
def warning_import_cap(*, data: bytes, by: Any) -> WarningVersion:
    """Import one CAP 1.2 message: ``parse_alert`` (size limit, safe XML, the XSD) →
    ``alert_to_received`` → ``warning_receive``. ``by`` needs ``warning.compose`` over
    every target region (``None``: the system, e.g. ``manage.py import_cap``). A refusal
    stores nothing: 413/422 ``cap_*`` with ``extra.problems``, 422
    ``warning_cap_not_actual`` / ``warning_cap_unsupported``, 403 out of scope.
    Idempotent by (sender, identifier): a repeat returns the stored version."""
    received = alert_to_received(parse_alert(data), raw_xml=data)
    plan = cap_adapter.receive_plan(received)
    _check_compose(by, _regions(plan.kwargs["targets"]))
    _serialise_import(received.sender, received.identifier)
    return warning_receive(**plan.kwargs, by=by)


# --- 叫应 ---------------------------------------------------------------------------------------


def warning_acknowledge(
    *, version_id: int, user: Any, channel: str = AckChannel.APP
) -> Acknowledgement:
    """``user`` answers the warning (叫应): the row is stamped once, its clock stops, the
    boards hear of it. 404 ``warning_ack_not_found`` when the warning was not addressed to
    them; 409 ``warning_not_active`` when it was superseded (answer the update: its id is
    in ``extra.current_id``), cancelled or expired. A repeat changes nothing."""
    channel = _choice("channel", channel, AckChannel)
    with transaction.atomic():
        ack = (
            Acknowledgement.objects.select_for_update(of=("self",))
            .select_related("version", "region")
            .filter(version_id=version_id, user_id=user.pk)
            .first()
        )
        if ack is None:
            raise ApplicationError(WarningErrorCode.ACK_NOT_FOUND, status=404)
        if ack.acked_at is not None:
            return ack
        version = ack.version
        if version.status != WarningStatus.PUBLISHED:
            current = (
                WarningVersion.objects.filter(
                    chain_id=version.chain_id, status=WarningStatus.PUBLISHED
                )
                .values_list("pk", flat=True)
                .first()
            )
            raise ApplicationError(
                WarningErrorCode.NOT_ACTIVE,
                _("This warning is no longer in force."),
                extra={"status": version.status, "current_id": current},
                status=409,
            )
        now = timezone.now()
        ack.acked_at = now
        ack.channel = channel
        ack.save(update_fields=["acked_at", "channel", "updated_at"])
        sla_clock_stop(
            kind=SlaKind.WARNING_ACK,
            subject_type=SUBJECT_ACK,
            subject_id=ack.pk,
            reason="acknowledged",
        )
        _timeline(
            version.chain,
            version,
            TimelineKind.ACKNOWLEDGED,
            user,
            at=now,
            data={"ack_id": ack.pk, "channel": channel, "region": ack.region.code},
        )
        for event in (fanout.PUBLISHED, fanout.UPDATED):
            notifications_acknowledge(
                dedupe_key_prefix=fanout.person_push_prefix(version.pk, event), user_id=user.pk
            )
        fanout.acknowledged(ack)
    return ack


# --- The roster -------------------------------------------------------------------------------


@transaction.atomic
def responsible_person_add(
    *,
    by: Any,
    region_id: int,
    user_id: int,
    role: str = PersonRole.DUTY_OFFICER,
    order: int = 0,
) -> ResponsiblePerson:
    """Put ``user`` on the roster of ``region`` (reactivates a removed row)."""
    role = _choice("role", role, PersonRole)
    region = Region.objects.filter(pk=region_id, is_active=True).first()
    if region is None:
        raise field_error("region", _("Unknown or inactive region."), code="does_not_exist")
    _check_compose(by, [region])
    if not User.objects.filter(pk=user_id, is_active=True).exists():
        raise field_error("user", _("Unknown or inactive user."), code="does_not_exist")
    person, _created = ResponsiblePerson.objects.update_or_create(
        region=region,
        user_id=user_id,
        defaults={"role": role, "order": max(0, int(order)), "is_active": True},
    )
    return person


@transaction.atomic
def responsible_person_remove(*, by: Any, person_id: int) -> ResponsiblePerson:
    """Take a person off the roster (the row stays, inactive: who was responsible when
    remains answerable)."""
    person = (
        ResponsiblePerson.objects.select_for_update(of=("self",))
        .select_related("region")
        .filter(pk=person_id)
        .first()
    )
    if person is None or (by is not None and not scope_for(by).covers(person.region.path)):
        raise ApplicationError(WarningErrorCode.PERSON_NOT_FOUND, status=404)
    _check_compose(by, [person.region])
    if person.is_active:
        person.is_active = False
        person.save(update_fields=["is_active", "updated_at"])
    return person
