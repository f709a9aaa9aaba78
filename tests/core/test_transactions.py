"""Side effects run only after the surrounding transaction commits, never on rollback."""

from __future__ import annotations

import pytest
from django.db import transaction

from apps.core.transactions import enqueue_on_commit, on_commit

pytestmark = pytest.mark.django_db


class FakeTask:
    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def delay(self, *args: object, **kwargs: object) -> None:
        self.calls.append((args, kwargs))


def test_a_task_is_enqueued_only_once_the_transaction_commits(
    django_capture_on_commit_callbacks,
) -> None:
    task = FakeTask()
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        enqueue_on_commit(task, 7, reason="x")
        assert task.calls == []  # not before commit
    assert task.calls == [((7,), {"reason": "x"})]


def test_a_rolled_back_change_enqueues_nothing(django_capture_on_commit_callbacks) -> None:
    task = FakeTask()

    def change_that_fails() -> None:
        with transaction.atomic():
            enqueue_on_commit(task, 1)
            raise RuntimeError("roll back")

    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
    ):
        change_that_fails()
    assert callbacks == []
    assert task.calls == []


def test_a_failing_side_effect_never_breaks_the_committed_change(
    django_capture_on_commit_callbacks,
) -> None:
    def boom() -> None:
        raise ConnectionError("broker down")

    ran: list[str] = []
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        on_commit(boom)
        on_commit(lambda: ran.append("next"))
    assert ran == ["next"]  # robust: logged, and the following callbacks still run
