"""The project's Celery app: configured from Django settings, with room for a worker process to warm up."""

from webapp.celery import app


def test_a_worker_waits_long_enough_for_a_process_that_warms_up(settings):
    assert app.conf.worker_proc_alive_timeout >= 60  # Celery's default of 4 s would kill it


def _queue_in_fresh_process(task_name: str, **env: str) -> str:
    """The queue Celery's router picks for a task, with the settings read from ``env`` in a new process."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import django; django.setup()\n"
        "from webapp.celery import app\n"
        f"print(app.amqp.router.route({{}}, {task_name!r})['queue'].name)\n"
    )
    root = Path(__file__).resolve().parents[2]
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CELERY_")}
    environment |= {"DJANGO_SETTINGS_MODULE": "webapp.settings", **env}
    result = subprocess.run([sys.executable, "-c", code], cwd=root, env=environment, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_refits_go_to_the_heavy_queue_and_per_forecast_work_stays_on_the_default_one():
    heavy = {"CELERY_HEAVY_QUEUE": "heavy"}
    assert _queue_in_fresh_process("forecasting.tasks.refit_bayes", **heavy) == "heavy"
    assert _queue_in_fresh_process("forecasting.tasks.refit_aggregators", **heavy) == "heavy"
    assert _queue_in_fresh_process("forecasting.tasks.score_question", **heavy) == "celery"
    assert _queue_in_fresh_process("notifications.tasks.notify_question_resolved", **heavy) == "celery"


def test_with_no_heavy_queue_set_a_single_worker_runs_everything():
    assert _queue_in_fresh_process("forecasting.tasks.refit_bayes") == "celery"
    assert _queue_in_fresh_process("forecasting.tasks.refit_bayes", CELERY_TASK_DEFAULT_QUEUE="mine") == "mine"
