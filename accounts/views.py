"""Readers' accounts: sign-up, the profile page, the e-mail address, deleting the account, and the
password-reset request (Django's view, rate-limited, its link built from ``SITE_URL``).

Log in and out, the rest of the password reset and the password change are Django's auth views
(``django.contrib.auth.urls``, templates in webapp/templates/registration/).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, logout
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.forms import Form
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from forecasting.ratelimit import limited_per_ip
from forecasting.services.profiles import profile_display_name, profile_is_public, profile_update

from . import services
from .forms import AccountDeleteForm, EmailChangeForm, ProfileForm, SignupForm


def _add_service_errors(form: Form, error: ValidationError) -> None:
    """The service's errors next to the field they are about (the rest above the form)."""
    if hasattr(error, "error_dict"):
        for field, field_messages in error.message_dict.items():
            for message in field_messages:
                form.add_error(field if field in form.fields else None, message)
    else:
        for message in error.messages:
            form.add_error(None, message)


# Per address: each account brings a market grant, so unlimited sign-ups would mint sock puppets.
@limited_per_ip("signup")
def signup(request: HttpRequest) -> HttpResponse:
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = services.account_create(
                username=form.cleaned_data["username"],
                email=form.cleaned_data["email"],
                password=form.cleaned_data["password1"],
            )
        except ValidationError as error:
            _add_service_errors(form, error)
        else:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(request, f"Welcome, {user.username}. Pick a question and make your first forecast.")
            return redirect("home")
    return render(request, "registration/signup.html", {"form": form}, status=400 if request.method == "POST" else 200)


def _profile_page(
    request: HttpRequest, *, profile_form: ProfileForm | None = None, email_form: EmailChangeForm | None = None
) -> HttpResponse:
    is_public = profile_is_public(user=request.user)
    if profile_form is None:
        profile_form = ProfileForm(
            initial={
                "visibility": "public" if is_public else "private",
                "display_name": profile_display_name(user=request.user),
            }
        )
    context = {
        "form": profile_form,
        "email_form": email_form or EmailChangeForm(),
        "is_public": is_public,
        "display_name": profile_display_name(user=request.user),
    }
    refused = profile_form.is_bound or (email_form is not None and email_form.is_bound)
    return render(request, "accounts/profile.html", context, status=400 if refused else 200)


@require_http_methods(["GET", "HEAD", "POST"])
@login_required
def profile_settings(request: HttpRequest) -> HttpResponse:
    """The reader's profile page: display name, public or private, e-mail, password, deletion."""
    if request.method != "POST":
        return _profile_page(request)
    form = ProfileForm(request.POST)
    if form.is_valid():
        try:
            profile = profile_update(
                user=request.user,
                is_public=form.cleaned_data["visibility"],
                display_name=form.cleaned_data["display_name"],
            )
        except ValidationError as error:
            _add_service_errors(form, error)
        else:
            messages.success(
                request,
                "Your profile is saved. Your track record is now public."
                if profile.is_public
                else "Your profile is saved. Your track record is now private.",
            )
            return redirect("profile_settings")
    return _profile_page(request, profile_form=form)


@login_required
@require_POST
def email_change(request: HttpRequest) -> HttpResponse:
    """A new e-mail address, confirmed with the password (the profile page's second form)."""
    form = EmailChangeForm(request.POST)
    if form.is_valid():
        try:
            user = services.account_email_change(
                user=request.user, email=form.cleaned_data["email"], password=form.cleaned_data["password"]
            )
        except ValidationError as error:
            _add_service_errors(form, error)
        else:
            messages.success(request, f"Your e-mail address is now {user.email}.")
            return redirect("profile_settings")
    return _profile_page(request, email_form=form)


@require_http_methods(["GET", "HEAD", "POST"])
@login_required
def account_delete(request: HttpRequest) -> HttpResponse:
    """GET explains what deleting keeps and erases; POST, with the password and the username typed, deletes."""
    form = AccountDeleteForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            services.account_delete(user=request.user, password=form.cleaned_data["password"])
        except ValidationError as error:
            _add_service_errors(form, error)
        else:
            logout(request)  # this session ends now; the others at their next request (auth hash)
            messages.success(
                request, "Your account is deleted. Your forecasts stay in the community numbers, anonymously."
            )
            return redirect("home")
    status = 400 if request.method == "POST" else 200
    return render(request, "accounts/delete.html", {"form": form}, status=status)


class PasswordResetView(auth_views.PasswordResetView):
    """Django's password-reset request, with the e-mail's link on ``SITE_URL`` (not the Host header the
    request came with, which a client chooses) and a 400 for a refused form."""

    def form_valid(self, form) -> HttpResponse:
        site = urlsplit(settings.SITE_URL)
        self.extra_email_context = {"protocol": site.scheme, "domain": site.netloc, "site_name": "Newsroom Forecasts"}
        return super().form_valid(form)

    def form_invalid(self, form) -> HttpResponse:
        response = super().form_invalid(form)
        response.status_code = 400
        return response


# Per address: each request may send an e-mail to someone else's inbox.
password_reset = limited_per_ip("password_reset")(PasswordResetView.as_view())
