"""The statements of one group-commit batch (:mod:`.writer`).

Identifiers come from the models' metadata and values are always bound parameters
(``%s``), so the f-strings below carry no input (hence the ``S608`` waivers).

Column lists are explicit; ``tests/incidents/test_intake_fast.py`` checks them against
the models, so a new column without a database default fails a test, not a report.
"""

from __future__ import annotations

from apps.core.models import IdempotentRequest
from apps.incidents.models import OPEN_STATUSES, Category, Incident, Report

REPORT_TABLE = Report._meta.db_table
KEY_TABLE = IdempotentRequest._meta.db_table
INCIDENT_TABLE = Incident._meta.db_table
CATEGORY_TABLE = Category._meta.db_table

# Every concrete column of Report, in this order. Values not taken from the citizen are
# the model defaults of a new report (status submitted, nothing triaged or rated).
REPORT_COLUMNS = (
    "token", "reporter_id", "phone", "channel", "category_id", "text", "lat", "lng",
    "address", "region_id", "extra", "is_sos", "status", "incident_id", "rejection_reason",
    "triaged_at", "triaged_by_id", "rating", "rating_comment", "rated_at",
    "reopen_requested_at", "reopen_reason", "client_ip", "device_id", "created_at",
    "updated_at",
)  # fmt: skip
REPORT_ROW = (
    "(%s, NULL, %s, 'app', %s, %s, %s, %s, %s, %s, %s, false, 'submitted', NULL, '', "
    "NULL, NULL, NULL, '', NULL, NULL, '', %s::inet, %s, %s, %s)"
)
INSERT_REPORTS = (
    f"INSERT INTO {REPORT_TABLE} ({', '.join(REPORT_COLUMNS)}) "  # noqa: S608
    "VALUES {rows} RETURNING id, token"
)

KEY_COLUMNS = (
    "scope", "key", "method", "path", "request_hash", "response_status", "response_body",
    "created_at", "updated_at",
)  # fmt: skip
KEY_ROW = "('anon', %s, 'POST', %s, %s, 0, NULL, %s, %s)"
INSERT_KEYS = (
    f"INSERT INTO {KEY_TABLE} ({', '.join(KEY_COLUMNS)}) VALUES {{rows}} "  # noqa: S608
    "ON CONFLICT (scope, key) DO NOTHING RETURNING id, key"
)
UPDATE_KEYS = (
    f"UPDATE {KEY_TABLE} AS k SET response_status = 201, response_body = v.body, "  # noqa: S608
    "updated_at = v.at FROM (VALUES {rows}) AS v (id, body, at) WHERE k.id = v.id"
)
UPDATE_KEY_ROW = "(%s::bigint, %s::jsonb, %s::timestamptz)"
STORED_KEYS = (
    f"SELECT key, request_hash, response_status, response_body FROM {KEY_TABLE} "  # noqa: S608
    "WHERE scope = 'anon' AND key = ANY(%s)"
)

# Duplicate candidates of every report of a batch in one statement: the bounding box and
# category filter of apps.incidents.duplicates.duplicate_candidates, per report.
_OPEN = ", ".join(f"'{status}'" for status in OPEN_STATUSES)
CANDIDATES = f"""
    SELECT v.idx, i.id, i.lat, i.lng, i.created_at, i.category_id
    FROM (VALUES {{rows}}) AS v (idx, south, north, west, east, since, until, codes)
    CROSS JOIN LATERAL (
        SELECT i.id, i.lat, i.lng, i.created_at, i.category_id
        FROM {INCIDENT_TABLE} i JOIN {CATEGORY_TABLE} c ON c.id = i.category_id
        WHERE i.status IN ({_OPEN})
          AND i.created_at >= v.since AND i.created_at <= v.until
          AND i.lat >= v.south AND i.lat <= v.north
          AND i.lng >= v.west AND i.lng <= v.east
          AND c.code = ANY(v.codes)
    ) AS i
"""  # noqa: S608
CANDIDATE_ROW = (
    "(%s::int, %s::float8, %s::float8, %s::float8, %s::float8, %s::timestamptz, "
    "%s::timestamptz, %s::text[])"
)


def rows(template: str, count: int) -> str:
    return ", ".join([template] * count)
