"""The public REST API (Django REST framework), versioned under ``/api/v1/``.

Thin like the web views: each endpoint validates its input with a serializer, calls one
service (``forecasting.services``, ``market.services``) and serializes the result. Services
raise Django's ``ValidationError``/``PermissionDenied``; ``exceptions.api_exception_handler``
turns those, and every DRF error, into one error body::

    {"error": {"code": "invalid", "message": "...", "fields": {"probability": ["..."]}}}

The OpenAPI 3 schema is at ``/api/schema/`` (Swagger UI at ``/api/docs/``, Redoc at
``/api/redoc/``, both served from drf-spectacular-sidecar's static files: no CDN). The
settings the API needs are in ``conf.py``.
"""
