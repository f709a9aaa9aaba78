"""Region tree (authenticated GET) and point → street lookup, beside raw psycopg baselines.

Workloads, each measured against the project and against ``bench/raw_regions.py``:

``tree``
    ``GET /api/v1/regions/tree/`` as the superuser ``admin``: the whole active tree.
``tree_operator``
    the same as ``op-fengdong`` (operator of 沣东新城): one subtree, plus the membership
    query that resolves the operator's scope. The raw app gets the scope as a prefix.
``lookup``
    ``GET /api/v1/regions/lookup/?lat=&lng=`` over a fixed pseudo-random set of points
    inside the new area (within 2.5 km of a street centre and inside the new area's
    boundary), sent round robin by many callers so the per-user lookup throttle keeps its
    production rate and realistic per-user histories.

Before measuring, every answer of the raw app is checked to be the project's answer
(same JSON), so the ratio compares the same work.
"""

from __future__ import annotations

import math
import random
from typing import Any
from urllib.parse import urlencode

from bench.harness import BenchContext, BenchError, Figure, Server, compare
from bench.loadgen import Request
from bench.raw_regions import geojson_covers

TREE = "/api/v1/regions/tree/"
LOOKUP = "/api/v1/regions/lookup/"
RAW_APP = "bench.raw_regions:app"

POINT_SEED = 20260101  # fixed: the same points on every run
POINT_COUNT = 256
POINT_RADIUS_KM = 2.5
CALLERS = 256  # distinct lookup users (see module docstring)
KM_PER_DEGREE_LAT = 111.32


def lookup_points(
    ctx: BenchContext,
    *,
    count: int = POINT_COUNT,
    seed: int = POINT_SEED,
    radius_km: float = POINT_RADIUS_KM,
) -> list[tuple[float, float]]:
    """Deterministic points near active street centres, inside the new area's boundary."""
    streets = ctx.sql(
        "SELECT centre_lat, centre_lng FROM regions_region "
        "WHERE level = 'street' AND is_active AND centre_lat IS NOT NULL ORDER BY path"
    )
    areas = [
        row[0]
        for row in ctx.sql(
            "SELECT boundary FROM regions_region "
            "WHERE level = 'new_area' AND is_active AND boundary IS NOT NULL"
        )
    ]
    if not streets:
        raise BenchError("no active street with a centre: did load_regions run?")
    rng = random.Random(seed)
    points: list[tuple[float, float]] = []
    for _ in range(count * 20):  # bounded: stops long before on any sane fixture
        lat0, lng0 = rng.choice(streets)
        distance = radius_km * math.sqrt(rng.random())  # uniform over the disc
        bearing = rng.uniform(0, 2 * math.pi)
        lat = round(lat0 + distance * math.cos(bearing) / KM_PER_DEGREE_LAT, 5)
        lng = round(
            lng0
            + distance * math.sin(bearing) / (KM_PER_DEGREE_LAT * math.cos(math.radians(lat0))),
            5,
        )
        if not areas or any(geojson_covers(area, lat, lng) for area in areas):
            points.append((lat, lng))
            if len(points) == count:
                return points
    raise BenchError(f"only {len(points)} of {count} points fell inside the new area")


def _same(
    ctx: BenchContext,
    what: str,
    app: Server,
    path: str,
    raw: Server,
    raw_path: str,
    headers: dict[str, str],
) -> Any:
    """The project's answer, after checking the raw app gives the same JSON."""
    expected = ctx.request(app, "GET", path, headers=headers)
    actual = ctx.request(raw, "GET", raw_path)
    if expected != actual:
        raise BenchError(
            f"{what}: the raw baseline does not answer like the project for {path}\n"
            f"  project: {str(expected)[:400]}\n  raw:     {str(actual)[:400]}"
        )
    return expected


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _count(nodes: list[dict[str, Any]]) -> int:
    return sum(1 + _count(node["children"]) for node in nodes)


def run(ctx: BenchContext) -> list[Figure]:
    app = ctx.django()
    raw = ctx.server(RAW_APP)
    ctx.calibrate(raw)

    # 1. Tree as the superuser: everything active.
    admin = _bearer(ctx.login("admin"))
    full = _same(ctx, "tree", app, TREE, raw, "/tree?prefix=/", admin)
    ctx.note("tree_nodes", _count(full))
    tree = ctx.load(app, [Request.get(TREE, admin)], label="tree")
    tree_raw = ctx.load(raw, [Request.get("/tree?prefix=/")], label="raw tree")

    # 2. Tree as an operator: scope resolution plus a subtree.
    operator = _bearer(ctx.login("op-fengdong"))
    subtree = ctx.request(app, "GET", TREE, headers=operator)
    if len(subtree) != 1:
        raise BenchError(f"op-fengdong should see one subtree, got {len(subtree)}")
    raw_subtree = f"/tree?{urlencode({'prefix': subtree[0]['path']})}"
    _same(ctx, "tree_operator", app, TREE, raw, raw_subtree, operator)
    ctx.note("tree_operator_nodes", _count(subtree))
    op_tree = ctx.load(app, [Request.get(TREE, operator)], label="tree operator")
    op_tree_raw = ctx.load(raw, [Request.get(raw_subtree)], label="raw tree operator")

    # 3. Point → street over fixed points, many callers.
    points = lookup_points(ctx)
    tokens = ctx.mint_tokens("bench-caller", CALLERS)
    queries = [urlencode({"lat": f"{lat:.5f}", "lng": f"{lng:.5f}"}) for lat, lng in points]
    streets = {
        _same(ctx, "lookup", app, f"{LOOKUP}?{q}", raw, f"/lookup?{q}", _bearer(tokens[i]))[
            "street"
        ]["code"]
        for i, q in enumerate(queries)
    }
    ctx.note(
        "lookup_points",
        {
            "count": len(points),
            "seed": POINT_SEED,
            "radius_km": POINT_RADIUS_KM,
            "streets_hit": len(streets),
            "callers": CALLERS,
        },
    )
    size = max(len(queries), len(tokens))
    lookups = [
        Request.get(
            f"{LOOKUP}?{queries[i % len(queries)]}",
            _bearer(tokens[i % len(tokens)]),
        )
        for i in range(size)
    ]
    lookup = ctx.load(app, lookups, label="lookup")
    lookup_raw = ctx.load(raw, [Request.get(f"/lookup?{q}") for q in queries], label="raw lookup")

    return [
        compare("tree.rps", tree, tree_raw, "rps", description="GET tree as admin"),
        compare("tree.p50", tree, tree_raw, "p50"),
        compare("tree.p99", tree, tree_raw, "p99"),
        compare("tree.server_cpu", tree, tree_raw, "server_cpu"),
        compare("tree_operator.rps", op_tree, op_tree_raw, "rps", description="as op-fengdong"),
        compare("tree_operator.p99", op_tree, op_tree_raw, "p99"),
        compare("tree_operator.server_cpu", op_tree, op_tree_raw, "server_cpu"),
        compare("lookup.rps", lookup, lookup_raw, "rps", description="point → street"),
        compare("lookup.p50", lookup, lookup_raw, "p50"),
        compare("lookup.p99", lookup, lookup_raw, "p99"),
        compare("lookup.server_cpu", lookup, lookup_raw, "server_cpu"),
    ]
