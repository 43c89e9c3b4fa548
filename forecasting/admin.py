from django.contrib import admin

from .models import Article, Prediction, Question, QuestionEvent, QuestionOption, Resolution, Score


class QuestionOptionInline(admin.TabularInline):
    model = QuestionOption
    extra = 0


@admin.register(Article)
class ArticleAdmin(admin.ModelAdmin):
    list_display = ("title", "published_at", "byline")
    prepopulated_fields = {"slug": ("title",)}
    search_fields = ("title",)


@admin.register(Question)
class QuestionAdmin(admin.ModelAdmin):
    """Read-mostly: status changes go through the editor desk so that they are audited and scored."""

    list_display = ("title", "article", "question_type", "status", "closes_at")
    list_filter = ("status", "question_type", "article")
    search_fields = ("title",)
    readonly_fields = ("status", "created_by", "created_at", "updated_at")
    inlines = [QuestionOptionInline]


@admin.register(Prediction)
class PredictionAdmin(admin.ModelAdmin):
    list_display = ("question", "forecaster", "probability", "made_at")
    list_filter = ("question__status",)
    readonly_fields = [f.name for f in Prediction._meta.fields]

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # forecasts are append-only


@admin.register(Resolution)
class ResolutionAdmin(admin.ModelAdmin):
    list_display = ("question", "outcome", "resolved_by", "resolved_at", "retracted_at")
    readonly_fields = [f.name for f in Resolution._meta.fields]


@admin.register(QuestionEvent)
class QuestionEventAdmin(admin.ModelAdmin):
    list_display = ("question", "action", "actor", "from_status", "to_status", "created_at")
    readonly_fields = [f.name for f in QuestionEvent._meta.fields]


@admin.register(Score)
class ScoreAdmin(admin.ModelAdmin):
    list_display = ("question", "forecaster", "kind", "value", "computed_at")
    list_filter = ("kind",)
