"""The project's Celery app: configured from Django settings, with room for a worker process to warm up."""

from webapp.celery import app


def test_a_worker_waits_long_enough_for_a_process_that_warms_up(settings):
    assert app.conf.worker_proc_alive_timeout >= 60  # Celery's default of 4 s would kill it
