"""The fast intake path in a real uvicorn process, with Redis: batches commit before the
201, and a shutdown answers every report it took."""

from __future__ import annotations

import asyncio
import signal
import uuid
from typing import Any

import httpx
import pytest
from django.conf import settings

from apps.incidents.models import Report
from apps.realtime.models import Event
from apps.regions.services import regions_load_fixture
from tests.factories.incidents import CategoryFactory
from tests.support.servers import asgi_process

pytestmark = [
    pytest.mark.services,
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
]

SANQIAO = (34.276, 108.85)


@pytest.fixture(autouse=True)
def _area() -> None:
    regions_load_fixture()
    CategoryFactory(code="A01")


def server_env() -> dict[str, str]:
    # The test stands in for the router: its X-Forwarded-For names each citizen.
    return {"REDIS_URL": settings.TEST_REDIS_URL, "TRUSTED_PROXIES": "127.0.0.1"}


async def send(base: str, count: int, start: int = 0) -> list[Any]:
    async with httpx.AsyncClient(base_url=base, timeout=20) as http:

        async def one(i: int) -> Any:
            try:
                return await http.post(
                    "/api/v1/reports/",
                    json={"category": "A01", "lat": SANQIAO[0], "lng": SANQIAO[1], "text": f"#{i}"},
                    headers={
                        "Idempotency-Key": str(uuid.uuid4()),
                        # a different citizen each: the per-address limit keeps its rate
                        "X-Forwarded-For": f"100.64.{i // 250}.{i % 250 + 1}",
                    },
                )
            except httpx.TransportError as exc:
                return exc

        return await asyncio.gather(*[one(start + i) for i in range(count)])


def test_concurrent_reports_are_durable_when_answered_and_reach_the_board() -> None:
    with asgi_process(server_env()) as (base, _proc):
        answers = asyncio.run(send(base, 60))
    assert [a.status_code for a in answers] == [201] * 60
    ids = {a.json()["id"] for a in answers}
    assert Report.objects.filter(pk__in=ids).count() == 60
    assert Event.objects.filter(stream="region.xixian", kind="report.submitted").count() == 60
    assert Event.objects.filter(stream__startswith="report.").count() == 60


def test_a_shutdown_answers_every_report_it_took_and_loses_none() -> None:
    with asgi_process(server_env()) as (base, proc):
        asyncio.run(send(base, 5))  # warm: the writer and its connections are up

        async def storm() -> list[Any]:
            pending = asyncio.ensure_future(send(base, 80, start=100))
            await asyncio.sleep(0.05)  # let requests reach the server
            proc.send_signal(signal.SIGTERM)  # uvicorn drains, then lifespan shutdown
            return await pending

        answers = asyncio.run(storm())
        proc.wait(timeout=30)
    created = [a for a in answers if isinstance(a, httpx.Response) and a.status_code == 201]
    others = [a for a in answers if not (isinstance(a, httpx.Response) and a.status_code == 201)]
    # every 201 names a committed report, and nothing was written without an answer
    assert Report.objects.filter(pk__in=[a.json()["id"] for a in created]).count() == len(created)
    storm_texts = [f"#{i}" for i in range(100, 180)]
    assert Report.objects.filter(text__in=storm_texts).count() == len(created)
    # refused connections are fine (the server stopped accepting); errors answered are not
    assert all(isinstance(a, httpx.TransportError) or a.status_code == 503 for a in others)
