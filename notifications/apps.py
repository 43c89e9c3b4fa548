from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    """What readers and editors are told: in the site (the bell) and by e-mail, by Celery tasks.

    Depends on forecasting and comments (it listens to their signals and reads their models), never
    the reverse.
    """

    default_auto_field = "django.db.models.BigAutoField"
    name = "notifications"
    verbose_name = "Notifications"

    def ready(self) -> None:
        from . import (
            receivers,  # noqa: F401  resolutions and replies queue their notifications (signals)
            tasks,  # noqa: F401  registers the tasks, which the outbox publishes by name (forecasting.jobs)
        )
