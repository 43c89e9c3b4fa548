"""Forecasters: the reader's own forecasts and scores, the leaderboards, a forecaster's track record."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_safe

from forecasting import services
from forecasting.models import Article, Prediction, Score


@require_safe
@login_required
def my_forecasts(request: HttpRequest) -> HttpResponse:
    predictions = (
        Prediction.objects.filter(forecaster=request.user)
        .select_related("question", "question__article")
        .order_by("-made_at", "-id")
    )
    scores = (
        Score.objects.filter(forecaster=request.user, method=Score.Method.SPOT)
        .select_related("question")
        .order_by("-computed_at", "kind")
    )
    return render(request, "forecasting/my_forecasts.html", {"predictions": predictions, "scores": scores})


@require_safe
def leaderboard(request: HttpRequest, slug: str | None = None) -> HttpResponse:
    """The site's leaderboard, or one article's (``slug``)."""
    article = get_object_or_404(Article, slug=slug) if slug else None
    board = services.leaderboard(article=article)
    return render(request, "forecasting/leaderboard.html", {"article": article, "board": board})


@require_safe
def track_record(request: HttpRequest, username: str) -> HttpResponse:
    forecaster = get_object_or_404(User, username=username)
    record = services.forecaster_track_record(forecaster=forecaster)
    return render(request, "forecasting/track_record.html", {"forecaster": forecaster, "record": record})
