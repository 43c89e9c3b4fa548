"""Which questions and what shape a download covers, from the request's query string.

``QuestionFilters`` selects questions (article, status, dates); ``parse_filters`` and
``parse_format`` read them, and the format and table, from a query string, raising
``ExportError`` (with the HTTP status to answer) before any byte is streamed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from django.db.models import QuerySet

from forecasting.models import Article, Question

from .registry import ANALYST_TABLES
from .schema import FORMATS, ExportError

EXPORTABLE_STATUSES = tuple(s for s in Question.Status.values if s != Question.Status.DRAFT)


@dataclass(frozen=True)
class QuestionFilters:
    """Which questions an export (or the analyst page) covers.

    ``start``/``end`` (dates, inclusive, UTC) select the questions whose forecasting window
    (opens_at to closes_at) overlaps that period; each selected question comes whole.
    """

    article: Article | None = None
    statuses: tuple[str, ...] = ()
    start: dt.date | None = None
    end: dt.date | None = None

    def apply(self, questions: QuerySet[Question]) -> QuerySet[Question]:
        questions = questions.published()  # never a draft, even one annulled or un-resolved since
        if self.article is not None:
            questions = questions.filter(article=self.article)
        if self.statuses:
            questions = questions.filter(status__in=self.statuses)
        if self.start is not None:
            questions = questions.filter(closes_at__gt=_midnight(self.start))
        if self.end is not None and self.end < dt.date.max:
            questions = questions.filter(opens_at__lt=_midnight(self.end + dt.timedelta(days=1)))
        return questions

    def query(self) -> list[tuple[str, str]]:
        """The filters as query-string pairs (for links)."""
        pairs = []
        if self.article is not None:
            pairs.append(("article", self.article.slug))
        pairs.extend(("status", s) for s in self.statuses)
        if self.start is not None:
            pairs.append(("from", self.start.isoformat()))
        if self.end is not None:
            pairs.append(("to", self.end.isoformat()))
        return pairs

    def describe(self) -> str:
        parts = []
        if self.article is not None:
            parts.append(f"article {self.article.slug}")
        if self.statuses:
            parts.append("status " + " or ".join(self.statuses))
        if self.start or self.end:
            parts.append(
                f"open for forecasts at some time from {self.start or 'any date'} to {self.end or 'any date'} "
                "(dates inclusive, UTC)"
            )
        return "; ".join(parts) or "none"


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC)


def _date(params: Mapping, name: str) -> dt.date | None:
    value = (params.get(name) or "").strip()
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ExportError(f"“{value}” is not a date: give {name} as YYYY-MM-DD.") from None


def parse_filters(params, *, article: Article | None = None) -> QuestionFilters:
    """Filters from a query string: ``article`` (slug), ``status`` (repeatable), ``from`` and ``to`` (dates).

    Raises ``ExportError`` (400) for a bad status or date, (404) for an unknown article.
    """
    getlist = params.getlist if hasattr(params, "getlist") else lambda k: [params[k]] if k in params else []
    slug = (params.get("article") or "").strip()
    if slug and article is None:
        article = Article.objects.filter(slug=slug).first()
        if article is None:
            raise ExportError(f"There is no article “{slug}”.", status=404)
    statuses = tuple(dict.fromkeys(s.strip() for s in getlist("status") if s.strip()))
    unknown = [s for s in statuses if s not in EXPORTABLE_STATUSES]
    if unknown:
        raise ExportError(f"Unknown question status “{unknown[0]}”: use one of {', '.join(EXPORTABLE_STATUSES)}.")
    start, end = _date(params, "from"), _date(params, "to")
    if start and end and start > end:
        raise ExportError("The “from” date is after the “to” date.")
    return QuestionFilters(article=article, statuses=statuses, start=start, end=end)


def parse_format(params, *, tables: Iterable[str] = ANALYST_TABLES) -> tuple[str, str | None]:
    """``format`` (csv, the default, or parquet) and ``table`` (one table alone; all of them in a ZIP when absent)."""
    fmt = (params.get("format") or "csv").strip().lower()
    if fmt not in FORMATS:
        raise ExportError(f"Unknown format “{fmt}”: use csv or parquet.")
    table = (params.get("table") or "").strip() or None
    tables = tuple(tables)
    if table is not None and table not in tables:
        raise ExportError(f"Unknown table “{table}”: this download has {', '.join(tables)}.")
    return fmt, table
