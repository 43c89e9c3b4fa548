"""The API's URLs; the project includes them with ``path("api/", include("webapp.api.urls"))``.

- ``/api/v1/...``: the endpoints (version 1) of every app, in the ``api`` namespace
  (``api:question-list``, ``api:market-quote``...); any other path under ``/api/`` is a JSON 404.
- ``/api/schema/``: the OpenAPI 3 schema (YAML; ``?format=json`` for JSON).
- ``/api/docs/`` (Swagger UI) and ``/api/redoc/`` (Redoc), served from local static files.

The docs pages live under the site's strict Content-Security-Policy (``CONTENT_SECURITY_POLICY`` in
the settings) with one exception, for these two pages only: inline styles, which Swagger UI's page and
Redoc's styled-components need to render, and for Redoc a search worker it starts from a blob: URL.
Scripts stay same-origin only: Swagger UI's start-up script is served as a file by the same view
(``?script``), not inlined. Redoc's external fonts and logo are refused (it falls back to local fonts).
"""

from csp.constants import UNSAFE_INLINE
from csp.decorators import csp_update
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerSplitView

from forecasting.api.exceptions import not_found

app_name = "api"

v1 = [
    path("", include("forecasting.api.urls")),
    path("", include("market.api.urls")),
    path("", include("comments.api.urls")),
]

_docs_styles = csp_update({"style-src": [UNSAFE_INLINE]})
_redoc_policy = csp_update({"style-src": [UNSAFE_INLINE], "worker-src": ["blob:"]})

urlpatterns = [
    path("v1/", include(v1)),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", _docs_styles(SpectacularSwaggerSplitView.as_view(url_name="api:schema")), name="docs"),
    path("redoc/", _redoc_policy(SpectacularRedocView.as_view(url_name="api:schema")), name="redoc"),
    # Last: every other path under /api/ (with or without a trailing slash) is a JSON 404.
    re_path(r"", not_found),
]
