"""GPS batch ingestion: offline timestamps, duplicates, out-of-order, bad points, races."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.db import connection
from pytest_django.fixtures import Settings

from apps.core.errors import ApplicationError
from apps.dispatch import tracks
from apps.dispatch.models import LastPosition, Team, TrackChunk
from apps.dispatch.services import positions
from apps.dispatch.services.positions import (
    Ping,
    PingRejection,
    pings_ingest,
    pings_parse,
)
from tests.factories.accounts import CitizenFactory
from tests.factories.dispatch import TeamFactory, TeamMemberFactory

NOW = datetime(2025, 7, 1, 10, 0, tzinfo=UTC)  # a 10-minute bucket boundary


def fixes(start: datetime, n: int, step_s: int = 5, lat0: float = 34.27) -> list[Ping]:
    """``n`` fixes every ``step_s`` seconds from ``start``, moving north."""
    return [
        Ping(
            at=start + timedelta(seconds=i * step_s),
            lat=lat0 + i * 1e-4,
            lng=108.85,
            accuracy_m=5.0,
        )
        for i in range(n)
    ]


def stored(user: Any) -> list[tracks.TrackPoint]:
    points: list[tracks.TrackPoint] = []
    for chunk in TrackChunk.objects.filter(user=user).order_by("bucket_start"):
        points.extend(tracks.decode_points(chunk.bucket_start, chunk.points))
    return points


@pytest.fixture
def responder(db: None) -> Any:
    member = TeamMemberFactory(team=TeamFactory(), on_duty=True)
    return member.user


@pytest.fixture(autouse=True)
def _frozen_now() -> Any:
    with time_machine.travel(NOW, tick=False):
        yield


def test_an_offline_batch_is_filed_into_the_buckets_of_its_own_times(responder: Any) -> None:
    # given 15 minutes of fixes collected offline an hour ago (180 points, 2 buckets)
    start = NOW - timedelta(hours=1, minutes=5)
    # when they arrive in one batch
    result = pings_ingest(user=responder, points=fixes(start, 180))
    # then every point is stored in the bucket of its own time
    assert (result.accepted, result.duplicates, result.rejected) == (180, 0, [])
    chunks = list(TrackChunk.objects.filter(user=responder).order_by("bucket_start"))
    assert [c.bucket_start for c in chunks] == [
        NOW - timedelta(hours=1, minutes=10),
        NOW - timedelta(hours=1),
    ]
    assert [c.count for c in chunks] == [60, 120]
    assert chunks[0].first_at == start
    assert chunks[-1].last_at == start + timedelta(seconds=179 * 5)
    assert {c.team_id for c in chunks} == {responder.team_memberships.get().team_id}
    assert [p.at for p in stored(responder)] == [p.at for p in fixes(start, 180)]


def test_a_resent_batch_is_all_duplicates_and_changes_nothing(responder: Any) -> None:
    # given a stored batch
    batch = fixes(NOW - timedelta(minutes=30), 50)
    pings_ingest(user=responder, points=batch)
    before = list(TrackChunk.objects.filter(user=responder).values("points", "count"))
    # when the phone sends it again (its answer was lost)
    result = pings_ingest(user=responder, points=batch)
    # then every point is a duplicate and the chunks are as they were
    assert (result.accepted, result.duplicates) == (0, 50)
    assert list(TrackChunk.objects.filter(user=responder).values("points", "count")) == before


def test_an_overlapping_batch_stores_only_the_new_points(responder: Any) -> None:
    start = NOW - timedelta(minutes=30)
    pings_ingest(user=responder, points=fixes(start, 40))
    # when the next batch repeats the last 10 points and adds 30
    result = pings_ingest(user=responder, points=fixes(start, 70)[30:])
    assert (result.accepted, result.duplicates) == (30, 10)
    assert len(stored(responder)) == 70


def test_batches_arriving_out_of_order_are_merged_in_time_order(responder: Any) -> None:
    # given the later half of a 20-minute track arrives first
    start = NOW - timedelta(minutes=40)
    track = fixes(start, 240)
    pings_ingest(user=responder, points=track[120:])
    # when the earlier half (offline longer) arrives afterwards, shuffled
    late = track[:120]
    late = late[::2] + late[1::2]
    result = pings_ingest(user=responder, points=late)
    # then the stored track is the whole track, in time order, bucket by bucket
    assert result.accepted == 120
    assert [p.at for p in stored(responder)] == [p.at for p in track]
    for chunk in TrackChunk.objects.filter(user=responder):
        offsets = [p[0] for p in chunk.points]
        assert offsets == sorted(set(offsets))
        assert chunk.count == len(chunk.points)
        assert chunk.first_at == chunk.bucket_start + timedelta(milliseconds=offsets[0])
        assert chunk.last_at == chunk.bucket_start + timedelta(milliseconds=offsets[-1])


def test_bad_points_are_rejected_one_by_one_and_the_good_ones_kept(
    responder: Any, settings: Settings
) -> None:
    settings.DISPATCH_PING_MAX_FUTURE_SKEW_SECONDS = 120
    settings.DISPATCH_TRACK_RETENTION_DAYS = 30
    good = NOW - timedelta(minutes=5)
    points = [
        Ping(at=good, lat=34.27, lng=108.85),  # 0 good, no accuracy
        Ping(at=good + timedelta(seconds=5), lat=91.0, lng=108.85),  # 1
        Ping(at=good + timedelta(seconds=10), lat=34.27, lng=-180.5),  # 2
        Ping(at=NOW + timedelta(seconds=121), lat=34.27, lng=108.85),  # 3 future
        Ping(at=NOW + timedelta(seconds=119), lat=34.27, lng=108.85),  # 4 small skew: fine
        Ping(at=NOW - timedelta(days=30, seconds=1), lat=34.27, lng=108.85),  # 5 too old
        Ping(at=good + timedelta(seconds=15), lat=34.27, lng=108.85, accuracy_m=-1),  # 6
        Ping(at=good + timedelta(seconds=20), lat=float("nan"), lng=108.85),  # 7
    ]
    result = pings_ingest(user=responder, points=points)
    assert result.accepted == 2
    assert [(r.index, r.code) for r in result.rejected] == [
        (1, PingRejection.LAT_OUT_OF_RANGE),
        (2, PingRejection.LNG_OUT_OF_RANGE),
        (3, PingRejection.TIME_IN_FUTURE),
        (5, PingRejection.TIME_TOO_OLD),
        (6, PingRejection.ACCURACY_INVALID),
        (7, PingRejection.LAT_OUT_OF_RANGE),
    ]
    assert [p.at for p in stored(responder)] == [good, NOW + timedelta(seconds=119)]
    assert stored(responder)[0].accuracy_m is None


def test_parsing_accepts_epoch_ms_and_iso_times_and_reports_malformed_items() -> None:
    epoch_ms = tracks.to_epoch_ms(NOW)
    items: list[Any] = [
        {"t": epoch_ms, "lat": 34.27, "lng": 108.85, "accuracy": 6},
        {"t": "2025-07-01T18:00:05+08:00", "lat": 34.27, "lng": 108.85},
        {"t": "2025-07-01T10:00:10Z", "lat": 34.27, "lng": 108.85, "accuracy": None},
        {"t": "2025-07-01T10:00:15", "lat": 34.27, "lng": 108.85},  # naive: ambiguous
        {"t": "yesterday", "lat": 34.27, "lng": 108.85},
        {"lat": 34.27, "lng": 108.85},
        {"t": epoch_ms, "lat": "34.27", "lng": 108.85},
        "not an object",
        {"t": epoch_ms, "lat": 34.27, "lng": 108.85, "accuracy": "good"},
        {"t": True, "lat": 34.27, "lng": 108.85},
    ]
    pings, rejected = pings_parse(items)
    assert [(p.index, p.at) for p in pings] == [
        (0, NOW),
        (1, NOW + timedelta(seconds=5)),
        (2, NOW + timedelta(seconds=10)),
    ]
    assert pings[0].accuracy_m == 6.0
    assert [(r.index, r.code) for r in rejected] == [
        (3, PingRejection.TIME_INVALID),
        (4, PingRejection.TIME_INVALID),
        (5, PingRejection.INVALID),
        (6, PingRejection.INVALID),
        (7, PingRejection.INVALID),
        (8, PingRejection.ACCURACY_INVALID),
        (9, PingRejection.TIME_INVALID),
    ]


def test_last_position_only_moves_forward(responder: Any) -> None:
    # given a fix from one minute ago
    pings_ingest(user=responder, points=[Ping(at=NOW - timedelta(minutes=1), lat=34.3, lng=108.9)])
    # when an older offline batch arrives afterwards
    pings_ingest(user=responder, points=fixes(NOW - timedelta(minutes=30), 10))
    # then the marker stays on the newer fix
    position = LastPosition.objects.get(user=responder)
    assert (position.lat, position.lng) == (34.3, 108.9)
    assert position.recorded_at == NOW - timedelta(minutes=1)
    # and a newer fix moves it
    pings_ingest(user=responder, points=[Ping(at=NOW, lat=34.31, lng=108.91, accuracy_m=3)])
    position.refresh_from_db()
    assert (position.lat, position.lng, position.accuracy_m) == (34.31, 108.91, 3.0)
    assert position.received_at == NOW
    assert position.team_id == responder.team_memberships.get().team_id


def test_the_team_marker_follows_its_freshest_member(responder: Any) -> None:
    team = Team.objects.get(members__user=responder)
    colleague = TeamMemberFactory(team=team, on_duty=True).user
    pings_ingest(user=responder, points=[Ping(at=NOW - timedelta(minutes=2), lat=34.2, lng=108.7)])
    pings_ingest(user=colleague, points=[Ping(at=NOW - timedelta(minutes=1), lat=34.4, lng=108.8)])
    # an older fix of the first responder does not pull the marker back
    pings_ingest(user=responder, points=[Ping(at=NOW - timedelta(minutes=3), lat=34.0, lng=108.0)])
    team.refresh_from_db()
    assert (team.last_lat, team.last_lng) == (34.4, 108.8)
    assert team.last_position_at == NOW - timedelta(minutes=1)


def test_a_user_without_an_active_team_cannot_send_positions(db: None) -> None:
    outsider = CitizenFactory()
    TeamMemberFactory(user=CitizenFactory(), team=TeamFactory())
    inactive = TeamMemberFactory(is_active=False).user
    for user in (outsider, inactive):
        with pytest.raises(ApplicationError) as refused:
            pings_ingest(user=user, points=fixes(NOW - timedelta(minutes=1), 3))
        assert (refused.value.code, refused.value.status) == ("not_team_member", 403)
    assert not TrackChunk.objects.exists()


def test_a_batch_costs_the_same_statements_for_one_bucket_or_many(
    responder: Any, django_assert_num_queries: Any
) -> None:
    # given existing chunks, so both batches take the update path and the insert path
    pings_ingest(user=responder, points=fixes(NOW - timedelta(minutes=60), 1))
    pings_ingest(user=responder, points=fixes(NOW - timedelta(minutes=20), 1))
    # team lookup, savepoint, [sender lock on PostgreSQL], lock, update, insert, last
    # position, team, release
    expected = 9 if connection.vendor == "postgresql" else 8
    with django_assert_num_queries(expected):
        pings_ingest(user=responder, points=fixes(NOW - timedelta(minutes=21), 2, step_s=120))
    with django_assert_num_queries(expected):
        # 10:-60 .. 10:-5 every 5 min: 12 buckets, one existing, eleven new
        pings_ingest(user=responder, points=fixes(NOW - timedelta(minutes=60), 12, step_s=300))


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_concurrent_batches_of_one_responder_lose_nothing() -> None:
    # given one responder and four batches that overlap in time and share buckets
    member = TeamMemberFactory(team=TeamFactory(), on_duty=True)
    user = member.user
    start = NOW - timedelta(minutes=45)
    track = fixes(start, 400, step_s=6)  # 40 minutes, 5 buckets
    batches = [track[0:200], track[100:300], track[200:400], track[::3]]
    results: list[Any] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(batches))

    def send(batch: list[Ping]) -> None:
        try:
            barrier.wait()
            results.append(pings_ingest(user=user, points=batch))
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    # when they are ingested at the same time, several times over
    for _round in range(3):
        TrackChunk.objects.filter(user=user).delete()
        results.clear()
        threads = [threading.Thread(target=send, args=(b,)) for b in batches]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        # then nothing is lost, nothing stored twice, and the counts add up
        assert errors == []
        assert [p.at for p in stored(user)] == [p.at for p in track]
        assert sum(r.accepted for r in results) == len(track)
        assert sum(r.accepted + r.duplicates for r in results) == sum(len(b) for b in batches)


def test_a_bucket_created_by_a_concurrent_batch_is_merged_not_lost(
    responder: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a stored chunk
    start = NOW - timedelta(minutes=30)
    pings_ingest(user=responder, points=fixes(start, 10))
    # and a batch whose lock query ran before the other batch's insert committed
    real = positions._chunks_for_update
    calls: list[int] = []

    def blind_first(user_id: int, starts: Any, exclude_ids: Any = ()) -> Any:
        calls.append(1)
        return {} if len(calls) == 1 else real(user_id, starts, exclude_ids)

    monkeypatch.setattr(positions, "_chunks_for_update", blind_first)
    # when it is ingested, its insert meets the existing row (ON CONFLICT DO NOTHING)
    result = pings_ingest(user=responder, points=fixes(start, 20))
    # then the bucket is locked and merged: nothing lost, counts exact
    assert (result.accepted, result.duplicates) == (10, 10)
    assert [p.at for p in stored(responder)] == [p.at for p in fixes(start, 20)]
    assert TrackChunk.objects.filter(user=responder).count() == 1
