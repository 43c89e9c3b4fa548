"""Page-number pagination: ``?page=2&page_size=100`` (at most 200 a page)."""

from __future__ import annotations

from rest_framework import pagination


class PageNumberPagination(pagination.PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    page_size_query_description = "Results per page (default 50, at most 200)."
    max_page_size = 200
