"""The background tasks that recompute from the database retry when the database drops (``OperationalError``):
five retries after the first try, with the same arguments, and then the error. Other errors and the beat's
own tasks are not retried (the next beat runs them again). Tasks run eagerly here (tests/conftest.py), so a
retry runs at once, in the same call."""

import pytest
from django.db import OperationalError

from forecasting import tasks

pytestmark = pytest.mark.django_db


class Flaky:
    """Stands in for a service: raises ``error`` on the first ``failures`` calls, then returns ``value``."""

    def __init__(self, failures: int, value=None, error: Exception | None = None):
        self.failures, self.value, self.calls = failures, value, []
        self.error = error or OperationalError("server closed the connection unexpectedly")

    def __call__(self, **kwargs):
        self.calls.append(kwargs)
        if len(self.calls) <= self.failures:
            raise self.error
        return self.value


class Run:
    def __init__(self, pk):
        self.pk = pk


RETRIED = [
    # (task, the service it calls, its arguments, what the service returns, what the task returns)
    (tasks.score_question, "question_scores_recompute", [42], 7, 7),
    (tasks.refit_aggregators, "aggregator_fits_refresh", [], [], {}),
    (tasks.update_bayes_aggregate, "bayes_aggregate_update", [42], Run(9), 9),
    (tasks.refit_bayes, "bayes_refit_run", ["map"], Run(3), 3),
]


@pytest.mark.parametrize(("task", "service", "args", "value", "expected"), RETRIED)
def test_a_lost_database_connection_is_retried_until_it_works(monkeypatch, task, service, args, value, expected):
    flaky = Flaky(failures=2, value=value)
    monkeypatch.setattr(tasks.services, service, flaky)
    result = task.apply(args=args)
    assert result.successful() and result.result == expected
    assert len(flaky.calls) == 3 and flaky.calls[0] == flaky.calls[2]  # the same work, asked again


@pytest.mark.parametrize(("task", "service", "args", "value", "expected"), RETRIED)
def test_the_retries_stop_after_five(monkeypatch, task, service, args, value, expected):
    flaky = Flaky(failures=100, value=value)
    monkeypatch.setattr(tasks.services, service, flaky)
    result = task.apply(args=args)
    assert result.failed() and isinstance(result.result, OperationalError)
    assert len(flaky.calls) == 1 + 5


def test_other_errors_are_not_retried(monkeypatch):
    flaky = Flaky(failures=1, value=7, error=ValueError("a bug, not an outage"))
    monkeypatch.setattr(tasks.services, "question_scores_recompute", flaky)
    result = tasks.score_question.apply(args=[42])
    assert result.failed() and isinstance(result.result, ValueError)
    assert len(flaky.calls) == 1


def test_the_beats_tasks_are_not_retried(monkeypatch):
    flaky = Flaky(failures=1, value=[])
    monkeypatch.setattr(tasks.services, "questions_close_due", flaky)
    result = tasks.close_due_questions.apply()
    assert result.failed() and isinstance(result.result, OperationalError)
    assert len(flaky.calls) == 1
