"""The Celery application.

Configuration comes from Django settings under the ``CELERY_`` namespace, so the broker is
whatever ``CELERY_BROKER_URL`` says: the embedded filesystem broker in the demo, Redis in
production and CI. The tasks, and the worker's warm-up of the Bayesian model, live in the apps
(``forecasting/tasks.py``), found by ``autodiscover_tasks``.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")

app = Celery("webapp")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
