"""The front page (articles with their question counts) and an article's page (its questions, each
with the reader's quick forecast form)."""

from __future__ import annotations

from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_safe

from forecasting.models import Article, Question

from .questions import forecast_form, question_card, visible_questions


@require_safe
def home(request: HttpRequest) -> HttpResponse:
    articles = Article.objects.annotate(
        open_questions=Count(
            "questions", filter=Q(questions__status=Question.Status.OPEN, questions__published_at__isnull=False)
        ),
        all_questions=Count("questions", filter=Q(questions__published_at__isnull=False)),
    )
    return render(request, "forecasting/home.html", {"articles": articles})


@require_safe
def article_detail(request: HttpRequest, slug: str) -> HttpResponse:
    article = get_object_or_404(Article, slug=slug)
    questions = visible_questions(request, article.questions.all())
    cards = []
    for question in questions:
        card = question_card(request, question)
        if question.is_binary:  # multiple choice is forecast on the question page
            card["form"] = forecast_form(question, mine=card["mine"])
            card["next"] = f"{article.get_absolute_url()}#q{question.pk}"
        cards.append(card)
    return render(request, "forecasting/article_detail.html", {"article": article, "cards": cards})
