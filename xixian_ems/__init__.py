"""Project package: wiring only (settings, URLs, ASGI/WSGI, Celery). No models live here."""

from xixian_ems.celery import app as celery_app

__all__ = ("celery_app",)
