from django.apps import AppConfig
from django.db.models.signals import post_migrate


class ForecastingConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "forecasting"
    verbose_name = "Forecasting"

    def ready(self) -> None:
        from . import tasks  # noqa: F401  registers the tasks, which services queue by name (forecasting.jobs)
        from .roles import ensure_role_groups
        from .services.conditionals import conditionals_follow
        from .signals import question_status_changed
        from .views import conditionals  # noqa: F401  registers the conditional pair's question-page panel

        # A conditional's branches follow its condition and outcome, in the same transaction.
        question_status_changed.connect(conditionals_follow, dispatch_uid="forecasting_conditionals_follow")

        # Permissions exist only after auth's own post_migrate handler, so groups are synced
        # after it rather than in a data migration.
        post_migrate.connect(ensure_role_groups, sender=self, dispatch_uid="forecasting_role_groups")
