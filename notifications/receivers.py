"""Notifications follow forecasting's and comments' signals, by queueing a task through the outbox.

Both signals are sent inside the transaction that wrote the event, so ``enqueue`` writes its outbox
row in that same transaction: the notification's task commits with the scores or the reply it reads,
or not at all. The tasks decide who hears of it (and dedupe), never the receivers.
"""

from django.dispatch import receiver

from comments.signals import comment_posted
from forecasting.jobs import enqueue
from forecasting.signals import question_scored


@receiver(question_scored, dispatch_uid="notifications_question_scored")
def queue_resolution_notices(sender, *, question_id: int, resolution_id: int | None = None, **_kwargs) -> None:
    if resolution_id is not None:  # un-resolving (scores removed) is news to nobody
        enqueue("notifications.tasks.notify_question_resolved", question_id)


@receiver(comment_posted, dispatch_uid="notifications_comment_posted")
def queue_reply_notice(sender, *, comment, **_kwargs) -> None:
    if comment.parent_id is not None:  # only replies notify anyone
        enqueue("notifications.tasks.notify_comment_reply", comment.pk)
