from django.apps import AppConfig


class CommentsConfig(AppConfig):
    """Readers' comments and forecast rationales under each question, with editors' moderation.

    Depends on forecasting, never the reverse: the discussion joins the question page through
    forecasting's panel extension point (``forecasting.views.panels``, a full-width section below the page),
    and its hidden comments join the editor desk through ``forecasting.views.desk.register_desk_queue``.
    """

    default_auto_field = "django.db.models.BigAutoField"
    name = "comments"
    verbose_name = "Comments"

    def ready(self) -> None:
        from . import desk, panels  # noqa: F401  the hidden comments on the editor desk; the discussion on the question page
