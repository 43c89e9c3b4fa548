"""The market API's query filters (django-filter); a bad value is a 400 with the parameter under ``error.fields``."""

from __future__ import annotations

import django_filters as filters

from forecasting.api.filters import IdFilter
from market.models import Trade


class TradeFilter(filters.FilterSet):
    question = IdFilter(field_name="market__question_id", help_text="A question's id.")

    class Meta:
        model = Trade
        fields = ["question"]
