"""The intake benchmark's workloads and log reading (no servers: bench/bench_intake.py)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from bench.bench_intake import ProjectBatches, Workload

POINTS = [(34.3, 108.75), (34.31, 108.76)]


def headers(workload: Workload, index: int) -> dict[str, str]:
    return dict(workload[index].headers)


def test_every_request_is_another_caller_and_runs_never_share_one() -> None:
    first = Workload("report", POINTS, run=1, size=300, path="/r")
    second = Workload("report", POINTS, run=2, size=300, path="/r")
    for name in ("Idempotency-Key", "X-Device-Id", "X-Forwarded-For"):
        values = [headers(w, i)[name] for w in (first, second) for i in range(300)]
        assert len(set(values)) == 600, name
    phones = {json.loads(first[i].body)["phone"] for i in range(300)}
    assert len(phones) == 300
    assert [str(key) for key in first.keys] == [
        headers(first, i)["Idempotency-Key"] for i in range(300)
    ]


def test_the_same_bodies_for_project_and_raw() -> None:
    project = Workload("report", POINTS, run=3, size=50, path="/api/v1/reports/", bodies=9)
    raw = Workload("report", POINTS, run=4, size=50, path="/intake", bodies=9)
    assert [project[i].body for i in range(50)] == [raw[i].body for i in range(50)]
    assert headers(project, 0)["Idempotency-Key"] != headers(raw, 0)["Idempotency-Key"]


def test_citizens_and_sos() -> None:
    citizens = Workload("citizen", POINTS, run=5, size=4, path="/r", tokens=["a", "b", "c"])
    assert [headers(citizens, i)["Authorization"] for i in range(4)] == [
        "Bearer a",
        "Bearer b",
        "Bearer c",
        "Bearer a",
    ]
    assert "phone" not in json.loads(citizens[0].body)  # the account's number is used
    sos = Workload("sos", POINTS, run=6, size=3, path="/s")
    bodies: list[dict[str, Any]] = [json.loads(sos[i].body) for i in range(3)]
    assert {"lat", "lng", "phone"} <= set(bodies[0])
    assert "category" not in bodies[0]
    assert ["text" in body for body in bodies] == [False, True, True]  # one-touch SOS too


def test_batches_from_the_project_log(tmp_path: Path) -> None:
    log = tmp_path / "server-django.log"
    log.write_text("old line\n", encoding="utf-8")
    batches = ProjectBatches(SimpleNamespace(log_path=log))  # type: ignore[arg-type]
    with log.open("a", encoding="utf-8") as out:
        prefix = "2026-01-01 08:00:00,000 INFO apps.incidents.services.reports"
        out.write(f"{prefix} reports submitted via fast path: 3 (ids 1..3), SOS []\n")
        out.write(f"{prefix} reports submitted via fast path: 5 (ids 4..8), SOS [6]\n")
        out.write(f"{prefix} reports submitted via service: 1 (ids 9..9), SOS []\n")
    assert batches.take() == {
        "batches": 2,
        "reports": 8,
        "reports_per_batch": 4.0,
        "largest_batch": 5,
        "reports_via_view": 1,
    }
    assert batches.take()["batches"] == 0  # only what was logged since
