"""Account pages (included at the site root by webapp/urls.py; names are unnamespaced)."""

from django.urls import path

from . import views

urlpatterns = [
    path("accounts/signup/", views.signup, name="signup"),
    path("me/profile/", views.profile_settings, name="profile_settings"),
]
