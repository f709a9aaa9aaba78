"""Dispatch-task routes (operators, responders, incident room, command post)."""

from __future__ import annotations

from django.urls import path

from apps.dispatch.api import tasks as views

urlpatterns = [
    # Operators
    path(
        "incidents/<int:incident_id>/dispatch/",
        views.IncidentDispatchApi.as_view(),
        name="incident-dispatch",
    ),
    path(
        "incidents/<int:incident_id>/tasks/",
        views.IncidentTasksApi.as_view(),
        name="incident-tasks",
    ),
    path("tasks/<int:task_id>/cancel/", views.TaskCancelApi.as_view(), name="task-cancel"),
    path("tasks/<int:task_id>/reassign/", views.TaskReassignApi.as_view(), name="task-reassign"),
    path(
        "tasks/<int:task_id>/instructions/",
        views.TaskInstructionsApi.as_view(),
        name="task-instructions",
    ),
    path("tasks/<int:task_id>/verify/", views.TaskVerifyApi.as_view(), name="task-verify"),
    path("tasks/<int:task_id>/return/", views.TaskReturnApi.as_view(), name="task-return"),
    # Responders
    path("me/tasks/", views.MyTasksApi.as_view(), name="me-tasks"),
    path("me/tasks/current/", views.MyCurrentTasksApi.as_view(), name="me-tasks-current"),
    path("tasks/<int:task_id>/", views.TaskDetailApi.as_view(), name="task"),
    path("tasks/<int:task_id>/accept/", views.TaskAcceptApi.as_view(), name="task-accept"),
    path("tasks/<int:task_id>/decline/", views.TaskDeclineApi.as_view(), name="task-decline"),
    path("tasks/<int:task_id>/en-route/", views.TaskEnRouteApi.as_view(), name="task-en-route"),
    path("tasks/<int:task_id>/on-scene/", views.TaskOnSceneApi.as_view(), name="task-on-scene"),
    path("tasks/<int:task_id>/complete/", views.TaskCompleteApi.as_view(), name="task-complete"),
    path("tasks/<int:task_id>/ack/", views.TaskAckApi.as_view(), name="task-ack"),
    # The receipt of the task push (the app calls it on arrival; same view as ack/).
    path(
        "responder/tasks/<int:task_id>/delivered/",
        views.TaskAckApi.as_view(),
        name="responder-task-delivered",
    ),
    # Incident room (会商) and on-site command post (现场指挥部)
    path(
        "incidents/<int:incident_id>/room/", views.IncidentRoomApi.as_view(), name="incident-room"
    ),
    path(
        "incidents/<int:incident_id>/command-post/",
        views.CommandPostApi.as_view(),
        name="incident-command-post",
    ),
    path(
        "incidents/<int:incident_id>/command-post/close/",
        views.CommandPostCloseApi.as_view(),
        name="incident-command-post-close",
    ),
    path(
        "incidents/<int:incident_id>/command-post/members/",
        views.CommandPostMembersApi.as_view(),
        name="incident-command-post-members",
    ),
]
