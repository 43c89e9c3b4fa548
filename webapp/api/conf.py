"""The API's settings, imported by ``webapp/settings.py`` (which also lists ``API_APPS``).

The API's views set their authentication, pagination, filtering, schema class and exception
handler themselves (``forecasting.api.base.ApiView``), so these defaults only matter to DRF views
elsewhere in the project; they are the same values, so every API in the project behaves alike.
Dotted paths, not imports: the settings must not import the apps.

Throttle rates (``"20/min"``, per user when signed in, per client address otherwise) can be set
from the environment: ``API_THROTTLE_TOKEN``, ``API_THROTTLE_PREDICTIONS``, ``API_THROTTLE_TRADES``.
"""

import os

API_APPS = [
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
]

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first: an unauthenticated request gets 401 with ``WWW-Authenticate: Token``.
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticatedOrReadOnly"],
    "DEFAULT_PARSER_CLASSES": [
        "forecasting.api.parsers.SafeJSONParser",  # a too deeply nested body is a 400, not a 500
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "forecasting.api.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "forecasting.api.exceptions.api_exception_handler",
    # By each view's ``throttle_scope``, writes only: forecasting.api.base.ApiView sets its throttle
    # class itself (as a DRF default, it would be imported while DRF's APIView is being defined).
    "DEFAULT_THROTTLE_RATES": {
        "token": os.environ.get("API_THROTTLE_TOKEN", "20/min"),
        "predictions": os.environ.get("API_THROTTLE_PREDICTIONS", "60/min"),
        "trades": os.environ.get("API_THROTTLE_TRADES", "60/min"),
    },
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Newsroom Forecasts API",
    "DESCRIPTION": (
        "Articles, their questions, readers' forecasts, community aggregates, scores, "
        "leaderboards and the play-money market.\n\n"
        "**Authentication**: `Authorization: Token <key>` (get a key from `POST /api/v1/auth/token/`) "
        "or the site's session cookie (send the CSRF token on writes).\n\n"
        "**Money and shares** are exact integers in micro-units (1 unit = 1,000,000 micro-units): "
        'every amount is returned as `{"micro": 1500000, "units": "1.500000"}`; amounts sent '
        "are decimal numbers in units with at most six decimals.\n\n"
        '**Errors** all have the body `{"error": {"code", "message", "fields"}}`; `fields` maps '
        "each invalid input field to its messages (nested fields are dotted: `option_probabilities.1`)."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "QuestionStatusEnum": "forecasting.models.QuestionStatus",
        "QuestionTypeEnum": "forecasting.models.QuestionType",
        "ModelRunStatusEnum": "forecasting.models.ModelRun.Status",
        "ModelRunMethodEnum": "forecasting.models.ModelRun.Method",
        "ScoreKindEnum": "forecasting.models.Score.Kind",
        "ScoreMethodEnum": "forecasting.models.Score.Method",
        "ResolutionOutcomeEnum": "forecasting.models.Resolution.Outcome",
        "MarketStatusEnum": "market.models.Market.Status",
    },
}
