"""The outbox writes: rows in the caller's transaction, delivered only after commit."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from apps.incidents.models import Severity
from apps.notifications import services
from apps.notifications.backends import LocmemPush
from apps.notifications.models import Kind, Notification, Priority, Status
from apps.notifications.services import PushSpec, notify_many
from tests.factories.accounts import CitizenFactory, DeviceFactory
from tests.factories.notifications import NotificationFactory
from tests.factories.regions import NewTownFactory

pytestmark = pytest.mark.django_db

NOW = timezone.make_aware(timezone.datetime(2026, 7, 1, 9, 30))


def notify(user_ids: list[int], prefix: str = "info:1", **kwargs: Any) -> list[int]:
    values: dict[str, Any] = {
        "kind": Kind.INFO,
        "title": "Drill at 10:00",
        "body": "Meet at the depot.",
        "data": {"type": "info"},
        "dedupe_key_prefix": prefix,
    }
    values.update(kwargs)
    return services.notify_users(user_ids=user_ids, **values)


def test_one_row_per_user_is_written_and_delivered_after_commit(
    django_capture_on_commit_callbacks: Any, push_outbox: list[LocmemPush]
) -> None:
    # given
    alice, bob = DeviceFactory().user, DeviceFactory().user

    # when
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        ids = notify([alice.pk, bob.pk])
        pending = list(Notification.objects.filter(pk__in=ids).values_list("status", flat=True))
    assert push_outbox == []  # nothing leaves before the commit
    for callback in callbacks:
        callback()

    # then
    assert pending == [Status.PENDING, Status.PENDING]
    rows = Notification.objects.order_by("user_id")
    assert [(r.dedupe_key, r.status) for r in rows] == [
        (f"info:1:u{alice.pk}", Status.SENT),
        (f"info:1:u{bob.pk}", Status.SENT),
    ]
    assert len(push_outbox) == 2
    assert len(callbacks) == 2


def test_the_same_dedupe_key_is_written_and_pushed_once(
    django_capture_on_commit_callbacks: Any, push_outbox: list[LocmemPush]
) -> None:
    user = DeviceFactory().user
    with django_capture_on_commit_callbacks(execute=True):
        notify([user.pk])
    with django_capture_on_commit_callbacks(execute=True):
        again = notify([user.pk, user.pk])

    assert again == []  # the row exists and is no longer pending: nothing to enqueue
    assert Notification.objects.count() == 1
    assert len(push_outbox) == 1


def test_a_rolled_back_transaction_leaves_no_row_and_pushes_nothing(
    django_capture_on_commit_callbacks: Any, push_outbox: list[LocmemPush]
) -> None:
    user = DeviceFactory().user

    def dispatch_that_fails() -> None:
        with transaction.atomic():
            notify([user.pk])
            raise RuntimeError("the dispatch failed after the outbox write")

    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
    ):
        dispatch_that_fails()

    assert not Notification.objects.exists()
    assert callbacks == []
    assert push_outbox == []


def test_texts_are_rendered_in_each_recipients_language() -> None:
    # given: a Chinese phone and an English one (the most recently seen device counts)
    zh = DeviceFactory(locale="zh-Hans").user
    en = DeviceFactory(locale="en-US", last_seen_at=timezone.now()).user
    DeviceFactory(user=en, locale="zh-Hans", last_seen_at=timezone.now() - timedelta(days=3))
    no_device = CitizenFactory()

    # when
    notify(
        [zh.pk, en.pk, no_device.pk],
        title=_("Not found."),
        body="%(severity)s · %(address)s",
        args={"severity": Severity.IV.label, "address": "三桥街道"},
    )

    # then
    rows = {row.user_id: row for row in Notification.objects.all()}
    assert (rows[zh.pk].language, rows[zh.pk].body) == ("zh-hans", "Ⅳ 一般 · 三桥街道")
    assert (rows[en.pk].language, rows[en.pk].body) == ("en", "Ⅳ General · 三桥街道")
    assert rows[no_device.pk].language == "en"  # LANGUAGE_CODE of the test settings
    assert rows[zh.pk].title != rows[en.pk].title == "Not found."
    assert rows[zh.pk].template == {
        "title": "Not found.",
        "body": "%(severity)s · %(address)s",
        "args": {"severity": "Ⅳ General", "address": "三桥街道"},
    }


def test_data_values_are_strings_and_reserved_keys_are_refused() -> None:
    user = CitizenFactory()
    notify([user.pk], data={"task_id": 7, "lat": 34.27, "urgent": True, "note": None})
    assert Notification.objects.get().data == {
        "task_id": "7",
        "lat": "34.27",
        "urgent": "true",
        "note": "",
    }
    with pytest.raises(ValueError, match="reserved"):
        notify([user.pk], prefix="info:2", data={"google.c.a.e": "1"})


@time_machine.travel(NOW, tick=False)
def test_ack_within_sets_the_receipt_deadline() -> None:
    user = CitizenFactory()
    notify([user.pk], kind=Kind.TASK, priority=Priority.HIGH, ack_within=timedelta(seconds=60))
    row = Notification.objects.get()
    assert row.ack_deadline == NOW + timedelta(seconds=60)
    assert (row.kind, row.priority, row.next_attempt_at) == (Kind.TASK, Priority.HIGH, NOW)


def test_a_topic_message_for_a_regions_citizens(
    django_capture_on_commit_callbacks: Any, push_outbox: list[LocmemPush]
) -> None:
    town = NewTownFactory(code="fengdong")
    topic = services.region_topic(town.code)

    with django_capture_on_commit_callbacks(execute=True):
        services.notify_topic(
            topic=topic,
            kind=Kind.WARNING,
            title="Rainstorm warning",
            body="Stay away from underpasses.",
            data={"level": "orange"},
            dedupe_key="warning:3:v1",
            region_id=town.pk,
        )

    assert topic == "region-fengdong"
    row = Notification.objects.get()
    assert (row.topic, row.user_id, row.region_id, row.status) == (topic, None, town.pk, "sent")
    assert [push.target for push in push_outbox] == ["region-fengdong"]
    with pytest.raises(ValueError, match="Malformed"):
        services.notify_topic(
            topic="region fengdong", kind=Kind.INFO, title="x", body="y", dedupe_key="x:1"
        )


def test_unknown_kind_or_priority_is_a_programming_error() -> None:
    user = CitizenFactory()
    with pytest.raises(ValueError, match="kind"):
        notify([user.pk], kind="gossip")
    with pytest.raises(ValueError, match="priority"):
        notify([user.pk], priority="urgent")
    assert not Notification.objects.exists()


def test_acknowledging_stamps_the_users_rows_once() -> None:
    user, other = CitizenFactory(), CitizenFactory()
    mine = NotificationFactory(user=user, dedupe_key=f"task:5:dispatched:u{user.pk}")
    theirs = NotificationFactory(user=other, dedupe_key=f"task:5:dispatched:u{other.pk}")
    unrelated = NotificationFactory(user=user, dedupe_key=f"task:55:dispatched:u{user.pk}")

    first = services.notifications_acknowledge(
        dedupe_key_prefix="task:5:dispatched", user_id=user.pk
    )
    stamp = Notification.objects.get(pk=mine.pk).acknowledged_at
    second = services.notifications_acknowledge(
        dedupe_key_prefix="task:5:dispatched", user_id=user.pk
    )

    assert (first, second) == (1, 0)
    assert stamp is not None
    assert Notification.objects.get(pk=mine.pk).acknowledged_at == stamp
    assert Notification.objects.get(pk=theirs.pk).acknowledged_at is None
    assert Notification.objects.get(pk=unrelated.pk).acknowledged_at is None


def test_cancelling_stops_pending_rows_and_releases_their_receipts() -> None:
    deadline = timezone.now() + timedelta(minutes=1)
    pending = NotificationFactory(dedupe_key="task:9:dispatched:u1", ack_deadline=deadline)
    sent = NotificationFactory(
        dedupe_key="task:9:dispatched:u2", status=Status.SENT, ack_deadline=deadline
    )
    other = NotificationFactory(dedupe_key="task:90:dispatched:u1", ack_deadline=deadline)

    cancelled = services.notifications_cancel(dedupe_key_prefix="task:9:dispatched")

    assert cancelled == 1
    pending.refresh_from_db()
    sent.refresh_from_db()
    other.refresh_from_db()
    assert (pending.status, pending.ack_deadline) == (Status.CANCELLED, None)
    assert (sent.status, sent.ack_deadline) == (Status.SENT, None)
    assert (other.status, other.ack_deadline) == (Status.PENDING, deadline)


def test_long_texts_are_clipped_to_fit_a_push() -> None:
    user = CitizenFactory()
    notify([user.pk], title="标" * 300, body="文" * 2000)
    row = Notification.objects.get()
    assert len(row.title) == services.TITLE_MAX
    assert row.title.endswith("…")
    assert len(row.body) == services.BODY_MAX


def test_the_outbox_write_costs_the_same_for_one_recipient_or_a_whole_team(
    django_assert_num_queries: Any,
) -> None:
    team = [DeviceFactory().user.pk for _ in range(12)]

    # languages (1), one INSERT ... ON CONFLICT DO NOTHING RETURNING the new ids (1)
    with django_assert_num_queries(2):
        ids = notify(team)

    assert len(ids) == 12


def test_many_pushes_are_one_insert_and_one_delivery_message(
    django_assert_num_queries: Any, django_capture_on_commit_callbacks: Any
) -> None:
    # given: three reports' alarms to overlapping officers
    officers = [DeviceFactory().user.pk for _ in range(3)]
    specs = [
        PushSpec(
            user_ids=officers[n:],
            kind="sos",
            title="SOS",
            body="report %(n)s",
            args={"n": n},
            dedupe_key_prefix=f"sos:{n}",
            priority="high",
        )
        for n in range(3)
    ]
    # when
    with django_capture_on_commit_callbacks() as callbacks, django_assert_num_queries(2):
        ids = notify_many(specs)
    # then: six rows, languages and insert in two queries, one message to deliver them
    assert len(ids) == 3 + 2 + 1
    assert Notification.objects.filter(kind="sos").count() == 6
    assert len(callbacks) == 1
