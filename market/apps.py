from django.apps import AppConfig


class MarketConfig(AppConfig):
    """The play-money prediction market (LMSR market maker); its models arrive with the market issue."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "market"
