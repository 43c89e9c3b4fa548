"""Readers' own data: forecasts (submit, list) and scores; analysts' anonymised scores."""

from decimal import Decimal

import pytest

from forecasting import services
from forecasting.models import Prediction, Question, Score
from tests.api_helpers import assert_error, client_for
from tests.factories import PredictionFactory, QuestionFactory, UserFactory, multiple_choice_question

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hashing")]


# --- predictions ------------------------------------------------------------------------------------


def test_reader_forecasts_a_yes_no_question(reader_api, reader, question):
    response = reader_api.post("/api/v1/predictions/", {"question": question.pk, "probability": "0.37"}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["question"] == question.pk and body["probability"] == "0.3700"
    assert body["probabilities"] == pytest.approx([0.63, 0.37])
    prediction = Prediction.objects.get()
    assert prediction.forecaster == reader and prediction.probability == Decimal("0.37")
    assert services.community_forecast(question=question).forecasters == 1  # through the service: aggregated


def test_reader_forecasts_a_multiple_choice_question(reader_api):
    question = multiple_choice_question()
    data = {"question": question.pk, "option_probabilities": ["0.5", 0.3, "0.2"]}
    response = reader_api.post("/api/v1/predictions/", data, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["option_probabilities"] == ["0.5000", "0.3000", "0.2000"]


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"probability": "0.5"}, "question"),
        ({"question": 999999, "probability": "0.5"}, "question"),
        ({"question": "Q", "probability": "abc"}, "probability"),
        ({"question": "Q", "probability": "1.5"}, "probability"),
        ({"question": "Q", "probability": "0.005"}, "probability"),
        ({"question": "Q", "probability": "0.12345"}, "probability"),
        ({"question": "Q"}, "probability"),  # the service: a yes/no question takes one probability
        ({"question": "Q", "option_probabilities": ["0.5", "0.5"]}, "probability"),  # the service
    ],
)
def test_bad_forecast_is_a_400_naming_the_field(reader_api, question, data, field):
    data = {key: question.pk if value == "Q" else value for key, value in data.items()}
    assert_error(reader_api.post("/api/v1/predictions/", data, format="json"), 400, "invalid", fields=(field,))
    assert not Prediction.objects.exists()


def test_multiple_choice_errors_name_the_option(reader_api):
    question = multiple_choice_question()
    data = {"question": question.pk, "option_probabilities": ["0.5", "2", "0.2"]}
    error = assert_error(reader_api.post("/api/v1/predictions/", data, format="json"), 400, "invalid")
    assert list(error["fields"]) == ["option_probabilities.1"]
    data["option_probabilities"] = ["0.5", "0.4", "0.2"]
    error = assert_error(
        reader_api.post("/api/v1/predictions/", data, format="json"), 400, "invalid", fields=("option_probabilities",)
    )
    assert "110.00%" in error["message"]


@pytest.mark.parametrize("status", [Question.Status.CLOSED, Question.Status.RESOLVED])
def test_forecast_on_a_question_not_taking_forecasts_is_a_400_with_the_reason(reader_api, status):
    question = QuestionFactory(status=status)
    response = reader_api.post("/api/v1/predictions/", {"question": question.pk, "probability": "0.5"}, format="json")
    error = assert_error(response, 400, "invalid")
    assert "no longer takes forecasts" in error["message"] and error["fields"] == {}


def test_forecast_on_a_draft_is_as_if_it_did_not_exist(reader_api):
    draft = QuestionFactory(status=Question.Status.DRAFT)
    response = reader_api.post("/api/v1/predictions/", {"question": draft.pk, "probability": "0.5"}, format="json")
    assert_error(response, 400, "invalid", fields=("question",))


def test_predictions_need_authentication(api, question):
    assert_error(api.get("/api/v1/predictions/"), 401, "not_authenticated")
    response = api.post("/api/v1/predictions/", {"question": question.pk, "probability": "0.5"}, format="json")
    assert_error(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"] == "Token"
    assert not Prediction.objects.exists()


def test_reader_lists_only_their_own_forecasts(reader_api, reader, question):
    other_question = QuestionFactory()
    mine = [
        PredictionFactory(question=question, forecaster=reader, probability=Decimal("0.2")),
        PredictionFactory(question=other_question, forecaster=reader, probability=Decimal("0.4")),
    ]
    PredictionFactory(question=question, forecaster=UserFactory())
    body = reader_api.get("/api/v1/predictions/").json()
    assert {p["id"] for p in body["results"]} == {p.pk for p in mine}
    filtered = reader_api.get("/api/v1/predictions/", {"question": question.pk}).json()["results"]
    assert [p["id"] for p in filtered] == [mine[0].pk]
    assert_error(reader_api.get("/api/v1/predictions/", {"question": "x"}), 400, "invalid", fields=("question",))


# --- scores -----------------------------------------------------------------------------------------


def test_analyst_reads_every_score_on_a_question_anonymised(analyst_api, resolved_question):
    body = analyst_api.get(f"/api/v1/questions/{resolved_question.pk}/scores/").json()
    assert body["count"] == Score.objects.filter(question=resolved_question).count() == 3 * 8
    forecasters = {row["forecaster"] for row in body["results"]}
    usernames = set(Score.objects.values_list("forecaster__username", flat=True))
    assert len(forecasters) == 3 and not forecasters & usernames
    assert all(f.startswith("f_") for f in forecasters)
    brier = analyst_api.get(
        f"/api/v1/questions/{resolved_question.pk}/scores/", {"kind": "brier", "method": "spot"}
    ).json()["results"]
    assert sorted(Decimal(r["value"]) for r in brier) == [Decimal("0.01"), Decimal("0.16"), Decimal("0.64")]


def test_question_scores_bad_filter_is_a_400(analyst_api, resolved_question):
    response = analyst_api.get(f"/api/v1/questions/{resolved_question.pk}/scores/", {"kind": "elo"})
    assert_error(response, 400, "invalid", fields=("kind",))


def test_question_scores_are_for_analysts(api, reader_api, editor_api, resolved_question):
    url = f"/api/v1/questions/{resolved_question.pk}/scores/"
    assert_error(api.get(url), 401, "not_authenticated")
    assert_error(reader_api.get(url), 403, "permission_denied")
    assert_error(editor_api.get(url), 403, "permission_denied")  # editors have no view_score


def test_question_scores_of_unknown_question_is_404(analyst_api):
    assert_error(analyst_api.get("/api/v1/questions/999999/scores/"), 404, "not_found")


def test_reader_lists_their_own_scores(resolved_question):
    forecaster = Score.objects.filter(question=resolved_question).first().forecaster
    client = client_for(forecaster)
    body = client.get("/api/v1/scores/").json()
    assert body["count"] == 8
    assert {r["question"] for r in body["results"]} == {resolved_question.pk}
    assert body["results"][0]["question_title"] == resolved_question.title
    peer = client.get("/api/v1/scores/", {"question": resolved_question.pk, "kind": "peer"}).json()["results"]
    assert {(r["kind"], r["method"]) for r in peer} == {("peer", "spot"), ("peer", "time_averaged")}
    assert client_for(UserFactory()).get("/api/v1/scores/").json()["count"] == 0


def test_own_scores_bad_filter_is_a_400(reader_api):
    assert_error(reader_api.get("/api/v1/scores/", {"method": "forever"}), 400, "invalid", fields=("method",))


def test_own_scores_need_authentication(api):
    assert_error(api.get("/api/v1/scores/"), 401, "not_authenticated")
