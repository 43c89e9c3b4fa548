"""The site's root URLs: each app's pages, Django's auth pages, the REST API and the admin.

The apps' routes keep their unnamespaced names (``home``, ``question_detail``, ``market_trade``...).
The error handlers (``webapp/errors.py``) answer the API's JSON error body under ``/api/``.
"""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("", include("forecasting.urls")),
    path("", include("market.urls")),
    path("", include("comments.urls")),
    path("", include("notifications.urls")),
    path("", include("accounts.urls")),
    path("accounts/", include("django.contrib.auth.urls")),
    path("api/", include("webapp.api.urls")),
    path("admin/", admin.site.urls),
]

handler400 = "webapp.errors.bad_request"
handler403 = "webapp.errors.permission_denied"
handler404 = "webapp.errors.page_not_found"
handler500 = "webapp.errors.server_error"
