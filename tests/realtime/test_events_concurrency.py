"""Per-stream order is commit order: real threads, real PostgreSQL row locks.

Each thread has its own connection and transaction. Where a test must know that a
thread is *blocked* on a counter row it polls ``pg_stat_activity`` with a deadline
(observing another backend, not sleeping for the logic).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from django.db import connection, connections, transaction

from apps.realtime import events
from apps.realtime.models import Event, StreamCounter

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


def in_thread(target: Callable[[], Any], errors: list[BaseException]) -> threading.Thread:
    def run() -> None:
        try:
            target()
        except BaseException as exc:  # collected and asserted by the test
            errors.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def wait_until_a_backend_waits_on_a_lock(deadline_s: float = 10) -> None:
    deadline = time.monotonic() + deadline_s
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if cursor.fetchone()[0]:
                return
            time.sleep(0.01)  # polling another backend's state, not waiting for logic
    raise AssertionError("the second writer never blocked on the counter row")


def seqs(stream: str) -> list[int]:
    return list(Event.objects.filter(stream=stream).order_by("seq").values_list("seq", flat=True))


@pytest.mark.parametrize("first_commits", [True, False])
def test_a_second_writer_waits_for_the_first_and_numbers_after_its_outcome(
    first_commits: bool,
) -> None:
    # given: writer A holds a number on incident.1 in an open transaction
    reserved, release = threading.Event(), threading.Event()
    got: dict[str, int] = {}
    errors: list[BaseException] = []

    def writer_a() -> None:
        try:
            with transaction.atomic():
                (event,) = events.emit(["incident.1"], "incident.accepted", {"by": "a"})
                got["a"] = event.seq
                reserved.set()
                assert release.wait(10)
                if not first_commits:
                    raise LookupError("A rolls back")
        except LookupError:
            pass

    def writer_b() -> None:
        (event,) = events.emit(["incident.1"], "incident.note", {"by": "b"})
        got["b"] = event.seq

    a = in_thread(writer_a, errors)
    assert reserved.wait(10)
    # when: B asks for a number on the same stream
    b = in_thread(writer_b, errors)
    wait_until_a_backend_waits_on_a_lock()
    assert "b" not in got  # B cannot number anything while A is undecided
    release.set()
    a.join(10)
    b.join(10)
    # then: B numbers after A's outcome - after it if A committed, in its place if not
    assert not errors
    assert got["a"] == 1
    assert got["b"] == (2 if first_commits else 1)
    assert seqs("incident.1") == ([1, 2] if first_commits else [1])


def test_many_writers_on_overlapping_streams_leave_dense_numbers_and_no_deadlock() -> None:
    # given: 6 threads x 15 transactions, each emitting to a random subset of 5 streams,
    # given in random order (emit sorts them)
    names = ["incident.1", "incident.2", "region.fengdong", "region.xixian", "user.9"]
    errors: list[BaseException] = []
    written: dict[str, int] = dict.fromkeys(names, 0)
    lock = threading.Lock()

    def writer(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(15):
            chosen = rng.sample(names, rng.randint(1, len(names)))
            with transaction.atomic():
                events.emit(chosen, "incident.note", {"seed": seed})
            with lock:
                for name in chosen:
                    written[name] += 1

    threads = [in_thread(lambda s=seed: writer(s), errors) for seed in range(6)]
    for thread in threads:
        thread.join(60)
    # then
    assert not any(thread.is_alive() for thread in threads), "a writer hung (deadlock?)"
    assert not errors
    for name in names:
        assert seqs(name) == list(range(1, written[name] + 1))
        assert StreamCounter.objects.get(stream=name).last_seq == written[name]


def test_the_raw_sql_path_shares_the_numbering_with_emit() -> None:
    """The intake's psycopg path (server-side parameters, its own connection) runs
    RESERVE_SQL and INSERT_EVENTS_SQL and interleaves with emit() without a clash."""
    # given
    events.emit(["region.fengdong"], "incident.created", {"via": "orm"})
    settings_dict = connection.settings_dict
    conninfo = psycopg.conninfo.make_conninfo(
        dbname=settings_dict["NAME"],
        host=settings_dict["HOST"] or "127.0.0.1",
        port=settings_dict["PORT"] or 5432,
        user=settings_dict["USER"] or "postgres",
    )
    at = datetime(2026, 7, 1, 4, 0, tzinfo=UTC)
    # when: a batch of two reports' board events, in one transaction
    with psycopg.connect(conninfo) as raw, raw.transaction():
        reserved = dict(
            raw.execute(events.RESERVE_SQL, [["region.fengdong", "region.xixian"], [2, 2]])
        )
        rows = [
            (stream, reserved[stream] - 2 + i, "report.submitted", f'{{"report_id": {i}}}', at)
            for stream in ("region.fengdong", "region.xixian")
            for i in (1, 2)
        ]
        inserted = raw.execute(
            events.INSERT_EVENTS_SQL, [list(column) for column in zip(*rows, strict=True)]
        ).fetchall()
    events.emit(["region.fengdong"], "incident.note", {"via": "orm"})
    # then
    assert reserved == {"region.fengdong": 3, "region.xixian": 2}
    assert sorted((stream, seq) for _id, stream, seq in inserted) == [
        ("region.fengdong", 2),
        ("region.fengdong", 3),
        ("region.xixian", 1),
        ("region.xixian", 2),
    ]
    assert seqs("region.fengdong") == [1, 2, 3, 4]
    stored = Event.objects.get(stream="region.xixian", seq=2)
    assert stored.payload == {"report_id": 2}
    assert stored.created_at == at
