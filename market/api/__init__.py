"""The market's REST API: its serializers, views, filters and URLs, under the project's ``/api/v1/``.

It builds on forecasting's API plumbing (``forecasting.api.base``: the base view, the error body,
pagination, the schema class) and adds the ``market`` field to forecasting's question API
(``fields``, imported by ``MarketConfig.ready()``).
"""
