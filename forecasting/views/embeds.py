"""Questions in other pages: the embed for an iframe, oEmbed, and the Open Graph card (being written)."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse


def question_embed(request: HttpRequest, pk: int) -> HttpResponse:
    raise Http404


def oembed(request: HttpRequest) -> HttpResponse:
    raise Http404


def question_card_image(request: HttpRequest, pk: int) -> HttpResponse:
    raise Http404
