"""The API's URLs; the project includes them with ``path("api/", include("webapp.api.urls"))``.

- ``/api/v1/...``: the endpoints (version 1).
- ``/api/schema/``: the OpenAPI 3 schema (YAML; ``?format=json`` for JSON).
- ``/api/docs/`` (Swagger UI) and ``/api/redoc/`` (Redoc), served from local static files.
"""

from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from . import views
from .exceptions import not_found

app_name = "api"

v1 = [
    path("auth/token/", views.TokenObtain.as_view(), name="token"),
    path("articles/", views.ArticleList.as_view(), name="article-list"),
    path("articles/<slug:slug>/", views.ArticleDetail.as_view(), name="article-detail"),
    path("questions/", views.QuestionListCreate.as_view(), name="question-list"),
    path("questions/<int:pk>/", views.QuestionDetail.as_view(), name="question-detail"),
    path("questions/<int:pk>/aggregates/", views.QuestionAggregates.as_view(), name="question-aggregates"),
    path("questions/<int:pk>/scores/", views.QuestionScores.as_view(), name="question-scores"),
    path("questions/<int:pk>/market/quote/", views.MarketQuote.as_view(), name="market-quote"),
    path("questions/<int:pk>/open/", views.QuestionOpen.as_view(), name="question-open"),
    path("questions/<int:pk>/close/", views.QuestionClose.as_view(), name="question-close"),
    path("questions/<int:pk>/resolve/", views.QuestionResolve.as_view(), name="question-resolve"),
    path("questions/<int:pk>/annul/", views.QuestionAnnul.as_view(), name="question-annul"),
    path("questions/<int:pk>/unresolve/", views.QuestionUnresolve.as_view(), name="question-unresolve"),
    path("leaderboards/", views.LeaderboardView.as_view(), name="leaderboard"),
    path("predictions/", views.Predictions.as_view(), name="prediction-list"),
    path("scores/", views.MyScores.as_view(), name="my-scores"),
    path("trades/", views.Trades.as_view(), name="trade-list"),
    path("model-runs/", views.ModelRunList.as_view(), name="model-run-list"),
    path("model-runs/<int:pk>/", views.ModelRunDetail.as_view(), name="model-run-detail"),
]

urlpatterns = [
    path("v1/", include(v1)),
    re_path(r"^v1/", not_found),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="api:schema"), name="redoc"),
]
