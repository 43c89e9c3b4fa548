"""The site's root URLs: each app's pages, Django's auth pages, the REST API and the admin.

The apps' routes keep their unnamespaced names (``home``, ``question_detail``, ``market_trade``...).
"""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("", include("forecasting.urls")),
    path("", include("market.urls")),
    path("accounts/", include("django.contrib.auth.urls")),
    path("api/", include("webapp.api.urls")),
    path("admin/", admin.site.urls),
]
