"""Raw baseline of the duty board (值班台): the same rows read with ONE SQL query through
psycopg, returned as JSON (``uvicorn bench.raw_board:app``).

``/board?prefix=/xixian/fengdong/``
    the open incidents and pending citizen reports under a scope prefix, each with its
    tasks (team name, status), its nearest running SLA deadline among the open clocks of
    the incident, its tasks or the report, whether any of them is breached, sorted by
    urgency as ``apps.console.selectors.urgency_key`` sorts (breached, 督办, deadline,
    SOS, oldest). The scope prefix comes in the query: what the project adds is the
    session, the user, the scope resolution, the admin's page and its template.
"""

from __future__ import annotations

from typing import Any

from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from bench.rawasgi import Answer, Query, RawApp

BOARD_SQL = """
WITH inc AS (
    SELECT 'incident' AS kind, i.id, i.number, i.title, i.status, i.severity, i.loop,
           i.priority >= 2 AS sos, i.is_drill AS drill, i.supervised_at IS NOT NULL AS supervised,
           i.address, i.created_at, c.code AS category, r.code AS street
    FROM incidents_incident i
    JOIN regions_region r ON r.id = i.region_id
    JOIN incidents_category c ON c.id = i.category_id
    WHERE starts_with(r.path, %(prefix)s)
      AND i.status IN ('reported', 'accepted', 'in_progress', 'resolved')
), rep AS (
    SELECT 'report' AS kind, p.id, '' AS number, left(p.text, 80) AS title,
           'submitted' AS status, '' AS severity, '' AS loop, p.is_sos AS sos,
           false AS drill, false AS supervised, p.address, p.created_at,
           c.code AS category, r.code AS street
    FROM incidents_report p
    JOIN regions_region r ON r.id = p.region_id
    JOIN incidents_category c ON c.id = p.category_id
    WHERE starts_with(r.path, %(prefix)s) AND p.status = 'submitted'
), subjects AS (
    SELECT inc.kind, inc.id, 'incident' AS subject_type, inc.id AS subject_id FROM inc
    UNION ALL
    SELECT inc.kind, inc.id, 'task', t.id
    FROM inc JOIN dispatch_dispatchtask t ON t.incident_id = inc.id
    UNION ALL
    SELECT rep.kind, rep.id, 'report', rep.id FROM rep
), clocks AS (
    SELECT s.kind, s.id,
           min(k.due_at) FILTER (WHERE k.status = 'running') AS due,
           bool_or(k.breached_at IS NOT NULL OR (k.status = 'running' AND k.due_at <= now()))
               AS breached,
           (array_agg(k.started_at ORDER BY k.due_at) FILTER (WHERE k.status = 'running'))[1]
               AS started,
           (array_agg(k.kind ORDER BY k.due_at) FILTER (WHERE k.status = 'running'))[1]
               AS clock,
           bool_or(k.status = 'paused') AS paused
    FROM subjects s
    JOIN sla_slaclock k ON k.subject_type = s.subject_type AND k.subject_id = s.subject_id
    WHERE k.status IN ('running', 'paused')
    GROUP BY s.kind, s.id
), rows AS (SELECT * FROM inc UNION ALL SELECT * FROM rep)
SELECT rows.*, coalesce(clocks.breached, false) AS breached, clocks.due, clocks.started,
       coalesce(clocks.clock, '') AS clock,
       coalesce(clocks.paused, false) AND clocks.due IS NULL AS paused,
       coalesce((
           SELECT json_agg(json_build_object('id', t.id, 'team', tm.name, 'status', t.status)
                           ORDER BY t.dispatched_at, t.id)
           FROM dispatch_dispatchtask t JOIN dispatch_team tm ON tm.id = t.team_id
           WHERE rows.kind = 'incident' AND t.incident_id = rows.id
       ), '[]') AS tasks
FROM rows LEFT JOIN clocks ON clocks.kind = rows.kind AND clocks.id = rows.id
ORDER BY CASE WHEN coalesce(clocks.breached, false) THEN 0 WHEN rows.supervised THEN 1 ELSE 2 END,
         clocks.due NULLS LAST, rows.sos DESC, rows.created_at, rows.kind, rows.id
"""


# The project's packed row format (apps/console/board.py, COLUMNS).
COLUMNS = (
    "kind",
    "id",
    "number",
    "title",
    "status",
    "severity",
    "loop",
    "category",
    "street",
    "address",
    "reported_at",
    "sos",
    "drill",
    "supervised",
    "breached",
    "paused",
    "deadline",
    "started",
    "clock",
    "tasks",
)


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


async def board(pool: AsyncConnectionPool, query: Query) -> Answer:
    prefix = query.get("prefix", "/")
    async with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(BOARD_SQL, {"prefix": prefix})
        found = await cur.fetchall()
    rows = [
        [
            row["kind"],
            row["id"],
            row["number"],
            row["title"],
            row["status"],
            row["severity"],
            row["loop"],
            row["category"],
            row["street"],
            row["address"],
            _iso(row["created_at"]),
            row["sos"],
            row["drill"],
            row["supervised"],
            row["breached"],
            row["paused"],
            _iso(row["due"]),
            _iso(row["started"]),
            row["clock"],
            [[t["id"], t["team"], t["status"]] for t in row["tasks"]],
        ]
        for row in found
    ]
    return 200, {"columns": COLUMNS, "rows": rows}


app = RawApp({"/board": board})
