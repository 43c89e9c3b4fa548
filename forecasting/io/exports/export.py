"""What one download contains (``Export``) and the downloads there are: everything, an article, a question, mine.

Exports are consistent: ``Export.freeze()`` (run when the stream starts, if not before)
records the newest id of each append-only table (forecasts, aggregate snapshots, and any
registered table declared append-only, such as the market's price points), and rows added
while a large download is being written are left out of every table.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache

from django.db.models import Max, QuerySet
from django.utils import timezone

from forecasting.models import Article, Prediction, Question

from .access import forecaster_key, forecaster_salt
from .filters import QuestionFilters
from .registry import TABLES, analyst_tables
from .schema import Column, ExportError, RowScope
from .tables import OWN_DATA_TABLES


@dataclass
class Export:
    """What one download contains: a set of questions and, for a reader's own data, one forecaster."""

    title: str  # for the README, e.g. "Question 12: Will …?"
    slug: str  # for file names
    questions: QuerySet[Question]
    tables: tuple[str, ...] = field(default_factory=analyst_tables)  # every registered table, by default
    forecaster_id: int | None = None  # a reader's own data: only their forecasts and scores
    identities: bool = False
    filters: QuestionFilters = field(default_factory=QuestionFilters)
    as_of: dt.datetime | None = None
    marks: dict[str, int] = field(default_factory=dict)
    row_counts: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        salt = forecaster_salt()
        self.forecaster_key = lru_cache(maxsize=65_536)(lambda user_id: forecaster_key(user_id, salt=salt))

    # -- bookkeeping

    def freeze(self) -> Export:
        """Fix the moment of the export: rows appended after it are left out of every table."""
        if self.as_of is None:
            self.as_of = timezone.now()
            for name, table in TABLES.items():
                if table.append_only is not None:
                    self.marks[name] = table.append_only.objects.aggregate(m=Max("pk"))["m"] or 0
        return self

    def columns(self, table: str) -> list[Column]:
        return TABLES[table].columns_for(identities=self.identities)

    def filename(self, extension: str, part: str | None = None) -> str:
        """E.g. forecasts-question-12-20250301T1405Z.zip, forecasts-all-forecasts-20250301T1405Z.parquet."""
        self.freeze()
        stamp = self.as_of.astimezone(dt.UTC).strftime("%Y%m%dT%H%MZ")
        return f"forecasts-{self.slug}{'-' + part if part else ''}-{stamp}.{extension}"

    # -- rows

    def rows(self, table: str) -> Iterator[tuple]:
        """The table's rows as Python values (Decimal, datetime, list, dict, None), columns as in ``columns``."""
        if table not in self.tables:
            raise ExportError(f"Unknown table “{table}”.")
        self.freeze()
        scope = RowScope(
            questions=self.questions,
            forecaster_key=self.forecaster_key,
            up_to=self.marks.get(table),
            forecaster_id=self.forecaster_id,
            identities=self.identities,
        )
        return TABLES[table].rows(scope)

    def batches(self, table: str, size: int) -> Iterator[list[tuple]]:
        """The table's rows in lists of ``size``; counts them into ``row_counts`` (for the README) at the end."""
        batch: list[tuple] = []
        count = 0
        for row in self.rows(table):
            batch.append(row)
            if len(batch) >= size:
                count += len(batch)
                yield batch
                batch = []
        if batch:
            count += len(batch)
            yield batch
        self.row_counts[table] = count


# --- the downloads ------------------------------------------------------------------------------------


def exportable_questions() -> QuerySet[Question]:
    # Published questions only, for everyone: an editor's download never carries an embargoed question.
    return Question.objects.published()


def export_everything(*, filters: QuestionFilters | None = None, identities: bool = False) -> Export:
    filters = filters or QuestionFilters()
    described = filters.describe()
    return Export(
        title="All questions" + ("" if described == "none" else f" matching: {described}"),
        slug="all" if described == "none" else "filtered",
        questions=filters.apply(Question.objects.all()),
        identities=identities,
        filters=filters,
    )


def export_article(article: Article, *, filters: QuestionFilters | None = None, identities: bool = False) -> Export:
    filters = QuestionFilters(
        article=article,
        statuses=filters.statuses if filters else (),
        start=filters.start if filters else None,
        end=filters.end if filters else None,
    )
    return Export(
        title=f"Article “{article.title}” ({article.slug})",
        slug=f"article-{article.slug}",
        questions=filters.apply(Question.objects.all()),
        identities=identities,
        filters=filters,
    )


def export_question(question: Question, *, identities: bool = False) -> Export:
    return Export(
        title=f"Question {question.pk}: “{question.title}”",
        slug=f"question-{question.pk}",
        questions=exportable_questions().filter(pk=question.pk),
        identities=identities,
    )


def export_own_data(user) -> Export:
    """A reader's own forecasts and scores, with the questions they forecast."""
    forecast_on = Prediction.objects.filter(forecaster_id=user.pk).values("question_id")
    return Export(
        title=f"Your own forecasts and scores ({user.get_username()})",
        slug="mine",
        questions=exportable_questions().filter(pk__in=forecast_on),
        tables=OWN_DATA_TABLES,
        forecaster_id=user.pk,
        identities=True,  # the only forecaster in it is the reader
    )
