"""Find questions: /questions/ with text search, filters and sorting (forecasting.filters), 20 a
page, in a constant number of queries per page. Only the questions the reader may see."""

from __future__ import annotations

import datetime as dt

from django.core.paginator import Paginator
from django.db.models import Max, Min, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_safe

from forecasting import services
from forecasting.filters import MOVE_WINDOW, QuestionListFilter, annotated
from forecasting.models import AggregateSnapshot, Question
from forecasting.templatetags.forecast_format import describe_distribution

from .questions import days_left

PER_PAGE = 20


def moves_24h(question_ids: list[int], now: dt.datetime) -> dict[int, dict]:
    """Each question's change of the headline aggregate over the last 24 hours (two queries).

    The change is measured from the value that stood 24 hours ago (or the first value, for a
    question whose first forecast is newer) to the current one: for a yes/no question the signed
    change of P(YES), for multiple choice the largest change of any option. Ids are assumed to grow
    with time, as snapshots are appended.
    """
    ends = (
        AggregateSnapshot.objects.filter(question_id__in=question_ids, method=services.HEADLINE_METHOD)
        .values("question_id")
        .annotate(last=Max("id"), then=Max("id", filter=Q(at__lte=now - MOVE_WINDOW)), first=Min("id"))
    )
    pairs = {row["question_id"]: (row["then"] or row["first"], row["last"]) for row in ends}
    wanted = {i for pair in pairs.values() for i in pair}
    probabilities = dict(AggregateSnapshot.objects.filter(id__in=wanted).values_list("id", "probabilities"))
    moves = {}
    for question_id, (then_id, last_id) in pairs.items():
        before, after = probabilities[then_id], probabilities[last_id]
        changes = [b - a for a, b in zip(before, after, strict=False)]
        largest = max(changes, key=abs, default=0.0)
        moves[question_id] = {"size": abs(largest), "yes": changes[-1] if len(after) == 2 else None}
    return moves


@require_safe
def question_list(request: HttpRequest) -> HttpResponse:
    visible = annotated(Question.objects.visible_to(request.user), request.user)
    filters = QuestionListFilter(request.GET or None, queryset=visible, request=request)
    valid = not filters.is_bound or filters.is_valid()
    now = timezone.now()
    queryset = filters.ordered(filters.qs) if valid else visible.none()
    sort = filters.sort_key
    if sort == "move":
        # Sorted on a value computed from two snapshots per question: order the ids, then page them.
        ids = list(queryset.values_list("pk", flat=True))
        moves = moves_24h(ids, now)
        ids.sort(key=lambda pk: -moves.get(pk, {"size": 0.0})["size"])
        page = Paginator(ids, PER_PAGE).get_page(request.GET.get("page"))
        by_id = {q.pk: q for q in queryset.filter(pk__in=list(page.object_list))}
        questions = [by_id[pk] for pk in page.object_list]
    else:
        page = Paginator(queryset, PER_PAGE).get_page(request.GET.get("page"))
        questions = list(page.object_list)
        moves = moves_24h([q.pk for q in questions], now)
    rows = []
    for question in questions:
        probabilities = question.community_probabilities
        rows.append(
            {
                "question": question,
                "community": probabilities[-1] if probabilities and question.is_binary else None,
                # a numeric or date question: the community's median and 80% interval
                "distribution": describe_distribution(question, probabilities) if probabilities else None,
                "move": moves.get(question.pk),
                "days_left": days_left(question, now),
            }
        )
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "filters": filters,
        "page": page,
        "rows": rows,
        "sort": sort,
        "query": query.urlencode(),
        "filtered": filters.is_bound,
    }
    return render(request, "forecasting/question_list.html", context, status=200 if valid else 400)
