"""Market web views: quote (JSON, for the live trade panel), trade, portfolio, leaderboard.

The trade panel on the question page is market/panels.py; market/urls.py routes these views.
"""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST, require_safe

from forecasting.models import Question
from forecasting.ratelimit import limited_per_ip

from . import services
from .forms import TradeForm
from .models import MICRO, Market


def _errors(error: ValidationError) -> list[str]:
    return [str(m) for m in error.messages]


@require_GET
def quote(request: HttpRequest, pk: int) -> JsonResponse:
    market = get_object_or_404(Market, question_id=pk)
    form = TradeForm(request.GET)
    if not form.is_valid():
        return JsonResponse({"errors": [m for ms in form.errors.values() for m in ms]}, status=400)
    data = form.cleaned_data
    try:
        q = services.market_quote(
            market=market,
            outcome=data["outcome"],
            side=data["side"],
            shares=data["shares_micro"],
            amount=data["amount_micro"],
        )
    except (ValidationError, ValueError) as error:
        messages_ = _errors(error) if isinstance(error, ValidationError) else [str(error)]
        return JsonResponse({"errors": messages_}, status=400)
    return JsonResponse(
        {
            "outcome": q.outcome,
            "shares": q.shares / MICRO,
            "cost": q.cost / MICRO,
            "average_price": q.average_price,
            "price_before": q.price_before,
            "price_after": q.price_after,
            "prices_after": q.prices_after,
        }
    )


@login_required
@require_POST
@limited_per_ip("trade")
def trade(request: HttpRequest, pk: int) -> HttpResponse:
    question = get_object_or_404(Question, pk=pk)
    market = get_object_or_404(Market, question=question)
    form = TradeForm(request.POST)
    if not form.is_valid():
        for message in [m for ms in form.errors.values() for m in ms]:
            messages.error(request, message)
        return redirect(question.get_absolute_url() + "#market")
    data = form.cleaned_data
    try:
        done = services.trade_execute(
            user=request.user,
            market_id=market.pk,
            outcome=data["outcome"],
            side=data["side"],
            shares=data["shares_micro"],
            amount=data["amount_micro"],
            idempotency_key=data["idempotency_key"] or uuid.uuid4().hex,
        )
    except ValidationError as error:
        for message in _errors(error):
            messages.error(request, message)
        return redirect(question.get_absolute_url() + "#market")
    verb = "Bought" if done.shares > 0 else "Sold"
    messages.success(request, f"{verb} {abs(done.shares) / MICRO:,.2f} shares for {abs(done.cost) / MICRO:,.2f}.")
    return redirect(question.get_absolute_url() + "#market")


@require_safe
@login_required
def portfolio(request: HttpRequest) -> HttpResponse:
    balance = services.account_balance(user=request.user)  # a GET opens no account
    positions = services.portfolio(user=request.user)
    return render(request, "market/portfolio.html", {"balance": balance, "positions": positions})


@require_safe
def leaderboard(request: HttpRequest) -> HttpResponse:
    return render(request, "market/leaderboard.html", {"rows": services.profit_leaderboard(viewer=request.user)})
