from django.apps import AppConfig
from django.db.models.signals import post_migrate


class ForecastingConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "forecasting"
    verbose_name = "Forecasting"

    def ready(self) -> None:
        from . import tasks  # noqa: F401  registers the tasks, which services queue by name (forecasting.jobs)
        from .roles import ensure_role_groups

        # Permissions exist only after auth's own post_migrate handler, so groups are synced
        # after it rather than in a data migration.
        post_migrate.connect(ensure_role_groups, sender=self, dispatch_uid="forecasting_role_groups")
