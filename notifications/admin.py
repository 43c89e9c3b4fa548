"""The Django admin: a read-only window on notifications (the services write them; a row stuck in
"sending" after a crash is visible here, and is never sent again)."""

from __future__ import annotations

from django.contrib import admin

from .models import Notification


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ("created_at", "recipient", "kind", "title", "read_at", "email_status", "emailed_at")
    list_filter = ("kind", "email_status")
    search_fields = ("recipient__username", "key", "title")
    raw_id_fields = ("recipient", "question")
    date_hierarchy = "created_at"
    ordering = ("-created_at", "-id")

    def get_readonly_fields(self, request, obj=None) -> list[str]:
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
