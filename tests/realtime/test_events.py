"""emit(): numbered in the transaction of the change, published once after commit only."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import transaction
from django.utils import timezone

from apps.realtime import events, frames
from apps.realtime.models import Event, StreamCounter
from apps.realtime.publisher import LiveEvent
from tests.realtime.conftest import decoded

pytestmark = pytest.mark.django_db


def seqs(stream: str) -> list[int]:
    return list(Event.objects.filter(stream=stream).order_by("seq").values_list("seq", flat=True))


def test_each_stream_is_numbered_from_one_on_its_own() -> None:
    # when
    first = events.emit(["incident.1", "region.xixian"], "incident.note", {"n": 1})
    second = events.emit(["incident.1"], "incident.note", {"n": 2})
    third = events.emit(["incident.2", "region.xixian"], "incident.note", {"n": 3})
    # then
    assert [(e.stream, e.seq) for e in first] == [("incident.1", 1), ("region.xixian", 1)]
    assert [(e.stream, e.seq) for e in second] == [("incident.1", 2)]
    assert [(e.stream, e.seq) for e in third] == [("incident.2", 1), ("region.xixian", 2)]
    assert StreamCounter.objects.get(stream="region.xixian").last_seq == 2


def test_the_returned_rows_are_the_stored_ones() -> None:
    (event,) = events.emit(["user.5"], "task.dispatched", {"task": {"id": 9}, "标题": "积水"})
    stored = Event.objects.get(pk=event.pk)
    assert (stored.stream, stored.seq, stored.kind) == ("user.5", 1, "task.dispatched")
    assert stored.payload == event.payload == {"task": {"id": 9}, "标题": "积水"}
    assert stored.created_at == event.created_at


def test_a_stream_named_twice_gets_one_event() -> None:
    emitted = events.emit(["user.1", "user.1", "incident.3"], "task.accepted", {})
    assert [e.stream for e in emitted] == ["incident.3", "user.1"]
    assert Event.objects.count() == 2


def test_emit_many_numbers_shared_streams_in_list_order() -> None:
    emitted = events.emit_many(
        [
            (["incident.1", "region.fengdong"], "incident.merged", {"i": 1}),
            (["incident.2", "region.fengdong"], "incident.duplicate_merged", {"i": 2}),
        ]
    )
    assert [(e.stream, e.seq, e.payload["i"]) for e in emitted] == [
        ("incident.1", 1, 1),
        ("region.fengdong", 1, 1),
        ("incident.2", 1, 2),
        ("region.fengdong", 2, 2),
    ]


def test_emit_many_without_returning_writes_and_publishes_the_same_events(
    published, django_capture_on_commit_callbacks
) -> None:
    # when: a hot path that needs no model instances back
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        emitted = events.emit_many(
            [(["report.1", "region.xixian"], "report.submitted", {"i": 1})], returning=False
        )
    # then: nothing built, everything written and published
    assert emitted == []
    assert sorted(Event.objects.values_list("stream", "seq")) == [
        ("region.xixian", 1),
        ("report.1", 1),
    ]
    assert [(e.stream, e.seq) for e in published[0]] == [("region.xixian", 1), ("report.1", 1)]


def test_the_events_of_a_transaction_are_published_once_after_commit(
    published, django_capture_on_commit_callbacks
) -> None:
    # when: three emits in one transaction
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        events.emit(["incident.1", "region.xixian"], "incident.accepted", {"a": 1})
        with transaction.atomic():  # a nested service: a savepoint, released
            events.emit(["incident.1"], "incident.classified", {"b": 2})
        events.emit(["user.4"], "task.dispatched", {"c": 3})
        assert published == []  # nothing before commit
    # then: one publish with every event, in emission order
    assert len(published) == 1
    assert [(e.stream, e.seq) for e in published[0]] == [
        ("incident.1", 1),
        ("region.xixian", 1),
        ("incident.1", 2),
        ("user.4", 1),
    ]


def test_the_published_frame_is_the_envelope_clients_get(
    published, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        (event,) = events.emit(["report.8"], "report.triaged", {"public_status": "received"})
    (frame,) = decoded(published[0])
    assert frame == {
        "type": "event",
        "stream": "report.8",
        "seq": 1,
        "kind": "report.triaged",
        "at": timezone.localtime(event.created_at).isoformat(),
        "data": {"public_status": "received"},
    }
    assert frame["at"].endswith("+08:00")  # Asia/Shanghai


def test_a_frame_built_from_stored_text_equals_one_built_from_the_payload() -> None:
    at = datetime(2026, 7, 1, 4, 0, tzinfo=UTC)
    data = {"title": "沣东 积水", "n": [1, 2], "ok": True, "none": None}
    from_text = frames.event_frame_from_text(
        "incident.1", 3, "incident.note", at, json.dumps(data, ensure_ascii=False)
    )
    built = frames.event_frame(stream="incident.1", seq=3, kind="incident.note", at=at, data=data)
    assert json.loads(from_text) == json.loads(built)
    assert json.loads(built)["at"] == "2026-07-01T12:00:00+08:00"


@transaction.atomic
def failing_change() -> None:
    events.emit(["incident.1", "region.xixian"], "incident.accepted", {})
    raise RuntimeError("the change failed")


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_transaction_leaves_no_event_and_publishes_nothing(published) -> None:
    # given
    events.emit(["incident.1"], "incident.created", {})
    published.clear()
    # when
    with pytest.raises(RuntimeError, match="the change failed"):
        failing_change()
    # then: no row, no number used up, nothing sent
    assert seqs("incident.1") == [1]
    assert not Event.objects.filter(stream="region.xixian").exists()
    assert StreamCounter.objects.get(stream="incident.1").last_seq == 1
    assert published == []
    # and the next event takes the number the rolled-back one had
    (event,) = events.emit(["incident.1"], "incident.accepted", {})
    assert event.seq == 2


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_savepoint_drops_exactly_its_events(published) -> None:
    # when: the middle emit is in a savepoint that is rolled back, the transaction commits
    with transaction.atomic():
        events.emit(["incident.1"], "incident.accepted", {"step": "a"})
        try:
            with transaction.atomic():
                events.emit(["incident.1", "user.3"], "task.dispatched", {"step": "b"})
                raise ValueError("refused")
        except ValueError:
            pass
        events.emit(["incident.1"], "incident.note", {"step": "c"})
    # then
    assert [e.kind for e in Event.objects.order_by("stream", "seq")] == [
        "incident.accepted",
        "incident.note",
    ]
    assert seqs("incident.1") == [1, 2]
    assert not StreamCounter.objects.filter(stream="user.3").exists()
    assert len(published) == 1
    assert [json.loads(e.frame)["data"]["step"] for e in published[0]] == ["a", "c"]


@pytest.mark.django_db(transaction=True)
def test_a_transaction_registers_one_on_commit_callback_for_all_its_events(published) -> None:
    from django.db import connection

    with transaction.atomic():
        events.emit(["incident.1"], "incident.accepted", {})
        events.emit(["incident.1", "user.2"], "task.dispatched", {})
        registered = len(connection.run_on_commit)
    assert registered == 1
    assert [len(call) for call in published] == [3]


@pytest.mark.django_db(transaction=True)
def test_emit_outside_a_transaction_commits_and_publishes_at_once(published) -> None:
    (event,) = events.emit(["user.1"], "task.dispatched", {"task": 1})
    assert Event.objects.filter(pk=event.pk).exists()
    assert published == [[LiveEvent("user.1", 1, published[0][0].frame)]]


def test_an_emit_with_no_streams_writes_nothing(published) -> None:
    assert events.emit([], "incident.note", {}) == []
    assert Event.objects.count() == 0


@pytest.mark.parametrize(
    "payload",
    [
        {"at": timezone.now()},  # a datetime slipping in
        {"amount": Decimal("1.5")},
        {"pair": (1, 2)},  # comes back as a list
        {1: "int key"},  # comes back as "1"
        {"nan": float("nan")},
    ],
)
def test_a_payload_that_is_not_plain_json_is_refused_under_test_settings(payload: dict) -> None:
    with pytest.raises((TypeError, ValueError)):
        events.emit(["incident.1"], "incident.note", payload)
    assert Event.objects.count() == 0


def test_in_production_such_a_payload_is_logged_and_encoded_leniently(
    settings, caplog: pytest.LogCaptureFixture
) -> None:
    settings.EVENTS_PAYLOAD_STRICT = False
    at = datetime(2026, 7, 1, 4, 0, tzinfo=UTC)
    with caplog.at_level(logging.ERROR, logger="apps.realtime.events"):
        (event,) = events.emit(["incident.1"], "incident.note", {"at": at})
    assert event.payload == {"at": "2026-07-01T04:00:00Z"}
    assert "not plain JSON" in caplog.text


@pytest.mark.parametrize(
    ("streams_to", "kind", "payload"),
    [
        (["incident.01"], "incident.note", {}),
        (["group.1"], "incident.note", {}),
        ("incident.1", "incident.note", {}),  # one string, not a list of names
        (["incident.1"], "", {}),
        (["incident.1"], "x" * 65, {}),
        (["incident.1"], "incident.note", ["not", "an", "object"]),
    ],
)
def test_bad_arguments_are_programming_errors(streams_to, kind, payload) -> None:
    with pytest.raises((TypeError, ValueError)):
        events.emit(streams_to, kind, payload)


def test_on_postgresql_an_emit_is_one_statement_with_the_payloads_sent_once() -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    if connection.vendor != "postgresql":
        pytest.skip("the one-statement path is PostgreSQL's")
    # given: a payload that needs escaping (quotes, backslashes, Chinese) to four streams
    payload = {"text": '他说"快来"\\n', "path": "C:\\temp", "标题": "积水"}
    streams = ["incident.9", "region.fengdong", "region.xixian", "user.3"]
    # when
    with CaptureQueriesContext(connection) as queries, transaction.atomic():
        emitted = events.emit(streams, "incident.note", payload)
    # then: reservation and rows in one round trip, the payload in it once
    (statement,) = [q["sql"] for q in queries.captured_queries if "realtime_" in q["sql"]]
    assert statement.count("快来") == 1
    assert [(e.stream, e.seq) for e in emitted] == [(s, 1) for s in streams]
    stored = Event.objects.filter(stream__in=streams).order_by("stream")
    assert [e.payload for e in stored] == [payload] * 4
    assert [e.pk for e in stored] == [e.pk for e in emitted]


def test_the_head_of_many_streams_is_read_in_one_query(django_assert_num_queries) -> None:
    from apps.realtime.selectors import stream_heads

    events.emit(["user.1", "user.2"], "task.dispatched", {})
    events.emit(["user.2"], "task.accepted", {})
    names = ["user.1", "user.2", "user.404"] + [f"user.{n}" for n in range(1000, 3000)]
    with django_assert_num_queries(1):
        heads = stream_heads(names)
    assert heads == {"user.1": 1, "user.2": 2}
