"""What readers and editors are told, and how each wants to be told.

``Notification`` rows are written only by ``notifications.services``, once per (recipient, key): the
key names the event (``resolved:<resolution id>``, ``reply:<comment id>``...), and the unique
constraint makes a retried or repeated task write nothing twice. A row is both the in-site item
(the bell, the list) and the e-mail's source: ``email_status`` moves pending -> sending -> sent
(or failed), so an e-mail is sent at most once per row.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from forecasting.models import Question


class Kind(models.TextChoices):
    RESOLVED = "resolved", "A question you forecast resolved"
    CLOSING_SOON = "closing_soon", "A question you forecast closes soon"
    COMMUNITY_MOVED = "community_moved", "The community moved away from your forecast"
    COMMENT_REPLY = "comment_reply", "A reply to your comment"
    OVERDUE_DIGEST = "overdue_digest", "Editors: questions awaiting resolution (daily)"
    STALE_FORECAST = "stale_forecast", "A forecast of yours is getting old"


class Delivery(models.TextChoices):
    EMAIL = "email", "In the site and by e-mail"
    SITE = "site", "In the site only"
    OFF = "off", "Off"


class EmailStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"  # claimed by a sender; never sent again, even after a crash
    SENT = "sent", "Sent"
    SKIPPED = "skipped", "Not e-mailed"  # preferences, no address, inactive account, too old
    FAILED = "failed", "Failed"


class Notification(models.Model):
    Kind = Kind
    EmailStatus = EmailStatus

    recipient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    key = models.CharField(max_length=100, help_text="The event, once per recipient (e.g. resolved:<resolution id>).")
    question = models.ForeignKey(Question, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    title = models.CharField(max_length=400)
    body = models.TextField(blank=True)
    url = models.CharField(max_length=500, help_text="A path on this site.")
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)
    email_status = models.CharField(max_length=10, choices=EmailStatus.choices, default=EmailStatus.SKIPPED)
    emailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["recipient", "key"], name="notification_once_per_recipient"),
            models.CheckConstraint(condition=Q(kind__in=Kind.values), name="notification_kind_valid"),
            models.CheckConstraint(condition=Q(email_status__in=EmailStatus.values), name="notification_email_valid"),
        ]
        indexes = [
            # The bell: the recipient's unread count (a partial index: read rows are most rows).
            models.Index(fields=["recipient"], condition=Q(read_at__isnull=True), name="notification_unread_idx"),
            # The list page, newest first.
            models.Index(fields=["recipient", "-created_at", "-id"], name="notification_list_idx"),
            # The senders' scan: only rows waiting for an e-mail.
            models.Index(fields=["id"], condition=Q(email_status="pending"), name="notification_pending_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} for {self.recipient_id}: {self.title}"

    @property
    def is_unread(self) -> bool:
        return self.read_at is None


class NotificationPreference(models.Model):
    """How a user wants each kind: in the site and by e-mail, in the site only, or not at all.

    No row means the defaults below (``services.preferences_for`` returns an unsaved one). E-mail
    is on by default for what concerns the reader personally and is rare (their question resolved,
    a reply to them) and for the editors' daily digest (their job); the nudges (closing soon, the
    community moved, a stale forecast) stay in the site unless the reader asks for e-mail.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_preference"
    )
    resolved = models.CharField(max_length=5, choices=Delivery.choices, default=Delivery.EMAIL)
    closing_soon = models.CharField(max_length=5, choices=Delivery.choices, default=Delivery.SITE)
    community_moved = models.CharField(max_length=5, choices=Delivery.choices, default=Delivery.SITE)
    comment_reply = models.CharField(max_length=5, choices=Delivery.choices, default=Delivery.EMAIL)
    overdue_digest = models.CharField(max_length=5, choices=Delivery.choices, default=Delivery.EMAIL)
    stale_forecast = models.CharField(max_length=5, choices=Delivery.choices, default=Delivery.SITE)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"notification preferences of {self.user_id}"

    def delivery(self, kind: str) -> str:
        return getattr(self, kind)


# Each kind's field on NotificationPreference is named after the kind.
DEFAULT_DELIVERY: dict[str, str] = {kind: NotificationPreference._meta.get_field(kind).default for kind in Kind.values}
