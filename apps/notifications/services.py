"""Writes of the notifications app: the outbox, receipts and preferences (conventions R1, R2).

The ``notify_*`` functions are what other apps call. They write outbox rows **inside the
caller's transaction** and enqueue delivery only after it commits
(``apps.core.transactions.enqueue_on_commit``): a rolled-back change pushes nothing,
and a push never announces a row the receiver cannot read yet. A second call with the
same dedupe key is silently ignored (``INSERT ... ON CONFLICT DO NOTHING``), so a
retried request or a sweep that runs twice never pushes twice.

Texts are rendered here, once per recipient, in the recipient's language (the locale of
their most recently seen device, else ``LANGUAGE_CODE``): pass ``gettext_lazy`` strings
with ``%(name)s`` placeholders and their ``args``; the row keeps the source strings and
arguments in ``template``.

Delivery (claim, send, retry, sweeps, SMS fallback) is in ``apps.notifications.delivery``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import F
from django.utils import timezone, translation
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from apps.accounts.models import Device
from apps.core.bulk import rows_insert
from apps.core.errors import ApplicationError
from apps.core.transactions import enqueue_on_commit, on_commit
from apps.notifications.errors import NotificationsErrorCode
from apps.notifications.models import (
    Channel,
    Kind,
    Notification,
    NotificationPreference,
    Priority,
    Status,
)

logger = logging.getLogger(__name__)

Text = str | Promise

TITLE_MAX = 200
BODY_MAX = 1000  # FCM payloads are limited to 4 KB in all
DEDUPE_PREFIX_MAX = 170  # room for ":u<user id>" and the SMS fallback's ":sms"
# FCM refuses these data keys; "notification_id" and "kind" are added at delivery.
RESERVED_DATA_KEYS = frozenset({"from", "notification", "message_type", "notification_id", "kind"})
RESERVED_DATA_PREFIXES = ("google.", "gcm.")
TOPIC_PATTERN = re.compile(r"^[a-zA-Z0-9\-_.~%]{1,100}$")


# --- Writing the outbox ----------------------------------------------------------------------


@dataclass(frozen=True)
class PushSpec:
    """One push to several users (the arguments of :func:`notify_users`)."""

    user_ids: Iterable[int]
    kind: str
    title: Text
    body: Text
    dedupe_key_prefix: str
    data: Mapping[str, Any] | None = None
    priority: str = Priority.NORMAL
    ack_within: timedelta | None = None
    args: Mapping[str, Any] | None = None


def notify_users(
    *,
    user_ids: Iterable[int],
    kind: str,
    title: Text,
    body: Text,
    data: Mapping[str, Any] | None = None,
    dedupe_key_prefix: str,
    priority: str = Priority.NORMAL,
    ack_within: timedelta | None = None,
    args: Mapping[str, Any] | None = None,
) -> list[int]:
    """Push ``title``/``body`` to each user's active devices; returns the new row ids.

    One row per user, keyed ``<dedupe_key_prefix>:u<user id>`` (a repeated call is a
    no-op). ``ack_within``: the app must acknowledge receipt within this time, or one SMS
    goes to the user's phone (tasks: :func:`task_ack_window`). ``data`` values become
    strings (FCM data payload). Each row is delivered by its own Celery message, so the
    phones of a team ring in parallel.

    Muting: a user who mutes while off duty gets nothing but tasks, SOS alarms and red
    or orange warnings, i.e. ``kind="task"`` or ``"sos"``, or ``kind="warning"`` with
    ``data["level"]`` ``"red"`` or ``"orange"``.
    """
    spec = PushSpec(
        user_ids=user_ids,
        kind=kind,
        title=title,
        body=body,
        dedupe_key_prefix=dedupe_key_prefix,
        data=data,
        priority=priority,
        ack_within=ack_within,
        args=args,
    )
    return notify_many([spec], one_message=False)


def notify_many(specs: Sequence[PushSpec], *, one_message: bool = True) -> list[int]:
    """The batch form of :func:`notify_users`: many pushes in one INSERT, the recipients'
    languages in one query; returns the new row ids. With ``one_message`` their delivery
    is enqueued as ONE Celery message (the worker delivers them in turn) — what a batch
    of citizen reports uses for its SOS alarms, where a broker round trip per row would
    cost more than the reports themselves."""
    wanted: list[tuple[PushSpec, list[int]]] = []
    for spec in specs:
        ids = sorted({int(pk) for pk in spec.user_ids})
        if not ids:
            continue
        _check_choice("kind", spec.kind, Kind.values)
        _check_choice("priority", spec.priority, Priority.values)
        _check_prefix(spec.dedupe_key_prefix)
        wanted.append((spec, ids))
    if not wanted:
        return []
    languages = recipient_languages(sorted({pk for _spec, ids in wanted for pk in ids}))
    now = timezone.now()
    rows = []
    for spec, ids in wanted:
        payload = clean_data(spec.data)
        template = _template(spec.title, spec.body, spec.args)
        deadline = now + spec.ack_within if spec.ack_within is not None else None
        for user_id in ids:
            language = languages.get(user_id, default_language())
            rows.append(
                Notification(
                    dedupe_key=f"{spec.dedupe_key_prefix}:u{user_id}",
                    channel=Channel.PUSH,
                    kind=spec.kind,
                    priority=spec.priority,
                    user_id=user_id,
                    language=language,
                    title=clip(render(spec.title, spec.args, language), TITLE_MAX),
                    body=clip(render(spec.body, spec.args, language), BODY_MAX),
                    template=template,
                    data=payload,
                    next_attempt_at=now,
                    ack_deadline=deadline,
                    created_at=now,
                )
            )
    return outbox_insert(rows, one_message=one_message)


def notify_topic(
    *,
    topic: str,
    kind: str,
    title: Text,
    body: Text,
    data: Mapping[str, Any] | None = None,
    dedupe_key: str,
    priority: str = Priority.NORMAL,
    region_id: int | None = None,
    args: Mapping[str, Any] | None = None,
    language: str | None = None,
) -> list[int]:
    """Push to an FCM topic (citizens of a region: :func:`region_topic`); returns the
    pending row id (empty if the key was used before). ``region_id`` scopes the row in
    the admin. Topics have no per-person language: ``language`` or ``LANGUAGE_CODE``."""
    if not TOPIC_PATTERN.match(topic):
        raise ValueError(f"Malformed FCM topic name: {topic!r}")
    _check_choice("kind", kind, Kind.values)
    _check_choice("priority", priority, Priority.values)
    if not dedupe_key or len(dedupe_key) > DEDUPE_PREFIX_MAX:
        raise ValueError("dedupe_key must be 1 to 170 characters.")
    language = language or default_language()
    now = timezone.now()
    row = Notification(
        dedupe_key=dedupe_key,
        channel=Channel.PUSH,
        kind=kind,
        priority=priority,
        topic=topic,
        region_id=region_id,
        language=language,
        title=clip(render(title, args, language), TITLE_MAX),
        body=clip(render(body, args, language), BODY_MAX),
        template=_template(title, body, args),
        data=clean_data(data),
        next_attempt_at=now,
        created_at=now,
    )
    return outbox_insert([row])


def region_topic(region_code: str) -> str:
    """The FCM topic of a region's citizens: ``region-<code>`` (``region-fengdong``)."""
    return "region-" + re.sub(r"[^a-zA-Z0-9\-_.~]", "-", region_code.strip().lower())


def task_ack_window() -> timedelta:
    """How long a task push may stay unacknowledged before the SMS fallback."""
    return timedelta(seconds=settings.NOTIFICATIONS_TASK_ACK_SECONDS)


def outbox_insert(rows: list[Notification], *, one_message: bool = False) -> list[int]:
    """Insert outbox rows (a dedupe key used before is skipped: one statement, ``ON
    CONFLICT DO NOTHING``) and enqueue the new ones after commit, one Celery message each
    or, with ``one_message``, all in one. Returns the new row ids."""
    inserted = rows_insert(Notification, rows, returning=("id",), ignore_conflicts=True)
    ids = sorted(int(pk) for (pk,) in inserted)
    if one_message:
        enqueue_delivery_many(ids)
    else:
        for pk in ids:
            enqueue_delivery(pk)
    return ids


def enqueue_delivery_many(notification_ids: list[int]) -> None:
    """Deliver these rows as batches after commit: one Celery message per
    ``NOTIFICATIONS_DELIVERY_BATCH`` rows, so a large fan-out (a warning to thousands)
    spreads over the workers and each batch sends its pushes at once."""
    from apps.notifications import tasks

    size = max(1, int(settings.NOTIFICATIONS_DELIVERY_BATCH))
    ids = list(notification_ids)
    for start in range(0, len(ids), size):
        enqueue_on_commit(tasks.notifications_deliver_many, ids[start : start + size])


def enqueue_delivery(notification_id: int, *, countdown: float | None = None) -> None:
    """Deliver ``notification_id`` after the current transaction commits."""
    # Imported here: tasks import this module's delivery code (one call per task).
    from apps.notifications import tasks

    if countdown is None:
        enqueue_on_commit(tasks.notification_deliver, notification_id)
        return
    on_commit(
        lambda: tasks.notification_deliver.apply_async(
            (notification_id,), countdown=max(0.0, countdown)
        )
    )


# --- Receipts ----------------------------------------------------------------------------------


def notifications_acknowledge(*, dedupe_key_prefix: str, user_id: int) -> int:
    """The app received the pushes of ``dedupe_key_prefix`` for ``user_id``: stamp
    ``acknowledged_at`` once (no SMS fallback then); returns how many rows changed.

    A conditional UPDATE, so a retried ack changes nothing; it works whatever the
    delivery status (the app may ack before the worker recorded "sent").
    """
    now = timezone.now()
    return Notification.objects.filter(
        user_id=user_id,
        channel=Channel.PUSH,
        dedupe_key__startswith=f"{dedupe_key_prefix}:",
        acknowledged_at__isnull=True,
    ).update(acknowledged_at=now, updated_at=now)


def notification_acknowledge(*, notification_id: int, user: Any) -> Notification:
    """Generic receipt for one push addressed to ``user`` (404 for anyone else's).

    Task pushes are refused (409 ``ack_on_task``): they are acknowledged on the task,
    which also stamps the delivery KPI the SLA work times.
    """
    notification = (
        Notification.objects.filter(pk=notification_id, user_id=user.pk, channel=Channel.PUSH)
        .only("pk", "kind", "data", "acknowledged_at")
        .first()
    )
    if notification is None:
        raise ApplicationError(NotificationsErrorCode.NOTIFICATION_NOT_FOUND, status=404)
    if notification.kind == Kind.TASK:
        raise ApplicationError(
            NotificationsErrorCode.ACK_ON_TASK,
            _("Task pushes are acknowledged on the task: POST /responder/tasks/{id}/delivered/."),
            extra={"task_id": notification.data.get("task_id")},
            status=409,
        )
    now = timezone.now()
    Notification.objects.filter(pk=notification.pk, acknowledged_at__isnull=True).update(
        acknowledged_at=now, updated_at=now
    )
    notification.refresh_from_db(fields=["acknowledged_at"])
    return notification


def notifications_release_receipts(*, dedupe_key_prefix: str) -> int:
    """No receipt is needed any more (the task was answered): unacknowledged rows of
    the prefix lose their deadline, so no SMS fallback goes out for them."""
    now = timezone.now()
    return Notification.objects.filter(
        dedupe_key__startswith=f"{dedupe_key_prefix}:",
        ack_deadline__isnull=False,
        acknowledged_at__isnull=True,
        fallback_at__isnull=True,
    ).update(ack_deadline=None, updated_at=now)


def notifications_cancel(*, dedupe_key_prefix: str) -> int:
    """The reason for the messages went away (task cancelled): rows of the prefix not
    yet claimed are cancelled (their SMS fallbacks included) and receipts released;
    returns how many rows were cancelled. Rows already sending or sent stay as they are."""
    now = timezone.now()
    cancelled = Notification.objects.filter(
        dedupe_key__startswith=f"{dedupe_key_prefix}:", status=Status.PENDING
    ).update(status=Status.CANCELLED, updated_at=now)
    notifications_release_receipts(dedupe_key_prefix=dedupe_key_prefix)
    return cancelled


# --- Preferences -------------------------------------------------------------------------------


def preference_update(*, user: Any, mute_off_duty: bool) -> NotificationPreference:
    preference, _created = NotificationPreference.objects.update_or_create(
        user=user, defaults={"mute_off_duty": bool(mute_off_duty)}
    )
    return preference


# --- Rendering -------------------------------------------------------------------------------


def default_language() -> str:
    return settings.LANGUAGE_CODE


def language_for_locale(locale: str) -> str:
    """A device locale (``zh-Hans``, ``zh_CN``, ``en-US``) → a language we have."""
    code = locale.strip().replace("_", "-").lower()
    if not code:
        return default_language()
    try:
        return translation.get_supported_language_variant(code)
    except LookupError:
        return default_language()


def recipient_languages(user_ids: list[int]) -> dict[int, str]:
    """Each user's language: the locale of their most recently seen active device."""
    rows = (
        Device.objects.filter(user_id__in=user_ids, is_active=True)
        .exclude(locale="")
        .order_by("user_id", F("last_seen_at").desc(nulls_last=True), "-id")
        .values_list("user_id", "locale")
    )
    languages: dict[int, str] = {}
    for user_id, locale in rows:
        languages.setdefault(user_id, language_for_locale(locale))
    return languages


def render(text: Text, args: Mapping[str, Any] | None, language: str) -> str:
    """``text % args`` in ``language`` (lazy arguments are translated too)."""
    with translation.override(language):
        rendered = str(text)
        if args:
            rendered = rendered % {key: str(value) for key, value in args.items()}
    return rendered


def source_text(text: Any) -> str:
    """The untranslated source of a lazy string (the msgid); plain strings as they are."""
    with translation.override(None):
        return str(text)


def clip(text: str, limit: int) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def clean_data(data: Mapping[str, Any] | None) -> dict[str, str]:
    """FCM data: string keys and values, none of FCM's reserved keys."""
    cleaned: dict[str, str] = {}
    for key, value in (data or {}).items():
        name = str(key)
        if name in RESERVED_DATA_KEYS or name.startswith(RESERVED_DATA_PREFIXES):
            raise ValueError(f"{name!r} is reserved in FCM data payloads.")
        if value is None:
            cleaned[name] = ""
        elif isinstance(value, bool):
            cleaned[name] = "true" if value else "false"
        else:
            cleaned[name] = str(value)
    return cleaned


def _template(title: Text, body: Text, args: Mapping[str, Any] | None) -> dict[str, Any]:
    return {
        "title": source_text(title),
        "body": source_text(body),
        "args": {key: source_text(value) for key, value in (args or {}).items()},
    }


def _check_choice(name: str, value: str, allowed: list[str]) -> None:
    if value not in allowed:
        raise ValueError(f"Unknown notification {name}: {value!r}")


def _check_prefix(prefix: str) -> None:
    if not prefix or len(prefix) > DEDUPE_PREFIX_MAX:
        raise ValueError("dedupe_key_prefix must be 1 to 170 characters.")
