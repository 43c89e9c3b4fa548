"""Notification pages (included at the site root by webapp/urls.py; names are unnamespaced)."""

urlpatterns: list = []
