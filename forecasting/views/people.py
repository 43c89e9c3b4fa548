"""Forecasters: the reader's own forecasts and scores, the leaderboards, track records.

What the public pages show of a reader follows their profile (``services.profiles``): a private
reader's track record is theirs alone and leaderboards list them without a name (defect 8).
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_safe

from forecasting import services
from forecasting.models import Article, Prediction, Question, Score
from forecasting.services.profiles import DELETED_USERNAME_PREFIX
from forecasting.services.track_records import PERIOD_LABELS


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
    """The site's leaderboard, or one article's (``slug``, or ``?article=``), over ``?period=``."""
    slug = slug or request.GET.get("article") or None
    article = get_object_or_404(Article, slug=slug) if slug else None
    context = {
        "article": article,
        "articles": Article.objects.filter(questions__status=Question.Status.RESOLVED).distinct().only("slug", "title"),
        "periods": PERIOD_LABELS,
    }
    try:
        period = services.leaderboard_period(request.GET.get("period"))
    except ValidationError as error:
        context |= {"error": error.messages[0], "period": "all"}
        return render(request, "forecasting/leaderboard.html", context, status=400)
    board = services.public_leaderboard(article=article, period=period, viewer=request.user)
    return render(request, "forecasting/leaderboard.html", context | {"board": board, "period": period})


@require_safe
def track_record(request: HttpRequest, username: str) -> HttpResponse:
    # A deleted account keeps its row (its scores count) but has no track record page. The profile
    # comes in the same query: the page is titled with a public reader's display name.
    forecasters = User.objects.exclude(username__startswith=DELETED_USERNAME_PREFIX)
    forecasters = forecasters.select_related("forecaster_profile")
    forecaster = get_object_or_404(forecasters, username=username)
    is_own = request.user.is_authenticated and request.user.pk == forecaster.pk
    context = {"forecaster": forecaster, "is_own": is_own}
    if not services.may_see_track_record(forecaster=forecaster, viewer=request.user):
        return render(request, "forecasting/track_record.html", context | {"private": True})
    context |= {
        "record": services.forecaster_record(forecaster=forecaster),
        "is_public": services.profile_is_public(user=forecaster),
    }
    return render(request, "forecasting/track_record.html", context)
