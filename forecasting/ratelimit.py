"""Per-IP limits on the site's forms (sign-up, forecast, trade) and the client address they count by.

Counters live in the default cache (``CACHES``: Redis in production, one process's memory in
development and tests), through django-ratelimit's fixed windows. Rates come from
``settings.RATE_LIMITS`` at each request, so that they can be changed without a restart of the
code that uses them (and overridden in tests). Over the limit, the answer is a 429 page with a
``Retry-After`` header, and the view does not run: nothing is written.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django_ratelimit.core import get_usage


def client_ip(request: HttpRequest) -> str:
    """The client's address: ``REMOTE_ADDR``, or, behind ``NUM_PROXIES`` trusted proxies, the address
    the outermost of them saw (the ``X-Forwarded-For`` entry it appended). Entries further left are
    the client's own claims, so they are never used."""
    proxies = getattr(settings, "NUM_PROXIES", 0)
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if proxies and forwarded:
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        if hops:
            return hops[-min(proxies, len(hops))]
    # "" when unknown (a request made in code): databases store it as no address.
    return request.META.get("REMOTE_ADDR", "")


def too_many_requests(request: HttpRequest, retry_after: int, message: str = "") -> HttpResponse:
    """The 429 page, with ``Retry-After`` in whole seconds (at least 1)."""
    retry_after = max(int(retry_after), 1)
    response = render(
        request,
        "forecasting/too_many_requests.html",
        {"retry_after": retry_after, "message": message or "Too many attempts from your address."},
        status=429,
    )
    response["Retry-After"] = str(retry_after)
    return response


def limited_per_ip(group: str) -> Callable:
    """A view decorator: at most ``settings.RATE_LIMITS[group]`` POSTs (``"10/h"``) per client address."""

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            usage = get_usage(
                request,
                group=f"forecasts.{group}",
                key=lambda _group, req: client_ip(req),
                rate=settings.RATE_LIMITS[group],
                method="POST",
                increment=True,
            )
            if usage is not None and usage["should_limit"]:
                return too_many_requests(request, usage["time_left"])
            return view(request, *args, **kwargs)

        return wrapped

    return decorator
