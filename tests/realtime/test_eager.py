"""eager.start: a coroutine runs in the caller up to its first suspension, the rest as a task."""

from __future__ import annotations

import asyncio

import pytest

from apps.realtime import eager


async def test_a_coroutine_that_never_suspends_is_done_when_start_returns() -> None:
    # given
    done: list[str] = []

    async def quick() -> None:
        done.append("ran")

    # when
    task = eager.start(quick())
    # then: no task, and it already ran (no loop iteration in between)
    assert task is None
    assert done == ["ran"]


async def test_a_coroutine_that_suspends_runs_its_start_now_and_the_rest_as_a_task() -> None:
    # given
    gate: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    steps: list[str] = []

    async def waits() -> str:
        steps.append("before")
        value = await gate
        steps.append(f"after {value}")
        return "result"

    # when
    task = eager.start(waits())
    # then
    assert steps == ["before"]
    assert task is not None
    gate.set_result("opened")
    assert await task == "result"
    assert steps == ["before", "after opened"]


async def test_an_error_before_the_first_suspension_reaches_the_caller() -> None:
    async def fails() -> None:
        raise ValueError("at once")

    with pytest.raises(ValueError, match="at once"):
        eager.start(fails())


async def test_an_error_after_a_suspension_ends_the_task_with_it() -> None:
    async def fails_later() -> None:
        await asyncio.sleep(0)
        raise ValueError("later")

    task = eager.start(fails_later())
    assert task is not None
    with pytest.raises(ValueError, match="later"):
        await task


async def test_cancelling_the_task_cancels_the_coroutine_where_it_waits() -> None:
    # given: a started coroutine waiting on a future that never completes
    cleaned: list[str] = []
    never: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def waits_forever() -> None:
        try:
            await never
        finally:
            cleaned.append("finally")

    task = eager.start(waits_forever())
    assert task is not None
    await asyncio.sleep(0)
    # when
    task.cancel()
    # then
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cleaned == ["finally"]
    assert never.cancelled()


async def test_a_lock_taken_eagerly_is_queued_for_in_order() -> None:
    # given: a lock held elsewhere, then three eager starts that each need it
    lock = asyncio.Lock()
    order: list[int] = []
    await lock.acquire()

    async def take(n: int) -> None:
        async with lock:
            order.append(n)

    tasks = [eager.start(take(n)) for n in range(3)]
    # when the holder lets go
    lock.release()
    await asyncio.gather(*(task for task in tasks if task is not None))
    # then: first come, first served (what the consumer's live events rely on)
    assert order == [0, 1, 2]
