"""The market's API endpoints; ``webapp/api/urls.py`` mounts them under ``/api/v1/`` in the ``api`` namespace."""

from django.urls import path

from . import views

urlpatterns = [
    path("questions/<int:pk>/market/quote/", views.MarketQuote.as_view(), name="market-quote"),
    path("trades/", views.Trades.as_view(), name="trade-list"),
]
