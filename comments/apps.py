from django.apps import AppConfig


class CommentsConfig(AppConfig):
    """Readers' comments and forecast rationales under each question, with editors' moderation.

    Depends on forecasting, never the reverse: the discussion joins the question page through
    forecasting's panel extension point (``forecasting.views.panels``, a full-width section below the page).
    """

    default_auto_field = "django.db.models.BigAutoField"
    name = "comments"
    verbose_name = "Comments"

    def ready(self) -> None:
        from . import panels  # noqa: F401  the discussion on forecasting's question page
