"""Market web views: quote (JSON, for the live trade panel), trade, portfolio, leaderboard."""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from forecasting.models import Question
from webapp.charts import step_chart

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


@login_required
def portfolio(request: HttpRequest) -> HttpResponse:
    account = services.account_for_user(user=request.user)
    positions = services.portfolio(user=request.user)
    return render(request, "market/portfolio.html", {"account": account, "positions": positions})


def leaderboard(request: HttpRequest) -> HttpResponse:
    return render(request, "market/leaderboard.html", {"rows": services.profit_leaderboard()})


def trade_panel_context(request: HttpRequest, question: Question) -> dict:
    """What the question page needs for the market panel (called by the question view)."""
    market = Market.objects.filter(question=question).first()
    if market is None:
        return {"market": None}
    prices = services.market_prices(market)
    labels = ["No", "Yes"] if question.is_binary else [o.label for o in question.options.all()]
    context = {
        "market": market,
        "market_outcomes": [{"index": i, "label": labels[i], "price": p} for i, p in enumerate(prices)],
        "market_probability": prices[-1] if question.is_binary else None,
        "trade_key": uuid.uuid4().hex,
        "price_chart": None,
    }
    if request.user.is_authenticated:
        context["balance"] = services.account_for_user(user=request.user).balance / MICRO
        context["my_positions"] = [v for v in services.portfolio(user=request.user) if v.market.pk == market.pk]
    history = list(market.price_history.order_by("at", "id").values_list("at", "prices"))
    if question.is_binary and len(history) >= 2:
        context["price_chart"] = step_chart([(at.timestamp(), p[-1]) for at, p in history])
    return context
