"""The reader's pages: the bell, the list (GET writes nothing), opening an item, mark all read, the
preferences, one-click unsubscribe (signed token, GET writes nothing, POST without CSRF), and the
services the accounts pages use."""

import re

import pytest
from django.core import mail, signing
from django.test import Client
from django.urls import reverse

from notifications import emails, services
from notifications.models import Delivery, EmailStatus, Kind, Notification, NotificationPreference
from tests.factories import UserFactory, editor_user

pytestmark = pytest.mark.django_db


def notify(user, n=1, kind=Kind.COMMENT_REPLY, url="/questions/1/"):
    services.notifications_create(
        drafts=[services.Draft(user.pk, kind, f"{kind}:{i}", f"Notice {i}", url, f"Body {i}.") for i in range(n)]
    )


@pytest.fixture
def client_for(settings):
    settings.AXES_ENABLED = False

    def make(user, **kwargs):
        client = Client(**kwargs)
        client.force_login(user)
        return client

    return make


def test_the_bell_shows_the_unread_count_to_signed_in_readers_only(client_for, reader):
    notify(reader, 3)
    page = client_for(reader).get(reverse("home")).content.decode()
    assert 'aria-label="Notifications, 3 unread"' in page
    assert re.search(r"data-bell-count>3<", page)
    assert "data-bell" not in Client().get(reverse("home")).content.decode()


def test_the_bell_without_unread_items_has_no_count(client_for, reader):
    page = client_for(reader).get(reverse("home")).content.decode()
    assert 'aria-label="Notifications"' in page and "data-bell-count" not in page


def test_the_list_shows_newest_first_and_reading_it_writes_nothing(client_for, reader):
    notify(reader, 2)
    notify(UserFactory(), 1)  # someone else's
    response = client_for(reader).get(reverse("notification_list"))
    assert response.status_code == 200
    titles = re.findall(r'class="notification-title">([^<]+)<', response.content.decode())
    assert titles == ["Notice 1", "Notice 0"]
    assert Notification.objects.filter(read_at__isnull=True).count() == 3


def test_the_list_is_paginated(client_for, reader):
    notify(reader, 25)
    client = client_for(reader)
    first = client.get(reverse("notification_list")).content.decode()
    second = client.get(reverse("notification_list") + "?page=2").content.decode()
    assert first.count("data-notification=") == 20 and second.count("data-notification=") == 5
    assert "Page 1 of 2" in first


def test_opening_an_item_marks_it_read_and_goes_there(client_for, reader):
    notify(reader, 2)
    item = Notification.objects.get(title="Notice 0")
    client = client_for(reader)
    assert client.get(reverse("notification_open", args=[item.pk])).status_code == 405
    response = client.post(reverse("notification_open", args=[item.pk]))
    assert response.status_code == 302 and response["Location"] == "/questions/1/"
    item.refresh_from_db()
    assert item.read_at is not None
    assert services.unread_count(user=reader) == 1


def test_an_item_pointing_off_site_is_not_followed(client_for, reader):
    notify(reader, url="https://evil.example/")
    item = Notification.objects.get()
    response = client_for(reader).post(reverse("notification_open", args=[item.pk]))
    assert response["Location"] == reverse("notification_list")


def test_nobody_opens_another_readers_item(client_for, reader):
    notify(UserFactory())
    item = Notification.objects.get()
    assert client_for(reader).post(reverse("notification_open", args=[item.pk])).status_code == 404
    assert Notification.objects.get().read_at is None


def test_mark_all_read(client_for, reader):
    notify(reader, 3)
    notify(UserFactory(), 1)
    response = client_for(reader).post(reverse("notifications_read_all"))
    assert response.status_code == 302
    assert services.unread_count(user=reader) == 0
    assert Notification.objects.filter(read_at__isnull=True).count() == 1


def test_the_preferences_page_shows_the_defaults_without_writing_and_saves_a_change(client_for, reader):
    client = client_for(reader)
    page = client.get(reverse("notification_preferences")).content.decode()
    assert not NotificationPreference.objects.exists()
    assert Kind.OVERDUE_DIGEST.label not in page  # editors only
    assert re.search(r'name="resolved" value="email"[^>]*checked', page)
    values = {kind: Delivery.SITE for kind in Kind.values if kind != Kind.OVERDUE_DIGEST}
    values[Kind.COMMUNITY_MOVED] = Delivery.OFF
    response = client.post(reverse("notification_preferences"), values)
    assert response.status_code == 302
    preference = NotificationPreference.objects.get(user=reader)
    assert preference.resolved == Delivery.SITE and preference.community_moved == Delivery.OFF
    assert preference.overdue_digest == Delivery.EMAIL  # untouched


def test_the_preferences_form_refuses_nonsense(client_for, reader):
    response = client_for(reader).post(reverse("notification_preferences"), {"resolved": "loudly"})
    assert response.status_code == 400
    assert not NotificationPreference.objects.exists()


def test_editors_choose_their_digest_too(client_for):
    page = client_for(editor_user()).get(reverse("notification_preferences")).content.decode()
    assert Kind.OVERDUE_DIGEST.label in page


def test_unsubscribing_from_an_emails_link(reader):
    notify(reader)
    emails.emails_send()
    (message,) = mail.outbox
    url = message.extra_headers["List-Unsubscribe"][1:-1].removeprefix("https://forecasts.example")
    browser = Client(enforce_csrf_checks=True)

    page = browser.get(url)
    assert page.status_code == 200 and b"Stop these e-mails?" in page.content
    assert not NotificationPreference.objects.exists()  # GET writes nothing (mail scanners prefetch links)

    # RFC 8058 one-click: a POST without cookies or CSRF token.
    response = browser.post(url, {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200 and b"You are unsubscribed" in response.content
    preference = NotificationPreference.objects.get(user=reader)
    assert preference.comment_reply == Delivery.SITE  # e-mails stop, the bell still tells
    assert preference.resolved == Delivery.EMAIL  # other kinds unchanged
    assert browser.post(url).status_code == 200  # twice is harmless


def test_unsubscribing_skips_the_pending_emails_of_that_kind(reader):
    notify(reader, 2)
    token = services.unsubscribe_token(user_id=reader.pk, kind=Kind.COMMENT_REPLY)
    Client().post(reverse("notification_unsubscribe", args=[token]))
    assert set(Notification.objects.values_list("email_status", flat=True)) == {EmailStatus.SKIPPED}
    assert emails.emails_send() == 0


@pytest.mark.parametrize("method", ["get", "post"])
def test_a_tampered_or_foreign_token_is_refused(reader, method):
    good = services.unsubscribe_token(user_id=reader.pk, kind=Kind.RESOLVED)
    forged = signing.dumps([reader.pk, Kind.RESOLVED], salt="another.salt")
    tampered = good.replace(f"{reader.pk}", f"{reader.pk + 1}", 1) if str(reader.pk) in good else good[:-2] + "xx"
    for token in (tampered, forged, "nonsense", good[:-1]):
        response = getattr(Client(), method)(reverse("notification_unsubscribe", args=[token]))
        assert response.status_code == 400, token
        assert b"This link does not work" in response.content
    assert not NotificationPreference.objects.exists()


def test_a_token_for_a_deleted_account_is_not_found(reader):
    token = services.unsubscribe_token(user_id=reader.pk + 1000, kind=Kind.RESOLVED)
    assert Client().post(reverse("notification_unsubscribe", args=[token])).status_code == 404


def test_the_token_round_trip():
    token = services.unsubscribe_token(user_id=42, kind=Kind.STALE_FORECAST)
    assert services.unsubscribe_token_read(token) == (42, Kind.STALE_FORECAST)
    with pytest.raises(signing.BadSignature):
        services.unsubscribe_token_read(signing.dumps([42, "everything"], salt=services.core.UNSUBSCRIBE_SALT))


def test_pages_need_a_sign_in():
    for name in ("notification_list", "notification_preferences"):
        response = Client().get(reverse(name))
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]


# --- what the accounts pages use ----------------------------------------------------------------------


def test_preferences_for_is_an_unsaved_default_until_saved(reader):
    preference = services.preferences_for(user=reader)
    assert (
        preference.pk is None and preference.resolved == Delivery.EMAIL and preference.stale_forecast == Delivery.SITE
    )
    assert not NotificationPreference.objects.exists()
    services.preferences_update(user=reader, values={"stale_forecast": Delivery.EMAIL})
    assert services.preferences_for(user=reader).stale_forecast == Delivery.EMAIL


def test_erasing_a_users_data(reader):
    other = UserFactory()
    notify(reader, 2)
    notify(other, 1)
    services.preferences_update(user=reader, values={"resolved": Delivery.OFF})
    services.notification_data_erase(user=reader)
    assert list(Notification.objects.values_list("recipient_id", flat=True)) == [other.pk]
    assert not NotificationPreference.objects.exists()


def test_the_admin_shows_notifications_read_only(admin_client, reader):
    notify(reader)
    item = Notification.objects.get()
    assert admin_client.get(reverse("admin:notifications_notification_changelist")).status_code == 200
    assert admin_client.get(reverse("admin:notifications_notification_change", args=[item.pk])).status_code == 200
    assert admin_client.post(reverse("admin:notifications_notification_delete", args=[item.pk])).status_code == 403
