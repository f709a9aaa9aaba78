"""Telling everyone: citizen topics, region streams, responsible persons' phones.

Called by the services inside their transaction; nothing leaves before COMMIT: outbox
rows enqueue their delivery on commit (``apps.notifications.services``) and events are
published on commit (``apps.realtime.events``).

- **Citizen topics**: one FCM topic message per target region, to
  ``region_topic(code)`` = ``region-<code>``. A citizen's device subscribes to the topic
  of its street *and every ancestor* (new town, new area) for its home and for its last
  known location (``GET /warnings/topics/``), so a warning for a new town reaches every
  street below it through one message.
- **Region streams**: ``warning.<event>`` on ``region.<code>`` of every target, its
  ancestors (the boards above) and every active region below it (a street's or a
  community's board sees a warning issued for its new town).
- **Responsible persons**: one push each (outbox row, dedupe key
  ``ew:<version>:<event>:p:u<user>``).

Red and orange go out with high priority (FCM high priority wakes a dozing phone); red
and orange warnings are never muted by an off-duty preference
(``apps.notifications.delivery.UNMUTED_WARNING_LEVELS``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypedDict

from django.utils.translation import gettext_lazy as _

from apps.early_warnings.models import (
    URGENT_LEVELS,
    Acknowledgement,
    WarningLevel,
    WarningVersion,
)
from apps.notifications.models import Kind, Priority
from apps.notifications.services import PushSpec, notify_many, notify_topic, region_topic
from apps.realtime import events, streams
from apps.regions.models import Region

PUBLISHED = "published"
UPDATED = "updated"
CANCELLED = "cancelled"
EXPIRED = "expired"
ACKNOWLEDGED = "acknowledged"

TITLES = {
    PUBLISHED: _("%(level)s warning: %(title)s"),
    UPDATED: _("Updated %(level)s warning: %(title)s"),
    CANCELLED: _("Warning lifted: %(title)s"),
}
BODY = _("%(description)s %(instruction)s")
BODY_CLIP = 400


class WarningSummary(TypedDict):
    id: int
    chain_id: int
    identifier: str | None
    msg_type: str
    status: str
    warning_type: str
    level: str
    title: str
    onset: str
    expires: str
    targets: list[str]


class WarningEventPayload(TypedDict):
    """``warning.published|updated|cancelled|expired`` on the region streams."""

    event: str
    warning: WarningSummary


class WarningAckPayload(TypedDict):
    """``warning.acknowledged`` on the region streams of the person's region."""

    warning_id: int
    chain_id: int
    ack_id: int
    user_id: int
    region: str
    acked_at: str
    channel: str


def summary(version: WarningVersion, targets: Sequence[Region]) -> WarningSummary:
    return {
        "id": version.pk,
        "chain_id": version.chain_id,
        "identifier": version.identifier,
        "msg_type": version.msg_type,
        "status": version.status,
        "warning_type": version.warning_type,
        "level": version.level,
        "title": version.title,
        "onset": version.onset.isoformat(),
        "expires": version.expires.isoformat(),
        "targets": [region.code for region in targets],
    }


def region_streams(targets: Sequence[Region]) -> list[str]:
    """The streams of every target, its ancestors and its active subtree (one query)."""
    from django.db.models import Q

    names: set[str] = set()
    where = Q()
    for region in targets:
        names.update(streams.region_and_ancestors(region))
        where |= Q(path__startswith=region.path)
    if targets:
        codes = Region.objects.filter(where, is_active=True).values_list("code", flat=True)
        names.update(streams.region(code) for code in codes)
    return sorted(names)


def announce(
    version: WarningVersion,
    targets: Sequence[Region],
    *,
    event: str,
    person_ids: Sequence[int],
) -> None:
    """Topics, pushes and events of one version's ``event`` (inside the transaction)."""
    if event in TITLES:
        args = {
            "level": WarningLevel(version.level).label,
            "title": version.title,
            "description": version.description[:BODY_CLIP],
            "instruction": version.instruction[:BODY_CLIP],
        }
        priority = Priority.HIGH if version.level in URGENT_LEVELS else Priority.NORMAL
        data = {
            "warning_id": version.pk,
            "chain_id": version.chain_id,
            "identifier": version.identifier or "",
            "level": version.level,
            "msg_type": version.msg_type,
            "event": event,
        }
        for region in targets:
            notify_topic(
                topic=region_topic(region.code),
                kind=Kind.WARNING,
                title=TITLES[event],
                body=BODY,
                args=args,
                data=data,
                dedupe_key=f"ew:{version.pk}:{event}:t:{region.code}"[:170],
                priority=priority,
                region_id=region.pk,
            )
        # Delivered in batches (NOTIFICATIONS_DELIVERY_BATCH rows per Celery message, the
        # pushes of a batch sent at once): one message per person made a red warning to
        # 5,000 persons take minutes (bench/README.md, warnings).
        notify_many(
            [
                PushSpec(
                    user_ids=person_ids,
                    kind=Kind.WARNING,
                    title=TITLES[event],
                    body=BODY,
                    args=args,
                    data=data,
                    dedupe_key_prefix=f"ew:{version.pk}:{event}:p",
                    priority=priority,
                )
            ],
            one_message=True,
        )
    payload: WarningEventPayload = {"event": event, "warning": summary(version, targets)}
    # Last in the transaction (the realtime ordering rule).
    events.emit(region_streams(targets), f"warning.{event}", payload)


def person_push_prefix(version_id: int, event: str) -> str:
    return f"ew:{version_id}:{event}:p"


def acknowledged(ack: Acknowledgement) -> None:
    payload: WarningAckPayload = {
        "warning_id": ack.version_id,
        "chain_id": ack.version.chain_id,
        "ack_id": ack.pk,
        "user_id": ack.user_id,
        "region": ack.region.code,
        "acked_at": ack.acked_at.isoformat() if ack.acked_at else "",
        "channel": ack.channel,
    }
    events.emit(streams.region_and_ancestors(ack.region), "warning.acknowledged", payload)
