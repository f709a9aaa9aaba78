"""The 值班台 in a real browser: a report's 201 → its row on an open board, p99 of 50.

**What is measured.** One uvicorn process of the project (``xixian_ems.asgi``, production
settings, the bench database) serves the admin, the event socket and the report API.
Headless Chromium (Debian's ``chromium``, driven by Playwright; never a downloaded
browser) signs in as the demo operator ``op-fengdong`` through the admin's login form and
opens the duty board (``/admin/console/dutydesk/board/``), waiting for
``#xc-board[data-state="live"]`` (the DOM contract in ``docs/admin.md``). A
``MutationObserver`` in the page stamps, with the browser's wall clock
(``performance.timeOrigin + performance.now()``), the moment each
``tr[data-kind="report"][data-id]`` is added.

Then ``REPORTS`` anonymous citizen reports (after ``WARMUP`` unmeasured ones) are posted
one at a time in 三桥街道 (沣东), each from its own client address and device so the
intake limits keep their production values; the next is posted ``PAUSE_S`` after the
previous one reached both clients. Latency per report: the row's stamp − the moment the
POST was sent (wall clock, ``time.time()``; the same machine's clock as the browser's).
The COMMIT happens between sending and the 201, so this is an upper bound of commit →
row (the goal is judged on it); the same latencies counted from the 201's arrival, a
lower bound, are in ``config.board_browser`` (``board_from_201_ms``), with the browser's
share per report (row − frame, ``browser_share_ms``).

**Raw baseline, same run, same reports:** a plain WebSocket client (the ``websockets``
library, the operator's JWT) on the same server, subscribed to ``region.fengdong``, the
stream the board follows; its latency is the ``report.submitted`` frame's arrival − the
same send. The difference between the two figures is the browser's share: its socket,
the board's script and the DOM update. (Counted from the 201 the baseline can be a little
below zero: the frame is published right after COMMIT, the 201 also follows it, and
either can arrive first.)

Goal: ``board.p99`` ≤ 1,000 ms. A report whose row or frame has not arrived within
``WAIT_S`` fails the run (``board.lost`` / ``socket.lost`` would be its figures).
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import secrets
import shutil
import threading
import time
import uuid
from collections.abc import Sequence
from typing import Any

from bench.harness import DJANGO_APP, LOG_DIR, Baseline, BenchContext, BenchError, Figure, Server

REPORTS = 50
WARMUP = 3
PAUSE_S = 0.2
WAIT_S = 10.0
GOAL_P99_MS = 1000.0
QUANTILES = (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("max", 1.0))
OPERATOR = "op-fengdong"
STREAM = "region.fengdong"
SANQIAO = (34.276, 108.85)  # 三桥街道, 沣东新城
BOARD = "/admin/console/dutydesk/board/"

# Stamps every report row the board adds, keyed by its id (browser wall clock, ms).
ROW_STAMPER = """
() => {
  window.__xcRowAt = {};
  const stamp = (el) => {
    if (!(el instanceof Element)) return;
    const rows = el.matches('tr[data-kind="report"][data-id]') ? [el] : [];
    rows.push(...el.querySelectorAll('tr[data-kind="report"][data-id]'));
    const now = performance.timeOrigin + performance.now();
    for (const r of rows) {
      if (!(r.dataset.id in window.__xcRowAt)) window.__xcRowAt[r.dataset.id] = now;
    }
  };
  new MutationObserver((records) => {
    for (const rec of records) rec.addedNodes.forEach(stamp);
  }).observe(document.getElementById('xc-board'), {childList: true, subtree: true});
}
"""


def chromium_executable() -> str:
    found = shutil.which("chromium") or (
        "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None
    )
    if not found:
        raise BenchError("chromium is not installed (apt-get install chromium fonts-noto-cjk)")
    return found


class SocketClient:
    """A plain WebSocket client on its own thread and event loop: the baseline. Records
    when each ``report.submitted`` frame of ``STREAM`` arrives (wall clock, seconds)."""

    def __init__(self, base: str, token: str) -> None:
        self.url = base.replace("http://", "ws://") + "/ws/v1/events/"
        self.token = token
        self.arrived: dict[int, float] = {}
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()
        if not self.ready.wait(30) or self.error is not None:
            raise BenchError(f"baseline socket did not subscribe: {self.error!r}")

    def stop(self) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def _run(self) -> None:
        try:
            self._loop.run_until_complete(self._listen())
        except BaseException as exc:  # reported by start() or the waits
            self.error = exc
            self.ready.set()

    async def _listen(self) -> None:
        import websockets

        self._stop = asyncio.Event()
        async with websockets.connect(self.url, subprotocols=[f"bearer.{self.token}"]) as ws:
            hello = json.loads(await asyncio.wait_for(ws.recv(), 10))
            if hello.get("type") != "hello":
                raise BenchError(f"socket said {hello}")
            await ws.send(json.dumps({"type": "subscribe", "stream": STREAM}))
            while True:
                frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
                if frame.get("type") == "subscribed":
                    break
            self.ready.set()
            stopping = asyncio.ensure_future(self._stop.wait())
            while not stopping.done():
                receiving = asyncio.ensure_future(ws.recv())
                await asyncio.wait({receiving, stopping}, return_when=asyncio.FIRST_COMPLETED)
                if not receiving.done():
                    receiving.cancel()
                    break
                now = time.time()
                frame = json.loads(receiving.result())
                if frame.get("type") == "event" and frame.get("kind") == "report.submitted":
                    self.arrived.setdefault(int(frame["data"]["report"]["id"]), now)


def _pct(samples: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (the harness's definition)."""
    ordered = sorted(samples)
    if not ordered:
        return math.nan
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def _post_report(client: Any, i: int) -> tuple[int, float, float]:
    """One anonymous report from its own address and device; (id, sent, 201 arrival)."""
    sent = time.time()
    response = client.post(
        "/api/v1/reports/",
        json={
            "category": "N02",
            "lat": SANQIAO[0],
            "lng": SANQIAO[1],
            "text": f"路口积水很深，车辆无法通行 #{i}",
            "extra": {"waterlogging_depth_cm": 30, "vehicles_stalled": False},
        },
        headers={
            "Idempotency-Key": str(uuid.uuid4()),
            "X-Device-Id": f"bench-board-{uuid.uuid4().hex}",
            "X-Forwarded-For": f"10.{200 + i // 62500}.{i // 250 % 250}.{i % 250 + 1}",
        },
    )
    arrived = time.time()
    if response.status_code != 201:
        raise BenchError(f"report {i}: {response.status_code} {response.text[:300]}")
    return int(response.json()["id"]), sent, arrived


def _measure(ctx: BenchContext, server: Server) -> dict[str, Any]:
    import httpx
    from playwright.sync_api import sync_playwright

    token = ctx.login(OPERATOR)
    socket = SocketClient(server.base_url, token)
    board_ms: list[float] = []
    socket_ms: list[float] = []
    board_201_ms: list[float] = []
    socket_201_ms: list[float] = []
    share_ms: list[float] = []
    rows: dict[int, float] = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_executable(),
            headless=True,
            args=["--no-sandbox"] if os.geteuid() == 0 else [],
        )
        try:
            page = browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai").new_page()
            page.goto(f"{server.base_url}/admin/login/?next={BOARD}")
            page.fill("input[name=username]", OPERATOR)
            page.fill("input[name=password]", ctx.demo_password)
            page.click("form [type=submit]")
            page.wait_for_url(f"{server.base_url}{BOARD}")
            page.wait_for_selector('#xc-board[data-state="live"]', timeout=30_000)
            page.evaluate(ROW_STAMPER)
            socket.start()
            with httpx.Client(base_url=server.base_url, timeout=20) as client:
                for i in range(WARMUP + REPORTS):
                    report_id, sent, answered = _post_report(client, i)
                    deadline = time.monotonic() + WAIT_S
                    while True:
                        at = page.evaluate(f"() => window.__xcRowAt[{json.dumps(str(report_id))}]")
                        if at is not None and report_id in socket.arrived:
                            break
                        if socket.error is not None:
                            raise BenchError(f"baseline socket failed: {socket.error!r}")
                        if time.monotonic() > deadline:
                            raise BenchError(
                                f"report {report_id}: row {'seen' if at else 'missing'}, "
                                f"frame {'seen' if report_id in socket.arrived else 'missing'}"
                                f" after {WAIT_S:.0f} s"
                            )
                        page.wait_for_timeout(5)  # the browser's own event loop runs meanwhile
                    rows[report_id] = float(at) / 1000
                    if i >= WARMUP:
                        frame = socket.arrived[report_id]
                        board_ms.append((rows[report_id] - sent) * 1000)
                        socket_ms.append((frame - sent) * 1000)
                        board_201_ms.append((rows[report_id] - answered) * 1000)
                        socket_201_ms.append((frame - answered) * 1000)
                        share_ms.append((rows[report_id] - frame) * 1000)
                    time.sleep(PAUSE_S)
            page.screenshot(path=str(LOG_DIR / "board-browser.png"))
        finally:
            socket.stop()
            browser.close()
    return {
        "board_ms": board_ms,
        "socket_ms": socket_ms,
        "board_from_201_ms": board_201_ms,
        "socket_from_201_ms": socket_201_ms,
        "browser_share_ms": share_ms,
    }


def run(ctx: BenchContext) -> list[Figure]:
    chromium_executable()
    env = {
        **ctx.env,
        "CHANNEL_LAYER_PREFIX": f"bench-bb-{secrets.token_hex(6)}",
        "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD": "1",
    }
    os.environ["PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD"] = "1"
    print("  collectstatic (the admin's assets, served by WhiteNoise)")
    # Into the settings' STATIC_ROOT (var/static): the server below starts after it, so
    # WhiteNoise finds every file when it scans the directory at start-up.
    ctx.manage("collectstatic", "--noinput", "--verbosity", "0")
    ctx.manage("load_categories")  # idempotent; the reports' category (N02)
    ctx.manage("load_sla_policies")  # so each report is on its triage clock, as deployed
    server = Server("django-board-browser", DJANGO_APP, workers=1, env=env)
    print(f"  starting {server.name}: {server.description}")
    try:
        server.start()
        samples = _measure(ctx, server)
    finally:
        server.stop()
    board, raw = samples["board_ms"], samples["socket_ms"]
    ctx.note(
        "board_browser",
        {
            "reports": REPORTS,
            "warmup": WARMUP,
            "pause_s": PAUSE_S,
            "operator": OPERATOR,
            "stream": STREAM,
            "browser": "Debian chromium, headless, Playwright",
            **{key: {q: round(_pct(samples[key], v), 1) for q, v in QUANTILES} for key in samples},
        },
    )
    print(
        f"  board p50 {_pct(board, 0.5):.1f} ms p99 {_pct(board, 0.99):.1f} ms · "
        f"socket p50 {_pct(raw, 0.5):.1f} ms p99 {_pct(raw, 0.99):.1f} ms · browser share "
        f"p50 {_pct(samples['browser_share_ms'], 0.5):.1f} ms "
        f"p99 {_pct(samples['browser_share_ms'], 0.99):.1f} ms"
    )
    raw_name = f"plain WebSocket client on {STREAM}"
    text = (
        f"report POST sent → its row on an open board in Chromium (an upper bound of "
        f"commit → row), {REPORTS} reports one at a time"
    )
    return [
        Figure(
            name=f"board.{name}",
            unit="ms",
            value=_pct(board, q),
            baseline=Baseline(name=f"{raw_name} {name}", value=_pct(raw, q), unit="ms"),
            better="lower",
            goal=goal,
            description=text,
        )
        for name, q, goal in (("p50", 0.5, None), ("p99", 0.99, GOAL_P99_MS))
    ]
