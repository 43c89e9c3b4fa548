"""The market: quotes (public, a dry run) and trades (own, idempotent), money as micro-units and units."""

from decimal import Decimal

import pytest
from django.conf import settings

from forecasting import services
from forecasting.models import Question
from market import services as market_services
from market.api.serializers import micro_to_units
from market.models import MICRO, Account, Trade
from tests.api_helpers import assert_error, client_for
from tests.factories import QuestionFactory, UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hashing")]


def quote_url(question) -> str:
    return f"/api/v1/questions/{question.pk}/market/quote/"


def assert_money(value: dict) -> int:
    assert set(value) == {"micro", "units"}
    assert isinstance(value["micro"], int) and isinstance(value["units"], str)
    assert Decimal(value["units"]) * MICRO == value["micro"]
    assert len(value["units"].split(".")[1]) == 6
    return value["micro"]


@pytest.mark.parametrize(
    ("micro", "units"),
    [(0, "0.000000"), (1, "0.000001"), (-1, "-0.000001"), (1_500_000, "1.500000"), (-12_345_678_901, "-12345.678901")],
)
def test_micro_units_are_exact_decimal_strings(micro, units):
    assert micro_to_units(micro) == units


# --- quotes -----------------------------------------------------------------------------------------


def test_quote_is_public_and_writes_nothing(api, opened_question):
    response = api.get(quote_url(opened_question), {"side": "buy", "outcome": 1, "amount": "25"})
    assert response.status_code == 200, response.json()
    body = response.json()
    assert assert_money(body["cost"]) <= 25 * MICRO
    assert assert_money(body["shares"]) > 25 * MICRO  # shares at below 1 each
    assert 0.5 < body["price_after"] < 1 and body["side"] == "buy" and body["outcome"] == 1
    assert sum(body["prices_after"]) == pytest.approx(1)
    assert not Trade.objects.exists()


def test_quote_by_shares_and_a_sale(api, opened_question):
    buy = api.get(quote_url(opened_question), {"side": "buy", "outcome": 0, "shares": "10.5"}).json()
    assert buy["shares"] == {"micro": 10_500_000, "units": "10.500000"}
    sell = api.get(quote_url(opened_question), {"side": "sell", "outcome": 0, "shares": "1"}).json()
    assert sell["cost"]["micro"] < 0 and sell["cost"]["units"].startswith("-")  # the seller receives


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"side": "buy", "outcome": 1, "amount": "abc"}, "amount"),
        ({"side": "buy", "outcome": 1, "amount": "0.0000001"}, "amount"),  # below one micro-unit
        ({"side": "buy", "outcome": 1, "amount": "-5"}, "amount"),
        ({"side": "buy", "outcome": 7, "amount": "5"}, "outcome"),  # the service knows the outcomes
        ({"side": "hold", "outcome": 1, "amount": "5"}, "side"),
        ({"outcome": 1, "amount": "5"}, "side"),
        ({"side": "buy", "outcome": 1}, "shares"),  # the service: amount or shares
        ({"side": "buy", "outcome": 1, "amount": "5", "shares": "5"}, "shares"),
        ({"side": "sell", "outcome": 1, "amount": "5"}, "amount"),
    ],
)
def test_bad_quote_is_a_400_naming_the_field(api, opened_question, params, field):
    assert_error(api.get(quote_url(opened_question), params), 400, "invalid", fields=(field,))


def test_quote_without_a_market_is_404(api, question):
    error = assert_error(api.get(quote_url(question), {"side": "buy", "outcome": 1, "amount": "5"}), 404, "not_found")
    assert "no market" in error["message"]
    assert_error(api.get("/api/v1/questions/999999/market/quote/", {"side": "buy"}), 404, "not_found")


# --- trades -----------------------------------------------------------------------------------------


def test_reader_buys_with_an_idempotency_key_header_and_a_retry_trades_once(reader_api, reader, opened_question):
    data = {"question": opened_question.pk, "outcome": 1, "side": "buy", "amount": "25.5"}
    first = reader_api.post("/api/v1/trades/", data, format="json", HTTP_IDEMPOTENCY_KEY="key-1")
    assert first.status_code == 201, first.json()
    body = first.json()
    assert body["question"] == opened_question.pk and body["side"] == "buy" and body["outcome"] == 1
    assert 0 < assert_money(body["cost"]) <= 25_500_000
    assert assert_money(body["shares"]) > 0
    assert body["idempotency_key"] == "key-1"
    retry = reader_api.post("/api/v1/trades/", data, format="json", HTTP_IDEMPOTENCY_KEY="key-1")
    assert retry.status_code == 200 and retry["Idempotent-Replayed"] == "true"
    assert retry.json()["id"] == body["id"]
    assert Trade.objects.count() == 1
    balance = Account.objects.get(user=reader, kind=Account.Kind.USER).balance
    assert balance == settings.MARKET_STARTING_GRANT - body["cost"]["micro"]


def test_reader_sells_with_the_key_in_the_body_and_lists_their_trades(reader_api, reader, opened_question):
    market_services.trade_execute(
        user=reader, market_id=opened_question.market.pk, outcome=0, side="buy", shares=5 * MICRO, idempotency_key="b"
    )
    other = UserFactory()
    market_services.trade_execute(
        user=other, market_id=opened_question.market.pk, outcome=0, side="buy", shares=MICRO, idempotency_key="b"
    )
    data = {"question": opened_question.pk, "outcome": 0, "side": "sell", "shares": "2", "idempotency_key": "s"}
    response = reader_api.post("/api/v1/trades/", data, format="json")
    assert response.status_code == 201, response.json()
    sale = response.json()
    assert sale["side"] == "sell" and sale["shares"]["micro"] == -2 * MICRO and sale["cost"]["micro"] < 0
    listed = reader_api.get("/api/v1/trades/").json()
    assert [t["side"] for t in listed["results"]] == ["sell", "buy"]  # newest first, only mine
    elsewhere = QuestionFactory()
    assert reader_api.get("/api/v1/trades/", {"question": elsewhere.pk}).json()["count"] == 0


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"question": None}, "question"),
        ({"question": 999999}, "question"),
        ({"outcome": 5}, "outcome"),  # the service
        ({"outcome": "x"}, "outcome"),
        ({"side": "short"}, "side"),
        ({"amount": "lots"}, "amount"),
        ({"amount": "5000"}, "amount"),  # the service: more than the balance
        ({"amount": None}, "shares"),  # the service: amount or shares
        ({"limit_price": 2}, "limit_price"),
        ({"idempotency_key": None}, "idempotency_key"),
        ({"idempotency_key": "k" * 81}, "idempotency_key"),
    ],
)
def test_bad_trade_is_a_400_naming_the_field(reader_api, opened_question, overrides, field):
    data = {"question": opened_question.pk, "outcome": 1, "side": "buy", "amount": "5", "idempotency_key": "k"}
    data = {key: value for key, value in {**data, **overrides}.items() if value is not None}
    assert_error(reader_api.post("/api/v1/trades/", data, format="json"), 400, "invalid", fields=(field,))
    assert not Trade.objects.exists()


def test_spending_more_than_the_balance_is_a_400_saying_so(reader_api, opened_question):
    data = {"question": opened_question.pk, "outcome": 1, "side": "buy", "amount": "5000", "idempotency_key": "k"}
    error = assert_error(reader_api.post("/api/v1/trades/", data, format="json"), 400, "invalid", fields=("amount",))
    assert "Insufficient balance" in error["fields"]["amount"][0]
    data["amount"] = "2000000000"  # above the largest amount the API takes
    error = assert_error(reader_api.post("/api/v1/trades/", data, format="json"), 400, "invalid", fields=("amount",))
    assert "1000000000" in error["fields"]["amount"][0]


def test_trade_guards_and_closed_markets_are_400s_with_a_message(reader_api, editor, opened_question):
    data = {"question": opened_question.pk, "outcome": 1, "side": "buy", "amount": "5", "max_cost": "1"}
    error = assert_error(
        reader_api.post("/api/v1/trades/", {**data, "min_shares": "1000"}, format="json", HTTP_IDEMPOTENCY_KEY="a"),
        400,
        "invalid",
    )
    assert "fewer than the minimum" in error["message"]
    services.question_close(question=opened_question, actor=editor)
    error = assert_error(
        reader_api.post("/api/v1/trades/", data, format="json", HTTP_IDEMPOTENCY_KEY="b"), 400, "invalid"
    )
    assert "closed" in error["message"]
    assert not Trade.objects.exists()


def test_idempotency_key_header_and_field_must_agree(reader_api, opened_question):
    data = {"question": opened_question.pk, "outcome": 1, "side": "buy", "amount": "5", "idempotency_key": "a"}
    response = reader_api.post("/api/v1/trades/", data, format="json", HTTP_IDEMPOTENCY_KEY="b")
    assert_error(response, 400, "invalid", fields=("idempotency_key",))


def test_reusing_a_key_for_another_trade_is_a_400(reader_api, opened_question):
    data = {"question": opened_question.pk, "outcome": 1, "side": "buy", "amount": "5"}
    assert reader_api.post("/api/v1/trades/", data, format="json", HTTP_IDEMPOTENCY_KEY="k").status_code == 201
    response = reader_api.post("/api/v1/trades/", {**data, "outcome": 0}, format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert "different trade" in assert_error(response, 400, "invalid")["message"]


def test_trade_on_a_question_without_market_is_a_400(reader_api):
    question = QuestionFactory()  # open, but never opened by an editor: no market
    data = {"question": question.pk, "outcome": 1, "side": "buy", "amount": "5"}
    response = reader_api.post("/api/v1/trades/", data, format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert_error(response, 400, "invalid", fields=("question",))
    draft = QuestionFactory(status=Question.Status.DRAFT)
    response = reader_api.post(
        "/api/v1/trades/", {**data, "question": draft.pk}, format="json", HTTP_IDEMPOTENCY_KEY="k"
    )
    assert_error(response, 400, "invalid", fields=("question",))


def test_trades_need_authentication(api, opened_question):
    assert_error(api.get("/api/v1/trades/"), 401, "not_authenticated")
    data = {"question": opened_question.pk, "outcome": 1, "side": "buy", "amount": "5"}
    assert_error(api.post("/api/v1/trades/", data, format="json", HTTP_IDEMPOTENCY_KEY="k"), 401, "not_authenticated")
    assert not Trade.objects.exists()


def test_trades_list_is_own_and_filterable_by_question(opened_question):
    reader = UserFactory()
    market_services.trade_execute(
        user=reader, market_id=opened_question.market.pk, outcome=1, side="buy", amount=MICRO, idempotency_key="x"
    )
    client = client_for(reader)
    rows = client.get("/api/v1/trades/", {"question": opened_question.pk}).json()["results"]
    assert len(rows) == 1 and rows[0]["market"] == opened_question.market.pk
    assert client_for(UserFactory()).get("/api/v1/trades/").json()["count"] == 0
    assert_error(client.get("/api/v1/trades/", {"question": "x"}), 400, "invalid", fields=("question",))


def test_reusing_a_key_on_another_market_is_a_400_naming_the_key(reader_api, editor, opened_question):
    other = services.question_open(question=QuestionFactory(status=Question.Status.DRAFT), actor=editor)
    data = {"question": opened_question.pk, "outcome": 1, "side": "buy", "amount": "5"}
    assert reader_api.post("/api/v1/trades/", data, format="json", HTTP_IDEMPOTENCY_KEY="k").status_code == 201
    response = reader_api.post(
        "/api/v1/trades/", {**data, "question": other.pk}, format="json", HTTP_IDEMPOTENCY_KEY="k"
    )
    error = assert_error(response, 400, "invalid", fields=("idempotency_key",))
    assert "different trade" in error["fields"]["idempotency_key"][0]
    assert Trade.objects.count() == 1


@pytest.mark.parametrize("value", ["1" * 25, "-3.402823466e+38", "1.5", "abc"])
def test_a_question_filter_out_of_range_is_a_400_naming_it(reader_api, value):
    response = reader_api.get("/api/v1/trades/", {"question": value})
    assert response.status_code == 400
    assert "question" in response.json()["error"]["fields"]
