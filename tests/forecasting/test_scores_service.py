"""Stored scores: the scored period, early resolution, manual close, re-resolution, the recompute command."""

import datetime as dt
import math
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from forecasting import services
from forecasting.models import Prediction, Question, QuestionEvent, Resolution, Score
from tests.factories import PredictionFactory, QuestionFactory, UserFactory

pytestmark = pytest.mark.django_db

DAY = dt.timedelta(days=1)


def ten_day_question_on_day_five(a_probability="0.8", b_probability="0.5"):
    """A 10-day yes/no question, now being day 5; A and B forecast from day 0."""
    start = timezone.now() - 5 * DAY
    question = QuestionFactory(opens_at=start, closes_at=start + 10 * DAY)
    a, b = UserFactory.create_batch(2)
    PredictionFactory(question=question, forecaster=a, probability=Decimal(a_probability), made_at=start)
    PredictionFactory(question=question, forecaster=b, probability=Decimal(b_probability), made_at=start)
    return question, a, b


def time_averaged(question, user, kind) -> tuple[float, float]:
    row = Score.objects.get(question=question, forecaster=user, kind=kind, method=Score.Method.TIME_AVERAGED)
    return float(row.value), float(row.coverage)


def stored_rows(question):
    return sorted(
        Score.objects.filter(question=question).values_list(
            "forecaster_id", "kind", "method", "value", "coverage", "prediction_id"
        )
    )


def shift_history(question, delta: dt.timedelta) -> None:
    """Pretend ``delta`` has passed: move every stored time of the question back by it."""
    Question.objects.filter(pk=question.pk).update(
        opens_at=question.opens_at - delta, closes_at=question.closes_at - delta
    )
    for model, field in ((Prediction, "made_at"), (Resolution, "resolved_at"), (QuestionEvent, "created_at")):
        for row in model.objects.filter(question=question):
            model.objects.filter(pk=row.pk).update(**{field: getattr(row, field) - delta})
    question.refresh_from_db()


class TestEarlyResolution:
    def test_scored_period_runs_to_the_scheduled_close_and_counts_zero_after_an_early_resolution(
        self, editor, django_capture_on_commit_callbacks
    ):
        # The example: a 10-day question resolved YES on day 5, A at 80% and B at 50% from day 0.
        question, a, b = ten_day_question_on_day_five()
        with django_capture_on_commit_callbacks(execute=True):
            services.question_resolve(question=question, actor=editor, outcome="yes")

        # Hand-computed: baseline 100 (log2 p + 1) for the 5 days the forecast stood, 0 for the other 5.
        a_baseline = (5 * 100 * (math.log2(0.8) + 1) + 5 * 0.0) / 10
        assert a_baseline == pytest.approx(33.90, abs=0.005)
        assert time_averaged(question, a, "baseline")[0] == pytest.approx(a_baseline, abs=1e-3)
        assert time_averaged(question, b, "baseline")[0] == pytest.approx(0.0, abs=1e-3)
        # peer: 100 ln(0.8 / 0.5) for 5 of 10 days, and B the opposite
        a_peer = 5 * 100 * math.log(0.8 / 0.5) / 10
        assert time_averaged(question, a, "peer")[0] == pytest.approx(a_peer, abs=1e-3)
        assert time_averaged(question, b, "peer")[0] == pytest.approx(-a_peer, abs=1e-3)
        assert time_averaged(question, a, "baseline")[1] == pytest.approx(0.5, abs=1e-4)  # coverage
        # Brier and log: the forecast's score while it stood, the uniform forecast's after the early end.
        assert time_averaged(question, a, "brier")[0] == pytest.approx((5 * 0.2**2 + 5 * 0.5**2) / 10, abs=1e-5)
        assert time_averaged(question, a, "log")[0] == pytest.approx(
            (5 * math.log(0.8) + 5 * math.log(0.5)) / 10, abs=1e-5
        )

    def test_a_manual_close_ends_the_forecasts_but_not_the_period(self, editor, django_capture_on_commit_callbacks):
        question, a, _ = ten_day_question_on_day_five()
        services.question_close(question=question, actor=editor)
        shift_history(question, 2 * DAY)  # closed on day 5, resolved on day 7 (still before the close)
        with django_capture_on_commit_callbacks(execute=True):
            services.question_resolve(question=question, actor=editor, outcome="yes")
        value, coverage = time_averaged(question, a, "baseline")
        assert coverage == pytest.approx(0.5, abs=1e-4)
        assert value == pytest.approx(5 * 100 * (math.log2(0.8) + 1) / 10, abs=1e-3)

    def test_forecasts_made_before_the_question_opened_stand_from_the_opening(self, editor):
        start = timezone.now() - 20 * DAY
        question = QuestionFactory(opens_at=start, closes_at=start + 10 * DAY)
        a, b = UserFactory.create_batch(2)
        PredictionFactory(question=question, forecaster=a, probability=Decimal("0.8"), made_at=start - 10 * DAY)
        PredictionFactory(question=question, forecaster=b, probability=Decimal("0.5"), made_at=start)
        Resolution.objects.create(question=question, outcome="yes", resolved_by=editor)
        Question.objects.filter(pk=question.pk).update(status=Question.Status.RESOLVED)
        services.question_scores_recompute(question_id=question.pk)
        value, coverage = time_averaged(question, a, "baseline")
        assert coverage == pytest.approx(1.0)
        assert value == pytest.approx(100 * (math.log2(0.8) + 1), abs=1e-4)
        assert time_averaged(question, b, "baseline")[1] == pytest.approx(1.0)  # the period did not grow


class TestReResolution:
    def test_un_resolving_and_re_resolving_with_the_same_outcome_reproduces_every_row(
        self, editor, django_capture_on_commit_callbacks
    ):
        question, a, _ = ten_day_question_on_day_five()
        c = UserFactory()
        PredictionFactory(question=question, forecaster=c, probability=Decimal("0.3"), made_at=timezone.now() - DAY)
        PredictionFactory(question=question, forecaster=a, probability=Decimal("0.9"), made_at=timezone.now() - DAY)
        with django_capture_on_commit_callbacks(execute=True):
            services.question_resolve(question=question, actor=editor, outcome="yes")
        first = stored_rows(question)
        assert len(first) == 3 * 8

        shift_history(question, DAY)  # a day passes
        with django_capture_on_commit_callbacks(execute=True):
            services.question_unresolve(question=question, actor=editor)
        assert not Score.objects.filter(question=question).exists()
        shift_history(question, DAY)  # and another before the editor resolves it again
        with django_capture_on_commit_callbacks(execute=True):
            services.question_resolve(question=question, actor=editor, outcome="yes")

        assert stored_rows(question) == first

    def test_bulk_recompute_agrees_with_the_single_one(self, editor, django_capture_on_commit_callbacks):
        question, _, _ = ten_day_question_on_day_five()
        services.question_close(question=question, actor=editor)
        shift_history(question, DAY)
        with django_capture_on_commit_callbacks(execute=True):
            services.question_resolve(question=question, actor=editor, outcome="no")
        single = stored_rows(question)
        services.question_scores_recompute_many(question_ids=[question.pk])
        assert stored_rows(question) == single

    def test_recompute_command_is_idempotent_and_repairs_stored_rows(self, editor, django_capture_on_commit_callbacks):
        question, a, _ = ten_day_question_on_day_five()
        with django_capture_on_commit_callbacks(execute=True):
            services.question_resolve(question=question, actor=editor, outcome="yes")
        expected = stored_rows(question)
        # rows left by the old rule (or tampered with): the command puts them right
        Score.objects.filter(question=question, forecaster=a, kind="baseline").update(value=Decimal("67.807190"))
        out = StringIO()
        call_command("scores_recompute", "--question", str(question.pk), stdout=out)
        assert stored_rows(question) == expected
        call_command("scores_recompute", stdout=out)
        assert stored_rows(question) == expected
        assert "16 score rows" in out.getvalue()

    def test_recompute_command_rejects_an_unknown_question(self):
        from django.core.management.base import CommandError

        with pytest.raises(CommandError, match="999999"):
            call_command("scores_recompute", "--question", "999999", stdout=StringIO())
