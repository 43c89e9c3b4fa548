"""Reader sign-up (log in and out are Django's own auth views, routed in webapp/urls.py)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from forecasting.forms import SignupForm
from forecasting.ratelimit import limited_per_ip


# Per address: each account brings a market grant, so unlimited sign-ups would mint sock puppets.
@limited_per_ip("signup")
def signup(request: HttpRequest) -> HttpResponse:
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(request, f"Welcome, {user.username}. Pick a question and make your first forecast.")
        return redirect("home")
    return render(request, "registration/signup.html", {"form": form}, status=400 if request.method == "POST" else 200)
