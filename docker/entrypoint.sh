#!/bin/sh
# Role of this container: web | realtime | worker | beat | migrate | manage <args> |
# healthcheck [path]
# Anything else is executed as given (e.g. `sh` for a debugging shell).
# Each role `exec`s its process so it receives SIGTERM from `docker stop` directly.
set -eu

role="${1:-web}"
[ "$#" -gt 0 ] && shift

# The client's address behind the router is the application's to decide, from one
# setting, TRUSTED_PROXIES (apps/core/client_address.py): neither server rewrites the
# peer address. gunicorn never does; uvicorn would from FORWARDED_ALLOW_IPS, so it runs
# with --no-proxy-headers. X-Forwarded-Proto is read by Django (SECURE_PROXY_SSL_HEADER).
case "$role" in
  web)
    # REST and admin: gunicorn, gthread workers (bench/README.md "topology": under WSGI
    # Django costs 2-5 ms less CPU per request than under ASGI; gthread keeps a process
    # busy through database waits, where sync workers idle). Behind the router
    # (docker/nginx.conf).
    exec gunicorn xixian_ems.wsgi:application \
      --bind "0.0.0.0:${PORT:-8000}" \
      --workers "${WEB_CONCURRENCY:-4}" \
      --worker-class gthread --threads "${WEB_THREADS:-4}" \
      --graceful-timeout 30 \
      --no-control-socket \
      --access-logfile - \
      "$@"
    ;;
  realtime)
    # ASGI: WebSockets (Channels) and the fast intake path of citizen reports
    # (apps.incidents.intake, group commit in the ASGI process). Lifespan on: a shutdown
    # answers every report it took before the connections close.
    exec uvicorn xixian_ems.asgi:application \
      --host 0.0.0.0 --port "${PORT:-8000}" \
      --workers "${REALTIME_CONCURRENCY:-2}" \
      --no-proxy-headers \
      --lifespan on \
      --timeout-graceful-shutdown 30 \
      "$@"
    ;;
  worker)
    exec celery --app xixian_ems worker \
      --loglevel "${LOG_LEVEL:-INFO}" \
      --concurrency "${CELERY_CONCURRENCY:-2}" \
      "$@"
    ;;
  beat)
    # Exactly one beat per deployment (compose runs one replica): two would enqueue
    # every periodic task twice. Its schedule state lives in $XEMS_VAR_DIR.
    exec celery --app xixian_ems beat --loglevel "${LOG_LEVEL:-INFO}" "$@"
    ;;
  migrate)
    # One-shot before web/worker/beat start: deploy checks (warnings are printed, errors
    # stop the rollout), then migrations.
    python manage.py check --deploy
    exec python manage.py migrate --noinput "$@"
    ;;
  manage)
    exec python manage.py "$@"
    ;;
  healthcheck)
    # GET a probe as the proxy would send it: to an allowed host, marked HTTPS, so neither
    # ALLOWED_HOSTS nor SECURE_SSL_REDIRECT turns the answer into a 400 or a 301.
    exec python - "${1:-/healthz}" <<'PY'
import os
import sys
import urllib.request

host = os.environ.get("DJANGO_ALLOWED_HOSTS", "").split(",")[0].strip().lstrip(".")
request = urllib.request.Request(
    f"http://127.0.0.1:{os.environ.get('PORT', '8000')}{sys.argv[1]}",
    headers={"Host": host if host and host != "*" else "localhost", "X-Forwarded-Proto": "https"},
)
try:
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
        sys.exit(0 if response.status == 200 else 1)
except Exception as exc:
    print(f"{sys.argv[1]}: {exc}", file=sys.stderr)
    sys.exit(1)
PY
    ;;
  *)
    exec "$role" "$@"
    ;;
esac
