# Pending: move to tests/forecasting/ once forecasting/bayes.py exists (it tests services/bayesian.py with the real model).
"""The Bayesian model in the app: refits serialised by the schedule, runs recorded, aggregates named by their run."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from forecasting import bayes, services
from forecasting.models import AggregateSnapshot, ModelRun, ModelSchedule, Question
from tests.factories import QuestionFactory, UserFactory

pytestmark = pytest.mark.django_db


def resolved_history(editor, n_questions=12, skilled=None, unskilled=None):
    """Questions where one forecaster is right and another is a coin flip."""
    skilled = skilled or UserFactory(username="sharp")
    unskilled = unskilled or UserFactory(username="noisy")
    start = timezone.now() - dt.timedelta(days=60)
    for i in range(n_questions):
        yes = i % 2 == 0
        q = QuestionFactory(opens_at=start, closes_at=timezone.now() + dt.timedelta(days=1))
        services.prediction_create(
            question=q, forecaster=skilled, probability=Decimal("0.85" if yes else "0.15"),
            now=start + dt.timedelta(days=i + 1),
        )
        services.prediction_create(
            question=q, forecaster=unskilled, probability=Decimal("0.3" if yes else "0.7"),
            now=start + dt.timedelta(days=i + 1, hours=1),
        )
        services.question_resolve(question=q, actor=editor, outcome="yes" if yes else "no")
    return skilled, unskilled


@pytest.fixture
def fitted(editor, settings):
    settings.BAYES_FIT_METHOD = "map"
    skilled, unskilled = resolved_history(editor)
    services.bayes_refit_request(reason="test")
    run = services.bayes_refit_run(task_id="t1")
    return run, skilled, unskilled


def test_refit_records_a_successful_run_with_its_data_and_diagnostics(fitted):
    run, _, _ = fitted
    assert run.status == ModelRun.Status.SUCCEEDED, run.error
    assert (run.n_questions, run.n_forecasters, run.n_forecasts) == (12, 2, 24)
    assert run.duration_seconds > 0 and run.finished_at and run.progress == 1.0
    assert run.diagnostics and run.fit
    assert services.bayes_run_in_use() == run
    assert ModelSchedule.objects.get().running is None


def test_open_question_gets_the_bayesian_aggregate_naming_its_run(fitted):
    run, skilled, unskilled = fitted
    question = QuestionFactory()
    services.prediction_create(question=question, forecaster=skilled, probability=Decimal("0.8"))
    services.prediction_create(question=question, forecaster=unskilled, probability=Decimal("0.3"))
    snapshot = services.bayes_aggregate_update(question_id=question.pk)
    assert snapshot.model_run == run and snapshot.method == "bayes"
    assert snapshot.low < snapshot.probability_yes < snapshot.high
    # It learnt who to trust: the skilled forecaster's side wins over a plain average.
    assert snapshot.probability_yes > 0.55
    assert question.aggregate_state.bayes_pending is False


def test_nothing_to_do_when_the_newest_run_includes_every_request(fitted):
    assert services.bayes_refit_run(task_id="t2") is None
    assert ModelRun.objects.count() == 1


def test_a_second_fit_never_runs_while_one_holds_the_lease(fitted):
    schedule = ModelSchedule.objects.get()
    running = ModelRun.objects.create(method="map", task_id="other")
    schedule.running, schedule.running_task_id = running, "other"
    schedule.lease_expires_at = timezone.now() + dt.timedelta(minutes=5)
    schedule.requested_at = timezone.now()
    schedule.save()
    assert services.bayes_refit_run(task_id="t3") is None
    assert ModelRun.objects.filter(status=ModelRun.Status.RUNNING).count() == 1


def test_redelivered_task_of_a_dead_worker_takes_over_and_the_old_run_is_marked_failed(fitted):
    previous_good, _, _ = fitted
    schedule = ModelSchedule.objects.get()
    dead = ModelRun.objects.create(method="map", task_id="dead-task")
    schedule.running, schedule.running_task_id = dead, "dead-task"
    schedule.lease_expires_at = timezone.now() + dt.timedelta(minutes=5)
    schedule.requested_at = timezone.now()
    schedule.save()
    assert services.bayes_run_in_use() == previous_good  # still in use while the fit is "running"
    run = services.bayes_refit_run(task_id="dead-task")  # acks_late redelivers with the same id
    dead.refresh_from_db()
    assert dead.status == ModelRun.Status.FAILED and "stopped" in dead.error
    assert run.status == ModelRun.Status.SUCCEEDED and services.bayes_run_in_use() == run


def test_bad_diagnostics_mark_the_run_failed_and_keep_the_last_good_one(fitted, monkeypatch, settings):
    good, _, _ = fitted
    real_fit = bayes.fit

    def unconverged(data, **kwargs):
        result = real_fit(data, **kwargs)
        result.diagnostics = {**result.diagnostics, "max_rhat": 1.5, "min_ess": 12, "divergences": 40}
        return result

    monkeypatch.setattr(bayes, "fit", unconverged)
    settings.BAYES_FIT_METHOD = "nuts"
    monkeypatch.setattr(services.bayesian, "_diagnostics_ok", lambda method, d: (False, "max r_hat 1.5 > 1.05"))
    ModelSchedule.objects.update(requested_at=timezone.now())
    bad = services.bayes_refit_run(task_id="t4", method="map")
    assert bad.status == ModelRun.Status.FAILED and "r_hat" in bad.error
    assert services.bayes_run_in_use() == good


def test_a_burst_of_resolutions_gives_one_refit(editor, settings, django_capture_on_commit_callbacks):
    settings.BAYES_AUTO_REFIT = True
    settings.BAYES_FIT_METHOD = "map"
    skilled, unskilled = UserFactory.create_batch(2)
    questions = []
    for _ in range(3):
        q = QuestionFactory()
        services.prediction_create(question=q, forecaster=skilled, probability=Decimal("0.7"))
        services.prediction_create(question=q, forecaster=unskilled, probability=Decimal("0.4"))
        questions.append(q)
    with django_capture_on_commit_callbacks(execute=True):
        for q in questions:
            services.question_resolve(question=q, actor=editor, outcome="yes")
    assert ModelRun.objects.count() == 1
    assert ModelRun.objects.get().status == ModelRun.Status.SUCCEEDED


def test_new_forecasts_are_debounced_into_one_update(fitted, django_capture_on_commit_callbacks):
    run, skilled, unskilled = fitted
    question = QuestionFactory()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.prediction_create(question=question, forecaster=skilled, probability=Decimal("0.6"))
        services.prediction_create(question=question, forecaster=unskilled, probability=Decimal("0.5"))
    assert len(callbacks) == 1  # the second forecast found an update already queued
    callbacks[0]()
    assert AggregateSnapshot.objects.filter(question=question, method="bayes").count() == 1


def test_refit_refreshes_every_open_question(fitted, editor):
    run, skilled, _ = fitted
    open_question = QuestionFactory()
    services.prediction_create(question=open_question, forecaster=skilled, probability=Decimal("0.6"))
    ModelSchedule.objects.update(requested_at=timezone.now())
    again = services.bayes_refit_run(task_id="t5")
    latest = AggregateSnapshot.objects.filter(question=open_question, method="bayes").latest("id")
    assert latest.model_run == again != run
    assert Question.objects.get(pk=open_question.pk).status == "open"
