"""Count, mean, median and p90 per group, from the row queries of ``intervals``.

On PostgreSQL the statistics are computed by the database in **one statement per row
query**: the ORM-built row query (scoped, filtered, intervals as ``interval`` values)
becomes a derived table, aggregated with ``percentile_cont`` and
``GROUP BY GROUPING SETS ((key), ())``, so the groups and the total come back together
and each correlated subquery of the rows runs once per row. The outer statement is a
fixed template: the only names interpolated into it are this module's own column names
(quoted), every value travels as a query parameter of the ORM-compiled inner query.

Elsewhere (SQLite, the embedded default) the same row query is read and folded in Python
(:func:`percentile` reproduces ``percentile_cont``): the rules live in one place either
way, and the tests compare both paths on the same data.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.db import connections
from django.db.models import QuerySet

from apps.analytics.intervals import CLOCK_FLAGS, CLOCK_KIND, KEY

MEDIAN = 0.5
P90 = 0.9
ROUND_DIGITS = 1  # seconds to one decimal: finer is noise, and both paths agree to it


@dataclass
class IntervalSummary:
    """Statistics of one interval over one group, in seconds (``None`` when empty)."""

    count: int = 0
    mean: float | None = None
    median: float | None = None
    p90: float | None = None


@dataclass
class Bucket:
    """One group's figures: row count, summed flags, interval statistics."""

    rows: int = 0
    flags: dict[str, int] = field(default_factory=dict)
    intervals: dict[str, IntervalSummary] = field(default_factory=dict)


@dataclass
class Folded:
    """The answer of :func:`fold_rows`: the total and the groups by key."""

    total: Bucket
    groups: dict[Any, Bucket]


ClockCounts = dict[str, dict[str, int]]  # kind → {"met": n, "breached": n, "pending": n}


@dataclass
class FoldedClocks:
    total: ClockCounts
    groups: dict[Any, ClockCounts]


def aggregates_in_database(alias: str) -> bool:
    """Whether the database of ``alias`` computes percentiles itself (PostgreSQL)."""
    return connections[alias].vendor == "postgresql"


def percentile(ordered: Sequence[float], fraction: float) -> float:
    """The continuous percentile of ascending ``ordered`` values, as ``percentile_cont``:
    the value at position ``fraction * (n - 1)``, interpolated linearly between the two
    nearest ranks. ``ordered`` must not be empty."""
    position = fraction * (len(ordered) - 1)
    lower = math.floor(position)
    upper = math.ceil(position)
    return ordered[lower] + (ordered[upper] - ordered[lower]) * (position - lower)


def _rounded(value: Any) -> float | None:
    return None if value is None else round(float(value), ROUND_DIGITS)


# --- Rows with intervals -----------------------------------------------------------------------


def fold_rows(
    rows: QuerySet[Any], *, flags: Sequence[str], intervals: Sequence[str], grouped: bool
) -> Folded:
    """Aggregate a row query of ``intervals`` (``KEY``, the 0/1 ``flags``, the interval
    columns as durations): the total, and per key when ``grouped``."""
    if aggregates_in_database(rows.db):
        return _fold_rows_sql(rows, flags=flags, intervals=intervals, grouped=grouped)
    return _fold_rows_python(rows, flags=flags, intervals=intervals, grouped=grouped)


def _fold_rows_sql(
    rows: QuerySet[Any], *, flags: Sequence[str], intervals: Sequence[str], grouped: bool
) -> Folded:
    connection = connections[rows.db]
    quote = connection.ops.quote_name
    inner_sql, params = rows.query.get_compiler(using=rows.db).as_sql()
    key = quote(KEY)
    columns = [key if grouped else "NULL", f"GROUPING({key})" if grouped else "1", "COUNT(*)"]
    columns += [f"COALESCE(SUM({quote(name)}), 0)" for name in flags]
    for name in intervals:
        seconds = f"EXTRACT(EPOCH FROM {quote(name)})::double precision"
        columns += [
            f"COUNT({quote(name)})",
            f"AVG({seconds})",
            f"PERCENTILE_CONT({MEDIAN}) WITHIN GROUP (ORDER BY {seconds})",
            f"PERCENTILE_CONT({P90}) WITHIN GROUP (ORDER BY {seconds})",
        ]
    sql = f"SELECT {', '.join(columns)} FROM ({inner_sql}) AS kpi_rows"  # noqa: S608 - own names only
    if grouped:
        sql += f" GROUP BY GROUPING SETS (({key}), ())"
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        fetched = cursor.fetchall()
    folded = Folded(total=empty_bucket(flags, intervals), groups={})
    for record in fetched:
        group_key, is_total, count, *rest = record
        bucket = Bucket(rows=int(count))
        for name in flags:
            bucket.flags[name] = int(rest.pop(0))
        for name in intervals:
            n, mean, median, p90 = rest[:4]
            del rest[:4]
            bucket.intervals[name] = IntervalSummary(
                count=int(n), mean=_rounded(mean), median=_rounded(median), p90=_rounded(p90)
            )
        if is_total:
            folded.total = bucket
        else:
            folded.groups[group_key] = bucket
    return folded


def _fold_rows_python(
    rows: QuerySet[Any], *, flags: Sequence[str], intervals: Sequence[str], grouped: bool
) -> Folded:
    """The fallback: read the rows once and fold them (the total and each group)."""
    total = _Accumulator(flags, intervals)
    groups: dict[Any, _Accumulator] = {}
    for row in rows.iterator(chunk_size=2000):
        total.add(row)
        if grouped:
            key = row[KEY]
            if key not in groups:
                groups[key] = _Accumulator(flags, intervals)
            groups[key].add(row)
    return Folded(total=total.bucket(), groups={key: acc.bucket() for key, acc in groups.items()})


class _Accumulator:
    def __init__(self, flags: Sequence[str], intervals: Sequence[str]) -> None:
        self.rows = 0
        self.flags = dict.fromkeys(flags, 0)
        self.values: dict[str, list[float]] = {name: [] for name in intervals}

    def add(self, row: dict[str, Any]) -> None:
        self.rows += 1
        for name in self.flags:
            self.flags[name] += int(row[name] or 0)
        for name, values in self.values.items():
            value = row[name]
            if value is not None:
                values.append(_seconds(value))

    def bucket(self) -> Bucket:
        return Bucket(
            rows=self.rows,
            flags=dict(self.flags),
            intervals={name: summarise(values) for name, values in self.values.items()},
        )


def summarise(values: Iterable[float]) -> IntervalSummary:
    """Count, mean, median and p90 of ``values`` (seconds), rounded as the SQL path."""
    ordered = sorted(values)
    if not ordered:
        return IntervalSummary()
    return IntervalSummary(
        count=len(ordered),
        mean=_rounded(math.fsum(ordered) / len(ordered)),
        median=_rounded(percentile(ordered, MEDIAN)),
        p90=_rounded(percentile(ordered, P90)),
    )


def _seconds(value: Any) -> float:
    if isinstance(value, timedelta):
        return value.total_seconds()
    # Some backends hand durations back as microseconds.
    return float(value) / 1_000_000


def empty_bucket(flags: Sequence[str], intervals: Sequence[str]) -> Bucket:
    """A group with nothing in it (an enumerated period or region without data)."""
    return Bucket(
        rows=0,
        flags=dict.fromkeys(flags, 0),
        intervals={name: IntervalSummary() for name in intervals},
    )


# --- Clock rows --------------------------------------------------------------------------------


def fold_clocks(rows: QuerySet[Any], *, grouped: bool) -> FoldedClocks:
    """Sum the met/breached/pending flags of a clock row query per kind: in total, and
    per (key, kind) when ``grouped``."""
    if aggregates_in_database(rows.db):
        return _fold_clocks_sql(rows, grouped=grouped)
    return _fold_clocks_python(rows, grouped=grouped)


def _fold_clocks_sql(rows: QuerySet[Any], *, grouped: bool) -> FoldedClocks:
    connection = connections[rows.db]
    quote = connection.ops.quote_name
    inner_sql, params = rows.query.get_compiler(using=rows.db).as_sql()
    key, kind = quote(KEY), quote(CLOCK_KIND)
    columns = [key if grouped else "NULL", kind, f"GROUPING({key})" if grouped else "1"]
    columns += [f"COALESCE(SUM({quote(name)}), 0)" for name in CLOCK_FLAGS]
    sql = f"SELECT {', '.join(columns)} FROM ({inner_sql}) AS kpi_clocks"  # noqa: S608 - own names only
    if grouped:
        sql += f" GROUP BY GROUPING SETS (({key}, {kind}), ({kind}))"
    else:
        sql += f" GROUP BY {kind}"
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        fetched = cursor.fetchall()
    folded = FoldedClocks(total={}, groups={})
    for group_key, clock_kind, is_total, *sums in fetched:
        counts = {name: int(value) for name, value in zip(CLOCK_FLAGS, sums, strict=True)}
        if is_total:
            folded.total[clock_kind] = counts
        else:
            folded.groups.setdefault(group_key, {})[clock_kind] = counts
    return folded


def _fold_clocks_python(rows: QuerySet[Any], *, grouped: bool) -> FoldedClocks:
    total: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(CLOCK_FLAGS, 0))
    groups: dict[Any, dict[str, dict[str, int]]] = {}
    for row in rows.iterator(chunk_size=2000):
        targets = [total]
        if grouped:
            targets.append(
                groups.setdefault(row[KEY], defaultdict(lambda: dict.fromkeys(CLOCK_FLAGS, 0)))
            )
        for target in targets:
            counts = target[row[CLOCK_KIND]]
            for name in CLOCK_FLAGS:
                counts[name] += int(row[name] or 0)
    return FoldedClocks(
        total={kind: dict(counts) for kind, counts in total.items()},
        groups={
            key: {kind: dict(counts) for kind, counts in by_kind.items()}
            for key, by_kind in groups.items()
        },
    )
