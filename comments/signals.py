"""Signals the comments send, for apps that build on them (the notifications) without comments importing them.

``comment_posted`` is sent inside ``services.comment_create``'s transaction, after the comment row is
written: a receiver's writes commit or roll back with the comment. Receivers get ``comment`` (its
``parent`` is the top-level comment of the thread, or None) and should queue their work through
``forecasting.jobs.enqueue`` (the outbox, same transaction) rather than do it there.
"""

from django.dispatch import Signal

comment_posted = Signal()
