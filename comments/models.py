"""Readers' comments on questions, one level of replies, votes, and the audit log of editors' moderation.

Written only through ``comments.services``. A comment's body is Markdown source; it is rendered and
sanitised on read (``comments.markup``), never stored as HTML. Hidden comments are kept (with who hid
them, when and why) and shown to editors only.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from forecasting.models import Prediction, Question

# Who moderates: the editors (the permission that already lets them see and change questions).
MODERATE = "forecasting.change_question"


class Comment(models.Model):
    question = models.ForeignKey(Question, on_delete=models.PROTECT, related_name="comments")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="comments")
    # Threads are one level deep: a reply's parent is always a top-level comment (services.comment_create).
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="replies")
    body = models.TextField(help_text="Markdown; at most settings.COMMENT_MAX_LENGTH characters.")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    is_hidden = models.BooleanField(default=False)
    hidden_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    hidden_at = models.DateTimeField(null=True, blank=True)
    hidden_reason = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["question", "created_at"], name="comment_question_time_idx")]
        constraints = [
            models.CheckConstraint(condition=~Q(parent=models.F("id")), name="comment_not_own_parent"),
            models.CheckConstraint(
                condition=Q(is_hidden=False) | Q(hidden_at__isnull=False), name="comment_hidden_has_time"
            ),
        ]

    def __str__(self) -> str:
        return f"Comment {self.pk} by {self.author_id} on question {self.question_id}"

    @property
    def anchor(self) -> str:
        return f"comment-{self.pk}"


class CommentVote(models.Model):
    """One reader's vote on a comment: +1 or -1 (no row: no vote). "Top" sorts by their sum."""

    comment = models.ForeignKey(Comment, on_delete=models.CASCADE, related_name="votes")
    voter = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="comment_votes")
    value = models.SmallIntegerField()
    voted_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["comment", "voter"], name="comment_vote_one_per_voter"),
            models.CheckConstraint(condition=Q(value__in=[-1, 1]), name="comment_vote_value_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.voter_id} {self.value:+d} on comment {self.comment_id}"


class CommentEvent(models.Model):
    """The moderation audit log: every hide and unhide, by whom and why. Append-only."""

    class Action(models.TextChoices):
        HIDE = "hide", "Hidden"
        UNHIDE = "unhide", "Unhidden"

    comment = models.ForeignKey(Comment, on_delete=models.PROTECT, related_name="events")
    action = models.CharField(max_length=10, choices=Action.choices)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    reason = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [models.CheckConstraint(condition=Q(action__in=["hide", "unhide"]), name="comment_event_action")]

    def __str__(self) -> str:
        return f"{self.get_action_display()} comment {self.comment_id} by {self.actor_id}"


class HiddenRationale(models.Model):
    """A forecast's rationale an editor hid from readers. The forecast and its rationale are kept (the
    forecast still counts); only the text leaves the discussion. Unhiding deletes the row."""

    prediction = models.OneToOneField(Prediction, on_delete=models.PROTECT, related_name="hidden_rationale")
    hidden_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    hidden_at = models.DateTimeField(auto_now_add=True)
    reason = models.CharField(max_length=500)

    def __str__(self) -> str:
        return f"rationale of forecast {self.prediction_id} hidden: {self.reason}"


class RationaleEvent(models.Model):
    """The audit of hiding and unhiding rationales: who, when, why. Append-only."""

    prediction = models.ForeignKey(Prediction, on_delete=models.PROTECT, related_name="+")
    action = models.CharField(max_length=10, choices=CommentEvent.Action.choices)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    reason = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(action__in=["hide", "unhide"]), name="rationale_event_action")
        ]

    def __str__(self) -> str:
        return f"{self.action} rationale of forecast {self.prediction_id} by {self.actor_id}"
