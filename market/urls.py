"""The market's HTML pages and the trade panel's endpoints (included at the site root by webapp/urls.py)."""

from django.urls import path

from . import views

urlpatterns = [
    path("me/portfolio/", views.portfolio, name="portfolio"),
    path("market/leaderboard/", views.leaderboard, name="market_leaderboard"),
    path("questions/<int:pk>/market/quote/", views.quote, name="market_quote"),
    path("questions/<int:pk>/market/trade/", views.trade, name="market_trade"),
]
