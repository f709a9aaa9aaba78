"""The fast path of citizen report intake: ``POST /api/v1/reports/`` in front of Django.

Why it exists. A flood or a chemical leak brings thousands of reports a minute, and the
target is ≥ 1,000 reports/s with p99 ≤ 200 ms on a 2-core machine. Django's ASGI request
cycle alone costs about 2.7 ms of CPU per request here, DRF and the ORM several more,
and one transaction per report makes PostgreSQL commit (and fsync) once per report
(``bench/README.md``, ``intake``). So the common case — an anonymous JSON report that
is valid — is taken by a thin ASGI layer (:mod:`.asgi`) that

1. parses and validates exactly as the view and ``report_submit`` do (:mod:`.parse`),
   reusing their functions (category fields, point → street, phone normalisation) and
   the in-process category catalogue and street index;
2. checks the three intake rate limits and the two index generations in **one** Redis
   round trip (:mod:`apps.core.ratelimit`), sharing one budget with the Django view;
3. hands the report to the process's **group-commit writer** (:mod:`.writer`), which
   inserts a batch of reports (idempotency keys, reports, the board's events with their
   duplicate candidates) in one transaction, and answers every request only after that
   COMMIT: a 201 still means durable.

Everything else goes to Django unchanged, which stays the one source of truth for
errors and for every other case: a multipart report with photos, an authenticated
citizen (``Authorization`` or a session cookie), a body that fails any check (the fast
path never renders a validation error itself), a throttled request, an idempotency key
that is reused or in progress, and any failure of the writer. A request that the fast
path already counted against the rate limits is marked in its ASGI scope so the view
does not count it again.

It runs only on PostgreSQL (the embedded SQLite default always uses the view) and can
be switched off with ``INCIDENTS_FAST_INTAKE=false``.
"""
