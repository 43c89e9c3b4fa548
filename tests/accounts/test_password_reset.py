"""Password reset by e-mail, end to end through ``mail.outbox``; the password change."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from tests.factories import UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hashing")]

NEW_PASSWORD = "a brand new pass phrase 7"


def request_reset(client: Client, email: str, **extra):
    return client.post(reverse("password_reset"), {"email": email}, **extra)


def reset_link() -> str:
    (message,) = mail.outbox
    links = re.findall(r"https?://\S+", message.body)
    assert len(links) == 1, message.body
    return links[0]


def test_a_reader_resets_a_forgotten_password_from_the_e_mailed_link(settings):
    settings.SITE_URL = "https://forecasts.example.com"
    alice = UserFactory(username="alice", email="alice@example.org")
    client = Client()
    response = request_reset(client, "ALICE@example.org", HTTP_HOST="localhost")  # not the SITE_URL host
    assert response.status_code == 302 and response["Location"] == reverse("password_reset_done")

    (message,) = mail.outbox
    assert message.to == ["alice@example.org"]
    assert message.subject == "Reset your password on Newsroom Forecasts"
    assert "alice" in message.body and "<" not in message.body  # plain text
    link = reset_link()
    assert link.startswith("https://forecasts.example.com/accounts/reset/")  # SITE_URL, never the Host header
    path = link.removeprefix("https://forecasts.example.com")

    form_page = client.get(path, follow=True)
    assert form_page.status_code == 200 and form_page.context["validlink"]
    set_url = form_page.redirect_chain[-1][0]
    done = client.post(set_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}, follow=True)
    assert done.redirect_chain[-1][0] == reverse("password_reset_complete")
    assert "Your new password is set" in done.content.decode()
    alice.refresh_from_db()
    assert alice.check_password(NEW_PASSWORD)

    # The link works once.
    again = Client().get(path, follow=True)
    assert not again.context["validlink"]
    assert "This link does not work" in again.content.decode()

    # And the new password logs in.
    login = Client().post(reverse("login"), {"username": "alice", "password": NEW_PASSWORD}, follow=True)
    assert login.context["user"].is_authenticated


def test_the_done_page_is_the_same_for_an_unknown_address():
    UserFactory(username="alice", email="alice@example.org")
    known = request_reset(Client(), "alice@example.org", follow=True)
    unknown = request_reset(Client(), "nobody@example.org", follow=True)
    assert len(mail.outbox) == 1
    assert known.redirect_chain == unknown.redirect_chain
    assert known.status_code == unknown.status_code == 200
    strip = lambda page: re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", page.content.decode())  # noqa: E731
    assert strip(known) == strip(unknown)
    assert "If an account has that e-mail address" in known.content.decode()


def test_no_link_for_an_inactive_or_deleted_account():
    UserFactory(username="gone", email="gone@example.org", is_active=False)
    request_reset(Client(), "gone@example.org")
    assert mail.outbox == []


def test_a_refused_form_answers_400_and_sends_nothing():
    response = request_reset(Client(), "not an address")
    assert response.status_code == 400
    assert mail.outbox == []


def test_reset_requests_are_rate_limited_per_address(settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "password_reset": "2/h"}
    UserFactory(username="alice", email="alice@example.org")
    assert [request_reset(Client(), "alice@example.org").status_code for _ in range(2)] == [302, 302]
    limited = request_reset(Client(), "alice@example.org")
    assert limited.status_code == 429 and int(limited["Retry-After"]) >= 1
    assert len(mail.outbox) == 2
    # The page itself is not limited, and another address may still ask.
    assert Client().get(reverse("password_reset")).status_code == 200
    assert request_reset(Client(), "alice@example.org", REMOTE_ADDR="10.0.0.9").status_code == 302


def test_the_reset_route_is_ours_with_the_same_name():
    from accounts import views

    assert reverse("password_reset") == "/accounts/password_reset/"
    assert Client().get("/accounts/password_reset/").resolver_match.func is views.password_reset


def test_the_login_page_links_to_the_reset():
    page = Client().get(reverse("login")).content.decode()
    assert f'href="{reverse("password_reset")}"' in page and "Forgot your password?" in page


def test_a_signed_in_reader_changes_the_password(client):
    alice = UserFactory(username="alice")
    client.force_login(alice)
    page = client.get(reverse("password_change"))
    assert page.status_code == 200 and "Change your password" in page.content.decode()
    response = client.post(
        reverse("password_change"),
        {"old_password": "correct horse battery", "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
        follow=True,
    )
    assert response.redirect_chain[-1][0] == reverse("password_change_done")
    assert "Your password is changed" in response.content.decode()
    alice.refresh_from_db()
    assert alice.check_password(NEW_PASSWORD)
