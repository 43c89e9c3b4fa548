"""Forecasting's REST API (Django REST framework), and the API plumbing every app's API shares.

Thin like the web views: each endpoint validates its input with a serializer, calls one
service (``forecasting.services``) and serializes the result. Services raise Django's
``ValidationError``/``PermissionDenied``; ``exceptions.api_exception_handler`` turns those,
and every DRF error, into one error body::

    {"error": {"code": "invalid", "message": "...", "fields": {"probability": ["..."]}}}

- ``base``: the ``ApiView`` every API view extends, the error-code tuples, small helpers;
  ``exceptions``, ``pagination``, ``schema``: the error body, pages, the OpenAPI details.
  Other apps' APIs (``market.api``) build on these.
- ``serializers``, ``filters``, ``permissions``, ``views``, ``urls``: forecasting's endpoints.
- ``extensions``: fields other apps add to the question API (the market adds ``market``).

The project mounts every app's ``urls`` under ``/api/v1/`` (``webapp/api/urls.py``).
"""
