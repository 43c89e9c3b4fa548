"""Notification pages (included at the site root by webapp/urls.py; names are unnamespaced)."""

from django.urls import path

from . import views

urlpatterns = [
    path("me/notifications/", views.notification_list, name="notification_list"),
    path("me/notifications/read/", views.notifications_read_all, name="notifications_read_all"),
    path("me/notifications/<int:pk>/open/", views.notification_open, name="notification_open"),
    path("me/notifications/preferences/", views.notification_preferences, name="notification_preferences"),
    path("notifications/unsubscribe/<str:token>/", views.notification_unsubscribe, name="notification_unsubscribe"),
]
