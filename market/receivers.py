"""The market follows its question: forecasting's ``question_status_changed`` signal settles it.

Sent inside the editor's transaction, so the market opens, closes, settles or refunds atomically
with the question's status change and its resolution.
"""

from django.dispatch import receiver

from forecasting.signals import question_status_changed

from .services import market_sync_with_question


@receiver(question_status_changed, dispatch_uid="market_sync_with_question")
def sync_market(sender, *, question, **_kwargs) -> None:
    market_sync_with_question(question=question)
