"""Delivering the outbox: claim, send, record, retry; the sweeps; the SMS fallback.

Every function here is a service the Celery tasks call with an id (``tasks.py``), and
each is safe to run twice or in two workers at once:

* a row is **claimed** with a conditional UPDATE (``pending`` and due → ``sending``,
  ``attempts + 1``); the second worker's UPDATE matches nothing and it does nothing;
* the outcome is written back only if the row is still ``sending`` at the same
  ``attempts`` (a fencing token): a worker that was presumed dead and whose row the
  sweep has handed to another worker cannot overwrite the newer outcome;
* retries are rows, not broker state: ``pending`` with a later ``next_attempt_at``. The
  broker message with a countdown is only the fast path; :func:`notifications_requeue`
  finds due rows (lost messages, a flushed Redis) and rows stuck in ``sending`` (a
  killed worker);
* the SMS fallback is another outbox row with a derived dedupe key, queued by
  :func:`receipts_sweep` (or at once when the push failed for good), so it is sent once,
  retried like a push, and visible in the admin.

The network call happens outside any transaction: no row lock is held while FCM or the
SMS gateway thinks.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from apps.accounts.models import Device
from apps.accounts.services import device_deactivate
from apps.core.errors import ApplicationError
from apps.core.sms import SmsError, send_sms
from apps.notifications import services
from apps.notifications.backends import (
    DeviceTarget,
    Outcome,
    PushMessage,
    SendResult,
    get_push_backend,
)
from apps.notifications.duty import duty_of
from apps.notifications.models import (
    Channel,
    Kind,
    Notification,
    NotificationPreference,
    Priority,
    SkipReason,
    Status,
)

logger = logging.getLogger(__name__)

# A row created a moment ago is normally on its way through its own on-commit message:
# the requeue sweep leaves it this long before sending a second one.
REQUEUE_GRACE = timedelta(seconds=10)
SWEEP_BATCH = 500
MAX_DEVICES = 100  # newest first; send_each takes at most 500 messages
# The data key and the levels of a warning that no off-duty preference mutes, as
# early_warnings sends them: red and orange, the levels of a hazard under way or imminent.
WARNING_LEVEL_KEY = "level"
RED = "red"
ORANGE = "orange"
UNMUTED_WARNING_LEVELS = frozenset({RED, ORANGE})
SMS_TEXT = _("[Xixian Emergency Connect] %(title)s: %(body)s")

_jitter = random.SystemRandom()


@dataclass
class Attempt:
    """What one delivery attempt produced."""

    results: list[SendResult] = field(default_factory=list)
    skip: str = ""
    error: str = ""
    dead_device_ids: list[int] = field(default_factory=list)

    @property
    def sent(self) -> bool:
        return any(result.outcome == Outcome.SENT for result in self.results)

    @property
    def retryable(self) -> bool:
        return bool(self.error) or any(r.outcome == Outcome.RETRY for r in self.results)

    @property
    def retry_after(self) -> float | None:
        waits = [r.retry_after for r in self.results if r.retry_after is not None]
        return max(waits) if waits else None


# --- One delivery ------------------------------------------------------------------------------


def notification_claim(*, notification_id: int) -> Notification | None:
    """pending and due → sending, once; ``None`` when another worker has it, it is
    not due yet, or it is final."""
    now = timezone.now()
    claimed = Notification.objects.filter(
        pk=notification_id, status=Status.PENDING, next_attempt_at__lte=now
    ).update(status=Status.SENDING, attempts=F("attempts") + 1, claimed_at=now, updated_at=now)
    if not claimed:
        return None
    return Notification.objects.select_related("user").get(pk=notification_id)


def notification_deliver(*, notification_id: int) -> str:
    """Deliver one outbox row; returns the status it ended in (or ``"not_claimed"``).

    1. claim the row (:func:`notification_claim`); not claimed → nothing to do;
    2. decide: muted (preference, off duty) or nobody to reach → ``skipped``;
    3. send through the backend (push) or the SMS gateway, outside any transaction;
    4. record: any device reached → ``sent``; only retryable errors → ``pending`` again
       after a backoff (``failed`` once attempts are used up); otherwise ``failed``.
       Dead tokens deactivate their devices. A push that needed a receipt and failed
       for good falls back to SMS at once rather than at its deadline.
    """
    notification = notification_claim(notification_id=notification_id)
    if notification is None:
        return "not_claimed"
    try:
        attempt = _attempt(notification)
    except Exception as exc:  # a bug or an unexpected provider error: retry, never lose it
        logger.exception("notification %s: delivery raised", notification.pk)
        attempt = Attempt(error=f"{type(exc).__name__}: {exc}")
    return _record(notification, attempt)


def _attempt(notification: Notification) -> Attempt:
    if notification.channel == Channel.SMS:
        return _attempt_sms(notification)
    if notification.user_id is None:
        result = get_push_backend().send_to_topic(push_message(notification), notification.topic)
        return Attempt(results=[result])
    devices = _devices_of([notification.user_id])
    decided = _unsent(notification, devices)
    if decided is not None:
        return decided
    return _attempt_of(
        get_push_backend().send_to_devices(
            push_message(notification), devices[notification.user_id]
        )
    )


def _unsent(notification: Notification, devices: dict[int, list[DeviceTarget]]) -> Attempt | None:
    """A push to a user that is decided without sending: muted, or nobody to reach."""
    muted = mute_reason(notification)
    if muted:
        return Attempt(skip=muted)
    if not devices.get(notification.user_id or 0):
        return Attempt(skip=SkipReason.NO_DEVICES)
    return None


def _devices_of(user_ids: list[int]) -> dict[int, list[DeviceTarget]]:
    """Each user's active devices, newest first, at most ``MAX_DEVICES`` each (one query)."""
    found: dict[int, list[DeviceTarget]] = {}
    for user_id, pk, token, platform in (
        Device.objects.filter(user_id__in=user_ids, is_active=True)
        .order_by("user_id", F("last_seen_at").desc(nulls_last=True), "-id")
        .values_list("user_id", "pk", "token", "platform")
    ):
        mine = found.setdefault(user_id, [])
        if len(mine) < MAX_DEVICES:
            mine.append(DeviceTarget(device_id=pk, token=token, platform=platform))
    return found


def _attempt_of(results: list[SendResult]) -> Attempt:
    dead = [r.device_id for r in results if r.outcome == Outcome.UNREGISTERED and r.device_id]
    return Attempt(results=results, dead_device_ids=dead)


# --- A batch of deliveries ----------------------------------------------------------------------


def notifications_claim_many(*, notification_ids: list[int]) -> list[Notification]:
    """:func:`notification_claim` of many rows in two statements: those pending and due
    that no other worker holds (``SKIP LOCKED``) become ``sending``; returns them."""
    now = timezone.now()
    with transaction.atomic():
        claimed = list(
            Notification.objects.select_for_update(skip_locked=True)
            .filter(pk__in=notification_ids, status=Status.PENDING, next_attempt_at__lte=now)
            .values_list("pk", flat=True)
        )
        if claimed:
            Notification.objects.filter(pk__in=claimed).update(
                status=Status.SENDING, attempts=F("attempts") + 1, claimed_at=now, updated_at=now
            )
    return list(Notification.objects.select_related("user").filter(pk__in=claimed))


def notifications_deliver_many(*, notification_ids: list[int]) -> list[str]:
    """Deliver many outbox rows as one batch; the status each ended in, in order
    (``"not_claimed"`` for rows another worker has or that are not due).

    The same rules as :func:`notification_deliver` (claim, mute, devices, outcome), in
    bulk: one claim, one device query, and the pushes to users handed to the backend in
    ONE ``send_many`` (FCM sends them in parallel) — a red warning to 5,000 persons is a
    few dozen of these, not 5,000 sequential deliveries. Topics and SMS go one by one.
    """
    claimed = notifications_claim_many(notification_ids=notification_ids)
    attempts: dict[int, Attempt] = {}
    to_users = {n.pk for n in claimed if n.channel == Channel.PUSH and n.user_id is not None}
    devices = _devices_of(sorted({n.user_id for n in claimed if n.pk in to_users}))
    sending: list[Notification] = []
    for notification in claimed:
        if notification.pk in to_users:
            decided = _unsent(notification, devices)
            if decided is None:
                sending.append(notification)
            else:
                attempts[notification.pk] = decided
            continue
        try:
            attempts[notification.pk] = _attempt(notification)
        except Exception as exc:  # as in notification_deliver: retry, never lose it
            logger.exception("notification %s: delivery raised", notification.pk)
            attempts[notification.pk] = Attempt(error=f"{type(exc).__name__}: {exc}")
    if sending:
        items = [(push_message(n), devices[n.user_id or 0]) for n in sending]
        try:
            results = get_push_backend().send_many(items)
        except Exception as exc:
            logger.exception("notifications: a batch of %d pushes raised", len(sending))
            for notification in sending:
                attempts[notification.pk] = Attempt(error=f"{type(exc).__name__}: {exc}")
        else:
            for notification, sent in zip(sending, results, strict=True):
                attempts[notification.pk] = _attempt_of(sent)
    by_pk = {n.pk: n for n in claimed}
    return [
        _record(by_pk[pk], attempts[pk]) if pk in by_pk else "not_claimed"
        for pk in notification_ids
    ]


def _attempt_sms(notification: Notification) -> Attempt:
    phone = notification.user.phone if notification.user is not None else None
    if not phone:
        return Attempt(skip=SkipReason.NO_PHONE)
    try:
        send_sms(phone, notification.body)
    except SmsError as exc:
        return Attempt(results=[SendResult(Outcome.RETRY, error=f"SmsError: {exc}")])
    return Attempt(results=[SendResult(Outcome.SENT)])


def _record(notification: Notification, attempt: Attempt) -> str:
    now = timezone.now()
    values: dict[str, Any] = {"updated_at": now, "result": _result_json(attempt)}
    errors = [attempt.error] if attempt.error else []
    errors += [r.error for r in attempt.results if r.error]
    if attempt.skip:
        values.update(status=Status.SKIPPED, skip_reason=attempt.skip)
    elif attempt.sent:
        values.update(status=Status.SENT, sent_at=now)
    elif attempt.retryable and notification.attempts < settings.NOTIFICATIONS_MAX_ATTEMPTS:
        delay = retry_delay(notification.attempts, retry_after=attempt.retry_after)
        values.update(status=Status.PENDING, next_attempt_at=now + timedelta(seconds=delay))
    else:
        values["status"] = Status.FAILED
        if not errors:
            errors = ["no device accepted the message"]
    values["last_error"] = "\n".join(errors)[:2000]

    with transaction.atomic():
        written = Notification.objects.filter(
            pk=notification.pk, status=Status.SENDING, attempts=notification.attempts
        ).update(**values)
        if not written:
            # The stuck sweep handed the row to another worker meanwhile: theirs wins.
            logger.warning("notification %s: outcome dropped (row moved on)", notification.pk)
            return "superseded"
        for device_id in attempt.dead_device_ids:
            _deactivate(notification, device_id)
        status = values["status"]
        if status == Status.PENDING:
            services.enqueue_delivery(
                notification.pk, countdown=(values["next_attempt_at"] - now).total_seconds()
            )
        elif status in (Status.FAILED, Status.SKIPPED) and _needs_receipt(notification):
            sms_fallback_queue(notification_id=notification.pk)
    logger.info(
        "notification %s (%s/%s) attempt %s: %s",
        notification.pk,
        notification.channel,
        notification.kind,
        notification.attempts,
        status,
    )
    return str(status)


def _deactivate(notification: Notification, device_id: int) -> None:
    try:
        device_deactivate(user=notification.user, device_id=device_id)
    except ApplicationError:
        # The token moved to another user since (re-login on the phone): FCM still
        # called it dead, but it is no longer this user's device to switch off.
        logger.info("device %s no longer belongs to user %s", device_id, notification.user_id)
    else:
        logger.info("device %s deactivated: FCM reports its token dead", device_id)


def _needs_receipt(notification: Notification) -> bool:
    return (
        notification.channel == Channel.PUSH
        and notification.user_id is not None
        and notification.ack_deadline is not None
        and notification.acknowledged_at is None
    )


def _result_json(attempt: Attempt) -> dict[str, Any]:
    return {
        "devices": {
            str(r.device_id): str(r.outcome) for r in attempt.results if r.device_id is not None
        },
        "message_ids": [r.message_id for r in attempt.results if r.message_id],
    }


def retry_delay(attempt: int, *, retry_after: float | None = None) -> float:
    """Seconds before attempt ``attempt + 1``: exponential (base x 2^(n-1), capped) with
    "equal jitter" (half fixed, half random) so a burst of failures does not retry in
    lockstep; never shorter than the provider's ``Retry-After``.

    The countdown message rides on the broker; keep ``NOTIFICATIONS_RETRY_MAX_SECONDS``
    well below Redis's visibility timeout (1 h), or Redis redelivers the waiting message
    (harmless thanks to the claim, but wasteful).
    """
    ceiling = min(
        float(settings.NOTIFICATIONS_RETRY_MAX_SECONDS),
        float(settings.NOTIFICATIONS_RETRY_BASE_SECONDS) * 2 ** max(0, attempt - 1),
    )
    delay = ceiling / 2 + _jitter.uniform(0, ceiling / 2)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay


# --- What goes out ----------------------------------------------------------------------------


def push_message(notification: Notification) -> PushMessage:
    """The provider-neutral push of a row (see ``backends/fcm.py`` for the FCM shapes).

    Tasks are DATA messages (the app rings, shows and acknowledges them itself) with the
    task sound when high priority; everything else is a NOTIFICATION message with the
    default sound. ``notification_id`` and ``kind`` ride along in the data so the app can
    acknowledge and route.
    """
    is_task = notification.kind == Kind.TASK
    high = notification.priority == Priority.HIGH
    if is_task:
        sound = settings.NOTIFICATIONS_TASK_SOUND if high else None
        ttl = settings.NOTIFICATIONS_TASK_TTL_SECONDS
    else:
        sound = "default"
        ttl = settings.NOTIFICATIONS_PUSH_TTL_SECONDS
    return PushMessage(
        notification_id=notification.pk,
        kind=notification.kind,
        priority=notification.priority,
        style="data" if is_task else "notification",
        title=notification.title,
        body=notification.body,
        data={
            **notification.data,
            "notification_id": str(notification.pk),
            "kind": notification.kind,
        },
        ttl_seconds=int(ttl),
        sound=sound,
        channel_id=notification.kind,
    )


def mute_reason(notification: Notification) -> str:
    """``muted_off_duty`` when the recipient mutes while off duty and is off duty now;
    tasks, SOS alarms and red and orange warnings are never muted."""
    if notification.kind in (Kind.TASK, Kind.SOS):
        return ""
    if (
        notification.kind == Kind.WARNING
        and notification.data.get(WARNING_LEVEL_KEY) in UNMUTED_WARNING_LEVELS
    ):
        return ""
    muting = NotificationPreference.objects.filter(
        user_id=notification.user_id, mute_off_duty=True
    ).exists()
    if not muting:
        return ""
    on_duty = duty_of([notification.user_id]).get(notification.user_id)
    return SkipReason.MUTED_OFF_DUTY if on_duty is False else ""


# --- Sweeps ------------------------------------------------------------------------------------


def notifications_requeue() -> dict[str, int]:
    """Beat: hand rows stuck in ``sending`` back, and re-enqueue due ``pending`` rows.

    1. ``sending`` claimed longer ago than the Celery hard time limit (plus a minute):
       the worker is gone. Back to ``pending`` (or ``failed`` when out of attempts) with
       a conditional UPDATE, so two sweeps move each row once.
    2. ``pending`` rows due for longer than :data:`REQUEUE_GRACE`: their broker message
       was lost. Enqueue them again; the claim makes duplicates harmless.
    """
    now = timezone.now()
    cutoff = now - timedelta(seconds=stuck_seconds())
    stuck_ids = list(
        Notification.objects.filter(status=Status.SENDING, claimed_at__lt=cutoff)
        .order_by("claimed_at")
        .values_list("pk", flat=True)[:SWEEP_BATCH]
    )
    stuck = Notification.objects.filter(
        pk__in=stuck_ids, status=Status.SENDING, claimed_at__lt=cutoff
    )
    failed = stuck.filter(attempts__gte=settings.NOTIFICATIONS_MAX_ATTEMPTS).update(
        status=Status.FAILED, last_error="worker lost during the last attempt", updated_at=now
    )
    released = stuck.update(status=Status.PENDING, next_attempt_at=now, updated_at=now)
    due = Notification.objects.filter(status=Status.PENDING).filter(
        Q(next_attempt_at__lte=now - REQUEUE_GRACE) | Q(pk__in=stuck_ids)
    )
    ids = list(due.order_by("next_attempt_at").values_list("pk", flat=True)[:SWEEP_BATCH])
    for pk in ids:
        services.enqueue_delivery(pk)
    if failed or released or ids:
        logger.info(
            "notifications requeue: released=%s failed=%s enqueued=%s", released, failed, len(ids)
        )
    return {"released": released, "failed": failed, "enqueued": len(ids)}


def stuck_seconds() -> int:
    return int(settings.CELERY_TASK_TIME_LIMIT) + 60


def receipts_sweep() -> int:
    """Beat: one SMS for every push whose receipt deadline passed unacknowledged;
    returns how many fallbacks were queued."""
    now = timezone.now()
    due = list(
        Notification.objects.filter(
            channel=Channel.PUSH,
            user__isnull=False,
            ack_deadline__lte=now,
            acknowledged_at__isnull=True,
            fallback_at__isnull=True,
        )
        .exclude(status=Status.CANCELLED)
        .order_by("ack_deadline")
        .values_list("pk", flat=True)[:SWEEP_BATCH]
    )
    queued = sum(1 for pk in due if sms_fallback_queue(notification_id=pk) is not None)
    if queued:
        logger.info("SMS fallbacks queued: %s", queued)
    return queued


@transaction.atomic
def sms_fallback_queue(*, notification_id: int) -> int | None:
    """Queue the one SMS fallback of a push; returns the SMS row id, or ``None`` when it
    was acknowledged, cancelled or already fallen back (two sweeps: one SMS)."""
    now = timezone.now()
    claimed = (
        Notification.objects.filter(
            pk=notification_id,
            channel=Channel.PUSH,
            user__isnull=False,
            acknowledged_at__isnull=True,
            fallback_at__isnull=True,
        )
        .exclude(status=Status.CANCELLED)
        .update(fallback_at=now, updated_at=now)
    )
    if not claimed:
        return None
    push = Notification.objects.get(pk=notification_id)
    args = {"title": push.title, "body": push.body}
    sms = Notification(
        dedupe_key=f"{push.dedupe_key}:sms",
        channel=Channel.SMS,
        kind=push.kind,
        priority=Priority.HIGH,
        user_id=push.user_id,
        language=push.language,
        title=push.title,
        body=services.clip(services.render(SMS_TEXT, args, push.language), 500),
        template={
            "title": push.template.get("title", ""),
            "body": services.source_text(SMS_TEXT),
            "args": args,
        },
        data=push.data,
        next_attempt_at=now,
        fallback_for=push,
        created_at=now,
    )
    ids = services.outbox_insert([sms])
    return ids[0] if ids else None
