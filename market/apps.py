from django.apps import AppConfig


class MarketConfig(AppConfig):
    """The play-money prediction market (LMSR market maker) on forecasting's questions.

    The market depends on forecasting, never the reverse: it joins forecasting's extension
    points here (settlement on a question's status change, the question page's panel, the
    question API's ``market`` field, the market table of the analysts' downloads, the price as an
    input of the Bayesian aggregate).
    """

    default_auto_field = "django.db.models.BigAutoField"
    name = "market"
    verbose_name = "Market"

    def ready(self) -> None:
        # Each module joins one of forecasting's extension points when imported.
        from . import (
            charts,  # noqa: F401  the price line on forecasting's question chart
            exports,  # noqa: F401  the market table of the analysts' downloads
            panels,  # noqa: F401  the trade panel on forecasting's question page
            receivers,  # noqa: F401  settlement follows the question (forecasting.signals)
            sources,  # noqa: F401  the price as an input of the Bayesian aggregate (forecasting.sources)
        )
        from .api import fields  # noqa: F401  the market field of forecasting's question API
