from django.apps import AppConfig


class DemoConfig(AppConfig):
    """Simulated demo data (``make demo``): seeded once, through the apps' own services."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "demo"
    verbose_name = "Demo data"
