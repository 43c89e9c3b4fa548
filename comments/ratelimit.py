"""The comments' rate limits, shared by the web form and the API: several fixed windows
(``settings.COMMENT_RATE_LIMITS``, e.g. 5 a minute and 50 a day), each counted per account and per
client address, in the default cache through django-ratelimit (like ``forecasting.ratelimit``).

An attempt counts whether or not it is accepted, so that a script cannot probe for free.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest
from django_ratelimit.core import get_usage

from forecasting.ratelimit import client_ip

MESSAGE = "You are commenting too fast."


def comment_retry_after(request: HttpRequest, user) -> int | None:
    """Count one comment attempt by ``user`` from the request's address; the seconds to wait if it is
    over any limit, else ``None``. ``request`` is Django's (an API view passes ``request._request``)."""
    ip = client_ip(request)
    keys = {"account": f"user:{user.pk}", "ip": f"ip:{ip}"}
    waits = []
    for kind, rates in settings.COMMENT_RATE_LIMITS.items():
        for rate in rates:
            usage = get_usage(
                request,
                group=f"comments.{kind}",
                key=lambda _group, _request, value=keys[kind]: value,
                rate=rate,
                increment=True,
            )
            if usage is not None and usage["should_limit"]:
                waits.append(max(int(usage["time_left"]), 1))
    return max(waits) if waits else None
