"""The fast path of citizen report intake: ``POST /api/v1/reports/`` in front of Django.

Why it exists. A flood or a chemical leak brings thousands of reports a minute, and the
target is ≥ 1,000 reports/s with p99 ≤ 200 ms on a 2-core machine. Django's ASGI request
cycle alone costs about 2.7 ms of CPU per request here, DRF and the ORM several more,
and one transaction per report makes PostgreSQL commit (and fsync) once per report
(``bench/README.md``, ``intake``). So the common case — a valid JSON report or SOS,
anonymous or from a logged-in citizen — is taken by a thin ASGI layer (:mod:`.asgi`) that

1. parses the JSON as the views' serializers do and checks the report with the report
   service's own ``report_draft`` (category, point → street, category fields, phone),
   on the in-process category catalogue and street index (no query);
2. checks the intake rate limits (reports: per address, device and phone; SOS: per
   address and device) and the two index generations in **one** Redis round trip
   (:mod:`apps.core.ratelimit`), sharing one budget with the Django views;
3. hands the draft to the process's **group-commit writer** (:mod:`.writer`), which
   calls ``reports_submit_many`` — the one write path of citizen reports, the one the
   views call too — with a whole batch in one transaction (keys, reports, triage clocks,
   duplicate candidates, stored answers, SOS alarms, board events), and answers every
   request only after that COMMIT: a 201 still means durable, on the clock, on the board.

Everything else goes to Django unchanged, which stays the one source of truth for
errors and for every other case: a multipart report with photos, a session cookie (the
browsable API), a body that fails any check (the fast path never renders a validation
error itself), a bad token on a report (401; on an SOS a stale token makes the request
anonymous, as in the view), a throttled request, an idempotency key that is reused or in
progress, an account that is no longer active, and any failure of the writer. A request
that the fast path already counted against the rate limits is marked in its ASGI scope so
the view does not count it again.

It runs only on PostgreSQL (the embedded SQLite default always uses the view) and can
be switched off with ``INCIDENTS_FAST_INTAKE=false``.
"""
