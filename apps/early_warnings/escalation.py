"""叫应 under SLA clocks: how the sweeper locks, records and escalates a silent person.

Each :class:`~apps.early_warnings.models.Acknowledgement` row is timed by a
``warning_ack`` clock (subject ``warning_ack``, id = the row; policies per level in
``fixtures/sla/policies.json``). ``apps.sla`` knows nothing of warnings; this module
registers (``EarlyWarningsConfig.ready``) what its ladder steps do for them:

- ``supervise`` (督办) — **an SMS to the silent person** (outbox row, channel ``sms``,
  keyed ``sla:<clock>:sms:<step>``);
- ``raise_loop`` — **a push to their superior**: the duty officers (operators) of the
  parent region of the person's region, or of the nearest region above that has one
  (keyed ``sla:<clock>:superior:<step>``).

The sweeper claims each step once (compare-and-swap on the clock, a unique escalation
row), and the keys make a repeated call a no-op, so every silent person gets each step
exactly once. An answer stops the clock; a cancel, an update or expiry cancels it.
"""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from apps.accounts.models import Membership, Role
from apps.early_warnings.models import Acknowledgement, TimelineKind, WarningTimelineEntry
from apps.notifications.models import Channel, Kind, Notification, Priority
from apps.notifications.services import (
    clip,
    default_language,
    notify_users,
    outbox_insert,
    recipient_languages,
    render,
    source_text,
)
from apps.sla import registry
from apps.sla.models import SlaClock
from apps.sla.policies import LadderStep

SUBJECT_ACK = "warning_ack"
SMS_TEXT = _(
    "[Xixian Emergency Connect] %(level)s warning %(title)s: please acknowledge (叫应) in the app."
)
SUPERIOR_TITLE = _("Not acknowledged: %(person)s")
SUPERIOR_BODY = _("%(person)s (%(region)s) has not acknowledged the %(level)s warning %(title)s.")


def lock_ack(ack_id: int, *, wait: bool) -> registry.Lock:
    queryset = Acknowledgement.objects.filter(pk=ack_id)
    locking = queryset.select_for_update(of=("self",), skip_locked=not wait)
    if locking.values_list("pk", flat=True).first() is not None:
        return registry.Lock.LOCKED
    if wait or not queryset.exists():
        return registry.Lock.GONE
    return registry.Lock.BUSY


def _ack(clock: SlaClock) -> Acknowledgement:
    return Acknowledgement.objects.select_related("version", "user", "region").get(
        pk=clock.subject_id
    )


def _args(ack: Acknowledgement) -> dict[str, Any]:
    version = ack.version
    return {
        "level": version.get_level_display(),
        "title": version.title,
        "person": str(ack.user),
        "region": ack.region.name_zh,
    }


def record(event: registry.RecordEvent) -> None:
    ack = Acknowledgement.objects.select_related("version").get(pk=event.clock.subject_id)
    WarningTimelineEntry.objects.create(
        chain_id=ack.version.chain_id,
        version=ack.version,
        kind=TimelineKind.ACK_ESCALATED,
        at=timezone.now(),
        data={"ack_id": ack.pk, "user_id": ack.user_id, **event.data},
    )


def sms_person(clock: SlaClock, step: LadderStep) -> dict[str, Any]:
    """督办: one SMS to the person who has not answered."""
    ack = _ack(clock)
    language = recipient_languages([ack.user_id]).get(ack.user_id, default_language())
    args = _args(ack)
    now = timezone.now()
    row = Notification(
        dedupe_key=f"sla:{clock.pk}:sms:{step.number}",
        channel=Channel.SMS,
        kind=Kind.WARNING,
        priority=Priority.HIGH,
        user_id=ack.user_id,
        language=language,
        title=clip(render(_("Warning acknowledgement"), None, language), 200),
        body=clip(render(SMS_TEXT, args, language), 500),
        template={
            "title": source_text(_("Warning acknowledgement")),
            "body": source_text(SMS_TEXT),
            "args": {key: source_text(value) for key, value in args.items()},
        },
        data={"warning_id": str(ack.version_id), "ack_id": str(ack.pk)},
        next_attempt_at=now,
        created_at=now,
    )
    ids = outbox_insert([row])
    return {"applied": True, "sms_to": ack.user_id, "notification_ids": ids}


def superiors(region_path: str, *, exclude: int | None = None) -> list[int]:
    """The duty officers (operators) of the parent region of ``region_path``, or of the
    nearest region above with one (one query)."""
    parts = region_path.strip("/").split("/")
    ancestors = ["/" + "/".join(parts[:i]) + "/" for i in range(1, len(parts))]
    if not ancestors:
        return []
    found: dict[str, set[int]] = {}
    for user_id, path in Membership.objects.filter(
        is_active=True,
        user__is_active=True,
        role=Role.OPERATOR,
        region__path__in=ancestors,
    ).values_list("user_id", "region__path"):
        if user_id != exclude:
            found.setdefault(path, set()).add(user_id)
    for path in reversed(ancestors):
        if found.get(path):
            return sorted(found[path])
    return []


def push_superior(clock: SlaClock, step: LadderStep) -> dict[str, Any]:
    """Raise to the superior: a push to the duty officers above the silent person."""
    ack = _ack(clock)
    recipients = superiors(ack.region.path, exclude=ack.user_id)
    if not recipients:
        return {"applied": False, "reason": "no_superior"}
    notify_users(
        user_ids=recipients,
        kind=Kind.ESCALATION,
        title=SUPERIOR_TITLE,
        body=SUPERIOR_BODY,
        args=_args(ack),
        data={
            "warning_id": ack.version_id,
            "ack_id": ack.pk,
            "clock_id": clock.pk,
            "user_id": ack.user_id,
        },
        dedupe_key_prefix=f"sla:{clock.pk}:superior:{step.number}",
        priority=Priority.HIGH,
    )
    return {"applied": True, "superiors": recipients}


def register() -> None:
    """Called from ``EarlyWarningsConfig.ready()``."""
    registry.register_subject(
        SUBJECT_ACK,
        registry.SubjectHandler(
            label=_("Warning acknowledgement"),
            lock=lock_ack,
            record=record,
            supervise=sms_person,
            raise_loop=push_superior,
        ),
    )
    registry.register_dimension("severity", _level_choices)


def _level_choices() -> list[tuple[str, Any]]:
    from apps.early_warnings.models import WarningLevel

    return list(WarningLevel.choices)
