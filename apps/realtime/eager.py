"""Start a coroutine *now*: run it synchronously up to its first real suspension.

A broadcast hands one event to every socket of the process that follows the stream
(``apps.realtime.layers``). Wrapping each hand-over in a task, or queueing it for a task
per socket, costs a task switch per socket, and with 5,000 sockets in a process those
switches were most of a broadcast's CPU (bench/bench_realtime.py). But a live event
almost never waits for anything: the consumer's lock is free and the socket's send
completes at once. :func:`start` therefore steps the coroutine right away, in the caller;
only a coroutine that really suspends (the consumer is busy replaying, or the client
reads too slowly and the transport pushes back) becomes a task, which carries on from
that point exactly as if it had been a task from the start.

This is what Python 3.12's ``asyncio.eager_task_factory`` does, for one call site.
Everything before the first suspension runs in the caller's context and task.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Generator
from typing import Any, TypeVar

T = TypeVar("T")


class _Rest:
    """The rest of a started coroutine, as an awaitable: resumes it each time the task
    running it is woken, and passes what it waits on (a future) up to that task."""

    __slots__ = ("coro", "waiting_on")

    def __init__(self, coro: Coroutine[Any, Any, T], waiting_on: Any) -> None:
        self.coro = coro
        self.waiting_on = waiting_on

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, value = self.coro, self.waiting_on
        self.waiting_on = None
        while True:
            try:
                sent = yield value
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # thrown in by the task, e.g. its cancellation
                try:
                    value = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    value = coro.send(sent)
                except StopIteration as stop:
                    return stop.value


async def _finish(rest: _Rest) -> Any:
    return await rest


def start(coro: Coroutine[Any, Any, T]) -> asyncio.Task[T] | None:
    """Run ``coro`` until it finishes or first suspends. Finished: ``None`` (an exception
    it raised propagates here). Suspended: the task that runs the rest of it."""
    try:
        waiting_on = coro.send(None)
    except StopIteration:
        return None
    return asyncio.ensure_future(_finish(_Rest(coro, waiting_on)))
