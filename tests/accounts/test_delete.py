"""Deleting an account: anonymised, never deleted, so every aggregate and leaderboard stays the same."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.contrib.auth import HASH_SESSION_KEY
from django.contrib.auth.models import Group, User
from django.contrib.sessions.models import Session
from django.core.exceptions import ValidationError
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from accounts import services
from comments.models import Comment
from forecasting import services as forecasting_services
from forecasting.models import AggregateSnapshot, AggregateState, ForecasterProfile, Prediction, Score
from forecasting.roles import EDITORS
from notifications.models import Delivery, Kind, Notification, NotificationPreference
from notifications.services import preferences_update
from tests.factories import CommentFactory, UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hashing")]

PASSWORD = "correct horse battery"  # the factories' password


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def delete(client: Client, user, **overrides):
    data = {"password": PASSWORD, "confirm": user.username} | overrides
    return client.post(reverse("account_delete"), data)


def notify(user) -> None:
    """A notification and a saved preference for ``user`` (what deletion erases)."""
    Notification.objects.create(recipient=user, kind=Kind.RESOLVED, key=f"test:{user.pk}", title="Resolved", url="/")
    preferences_update(user=user, values={Kind.RESOLVED: Delivery.SITE})


def notification_rows(user) -> int:
    return (
        Notification.objects.filter(recipient=user).count() + NotificationPreference.objects.filter(user=user).count()
    )


def board_numbers(board) -> list[tuple]:
    return [
        (r.rank, r.questions, r.mean_peer, r.total_peer, r.coverage, r.mean_brier)
        for r in [*board.ranked, *board.unranked]
    ]


def aggregates(question) -> tuple:
    state = AggregateState.objects.get(question=question)
    snapshots = list(
        AggregateSnapshot.objects.filter(question=question).values_list("method", "probabilities", "forecasters")
    )
    return bytes(state.forecaster_ids), bytes(state.probabilities), snapshots


@pytest.fixture
def deleted_reader_world(opened_question, resolved_question):
    """A reader with forecasts on an open question (aggregates) and scores on a resolved one."""
    reader = Score.objects.filter(question=resolved_question).order_by("forecaster_id").first().forecaster
    forecasting_services.profile_update(user=reader, is_public=True, display_name="Ada")
    for user, p in ((reader, "0.3"), (UserFactory(), "0.6"), (UserFactory(), "0.8")):
        forecasting_services.prediction_create(question=opened_question, forecaster=user, probability=Decimal(p))
    return reader, opened_question


def everything_counted(question) -> dict:
    """What a deletion must leave as it was: the question's aggregates, both leaderboards' numbers,
    every forecast and score."""
    return {
        "aggregates": aggregates(question),
        "community": forecasting_services.community_forecast(question=question),
        "public board": board_numbers(forecasting_services.public_leaderboard(min_coverage=0)),
        "board": [
            (r.mean_peer, r.total_peer, r.coverage) for r in forecasting_services.leaderboard(min_coverage=0).ranked
        ],
        "predictions": list(Prediction.objects.order_by("id").values_list("id", "forecaster_id", "probability")),
        "scores": list(Score.objects.order_by("id").values_list("id", "forecaster_id", "kind", "value")),
    }


def test_deletion_keeps_aggregates_and_leaderboards_identical(deleted_reader_world):
    reader, open_question = deleted_reader_world
    before = everything_counted(open_question)
    old_username = reader.username
    comment = CommentFactory(question=open_question, author=reader, body="My reasoning.")

    response = delete(client_for(reader), reader)
    assert response.status_code == 302 and response["Location"] == reverse("home")

    assert everything_counted(open_question) == before
    # Nobody on the public board goes by the old name or the display name any more.
    labels = [r.label for r in forecasting_services.public_leaderboard(min_coverage=0).ranked]
    assert old_username not in labels and "Ada" not in labels
    # The comment stays, its author the anonymised row.
    assert Comment.objects.get(pk=comment.pk).body == "My reasoning."


def test_the_account_is_anonymised_not_deleted(reader):
    reader.first_name, reader.last_name = "Alice", "Liddell"
    reader.save()
    reader.groups.add(Group.objects.get(name=EDITORS))
    forecasting_services.profile_update(user=reader, is_public=True, display_name="Ada")
    other = UserFactory(username="bob")
    notify(reader)
    notify(other)

    deleted = services.account_delete(user=reader, password=PASSWORD)

    row = User.objects.get(pk=reader.pk)  # the row stays
    assert re.fullmatch(r"deleted-[0-9a-f]{16}", row.username)  # 64 random bits, nothing of the id or name
    assert deleted.username == row.username
    assert (row.email, row.first_name, row.last_name) == ("", "", "")
    assert not row.has_usable_password() and not row.is_active
    assert not row.groups.exists() and not row.user_permissions.exists()
    profile = ForecasterProfile.objects.get(user=row)
    assert (profile.is_public, profile.display_name) == (False, "")
    assert notification_rows(row) == 0  # notifications and preferences erased
    assert User.objects.get(pk=other.pk).username == "bob" and notification_rows(other) == 2  # nobody else's
    # Two deletions never share a username, nor reveal the order of the ids.
    second = services.account_delete(user=other, password=PASSWORD)
    assert second.username != row.username


def test_every_session_and_token_of_the_account_ends(reader):
    this_browser = client_for(reader)
    other_browser = Client()
    logged_in = other_browser.post(reverse("login"), {"username": "alice", "password": PASSWORD})
    assert logged_in.status_code == 302
    assert other_browser.get(reverse("profile_settings")).status_code == 200
    stored_hash = Session.objects.get(session_key=other_browser.session.session_key).get_decoded()[HASH_SESSION_KEY]
    token = Token.objects.create(user=reader)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert api.get(reverse("api:my-scores")).status_code == 200

    response = delete(this_browser, reader)
    assert response.status_code == 302
    # This browser is logged out at once, with a message.
    home = this_browser.get(response["Location"])
    assert not home.context["user"].is_authenticated
    assert "Your account is deleted" in home.content.decode()
    # The other browser at its next request: the session auth hash changed with the password.
    answer = other_browser.get(reverse("profile_settings"))
    assert answer.status_code == 302 and reverse("login") in answer["Location"]
    # Whatever the session store, no session made before can authenticate again: the hash each one
    # holds no longer matches the account's, and the account is inactive besides.
    assert User.objects.get(pk=reader.pk).get_session_auth_hash() != stored_hash
    # The API token is gone.
    assert not Token.objects.filter(user=reader).exists()
    assert api.get(reverse("api:my-scores")).status_code == 401


def test_the_deleted_reader_cannot_log_in_and_is_not_found_by_the_old_name(reader):
    old = reader.username
    deleted = services.account_delete(user=reader, password=PASSWORD)
    assert Client().get(reverse("track_record", args=[old])).status_code == 404
    for username in (old, deleted.username):
        response = Client().post(reverse("login"), {"username": username, "password": PASSWORD}, follow=True)
        assert not response.context["user"].is_authenticated
    token = APIClient().post(reverse("api:token"), {"username": old, "password": PASSWORD}, format="json")
    assert token.status_code == 400


def test_the_old_username_and_address_are_free_again(reader):
    services.account_delete(user=reader, password=PASSWORD)
    password = "a-long pass phrase"
    data = {"username": "alice", "email": "alice@example.org", "password1": password, "password2": password}
    assert Client().post(reverse("signup"), data).status_code == 302


@pytest.mark.parametrize(
    ("overrides", "why"),
    [
        ({"password": "wrong"}, "not your password"),
        ({"confirm": "ALICE"}, "not your username"),
        ({"confirm": ""}, "required"),
        ({"password": ""}, "required"),
    ],
)
def test_a_refused_deletion_changes_nothing(reader, overrides, why):
    forecasting_services.profile_update(user=reader, is_public=True, display_name="Ada")
    notify(reader)
    token = Token.objects.create(user=reader)
    client = client_for(reader)
    before = User.objects.filter(pk=reader.pk).values().get()

    response = delete(client, reader, **overrides)

    assert response.status_code == 400
    assert why in response.content.decode()
    assert "Nothing was deleted" in response.content.decode()
    assert User.objects.filter(pk=reader.pk).values().get() == before
    assert Token.objects.filter(pk=token.pk).exists()
    assert ForecasterProfile.objects.get(user=reader).display_name == "Ada"
    assert notification_rows(reader) == 2
    assert client.get(reverse("profile_settings")).status_code == 200  # still signed in


def test_the_service_refuses_a_wrong_password_and_staff(reader):
    notify(reader)
    with pytest.raises(ValidationError, match="not your password"):
        services.account_delete(user=reader, password="wrong")
    staff = UserFactory(is_staff=True)
    with pytest.raises(ValidationError, match="administrator"):
        services.account_delete(user=staff, password=PASSWORD)
    assert User.objects.get(pk=staff.pk).is_active and User.objects.get(pk=reader.pk).is_active
    assert notification_rows(reader) == 2
    deleted = services.account_delete(user=reader, password=PASSWORD)
    with pytest.raises(ValidationError, match="already deleted"):
        services.account_delete(user=deleted, password=PASSWORD)


def test_the_confirmation_page_explains_and_writes_nothing(reader):
    notify(reader)
    client = client_for(reader)
    with CaptureQueriesContext(connection) as queries:
        page = client.get(reverse("account_delete"))
    assert page.status_code == 200
    html = page.content.decode()
    expected_texts = (
        "Deleted reader",
        "[deleted reader]",
        "logged out everywhere",
        'name="password"',
        'name="confirm"',
    )
    for expected in expected_texts:
        assert expected in html, expected
    writes = [q["sql"] for q in queries if re.match(r"\s*(INSERT|UPDATE|DELETE)", q["sql"], re.IGNORECASE)]
    assert writes == []
    assert User.objects.get(pk=reader.pk).is_active and notification_rows(reader) == 2


def test_the_deletion_page_is_for_signed_in_readers():
    response = Client().get(reverse("account_delete"))
    assert response.status_code == 302 and reverse("login") in response["Location"]
    assert Client().post(reverse("account_delete"), {}).status_code == 302
