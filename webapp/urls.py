from django.contrib import admin
from django.urls import include, path

from market import views as market_views

from . import views, views_downloads

urlpatterns = [
    path("", views.home, name="home"),
    path("articles/<slug:slug>/", views.article_detail, name="article_detail"),
    path("questions/<int:pk>/", views.question_detail, name="question_detail"),
    path("questions/<int:pk>/forecast/", views.forecast_submit, name="forecast_submit"),
    path("questions/<int:pk>/resolve/", views.question_resolve, name="question_resolve"),
    path("questions/<int:pk>/<slug:action>/", views.question_action, name="question_action"),
    path("articles/<slug:slug>/leaderboard/", views.leaderboard, name="article_leaderboard"),
    path("leaderboard/", views.leaderboard, name="leaderboard"),
    path("forecasters/<str:username>/", views.track_record, name="track_record"),
    path("me/forecasts/", views.my_forecasts, name="my_forecasts"),
    path("me/download/", views_downloads.download_mine, name="download_mine"),
    path("downloads/", views_downloads.downloads, name="analyst_downloads"),
    path("downloads/all/", views_downloads.download_all, name="download_all"),
    path("downloads/articles/<slug:slug>/", views_downloads.download_article, name="download_article"),
    path("downloads/questions/<int:pk>/", views_downloads.download_question, name="download_question"),
    path("me/portfolio/", market_views.portfolio, name="portfolio"),
    path("market/leaderboard/", market_views.leaderboard, name="market_leaderboard"),
    path("questions/<int:pk>/market/quote/", market_views.quote, name="market_quote"),
    path("questions/<int:pk>/market/trade/", market_views.trade, name="market_trade"),
    path("editor/", views.editor_dashboard, name="editor_dashboard"),
    path("editor/models/", views.editor_model_runs, name="editor_model_runs"),
    path("editor/questions/new/", views.editor_question_create, name="editor_question_create"),
    path("accounts/signup/", views.signup, name="signup"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("api/", include("webapp.api.urls")),
    path("admin/", admin.site.urls),
]
