"""``Idempotency-Key`` for mobile POSTs (STYLE R6).

Phones on weak networks retry. A POST that carries ``Idempotency-Key: <uuid>`` runs at
most once per sender: the key row is inserted in the *same transaction* as the change,
so either both commit or neither does.

1. No header: the request runs normally.
2. First use: insert the key row (unique on sender + key), run the view, store the
   response; commit. On PostgreSQL a concurrent insert of the same key blocks on the
   unique index until this transaction ends, then takes the replay path.
3. Replay with the same method, path and body: the stored response comes back with
   ``Idempotent-Replayed: true``; nothing runs again.
4. Same key, different request: 422 ``idempotency_key_reused``.
5. An error response (4xx/5xx) rolls the key back with everything else, so a corrected
   retry with the same key is processed.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.db import IntegrityError, transaction
from drf_spectacular.utils import OpenApiParameter
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.encoders import JSONEncoder

from apps.core.errors import ApplicationError, ErrorCode
from apps.core.models import IdempotentRequest

HEADER = "Idempotency-Key"

IDEMPOTENCY_KEY_PARAMETER = OpenApiParameter(
    name=HEADER,
    type=str,
    location=OpenApiParameter.HEADER,
    required=False,
    description="A UUID; a retry with the same key and body replays the first response.",
)


def _sender_scope(request: Request) -> str:
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return f"user:{user.pk}"
    # Anonymous citizens: keys are random UUIDs, so one shared namespace is safe; the
    # request hash below still refuses a different body under a known key.
    return "anon"


def _request_fingerprint(request: Request) -> str:
    digest = hashlib.sha256()
    digest.update(request.method.encode())
    digest.update(b"\0")
    digest.update(request.path.encode())
    digest.update(b"\0")
    content_type = request.content_type or ""
    if content_type.startswith("multipart/") or content_type.startswith(
        "application/x-www-form-urlencoded"
    ):
        # Files are hashed by content, fields by value: the same upload retried matches.
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
    else:
        digest.update(request.body)
    return digest.hexdigest()


def idempotent(view_method: Callable[..., Response]) -> Callable[..., Response]:
    """Decorate an ``APIView.post`` (or other unsafe method) to honour Idempotency-Key."""

    @wraps(view_method)
    def wrapper(self: Any, request: Request, *args: Any, **kwargs: Any) -> Response:
        raw_key = request.headers.get(HEADER)
        if raw_key is None:
            return view_method(self, request, *args, **kwargs)
        try:
            key = uuid.UUID(raw_key.strip())
        except ValueError:
            raise ApplicationError(ErrorCode.IDEMPOTENCY_KEY_INVALID) from None

        scope = _sender_scope(request)
        fingerprint = _request_fingerprint(request)
        with transaction.atomic():
            try:
                with transaction.atomic():
                    record = IdempotentRequest.objects.create(
                        scope=scope,
                        key=key,
                        method=request.method,
                        path=request.path[:300],
                        request_hash=fingerprint,
                        response_status=0,
                    )
            except IntegrityError:
                return _replay(scope, key, fingerprint)

            response = view_method(self, request, *args, **kwargs)
            if response.status_code >= 400:
                transaction.set_rollback(True)
                return response
            record.response_status = response.status_code
            record.response_body = json.loads(json.dumps(response.data, cls=JSONEncoder))
            record.save(update_fields=["response_status", "response_body", "updated_at"])
        return response

    return wrapper


def _replay(scope: str, key: uuid.UUID, fingerprint: str) -> Response:
    stored = IdempotentRequest.objects.get(scope=scope, key=key)
    if stored.request_hash != fingerprint:
        raise ApplicationError(
            ErrorCode.IDEMPOTENCY_KEY_REUSED, extra={"key": str(key)}, status=422
        )
    if stored.response_status == 0:
        raise ApplicationError(
            ErrorCode.IDEMPOTENCY_IN_PROGRESS, extra={"key": str(key)}, status=409
        )
    return Response(
        stored.response_body,
        status=stored.response_status,
        headers={"Idempotent-Replayed": "true"},
    )
