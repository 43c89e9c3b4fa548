"""Readers' accounts: sign-up and the profile page (log in and out, password reset: Django's auth views)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from forecasting import services
from forecasting.ratelimit import limited_per_ip

from .forms import ProfileForm, SignupForm


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


@require_http_methods(["GET", "HEAD", "POST"])
@login_required
def profile_settings(request: HttpRequest) -> HttpResponse:
    """Choose whether the public pages show your name and track record."""
    is_public = services.profile_is_public(user=request.user)
    if request.method == "POST":
        form = ProfileForm(request.POST)
        if form.is_valid():
            services.profile_update(user=request.user, is_public=form.cleaned_data["visibility"])
            messages.success(
                request,
                "Your track record is now public."
                if form.cleaned_data["visibility"]
                else "Your track record is now private.",
            )
            return redirect("profile_settings")
        return render(request, "accounts/profile.html", {"form": form, "is_public": is_public}, status=400)
    form = ProfileForm(initial={"visibility": "public" if is_public else "private"})
    return render(request, "accounts/profile.html", {"form": form, "is_public": is_public})
