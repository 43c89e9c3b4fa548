"""Abuse limits: login lockouts (the form and the token endpoint), per-address sign-up and form limits,
and the API's write throttles. Each over-limit answer is a 429 with ``Retry-After`` that changes nothing."""

import datetime as dt
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from forecasting.models import Prediction
from tests.api_helpers import assert_error, client_for
from tests.factories import UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hashing")]

RIGHT = "correct horse battery"  # the factories' password


def _retry_after(response) -> int:
    assert response.status_code == 429, response.status_code
    seconds = int(response["Retry-After"])
    assert seconds > 0
    return seconds


def _cool_off_passes(settings):
    """Every recorded failure happened longer ago than the cool-off."""
    from axes.models import AccessAttempt

    AccessAttempt.objects.update(attempt_time=dt.datetime.now(dt.UTC) - settings.AXES_COOLOFF_TIME - dt.timedelta(1))


def _log_in(client, password, **extra):
    return client.post(reverse("login"), {"username": "alice", "password": password}, **extra)


def _token(client, password, **extra):
    return client.post("/api/v1/auth/token/", {"username": "alice", "password": password}, format="json", **extra)


@pytest.fixture
def generous_token_throttle(settings):
    """The lockout tests send more logins than the token endpoint's throttle lets through."""
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK.get("DEFAULT_THROTTLE_RATES", {}), "token": "1000/min"},
    }


# --- login lockouts (django-axes) ---------------------------------------------------------------------


def test_fifty_wrong_passwords_on_the_login_form_lock_the_account_out_even_for_the_right_one(reader):
    client = Client()
    for _ in range(50):
        assert _log_in(client, "wrong").status_code in (200, 429)
    response = _log_in(client, RIGHT)
    _retry_after(response)
    assert "_auth_user_id" not in client.session


def test_the_login_form_locks_out_at_the_limit_per_username_and_address_until_the_cool_off(settings, reader):
    settings.AXES_FAILURE_LIMIT = 3
    client = Client()
    assert [_log_in(client, "wrong").status_code for _ in range(2)] == [200, 200]
    assert _retry_after(_log_in(client, "wrong")) == int(settings.AXES_COOLOFF_TIME.total_seconds())
    _retry_after(_log_in(client, RIGHT))
    # Another address is not locked out for this username.
    assert _log_in(Client(), RIGHT, REMOTE_ADDR="10.0.0.9").status_code == 302
    _cool_off_passes(settings)
    assert _log_in(client, RIGHT).status_code == 302


def test_fifty_wrong_passwords_on_the_token_endpoint_lock_the_account_out(reader, generous_token_throttle):
    api = APIClient()
    for _ in range(50):
        assert _token(api, "wrong").status_code in (400, 429)
    response = _token(api, RIGHT)
    error = assert_error(response, 429, "locked_out")
    assert "token" not in response.json()
    assert _retry_after(response) > 0 and "Try again" in error["message"]


def test_the_token_endpoint_locks_out_at_the_limit_until_the_cool_off(settings, reader, generous_token_throttle):
    settings.AXES_FAILURE_LIMIT = 3
    api = APIClient()
    assert [_token(api, "wrong").status_code for _ in range(2)] == [400, 400]
    assert_error(_token(api, "wrong"), 429, "locked_out")
    assert_error(_token(api, RIGHT), 429, "locked_out")
    _cool_off_passes(settings)
    response = _token(api, RIGHT)
    assert response.status_code == 200 and response.json()["token"]


def test_a_successful_login_resets_the_failure_count(settings, reader):
    settings.AXES_FAILURE_LIMIT = 3
    client = Client()
    for _ in range(2):
        _log_in(client, "wrong")
    assert _log_in(client, RIGHT).status_code == 302
    client.logout()
    assert [_log_in(client, "wrong").status_code for _ in range(2)] == [200, 200]


# --- sign-ups, per address ------------------------------------------------------------------------------


def _sign_up(client, name, **extra):
    password = "a-long pass phrase"
    data = {"username": name, "email": f"{name}@example.org", "password1": password, "password2": password}
    return client.post(reverse("signup"), data, **extra)


def test_sign_ups_from_one_address_are_limited(settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "signup": "2/h"}
    assert [_sign_up(Client(), f"puppet{i}").status_code for i in range(2)] == [302, 302]
    response = _sign_up(Client(), "puppet2")
    _retry_after(response)
    assert not get_user_model().objects.filter(username="puppet2").exists()
    # Another address may still sign up.
    assert _sign_up(Client(), "someone", REMOTE_ADDR="10.0.0.7").status_code == 302


def test_the_sign_up_limit_is_on_by_default():
    for i in range(20):
        response = _sign_up(Client(), f"puppet{i}")
        if response.status_code == 429:
            break
    _retry_after(response)
    assert get_user_model().objects.count() == i


def test_the_sign_up_form_itself_is_not_limited(settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "signup": "1/h"}
    assert all(Client().get(reverse("signup")).status_code == 200 for _ in range(5))


# --- the forecast form, per address -----------------------------------------------------------------------


def test_the_forecast_form_is_limited_per_address(settings, reader, question):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "forecast": "2/m"}
    client = Client()
    client.force_login(reader)
    url = reverse("forecast_submit", args=[question.pk])
    assert [client.post(url, {"probability": p}).status_code for p in ("40", "45")] == [302, 302]
    _retry_after(client.post(url, {"probability": "50"}))
    assert list(Prediction.objects.values_list("probability", flat=True).order_by("id")) == [
        Decimal("0.4"),
        Decimal("0.45"),
    ]


# --- the API's throttles ----------------------------------------------------------------------------------


def _rates(settings, **rates):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK.get("DEFAULT_THROTTLE_RATES", {}), **rates},
    }


def test_the_token_endpoint_is_throttled_per_address(settings, reader):
    _rates(settings, token="3/min")
    api = APIClient()
    assert [_token(api, RIGHT).status_code for _ in range(3)] == [200, 200, 200]
    response = _token(api, RIGHT)
    assert_error(response, 429, "throttled")
    _retry_after(response)
    assert _token(APIClient(), RIGHT, REMOTE_ADDR="10.0.0.8").status_code == 200


def test_api_forecasts_are_throttled_per_user_and_reads_are_not(settings, reader, question):
    _rates(settings, predictions="2/min")
    api = client_for(reader)
    for p in ("0.4", "0.45"):
        assert (
            api.post("/api/v1/predictions/", {"question": question.pk, "probability": p}, format="json").status_code
            == 201
        )
    response = api.post("/api/v1/predictions/", {"question": question.pk, "probability": "0.5"}, format="json")
    assert_error(response, 429, "throttled")
    _retry_after(response)
    assert Prediction.objects.count() == 2
    assert api.get("/api/v1/predictions/").status_code == 200
    other = client_for(UserFactory())
    assert (
        other.post("/api/v1/predictions/", {"question": question.pk, "probability": "0.5"}, format="json").status_code
        == 201
    )
