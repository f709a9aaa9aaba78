"""``Idempotency-Key`` for mobile POSTs (conventions R6).

Phones on weak networks retry. A POST that carries ``Idempotency-Key: <uuid>`` runs at
most once per sender: the key row is inserted in the *same transaction* as the change,
so either both commit or neither does.

1. No header: the request runs normally.
2. First use: insert the key row (unique on sender + key), run the change, store the
   response; commit. On PostgreSQL a concurrent insert of the same key blocks on the
   unique index until this transaction ends, then takes the replay path.
3. Replay with the same method, path and body: the stored response comes back with
   ``Idempotent-Replayed: true``; nothing runs again.
4. Same key, different request: 422 ``idempotency_key_reused``.
5. An error response (4xx/5xx) rolls the key back with everything else, so a corrected
   retry with the same key is processed.

Two callers share the statements below (:func:`claims_take`, :func:`claims_answer`,
:func:`claims_replay`), so there is one implementation of the rules: the :func:`idempotent`
view decorator (one claim around one view), and services that write many changes in one
transaction and take their callers' claims with them (citizen report intake, whose fast
path answers without a Django view at all).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import wraps
from typing import Any

from django.db import connection, transaction
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.encoders import JSONEncoder

from apps.core.bulk import rows_insert
from apps.core.errors import ApplicationError, ErrorCode
from apps.core.models import IdempotentRequest

HEADER = "Idempotency-Key"
ANONYMOUS_SCOPE = "anon"
PATH_MAX_LENGTH = 300

IDEMPOTENCY_KEY_PARAMETER = OpenApiParameter(
    name=HEADER,
    type=OpenApiTypes.UUID,  # anything else is refused with idempotency_key_invalid
    location=OpenApiParameter.HEADER,
    required=False,
    description="A UUID; a retry with the same key and body replays the first response.",
)

_TABLE = IdempotentRequest._meta.db_table
# One statement for a batch of answers. PostgreSQL: the answers as one JSON document (a
# fixed statement, see apps.core.bulk for why); elsewhere a VALUES list named by a CTE.
_ANSWER_SQL_PG = (
    f"UPDATE {_TABLE} SET response_status = v.status, response_body = v.body, "  # noqa: S608
    "updated_at = %s FROM jsonb_to_recordset(%s::jsonb) AS v (id bigint, status int, "
    f"body jsonb) WHERE {_TABLE}.id = v.id"
)
_ANSWER_SQL = (
    "WITH v (id, status, body) AS (VALUES {rows}) "  # noqa: S608
    f"UPDATE {_TABLE} SET response_status = v.status, response_body = v.body, "
    f"updated_at = %s FROM v WHERE {_TABLE}.id = v.id"
)


@dataclass(frozen=True)
class Claim:
    """One request's claim on its key: who sent it, the key, and what the request was."""

    scope: str
    key: uuid.UUID
    method: str
    path: str
    fingerprint: str

    @property
    def ident(self) -> tuple[str, uuid.UUID]:
        return (self.scope, self.key)


@dataclass(frozen=True)
class Replay:
    """The stored answer of a request that already ran."""

    status: int
    body: Any


def sender_scope(user: Any) -> str:
    if user is not None and getattr(user, "is_authenticated", False):
        return f"user:{user.pk}"
    # Anonymous citizens: keys are random UUIDs, so one shared namespace is safe; the
    # request hash still refuses a different body under a known key.
    return ANONYMOUS_SCOPE


def key_parse(raw: str) -> uuid.UUID:
    """The header's UUID; 400 ``idempotency_key_invalid`` if it is not one."""
    try:
        return uuid.UUID(raw.strip())
    except ValueError:
        raise ApplicationError(ErrorCode.IDEMPOTENCY_KEY_INVALID) from None


def fingerprint(method: str, path: str, body: bytes) -> str:
    """The hash of a request sent as raw bytes (JSON): method, path and body."""
    digest = hashlib.sha256()
    digest.update(method.encode())
    digest.update(b"\0")
    digest.update(path.encode())
    digest.update(b"\0")
    digest.update(body)
    return digest.hexdigest()


def _request_fingerprint(request: Request) -> str:
    content_type = request.content_type or ""
    if not (
        content_type.startswith("multipart/")
        or content_type.startswith("application/x-www-form-urlencoded")
    ):
        return fingerprint(request.method, request.path, request.body)
    # Files are hashed by content, fields by value: the same upload retried matches.
    digest = hashlib.sha256()
    digest.update(request.method.encode())
    digest.update(b"\0")
    digest.update(request.path.encode())
    digest.update(b"\0")
    canonical: dict[str, Any] = {}
    for name in sorted(request.data.keys()):
        canonical[name] = sorted(str(v) for v in request.data.getlist(name))
    for name in sorted(request.FILES.keys()):
        hashes = []
        for upload in request.FILES.getlist(name):
            file_digest = hashlib.sha256()
            for chunk in upload.chunks():
                file_digest.update(chunk)
            upload.seek(0)
            hashes.append(file_digest.hexdigest())
        canonical[f"file:{name}"] = hashes
    digest.update(json.dumps(canonical, sort_keys=True).encode())
    return digest.hexdigest()


def claim_from(request: Request) -> Claim | None:
    """The request's claim, ``None`` without the header; 400 if the key is malformed."""
    raw_key = request.headers.get(HEADER)
    if raw_key is None:
        return None
    key = key_parse(raw_key)
    return Claim(
        scope=sender_scope(getattr(request, "user", None)),
        key=key,
        method=request.method,
        path=request.path[:PATH_MAX_LENGTH],
        fingerprint=_request_fingerprint(request),
    )


# --- The statements ----------------------------------------------------------------------


def claims_take(claims: Sequence[Claim]) -> dict[tuple[str, uuid.UUID], int]:
    """Insert the key rows of ``claims`` in the current transaction (one statement).

    Returns ``{(scope, key): row id}`` for the claims taken *now*; a claim whose key was
    taken before (or earlier in the same list) is absent: its request must not run, and
    :func:`claims_replay` says what to answer. On PostgreSQL a key that a concurrent
    transaction is inserting waits for that transaction to end.
    """
    if not claims:
        return {}
    rows = [
        IdempotentRequest(
            scope=claim.scope,
            key=claim.key,
            method=claim.method,
            path=claim.path[:PATH_MAX_LENGTH],
            request_hash=claim.fingerprint,
            response_status=0,
        )
        for claim in claims
    ]
    inserted = rows_insert(
        IdempotentRequest, rows, returning=("scope", "key", "id"), ignore_conflicts=True
    )
    return {(scope, uuid.UUID(str(key))): int(pk) for scope, key, pk in inserted}


def claims_answer(answers: Sequence[tuple[int, int, Any]]) -> None:
    """Store ``(row id, status, body)`` answers on taken claims, in the same transaction
    as the change they answer (one statement)."""
    if not answers:
        return
    now = timezone.now()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            document = json.dumps(
                [{"id": pk, "status": status, "body": body} for pk, status, body in answers],
                cls=JSONEncoder,
                ensure_ascii=False,
            )
            cursor.execute(_ANSWER_SQL_PG, [now, document])
            return
        params: list[Any] = []
        for pk, status, body in answers:
            params += [pk, status, json.dumps(body, cls=JSONEncoder)]
        sql = _ANSWER_SQL.format(rows=", ".join(["(%s, %s, %s)"] * len(answers)))
        cursor.execute(sql, [*params, now])


def claims_replay(
    claims: Sequence[Claim],
) -> dict[tuple[str, uuid.UUID], Replay | ApplicationError]:
    """What to answer each claim that was not taken: the stored answer, or 422
    ``idempotency_key_reused`` (another request under that key), or 409
    ``idempotency_in_progress`` (its request has not finished)."""
    if not claims:
        return {}
    stored: dict[tuple[str, uuid.UUID], IdempotentRequest] = {}
    for scope in {claim.scope for claim in claims}:
        keys = [claim.key for claim in claims if claim.scope == scope]
        for record in IdempotentRequest.objects.filter(scope=scope, key__in=keys).only(
            "scope", "key", "request_hash", "response_status", "response_body"
        ):
            stored[(record.scope, record.key)] = record
    answers: dict[tuple[str, uuid.UUID], Replay | ApplicationError] = {}
    for claim in claims:
        record = stored.get(claim.ident)
        if record is None or record.request_hash != claim.fingerprint:
            answers[claim.ident] = ApplicationError(
                ErrorCode.IDEMPOTENCY_KEY_REUSED, extra={"key": str(claim.key)}, status=422
            )
        elif record.response_status == 0:
            answers[claim.ident] = ApplicationError(
                ErrorCode.IDEMPOTENCY_IN_PROGRESS, extra={"key": str(claim.key)}, status=409
            )
        else:
            answers[claim.ident] = Replay(record.response_status, record.response_body)
    return answers


def replay_response(replay: Replay) -> Response:
    return Response(replay.body, status=replay.status, headers={"Idempotent-Replayed": "true"})


# --- The view decorator ------------------------------------------------------------------


def idempotent(view_method: Callable[..., Response]) -> Callable[..., Response]:
    """Decorate an ``APIView.post`` (or other unsafe method) to honour Idempotency-Key."""

    @wraps(view_method)
    def wrapper(self: Any, request: Request, *args: Any, **kwargs: Any) -> Response:
        claim = claim_from(request)
        if claim is None:
            return view_method(self, request, *args, **kwargs)
        with transaction.atomic():
            taken = claims_take([claim])
            if claim.ident not in taken:
                answer = claims_replay([claim])[claim.ident]
                if isinstance(answer, ApplicationError):
                    raise answer
                return replay_response(answer)
            response = view_method(self, request, *args, **kwargs)
            if response.status_code >= 400:
                transaction.set_rollback(True)
                return response
            claims_answer([(taken[claim.ident], response.status_code, response.data)])
        return response

    return wrapper
