"""Raw baseline of task transitions: a conditional UPDATE and an event INSERT, no framework.

Served by the same uvicorn, with the same worker count, as the project
(``uvicorn bench.raw_tasks:app``).

``POST /transition?task=<id>&action=<accept|en-route|on-scene|complete>``
    one transaction: ``UPDATE dispatch_dispatchtask SET status = <to>, <to>_at = now()
    WHERE id = <id> AND status = <from> RETURNING ...`` — the race-safe compare-and-swap
    conventions R3 allows in place of row locks — which must touch exactly one row (else 409
    ``illegal_task_transition``), then ``INSERT`` the ``dispatch_taskevent`` row. It
    answers ``{id, status}``. Left out — what the ratio prices — authentication (JWT),
    the team-membership check, the incident row lock and the incident timeline row, the
    incident start on first acceptance, the team status refresh, the idempotency key
    row, Django's request cycle and the task serializer.
"""

from __future__ import annotations

from psycopg_pool import AsyncConnectionPool

from bench.rawasgi import Answer, RawApp, RawRequest

# action → (from status, to status, timestamp column)
STEPS: dict[str, tuple[str, str, str]] = {
    "accept": ("dispatched", "accepted", "accepted_at"),
    "en-route": ("accepted", "en_route", "en_route_at"),
    "on-scene": ("en_route", "on_scene", "on_scene_at"),
    "complete": ("on_scene", "completed", "completed_at"),
}
UPDATE_SQL = {
    action: (
        f"UPDATE dispatch_dispatchtask SET status = %s, {column} = now(), updated_at = now()"  # noqa: S608 - fixed column names
        + (", result = %s" if action == "complete" else "")
        + " WHERE id = %s AND status = %s RETURNING id, status"
    )
    for action, (_source, _target, column) in STEPS.items()
}
INSERT_EVENT_SQL = """
    INSERT INTO dispatch_taskevent (task_id, kind, at, actor_id, data)
    VALUES (%s, %s, now(), NULL, '{}'::jsonb)
"""


async def transition(pool: AsyncConnectionPool, request: RawRequest) -> Answer:
    action = request.query.get("action", "")
    step = STEPS.get(action)
    try:
        task_id = int(request.query.get("task", ""))
    except ValueError:
        return 400, {"code": "invalid"}
    if step is None:
        return 400, {"code": "invalid"}
    source, target, _column = step
    params: tuple[object, ...] = (target, "完成", task_id, source)
    if action != "complete":
        params = (target, task_id, source)
    async with pool.connection() as conn, conn.transaction():
        cursor = await conn.execute(UPDATE_SQL[action], params)
        row = await cursor.fetchone()
        if row is None:
            return 409, {"code": "illegal_task_transition"}
        await conn.execute(INSERT_EVENT_SQL, (task_id, target))
    return 200, {"id": row[0], "status": row[1]}


app = RawApp({}, post_routes={"/transition": transition})
