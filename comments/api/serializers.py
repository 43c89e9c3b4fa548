"""The comments' API representations: a thread is a top-level comment with its replies."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from comments.markup import render_markdown
from comments.models import Comment
from forecasting.services.profiles import is_deleted_username

DELETED_AUTHOR = "[deleted reader]"  # as the discussion on the question page says it


class ForecastAtTimeSerializer(serializers.Serializer):
    probability = serializers.DecimalField(
        max_digits=5, decimal_places=4, allow_null=True, help_text="P(YES) of a yes/no question."
    )
    option_probabilities = serializers.ListField(
        child=serializers.CharField(), allow_null=True, help_text="One per option, in option order."
    )


class CommentSerializer(serializers.ModelSerializer):
    author = serializers.SerializerMethodField(
        help_text="The author's username; “[deleted reader]” once they deleted their account."
    )
    body_html = serializers.SerializerMethodField(help_text="The body rendered from Markdown and sanitised.")
    score = serializers.IntegerField(read_only=True, help_text="The sum of the votes (+1 / -1).")
    forecast = serializers.SerializerMethodField(
        help_text="The author's latest forecast on the question when they wrote this; null if they had none."
    )

    class Meta:
        model = Comment
        fields = ["id", "question", "parent", "author", "body", "body_html", "created_at", "score", "forecast"]
        read_only_fields = fields

    def get_author(self, comment: Comment) -> str:
        username = comment.author.username
        return DELETED_AUTHOR if is_deleted_username(username) else username

    def get_body_html(self, comment: Comment) -> str:
        return render_markdown(comment.body)

    @extend_schema_field(ForecastAtTimeSerializer(allow_null=True))
    def get_forecast(self, comment: Comment) -> dict | None:
        viewer = getattr(self.context.get("request"), "user", None)
        own = viewer is not None and viewer.is_authenticated and viewer.pk == comment.author_id
        if not (getattr(comment, "author_public", False) or own):
            return None  # a private reader's forecasts stay off public pages and the API
        probability = getattr(comment, "forecast_probability", None)
        options = getattr(comment, "forecast_options", None)
        if probability is None and options is None:
            return None
        return ForecastAtTimeSerializer({"probability": probability, "option_probabilities": options}).data


class ModeratedCommentSerializer(CommentSerializer):
    """Editors also see whether a comment is hidden, and why."""

    class Meta(CommentSerializer.Meta):
        fields = [*CommentSerializer.Meta.fields, "is_hidden", "hidden_reason", "hidden_at"]
        read_only_fields = fields


class ThreadSerializer(CommentSerializer):
    replies = serializers.SerializerMethodField(help_text="Replies, oldest first (threads are one level deep).")

    class Meta(CommentSerializer.Meta):
        fields = [*CommentSerializer.Meta.fields, "replies"]
        read_only_fields = fields

    @extend_schema_field(CommentSerializer(many=True))
    def get_replies(self, comment: Comment) -> list[dict]:
        replies = self.context["replies"].get(comment.pk, [])
        serializer = ModeratedCommentSerializer if self.context.get("moderator") else CommentSerializer
        return serializer(replies, many=True, context=self.context).data


class ModeratedThreadSerializer(ThreadSerializer):
    class Meta(ThreadSerializer.Meta):
        fields = [*ThreadSerializer.Meta.fields, "is_hidden", "hidden_reason", "hidden_at"]
        read_only_fields = fields


class CommentCreateSerializer(serializers.Serializer):
    body = serializers.CharField(help_text="Markdown, at most COMMENT_MAX_LENGTH (2000) characters.")
    parent = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, help_text="Reply to this comment (of the same question)."
    )

    def validate_body(self, value: str) -> str:
        if len(value) > settings.COMMENT_MAX_LENGTH:
            raise serializers.ValidationError(f"At most {settings.COMMENT_MAX_LENGTH} characters.")
        return value
