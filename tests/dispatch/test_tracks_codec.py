"""The track chunk codec: encode/decode, merge, dedupe, out-of-order, downsampling."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pytest_django.fixtures import Settings

from apps.dispatch import tracks

T0 = datetime(2025, 7, 1, 8, 0, tzinfo=UTC)  # a bucket boundary for 10-minute buckets


def test_epoch_ms_round_trips_exactly() -> None:
    at = datetime(2025, 7, 1, 8, 3, 7, 123000, tzinfo=UTC)
    assert tracks.from_epoch_ms(tracks.to_epoch_ms(at)) == at


def test_bucket_start_is_aligned_on_the_epoch(settings: Settings) -> None:
    settings.DISPATCH_TRACK_BUCKET_MINUTES = 10
    length = tracks.bucket_length_ms()
    at = tracks.to_epoch_ms(T0 + timedelta(minutes=17, seconds=3))
    # given a point 17 min past a boundary, when bucketed, then it starts at +10 min
    assert tracks.from_epoch_ms(tracks.bucket_start_ms(at, length)) == T0 + timedelta(minutes=10)


def test_bucket_length_follows_the_setting(settings: Settings) -> None:
    settings.DISPATCH_TRACK_BUCKET_MINUTES = 5
    assert tracks.bucket_length_ms() == 300_000


def test_encoded_point_decodes_to_the_same_fix_within_a_decimetre() -> None:
    # given a fix
    point = tracks.encode_point(offset_ms=5_000, lat=34.2712345, lng=108.8498761, accuracy_m=4.26)
    # then it is four integers
    assert point[0] == 5_000
    assert point[2:] == [108_849_876, 43]
    # when decoded
    (decoded,) = tracks.decode_points(T0, [point])
    # then time is exact and coordinates within 1e-6 degrees
    assert decoded.at == T0 + timedelta(seconds=5)
    assert decoded.lat == pytest.approx(34.2712345, abs=1e-6)
    assert decoded.lng == pytest.approx(108.8498761, abs=1e-6)
    assert decoded.accuracy_m == pytest.approx(4.3)


def test_missing_accuracy_is_stored_as_null() -> None:
    point = tracks.encode_point(offset_ms=0, lat=34.0, lng=108.0, accuracy_m=None)
    assert point[3] is None
    assert tracks.decode_points(T0, [point])[0].accuracy_m is None


def test_merge_sorts_out_of_order_points() -> None:
    # given points arriving newest first
    incoming = [[30_000, 1, 1, None], [10_000, 2, 2, None], [20_000, 3, 3, None]]
    # when merged into an empty chunk
    merged = tracks.merge_points([], incoming)
    # then they are stored in time order
    assert [p[0] for p in merged.points] == [10_000, 20_000, 30_000]
    assert (merged.added, merged.duplicates) == (3, 0)


def test_merge_interleaves_late_points_with_stored_ones() -> None:
    existing = [[0, 1, 1, None], [20_000, 3, 3, None]]
    merged = tracks.merge_points(existing, [[10_000, 2, 2, None], [30_000, 4, 4, None]])
    assert [p[0] for p in merged.points] == [0, 10_000, 20_000, 30_000]
    assert merged.added == 2


def test_a_resent_point_is_a_duplicate_and_the_stored_one_wins() -> None:
    # given a stored point
    existing = [[5_000, 34_000_000, 108_000_000, 50]]
    # when the phone resends it with slightly different rounding
    merged = tracks.merge_points(existing, [[5_000, 34_000_001, 108_000_001, 49]])
    # then nothing changes
    assert merged.points == existing
    assert (merged.added, merged.duplicates) == (0, 1)


def test_duplicates_inside_one_batch_are_counted_once() -> None:
    merged = tracks.merge_points(
        [], [[1_000, 1, 1, None], [1_000, 1, 1, None], [2_000, 2, 2, None]]
    )
    assert len(merged.points) == 2
    assert (merged.added, merged.duplicates) == (2, 1)


def test_merging_the_same_batch_twice_adds_nothing_the_second_time() -> None:
    batch = [[i * 5_000, 34_000_000 + i, 108_000_000 + i, 30] for i in range(10)]
    first = tracks.merge_points([], batch)
    second = tracks.merge_points(first.points, batch)
    assert second.points == first.points
    assert (second.added, second.duplicates) == (0, 10)


def test_downsample_keeps_the_first_point_of_each_window() -> None:
    # given a point every 5 s for one minute
    points = [[i * 5_000, i, i, None] for i in range(12)]
    # when thinned to one per 30 s
    thinned = tracks.downsample_points(points, 30_000)
    # then the points at 0 s and 30 s remain
    assert [p[0] for p in thinned] == [0, 30_000]


def test_downsampling_a_downsampled_chunk_changes_nothing() -> None:
    points = [[i * 7_000, i, i, None] for i in range(80)]
    once = tracks.downsample_points(points, 30_000)
    assert tracks.downsample_points(once, 30_000) == once


def test_points_in_window_cut_at_both_ends() -> None:
    points = [[i * 60_000, i, i, None] for i in range(10)]  # 08:00 .. 08:09
    inside = tracks.points_in_window(
        T0, points, T0 + timedelta(minutes=2), T0 + timedelta(minutes=5)
    )
    assert [p.at.minute for p in inside] == [2, 3, 4]
