"""Hostile amounts, shares and limits on the market's web pages and API: always a clear 400 (or a
form error), never a server error, and a refused trade changes nothing."""

import json

import pytest
from django.test import Client
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from market import services
from market.models import Account, LedgerTransaction, Trade
from tests.api_helpers import assert_error, client_for

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hashing")]

HUGE = ["1e30", "-1e30", "1e308", "1E+400", "1e999999999", "9" * 19, "123456789012.5"]
NOT_FINITE = ["NaN", "nan", "sNaN", "-NaN", "Infinity", "inf", "-Infinity"]
NOT_POSITIVE = ["0", "-0", "-5", "0.00", "1e-999999999"]
NOT_NUMBERS = ["abc", "1.2.3", "--1", "0x10", "five", "1e", "."]
HOSTILE = HUGE + NOT_FINITE + NOT_POSITIVE + NOT_NUMBERS

# Anything a client might send as text: hostile forms above, numbers of every size, arbitrary text.
texts = st.one_of(
    st.sampled_from(HOSTILE),
    st.floats().map(repr),
    st.decimals().map(str),
    st.integers(min_value=-(10**40), max_value=10**40).map(str),
    st.text(max_size=25),
)
# And as JSON values: the same, plus JSON numbers (NaN and Infinity as the literals Python writes).
json_values = st.one_of(texts, st.floats(), st.integers(min_value=-(10**40), max_value=10**40), st.booleans())

FEW = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture
def market(question):
    return services.market_create(question=question)


@pytest.fixture
def reader_client(reader):
    client = Client()
    client.force_login(reader)
    return client


def money_rows() -> tuple[int, int, int]:
    return Trade.objects.count(), LedgerTransaction.objects.count(), Account.objects.count()


# --- the web: the live quote (JSON) and the trade form -------------------------------------------------


@pytest.mark.parametrize("field", ["amount", "shares"])
@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_web_quote_is_a_clear_400(client, market, field, value):
    response = client.get(
        reverse("market_quote", args=[market.question_id]), {"side": "buy", "outcome": 1, field: value}
    )
    assert response.status_code == 400
    assert response.json()["errors"]


@pytest.mark.parametrize("field", ["amount", "shares"])
@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_web_trade_is_a_form_error_and_changes_nothing(reader_client, market, field, value):
    before = money_rows()
    response = reader_client.post(
        reverse("market_trade", args=[market.question_id]), {"side": "buy", "outcome": 1, field: value}, follow=True
    )
    assert response.status_code == 200
    assert [m.level_tag for m in response.context["messages"]] == ["error"]
    assert money_rows() == before


@FEW
@given(value=texts, field=st.sampled_from(["amount", "shares"]), side=st.sampled_from(["buy", "sell"]))
def test_any_web_quote_is_a_quote_or_a_clear_400(client, market, value, field, side):
    response = client.get(
        reverse("market_quote", args=[market.question_id]), {"side": side, "outcome": 1, field: value}
    )
    assert response.status_code in (200, 400)
    if response.status_code == 400:
        assert response.json()["errors"]


@FEW
@given(value=texts, field=st.sampled_from(["amount", "shares"]))
def test_any_web_trade_is_a_trade_or_an_error_that_changes_nothing(reader_client, market, value, field):
    before = money_rows()
    response = reader_client.post(
        reverse("market_trade", args=[market.question_id]), {"side": "buy", "outcome": 1, field: value}, follow=True
    )
    assert response.status_code == 200
    levels = {m.level_tag for m in response.context["messages"]}
    assert levels in ({"success"}, {"error"})
    if levels == {"error"}:
        assert money_rows() == before


# --- the API: the quote and the trade ------------------------------------------------------------------


@pytest.mark.parametrize("field", ["amount", "shares"])
@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_api_quote_is_a_400_naming_the_field(api, market, field, value):
    url = f"/api/v1/questions/{market.question_id}/market/quote/"
    assert_error(api.get(url, {"side": "buy", "outcome": 1, field: value}), 400, "invalid", fields=(field,))


def post_json(client, data: dict):
    # json.dumps, not the client's renderer: it writes NaN and Infinity literals as a hostile client could.
    return client.post("/api/v1/trades/", json.dumps(data), content_type="application/json")


@pytest.mark.parametrize("field", ["amount", "shares", "limit_price", "min_shares", "max_cost"])
@pytest.mark.parametrize("value", [*HOSTILE, 1e30, -1e30, 1e308, float("nan"), float("inf"), 10**40])
def test_hostile_api_trade_is_a_400_and_changes_nothing(reader, market, field, value):
    data = {"question": market.question_id, "side": "buy", "outcome": 1, "idempotency_key": "k"}
    data |= {"shares": "5"} if field in ("amount", "max_cost") else {"amount": "5"}
    before = money_rows()
    response = post_json(client_for(reader), {**data, field: value})
    assert response.status_code == 400, response.content
    assert_error(response, 400, response.json()["error"]["code"])
    assert money_rows() == before


@FEW
@given(
    value=json_values,
    field=st.sampled_from(["amount", "shares", "limit_price", "min_shares", "max_cost"]),
    side=st.sampled_from(["buy", "sell"]),
)
def test_any_api_trade_is_a_trade_or_a_400_that_changes_nothing(reader, market, value, field, side):
    data = {"question": market.question_id, "side": side, "outcome": 1, "idempotency_key": "k" + repr(value)[:70]}
    data |= {"shares": "5"} if field in ("amount", "max_cost") or side == "sell" else {"amount": "5"}
    before = money_rows()
    response = post_json(client_for(reader), {**data, field: value})
    assert response.status_code in (200, 201, 400), response.content
    if response.status_code == 400:
        assert_error(response, 400, response.json()["error"]["code"])
        assert money_rows() == before


@FEW
@given(value=json_values, field=st.sampled_from(["amount", "shares"]), side=st.sampled_from(["buy", "sell"]))
def test_any_api_quote_is_a_quote_or_a_400(api, market, value, field, side):
    url = f"/api/v1/questions/{market.question_id}/market/quote/"
    response = api.get(url, {"side": side, "outcome": 1, field: value})
    assert response.status_code in (200, 400), response.content
    if response.status_code == 400:
        assert_error(response, 400, "invalid")
