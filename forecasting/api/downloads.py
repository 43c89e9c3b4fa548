"""The analysts' downloads through the API (``/api/v1/downloads/...``): the same exports, permissions
and streaming as the web's ``/downloads/`` pages (``forecasting.io.exports``), with token auth and
the API's JSON errors.

Analysts (``exports.ANALYST_PERMISSION``) download everything, an article or a question;
forecasters are pseudonymous unless the user holds ``exports.IDENTITIES_PERMISSION``. Any signed-in
reader downloads their own data at ``downloads/mine/``.
"""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.permissions import IsAuthenticated
from rest_framework.views import APIView

from forecasting.io import exports
from forecasting.io.exports.response import streaming_download
from forecasting.models import Article

from .base import RESTRICTED, ApiView


class ExportFailed(exceptions.APIException):
    """An ``ExportError`` in the API's error shape, with its status (400 or 404)."""

    default_code = "invalid"

    def __init__(self, error: exports.ExportError):
        self.status_code = error.status
        super().__init__(error.message, code="not_found" if error.status == 404 else "invalid")


class AnyFormatNegotiation(DefaultContentNegotiation):
    """``?format=`` names the export's format (csv, parquet) here, not a DRF renderer."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class IsAnalyst(IsAuthenticated):
    message = "Downloads of the newsroom's forecasts are for analysts."

    def has_permission(self, request, view) -> bool:
        return super().has_permission(request, view) and exports.may_export(request.user)


FORMAT = OpenApiParameter("format", str, enum=list(exports.FORMATS), description="csv (the default) or parquet.")
TABLE = OpenApiParameter("table", str, description="One table alone; without it, a ZIP of every table and a README.")
FILTERS = [
    OpenApiParameter("status", str, many=True, description="Question status (repeatable)."),
    OpenApiParameter("from", OpenApiTypes.DATE, description="Questions open on or after this date."),
    OpenApiParameter("to", OpenApiTypes.DATE, description="Questions open on or before this date."),
    OpenApiParameter("article", str, description="An article's slug."),
]
FILE = {
    (200, "application/zip"): OpenApiResponse(OpenApiTypes.BINARY, description="Every table and a README.md."),
    (200, "text/csv"): OpenApiResponse(OpenApiTypes.BINARY, description="One table as CSV (`table=`)."),
    (200, "application/vnd.apache.parquet"): OpenApiResponse(
        OpenApiTypes.BINARY, description="One table as Parquet (`table=` and `format=parquet`)."
    ),
}


class _Download(ApiView, APIView):
    permission_classes = [IsAnalyst]
    content_negotiation_class = AnyFormatNegotiation
    error_codes = RESTRICTED

    def respond(self, export: exports.Export):
        try:
            fmt, table = exports.parse_format(self.request.query_params, tables=export.tables)
        except exports.ExportError as error:
            raise ExportFailed(error) from None
        return streaming_download(export, fmt, table)

    def filters(self, article: Article | None = None) -> exports.QuestionFilters:
        try:
            return exports.parse_filters(self.request.query_params, article=article)
        except exports.ExportError as error:
            raise ExportFailed(error) from None


@extend_schema(tags=["downloads"], summary="Download everything", parameters=[FORMAT, TABLE, *FILTERS], responses=FILE)
class DownloadAll(_Download):
    def get(self, request):
        identities = exports.may_see_identities(request.user)
        return self.respond(exports.export_everything(filters=self.filters(), identities=identities))


@extend_schema(
    tags=["downloads"],
    summary="Download one article's questions",
    parameters=[FORMAT, TABLE, *FILTERS[:3]],
    responses=FILE,
)
class DownloadArticle(_Download):
    def get(self, request, slug: str):
        article = get_object_or_404(Article, slug=slug)
        identities = exports.may_see_identities(request.user)
        return self.respond(exports.export_article(article, filters=self.filters(article), identities=identities))


@extend_schema(tags=["downloads"], summary="Download one question", parameters=[FORMAT, TABLE], responses=FILE)
class DownloadQuestion(_Download):
    def get(self, request, pk: int):
        question = get_object_or_404(exports.exportable_questions(), pk=pk)
        return self.respond(exports.export_question(question, identities=exports.may_see_identities(request.user)))


@extend_schema(
    tags=["downloads"],
    summary="Download my own data",
    description="The signed-in forecaster's own forecasts and scores.",
    parameters=[FORMAT, TABLE],
    responses=FILE,
)
class DownloadMine(_Download):
    permission_classes = [IsAuthenticated]
    error_codes = (400, 401, 404)

    def get(self, request):
        return self.respond(exports.export_own_data(request.user))
