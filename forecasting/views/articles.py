"""The front page (articles with their question counts) and an article's page: its text, with each
question's card (live community number, sparkline, the reader's forecast form) at the paragraph that
raises it."""

from __future__ import annotations

import re

from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_safe

from forecasting.models import Article, Question

from .questions import question_cards, visible_questions

_BLANK_LINE = re.compile(r"\n[ \t]*\n")


def split_paragraphs(body: str) -> list[str]:
    """The article's paragraphs: plain text separated by blank lines (rendered escaped, never as HTML)."""
    text = body.replace("\r\n", "\n").replace("\r", "\n")
    return [paragraph.strip() for paragraph in _BLANK_LINE.split(text) if paragraph.strip()]


def place_cards(paragraphs: list[str], cards: list[dict]) -> tuple[list[dict], list[dict]]:
    """Each paragraph with the cards shown after it, and the cards shown after the text (no paragraph
    chosen, or a paragraph beyond the last one)."""
    blocks = [{"number": i, "text": text, "cards": []} for i, text in enumerate(paragraphs, start=1)]
    after_text = []
    for card in cards:
        paragraph = card["question"].paragraph
        if paragraph and paragraph <= len(blocks):
            blocks[paragraph - 1]["cards"].append(card)
        else:
            after_text.append(card)
    return blocks, after_text


@require_safe
def home(request: HttpRequest) -> HttpResponse:
    articles = Article.objects.annotate(
        open_questions=Count(
            "questions", filter=Q(questions__status=Question.Status.OPEN, questions__published_at__isnull=False)
        ),
        all_questions=Count("questions", filter=Q(questions__published_at__isnull=False)),
    ).order_by("-published_at", "-id")  # explicit: a GROUP BY drops Meta.ordering, newest first
    return render(request, "forecasting/home.html", {"articles": articles})


@require_safe
def article_detail(request: HttpRequest, slug: str) -> HttpResponse:
    article = get_object_or_404(Article, slug=slug)
    questions = list(visible_questions(request, article.questions.order_by("closes_at", "id")))
    cards = question_cards(request, questions)
    blocks, after_text = place_cards(split_paragraphs(article.body), cards)
    context = {"article": article, "blocks": blocks, "after_text": after_text, "cards": cards}
    return render(request, "forecasting/article_detail.html", context)
