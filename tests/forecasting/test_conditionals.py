"""Conditional pairs, "if A, then B?": creation, the branches following A and B, the panel and the editor's page."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from django.utils import timezone

from forecasting import services
from forecasting.models import Conditional, Question, QuestionEvent, Resolution, Score
from market.models import Market
from tests.factories import QuestionFactory, UserFactory, multiple_choice_question, numeric_question

pytestmark = pytest.mark.django_db
Status = Question.Status


@pytest.fixture
def pair(editor):
    condition = QuestionFactory(title="Will a ceasefire be signed?", closes_at=timezone.now() + dt.timedelta(days=40))
    outcome = QuestionFactory(title="Will sanctions be eased?", closes_at=timezone.now() + dt.timedelta(days=90))
    return services.conditional_create(actor=editor, condition=condition, outcome=outcome)


@pytest.fixture
def act(django_capture_on_commit_callbacks):
    """Run an editor's action and what it queues after commit (scoring)."""

    def run(service, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return service(**kwargs)

    return run


def _status(question):
    question.refresh_from_db()
    return question.status


class TestCreate:
    def test_the_pair_opens_two_yes_no_branches_closing_with_the_first_question(self, pair):
        for branch in (pair.if_yes, pair.if_no):
            assert branch.status == Status.OPEN and branch.is_binary
            assert branch.closes_at == pair.condition.closes_at  # the earlier of the two
            assert branch.article_id == pair.outcome.article_id
            assert "Will sanctions be eased?" in branch.title
        assert "resolves Yes" in pair.if_yes.title and "resolves No" in pair.if_no.title
        assert Market.objects.filter(question__in=[pair.if_yes, pair.if_no]).count() == 2

    def test_readers_forecast_each_branch(self, pair):
        services.prediction_create(question=pair.if_yes, forecaster=UserFactory(), probability="0.7")
        services.prediction_create(question=pair.if_no, forecaster=UserFactory(), probability="0.2")
        assert services.community_forecast(question=pair.if_yes).probability_yes == pytest.approx(0.7)
        assert services.community_forecast(question=pair.if_no).probability_yes == pytest.approx(0.2)

    @pytest.mark.parametrize(
        ("make_condition", "field"),
        [
            (lambda: multiple_choice_question(), "condition"),
            (lambda: numeric_question(), "condition"),
            (lambda: QuestionFactory(status=Status.DRAFT), "condition"),
            (lambda: QuestionFactory(status=Status.RESOLVED), "condition"),
        ],
    )
    def test_a_condition_that_cannot_head_a_pair_is_refused(self, editor, make_condition, field):
        with pytest.raises(ValidationError) as error:
            services.conditional_create(actor=editor, condition=make_condition(), outcome=QuestionFactory())
        assert field in error.value.message_dict
        assert not Conditional.objects.exists()

    def test_the_same_question_twice_is_refused(self, editor):
        question = QuestionFactory()
        with pytest.raises(ValidationError):
            services.conditional_create(actor=editor, condition=question, outcome=question)

    def test_a_branch_cannot_join_another_pair_and_a_pair_is_made_once(self, editor, pair):
        with pytest.raises(ValidationError):
            services.conditional_create(actor=editor, condition=pair.if_yes, outcome=QuestionFactory())
        with pytest.raises(ValidationError):
            services.conditional_create(actor=editor, condition=pair.condition, outcome=pair.outcome)
        assert Conditional.objects.count() == 1

    def test_a_reader_cannot_create_a_pair(self, reader):
        with pytest.raises(PermissionDenied):
            services.conditional_create(actor=reader, condition=QuestionFactory(), outcome=QuestionFactory())
        assert Question.objects.count() == 2


class TestBranchesFollow:
    def test_the_branch_that_did_not_happen_is_annulled_and_the_other_resolves_with_the_outcome(
        self, editor, pair, act
    ):
        forecaster = UserFactory()
        services.prediction_create(question=pair.if_yes, forecaster=forecaster, probability="0.8")
        act(services.question_resolve, question=pair.condition, actor=editor, outcome="yes")
        assert _status(pair.if_no) == Status.ANNULLED
        assert _status(pair.if_yes) == Status.OPEN  # waits for the outcome
        event = QuestionEvent.objects.filter(question=pair.if_no).latest("id")
        assert event.automatic and event.action == QuestionEvent.Action.ANNULLED

        act(services.question_resolve, question=pair.outcome, actor=editor, outcome="no")
        assert _status(pair.if_yes) == Status.RESOLVED
        assert services.active_resolution(pair.if_yes).outcome == Resolution.Outcome.NO
        brier = Score.objects.get(question=pair.if_yes, forecaster=forecaster, kind="brier", method="spot")
        assert brier.value == Decimal("0.640000")  # (0.8 - 0)^2
        assert Market.objects.get(question=pair.if_no).status == Market.Status.ANNULLED

    def test_an_outcome_resolved_first_waits_for_the_condition(self, editor, pair, act):
        act(services.question_resolve, question=pair.outcome, actor=editor, outcome="yes")
        assert (_status(pair.if_yes), _status(pair.if_no)) == (Status.OPEN, Status.OPEN)
        act(services.question_resolve, question=pair.condition, actor=editor, outcome="no")
        assert _status(pair.if_yes) == Status.ANNULLED
        assert _status(pair.if_no) == Status.RESOLVED
        assert services.active_resolution(pair.if_no).outcome == Resolution.Outcome.YES

    def test_an_annulled_condition_annuls_both_branches(self, editor, pair, act):
        act(services.question_annul, question=pair.condition, actor=editor, note="Ill-posed.")
        assert (_status(pair.if_yes), _status(pair.if_no)) == (Status.ANNULLED, Status.ANNULLED)

    def test_an_annulled_outcome_annuls_the_live_branch(self, editor, pair, act):
        act(services.question_resolve, question=pair.condition, actor=editor, outcome="yes")
        act(services.question_annul, question=pair.outcome, actor=editor, note="Source gone.")
        assert _status(pair.if_yes) == Status.ANNULLED

    def test_un_resolving_the_condition_takes_back_what_it_settled(self, editor, pair, act):
        act(services.question_resolve, question=pair.condition, actor=editor, outcome="yes")
        act(services.question_resolve, question=pair.outcome, actor=editor, outcome="yes")
        act(services.question_unresolve, question=pair.condition, actor=editor, note="Wrong source.")
        assert (_status(pair.if_yes), _status(pair.if_no)) == (Status.CLOSED, Status.CLOSED)
        assert services.active_resolution(pair.if_yes) is None
        assert not Score.objects.filter(question__in=[pair.if_yes, pair.if_no]).exists()

    def test_syncing_twice_changes_nothing(self, editor, pair, act):
        act(services.question_resolve, question=pair.condition, actor=editor, outcome="yes")
        events = QuestionEvent.objects.count()
        assert services.conditional_sync(conditional=pair) == 0
        assert QuestionEvent.objects.count() == events

    def test_an_editor_cannot_resolve_a_branch_by_hand(self, editor, pair):
        with pytest.raises(ValidationError):
            services.question_resolve(question=pair.if_yes, actor=editor, outcome="yes")
        assert _status(pair.if_yes) == Status.OPEN


class TestPages:
    def test_each_branch_page_shows_both_branches_and_the_difference(self, client, pair):
        services.prediction_create(question=pair.if_yes, forecaster=UserFactory(), probability="0.7")
        services.prediction_create(question=pair.if_no, forecaster=UserFactory(), probability="0.25")
        for question in (pair.if_yes, pair.if_no, pair.condition, pair.outcome):
            page = client.get(question.get_absolute_url())
            assert page.status_code == 200
            text = page.content.decode()
            assert "Conditional forecasts" in text
            assert "70%" in text and "25%" in text
            assert "raises the outcome's chance by 45 points" in text

    def test_a_question_outside_any_pair_has_no_conditional_panel(self, client, question):
        assert "Conditional forecasts" not in client.get(question.get_absolute_url()).content.decode()

    def test_an_editor_creates_a_pair_on_the_web(self, client, editor):
        condition, outcome = QuestionFactory(), QuestionFactory()
        client.force_login(editor)
        url = reverse("editor_conditional_create")
        assert client.get(url).status_code == 200
        response = client.post(url, {"condition": condition.pk, "outcome": outcome.pk})
        pair = Conditional.objects.get()
        assert response.status_code == 302 and response["Location"] == pair.if_yes.get_absolute_url()

    def test_the_same_question_twice_on_the_web_is_a_clear_error(self, client, editor):
        question = QuestionFactory()
        client.force_login(editor)
        response = client.post(reverse("editor_conditional_create"), {"condition": question.pk, "outcome": question.pk})
        assert response.status_code == 400
        assert "two different questions" in response.content.decode()
        assert not Conditional.objects.exists()

    def test_a_reader_may_not_open_the_editor_s_page(self, client, reader):
        client.force_login(reader)
        assert client.get(reverse("editor_conditional_create")).status_code == 403


class TestApi:
    def test_each_branch_names_its_pair_in_the_question_api(self, client, pair):
        for question, branch, other in ((pair.if_yes, "yes", pair.if_no), (pair.if_no, "no", pair.if_yes)):
            body = client.get(reverse("api:question-detail", kwargs={"pk": question.pk})).json()
            assert body["conditional"] == {
                "condition": pair.condition_id,
                "outcome": pair.outcome_id,
                "branch": branch,
                "other_branch": other.pk,
            }
        plain = client.get(reverse("api:question-detail", kwargs={"pk": pair.condition_id})).json()
        assert plain["conditional"] is None

    def test_the_question_list_reads_pairs_without_a_query_per_question(
        self, client, editor, django_assert_max_num_queries
    ):
        for _ in range(3):
            services.conditional_create(actor=editor, condition=QuestionFactory(), outcome=QuestionFactory())
        url = reverse("api:question-list")
        with django_assert_max_num_queries(8):  # 12 questions: a query per question would pass 8
            body = client.get(url).json()
        branches = [q for q in body["results"] if q["conditional"]]
        assert len(branches) == 6 and {q["conditional"]["branch"] for q in branches} == {"yes", "no"}
