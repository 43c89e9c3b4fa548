"""Read-only admin lists: comments, votes and the moderation log are written only through the services
(editors hide and unhide on the question page), so the admin neither adds, changes nor deletes."""

from django.contrib import admin

from .models import Comment, CommentEvent, CommentVote


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Comment)
class CommentAdmin(ReadOnlyAdmin):
    list_display = ["id", "question", "author", "parent", "created_at", "is_hidden"]
    list_filter = ["is_hidden"]
    search_fields = ["body", "author__username"]
    list_select_related = ["question", "author"]


@admin.register(CommentVote)
class CommentVoteAdmin(ReadOnlyAdmin):
    list_display = ["comment", "voter", "value", "voted_at"]


@admin.register(CommentEvent)
class CommentEventAdmin(ReadOnlyAdmin):
    list_display = ["comment", "action", "actor", "reason", "created_at"]
    list_filter = ["action"]
