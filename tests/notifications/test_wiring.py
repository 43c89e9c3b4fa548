"""The wiring: every task the beat schedule and the receivers name is registered in any process that
starts Django (the web server publishes the outbox rows by name), and the signals reach the receivers."""

import subprocess
import sys

import pytest
from django.conf import settings

from comments import services as comment_services
from forecasting.models import OutboxTask
from tests.factories import QuestionFactory, UserFactory

NOTIFICATION_TASKS = {
    "notifications.tasks.notify_question_resolved",
    "notifications.tasks.notify_comment_reply",
    "notifications.tasks.notify_closing_soon",
    "notifications.tasks.notify_community_moved",
    "notifications.tasks.remind_overdue_resolutions",
    "notifications.tasks.remind_stale_forecasts",
    "notifications.tasks.send_pending_emails",
}


def test_the_beat_names_only_these_tasks():
    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert {name for name in scheduled if name.startswith("notifications.")} == NOTIFICATION_TASKS - {
        "notifications.tasks.notify_question_resolved",
        "notifications.tasks.notify_comment_reply",
    }


def test_a_process_that_only_sets_django_up_knows_every_task():
    code = (
        "import django; django.setup(); from webapp.celery import app; "
        "print('\\n'.join(sorted(n for n in app.tasks if n.startswith('notifications.'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=settings.BASE_DIR
    ).stdout
    assert set(out.split()) == NOTIFICATION_TASKS


@pytest.mark.django_db
def test_a_reply_queues_its_notice_in_the_comments_transaction():
    question = QuestionFactory()
    alice, bob = UserFactory.create_batch(2)
    top = comment_services.comment_create(question=question, author=alice, body="Yes.")
    assert not OutboxTask.objects.filter(task_name__startswith="notifications.").exists()  # not a reply
    reply = comment_services.comment_create(question=question, author=bob, body="No.", parent=top)
    assert list(OutboxTask.objects.values_list("task_name", "args")) == [
        ("notifications.tasks.notify_comment_reply", [reply.pk])
    ]
