"""Citizen report, triage and photo routes, included under ``/api/v1/`` (namespace ``v1``)."""

from __future__ import annotations

from django.urls import path

from apps.incidents.api import attachments, reports, triage

urlpatterns = [
    # citizens
    path("reports/", reports.ReportSubmitApi.as_view(), name="report-submit"),
    path("reports/sos/", reports.ReportSosApi.as_view(), name="report-sos"),
    path("reports/mine/", reports.ReportMineApi.as_view(), name="report-mine"),
    path("reports/track/<str:token>/", reports.ReportTrackApi.as_view(), name="report-track"),
    path(
        "reports/track/<str:token>/rating/",
        reports.ReportTrackRatingApi.as_view(),
        name="report-track-rating",
    ),
    path(
        "reports/track/<str:token>/reopen/",
        reports.ReportTrackReopenApi.as_view(),
        name="report-track-reopen",
    ),
    path("reports/<int:report_id>/", reports.ReportDetailApi.as_view(), name="report-detail"),
    path(
        "reports/<int:report_id>/rating/", reports.ReportRatingApi.as_view(), name="report-rating"
    ),
    path(
        "reports/<int:report_id>/reopen/", reports.ReportReopenApi.as_view(), name="report-reopen"
    ),
    # operators
    path("reports/triage/", triage.TriageQueueApi.as_view(), name="report-triage"),
    path("reports/<int:report_id>/accept/", triage.ReportAcceptApi.as_view(), name="report-accept"),
    path("reports/<int:report_id>/reject/", triage.ReportRejectApi.as_view(), name="report-reject"),
    path(
        "reports/<int:report_id>/duplicate/",
        triage.ReportDuplicateApi.as_view(),
        name="report-duplicate",
    ),
    path(
        "reports/<int:report_id>/duplicates/",
        triage.ReportDuplicatesApi.as_view(),
        name="report-duplicates",
    ),
    # photos
    path(
        "attachments/<int:attachment_id>/",
        attachments.AttachmentDownloadApi.as_view(),
        name="attachment-download",
    ),
    path(
        "attachments/<int:attachment_id>/thumbnail/",
        attachments.AttachmentThumbnailApi.as_view(),
        name="attachment-thumbnail",
    ),
]
