"""Track retention: old chunks are thinned, expired ones deleted; both sweeps idempotent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from pytest_django.fixtures import Settings

from apps.dispatch import tasks, tracks
from apps.dispatch.models import LastPosition, TrackChunk
from apps.dispatch.services.positions import Ping, pings_ingest, tracks_downsample, tracks_purge
from tests.factories.dispatch import TeamFactory, TeamMemberFactory

START = datetime(2025, 7, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
def responder(db: None) -> Any:
    return TeamMemberFactory(team=TeamFactory(), on_duty=True).user


def walk(user: Any, start: datetime, minutes: int, step_s: int = 5) -> None:
    points = [
        Ping(at=start + timedelta(seconds=s), lat=34.27, lng=108.85 + s * 1e-5)
        for s in range(0, minutes * 60, step_s)
    ]
    pings_ingest(user=user, points=points, received_at=start + timedelta(minutes=minutes))


@pytest.fixture
def settings_retention(settings: Settings) -> Settings:
    settings.DISPATCH_TRACK_BUCKET_MINUTES = 10
    settings.DISPATCH_TRACK_RETENTION_DAYS = 30
    settings.DISPATCH_TRACK_DOWNSAMPLE_AFTER_HOURS = 24
    settings.DISPATCH_TRACK_DOWNSAMPLE_SECONDS = 30
    return settings


def test_a_day_old_track_is_thinned_to_one_point_per_30_seconds(
    responder: Any, settings_retention: Settings
) -> None:
    # given an hour of 5-second fixes (6 chunks of 120) and a fresh hour the next day
    with time_machine.travel(START + timedelta(hours=1), tick=False):
        walk(responder, START, 60)
    with time_machine.travel(START + timedelta(hours=25, minutes=30), tick=False):
        walk(responder, START + timedelta(hours=24, minutes=20), 60)
        # when the downsample task runs a day and a half after the first hour
        rewritten = tasks.tracks_downsample_old()
    # then the old chunks hold one point per 30 s and the fresh ones are untouched
    assert rewritten == 6
    old = TrackChunk.objects.filter(bucket_start__lt=START + timedelta(hours=2))
    assert [c.count for c in old] == [20] * 6
    assert all(c.downsampled for c in old)
    first = old.first()
    assert first is not None
    offsets = [p[0] for p in first.points]
    assert offsets == list(range(0, 600_000, 30_000))
    assert first.last_at == first.bucket_start + timedelta(seconds=570)
    fresh = TrackChunk.objects.filter(bucket_start__gte=START + timedelta(hours=24))
    assert {c.count for c in fresh} == {120}
    assert not any(c.downsampled for c in fresh)


def test_downsampling_twice_changes_nothing_the_second_time(
    responder: Any, settings_retention: Settings
) -> None:
    with time_machine.travel(START + timedelta(hours=1), tick=False):
        walk(responder, START, 30)
    cutoff = START + timedelta(hours=1)
    assert tracks_downsample(older_than=cutoff, keep_every_seconds=30) == 3
    before = list(TrackChunk.objects.values_list("points", "count", "first_at", "last_at"))
    # when it runs again (a second worker, a redelivered message)
    assert tracks_downsample(older_than=cutoff, keep_every_seconds=30) == 0
    assert list(TrackChunk.objects.values_list("points", "count", "first_at", "last_at")) == before


def test_a_late_point_in_a_thinned_chunk_is_kept_and_thinned_by_the_next_sweep(
    responder: Any, settings_retention: Settings
) -> None:
    with time_machine.travel(START + timedelta(hours=1), tick=False):
        walk(responder, START, 10)
    tracks_downsample(older_than=START + timedelta(hours=1), keep_every_seconds=30)
    # when a phone that was offline sends a point inside a thinned window
    with time_machine.travel(START + timedelta(hours=2), tick=False):
        late = Ping(at=START + timedelta(seconds=31), lat=34.0, lng=108.0)
        assert pings_ingest(user=responder, points=[late]).accepted == 1
    chunk = TrackChunk.objects.get()
    assert (chunk.count, chunk.downsampled) == (21, False)
    # then the next sweep thins it again: the window's first point stays
    assert tracks_downsample(older_than=START + timedelta(hours=1), keep_every_seconds=30) == 1
    chunk.refresh_from_db()
    assert (chunk.count, chunk.downsampled) == (20, True)
    assert chunk.points[1][0] == 30_000


def test_chunks_past_retention_are_deleted_once(
    responder: Any, settings_retention: Settings
) -> None:
    # given a track on day 0 and one on day 20
    with time_machine.travel(START + timedelta(hours=1), tick=False):
        walk(responder, START, 30)
    with time_machine.travel(START + timedelta(days=20, hours=1), tick=False):
        walk(responder, START + timedelta(days=20), 30)
    # when the purge task runs on day 31
    with time_machine.travel(START + timedelta(days=31), tick=False):
        assert tasks.tracks_purge_old() == 3
        # then only day 0 is gone, and running it again deletes nothing
        assert tasks.tracks_purge_old() == 0
    remaining = TrackChunk.objects.values_list("bucket_start", flat=True)
    assert all(start >= START + timedelta(days=20) for start in remaining)
    assert len(remaining) == 3
    # the map's last position is not history: it stays
    assert LastPosition.objects.filter(user=responder).exists()


def test_purge_works_through_more_chunks_than_one_batch(
    responder: Any, settings_retention: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from apps.dispatch.services import positions

    monkeypatch.setattr(positions, "SWEEP_BATCH", 1)  # 10 ids per DELETE
    with time_machine.travel(START + timedelta(hours=5), tick=False):
        walk(responder, START, 250, step_s=60)  # 25 chunks
    assert tracks_purge(older_than=START + timedelta(days=1)) == 25
    assert tracks_downsample(older_than=START, keep_every_seconds=30) == 0
    assert not TrackChunk.objects.exists()
    assert tracks.bucket_length_ms() == 600_000
