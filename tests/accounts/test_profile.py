"""The profile page: display name (validated by ``profile_update``), public or private, e-mail address."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from forecasting.models import ForecasterProfile
from forecasting.services.profiles import (
    DELETED_LABEL,
    PRIVATE_LABEL,
    display_name_clean,
    profile_display_name,
    profile_is_public,
    profile_update,
    public_label,
)
from tests.factories import UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hashing")]

PASSWORD = "correct horse battery"  # the factories' password


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


# --- display names, in the service ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("  Ada Lovelace  ", "Ada Lovelace"),
        ("Ada   \u00a0 Lovelace", "Ada Lovelace"),  # runs of spaces, of any kind, become one
        ("ＡＤＡ", "ADA"),  # full-width letters are the letters they look like (NFKC)
        ("Zoë 🦊", "Zoë 🦊"),
        ("Editorial Eve", "Editorial Eve"),  # "editor" inside a longer word is fine
        ("", ""),
        ("   ", ""),
        ("x" * 60, "x" * 60),
    ],
)
def test_display_names_are_normalised(typed, stored):
    assert display_name_clean(typed, user=UserFactory()) == stored


@pytest.mark.parametrize(
    ("typed", "why"),
    [
        ("x" * 61, "At most 60"),
        ("Ada\u202eecalovol", "letters, digits"),  # a bidirectional override reverses what follows
        ("Ada\u200b", "letters, digits"),  # zero-width space
        ("Ada\x00", "letters, digits"),
        ("Ada\nLovelace", "one line"),
        ("Editor", "role"),
        ("the ADMIN", "role"),
        ("Site staff", "role"),
        ("Official Newsroom", "role"),
        ("ｅｄｉｔｏｒ", "role"),  # full-width
        ("Private forecaster", "role"),  # the site's own label for private readers
        ("private-forecaster", "role"),
        ("Deleted reader", "role"),
        ("deleted-1a2b3c", "role"),
    ],
)
def test_display_names_that_mislead_are_refused(typed, why):
    with pytest.raises(ValidationError, match=why):
        display_name_clean(typed, user=UserFactory())


def test_another_readers_username_is_refused_in_any_case_but_ones_own_is_fine():
    UserFactory(username="alice")
    bob = UserFactory(username="bob")
    for name in ("alice", "ALICE", "Alice", "ａｌｉｃｅ"):
        with pytest.raises(ValidationError, match="another reader's username"):
            profile_update(user=bob, is_public=True, display_name=name)
    assert not ForecasterProfile.objects.filter(user=bob).exists()  # nothing written
    assert profile_update(user=bob, is_public=True, display_name="BOB").display_name == "BOB"


def test_profile_update_keeps_the_display_name_unless_given():
    reader = UserFactory()
    profile_update(user=reader, is_public=True, display_name="Ada")
    profile_update(user=reader, is_public=False)
    assert profile_display_name(user=reader) == "Ada" and not profile_is_public(user=reader)
    profile_update(user=reader, is_public=False, display_name="")
    assert profile_display_name(user=reader) == ""


def test_public_labels():
    assert public_label(username="ada", display_name="Ada L.", shown=True) == "Ada L."
    assert public_label(username="ada", display_name="", shown=True) == "ada"
    assert public_label(username="ada", display_name="Ada L.", shown=False) == PRIVATE_LABEL
    assert public_label(username="deleted-0123abcd", display_name="", shown=True) == DELETED_LABEL


# --- the page ---------------------------------------------------------------------------------------


def test_the_page_shows_every_setting_and_a_get_writes_nothing():
    reader = UserFactory(username="alice", email="alice@example.org")
    page = client_for(reader).get(reverse("profile_settings"))
    assert page.status_code == 200
    html = page.content.decode()
    for expected in (
        'name="display_name"',
        'value="private" id="id_visibility_0" required checked',
        "alice@example.org",
        f'action="{reverse("email_change")}"',
        f'href="{reverse("password_change")}"',
        f'href="{reverse("account_delete")}"',
        f'href="{reverse("download_mine")}"',
    ):
        assert expected in html, expected
    assert not ForecasterProfile.objects.exists()


def test_the_notification_preferences_link_appears_once_the_route_exists():
    from django.urls import NoReverseMatch

    html = client_for(UserFactory()).get(reverse("profile_settings")).content.decode()
    try:
        url = reverse("notification_preferences")
    except NoReverseMatch:
        assert "Notification preferences" not in html
    else:
        assert f'href="{url}">Notification preferences' in html


def test_a_reader_sets_a_display_name_and_a_public_profile():
    reader = UserFactory(username="alice")
    client = client_for(reader)
    response = client.post(reverse("profile_settings"), {"display_name": "  Ada  L. ", "visibility": "public"})
    assert response.status_code == 302
    assert profile_display_name(user=reader) == "Ada L." and profile_is_public(user=reader)
    page = client.get(reverse("profile_settings")).content.decode()
    assert "now public" in page and "under the name “Ada L.”" in page and 'value="Ada L."' in page


def test_a_refused_display_name_is_explained_in_place_and_changes_nothing():
    UserFactory(username="bob")
    reader = UserFactory(username="alice")
    profile_update(user=reader, is_public=False, display_name="Ada")
    response = client_for(reader).post(reverse("profile_settings"), {"display_name": "Bob", "visibility": "public"})
    assert response.status_code == 400
    html = response.content.decode()
    assert "another reader&#x27;s username" in html
    assert re.search(r'name="display_name"[^>]*aria-invalid="true"', html)
    assert profile_display_name(user=reader) == "Ada" and not profile_is_public(user=reader)


# --- the e-mail address ----------------------------------------------------------------------------


def test_a_reader_changes_the_e_mail_address_with_the_password(django_capture_on_commit_callbacks):
    reader = UserFactory(username="alice", email="alice@example.org")
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(reader).post(
            reverse("email_change"), {"email": " Ada@Example.ORG ", "password": PASSWORD}
        )
    assert response.status_code == 302 and response["Location"] == reverse("profile_settings")
    reader.refresh_from_db()
    assert reader.email == "ada@example.org"
    (notice,) = mail.outbox  # the old address is told
    assert notice.to == ["alice@example.org"] and "ada@example.org" in notice.body


@pytest.mark.parametrize(
    ("data", "why"),
    [
        ({"email": "ada@example.org", "password": "wrong"}, "not your password"),
        ({"email": "BOB@example.org", "password": PASSWORD}, "already exists"),
        ({"email": "not an address", "password": PASSWORD}, "valid email"),
        ({"email": "ada@example.org"}, "required"),
    ],
)
def test_a_refused_e_mail_change_changes_nothing(data, why):
    UserFactory(username="bob", email="bob@example.org")
    reader = UserFactory(username="alice", email="alice@example.org")
    response = client_for(reader).post(reverse("email_change"), data)
    assert response.status_code == 400
    assert why in response.content.decode()
    assert User.objects.get(pk=reader.pk).email == "alice@example.org"
    assert mail.outbox == []


def test_the_e_mail_change_is_post_only_and_for_signed_in_readers():
    assert client_for(UserFactory()).get(reverse("email_change")).status_code == 405
    for answer in (Client().get(reverse("email_change")), Client().post(reverse("email_change"), {})):
        assert answer.status_code == 302 and reverse("login") in answer["Location"]


# --- where the display name shows -----------------------------------------------------------------


@pytest.fixture
def board_readers(resolved_question):
    """The three scored readers of ``resolved_question``: public with a display name, public without,
    private with the display name "Secret" (which no public page may show)."""
    ids = sorted(set(resolved_question.scores.values_list("forecaster_id", flat=True)))
    public, plain, private = (User.objects.get(pk=pk) for pk in ids)
    profile_update(user=public, is_public=True, display_name="Ada L.")
    profile_update(user=plain, is_public=True)
    profile_update(user=private, is_public=False, display_name="Secret")
    return public, plain, private


def test_the_leaderboard_shows_display_names_of_public_readers_only(board_readers):
    public, plain, private = board_readers
    page = Client().get(reverse("leaderboard")).content.decode()
    assert f'<a href="{reverse("track_record", args=[public.username])}">Ada L.</a>' in page
    assert f">{plain.username}</a>" in page
    assert "Secret" not in page and private.username not in page and PRIVATE_LABEL in page
    # The private reader sees their own row under their display name.
    own = client_for(private).get(reverse("leaderboard")).content.decode()
    assert "Secret</a> (you)" in own


def test_the_track_record_is_titled_with_the_display_name(board_readers):
    public, _, private = board_readers
    page = Client().get(reverse("track_record", args=[public.username])).content.decode()
    assert "<h1>Ada L.'s track record</h1>" in page and "<title>Ada L.'s track record" in page
    hidden = Client().get(reverse("track_record", args=[private.username])).content.decode()
    assert "Secret" not in hidden


def test_a_deleted_reader_is_listed_as_deleted_and_has_no_track_record(board_readers):
    from accounts.services import account_delete

    public, _, _ = board_readers
    deleted = account_delete(user=public, password=PASSWORD)
    page = Client().get(reverse("leaderboard")).content.decode()
    assert DELETED_LABEL in page and "Ada L." not in page and deleted.username not in page
    assert Client().get(reverse("track_record", args=[deleted.username])).status_code == 404
