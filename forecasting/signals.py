"""Signals forecasting sends, for apps that build on it (the market) without forecasting importing them.

``question_status_changed`` is sent inside the transaction of every status change (open, close,
resolve, annul, un-resolve), after the question row and its resolution are written: a receiver's
writes commit or roll back with the editor's action. Receivers get ``question`` (locked for the
transaction) and must be idempotent: they bring their own state in line with the question's.

``question_scored`` is sent inside ``services.question_scores_recompute``'s transaction, after the
question's Score rows are written (or removed: un-resolved, annulled), each time they are
recomputed, so possibly several times for one resolution. Receivers get ``question_id`` (the
question row is locked) and ``resolution_id`` (the active resolution or annulment, None when there is
none: un-resolved) and must be idempotent; they queue their work through ``jobs.enqueue``
(the outbox, same transaction) rather than do it there (the notifications tell each forecaster
their scores).
"""

from django.dispatch import Signal

question_status_changed = Signal()
question_scored = Signal()
