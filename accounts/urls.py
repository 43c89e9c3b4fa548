"""Account pages (included at the site root by webapp/urls.py, before ``django.contrib.auth.urls``, so
that ``password_reset`` here, rate-limited, wins over Django's; names are unnamespaced)."""

from django.urls import path

from . import views

urlpatterns = [
    path("accounts/signup/", views.signup, name="signup"),
    path("accounts/password_reset/", views.password_reset, name="password_reset"),
    path("me/profile/", views.profile_settings, name="profile_settings"),
    path("me/email/", views.email_change, name="email_change"),
    path("me/delete/", views.account_delete, name="account_delete"),
]
