"""Questions in other sites' pages: the embed for an iframe, oEmbed, and the Open Graph card.

- ``/embed/questions/<id>/``: a small page of its own (no base.html) with the live community number,
  a sparkline, the forecasters and a link to the question. The only page other sites may frame:
  no X-Frame-Options, and CSP ``frame-ancestors`` from ``settings.EMBED_FRAME_ANCESTORS``.
- ``/oembed?url=...``: the oEmbed 1.0 answer (https://oembed.com) for a question's page or embed URL,
  type "rich": the iframe code, its size within maxwidth/maxheight, the card as thumbnail. JSON only
  (XML answers 501, as the spec asks of a format a provider does not serve).
- ``/questions/<id>/card.png``: the 1200x630 preview card (``forecasting/cards.py``, cached).

All three read through ``Question.objects.visible_to``: drafts are 404 to everyone but editors, and
answers about drafts are never cacheable by shared caches.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from urllib.parse import parse_qs, urlsplit

from csp.decorators import csp_replace
from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.loader import render_to_string
from django.urls import Resolver404, resolve
from django.utils.cache import patch_cache_control
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.http import require_safe

from forecasting.models import Question
from forecasting.services import embeds
from forecasting.templatetags.embeds import question_summary

from .questions import question_cards

EMBED_REFRESH_SECONDS = 60
OEMBED_ROUTES = ("question_detail", "question_embed")  # the URLs oEmbed answers for


def framable_by_embedders(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Let the sites in ``EMBED_FRAME_ANCESTORS`` frame this view, and no other view.

    The setting is read per request (not when the module loads) so that a deployment's value, and
    ``override_settings`` in tests, apply. An empty list frames nowhere rather than everywhere."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        ancestors = list(settings.EMBED_FRAME_ANCESTORS) or ["'none'"]
        return csp_replace({"frame-ancestors": ancestors})(view)(request, *args, **kwargs)

    return xframe_options_exempt(wrapped)


def _visible_question(request: HttpRequest, pk: int) -> Question:
    return get_object_or_404(Question.objects.visible_to(request.user).select_related("article"), pk=pk)


def _cacheable(response: HttpResponse, question: Question, max_age: int = embeds.CACHE_SECONDS) -> HttpResponse:
    """Published questions' answers may be kept a few minutes by anyone; an editor's view of a draft
    by nobody (a shared cache must not hand it to readers)."""
    if question.published_at is not None:
        patch_cache_control(response, public=True, max_age=max_age)
    else:
        patch_cache_control(response, private=True, no_store=True)
    return response


@require_safe
@framable_by_embedders
def question_embed(request: HttpRequest, pk: int) -> HttpResponse:
    question = _visible_question(request, pk)
    (card,) = question_cards(request, [question])  # the article card's number, sparkline and facts
    summary = question_summary(question, card["community"])  # a numeric or date question's median too
    shown = {option.index for option in summary.top_options}
    context = {
        "card": card,
        # a multiple-choice question's lines: the options listed, in their bars' colours (a numeric or date
        # question's one line: its median)
        "sparklines": [
            line
            for line in card["sparklines"]
            if question.is_binary or question.is_continuous or line["index"] in shown
        ],
        "question": question,
        "page_url": embeds.absolute_url(question.get_absolute_url()),
        "summary": summary,
        "theme": "dark" if request.GET.get("theme") == "dark" else "light",
        "refresh_seconds": EMBED_REFRESH_SECONDS,
    }
    # Without the site's context processors (demo banner, notification bell): the embed needs none of them.
    response = HttpResponse(render_to_string("embed/question.html", context))
    # The page refreshes its number every minute: a shared cache may spare the database in between.
    return _cacheable(response, question, max_age=EMBED_REFRESH_SECONDS)


def _error(status: int, message: str) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


def _positive_int(value: str | None) -> int | None:
    """An oEmbed size limit: None when absent; ValueError when not a positive whole number."""
    if value in (None, ""):
        return None
    number = int(value)
    if number < 1:
        raise ValueError(value)
    return number


def _question_from_url(request: HttpRequest, url: str) -> tuple[int, str] | None:
    """The question id (and embed theme) of one of our question or embed URLs; None for any other URL."""
    parts = urlsplit(url)
    ours = {urlsplit(settings.SITE_URL).netloc, request.get_host()}
    if parts.scheme not in ("http", "https") or parts.netloc not in ours:
        return None
    try:
        match = resolve(parts.path or "/")
    except Resolver404:
        return None
    if match.url_name not in OEMBED_ROUTES:
        return None
    theme = parse_qs(parts.query).get("theme", [""])[0] if match.url_name == "question_embed" else ""
    return match.kwargs["pk"], theme


@require_safe
def oembed(request: HttpRequest) -> HttpResponse:
    url = request.GET.get("url", "").strip()
    if not url:
        return _error(400, "The url parameter is required: the address of a question page or its embed.")
    response_format = request.GET.get("format", "json") or "json"
    if response_format != "json":
        return _error(501, f"Format {response_format!r} is not implemented: use format=json.")
    try:
        maxwidth = _positive_int(request.GET.get("maxwidth"))
        maxheight = _positive_int(request.GET.get("maxheight"))
    except ValueError:
        return _error(400, "maxwidth and maxheight must be positive whole numbers of pixels.")
    found = _question_from_url(request, url)
    if found is None:
        raise Http404("Not a question of this site.")
    pk, theme = found
    question = _visible_question(request, pk)
    width, height = embeds.embed_size(question, maxwidth, maxheight)
    links = embeds.share_links(question)
    data = {
        "version": "1.0",
        "type": "rich",
        "title": question.title,
        "provider_name": embeds.SITE_NAME,
        "provider_url": embeds.absolute_url("/"),
        "cache_age": embeds.CACHE_SECONDS,
        "html": embeds.embed_code(question, width=width, height=height, theme=theme),
        "width": width,
        "height": height,
    }
    # The spec: a thumbnail must respect maxwidth and maxheight too; the card has one size.
    card_width, card_height = embeds.CARD_SIZE
    if (maxwidth or card_width) >= card_width and (maxheight or card_height) >= card_height:
        data |= {"thumbnail_url": links["card"], "thumbnail_width": card_width, "thumbnail_height": card_height}
    response = JsonResponse(data)
    # Consumers fetch it from their servers or from scripts on their pages (without cookies: drafts stay hidden).
    response["Access-Control-Allow-Origin"] = "*"
    return _cacheable(response, question)


@require_safe
def question_card_image(request: HttpRequest, pk: int) -> HttpResponse:
    question = _visible_question(request, pk)
    response = HttpResponse(embeds.card_png(question=question), content_type="image/png")
    return _cacheable(response, question)
