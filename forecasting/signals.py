"""Signals forecasting sends, for apps that build on it (the market) without forecasting importing them.

``question_status_changed`` is sent inside the transaction of every status change (open, close,
resolve, annul, un-resolve), after the question row and its resolution are written: a receiver's
writes commit or roll back with the editor's action. Receivers get ``question`` (locked for the
transaction) and must be idempotent: they bring their own state in line with the question's.
"""

from django.dispatch import Signal

question_status_changed = Signal()
