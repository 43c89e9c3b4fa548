"""Forecasting's API endpoints; ``webapp/api/urls.py`` mounts them under ``/api/v1/`` in the ``api`` namespace."""

from django.urls import path

from . import downloads, views

urlpatterns = [
    path("auth/token/", views.TokenObtain.as_view(), name="token"),
    path("articles/", views.ArticleList.as_view(), name="article-list"),
    path("articles/<slug:slug>/", views.ArticleDetail.as_view(), name="article-detail"),
    path("questions/", views.QuestionListCreate.as_view(), name="question-list"),
    path("questions/<int:pk>/", views.QuestionDetail.as_view(), name="question-detail"),
    path("questions/<int:pk>/aggregates/", views.QuestionAggregates.as_view(), name="question-aggregates"),
    path("questions/<int:pk>/scores/", views.QuestionScores.as_view(), name="question-scores"),
    path("questions/<int:pk>/open/", views.QuestionOpen.as_view(), name="question-open"),
    path("questions/<int:pk>/close/", views.QuestionClose.as_view(), name="question-close"),
    path("questions/<int:pk>/resolve/", views.QuestionResolve.as_view(), name="question-resolve"),
    path("questions/<int:pk>/annul/", views.QuestionAnnul.as_view(), name="question-annul"),
    path("questions/<int:pk>/unresolve/", views.QuestionUnresolve.as_view(), name="question-unresolve"),
    path("leaderboards/", views.LeaderboardView.as_view(), name="leaderboard"),
    path("predictions/", views.Predictions.as_view(), name="prediction-list"),
    path("scores/", views.MyScores.as_view(), name="my-scores"),
    path("model-runs/", views.ModelRunList.as_view(), name="model-run-list"),
    path("model-runs/<int:pk>/", views.ModelRunDetail.as_view(), name="model-run-detail"),
    path("downloads/", downloads.DownloadAll.as_view(), name="download-all"),
    path("downloads/articles/<slug:slug>/", downloads.DownloadArticle.as_view(), name="download-article"),
    path("downloads/questions/<int:pk>/", downloads.DownloadQuestion.as_view(), name="download-question"),
    path("downloads/mine/", downloads.DownloadMine.as_view(), name="download-mine"),
]
