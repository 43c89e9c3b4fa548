"""Each kind of notice, once per event and reader however often its task runs: closing soon, the
community moved, a stale forecast, the editors' daily digest and replies to your comments."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core import mail
from django.utils import timezone

from comments import services as comment_services
from forecasting import services
from forecasting.models import Question
from notifications import tasks
from notifications.models import Delivery, EmailStatus, Kind, Notification, NotificationPreference
from tests.factories import PredictionFactory, QuestionFactory, UserFactory, editor_user

from .conftest import forecast_question

pytestmark = pytest.mark.django_db


def all_by_email(*users):
    for user in users:
        NotificationPreference.objects.update_or_create(
            user=user, defaults={kind: Delivery.EMAIL for kind in Kind.values}
        )


def notices(kind):
    return Notification.objects.filter(kind=kind).order_by("recipient_id", "id")


# --- closing soon -------------------------------------------------------------------------------------


def test_closing_soon_once_per_question_and_reader():
    soon, readers = forecast_question(2, closes_at=timezone.now() + dt.timedelta(hours=5))
    _later, _ = forecast_question(1, title="Later?", closes_at=timezone.now() + dt.timedelta(days=3))
    PredictionFactory(question=soon, forecaster=readers[0], probability=Decimal("0.7"))  # an update: still once
    all_by_email(*readers)
    tasks.notify_closing_soon()
    tasks.notify_closing_soon()
    assert [n.recipient for n in notices(Kind.CLOSING_SOON)] == readers
    assert all(n.question == soon and n.title == "Closing soon: Will it rain?" for n in notices(Kind.CLOSING_SOON))
    assert len(mail.outbox) == 2


def test_closing_soon_is_in_the_site_only_by_default():
    forecast_question(1, closes_at=timezone.now() + dt.timedelta(hours=5))
    tasks.notify_closing_soon()
    assert notices(Kind.CLOSING_SOON).get().email_status == EmailStatus.SKIPPED
    assert not mail.outbox


# --- the community moved ------------------------------------------------------------------------------


@pytest.fixture
def crowd_question(editor):
    return services.question_open(question=QuestionFactory(status=Question.Status.DRAFT), actor=editor)


def forecast(question, user, p):
    return services.prediction_create(question=question, forecaster=user, probability=Decimal(p))


def test_the_community_moving_away_from_your_forecast_is_news_once_per_forecast(crowd_question, settings):
    alice, bob, carol, dan = UserFactory.create_batch(4)
    all_by_email(alice, bob)
    first = forecast(crowd_question, alice, "0.20")
    forecast(crowd_question, bob, "0.80")
    forecast(crowd_question, carol, "0.85")
    forecast(crowd_question, dan, "0.90")  # the community is now far above alice's 20%, near bob's 80%
    tasks.notify_community_moved()
    tasks.notify_community_moved()
    (notice,) = notices(Kind.COMMUNITY_MOVED)
    assert notice.recipient == alice and notice.key == f"moved:{first.pk}"
    assert "you said 20%" in notice.body
    assert len(mail.outbox) == 1

    # A new forecast by alice, then the crowd moves again: a new notice for the new forecast.
    forecast(crowd_question, alice, "0.30")
    forecast(crowd_question, UserFactory(), "0.95")
    tasks.notify_community_moved()
    assert notices(Kind.COMMUNITY_MOVED).filter(recipient=alice).count() == 2


def test_nobody_hears_of_their_own_forecast_moving_the_crowd(crowd_question):
    alice, bob = UserFactory.create_batch(2)
    forecast(crowd_question, alice, "0.50")
    forecast(crowd_question, bob, "0.99")  # bob is far from... himself: his is the newest number
    tasks.notify_community_moved()
    assert not notices(Kind.COMMUNITY_MOVED).filter(recipient=bob).exists()


def test_within_the_threshold_nobody_is_told(crowd_question, settings):
    settings.NOTIFY_COMMUNITY_MOVE_POINTS = 50
    alice, bob = UserFactory.create_batch(2)
    forecast(crowd_question, alice, "0.20")
    forecast(crowd_question, bob, "0.80")
    tasks.notify_community_moved()
    assert not notices(Kind.COMMUNITY_MOVED).exists()


# --- stale forecasts ----------------------------------------------------------------------------------


def test_a_stale_forecast_is_news_once_per_forecast(settings):
    settings.NOTIFY_STALE_FORECAST_DAYS = 5  # forecast_question's forecasts are 10 days old
    question, (alice, bob) = forecast_question(2)
    PredictionFactory(question=question, forecaster=bob, probability=Decimal("0.6"))
    forecast_question(1, title="Closed?", status=Question.Status.CLOSED)  # not open: no reminder
    all_by_email(alice, bob)
    tasks.remind_stale_forecasts()
    tasks.remind_stale_forecasts()
    (notice,) = notices(Kind.STALE_FORECAST)
    assert notice.recipient == alice and notice.question == question
    assert notice.title == "Your forecast is 10 days old: Will it rain?"
    assert notice.key == f"stale:{question.predictions.get(forecaster=alice).pk}"
    assert len(mail.outbox) == 1  # not bob: his latest forecast is new


# --- editors' digest ----------------------------------------------------------------------------------


def test_editors_get_one_digest_a_day_listing_the_overdue_questions():
    erin, ed = editor_user(), editor_user()
    reader = UserFactory()
    past = timezone.now() - dt.timedelta(days=1)
    QuestionFactory(title="Closed, unresolved?", status=Question.Status.CLOSED)
    QuestionFactory(title="Open past its close?", opens_at=past - dt.timedelta(days=5), closes_at=past)
    QuestionFactory(title="Still open?")
    QuestionFactory(title="Resolved?", status=Question.Status.RESOLVED)
    tasks.remind_overdue_resolutions()
    tasks.remind_overdue_resolutions()
    digests = notices(Kind.OVERDUE_DIGEST)
    assert [n.recipient for n in digests] == [erin, ed]
    assert not digests.filter(recipient=reader).exists()
    digest = digests[0]
    assert digest.title == "2 questions awaiting resolution"
    assert "Closed, unresolved?" in digest.body and "Open past its close?" in digest.body
    assert "Still open?" not in digest.body and "Resolved?" not in digest.body
    assert len(mail.outbox) == 2  # e-mail is on by default for the digest

    # The next day, another digest.
    Notification.objects.update(key="overdue:2000-01-01")
    tasks.remind_overdue_resolutions()
    assert notices(Kind.OVERDUE_DIGEST).count() == 4


def test_no_digest_when_nothing_is_overdue():
    editor_user()
    QuestionFactory(title="Still open?")
    tasks.remind_overdue_resolutions()
    assert not Notification.objects.exists()


# --- replies ------------------------------------------------------------------------------------------


@pytest.fixture
def thread(run_commits):
    question = QuestionFactory()
    alice, bob = UserFactory.create_batch(2)
    with run_commits():
        top = comment_services.comment_create(question=question, author=alice, body="I think yes.")
    return question, alice, bob, top


def test_a_reply_tells_the_comments_author_once(thread, run_commits):
    question, alice, bob, top = thread
    with run_commits():
        reply = comment_services.comment_create(question=question, author=bob, body="Why?", parent=top)
    tasks.notify_comment_reply(reply.pk)
    (notice,) = Notification.objects.all()
    assert notice.recipient == alice and notice.kind == Kind.COMMENT_REPLY
    assert notice.title == f"{bob.username} replied to your comment on “{question.title}”"
    assert notice.body == "Why?" and notice.url == f"{question.get_absolute_url()}#comment-{reply.pk}"
    assert [m.to for m in mail.outbox] == [[alice.email]]


def test_replying_to_yourself_or_a_top_level_comment_tells_nobody(thread, run_commits):
    question, alice, bob, top = thread
    with run_commits():
        comment_services.comment_create(question=question, author=alice, body="Also...", parent=top)
        comment_services.comment_create(question=question, author=bob, body="New thread.")
    assert not Notification.objects.exists()
    assert not mail.outbox


def test_a_hidden_reply_is_not_notified(thread, editor):
    question, _alice, bob, top = thread
    reply = comment_services.comment_create(question=question, author=bob, body="Spam", parent=top)
    comment_services.comment_hide(comment=reply, actor=editor, reason="Spam.")
    tasks.notify_comment_reply(reply.pk)
    assert not Notification.objects.exists()
