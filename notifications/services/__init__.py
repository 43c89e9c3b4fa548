"""The notifications' services: the only writers of notifications and preferences.

``core`` writes, reads and marks the rows (and their e-mail states); ``events`` turns each kind of
event into rows for its recipients, in batches. ``notifications.emails`` sends the e-mails.
"""

from .core import (
    EMAIL_BATCH,
    Draft,
    email_unsubscribe,
    notification_data_erase,
    notification_emails_claim,
    notification_emails_expire,
    notification_emails_finish,
    notification_open,
    notifications_create,
    notifications_for,
    notifications_mark_all_read,
    preferences_for,
    preferences_update,
    unread_count,
    unsubscribe_token,
    unsubscribe_token_read,
)
from .events import (
    closing_soon_notify,
    comment_reply_notify,
    community_moved_notify,
    overdue_resolutions_notify,
    resolution_notify,
    stale_forecasts_notify,
)

__all__ = [
    "EMAIL_BATCH",
    "Draft",
    "closing_soon_notify",
    "comment_reply_notify",
    "community_moved_notify",
    "email_unsubscribe",
    "notification_data_erase",
    "notification_emails_claim",
    "notification_emails_expire",
    "notification_emails_finish",
    "notification_open",
    "notifications_create",
    "notifications_for",
    "notifications_mark_all_read",
    "overdue_resolutions_notify",
    "preferences_for",
    "preferences_update",
    "resolution_notify",
    "stale_forecasts_notify",
    "unread_count",
    "unsubscribe_token",
    "unsubscribe_token_read",
]
