"""The Django admin: a read-only window on notifications (the services write them; a row stuck in
"sending" after a crash is visible here, and is never sent again)."""

from __future__ import annotations

from django.contrib import admin

from forecasting.admin import ReadOnlyAdmin

from .models import Notification


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "recipient", "kind", "title", "read_at", "email_status", "emailed_at")
    list_filter = ("kind", "email_status")
    search_fields = ("recipient__username", "key", "title")
    raw_id_fields = ("recipient", "question")
    date_hierarchy = "created_at"
    ordering = ("-created_at", "-id")
