"""The Bayesian model in the app: refits serialised by the schedule, runs recorded, aggregates named by their run.

These fit the real model (``forecasting.bayes``) with ``BAYES_FIT_METHOD = "map"`` (tests/conftest.py).
"""

import datetime as dt
from decimal import Decimal

import numpy as np
import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from forecasting import aggregation, bayes, services, tasks
from forecasting.models import AggregateSnapshot, ModelRun, ModelSchedule, OutboxTask, Question, Resolution
from tests.factories import PredictionFactory, QuestionFactory, UserFactory, multiple_choice_question, resolved_history

pytestmark = pytest.mark.django_db

DAY = 86400.0


@pytest.fixture
def fitted(editor):
    skilled, unskilled = resolved_history(editor)
    services.bayes_refit_request(reason="test")
    run = services.bayes_refit_run(task_id="t1")
    return run, skilled, unskilled


@pytest.fixture
def queued_refits(monkeypatch):
    """Every refit the app queues (``refit_bayes.apply_async`` calls), not run."""
    calls = []
    monkeypatch.setattr(tasks.refit_bayes, "apply_async", lambda *args, **kwargs: calls.append(kwargs))
    return calls


def bayes_snapshots(question):
    return AggregateSnapshot.objects.filter(question=question, method=services.BAYES_METHOD)


# --- training data ---------------------------------------------------------------------------------


def test_training_data_holds_every_forecast_on_resolved_yes_no_questions_up_to_the_close(editor):
    alice, bob = UserFactory.create_batch(2)
    opened = timezone.now() - dt.timedelta(days=20)
    question = QuestionFactory(opens_at=opened, closes_at=opened + dt.timedelta(days=9))
    for forecaster, p, day in ((alice, "0.6", 2), (bob, "0.3", 4), (alice, "0.8", 6)):
        services.prediction_create(
            question=question, forecaster=forecaster, probability=Decimal(p), now=opened + dt.timedelta(days=day)
        )
    services.question_resolve(question=question, actor=editor, outcome="yes")
    resolved_at = opened + dt.timedelta(days=10)
    Resolution.objects.filter(question=question).update(resolved_at=resolved_at)
    PredictionFactory(question=question, forecaster=bob, made_at=resolved_at + dt.timedelta(hours=1))  # too late
    PredictionFactory(question=question, forecaster=bob, made_at=opened + dt.timedelta(days=9.5))  # after the close
    # Left out: an open question, an annulled one, and a multiple-choice one (the model is yes/no only).
    PredictionFactory(question=QuestionFactory(), forecaster=alice)
    annulled = QuestionFactory()
    PredictionFactory(question=annulled, forecaster=alice)
    services.question_annul(question=annulled, actor=editor)
    choice = multiple_choice_question()
    services.prediction_create(question=choice, forecaster=alice, option_probabilities=["0.5", "0.3", "0.2"])
    services.question_resolve(question=choice, actor=editor, outcome="option", option_id=choice.options.first().pk)

    data, data_through = services.bayes_training_data()

    assert data_through == resolved_at
    assert data.n_questions == 1 and data.outcome.tolist() == [1]
    assert data.question_index.tolist() == [0, 0, 0]
    assert data.forecaster_key.tolist() == [alice.pk, bob.pk, alice.pk]
    assert data.probability.tolist() == [0.6, 0.3, 0.8]
    # the clock of an open question's aggregate: the close date, never the resolution (causal)
    assert data.seconds_to_resolution.tolist() == [7 * DAY, 5 * DAY, 3 * DAY]  # close minus forecast
    assert data.life_seconds.tolist() == [9 * DAY]  # close minus opening
    standing = data.standing()  # what the model reads: latest forecasts, the opener and revisions
    assert standing.forecaster_key.tolist() == [bob.pk, alice.pk]
    assert standing.opener.tolist() == [False, True]
    assert standing.revisions.tolist() == [0, 1]


def test_training_data_is_empty_before_any_resolution(db):
    data, data_through = services.bayes_training_data()
    assert (data.n_questions, data.n_forecasts, data_through) == (0, 0, None)


# --- refits ----------------------------------------------------------------------------------------


def test_refit_records_a_successful_run_with_its_data_and_diagnostics(fitted):
    run, _, _ = fitted
    assert run.status == ModelRun.Status.SUCCEEDED, run.error
    assert run.method == "map"
    assert (run.n_questions, run.n_forecasters, run.n_forecasts) == (12, 2, 24)
    assert run.duration_seconds > 0 and run.finished_at and run.progress == 1.0
    assert run.diagnostics["converged"] is True and run.fit
    assert bayes.BayesFit.from_dict(run.fit).n_questions == 12
    assert services.bayes_run_in_use() == run
    assert ModelSchedule.objects.get().running is None


def test_a_fit_on_few_resolved_questions_is_prior_dominated_but_usable(editor):
    """The demo starts with one or two resolved questions: the fit still succeeds and aggregates."""
    alice, bob = UserFactory.create_batch(2)
    resolved = QuestionFactory()
    services.prediction_create(question=resolved, forecaster=alice, probability=Decimal("0.7"))
    services.question_resolve(question=resolved, actor=editor, outcome="yes")
    services.bayes_refit_request(reason="test")
    run = services.bayes_refit_run(task_id="small")
    assert run.status == ModelRun.Status.SUCCEEDED, run.error
    assert (run.n_questions, run.n_forecasters, run.n_forecasts) == (1, 1, 1)
    question = QuestionFactory()
    services.prediction_create(question=question, forecaster=alice, probability=Decimal("0.8"))
    services.prediction_create(question=question, forecaster=bob, probability=Decimal("0.6"))  # a newcomer
    snapshot = services.bayes_aggregate_update(question_id=question.pk)
    assert 0 < snapshot.low < snapshot.probability_yes < snapshot.high < 1


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
    assert ModelRun.objects.filter(status=ModelRun.Status.RUNNING).get() == running


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
    assert ModelSchedule.objects.get().running is None


def test_another_task_takes_over_once_a_dead_workers_lease_has_expired(fitted):
    schedule = ModelSchedule.objects.get()
    dead = ModelRun.objects.create(method="map", task_id="lost-task")
    schedule.running, schedule.running_task_id = dead, "lost-task"
    schedule.lease_expires_at = timezone.now() - dt.timedelta(seconds=1)
    schedule.requested_at = timezone.now()
    schedule.save()
    run = services.bayes_refit_run(task_id="next-task")
    dead.refresh_from_db()
    assert dead.status == ModelRun.Status.FAILED and dead.finished_at is not None
    assert run.task_id == "next-task" and run.status == ModelRun.Status.SUCCEEDED
    assert services.bayes_run_in_use() == run


def test_bad_nuts_diagnostics_mark_the_run_failed_and_keep_the_last_good_one(fitted, monkeypatch):
    good, skilled, _ = fitted
    question = QuestionFactory()
    services.prediction_create(question=question, forecaster=skilled, probability=Decimal("0.6"))
    services.bayes_aggregate_update(question_id=question.pk)
    real_fit = bayes.fit

    def unconverged_sampler(data, *, method, previous=None, **targets):
        assert method == "nuts"
        result = real_fit(data, method="map", previous=previous)  # stands in for a sampler that did not mix
        result.method, result.diagnostics = "nuts", {"max_rhat": 1.5, "min_ess": 12, "divergences": 40}
        return result

    monkeypatch.setattr(bayes, "fit", unconverged_sampler)
    ModelSchedule.objects.update(requested_at=timezone.now())
    bad = services.bayes_refit_run(task_id="t4", method="nuts")
    assert bad.status == ModelRun.Status.FAILED and "r_hat 1.5" in bad.error and "previous run stays" in bad.error
    assert bad.diagnostics["divergences"] == 40
    assert services.bayes_run_in_use() == good
    # The open question keeps the aggregate of the good run.
    assert set(bayes_snapshots(question).values_list("model_run", flat=True)) == {good.pk}


def test_an_optimiser_that_did_not_converge_gives_a_failed_run(fitted, monkeypatch):
    good, _, _ = fitted
    real_fit = bayes.fit

    def stuck(data, **kwargs):
        result = real_fit(data, **kwargs)
        result.diagnostics = {**result.diagnostics, "converged": False, "message": "ABNORMAL"}
        return result

    monkeypatch.setattr(bayes, "fit", stuck)
    ModelSchedule.objects.update(requested_at=timezone.now())
    bad = services.bayes_refit_run(task_id="t5")
    assert bad.status == ModelRun.Status.FAILED and "did not converge: ABNORMAL" in bad.error
    assert services.bayes_run_in_use() == good


def test_a_fit_that_raises_is_recorded_and_frees_the_schedule(fitted, monkeypatch):
    good, _, _ = fitted

    def broken(data, **kwargs):
        raise FloatingPointError("the likelihood is not finite")

    monkeypatch.setattr(bayes, "fit", broken)
    ModelSchedule.objects.update(requested_at=timezone.now())
    bad = services.bayes_refit_run(task_id="t6")
    assert bad.status == ModelRun.Status.FAILED and "not finite" in bad.error and bad.progress == 1.0
    assert services.bayes_run_in_use() == good
    assert ModelSchedule.objects.get().running is None


def test_a_request_during_a_fit_is_served_by_one_more_fit(
    fitted, monkeypatch, queued_refits, django_capture_on_commit_callbacks
):
    real_fit = bayes.fit

    def resolution_arrives_meanwhile(data, **kwargs):
        services.bayes_refit_request(reason="resolved during the fit")
        return real_fit(data, **kwargs)

    monkeypatch.setattr(bayes, "fit", resolution_arrives_meanwhile)
    ModelSchedule.objects.update(requested_at=timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        run = services.bayes_refit_run(task_id="t7")
    assert run.status == ModelRun.Status.SUCCEEDED
    # One queued by the request itself (it finds the lease held and does nothing) and one when the
    # fit ended, because a request came after the one it was serving.
    assert len(queued_refits) == 2
    assert ModelSchedule.objects.get().requested_reason == "resolved during the fit"


def test_refit_refreshes_every_open_question(fitted, django_capture_on_commit_callbacks):
    run, skilled, _ = fitted
    open_question = QuestionFactory()
    services.prediction_create(question=open_question, forecaster=skilled, probability=Decimal("0.6"))
    ModelSchedule.objects.update(requested_at=timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        again = services.bayes_refit_run(task_id="t8")
    latest = bayes_snapshots(open_question).latest("id")
    assert latest.model_run == again != run
    assert Question.objects.get(pk=open_question.pk).status == "open"


def test_refit_task_returns_its_run(fitted):
    ModelSchedule.objects.update(requested_at=timezone.now())
    run_id = tasks.refit_bayes.apply().get()
    assert ModelRun.objects.get(pk=run_id).status == ModelRun.Status.SUCCEEDED
    assert tasks.refit_bayes.apply().get() is None  # nothing new to fit


# --- scheduling from the editor's actions ------------------------------------------------------------


def test_resolving_a_question_schedules_one_debounced_refit(
    question, editor, settings, queued_refits, django_capture_on_commit_callbacks
):
    settings.BAYES_AUTO_REFIT = True
    PredictionFactory(question=question)
    with django_capture_on_commit_callbacks(execute=True):
        services.question_resolve(question=question, actor=editor, outcome="no")
        assert not queued_refits  # only once the resolution is committed
    assert queued_refits == [{"countdown": settings.BAYES_REFIT_DEBOUNCE_SECONDS}]
    assert ModelSchedule.objects.get().requested_reason == f"question {question.pk} resolved"


@pytest.mark.parametrize("action", ["annul", "unresolve"])
def test_annulling_or_unresolving_schedules_a_refit(
    action, question, editor, settings, queued_refits, django_capture_on_commit_callbacks
):
    settings.BAYES_AUTO_REFIT = True
    if action == "unresolve":
        services.question_resolve(question=question, actor=editor, outcome="yes")
        queued_refits.clear()
    with django_capture_on_commit_callbacks(execute=True):
        getattr(services, f"question_{action}")(question=question, actor=editor)
    assert len(queued_refits) == 1
    reason = {"annul": "annulled", "unresolve": "un-resolved"}[action]
    assert ModelSchedule.objects.get().requested_reason == f"question {question.pk} {reason}"


def test_no_refit_is_scheduled_when_automatic_refits_are_off(question, editor, queued_refits):
    services.question_resolve(question=question, actor=editor, outcome="yes")  # conftest: BAYES_AUTO_REFIT off
    assert not queued_refits and not ModelSchedule.objects.exists()


def test_a_burst_of_resolutions_gives_one_refit(editor, settings, django_capture_on_commit_callbacks):
    settings.BAYES_AUTO_REFIT = True
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


def test_resolving_through_the_editor_page_refits_and_the_open_questions_show_the_model(
    editor, settings, django_capture_on_commit_callbacks
):
    """The automatic path end to end (tasks run inline): resolve -> refit -> open question's Bayesian aggregate."""
    settings.BAYES_AUTO_REFIT = True
    alice, bob = UserFactory.create_batch(2)
    resolved, still_open = QuestionFactory(), QuestionFactory()
    for question in (resolved, still_open):
        services.prediction_create(question=question, forecaster=alice, probability=Decimal("0.8"))
        services.prediction_create(question=question, forecaster=bob, probability=Decimal("0.4"))
    assert not bayes_snapshots(still_open).exists()
    client = Client()
    client.force_login(editor)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("question_resolve", args=[resolved.pk]), {"outcome": "yes", "source": "AP"})
    assert response.status_code == 302
    run = ModelRun.objects.get()
    assert run.status == ModelRun.Status.SUCCEEDED and run.reason == f"question {resolved.pk} resolved"
    snapshot = bayes_snapshots(still_open).get()
    assert snapshot.model_run == run and snapshot.low < snapshot.probability_yes < snapshot.high
    assert not bayes_snapshots(resolved).exists()  # resolved questions are not refreshed
    page = Client().get(still_open.get_absolute_url()).content.decode()
    assert "Bayesian model: <strong>" in page and "90% interval" in page
    assert f"Model run #{run.pk} (Point estimate (MAP))" in page


# --- per-question aggregates -----------------------------------------------------------------------


def test_open_question_gets_the_bayesian_aggregate_naming_its_run(fitted):
    run, skilled, unskilled = fitted
    question = QuestionFactory()
    services.prediction_create(question=question, forecaster=skilled, probability=Decimal("0.8"))
    services.prediction_create(question=question, forecaster=unskilled, probability=Decimal("0.3"))
    snapshot = services.bayes_aggregate_update(question_id=question.pk)
    assert snapshot.model_run == run and snapshot.method == "bayes"
    pool = aggregation.logodds_mean([[0.2, 0.8], [0.7, 0.3]])[1]
    assert snapshot.parameters == {
        "model_run": run.pk,
        "method": "map",
        "model_p": pytest.approx(snapshot.parameters["model_p"]),
        "pool_p": pytest.approx(pool, abs=1e-6),
        "market_p": None,
        "stack_weights": [0.0, 1.0, 0.0],
    }
    assert snapshot.forecasters == 2 and snapshot.prediction is None
    assert 0 < snapshot.low < snapshot.probability_yes < snapshot.high < 1
    assert snapshot.probabilities[0] == pytest.approx(1 - snapshot.probability_yes)
    # The model learnt who to trust: the skilled forecaster's side wins over a plain average ...
    assert snapshot.parameters["model_p"] > pool + 0.1
    # ... but no question has yet been shown with the model and resolved: readers see the log-odds mean
    assert snapshot.probability_yes == pytest.approx(pool, abs=1e-6)


def test_the_stack_trusts_the_model_as_far_as_its_shown_record_supports(fitted, editor):
    _, skilled, unskilled = fitted
    assert services.bayes_stack_training()[0].shape == (0, 3)  # no question was shown with the model
    start = timezone.now() - dt.timedelta(days=5)
    for i in range(16):
        yes = i % 2 == 0
        question = QuestionFactory(opens_at=start, closes_at=timezone.now() + dt.timedelta(days=3))
        for who, p in ((skilled, "0.8" if yes else "0.2"), (unskilled, "0.35" if yes else "0.65")):
            services.prediction_create(question=question, forecaster=who, probability=Decimal(p), now=start)
        services.bayes_aggregate_update(question_id=question.pk, now=start + dt.timedelta(hours=1))
        services.question_resolve(question=question, actor=editor, outcome="yes" if yes else "no")
    pairs, outcomes = services.bayes_stack_training()
    assert pairs.shape == (16, 3) and sorted(outcomes.tolist()) == [0.0] * 8 + [1.0] * 8
    assert np.isnan(pairs[:, 2]).all()  # no market on these
    # the model was the sharper, and on the right side
    assert np.all(np.abs(pairs[:, 0] - 0.5) > np.abs(pairs[:, 1] - 0.5))
    assert np.all((pairs[:, 0] > 0.5) == (outcomes == 1))

    services.bayes_refit_request(reason="test")
    second = services.bayes_refit_run(task_id="t2")
    weights = second.fit["stack"]["weights"]
    assert second.fit["stack"]["n_questions"] == 16 and weights[0] > 0.1
    question = QuestionFactory()
    services.prediction_create(question=question, forecaster=skilled, probability=Decimal("0.8"))
    services.prediction_create(question=question, forecaster=unskilled, probability=Decimal("0.35"))
    snapshot = services.bayes_aggregate_update(question_id=question.pk)
    model, pool = snapshot.parameters["model_p"], snapshot.parameters["pool_p"]
    assert pool < snapshot.probability_yes  # moved from the log-odds mean towards the model
    assert snapshot.low < snapshot.probability_yes < snapshot.high
    assert model > pool
    question.aggregate_state.refresh_from_db()
    assert question.aggregate_state.bayes_pending is False


class _AggregateSpy:
    def __init__(self, monkeypatch):
        self.calls = []
        real = bayes.BayesFit.aggregate

        def spy(fit, keys, p_yes, seconds, **kwargs):
            self.calls.append({"keys": list(keys), "p": list(p_yes), "seconds": list(seconds), **kwargs})
            return real(fit, keys, p_yes, seconds, **kwargs)

        monkeypatch.setattr(bayes.BayesFit, "aggregate", spy)


def test_the_aggregate_runs_to_the_close_date_with_the_opener_and_revisions(fitted, monkeypatch):
    _, skilled, unskilled = fitted
    now = timezone.now()
    opened, closes = now - dt.timedelta(days=10), now + dt.timedelta(days=20)
    question = QuestionFactory(opens_at=opened, closes_at=closes)
    services.prediction_create(
        question=question, forecaster=unskilled, probability=Decimal("0.4"), now=now - dt.timedelta(days=8)
    )
    services.prediction_create(
        question=question, forecaster=skilled, probability=Decimal("0.7"), now=now - dt.timedelta(days=6)
    )
    services.prediction_create(
        question=question, forecaster=skilled, probability=Decimal("0.75"), now=now - dt.timedelta(days=2)
    )
    spy = _AggregateSpy(monkeypatch)
    services.bayes_aggregate_update(question_id=question.pk, now=now)
    (call,) = spy.calls
    assert call["keys"] == [unskilled.pk, skilled.pk] and call["p"] == [0.4, 0.75]
    assert call["seconds"] == pytest.approx([28 * DAY, 22 * DAY])  # to the close date
    assert call["life_seconds"] == pytest.approx(30 * DAY)  # opening to close date
    assert call["opener_key"] == unskilled.pk  # made the question's first forecast
    assert call["revisions"] == [0, 1]


def test_a_question_past_its_close_date_keeps_a_useful_interval(fitted, monkeypatch):
    _, skilled, unskilled = fitted
    now = timezone.now()
    question = QuestionFactory(opens_at=now - dt.timedelta(days=30), closes_at=now - dt.timedelta(days=1))
    for forecaster, p, days_ago in ((skilled, "0.8", 10), (unskilled, "0.4", 5)):
        services.prediction_create(
            question=question, forecaster=forecaster, probability=Decimal(p), now=now - dt.timedelta(days=days_ago)
        )
    spy = _AggregateSpy(monkeypatch)
    snapshot = services.bayes_aggregate_update(question_id=question.pk, now=now)
    (call,) = spy.calls
    assert call["seconds"] == pytest.approx([9 * DAY, 4 * DAY])  # still to the close date
    assert snapshot.low < snapshot.probability_yes < snapshot.high
    assert snapshot.high - snapshot.low < 0.5  # not 0-100%: the forecasters' records pin it down
    # Two newcomers with the same forecasts: the model knows less, the interval is wider.
    fit = bayes.BayesFit.from_dict(snapshot.model_run.fit)
    _, low, high = fit.aggregate(["new-a", "new-b"], call["p"], call["seconds"], life_seconds=call["life_seconds"])
    assert snapshot.high - snapshot.low < high - low


def test_multiple_choice_questions_get_the_model_per_option_renormalised(
    fitted, editor, monkeypatch, django_capture_on_commit_callbacks
):
    run, skilled, unskilled = fitted
    question = multiple_choice_question()
    queued = []
    monkeypatch.setattr(tasks.update_bayes_aggregate, "apply_async", lambda *a, **k: queued.append(a))
    with django_capture_on_commit_callbacks(execute=True):
        services.prediction_create(question=question, forecaster=skilled, option_probabilities=["0.7", "0.2", "0.1"])
        services.prediction_create(question=question, forecaster=unskilled, option_probabilities=["0.2", "0.5", "0.3"])
    assert queued == [((question.pk,),)]  # one debounced update, as for a yes/no question
    snapshot = services.bayes_aggregate_update(question_id=question.pk)
    assert snapshot.model_run == run and len(snapshot.probabilities) == 3
    assert sum(snapshot.probabilities) == pytest.approx(1.0, abs=1e-5)
    assert snapshot.low is None and snapshot.high is None
    # the model reads each option as a yes/no question and trusts the skilled forecaster ...
    model = snapshot.parameters["model_p"]
    assert model[0] > snapshot.parameters["pool_p"][0]
    # ... but no question has been shown with the model yet: the stack is the log-odds mean per option
    pools = [
        float(aggregation.logodds_mean([[1 - a, a], [1 - b, b]])[1]) for a, b in ((0.7, 0.2), (0.2, 0.5), (0.1, 0.3))
    ]
    np.testing.assert_allclose(snapshot.probabilities, np.array(pools) / sum(pools), atol=1e-5)
    page = Client().get(question.get_absolute_url()).content.decode()
    first, second, _ = question.options.all()
    assert "Bayesian model: " in page and f"{first.label} <strong>" in page and f"{second.label} <strong>" in page
    # the multiple-choice question is not training data for the yes/no model
    services.question_resolve(question=question, actor=editor, outcome="option", option_id=first.pk)
    assert services.bayes_training_data()[0].n_questions == run.n_questions


def test_no_bayesian_aggregate_before_any_fit(question):
    services.prediction_create(question=question, forecaster=UserFactory(), probability=Decimal("0.6"))
    assert services.bayes_aggregate_update(question_id=question.pk) is None
    assert not bayes_snapshots(question).exists()


def test_new_forecasts_are_debounced_into_one_update(fitted, django_capture_on_commit_callbacks):
    run, skilled, unskilled = fitted
    question = QuestionFactory()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.prediction_create(question=question, forecaster=skilled, probability=Decimal("0.6"))
        services.prediction_create(question=question, forecaster=unskilled, probability=Decimal("0.5"))
    assert len(callbacks) == 1  # the second forecast found an update already queued
    assert not bayes_snapshots(question).exists()  # nothing before the update runs
    callbacks[0]()
    snapshot = bayes_snapshots(question).get()
    assert snapshot.forecasters == 2 and snapshot.model_run == run  # both forecasts folded in
    # Once it has run, the next forecast queues a new update.
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        services.prediction_create(question=question, forecaster=unskilled, probability=Decimal("0.55"))
    assert len(callbacks) == 1 and bayes_snapshots(question).count() == 2


def test_update_task_returns_the_snapshot(fitted):
    _, skilled, _ = fitted
    question = QuestionFactory()
    services.prediction_create(question=question, forecaster=skilled, probability=Decimal("0.6"))
    snapshot_id = tasks.update_bayes_aggregate.apply((question.pk,)).get()
    assert bayes_snapshots(question).get().pk == snapshot_id
    assert np.isfinite(AggregateSnapshot.objects.get(pk=snapshot_id).low)


# --- redelivery, bounded deliveries and short transactions -------------------------------------------


def test_a_redelivered_update_adds_no_duplicate_history_value(fitted):
    _, skilled, unskilled = fitted
    question = QuestionFactory()
    services.prediction_create(question=question, forecaster=skilled, probability=Decimal("0.7"))
    services.prediction_create(question=question, forecaster=unskilled, probability=Decimal("0.4"))
    first = tasks.update_bayes_aggregate.apply((question.pk,)).get()
    again = tasks.update_bayes_aggregate.apply((question.pk,)).get()  # acks_late: the same message twice
    assert again == first and bayes_snapshots(question).count() == 1
    # A new forecast does move the history on.
    services.prediction_create(question=question, forecaster=unskilled, probability=Decimal("0.2"))
    services.bayes_aggregate_update(question_id=question.pk)
    assert bayes_snapshots(question).count() == 2


def test_a_refit_queues_one_short_update_per_open_question_after_it_commits(
    fitted, monkeypatch, django_capture_on_commit_callbacks
):
    _, skilled, _ = fitted
    open_questions = [QuestionFactory() for _ in range(3)]
    for question in open_questions:
        services.prediction_create(question=question, forecaster=skilled, probability=Decimal("0.6"))
    ModelSchedule.objects.update(requested_at=timezone.now())
    before = OutboxTask.objects.order_by("-id").values_list("id", flat=True).first() or 0
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        run = services.bayes_refit_run(task_id="t10")
    # Nothing re-aggregated (no question locked) inside the refit's transaction ...
    assert not AggregateSnapshot.objects.filter(method="bayes", question__in=open_questions).exists()
    queued = OutboxTask.objects.filter(task_name="forecasting.tasks.update_bayes_aggregate", id__gt=before)
    assert sorted(args for (args,) in queued.values_list("args")) == sorted([q.pk] for q in open_questions)
    # ... each question gets its own update task once it has committed.
    locks = []
    real_update = services.bayes_aggregate_update

    def one_question_per_task(*, question_id, **kwargs):
        locks.append(question_id)
        return real_update(question_id=question_id, **kwargs)

    monkeypatch.setattr(services, "bayes_aggregate_update", one_question_per_task)  # what the task calls
    for callback in callbacks:
        callback()
    assert sorted(locks) == sorted(q.pk for q in open_questions)
    for question in open_questions:
        assert bayes_snapshots(question).get().model_run == run


class WorkerKilled(BaseException):
    """What an out-of-memory kill looks like from the task's code: it just stops (no except clause runs)."""


def test_a_fit_that_keeps_killing_its_worker_is_given_up_after_a_few_deliveries(fitted, monkeypatch):
    fits = []

    def out_of_memory(data, **kwargs):
        fits.append(1)
        raise WorkerKilled

    monkeypatch.setattr(bayes, "fit", out_of_memory)
    ModelSchedule.objects.update(requested_at=timezone.now())
    previous_good, _, _ = fitted
    deliveries, result = 0, "never returned"
    while deliveries < 10:  # acks_late + reject_on_worker_lost: the broker redelivers the same task id
        deliveries += 1
        try:
            result = services.bayes_refit_run(task_id="oom-task")
        except WorkerKilled:
            continue
        break  # the task returned: its message is acknowledged, no more deliveries
    assert result is None
    assert len(fits) == services.bayesian.MAX_REFIT_DELIVERIES and deliveries == len(fits) + 1
    gave_up = ModelRun.objects.filter(task_id="oom-task").order_by("-id").first()
    assert gave_up.status == ModelRun.Status.FAILED and "Gave up" in gave_up.error
    assert not ModelRun.objects.filter(status=ModelRun.Status.RUNNING).exists()
    schedule = ModelSchedule.objects.get()
    assert schedule.running is None and schedule.running_task_id == ""
    assert services.bayes_run_in_use() == previous_good


# --- a refit whose task was lost (issue 18: recovered by the sweep, not by the next request) ------------


def test_the_sweep_requeues_a_refit_whose_message_was_lost(editor, queued_refits, django_capture_on_commit_callbacks):
    resolved_history(editor, n_questions=4)
    schedule = ModelSchedule.objects.get_or_create(pk=1)[0]
    schedule.requested_at = timezone.now() - dt.timedelta(minutes=10)  # asked for; its task never came
    schedule.save()
    with django_capture_on_commit_callbacks(execute=True):
        assert services.bayes_refit_sweep() is True
    assert len(queued_refits) == 1
    assert services.bayes_refit_sweep() is False  # one is on its way now: not twice


def test_the_sweep_requeues_a_refit_whose_worker_died_and_whose_redelivery_was_lost(
    fitted, queued_refits, django_capture_on_commit_callbacks
):
    schedule = ModelSchedule.objects.get()
    dead = ModelRun.objects.create(method="map", task_id="killed-task")
    schedule.running, schedule.running_task_id = dead, "killed-task"
    schedule.lease_expires_at = timezone.now() - dt.timedelta(seconds=1)
    schedule.requested_at = timezone.now() - dt.timedelta(minutes=10)
    schedule.save()
    OutboxTask.objects.all().delete()  # the queued refit is long gone with the broker
    with django_capture_on_commit_callbacks(execute=True):
        assert services.bayes_refit_sweep() is True
    assert len(queued_refits) == 1


def test_the_sweep_leaves_a_running_fit_and_a_served_request_alone(fitted, queued_refits):
    OutboxTask.objects.all().delete()
    assert services.bayes_refit_sweep() is False  # the request was served by the fitted run
    schedule = ModelSchedule.objects.get()
    running = ModelRun.objects.create(method="map", task_id="alive")
    schedule.running, schedule.running_task_id = running, "alive"
    schedule.lease_expires_at = timezone.now() + dt.timedelta(minutes=20)
    schedule.requested_at = timezone.now()
    schedule.save()
    assert services.bayes_refit_sweep() is False  # its lease holds: the fit is alive
    assert not queued_refits


def test_a_request_served_by_a_failed_run_is_not_retried_forever(fitted, queued_refits):
    ModelRun.objects.create(method="map", task_id="bad", status=ModelRun.Status.FAILED, error="Bad diagnostics")
    OutboxTask.objects.all().delete()
    assert services.bayes_refit_sweep() is False
