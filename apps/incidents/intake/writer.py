"""Group commit: one writer per process hands reports to the report service in batches.

A request hands its checked :class:`~.parse.Submission` to :meth:`GroupCommitter.submit`
and awaits the outcome. The writer takes the waiting reports (at most ``max_batch``) as
soon as the oldest has waited ``max_wait_s``, the batch is full, or no other request of
this process is still being checked (nothing more is about to join, so waiting would
only add latency), and calls
:func:`~apps.incidents.services.reports.reports_submit_many` with the whole batch in a
thread of its own: the one write path of citizen reports, so a report taken here gets
exactly what a report the view takes gets — its idempotency key and stored answer, its
triage clock, its duplicate candidates, an SOS alarm for the duty officers, the board's
and the citizen's events — in ONE transaction. Only after that COMMIT are the requests'
futures resolved: every 201 follows the COMMIT of its row, as in the view. PostgreSQL
commits (and fsyncs) once per batch instead of once per report, which is what lifts
intake past 1,000 reports/s here.

Up to ``threads`` batches are in flight at once (each thread holds its own database
connection from the pool while it writes): one batch forms and inserts while the
previous one waits for its COMMIT to reach the disk.

Failure handling: if a batch fails, each report is retried alone, so one bad row costs
only its own request; a report that fails alone, or that the service refused (a key taken
by a different or unfinished request, a logged-in citizen whose account is no longer
active), is answered ``Outcome.django()``: the caller hands it to the view, which renders
the canonical answer (401/409/422, or 500 with the database down). The queue is bounded:
past ``max_queue`` waiting reports the caller spills to the view as well. :meth:`close`
drains the queue before the threads go.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from asgiref.sync import sync_to_async
from django.db import connection

from apps.incidents.api.reports import report_created_body
from apps.incidents.intake.parse import Submission
from apps.incidents.models import Report
from apps.incidents.services.reports import ReportDraft, Submitted, reports_submit_many

logger = logging.getLogger(__name__)

VIA = "fast path"  # in the report service's log line: which path wrote a batch


@dataclass(frozen=True)
class Outcome:
    """What to answer: a stored/created JSON body with its status, or "ask Django"."""

    status: int
    body: dict[str, Any] | None = None
    replayed: bool = False

    @classmethod
    def django(cls) -> Outcome:
        return cls(0)

    @property
    def to_django(self) -> bool:
        return self.status == 0


@dataclass
class Stats:
    """Per-process counters (logged at shutdown, read by the tests and the bench)."""

    batches: int = 0
    reports: int = 0
    largest: int = 0
    fallbacks: int = 0  # batches retried report by report
    to_django: int = 0  # reports handed to the view by the writer
    spilled: int = 0  # reports handed to the view because the queue was full


@dataclass
class _Waiting:
    submission: Submission
    future: asyncio.Future[Outcome]
    queued_at: float


def commit_batch(batch: list[Submission]) -> list[Outcome]:
    """Write ``batch`` through the report service in one transaction (in a writer
    thread); the outcomes once it has committed. Its database connection goes back to
    the pool afterwards, as at the end of a request."""
    bodies: dict[int, dict[str, Any]] = {}
    urls = {id(s.draft): s.tracking_url for s in batch}

    def answer(report: Report, draft: ReportDraft) -> dict[str, Any]:
        body = bodies.get(id(draft))
        if body is None:
            body = bodies[id(draft)] = report_created_body(report, urls[id(draft)])
        return body

    try:
        results = reports_submit_many([s.draft for s in batch], answer=answer, via=VIA)
    finally:
        connection.close()
    return [_outcome(result, answer) for result in results]


def _outcome(result: Submitted, answer: Any) -> Outcome:
    if result.report is not None:
        return Outcome(201, answer(result.report, result.draft))
    if result.replay is not None:
        return Outcome(result.replay.status, result.replay.body, replayed=True)
    return Outcome.django()  # refused: the view says why, in the canonical words


@dataclass
class GroupCommitter:
    max_batch: int = 64
    max_wait_s: float = 0.005
    max_queue: int = 4096
    threads: int = 2  # transactions in flight at once
    stats: Stats = field(default_factory=Stats)
    queue: list[_Waiting] = field(default_factory=list)
    checking: int = 0  # requests of this process between arrival and submit()
    _executor: ThreadPoolExecutor | None = None
    _wake: asyncio.Event | None = None
    _task: asyncio.Task[None] | None = None
    _closing: bool = False

    # --- requests ---------------------------------------------------------------------

    def arrive(self) -> None:
        self.checking += 1

    def leave(self) -> None:
        self.checking -= 1
        if self.checking <= 0 and self._wake is not None:
            self._wake.set()

    async def submit(self, submission: Submission) -> Outcome:
        if self._closing or len(self.queue) >= self.max_queue:
            self.stats.spilled += 1
            return Outcome.django()
        if self._task is None or self._task.done():
            self._start()
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self.queue.append(_Waiting(submission, future, time.perf_counter()))
        if self._wake is not None:
            self._wake.set()
        return await future

    async def close(self) -> None:
        """Stop taking reports, answer every waiting one, stop the threads."""
        self._closing = True
        if self._wake is not None:
            self._wake.set()
        if self._task is not None:
            while self.queue and not self._task.done():
                await asyncio.sleep(0.001)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for waiting in self.queue:  # the writer died: the view answers these
            if not waiting.future.done():
                waiting.future.set_result(Outcome.django())
        self.queue.clear()
        if self._executor is not None:
            executor, self._executor = self._executor, None
            await asyncio.get_running_loop().run_in_executor(
                None, lambda: executor.shutdown(wait=True)
            )
        logger.info("intake writer closed: %s", self.stats)

    # --- the writer ---------------------------------------------------------------------

    def _start(self) -> None:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(
                max_workers=self.threads, thread_name_prefix="intake-writer"
            )
        self._wake = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name="intake-writer")

    def _ready(self) -> bool:
        return bool(self.queue) and (
            self._closing
            or len(self.queue) >= self.max_batch
            or self.checking <= 0
            or time.perf_counter() - self.queue[0].queued_at >= self.max_wait_s
        )

    async def _run(self) -> None:
        """Take batches while a thread is free; up to ``threads`` in flight."""
        wake = self._wake or asyncio.Event()
        slots = asyncio.Semaphore(self.threads)
        flushing: set[asyncio.Task[None]] = set()
        try:
            while True:
                while not self._ready():
                    wake.clear()
                    timeout = None
                    if self.queue:
                        age = time.perf_counter() - self.queue[0].queued_at
                        timeout = max(self.max_wait_s - age, 0.0)
                    try:
                        async with asyncio.timeout(timeout):
                            await wake.wait()
                    except TimeoutError:
                        pass
                await slots.acquire()
                batch, self.queue[: self.max_batch] = self.queue[: self.max_batch], []
                if not batch:  # taken meanwhile (close)
                    slots.release()
                    continue
                task = asyncio.create_task(self._answer(batch, slots))
                flushing.add(task)
                task.add_done_callback(flushing.discard)
        finally:
            if flushing:  # cancelled (close): let in-flight batches answer first
                await asyncio.gather(*flushing, return_exceptions=True)

    async def _answer(self, batch: list[_Waiting], slots: asyncio.Semaphore) -> None:
        try:
            try:
                outcomes = await self._flush([w.submission for w in batch])
            except Exception:
                # Never leave a request waiting: the view answers (and retries the work).
                logger.exception("intake writer: batch of %d failed", len(batch))
                outcomes = [Outcome.django()] * len(batch)
        finally:
            slots.release()
        for waiting, outcome in zip(batch, outcomes, strict=True):
            if outcome.to_django:
                self.stats.to_django += 1
            if not waiting.future.done():  # the client may have gone away
                waiting.future.set_result(outcome)

    async def _flush(self, batch: list[Submission]) -> list[Outcome]:
        self.stats.batches += 1
        self.stats.reports += len(batch)
        self.stats.largest = max(self.stats.largest, len(batch))
        try:
            return await self._commit(batch)
        except Exception as exc:
            logger.warning("intake writer: batch of %d failed (%r), one by one", len(batch), exc)
            self.stats.fallbacks += 1
            outcomes: list[Outcome] = []
            for submission in batch:
                try:
                    outcomes += await self._commit([submission])
                except Exception as row_exc:
                    logger.warning("intake writer: report failed alone (%r)", row_exc)
                    outcomes.append(Outcome.django())
            return outcomes

    async def _commit(self, batch: list[Submission]) -> list[Outcome]:
        # sync_to_async on our own threads: the ORM may not run on the event loop, and
        # an on-commit publish to an in-process channel layer finds this loop again.
        run = sync_to_async(commit_batch, thread_sensitive=False, executor=self._executor)
        return await run(batch)
