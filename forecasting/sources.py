"""Other informed sources of a question's probability that the Bayesian aggregate weighs by their
own learnt reliability (``bayes.stacking``): today a question's market price. Apps register from
``AppConfig.ready()`` (the market: ``market/sources.py``); forecasting imports none of them, so
the market depends on forecasting and never the reverse."""

from __future__ import annotations

from collections.abc import Callable

MARKET = "market"

PriceSource = Callable[[int], float | None]  # question id -> P(YES) now, or None (no such source)
_SOURCES: dict[str, PriceSource] = {}


def register_price_source(name: str, source: PriceSource) -> PriceSource:
    """Register ``source`` under ``name`` (registering a name again replaces it)."""
    _SOURCES[name] = source
    return source


def price(name: str, question_id: int) -> float | None:
    """The source's P(YES) for the question now; None without the source or its price."""
    source = _SOURCES.get(name)
    if source is None:
        return None
    value = source(question_id)
    return None if value is None else float(value)
