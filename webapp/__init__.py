"""The Django project: settings, URLs, the Celery app, templates and the web views."""

from .celery import app as celery_app

__all__ = ("celery_app",)
