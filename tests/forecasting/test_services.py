import datetime as dt
import math
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from forecasting import services
from forecasting.models import Prediction, Question, QuestionEvent, Resolution, Score
from tests.factories import PredictionFactory, QuestionFactory, UserFactory, multiple_choice_question

pytestmark = pytest.mark.django_db


class TestPredictionCreate:
    def test_update_appends_a_row_and_latest_counts(self, question, reader):
        services.prediction_create(question=question, forecaster=reader, probability=Decimal("0.3"))
        services.prediction_create(question=question, forecaster=reader, probability=Decimal("0.45"))
        assert Prediction.objects.filter(question=question, forecaster=reader).count() == 2
        latest = services.latest_predictions(question=question).get()
        assert latest.probability == Decimal("0.45")

    @pytest.mark.parametrize(
        "value, message",
        [
            ("abc", "not a number"),
            ("NaN", "finite"),
            ("Infinity", "finite"),
            ("0.995", "between 1% and 99%"),
            ("0", "between 1% and 99%"),
            ("-0.2", "between 1% and 99%"),
            ("0.123456", "two decimals"),
        ],
    )
    def test_bad_probabilities_are_refused_and_change_nothing(self, question, reader, value, message):
        with pytest.raises(ValidationError, match=message):
            services.prediction_create(question=question, forecaster=reader, probability=value)
        assert not Prediction.objects.exists()

    @pytest.mark.parametrize("status", ["draft", "closed", "resolved", "annulled"])
    def test_question_not_open_refuses_forecasts(self, reader, status):
        question = QuestionFactory(status=status)
        with pytest.raises(ValidationError, match="no longer takes forecasts"):
            services.prediction_create(question=question, forecaster=reader, probability="0.4")
        assert not Prediction.objects.exists()

    def test_after_close_date_refused_even_if_status_open(self, reader):
        question = QuestionFactory(
            closes_at=timezone.now() - dt.timedelta(minutes=1), opens_at=timezone.now() - dt.timedelta(days=3)
        )
        with pytest.raises(ValidationError, match="closed for forecasts"):
            services.prediction_create(question=question, forecaster=reader, probability="0.4")

    def test_before_open_date_refused(self, reader):
        question = QuestionFactory(opens_at=timezone.now() + dt.timedelta(days=1))
        with pytest.raises(ValidationError, match="opens for forecasts"):
            services.prediction_create(question=question, forecaster=reader, probability="0.4")

    def test_multiple_choice_needs_probabilities_summing_to_one(self, reader):
        question = multiple_choice_question()
        with pytest.raises(ValidationError, match="add up to 100%"):
            services.prediction_create(question=question, forecaster=reader, option_probabilities=["0.5", "0.3", "0.3"])
        with pytest.raises(ValidationError, match="each of the 3 options"):
            services.prediction_create(question=question, forecaster=reader, option_probabilities=["0.5", "0.5"])
        with pytest.raises(ValidationError, match="one probability per option"):
            services.prediction_create(question=question, forecaster=reader, probability="0.5")
        assert not Prediction.objects.exists()
        prediction = services.prediction_create(
            question=question, forecaster=reader, option_probabilities=["0.5", "0.3", "0.2"]
        )
        assert prediction.probability_vector() == [0.5, 0.3, 0.2]


class TestEditorialActions:
    def test_lifecycle_is_recorded(self, editor):
        question = QuestionFactory(status=Question.Status.DRAFT)
        services.question_open(question=question, actor=editor)
        services.question_close(question=question, actor=editor, note="deadline")
        services.question_resolve(question=question, actor=editor, outcome="yes", note="Reuters")
        question.refresh_from_db()
        assert question.status == Question.Status.RESOLVED
        actions = list(question.events.values_list("action", "from_status", "to_status", "actor"))
        assert actions == [
            ("opened", "draft", "open", editor.pk),
            ("closed", "open", "closed", editor.pk),
            ("resolved", "closed", "resolved", editor.pk),
        ]
        resolution = question.resolutions.get()
        assert (resolution.outcome, resolution.note, resolution.resolved_by) == ("yes", "Reuters", editor)

    def test_reader_cannot_act(self, question, reader):
        for action in (services.question_close, services.question_annul):
            with pytest.raises(PermissionDenied):
                action(question=question, actor=reader)
        with pytest.raises(PermissionDenied):
            services.question_resolve(question=question, actor=reader, outcome="yes")
        question.refresh_from_db()
        assert question.status == Question.Status.OPEN
        assert not QuestionEvent.objects.exists()

    def test_second_resolution_with_other_outcome_is_refused(self, question, editor):
        services.question_resolve(question=question, actor=editor, outcome="yes")
        with pytest.raises(ValidationError, match="already resolved as “Yes”"):
            services.question_resolve(question=question, actor=editor, outcome="no")
        assert Resolution.objects.get().outcome == "yes"

    def test_same_resolution_twice_is_harmless(self, question, editor):
        first = services.question_resolve(question=question, actor=editor, outcome="no")
        again = services.question_resolve(question=question, actor=editor, outcome="no")
        assert first.pk == again.pk
        assert question.events.filter(action="resolved").count() == 1

    def test_binary_outcome_must_be_yes_or_no(self, question, editor):
        with pytest.raises(ValidationError, match="“yes” or “no”"):
            services.question_resolve(question=question, actor=editor, outcome="maybe")
        assert not Resolution.objects.exists()

    def test_cannot_resolve_a_draft(self, editor):
        question = QuestionFactory(status=Question.Status.DRAFT)
        with pytest.raises(ValidationError):
            services.question_resolve(question=question, actor=editor, outcome="yes")

    def test_unresolve_then_resolve_differently(self, question, editor):
        services.question_resolve(question=question, actor=editor, outcome="yes")
        services.question_unresolve(question=question, actor=editor, note="wrong source")
        question.refresh_from_db()
        assert question.status == Question.Status.CLOSED
        services.question_resolve(question=question, actor=editor, outcome="no")
        assert list(question.resolutions.order_by("id").values_list("outcome", flat=True)) == ["yes", "no"]
        assert question.resolutions.filter(retracted_at__isnull=True).get().outcome == "no"

    def test_annul_a_question(self, question, editor):
        services.question_annul(question=question, actor=editor, note="event cancelled")
        question.refresh_from_db()
        assert question.status == Question.Status.ANNULLED
        with pytest.raises(ValidationError):
            services.question_resolve(question=question, actor=editor, outcome="yes")

    def test_create_question_validates(self, editor):
        article = QuestionFactory().article
        now = timezone.now()
        with pytest.raises(ValidationError) as error:
            services.question_create(
                actor=editor,
                article=article,
                title=" ",
                resolution_criteria="",
                opens_at=now,
                closes_at=now,
                question_type="multiple_choice",
                options=["Only one"],
            )
        assert set(error.value.message_dict) == {"title", "resolution_criteria", "closes_at", "options"}
        question = services.question_create(
            actor=editor,
            article=article,
            title="Which?",
            resolution_criteria="Per Reuters.",
            opens_at=now,
            closes_at=now + dt.timedelta(days=3),
            question_type="multiple_choice",
            options=["A", "B", ""],
        )
        assert question.status == "draft"
        assert list(question.options.values_list("label", flat=True)) == ["A", "B"]
        assert question.events.get().action == "created"


class TestScores:
    def test_resolution_scores_each_forecaster_after_commit(self, question, editor, django_capture_on_commit_callbacks):
        alice, bob = UserFactory.create_batch(2)
        PredictionFactory(question=question, forecaster=alice, probability=Decimal("0.2"))
        PredictionFactory(question=question, forecaster=alice, probability=Decimal("0.8"))
        PredictionFactory(question=question, forecaster=bob, probability=Decimal("0.4"))
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            services.question_resolve(question=question, actor=editor, outcome="yes")
        assert not Score.objects.exists(), "scoring must wait for the commit"
        # scoring, and a refit of the learnt aggregation parameters
        assert [c.name for c in callbacks] == [
            "forecasting.tasks.score_question",
            "forecasting.tasks.refit_aggregators",
        ]
        for callback in callbacks:
            callback()
        spot = Score.objects.filter(method="spot").select_related("forecaster")
        scores = {(s.forecaster.username, s.kind): s.value for s in spot}
        assert scores[(alice.username, "brier")] == Decimal("0.040000")  # (0.8 - 1)^2
        assert scores[(bob.username, "brier")] == Decimal("0.360000")
        assert float(scores[(alice.username, "log")]) == pytest.approx(math.log(0.8), abs=1e-6)
        assert float(scores[(alice.username, "baseline")]) == pytest.approx(100 * (math.log2(0.8) + 1), abs=1e-5)
        assert float(scores[(alice.username, "peer")]) == pytest.approx(100 * math.log(0.8 / 0.4), abs=1e-5)
        assert float(scores[(bob.username, "peer")]) == pytest.approx(-100 * math.log(0.8 / 0.4), abs=1e-5)
        # 2 forecasters x 4 kinds x (spot, time-averaged)
        assert Score.objects.count() == 16

    def test_recompute_is_idempotent(self, question, editor, django_capture_on_commit_callbacks):
        PredictionFactory.create_batch(3, question=question)
        with django_capture_on_commit_callbacks(execute=True):
            services.question_resolve(question=question, actor=editor, outcome="no")
        before = sorted(Score.objects.values_list("id", "forecaster", "kind", "value", "prediction"))
        assert services.question_scores_recompute(question_id=question.pk) == 3 * 8
        after = sorted(Score.objects.values_list("id", "forecaster", "kind", "value", "prediction"))
        assert before == after

    def test_unresolve_and_annul_remove_scores(self, question, editor, django_capture_on_commit_callbacks):
        PredictionFactory(question=question)
        with django_capture_on_commit_callbacks(execute=True):
            services.question_resolve(question=question, actor=editor, outcome="yes")
        assert Score.objects.count() == 8
        with django_capture_on_commit_callbacks(execute=True):
            services.question_unresolve(question=question, actor=editor)
        assert not Score.objects.exists()
        with django_capture_on_commit_callbacks(execute=True):
            services.question_annul(question=question, actor=editor)
        assert not Score.objects.exists()

    def test_multiple_choice_scores(self, editor, django_capture_on_commit_callbacks):
        question = multiple_choice_question()
        forecaster = UserFactory()
        services.prediction_create(question=question, forecaster=forecaster, option_probabilities=["0.5", "0.3", "0.2"])
        green = question.options.get(label="Green")
        with django_capture_on_commit_callbacks(execute=True):
            services.question_resolve(question=question, actor=editor, outcome="option", option_id=green.pk)
        brier = Score.objects.get(kind="brier", method="spot").value
        assert brier == Decimal("0.780000")  # 0.5^2 + 0.7^2 + 0.2^2
        assert float(Score.objects.get(kind="log", method="spot").value) == pytest.approx(math.log(0.3), abs=1e-6)
        # three options: baseline = 100 * (ln 0.3 + ln 3) / ln 3
        baseline = float(Score.objects.get(kind="baseline", method="spot").value)
        assert baseline == pytest.approx(100 * (math.log(0.3) + math.log(3)) / math.log(3), abs=1e-5)

    def test_time_averaged_scores_count_each_forecast_for_as_long_as_it_stood(self, editor):
        start = timezone.now() - dt.timedelta(days=10)
        question = QuestionFactory(opens_at=start, closes_at=start + dt.timedelta(days=10))
        alice, bob = UserFactory.create_batch(2)
        # alice: 50% from day 0, 90% from day 5; bob: 80% from day 5. Scored until close (day 10).
        PredictionFactory(question=question, forecaster=alice, probability=Decimal("0.5"), made_at=start)
        PredictionFactory(
            question=question, forecaster=alice, probability=Decimal("0.9"), made_at=start + dt.timedelta(days=5)
        )
        PredictionFactory(
            question=question, forecaster=bob, probability=Decimal("0.8"), made_at=start + dt.timedelta(days=5)
        )
        question.status = Question.Status.CLOSED
        question.save()
        resolution = Resolution.objects.create(question=question, outcome="yes", resolved_by=editor)
        question.status = Question.Status.RESOLVED
        question.save()
        services.question_scores_recompute(question_id=question.pk)

        def score(user, kind):
            row = Score.objects.get(question=question, forecaster=user, kind=kind, method="time_averaged")
            assert row.resolution == resolution
            return float(row.value), float(row.coverage)

        assert score(alice, "brier") == pytest.approx(((0.25 + 0.01) / 2, 1.0), abs=1e-6)
        assert score(bob, "brier")[0] == pytest.approx(0.04, abs=1e-6)
        assert score(bob, "brier")[1] == pytest.approx(0.5, abs=1e-6)  # half the period covered
        # baseline counts bob's uncovered half as 0
        assert score(bob, "baseline")[0] == pytest.approx(0.5 * 100 * (math.log2(0.8) + 1), abs=1e-4)
        # peer: days 0-5 alice alone (0); days 5-10 alice 0.9 vs bob 0.8
        assert score(alice, "peer")[0] == pytest.approx(0.5 * 100 * math.log(0.9 / 0.8), abs=1e-4)
        assert score(bob, "peer")[0] == pytest.approx(-0.5 * 100 * math.log(0.9 / 0.8), abs=1e-4)
