"""rows_insert writes what bulk_create would, in one statement, on PostgreSQL and SQLite."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.core.bulk import rows_insert
from apps.core.models import IdempotentRequest
from apps.sla.models import SlaClock
from tests.factories.regions import RegionFactory

pytestmark = pytest.mark.django_db

SHANGHAI = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 7, 20, 8, 0, 30, 123456, tzinfo=SHANGHAI)


def test_rows_of_every_column_type_come_back_as_written_in_one_statement() -> None:
    # given: clocks with datetimes, a duration, JSON, nulls and a foreign key
    region = RegionFactory()
    ladder = [{"n": 1, "audiences": ["street_duty"], "note": '督办 \\ "quoted"'}]
    clocks = [
        SlaClock(
            kind="report_triage",
            subject_type="report",
            subject_id=n,
            subject_label=f"积水 {n}",
            region=region,
            status="running",
            started_at=T0,
            due_at=T0 + timedelta(minutes=5),
            target_at=None,
            paused_total=timedelta(seconds=90.5),
            ladder=ladder,
        )
        for n in (1, 2)
    ]
    # when
    with CaptureQueriesContext(connection) as queries:
        rows = rows_insert(SlaClock, clocks, returning=("subject_id", "id"))
    # then
    assert len(queries) == 1
    ids = dict(rows)
    assert set(ids) == {1, 2}
    stored = SlaClock.objects.get(pk=ids[2])
    assert stored.subject_label == "积水 2"
    assert stored.started_at == T0
    assert stored.due_at == T0 + timedelta(minutes=5)
    assert stored.target_at is None
    assert stored.paused_total == timedelta(seconds=90.5)
    assert stored.ladder == ladder
    assert stored.region_id == region.pk
    assert stored.updated_at is not None  # auto_now applied as bulk_create would


def test_conflicting_rows_are_skipped_and_return_nothing() -> None:
    key = uuid.uuid4()

    def claim(path: str) -> IdempotentRequest:
        return IdempotentRequest(
            scope="anon", key=key, method="POST", path=path, request_hash="h", response_status=0
        )

    first = rows_insert(IdempotentRequest, [claim("/a/")], returning=("key", "id"))
    again = rows_insert(
        IdempotentRequest,
        [claim("/b/"), claim("/c/")],
        returning=("key", "id"),
        ignore_conflicts=True,
    )
    assert [uuid.UUID(str(k)) for k, _id in first] == [key]
    assert again == []
    assert list(IdempotentRequest.objects.values_list("path", flat=True)) == ["/a/"]
