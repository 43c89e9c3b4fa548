"""The reader's notification pages: the list (GET only; reading an item is a POST that redirects to it),
mark all read, preferences, and the e-mails' one-click unsubscribe (a signed token, no sign-in)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core import signing
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from . import services
from .forms import PreferencesForm
from .models import Kind, Notification

PER_PAGE = 20


@require_safe
@login_required
def notification_list(request: HttpRequest) -> HttpResponse:
    page = Paginator(services.notifications_for(user=request.user), PER_PAGE).get_page(request.GET.get("page"))
    return render(
        request, "notifications/list.html", {"page": page, "unread": services.unread_count(user=request.user)}
    )


@login_required
@require_POST
def notification_open(request: HttpRequest, pk: int) -> HttpResponse:
    """Mark the item read, then go where it points (a path on this site)."""
    try:
        notification = services.notification_open(user=request.user, notification_id=pk)
    except Notification.DoesNotExist:
        raise Http404("No such notification.") from None
    if url_has_allowed_host_and_scheme(notification.url, allowed_hosts={request.get_host()}):
        return redirect(notification.url)
    return redirect("notification_list")


@login_required
@require_POST
def notifications_read_all(request: HttpRequest) -> HttpResponse:
    marked = services.notifications_mark_all_read(user=request.user)
    if marked:
        messages.success(request, f"Marked {marked} notification{'s' if marked != 1 else ''} read.")
    return redirect("notification_list")


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def notification_preferences(request: HttpRequest) -> HttpResponse:
    preference = services.preferences_for(user=request.user)
    if request.method != "POST":
        form = PreferencesForm(instance=preference, user=request.user)
        return render(request, "notifications/preferences.html", {"form": form})
    form = PreferencesForm(request.POST, instance=preference, user=request.user)
    if not form.is_valid():
        return render(request, "notifications/preferences.html", {"form": form}, status=400)
    services.preferences_update(user=request.user, values=form.cleaned_data)
    messages.success(request, "Your notification settings are saved.")
    return redirect("notification_preferences")


# The signed token is the authority, not a session: mail clients (RFC 8058 one-click) POST without a
# CSRF token or cookies. GET only shows the button, because mail scanners prefetch links.
@csrf_exempt
@require_http_methods(["GET", "HEAD", "POST"])
def notification_unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    try:
        user_id, kind = services.unsubscribe_token_read(token)
    except signing.BadSignature:
        return render(request, "notifications/unsubscribe.html", {"invalid": True}, status=400)
    context = {"kind_label": Kind(kind).label, "token": token}
    if request.method != "POST":
        return render(request, "notifications/unsubscribe.html", context)
    if services.email_unsubscribe(user_id=user_id, kind=kind) is None:
        raise Http404("This account no longer exists.")
    return render(request, "notifications/unsubscribe.html", context | {"done": True})
