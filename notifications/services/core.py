"""Notification rows: writing them once per (recipient, event), reading and marking them, preferences,
unsubscribe tokens, and the e-mail states a sender moves a row through (``notifications.emails`` sends).

Writers are keyword-only; each commits on its own (``@transaction.atomic``), because the senders must
commit a claim ("sending") before they talk to the SMTP server.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.core import signing
from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from ..models import DEFAULT_DELIVERY, Delivery, EmailStatus, Kind, Notification, NotificationPreference

User = get_user_model()

CREATE_BATCH = 500  # rows per INSERT
EMAIL_BATCH = 100  # e-mails per claim (and per SMTP connection)
COPY_MIN_ROWS = 200  # from this many rows, a COPY
EMAIL_MAX_AGE = dt.timedelta(days=2)  # a pending e-mail older than this is no longer worth sending
UNSUBSCRIBE_SALT = "notifications.unsubscribe"


@dataclass(frozen=True)
class Draft:
    """A notification to write, unless its recipient already has one with this key."""

    recipient_id: int
    kind: str
    key: str
    title: str
    url: str
    body: str = ""
    question_id: int | None = None


def id_chunks(queryset: QuerySet, field: str, size: int) -> Iterator[list]:
    """The distinct values of ``field`` in ascending order, ``size`` at a time, one query per chunk.

    Keyset pagination rather than one long-lived cursor: the caller writes (and commits) between chunks,
    which a server-side cursor on PostgreSQL or a half-read SQLite cursor would sit across.
    """
    last = None
    while True:
        page = queryset if last is None else queryset.filter(**{f"{field}__gt": last})
        values = list(page.order_by(field).values_list(field, flat=True).distinct()[:size])
        if values:
            yield values
        if len(values) < size:
            return
        last = values[-1]


# --- writing ------------------------------------------------------------------------------------


@transaction.atomic
def notifications_create(*, drafts: Iterable[Draft], now: dt.datetime | None = None) -> int:
    """Write the drafts the recipients' preferences let through; returns how many were offered.

    One query reads every recipient's address, state and preferences; the rows go in with
    ``ignore_conflicts`` so that an event already notified (a retried task, a second recompute) writes
    nothing. Inactive users get nothing; users without an address get the in-site item only.
    """
    drafts = list(drafts)
    if not drafts:
        return 0
    now = now or timezone.now()
    kinds = sorted({d.kind for d in drafts})
    columns = [f"notification_preference__{kind}" for kind in kinds]
    recipients = {
        row[0]: row
        for row in User.objects.filter(pk__in={d.recipient_id for d in drafts}, is_active=True).values_list(
            "pk", "email", *columns
        )
    }
    rows = []
    for draft in drafts:
        recipient = recipients.get(draft.recipient_id)
        if recipient is None:
            continue
        delivery = recipient[2 + kinds.index(draft.kind)] or DEFAULT_DELIVERY[draft.kind]
        if delivery == Delivery.OFF:
            continue
        e_mail = delivery == Delivery.EMAIL and bool(recipient[1])
        rows.append(
            (
                draft.recipient_id,
                draft.kind,
                draft.key,
                draft.question_id,
                draft.title[:400],
                draft.body,
                draft.url[:500],
                now,
                EmailStatus.PENDING.value if e_mail else EmailStatus.SKIPPED.value,
            )
        )
    _insert_new(rows)
    return len(rows)


_COLUMNS = ("recipient_id", "kind", "key", "question_id", "title", "body", "url", "created_at", "email_status")
_LOAD = """CREATE TEMPORARY TABLE IF NOT EXISTS notification_load (
    recipient_id bigint, kind varchar(20), key varchar(100), question_id bigint, title varchar(400), body text,
    url varchar(500), created_at timestamptz, email_status varchar(10)
) ON COMMIT DELETE ROWS"""


def _insert_new(rows: list[tuple]) -> None:
    """Insert the rows (``_COLUMNS``), skipping those whose (recipient, key) exists. Many rows on PostgreSQL:
    one COPY into a temporary table and one INSERT from it (the ORM's multi-row INSERTs cost ~15x a COPY's
    time); a few: one INSERT (the COPY's temporary table costs three more queries)."""
    if not rows:
        return
    if connection.vendor != "postgresql" or len(rows) < COPY_MIN_ROWS:
        Notification.objects.bulk_create(
            [Notification(**dict(zip(_COLUMNS, row, strict=True))) for row in rows],
            ignore_conflicts=True,
            batch_size=CREATE_BATCH,
        )
        return
    columns = ", ".join(_COLUMNS)
    with connection.cursor() as cursor:
        cursor.execute(_LOAD)
        cursor.execute("DELETE FROM notification_load")  # rows of an earlier call in this transaction
        with cursor.cursor.copy(f"COPY notification_load ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        cursor.execute(
            f"INSERT INTO notifications_notification ({columns}) SELECT {columns} FROM notification_load"
            " ON CONFLICT DO NOTHING"
        )


# --- reading and marking (the bell, the list) ----------------------------------------------------


def unread_count(*, user) -> int:
    """The bell's number: one COUNT on the partial index of unread rows."""
    return Notification.objects.filter(recipient=user, read_at__isnull=True).count()


def notifications_for(*, user) -> QuerySet[Notification]:
    """The user's notifications, newest first (the list page paginates it)."""
    return Notification.objects.filter(recipient=user).order_by("-created_at", "-id")


@transaction.atomic
def notification_open(*, user, notification_id: int) -> Notification:
    """Mark one of the user's notifications read and return it (``Notification.DoesNotExist`` if not theirs)."""
    notification = Notification.objects.select_for_update().get(pk=notification_id, recipient=user)
    if notification.read_at is None:
        notification.read_at = timezone.now()
        notification.save(update_fields=["read_at"])
    return notification


@transaction.atomic
def notifications_mark_all_read(*, user) -> int:
    return Notification.objects.filter(recipient=user, read_at__isnull=True).update(read_at=timezone.now())


# --- preferences --------------------------------------------------------------------------------


def preferences_for(*, user) -> NotificationPreference:
    """The user's preferences, or an unsaved instance holding the defaults (reading never writes)."""
    found = NotificationPreference.objects.filter(user=user).first()
    return found if found is not None else NotificationPreference(user=user)


@transaction.atomic
def preferences_update(*, user, values: dict[str, str]) -> NotificationPreference:
    """Set the delivery of the kinds in ``values`` (the others keep theirs)."""
    unknown = set(values) - set(Kind.values)
    invalid = {kind for kind, delivery in values.items() if delivery not in Delivery.values}
    if unknown or invalid:
        raise ValueError(f"Unknown kinds {sorted(unknown)} or deliveries for {sorted(invalid)}.")
    preference, _ = NotificationPreference.objects.select_for_update().get_or_create(user=user)
    for kind, delivery in values.items():
        setattr(preference, kind, delivery)
    preference.save()
    return preference


def unsubscribe_token(*, user_id: int, kind: str) -> str:
    """A signed token naming a user and a kind, for the one-click unsubscribe link. It does not expire:
    an old e-mail's link must still work, and all it can do is stop e-mails of one kind."""
    return signing.dumps([user_id, kind], salt=UNSUBSCRIBE_SALT, compress=False)


def unsubscribe_token_read(token: str) -> tuple[int, str]:
    """The (user id, kind) of a token; ``signing.BadSignature`` if it was not made here or was altered."""
    value = signing.loads(token, salt=UNSUBSCRIBE_SALT)
    if not (isinstance(value, list) and len(value) == 2 and isinstance(value[0], int) and value[1] in Kind.values):
        raise signing.BadSignature("Malformed unsubscribe token.")
    return value[0], value[1]


@transaction.atomic
def email_unsubscribe(*, user_id: int, kind: str) -> NotificationPreference | None:
    """Stop e-mails of one kind (in-site notifications stay as they were); None if the account is gone.
    Pending e-mails of that kind are not sent either."""
    user = User.objects.filter(pk=user_id).first()
    if user is None:
        return None
    preference, _ = NotificationPreference.objects.select_for_update().get_or_create(user=user)
    if preference.delivery(kind) == Delivery.EMAIL:
        setattr(preference, kind, Delivery.SITE)
        preference.save()
    Notification.objects.filter(recipient=user, kind=kind, email_status=EmailStatus.PENDING).update(
        email_status=EmailStatus.SKIPPED
    )
    return preference


@transaction.atomic
def notification_data_erase(*, user) -> None:
    """Delete the user's notifications and preferences (account deletion)."""
    Notification.objects.filter(recipient=user).delete()
    NotificationPreference.objects.filter(user=user).delete()


# --- e-mail states (notifications.emails sends) --------------------------------------------------


@transaction.atomic
def notification_emails_claim(*, kind: str | None = None, key: str | None = None, limit: int = EMAIL_BATCH) -> list:
    """Claim up to ``limit`` pending e-mails for one sender: they become "sending" when this commits.

    ``skip_locked``: two senders (a task and the beat's ``send_pending_emails``) never claim the same
    row, and a row claimed is never claimed again (at most one e-mail per row, even if the sender
    dies). Rows whose recipient may no longer be e-mailed (deactivated, no address, unsubscribed since)
    are marked skipped instead. Returns the rows to send, with their recipient loaded.
    """
    pending = Notification.objects.filter(email_status=EmailStatus.PENDING)
    if kind is not None:
        pending = pending.filter(kind=kind)
    if key is not None:
        pending = pending.filter(key=key)
    ids = list(pending.select_for_update(skip_locked=True).order_by("id").values_list("id", flat=True)[:limit])
    if not ids:
        return []
    rows = list(
        Notification.objects.filter(pk__in=ids, email_status=EmailStatus.PENDING)
        .select_related("recipient", "recipient__notification_preference")
        .order_by("id")
    )
    claimed, skipped = [], []
    for row in rows:
        recipient = row.recipient
        preference = getattr(recipient, "notification_preference", None)
        delivery = preference.delivery(row.kind) if preference is not None else DEFAULT_DELIVERY[row.kind]
        ok = recipient.is_active and recipient.email and delivery == Delivery.EMAIL
        (claimed if ok else skipped).append(row)
    Notification.objects.filter(pk__in=[r.pk for r in claimed]).update(email_status=EmailStatus.SENDING)
    if skipped:
        Notification.objects.filter(pk__in=[r.pk for r in skipped]).update(email_status=EmailStatus.SKIPPED)
    return claimed


@transaction.atomic
def notification_emails_finish(
    *, sent: Iterable[int] = (), failed: Iterable[int] = (), released: Iterable[int] = ()
) -> None:
    """Record a batch's outcome: ``sent``, ``failed`` (the server refused it, or it may have gone out
    partly: never retried), ``released`` (never handed to the server: pending again, for a later try)."""
    now = timezone.now()
    claimed = Notification.objects.filter(email_status=EmailStatus.SENDING)
    if sent := list(sent):
        claimed.filter(pk__in=sent).update(email_status=EmailStatus.SENT, emailed_at=now)
    if failed := list(failed):
        claimed.filter(pk__in=failed).update(email_status=EmailStatus.FAILED)
    if released := list(released):
        claimed.filter(pk__in=released).update(email_status=EmailStatus.PENDING)


@transaction.atomic
def notification_emails_expire(*, now: dt.datetime | None = None) -> int:
    """Skip the pending e-mails older than ``EMAIL_MAX_AGE`` (after a long outage, "closes in 24 hours"
    three days late helps nobody; the in-site item stays)."""
    cutoff = (now or timezone.now()) - EMAIL_MAX_AGE
    return Notification.objects.filter(email_status=EmailStatus.PENDING, created_at__lt=cutoff).update(
        email_status=EmailStatus.SKIPPED
    )
