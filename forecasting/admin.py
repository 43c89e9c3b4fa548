"""The Django admin: a read-only window on forecasting's data, except drafts and articles.

Questions change status, and are created, only through the audited services (``forecasting.services``),
which the admin's actions call. Once a question has left draft every field is read-only and it cannot be
deleted: its type, dates and article are what its forecasts, market and scores were made against.
Forecasts, resolutions, scores and the audit log are written by the services alone.
"""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError

from . import services
from .models import Article, Prediction, Question, QuestionEvent, QuestionOption, Resolution, Score


def _is_draft(question: Question | None) -> bool:
    return question is not None and question.status == Question.Status.DRAFT


class ReadOnlyAdmin(admin.ModelAdmin):
    """Viewable, never added, changed or deleted here: the services write these rows."""

    def get_readonly_fields(self, request, obj=None) -> list[str]:
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class QuestionOptionInline(admin.TabularInline):
    """Options are set with the question by ``question_create``; shown here, not edited."""

    model = QuestionOption
    extra = 0
    fields = ("position", "label")
    readonly_fields = ("position", "label")

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Article)
class ArticleAdmin(admin.ModelAdmin):
    list_display = ("title", "published_at", "byline")
    prepopulated_fields = {"slug": ("title",)}
    search_fields = ("title",)


def _status_action(service: Callable, verb: str, description: str):
    """An admin action that runs ``service`` on each selected question, as the signed-in editor."""

    def action(modeladmin: QuestionAdmin, request, queryset) -> None:
        done = 0
        for question in queryset:
            try:
                service(question=question, actor=request.user, note="via the admin")
            except (ValidationError, PermissionDenied) as error:
                text = " ".join(error.messages) if isinstance(error, ValidationError) else str(error)
                modeladmin.message_user(request, f"“{question}”: {text}", messages.ERROR)
            else:
                done += 1
        if done:
            modeladmin.message_user(request, f"{done} question(s) {verb}.", messages.SUCCESS)

    action.__name__ = f"{verb}_selected"
    return admin.action(description=description)(action)


@admin.register(Question)
class QuestionAdmin(admin.ModelAdmin):
    """Drafts: wording, dates and article may be edited. Past draft: read-only; status only by the actions."""

    list_display = ("title", "article", "question_type", "status", "closes_at", "published_at")
    list_filter = ("status", "question_type", "article")
    search_fields = ("title",)
    # The type goes with the options, which question_create validates together.
    draft_readonly_fields = ("question_type", "status", "published_at", "created_by", "created_at", "updated_at")
    inlines = [QuestionOptionInline]
    actions = [
        _status_action(services.question_open, "opened", "Open the selected questions (audited)"),
        _status_action(services.question_close, "closed", "Close the selected questions (audited)"),
        _status_action(services.question_annul, "annulled", "Annul the selected questions (audited)"),
    ]

    def get_readonly_fields(self, request, obj=None) -> list[str]:
        if _is_draft(obj):
            return list(self.draft_readonly_fields)
        return [f.name for f in Question._meta.fields]

    def get_actions(self, request) -> dict:
        actions = super().get_actions(request)
        # Bulk deletion would bypass the per-question check below.
        actions.pop("delete_selected", None)
        return actions

    def has_add_permission(self, request) -> bool:
        return False  # drafts are created by question_create (editor desk or API), which audits them

    def has_change_permission(self, request, obj=None) -> bool:
        if obj is not None and not _is_draft(obj):
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        if obj is None or not _is_draft(obj):
            return False
        return super().has_delete_permission(request, obj)

    def save_model(self, request, obj, form, change) -> None:
        # The admin's view is atomic: lock the row so a question opened meanwhile is not edited.
        if change and not _is_draft(Question.objects.select_for_update().filter(pk=obj.pk).first()):
            raise PermissionDenied("This question has left draft; it can only be changed through its actions.")
        super().save_model(request, obj, form, change)


@admin.register(Prediction)
class PredictionAdmin(ReadOnlyAdmin):
    """Forecasts are append-only and feed the aggregates: ``prediction_create`` writes them."""

    list_display = ("question", "forecaster", "probability", "made_at")
    list_filter = ("question__status",)


@admin.register(Resolution)
class ResolutionAdmin(ReadOnlyAdmin):
    """Written and retracted by question_resolve / question_annul / question_unresolve."""

    list_display = ("question", "outcome", "resolved_by", "resolved_at", "retracted_at")


@admin.register(QuestionEvent)
class QuestionEventAdmin(ReadOnlyAdmin):
    """The audit log: append-only."""

    list_display = ("question", "action", "actor", "from_status", "to_status", "created_at")


@admin.register(Score)
class ScoreAdmin(ReadOnlyAdmin):
    """Computed from the forecasts by the scoring task."""

    list_display = ("question", "forecaster", "kind", "value", "computed_at")
    list_filter = ("kind",)
