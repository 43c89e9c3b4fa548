"""Trades are rate-limited: the page's form per address, the API per user; a 429 with Retry-After trades nothing."""

import pytest
from django.test import Client
from django.urls import reverse

from market import services
from market.models import Trade
from tests.api_helpers import assert_error, client_for

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hashing")]


def test_the_trade_form_is_limited_per_address(settings, reader, question):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "trade": "2/m"}
    market = services.market_create(question=question)
    client = Client()
    client.force_login(reader)
    url = reverse("market_trade", args=[market.question_id])
    for key in ("k-1", "k-2"):
        assert client.post(url, {"side": "buy", "outcome": 1, "amount": "5", "idempotency_key": key}).status_code == 302
    response = client.post(url, {"side": "buy", "outcome": 1, "amount": "5", "idempotency_key": "k-3"})
    assert response.status_code == 429 and int(response["Retry-After"]) > 0
    assert Trade.objects.count() == 2


def test_api_trades_are_throttled_per_user(settings, reader, opened_question):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK.get("DEFAULT_THROTTLE_RATES", {}), "trades": "2/min"},
    }
    api = client_for(reader)
    data = {"question": opened_question.pk, "outcome": 1, "side": "buy", "amount": "5"}
    for key in ("k-1", "k-2"):
        assert api.post("/api/v1/trades/", data, format="json", HTTP_IDEMPOTENCY_KEY=key).status_code == 201
    response = api.post("/api/v1/trades/", data, format="json", HTTP_IDEMPOTENCY_KEY="k-3")
    assert_error(response, 429, "throttled")
    assert int(response["Retry-After"]) > 0
    assert Trade.objects.count() == 2
    assert api.get("/api/v1/trades/").status_code == 200
