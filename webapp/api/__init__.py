"""The project's REST API wiring: each app's API mounted under ``/api/v1/``, the docs, the settings.

The endpoints live in the apps (``forecasting.api``, ``market.api``); here are only ``urls.py``
(``/api/v1/`` with every app's endpoints in the ``api`` namespace, the v1 catch-all 404, the
OpenAPI 3 schema at ``/api/schema/``, Swagger UI at ``/api/docs/`` and Redoc at ``/api/redoc/``,
both served from drf-spectacular-sidecar's static files: no CDN) and ``conf.py`` (the DRF and
drf-spectacular settings).
"""
