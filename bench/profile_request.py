"""Profile one endpoint in-process: its SQL and where its time goes (pyinstrument).

"Profile before optimising": run the benchmarks with ``--keep-db``, then point this at
the kept database::

    .venv/bin/python bench/run.py regions --keep-db
    .venv/bin/python bench/profile_request.py /api/v1/regions/tree/ --user admin
    .venv/bin/python bench/profile_request.py "/api/v1/regions/lookup/?lat=34.27&lng=108.85"

POSTs too: ``--json BODY`` sends it as ``application/json`` (expect ``--status``, 201 for
creations). ``--fresh-caller`` makes every request a new anonymous citizen, as
``bench_intake`` does: its own ``Idempotency-Key``, ``X-Device-Id``, client address and,
if the body has one, ``phone`` — so the throttles keep their production rates::

    .venv/bin/python bench/run.py intake --keep-db
    .venv/bin/python bench/profile_request.py /api/v1/reports/ --user "" --status 201 \
        --fresh-caller --json '{"category": "N02", "lat": 34.3, "lng": 108.75, "text": "积水",
        "phone": "13900000000", "extra": {"waterlogging_depth_cm": 30}}'

It loads the project with the bench settings (production module, DEBUG off, the bench
database and Redis db), mints a JWT for ``--user``, then drives requests through Django's
test ``Client`` (the whole middleware + DRF stack in this thread, minus the ASGI server):

1. one request under ``CaptureQueriesContext``: every SQL statement and its time;
2. ``--requests`` requests timed (wall and CPU per request: compare the CPU with the
   benchmark's ``server_cpu_ms_per_request`` to see what the ASGI server adds);
3. ``--requests`` requests under pyinstrument: the call tree (``--html FILE`` writes the
   interactive version, ``--show-all`` keeps library frames).
"""

from __future__ import annotations

import argparse
import ipaddress
import itertools
import json
import os
import secrets
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.harness import Options, django_env  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/profile_request.py", description=__doc__)
    parser.add_argument("path", help="request path with query string, e.g. /api/v1/me/")
    parser.add_argument(
        "--user", default="admin", help='username to authenticate as ("" for anonymous)'
    )
    parser.add_argument("--json", help="POST this JSON body instead of a GET")
    parser.add_argument("--status", type=int, default=200, help="expected status")
    parser.add_argument(
        "--fresh-caller",
        action="store_true",
        help="each request a new caller: Idempotency-Key, X-Device-Id, address, phone",
    )
    parser.add_argument(
        "--session",
        action="store_true",
        help="log --user in with a session (admin pages such as the duty board), not a JWT",
    )
    parser.add_argument("--requests", type=int, default=200, help="profiled requests")
    parser.add_argument("--interval", type=float, default=0.0002, help="sampling interval (s)")
    parser.add_argument(
        "--show-all", action="store_true", help="show library frames in the call tree too"
    )
    parser.add_argument("--html", type=Path, help="also write pyinstrument's HTML report here")
    args = parser.parse_args(argv)

    options = Options.from_env()
    os.environ.update(
        django_env(
            database_url=options.database_url,
            redis_url=options.redis_url,
            secret_key=secrets.token_urlsafe(64),
        )
    )

    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from pyinstrument import Profiler
    from rest_framework_simplejwt.tokens import AccessToken

    headers: dict[str, str] = {"HTTP_HOST": "127.0.0.1", "HTTP_ACCEPT": "application/json"}
    user = get_user_model().objects.get(username=args.user) if args.user else None
    if user is not None and not args.session:
        headers["HTTP_AUTHORIZATION"] = f"Bearer {AccessToken.for_user(user)}"
    if args.session:
        headers["HTTP_ACCEPT"] = "text/html"
    client = Client(**headers)
    if user is not None and args.session:
        client.force_login(user)
    body = json.loads(args.json) if args.json else None
    counter = itertools.count(1)

    def send() -> Any:
        if body is None:
            return client.get(args.path)
        payload, extra = dict(body), {}
        if args.fresh_caller:
            n = next(counter)
            extra = {
                "HTTP_IDEMPOTENCY_KEY": str(uuid.uuid4()),
                "HTTP_X_DEVICE_ID": str(uuid.uuid4()),
                "REMOTE_ADDR": str(ipaddress.IPv4Address("100.127.0.0") + n),
            }
            if isinstance(payload.get("phone"), str) and payload["phone"]:
                payload["phone"] = f"{payload['phone'][:3]}{n % 10**8:08d}"
        return client.post(args.path, payload, content_type="application/json", **extra)

    who = args.user or "anonymous"
    for _ in range(20):  # warm: URL resolver, serializers, street index, pool
        response = send()
        if response.status_code != args.status:
            print(f"{args.path} -> {response.status_code}: {response.content[:300]!r}")
            return 1

    with CaptureQueriesContext(connection) as queries:
        send()
    total = sum(float(q["time"]) for q in queries.captured_queries) * 1000
    print(
        f"{'POST' if body is not None else 'GET'} {args.path} as {who}: {len(queries)} queries "
        f"({total:.2f} ms in the database driver), {len(response.content)} bytes"
    )
    for query in queries.captured_queries:
        print(f"  {query['time']:>6}s  {query['sql'][:160]}")

    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(args.requests):
        send()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(
        f"\n{args.requests} requests unprofiled: {wall / args.requests * 1000:.2f} ms wall, "
        f"{cpu / args.requests * 1000:.2f} ms CPU each (compare: runs[].server_cpu_ms_per_request)"
    )

    profiler = Profiler(interval=args.interval)
    started = time.perf_counter()
    with profiler:
        for _ in range(args.requests):
            send()
    elapsed = time.perf_counter() - started
    print(f"{args.requests} requests profiled: {elapsed / args.requests * 1000:.2f} ms each")
    print(profiler.output_text(unicode=True, color=False, show_all=args.show_all))
    if args.html:
        args.html.write_text(profiler.output_html(), encoding="utf-8")
        print(f"wrote {args.html}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
