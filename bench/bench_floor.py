"""GET /healthz: the per-request cost of the stack itself, beside a bare ASGI app.

``/healthz`` needs no authentication and no database (it answers ``{"status": "ok"}``), so
what it costs is the ASGI server, Django's request cycle and the middleware: the floor
under every endpoint. The baseline is the bare app of ``bench/rawasgi.py`` answering the
same JSON at ``/ping`` under the same uvicorn. Every other benchmark's ratio includes this
floor; read theirs beside it.
"""

from __future__ import annotations

from bench.harness import BenchContext, BenchError, Figure, compare
from bench.loadgen import Request

RAW_APP = "bench.rawasgi:app"


def run(ctx: BenchContext) -> list[Figure]:
    app = ctx.django()
    raw = ctx.server(RAW_APP)
    ctx.calibrate(raw)
    if ctx.request(app, "GET", "/healthz") != ctx.request(raw, "GET", "/ping"):
        raise BenchError("/healthz and the bare app's /ping no longer answer the same JSON")
    floor = ctx.load(app, [Request.get("/healthz")], label="healthz")
    bare = ctx.load(raw, [Request.get("/ping")], label="raw ping")
    return [
        compare("healthz.rps", floor, bare, "rps", description="no auth, no database"),
        compare("healthz.p50", floor, bare, "p50"),
        compare("healthz.p99", floor, bare, "p99"),
        compare("healthz.server_cpu", floor, bare, "server_cpu"),
    ]
