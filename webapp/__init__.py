"""The Django project shell: settings, root URLs, the Celery app, the base and login templates and
the shared stylesheet. The pages themselves live in the apps (forecasting/views, market/views.py)."""

from .celery import app as celery_app

__all__ = ("celery_app",)
