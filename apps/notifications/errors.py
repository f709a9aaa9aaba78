"""Error codes of the notifications app (conventions R8). Stable API: add, never rename."""

from __future__ import annotations

from enum import StrEnum


class NotificationsErrorCode(StrEnum):
    NOTIFICATION_NOT_FOUND = "notification_not_found"  # unknown, or not addressed to me
    # Task pushes are acknowledged on the task (it also stamps the delivery KPI).
    ACK_ON_TASK = "ack_on_task"  # extra: {task_id}
