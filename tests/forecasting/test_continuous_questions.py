"""Numeric and date questions end to end through the services: create, forecast, aggregate, resolve, score."""

import datetime as dt
import math

import numpy as np
import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from forecasting import services
from forecasting.models import AggregateSnapshot, AggregateState, OutboxTask, Prediction, Question, Resolution, Score
from tests.factories import ArticleFactory, UserFactory, date_question, numeric_question

pytestmark = pytest.mark.django_db

VIOLATIONS = {"median": 40.0, "low": 25.0, "high": 60.0}


def _forecast(question, forecaster=None, **component):
    return services.prediction_create(
        question=question, forecaster=forecaster or UserFactory(), components=[component or VIOLATIONS]
    )


def _crps_by_hand(cdf, y):
    """CRPS on [0, 1] by the trapezoid rule, written out independently of the scoring core."""
    u = np.linspace(0.0, 1.0, 201)
    gap = (np.asarray(cdf) - (u >= y)) ** 2
    return float(np.sum((gap[1:] + gap[:-1]) / 2) / 200)


class TestCreate:
    def _create(self, editor, **fields):
        now = timezone.now()
        defaults = {
            "actor": editor,
            "article": ArticleFactory(),
            "title": "How many ceasefire violations will be reported in March?",
            "resolution_criteria": "The OSCE count.",
            "opens_at": now,
            "closes_at": now + dt.timedelta(days=30),
            "question_type": Question.Type.NUMERIC,
        }
        return services.question_create(**(defaults | fields))

    def test_a_numeric_question_keeps_its_range_bounds_and_unit(self, editor):
        question = self._create(editor, range_min=0, range_max=500, open_upper_bound=True, unit="violations")
        question.refresh_from_db()
        assert (question.range_min, question.range_max) == (0, 500)
        assert (question.open_lower_bound, question.open_upper_bound) == (False, True)
        assert question.format_value(120) == "120 violations"

    @pytest.mark.parametrize(
        ("fields", "field"),
        [
            ({}, "range_min"),
            ({"range_min": 10, "range_max": 10}, "range_max"),
            ({"range_min": 10, "range_max": 5}, "range_max"),
            ({"range_min": 1, "range_max": 100, "zero_point": 50}, "zero_point"),
            ({"range_min": 1, "range_max": math.inf}, "range_min"),
        ],
    )
    def test_a_bad_range_is_refused_and_nothing_is_written(self, editor, fields, field):
        with pytest.raises(ValidationError) as error:
            self._create(editor, **fields)
        assert field in error.value.message_dict
        assert not Question.objects.exists()

    def test_a_yes_no_question_has_no_range(self, editor):
        with pytest.raises(ValidationError) as error:
            self._create(editor, question_type=Question.Type.BINARY, range_min=0, range_max=1)
        assert "range_min" in error.value.message_dict

    def test_the_range_is_fixed_once_the_question_is_opened(self, editor):
        question = self._create(editor, range_min=0, range_max=500)
        services.question_open(question=question, actor=editor)
        with pytest.raises(ValidationError) as error:
            services.question_update(question=question, actor=editor, range_max=900)
        assert "range_max" in error.value.message_dict
        question.refresh_from_db()
        assert question.range_max == 500


class TestForecast:
    def test_a_reader_s_median_and_interval_become_a_stored_cdf(self):
        question = numeric_question(0, 100)
        prediction = _forecast(question)
        cdf = np.asarray(prediction.cdf)
        assert cdf.shape == (201,)
        assert np.all(np.diff(cdf) >= 0)
        # The median, 10th and 90th percentiles readers typed (40, 25, 60) are where the CDF crosses 0.5, 0.1, 0.9.
        grid = np.linspace(0, 100, 201)
        for p, value in ((0.1, 25.0), (0.5, 40.0), (0.9, 60.0)):
            assert np.interp(p, cdf, grid) == pytest.approx(value, abs=1.0)

    def test_a_closed_lower_bound_leaves_no_mass_below_the_range(self):
        prediction = _forecast(numeric_question(0, 100, open_lower=False), median=5.0, low=1.0, high=20.0)
        assert prediction.cdf[0] == 0.0

    @pytest.mark.parametrize(
        "cdf",
        [
            [0.5] * 200,  # too short
            [*np.linspace(0.2, 0.9, 201)[::-1]],  # decreasing
            [*np.linspace(0.0, 1.2, 201)],  # above 1
        ],
    )
    def test_a_bad_cdf_is_refused_with_a_clear_error_and_nothing_is_written(self, cdf):
        question = numeric_question(0, 100)
        with pytest.raises(ValidationError) as error:
            services.prediction_create(question=question, forecaster=UserFactory(), cdf=list(cdf))
        assert "cdf" in error.value.message_dict
        assert not Prediction.objects.exists()
        assert not AggregateSnapshot.objects.exists()

    def test_an_interval_that_does_not_contain_the_median_is_refused(self):
        with pytest.raises(ValidationError) as error:
            _forecast(numeric_question(0, 100), median=70.0, low=25.0, high=60.0)
        assert "components" in error.value.message_dict

    def test_a_probability_is_not_a_numeric_forecast(self):
        with pytest.raises(ValidationError):
            services.prediction_create(question=numeric_question(0, 100), forecaster=UserFactory(), probability="0.5")

    def test_a_distribution_is_not_a_yes_no_forecast(self, question):
        with pytest.raises(ValidationError):
            services.prediction_create(question=question, forecaster=UserFactory(), components=[VIOLATIONS])


class TestAggregates:
    def test_each_forecast_appends_the_continuous_methods_and_no_bayesian_update(self):
        question = numeric_question(0, 100)
        first = _forecast(question, median=30.0, low=20.0, high=45.0)
        second = _forecast(question, median=60.0, low=50.0, high=80.0)
        current = services.aggregates_current(question=question)
        assert set(current) == {"recency_weighted_mean", "linear_pool", "quantile_average", "learnt_pool"}
        pool = np.asarray(current["linear_pool"].probabilities)
        np.testing.assert_allclose(pool, (np.asarray(first.cdf) + np.asarray(second.cdf)) / 2, atol=2e-6)
        # Metaculus's recency weights for two forecasters are equal; with nothing learnt the learnt pool is the pool.
        np.testing.assert_allclose(current["recency_weighted_mean"].probabilities, pool, atol=2e-6)
        np.testing.assert_allclose(current["learnt_pool"].probabilities, pool, atol=2e-6)
        assert current["linear_pool"].forecasters == 2
        assert not AggregateState.objects.get(question=question).bayes_pending
        assert not OutboxTask.objects.filter(task_name__contains="bayes").exists()

    def test_the_community_forecast_is_the_learnt_pool(self):
        question = numeric_question(0, 100)
        _forecast(question)
        community = services.community_forecast(question=question)
        assert community.method == "learnt_pool"
        assert community.forecasters == 1 and len(community.probabilities) == 201

    def test_a_forecaster_s_update_replaces_their_earlier_one(self):
        question = numeric_question(0, 100)
        reader = UserFactory()
        _forecast(question, reader, median=20.0, low=10.0, high=30.0)
        latest = _forecast(question, reader, median=70.0, low=60.0, high=85.0)
        pool = services.aggregates_current(question=question)["linear_pool"]
        assert pool.forecasters == 1
        np.testing.assert_allclose(pool.probabilities, latest.cdf, atol=2e-6)


@pytest.fixture
def resolve(django_capture_on_commit_callbacks):
    """Resolve, and run what the resolution queues after commit (scoring)."""

    def run(**kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return services.question_resolve(**kwargs)

    return run


class TestResolveAndScore:
    def test_a_value_inside_the_range_is_scored_with_the_continuous_scores(self, editor, resolve):
        question = numeric_question(0, 100)
        forecasts = [_forecast(question, median=m, low=m - 10, high=m + 15) for m in (30.0, 45.0, 70.0)]
        resolve(question=question, actor=editor, outcome="value", value=42.0, source="OSCE")
        resolution = Resolution.objects.get(question=question)
        assert resolution.outcome == Resolution.Outcome.VALUE and resolution.value == 42.0
        scores = Score.objects.filter(question=question)
        assert {s.kind for s in scores} == {"log", "baseline", "peer", "crps"}
        spot = {(s.forecaster_id, s.kind): float(s.value) for s in scores if s.method == Score.Method.SPOT}
        for prediction in forecasts:
            assert spot[(prediction.forecaster_id, "crps")] == pytest.approx(
                _crps_by_hand(prediction.cdf, 0.42), abs=1e-6
            )
        # The forecaster centred nearest the outcome has the best log score and CRPS.
        best = forecasts[1].forecaster_id
        assert max(spot[(f.forecaster_id, "log")] for f in forecasts) == spot[(best, "log")]
        assert min(spot[(f.forecaster_id, "crps")] for f in forecasts) == spot[(best, "crps")]
        assert sum(spot[(f.forecaster_id, "peer")] for f in forecasts) == pytest.approx(0.0, abs=1e-4)

    def test_numeric_peer_scores_join_the_yes_no_ones_on_the_leaderboard(self, editor, resolve):
        # one reader forecast a yes/no and a numeric question; the board averages both peer scores
        both, other = UserFactory(), UserFactory()
        yes_no = services.question_create(
            actor=editor,
            article=ArticleFactory(),
            title="Will the talks resume?",
            resolution_criteria="Both delegations meet.",
            opens_at=timezone.now() - dt.timedelta(minutes=1),
            closes_at=timezone.now() + dt.timedelta(days=30),
        )
        services.question_open(question=yes_no, actor=editor)
        numeric = numeric_question(0, 100)
        for reader, p, median in ((both, "0.8", 40.0), (other, "0.3", 70.0)):
            services.prediction_create(question=yes_no, forecaster=reader, probability=p)
            _forecast(numeric, reader, median=median, low=median - 10, high=median + 15)
        resolve(question=yes_no, actor=editor, outcome="yes", source="news")
        resolve(question=numeric, actor=editor, outcome="value", value=42.0, source="OSCE")
        peer = {
            (s.question_id, s.forecaster_id): float(s.value)
            for s in Score.objects.filter(kind="peer", method=Score.Method.TIME_AVERAGED)
        }
        row = next(r for r in services.leaderboard(min_coverage=0).ranked if r.username == both.username)
        assert row.questions == 2
        assert row.mean_peer == pytest.approx((peer[(yes_no.pk, both.pk)] + peer[(numeric.pk, both.pk)]) / 2)
        assert peer[(numeric.pk, both.pk)] > 0 > peer[(numeric.pk, other.pk)]  # nearer the outcome: ahead

    def test_a_value_past_an_open_bound_resolves_above_the_range(self, editor, resolve):
        question = numeric_question(0, 100, open_upper=True)
        _forecast(question)
        resolution = resolve(question=question, actor=editor, outcome="value", value=250.0)
        assert resolution.outcome == Resolution.Outcome.ABOVE and resolution.value is None
        assert resolution.outcome_position() == math.inf
        assert Score.objects.filter(question=question, kind="crps").exists()

    def test_a_value_past_a_closed_bound_is_refused(self, editor):
        question = numeric_question(0, 100, open_lower=False)
        with pytest.raises(ValidationError) as error:
            services.question_resolve(question=question, actor=editor, outcome="value", value=-5.0)
        assert "value" in error.value.message_dict
        assert not Resolution.objects.exists()

    def test_below_is_refused_when_the_low_end_is_closed(self, editor):
        question = numeric_question(0, 100, open_lower=False)
        with pytest.raises(ValidationError):
            services.question_resolve(question=question, actor=editor, outcome="below")

    def test_yes_is_not_a_numeric_outcome(self, editor):
        with pytest.raises(ValidationError):
            services.question_resolve(question=numeric_question(0, 100), actor=editor, outcome="yes")

    def test_resolving_again_with_the_same_value_is_harmless_and_another_value_is_refused(self, editor):
        question = numeric_question(0, 100)
        first = services.question_resolve(question=question, actor=editor, outcome="value", value=42.0)
        again = services.question_resolve(question=question, actor=editor, outcome="value", value=42.0)
        assert again.pk == first.pk
        with pytest.raises(ValidationError):
            services.question_resolve(question=question, actor=editor, outcome="value", value=43.0)

    def test_a_date_question_resolves_to_a_date_and_reads_as_one(self, editor, resolve):
        start = dt.datetime(2027, 1, 1, tzinfo=dt.UTC)
        question = date_question(start, dt.datetime(2027, 12, 31, tzinfo=dt.UTC))
        day = dt.datetime(2027, 3, 14, tzinfo=dt.UTC).timestamp()
        services.prediction_create(
            question=question,
            forecaster=UserFactory(),
            components=[{"median": day, "low": day - 30 * 86400, "high": day + 60 * 86400}],
        )
        resolution = resolve(question=question, actor=editor, outcome="value", value=day)
        assert resolution.describe() == "14 Mar 2027"
        assert 0 < resolution.outcome_position() < 1
        assert Score.objects.filter(question=question, kind="log").count() == 2  # spot and time-averaged


class TestLearntPool:
    """The headline aggregate learns from resolved numeric questions whom to trust and how wide to be."""

    def _resolved_history(self, editor, sharp, vague, questions=8):
        # sharp is right every time, vague is 30 units off: the truth is 50 on each question
        for _ in range(questions):
            question = numeric_question(0, 100)
            _forecast(question, sharp, median=50.0, low=45.0, high=55.0)
            _forecast(question, vague, median=80.0, low=60.0, high=95.0)
            services.question_resolve(question=question, actor=editor, outcome="value", value=50.0, source="count")

    def test_the_refit_weighs_the_accurate_forecaster_more(self, editor):
        sharp, vague = UserFactory(), UserFactory()
        self._resolved_history(editor, sharp, vague)
        _, fit = services.aggregator_fits_refresh()
        assert fit.method == "learnt_pool" and fit.questions_used == 8
        records = fit.parameters["records"]
        assert records[str(sharp.pk)] < 0 < records[str(vague.pk)]  # negative: better than their peers

        fresh = numeric_question(0, 100)
        _forecast(fresh, sharp, median=30.0, low=20.0, high=40.0)
        _forecast(fresh, vague, median=70.0, low=60.0, high=80.0)
        current = services.aggregates_current(question=fresh)
        median = {
            name: float(np.interp(0.5, current[name].probabilities, np.linspace(0, 100, 201)))
            for name in ("learnt_pool", "linear_pool")
        }
        assert median["linear_pool"] == pytest.approx(50, abs=3)  # halfway between the two
        assert median["learnt_pool"] < 40  # pulled towards the one who has been right
        assert current["learnt_pool"].parameters == {"factor": fit.parameters["factor"], "fit": fit.pk}
        assert services.community_forecast(question=fresh).probabilities == current["learnt_pool"].probabilities

    def test_newcomers_weigh_the_same_whatever_others_learnt(self, editor):
        self._resolved_history(editor, UserFactory(), UserFactory(), questions=3)
        services.aggregator_fits_refresh()
        fresh = numeric_question(0, 100)
        _forecast(fresh, median=30.0, low=20.0, high=40.0)
        _forecast(fresh, median=70.0, low=60.0, high=80.0)
        current = services.aggregates_current(question=fresh)
        grid = np.linspace(0, 100, 201)
        # equal weights: the two forecasts are mirror images, so the pool's median stays halfway (the learnt
        # dispersion narrows or widens around the median, never moves it)
        for name in ("learnt_pool", "linear_pool"):
            assert float(np.interp(0.5, current[name].probabilities, grid)) == pytest.approx(50, abs=0.5)

    def test_refitting_twice_gives_the_same_parameters(self, editor):
        self._resolved_history(editor, UserFactory(), UserFactory(), questions=4)
        _, first = services.aggregator_fits_refresh()
        _, second = services.aggregator_fits_refresh()
        assert first.parameters == second.parameters and first.questions_used == second.questions_used == 4

    def test_yes_no_questions_do_not_enter_the_learnt_pool_nor_numeric_ones_the_extremizing_factor(
        self, editor, question
    ):
        self._resolved_history(editor, UserFactory(), UserFactory(), questions=2)
        for forecaster in UserFactory.create_batch(2):
            services.prediction_create(question=question, forecaster=forecaster, probability="0.7")
        services.question_resolve(question=question, actor=editor, outcome="yes")
        extremized, pool = services.aggregator_fits_refresh()
        assert extremized.questions_used == 1 and pool.questions_used == 2
