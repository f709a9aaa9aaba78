"""Profile one endpoint in-process: its SQL and where its time goes (pyinstrument).

"Profile before optimising": run the benchmarks with ``--keep-db``, then point this at
the kept database::

    .venv/bin/python bench/run.py regions --keep-db
    .venv/bin/python bench/profile_request.py /api/v1/regions/tree/ --user admin
    .venv/bin/python bench/profile_request.py "/api/v1/regions/lookup/?lat=34.27&lng=108.85"

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
import os
import secrets
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.harness import Options, django_env  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/profile_request.py", description=__doc__)
    parser.add_argument("path", help="request path with query string, e.g. /api/v1/me/")
    parser.add_argument("--user", default="admin", help="username to authenticate as")
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

    user = get_user_model().objects.get(username=args.user)
    client = Client(
        HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(user)}",
        HTTP_HOST="127.0.0.1",
        HTTP_ACCEPT="application/json",
    )

    for _ in range(20):  # warm: URL resolver, serializers, street index, pool
        response = client.get(args.path)
        if response.status_code != 200:
            print(f"{args.path} -> {response.status_code}: {response.content[:300]!r}")
            return 1

    with CaptureQueriesContext(connection) as queries:
        client.get(args.path)
    print(f"{args.path} as {args.user}: {len(queries)} queries, {len(response.content)} bytes")
    for query in queries.captured_queries:
        print(f"  {query['time']:>6}s  {query['sql'][:160]}")

    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(args.requests):
        client.get(args.path)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(
        f"\n{args.requests} requests unprofiled: {wall / args.requests * 1000:.2f} ms wall, "
        f"{cpu / args.requests * 1000:.2f} ms CPU each (compare: runs[].server_cpu_ms_per_request)"
    )

    profiler = Profiler(interval=args.interval)
    started = time.perf_counter()
    with profiler:
        for _ in range(args.requests):
            client.get(args.path)
    elapsed = time.perf_counter() - started
    print(f"{args.requests} requests profiled: {elapsed / args.requests * 1000:.2f} ms each")
    print(profiler.output_text(unicode=True, color=False, show_all=args.show_all))
    if args.html:
        args.html.write_text(profiler.output_html(), encoding="utf-8")
        print(f"wrote {args.html}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
