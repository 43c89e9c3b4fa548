"""Sign-up: a username, a valid e-mail address no other account has (in any case), the password twice."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from accounts import services
from tests.factories import UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hashing")]

PASSWORD = "a-long pass phrase"


def sign_up(client: Client, **overrides):
    data = {"username": "newreader", "email": "New.Reader@Example.org", "password1": PASSWORD, "password2": PASSWORD}
    return client.post(reverse("signup"), data | overrides, follow=True)


def test_a_reader_signs_up_with_an_e_mail_address_and_is_logged_in():
    client = Client()
    response = sign_up(client)
    assert response.status_code == 200
    assert response.context["user"].username == "newreader"
    assert "Welcome, newreader" in response.content.decode()
    user = User.objects.get(username="newreader")
    assert user.email == "new.reader@example.org"  # normalised
    assert user.check_password(PASSWORD)


@pytest.mark.parametrize("email", ["", "not-an-address", "a@b", "  "])
def test_the_e_mail_address_is_required_and_must_be_valid(email):
    response = sign_up(Client(), email=email)
    assert response.status_code == 400
    assert "email" in response.context["form"].errors
    assert not User.objects.filter(username="newreader").exists()


@pytest.mark.parametrize("email", ["alice@example.org", "ALICE@EXAMPLE.ORG", " Alice@Example.org "])
def test_an_address_another_account_has_is_refused_in_any_case(email):
    UserFactory(username="alice", email="alice@example.org")
    response = sign_up(Client(), email=email)
    assert response.status_code == 400
    assert "An account with this e-mail address already exists" in response.content.decode()
    assert not User.objects.filter(username="newreader").exists()


def test_an_address_stored_in_another_case_before_normalisation_is_refused_too():
    UserFactory(username="legacy", email="Legacy@Example.ORG")  # an account from before normalisation
    assert sign_up(Client(), email="legacy@example.org").status_code == 400


def test_a_username_in_another_case_is_refused():
    UserFactory(username="alice")
    response = sign_up(Client(), username="ALICE")
    assert response.status_code == 400
    assert "username" in response.context["form"].errors


def test_usernames_of_deleted_accounts_are_reserved():
    response = sign_up(Client(), username="Deleted-abc")
    assert response.status_code == 400
    assert "deleted-" in response.context["form"].errors["username"][0]


def test_the_passwords_must_match_and_be_strong():
    assert sign_up(Client(), password2="something else entirely").status_code == 400
    assert sign_up(Client(), password1="123", password2="123").status_code == 400
    assert not User.objects.filter(username="newreader").exists()


def test_the_service_checks_the_address_again():
    UserFactory(username="alice", email="alice@example.org")
    with pytest.raises(ValidationError, match="already exists"):
        services.account_create(username="bob", email="ALICE@example.org", password=PASSWORD)
    with pytest.raises(ValidationError, match="e-mail address"):
        services.account_create(username="bob", email=" ", password=PASSWORD)
    assert not User.objects.filter(username="bob").exists()


def test_the_sign_up_form_asks_for_the_e_mail_address():
    page = Client().get(reverse("signup")).content.decode()
    assert 'type="email"' in page and 'name="email"' in page and "required" in page


def test_sign_ups_are_rate_limited_per_address(settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "signup": "1/h"}
    assert sign_up(Client()).status_code == 200
    response = Client().post(reverse("signup"), {"username": "second", "email": "second@example.org"})
    assert response.status_code == 429
    assert not User.objects.filter(username="second").exists()


def test_the_database_holds_one_account_per_address_when_two_sign_ups_race(monkeypatch):
    """The other sign-up writes the address between this one's check and its insert (simulated: the
    first check sees nothing); the unique index refuses the insert, answered as the form's error."""
    UserFactory(username="alice", email="alice@example.org")
    real_check = services.email_in_use
    checks = []

    def racing_check(email, exclude=None):
        checks.append(email)
        return False if len(checks) == 1 else real_check(email, exclude=exclude)

    monkeypatch.setattr(services, "email_in_use", racing_check)
    with pytest.raises(ValidationError, match="already exists"):
        services.account_create(username="bob", email="Alice@Example.org", password=PASSWORD)
    assert len(checks) == 2  # the insert was tried, and refused by the database
    assert User.objects.filter(email__iexact="alice@example.org").count() == 1
    assert not User.objects.filter(username="bob").exists()


def test_an_e_mail_change_cannot_take_another_accounts_address_even_unchecked(monkeypatch):
    UserFactory(username="alice", email="alice@example.org")
    bob = UserFactory(username="bob", email="bob@example.org")
    bob.set_password(PASSWORD)
    bob.save()
    monkeypatch.setattr(services, "email_in_use", lambda email, exclude=None: False)
    with pytest.raises(ValidationError, match="already exists"):
        services.account_email_change(user=bob, email="ALICE@example.org", password=PASSWORD)
    bob.refresh_from_db()
    assert bob.email == "bob@example.org"
