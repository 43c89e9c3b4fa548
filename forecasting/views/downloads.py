"""Data downloads: thin views over ``forecasting.io.exports`` (which builds and streams the tables).

- ``downloads``: the analyst page, what can be downloaded, with filters.
- ``download_all`` / ``download_article`` / ``download_question``: analysts' exports
  (``exports.ANALYST_PERMISSION``); forecasters are anonymised unless the user holds
  ``exports.IDENTITIES_PERMISSION``.
- ``download_mine``: any signed-in reader's own forecasts and scores.

Every export takes ``format`` (csv, the default, or parquet) and ``table`` (one table alone;
all of them with a README.md in a ZIP when absent); the all and article exports also take the
question filters ``status`` (repeatable), ``from`` and ``to`` (YYYY-MM-DD), and ``article``.
Bad input answers 400 (404 for an unknown article or question), before any byte is streamed.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_GET

from forecasting.io import exports
from forecasting.io.exports.response import streaming_download
from forecasting.models import Article, Prediction, Question

QUESTIONS_PER_PAGE = 50


def _require_analyst(request: HttpRequest) -> None:
    if not exports.may_export(request.user):
        raise PermissionDenied("Downloads of the newsroom's forecasts are for analysts.")


def _bad_request(error: exports.ExportError) -> HttpResponse:
    return HttpResponse(error.message, status=error.status, content_type="text/plain; charset=utf-8")


def _stream(request: HttpRequest, export: exports.Export) -> HttpResponse:
    try:
        fmt, table = exports.parse_format(request.GET, tables=export.tables)
    except exports.ExportError as error:
        return _bad_request(error)
    return streaming_download(export, fmt, table)


@require_GET
@login_required
def download_all(request: HttpRequest) -> HttpResponse:
    _require_analyst(request)
    try:
        filters = exports.parse_filters(request.GET)
    except exports.ExportError as error:
        return _bad_request(error)
    return _stream(
        request, exports.export_everything(filters=filters, identities=exports.may_see_identities(request.user))
    )


@require_GET
@login_required
def download_article(request: HttpRequest, slug: str) -> HttpResponse:
    _require_analyst(request)
    article = get_object_or_404(Article, slug=slug)
    try:
        filters = exports.parse_filters(request.GET, article=article)
    except exports.ExportError as error:
        return _bad_request(error)
    return _stream(
        request, exports.export_article(article, filters=filters, identities=exports.may_see_identities(request.user))
    )


@require_GET
@login_required
def download_question(request: HttpRequest, pk: int) -> HttpResponse:
    _require_analyst(request)
    question = get_object_or_404(exports.exportable_questions(), pk=pk)
    return _stream(request, exports.export_question(question, identities=exports.may_see_identities(request.user)))


@require_GET
@login_required
def download_mine(request: HttpRequest) -> HttpResponse:
    return _stream(request, exports.export_own_data(request.user))


def _links(url: str, filters: list[tuple[str, str]] = ()) -> dict[str, str]:
    def link(**params) -> str:
        query = urlencode([*filters, *params.items()])
        return f"{url}?{query}" if query else url

    return {"csv": link(), "parquet": link(format="parquet")}


@require_GET
@login_required
def downloads(request: HttpRequest) -> HttpResponse:
    """What an analyst can download: everything, per article, per question, filtered."""
    _require_analyst(request)
    try:
        filters = exports.parse_filters(request.GET)
    except exports.ExportError as error:
        if error.status == 404:
            return _bad_request(error)
        filters, problem = exports.QuestionFilters(), error.message
        status = 400
    else:
        problem, status = None, 200
    query = filters.query()
    questions = filters.apply(Question.objects.all()).select_related("article").order_by("-opens_at", "-pk")
    page = Paginator(questions, QUESTIONS_PER_PAGE).get_page(request.GET.get("page"))
    forecasts = dict(
        Prediction.objects.filter(question_id__in=[q.pk for q in page])
        .values_list("question_id")
        .annotate(n=Count("pk"))
        .order_by()
    )
    article_filters = [(k, v) for k, v in query if k != "article"]
    articles = (
        Article.objects.filter(pk__in=filters.apply(Question.objects.all()).values("article_id"))
        .annotate(n_questions=Count("questions"))
        .order_by("-published_at", "-pk")
    )
    all_url = reverse("download_all")
    context = {
        "filters": filters,
        "problem": problem,
        "statuses": [
            (value, label) for value, label in Question.Status.choices if value in exports.EXPORTABLE_STATUSES
        ],
        "all_articles": Article.objects.order_by("title"),
        "everything": _links(all_url, query),
        "table_links": [
            {
                "table": exports.TABLES[name],
                "csv": _links(all_url, [*query, ("table", name)])["csv"],
                "parquet": _links(all_url, [*query, ("table", name)])["parquet"],
            }
            for name in exports.ANALYST_TABLES
        ],
        "articles": [
            {"article": a, **_links(reverse("download_article", args=[a.slug]), article_filters)} for a in articles
        ],
        "page": page,
        "questions": [
            {"question": q, "forecasts": forecasts.get(q.pk, 0), **_links(reverse("download_question", args=[q.pk]))}
            for q in page
        ],
        "page_query": urlencode(query),
        "tables": [exports.TABLES[name] for name in exports.ANALYST_TABLES],
        "types": exports.TYPES,
        "methods": exports.method_descriptions(),
        "identities": exports.may_see_identities(request.user),
        "identities_permission": exports.IDENTITIES_PERMISSION,
        "mine_url": reverse("download_mine"),
    }
    return render(request, "analyst/downloads.html", context, status=status)
