"""The public accuracy page: how good the site's aggregate forecasts have been on resolved questions."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from forecasting import services


@require_safe
def accuracy(request: HttpRequest) -> HttpResponse:
    return render(request, "forecasting/accuracy.html", {"accuracy": services.site_accuracy()})
