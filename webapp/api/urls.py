"""The API's URLs; the project includes them with ``path("api/", include("webapp.api.urls"))``.

- ``/api/v1/...``: the endpoints (version 1) of every app, in the ``api`` namespace
  (``api:question-list``, ``api:market-quote``...); any other path under ``/api/`` is a JSON 404.
- ``/api/schema/``: the OpenAPI 3 schema (YAML; ``?format=json`` for JSON).
- ``/api/docs/`` (Swagger UI) and ``/api/redoc/`` (Redoc), served from local static files.
"""

from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from forecasting.api.exceptions import not_found

app_name = "api"

v1 = [
    path("", include("forecasting.api.urls")),
    path("", include("market.api.urls")),
]

urlpatterns = [
    path("v1/", include(v1)),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="api:schema"), name="redoc"),
    # Last: every other path under /api/ (with or without a trailing slash) is a JSON 404.
    re_path(r"", not_found),
]
