"""The Celery application.

Configuration comes from Django settings under the ``CELERY_`` namespace, so the broker is
whatever ``CELERY_BROKER_URL`` says: the embedded filesystem broker in the demo, Redis in
production and CI.

Each worker process warms the Bayesian model up when it starts (``worker_process_init``):
compiling its pytensor graphs takes seconds to tens of seconds, which the first refit after a
resolution would otherwise pay. The prefork pool waits for a new process to report in before
giving it work, for ``CELERY_WORKER_PROC_ALIVE_TIMEOUT`` seconds (raised in the settings for
this). A failed warm-up is logged and the worker carries on: the first fit compiles instead.
"""

import logging
import os

from celery import Celery
from celery.signals import worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")

logger = logging.getLogger(__name__)

app = Celery("webapp")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_process_init.connect
def warm_up_bayes(**_kwargs) -> None:
    """Compile the Bayesian model's fit in this worker process (and the NUTS sampler's when it is used)."""
    from django.conf import settings

    if not getattr(settings, "BAYES_WORKER_WARM_UP", True):
        return
    try:
        from forecasting import bayes

        logger.info("Bayesian model warm-up (MAP) took %.1f s", bayes.warm_up())
        if settings.BAYES_FIT_METHOD == "nuts":
            from forecasting import bayes_sampling

            if hasattr(bayes_sampling, "warm_up"):
                logger.info("Bayesian model warm-up (NUTS) took %.1f s", bayes_sampling.warm_up())
    except Exception:  # the worker must start anyway: the first fit compiles instead
        logger.exception("Bayesian model warm-up failed; the first refit will compile the model")
