"""Data exports: how the newsroom's forecasts leave the system, complete, documented and exact.

Five tables, each declared once in ``TABLES`` (column name, type, description): the CSV
header, the Parquet schema, the ``README.md`` inside every ZIP and the analyst page are all
generated from that declaration, so the code and its documentation cannot drift apart.

- ``questions``: one row per question (drafts are never exported) with its outcomes and its
  active resolution;
- ``forecasts``: every individual forecast, the forecaster anonymised by a stable salted
  hash (``forecaster_key``) unless the export is made for someone allowed to see identities;
- ``aggregates``: the history of every aggregation method, with the Bayesian interval and
  the model run that made each value;
- ``scores``: every score row as stored;
- ``market``: the play-money market's price history.

Memory stays flat whatever the size of the data: rows are read with
``values_list(...).iterator(chunk_size=...)``, encoded in batches of a few thousand rows, and
written into a ZIP over a write-only, non-seekable sink (``zipfile`` then writes each entry
followed by a data descriptor and never seeks back) or into Parquet row groups with
``pyarrow.parquet.ParquetWriter``. The streams are generators of ``bytes`` meant for a
``StreamingHttpResponse``: they hand out compressed bytes as soon as a few hundred KiB exist.

Exports are consistent: ``Export.freeze()`` (run when the stream starts, if not before)
records the newest id of each append-only table (forecasts, aggregate snapshots, price
points), and rows added while a large download is being written are left out of every table.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import hmac
import io
import json
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from django.conf import settings
from django.db.models import Max, Prefetch, QuerySet
from django.utils import timezone

from market.models import PricePoint

from . import aggregation
from .models import AggregateSnapshot, Article, Prediction, Question, Resolution, Score
from .services.bayesian import BAYES_METHOD

# Who may download what (``user.has_perm``): analysts download aggregates, forecasts (anonymised)
# and scores; identities need an explicit permission that no role holds by default.
ANALYST_PERMISSION = "forecasting.view_score"
IDENTITIES_PERMISSION = "forecasting.view_forecaster_identities"

DB_CHUNK_ROWS = 5_000  # rows fetched per round trip (server-side cursor on PostgreSQL)
CSV_BATCH_ROWS = 5_000  # rows encoded per write into the ZIP
PARQUET_ROW_GROUP_ROWS = 20_000  # rows per Parquet row group: bounds the memory of one batch
STREAM_CHUNK_BYTES = 256 * 1024  # bytes handed to the web server at a time
FORECASTER_KEY_LENGTH = 16  # hex characters of the HMAC-SHA256 kept
ONE = Decimal(1)
BAYES_DESCRIPTION = (
    "Bayesian aggregate: a model fitted on resolved questions learns each forecaster's skill and bias and "
    "combines the latest forecasts in closed form; low/high give its 90% interval for P(YES); yes/no questions "
    "only; model_run_id names the fit that made each value."
)
FORMATS = ("csv", "parquet")


class ExportError(Exception):
    """Bad export request: an unknown table or format, a bad filter. ``status`` is the HTTP status to answer."""

    def __init__(self, message: str, *, status: int = 400):
        super().__init__(message)
        self.message = message
        self.status = status


# --- the tables: one declaration for the code, the schema and the documentation ------------------


@dataclass(frozen=True)
class ColumnType:
    arrow: pa.DataType
    csv: Callable[[Any], str]  # how a non-empty value is written in CSV
    doc: str  # what the type means, for the README
    to_arrow: Callable[[Any], Any] | None = None  # conversion before pyarrow, when not the value itself


def _timestamp(value: dt.datetime) -> str:
    if value.tzinfo is not dt.UTC:
        value = value.astimezone(dt.UTC)
    return value.isoformat(timespec="microseconds")


def _decimal(value: Decimal) -> str:
    return format(value, "f")


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


TYPES: dict[str, ColumnType] = {
    "integer": ColumnType(pa.int64(), str, "integer (Parquet int64)"),
    "text": ColumnType(pa.string(), str, "text (UTF-8)"),
    "timestamp": ColumnType(
        pa.timestamp("us", tz="UTC"),
        _timestamp,
        "timestamp in UTC; CSV: ISO 8601 with microseconds and offset, e.g. 2025-03-01T14:05:00.000000+00:00; "
        "Parquet: timestamp[us, UTC]",
    ),
    "probability": ColumnType(
        pa.decimal128(5, 4), _decimal, "exact decimal with 4 places, as stored; Parquet: decimal128(5, 4)"
    ),
    "score": ColumnType(
        pa.decimal128(14, 6), _decimal, "exact decimal with 6 places, as stored; Parquet: decimal128(14, 6)"
    ),
    "fraction": ColumnType(
        pa.decimal128(7, 6), _decimal, "exact decimal with 6 places, as stored; Parquet: decimal128(7, 6)"
    ),
    "float": ColumnType(
        pa.float64(), repr, "floating-point number as stored; CSV: shortest text that reads back to the same double"
    ),
    "probability_list": ColumnType(
        pa.list_(pa.decimal128(5, 4)),
        lambda values: "[" + ",".join(_decimal(v) for v in values) + "]",
        "probability vector of exact decimals; CSV: JSON array, e.g. [0.8000,0.2000]; Parquet: list<decimal128(5, 4)>",
    ),
    "float_list": ColumnType(
        pa.list_(pa.float64()),
        lambda values: json.dumps(values, separators=(",", ":")),
        "probability vector as stored; CSV: JSON array, e.g. [0.35,0.65]; Parquet: list<double>",
    ),
    "text_list": ColumnType(
        pa.list_(pa.string()),
        lambda values: json.dumps(values, ensure_ascii=False, separators=(",", ":")),
        'list of labels; CSV: JSON array, e.g. ["No","Yes"]; Parquet: list<string>',
    ),
    "json": ColumnType(pa.string(), _json, "JSON object as text (keys sorted) in both formats", to_arrow=_json),
}


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # a key of TYPES
    description: str
    identity: bool = False  # present only in exports for users who may see forecasters' identities

    @property
    def column_type(self) -> ColumnType:
        return TYPES[self.type]


@dataclass(frozen=True)
class Table:
    name: str
    description: str
    columns: tuple[Column, ...]

    def columns_for(self, *, identities: bool) -> list[Column]:
        return [c for c in self.columns if identities or not c.identity]


FORECASTER_DOC = (
    "The forecaster, anonymised: the first 16 hex characters of HMAC-SHA256(salt, user id). Stable across "
    "exports (the same forecaster has the same key in every download, so forecasts and scores can be joined), "
    "but it cannot be turned back into a user without the newsroom's secret salt."
)
USERNAME_DOC = (
    "The forecaster's username. Only in exports made for holders of the "
    f"{IDENTITIES_PERMISSION} permission, and in a reader's download of their own data."
)

TABLES: dict[str, Table] = {
    table.name: table
    for table in (
        Table(
            "questions",
            "One row per question in the export (drafts are never exported), with its active resolution.",
            (
                Column("question_id", "integer", "Question id; every other table refers to it."),
                Column("article_id", "integer", "Id of the article that raises the question."),
                Column("article_slug", "text", "The article's slug (its address on the site: /articles/<slug>/)."),
                Column("article_title", "text", "The article's headline."),
                Column("title", "text", "The question as readers see it."),
                Column("question_type", "text", "binary (yes/no) or multiple_choice."),
                Column("status", "text", "open, closed, resolved or annulled, when the export was made."),
                Column(
                    "outcomes",
                    "text_list",
                    'The outcomes, in the order every probability vector in this export follows: ["No","Yes"] '
                    "for a yes/no question, the option labels in display order for a multiple-choice question.",
                ),
                Column("opens_at", "timestamp", "When the question opens for forecasts."),
                Column("closes_at", "timestamp", "When it closes: no forecast is accepted from then on."),
                Column(
                    "resolution",
                    "text",
                    "The active resolution: yes, no, option (multiple choice) or annulled; empty while "
                    "unresolved. Retracted (un-resolved) resolutions are not exported.",
                ),
                Column(
                    "resolution_index",
                    "integer",
                    "Index (from 0) in outcomes of the outcome that happened; empty when unresolved or annulled.",
                ),
                Column("resolution_label", "text", "Label of the outcome that happened (Yes, No or the option)."),
                Column("resolved_at", "timestamp", "When the active resolution (or annulment) was made."),
                Column("resolution_criteria", "text", "How the question resolves, as published."),
                Column("external_id", "text", "Identifier in the source an imported question came from; often empty."),
            ),
        ),
        Table(
            "forecasts",
            "Every individual forecast, oldest first per question. Forecasts are append-only: an update is a "
            "new row, and a forecaster's latest row before a moment is their forecast standing at that moment.",
            (
                Column(
                    "prediction_id",
                    "integer",
                    "Forecast id (aggregates.prediction_id and scores.prediction_id refer to it).",
                ),
                Column("question_id", "integer", "The question (questions.question_id)."),
                Column("forecaster", "text", FORECASTER_DOC),
                Column("forecaster_username", "text", USERNAME_DOC, identity=True),
                Column("made_at", "timestamp", "When the forecast was made."),
                Column(
                    "probability_yes",
                    "probability",
                    "P(YES) of a yes/no question exactly as stored (0.0100 to 0.9900); empty for multiple choice.",
                ),
                Column(
                    "probabilities",
                    "probability_list",
                    "One probability per outcome, in the order of questions.outcomes: [1 - P(YES), P(YES)] for a "
                    "yes/no question, the stored option probabilities (summing to exactly 1) for multiple choice.",
                ),
            ),
        ),
        Table(
            "aggregates",
            "The history of every aggregation method: one row per method each time a forecast changed the "
            "aggregate (and, for the Bayesian method, each time the model was re-applied). The value of a "
            "method at a moment is its latest row at or before that moment.",
            (
                Column("snapshot_id", "integer", "Id of this aggregate value."),
                Column("question_id", "integer", "The question (questions.question_id)."),
                Column(
                    "method", "text", "Aggregation method; every method is described under Aggregation methods below."
                ),
                Column("at", "timestamp", "When the aggregate took this value."),
                Column("forecasters", "integer", "How many forecasters' latest forecasts it aggregates."),
                Column(
                    "probability_yes",
                    "float",
                    "P(YES) for a yes/no question (the last element of probabilities); empty for multiple choice.",
                ),
                Column(
                    "probabilities",
                    "float_list",
                    "The aggregate, one probability per outcome in the order of questions.outcomes, as stored "
                    "(rounded to 6 decimals when computed).",
                ),
                Column("low", "float", "Lower end of the 90% interval of P(YES) (bayes only; empty otherwise)."),
                Column("high", "float", "Upper end of the 90% interval of P(YES) (bayes only; empty otherwise)."),
                Column(
                    "model_run_id",
                    "integer",
                    "The Bayesian model run (fit) that made this value (bayes only; empty for the other methods, "
                    "which learn no model).",
                ),
                Column(
                    "prediction_id",
                    "integer",
                    "The forecast (forecasts.prediction_id) whose arrival produced this value; empty for bayes, "
                    "which is recomputed shortly after forecasts arrive (several at once) and after each refit.",
                ),
                Column(
                    "parameters",
                    "json",
                    'Learnt parameters used, e.g. {"factor":1.7} for extremized_logodds; '
                    "the run and fit method for bayes.",
                ),
            ),
        ),
        Table(
            "scores",
            "Every score as stored, for resolved questions: each forecaster gets the Brier, log, baseline and "
            "peer scores, both at resolution (spot) and time-averaged. Scores are recomputed when a question "
            "is resolved, annulled or un-resolved; annulled and un-resolved questions have none.",
            (
                Column("question_id", "integer", "The question (questions.question_id)."),
                Column("forecaster", "text", FORECASTER_DOC),
                Column("forecaster_username", "text", USERNAME_DOC, identity=True),
                Column("kind", "text", "brier, log, baseline or peer (see Scores below)."),
                Column(
                    "method",
                    "text",
                    "spot: the forecast standing at resolution (or at the close, if earlier); time_averaged: the "
                    "score averaged over the question's open period.",
                ),
                Column("value", "score", "The score, exactly as stored."),
                Column(
                    "coverage",
                    "fraction",
                    "Fraction (0 to 1) of the question's open period during which the forecaster had a "
                    "forecast standing.",
                ),
                Column("prediction_id", "integer", "The forecast standing at resolution (forecasts.prediction_id)."),
                Column("resolution_id", "integer", "The resolution the score was computed against."),
                Column("computed_at", "timestamp", "When the score was last computed."),
            ),
        ),
        Table(
            "market",
            "The play-money market's price history (LMSR market maker): one row when the market opened and "
            "one after each trade. Prices are the market's probability of each outcome.",
            (
                Column("price_point_id", "integer", "Id of this price point."),
                Column("market_id", "integer", "The market (one per question)."),
                Column("question_id", "integer", "The question (questions.question_id)."),
                Column("at", "timestamp", "When the prices took these values."),
                Column(
                    "price_yes",
                    "float",
                    "Price of YES for a yes/no question (the last element of prices); empty otherwise.",
                ),
                Column(
                    "prices",
                    "float_list",
                    "Price of each outcome, in the order of questions.outcomes, as stored; they sum to 1.",
                ),
                Column("trade_id", "integer", "The trade that moved the prices; empty for the opening prices."),
            ),
        ),
    )
}

# The same declaration as plain (column, description) pairs.
COLUMNS: dict[str, list[tuple[str, str]]] = {
    name: [(c.name, c.description) for c in table.columns] for name, table in TABLES.items()
}

ANALYST_TABLES = tuple(TABLES)
OWN_DATA_TABLES = ("questions", "forecasts", "scores")

SCORE_DOCS = {
    "brier": "Brier score: (p - o)^2 for a yes/no question, sum over options of (p_i - o_i)^2 otherwise (0 to 2). "
    "Lower is better; 0 is perfect, 0.25 is what 50% on a yes/no question earns.",
    "log": "Log score: ln p(outcome), probabilities clipped at 0.001. Higher (closer to 0) is better.",
    "baseline": "Baseline score: 100 (log2 p(outcome) + 1) for a yes/no question, 100 (ln p(outcome) + ln k) / ln k "
    "with k options; 0 for the uniform forecast, 100 for certainty on the outcome.",
    "peer": "Peer score: 100 (ln p_i(outcome) - mean over the other forecasters j of ln p_j(outcome)); the "
    "forecasters' peer scores on a question sum to 0.",
}
SCORE_METHOD_DOCS = {
    "spot": "The forecast standing at resolution (or at the close, if the question closed earlier).",
    "time_averaged": "Averaged over the question's open period, each forecast counting for as long as it stood. "
    "For baseline and peer, time before the forecaster's first forecast counts as 0; Brier and log average over "
    "the time the forecaster had a forecast standing (see coverage).",
}


def method_descriptions() -> dict[str, str]:
    """Every aggregation method an export may contain, with its description."""
    methods = {name: aggregator.description for name, aggregator in aggregation.AGGREGATORS.items()}
    methods.setdefault(BAYES_METHOD, BAYES_DESCRIPTION)
    return methods


# --- anonymisation ---------------------------------------------------------------------------------


def _salt() -> bytes:
    salt = getattr(settings, "EXPORT_FORECASTER_SALT", "") or settings.SECRET_KEY
    return salt.encode() if isinstance(salt, str) else bytes(salt)


def forecaster_key(user_id: int, *, salt: bytes | None = None) -> str:
    """The forecaster's stable pseudonym in exports: HMAC-SHA256 of the user id, 16 hex characters."""
    digest = hmac.new(salt if salt is not None else _salt(), str(int(user_id)).encode(), hashlib.sha256)
    return digest.hexdigest()[:FORECASTER_KEY_LENGTH]


def may_export(user) -> bool:
    return user.has_perm(ANALYST_PERMISSION)


def may_see_identities(user) -> bool:
    return user.has_perm(IDENTITIES_PERMISSION)


# --- request parsing -----------------------------------------------------------------------------


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
        questions = questions.exclude(status=Question.Status.DRAFT)
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


# --- the export ------------------------------------------------------------------------------------


@dataclass
class Export:
    """What one download contains: a set of questions and, for a reader's own data, one forecaster."""

    title: str  # for the README, e.g. "Question 12: Will …?"
    slug: str  # for file names
    questions: QuerySet[Question]
    tables: tuple[str, ...] = ANALYST_TABLES
    forecaster_id: int | None = None  # a reader's own data: only their forecasts and scores
    identities: bool = False
    filters: QuestionFilters = field(default_factory=QuestionFilters)
    as_of: dt.datetime | None = None
    marks: dict[str, int] = field(default_factory=dict)
    row_counts: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        salt = _salt()
        self.forecaster_key = lru_cache(maxsize=65_536)(lambda user_id: forecaster_key(user_id, salt=salt))

    # -- bookkeeping

    def freeze(self) -> Export:
        """Fix the moment of the export: rows appended after it are left out of every table."""
        if self.as_of is None:
            self.as_of = timezone.now()
            for table, model in (("forecasts", Prediction), ("aggregates", AggregateSnapshot), ("market", PricePoint)):
                self.marks[table] = model.objects.aggregate(m=Max("pk"))["m"] or 0
        return self

    def columns(self, table: str) -> list[Column]:
        return TABLES[table].columns_for(identities=self.identities)

    def schema(self, table: str) -> pa.Schema:
        return pa.schema([pa.field(c.name, c.column_type.arrow) for c in self.columns(table)])

    def filename(self, extension: str, part: str | None = None) -> str:
        """E.g. forecasts-question-12-20250301T1405Z.zip, forecasts-all-forecasts-20250301T1405Z.parquet."""
        self.freeze()
        stamp = self.as_of.astimezone(dt.UTC).strftime("%Y%m%dT%H%MZ")
        return f"forecasts-{self.slug}{'-' + part if part else ''}-{stamp}.{extension}"

    # -- rows

    def _question_ids(self):
        return self.questions.order_by().values("pk")

    def rows(self, table: str) -> Iterator[tuple]:
        """The table's rows as Python values (Decimal, datetime, list, dict, None), columns as in ``columns``."""
        if table not in self.tables:
            raise ExportError(f"Unknown table “{table}”.")
        self.freeze()
        return getattr(self, f"_{table}_rows")()

    def _questions_rows(self) -> Iterator[tuple]:
        active = Prefetch(
            "resolutions",
            queryset=Resolution.objects.filter(retracted_at__isnull=True).select_related("option"),
            to_attr="active_resolutions",
        )
        questions = self.questions.order_by("pk").select_related("article").prefetch_related("options", active)
        for q in questions.iterator(chunk_size=500):
            outcomes = ["No", "Yes"] if q.is_binary else [o.label for o in q.options.all()]
            resolution = q.active_resolutions[0] if q.active_resolutions else None
            index = resolution.outcome_index() if resolution else None
            yield (
                q.pk,
                q.article_id,
                q.article.slug,
                q.article.title,
                q.title,
                q.question_type,
                q.status,
                outcomes,
                q.opens_at,
                q.closes_at,
                resolution.outcome if resolution else None,
                index,
                outcomes[index] if index is not None and index < len(outcomes) else None,
                resolution.resolved_at if resolution else None,
                q.resolution_criteria,
                q.external_id,
            )

    def _forecaster_filter(self, queryset: QuerySet) -> QuerySet:
        return queryset if self.forecaster_id is None else queryset.filter(forecaster_id=self.forecaster_id)

    def _forecasts_rows(self) -> Iterator[tuple]:
        fields = ["pk", "question_id", "forecaster_id", "made_at", "probability", "option_probabilities"]
        if self.identities:
            fields.append("forecaster__username")
        rows = (
            self._forecaster_filter(Prediction.objects.filter(question_id__in=self._question_ids()))
            .filter(pk__lte=self.marks["forecasts"])
            .order_by("question_id", "made_at", "pk")
            .values_list(*fields)
        )
        key = self.forecaster_key
        for row in rows.iterator(chunk_size=DB_CHUNK_ROWS):
            pk, question_id, forecaster_id, made_at, p, options = row[:6]
            vector = [ONE - p, p] if p is not None else [Decimal(x) for x in options]
            if self.identities:
                yield pk, question_id, key(forecaster_id), row[6], made_at, p, vector
            else:
                yield pk, question_id, key(forecaster_id), made_at, p, vector

    def _aggregates_rows(self) -> Iterator[tuple]:
        rows = (
            AggregateSnapshot.objects.filter(question_id__in=self._question_ids(), pk__lte=self.marks["aggregates"])
            .order_by("question_id", "method", "at", "pk")
            .values_list(
                "pk",
                "question_id",
                "method",
                "at",
                "forecasters",
                "probabilities",
                "low",
                "high",
                "model_run_id",
                "prediction_id",
                "parameters",
                "question__question_type",
            )
        )
        binary = Question.Type.BINARY
        for pk, qid, method, at, n, probabilities, low, high, run, prediction, parameters, qtype in rows.iterator(
            chunk_size=DB_CHUNK_ROWS
        ):
            yes = probabilities[-1] if qtype == binary and probabilities else None
            yield pk, qid, method, at, n, yes, probabilities, low, high, run, prediction, parameters

    def _scores_rows(self) -> Iterator[tuple]:
        fields = ["question_id", "forecaster_id", "kind", "method", "value", "coverage", "prediction_id"]
        fields += ["resolution_id", "computed_at"]
        if self.identities:
            fields.append("forecaster__username")
        rows = (
            self._forecaster_filter(Score.objects.filter(question_id__in=self._question_ids()))
            .order_by("question_id", "forecaster_id", "method", "kind")
            .values_list(*fields)
        )
        key = self.forecaster_key
        for row in rows.iterator(chunk_size=DB_CHUNK_ROWS):
            head = (row[0], key(row[1]))
            if self.identities:
                yield (*head, row[9], *row[2:9])
            else:
                yield (*head, *row[2:9])

    def _market_rows(self) -> Iterator[tuple]:
        rows = (
            PricePoint.objects.filter(market__question_id__in=self._question_ids(), pk__lte=self.marks["market"])
            .order_by("market__question_id", "at", "pk")
            .values_list(
                "pk", "market_id", "market__question_id", "at", "prices", "trade_id", "market__question__question_type"
            )
        )
        for pk, market_id, question_id, at, prices, trade_id, qtype in rows.iterator(chunk_size=DB_CHUNK_ROWS):
            yes = prices[-1] if qtype == Question.Type.BINARY and prices else None
            yield pk, market_id, question_id, at, yes, prices, trade_id

    def batches(self, table: str, size: int) -> Iterator[list[tuple]]:
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

    # -- encoders

    def csv_chunks(self, table: str) -> Iterator[bytes]:
        """The table as CSV (UTF-8, RFC 4180, header row), in chunks of encoded bytes."""
        encoders = [c.column_type.csv for c in self.columns(table)]
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow([c.name for c in self.columns(table)])
        for batch in self.batches(table, CSV_BATCH_ROWS):
            writer.writerows(
                ["" if value is None else encode(value) for value, encode in zip(row, encoders, strict=True)]
                for row in batch
            )
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
        if buffer.tell():
            yield buffer.getvalue().encode()

    def record_batch(self, table: str, rows: list[tuple]) -> pa.RecordBatch:
        columns = self.columns(table)
        arrays = []
        for c, values in zip(columns, zip(*rows, strict=True), strict=True):
            convert = c.column_type.to_arrow
            if convert is not None:
                values = [None if v is None else convert(v) for v in values]
            arrays.append(pa.array(values, type=c.column_type.arrow))
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema(table))

    def write_parquet(self, table: str, fileobj) -> Iterator[None]:
        """Write the table as Parquet into ``fileobj``, one row group per batch; yields after each."""
        with pq.ParquetWriter(_Positioned(fileobj), self.schema(table), compression="zstd") as writer:
            for batch in self.batches(table, PARQUET_ROW_GROUP_ROWS):
                writer.write_batch(self.record_batch(table, batch))
                yield

    def readme(self, fmt: str) -> str:
        return render_readme(self, fmt)


# --- streams ---------------------------------------------------------------------------------------


class _Sink:
    """A write-only, non-seekable byte sink: ``zipfile`` then streams (data descriptors, no seeking)."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self.size = 0

    def write(self, data) -> int:
        data = bytes(data)
        self._parts.append(data)
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        """Nothing is buffered here: written bytes are handed on as they come."""

    def take(self) -> bytes:
        data = b"".join(self._parts)
        self._parts.clear()
        self.size = 0
        return data


class _Positioned:
    """Counts the bytes written, for writers (pyarrow) that ask a non-seekable stream where they are."""

    def __init__(self, fileobj) -> None:
        self._fileobj = fileobj
        self._position = 0
        self.closed = False

    def write(self, data) -> int:
        self._fileobj.write(data)
        self._position += len(data)
        return len(data)

    def tell(self) -> int:
        return self._position

    def flush(self) -> None:
        """Nothing is buffered here: written bytes are handed on as they come."""

    def close(self) -> None:  # the owner of the underlying stream closes it
        self.closed = True


def _drain(sink: _Sink) -> Iterator[bytes]:
    if sink.size and sink.size >= STREAM_CHUNK_BYTES:
        yield sink.take()


def stream_zip(export: Export, fmt: str = "csv") -> Iterator[bytes]:
    """Every table of the export (CSV or Parquet) and a README.md, as a ZIP, in chunks of bytes."""
    if fmt not in FORMATS:
        raise ExportError(f"Unknown format “{fmt}”: use csv or parquet.")
    export.freeze()
    sink = _Sink()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for table in export.tables:
            archive.compresslevel = 6 if fmt == "csv" else 1  # Parquet is compressed already: deflate it lightly
            with archive.open(f"{table}.{fmt}", "w", force_zip64=True) as entry:
                if fmt == "csv":
                    for chunk in export.csv_chunks(table):
                        entry.write(chunk)
                        yield from _drain(sink)
                else:
                    for _ in export.write_parquet(table, entry):
                        yield from _drain(sink)
            yield from _drain(sink)
        archive.compresslevel = 6
        archive.writestr("README.md", export.readme(fmt))
    yield sink.take()


def stream_table(export: Export, table: str, fmt: str) -> Iterator[bytes]:
    """One table alone, as a CSV or a Parquet file, in chunks of bytes."""
    export.freeze()
    if fmt == "csv":
        yield from export.csv_chunks(table)
        return
    if fmt != "parquet":
        raise ExportError(f"Unknown format “{fmt}”: use csv or parquet.")
    sink = _Sink()
    for _ in export.write_parquet(table, sink):
        yield from _drain(sink)
    yield sink.take()


# --- scopes ------------------------------------------------------------------------------------------


def exportable_questions() -> QuerySet[Question]:
    return Question.objects.exclude(status=Question.Status.DRAFT)


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


# --- README ------------------------------------------------------------------------------------------


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_readme(export: Export, fmt: str) -> str:
    """The README.md of a ZIP: scope, conventions, every column of every table, methods and scores."""
    export.freeze()
    lines = [
        "# Newsroom Forecasts: data export",
        "",
        f"- **Contents:** {export.title}",
        f"- **Question filters:** {export.filters.describe()}",
        f"- **Exported at:** {_timestamp(export.as_of)} (forecasts, aggregates and prices added after this "
        "moment are not included)",
        f"- **Format:** {_format_doc(fmt)}",
        f"- **Forecasters:** {_identity_doc(export)}",
        "",
        "## Files",
        "",
        "| file | rows | contents |",
        "|---|---|---|",
    ]
    for table in export.tables:
        rows = export.row_counts.get(table)
        lines.append(f"| {table}.{fmt} | {'' if rows is None else rows} | {_cell(TABLES[table].description)} |")
    lines += [
        "| README.md | | This file. |",
        "",
        "## Conventions",
        "",
        "- Every table refers to questions by `question_id`; join on it. Forecasters appear as `forecaster` "
        "(the same key in forecasts and scores).",
        "- Probability vectors list one probability per outcome in the order of `questions.outcomes`: "
        "[P(no), P(yes)] for a yes/no question, one per option in display order for multiple choice.",
        "- An empty cell (CSV) or null (Parquet) means the value does not apply or does not exist yet.",
        "- Values are exported exactly as stored: forecasts and scores as exact decimals, aggregates and prices "
        "as the stored floating-point numbers.",
        "",
        "Column types:",
        "",
        "| type | meaning |",
        "|---|---|",
    ]
    used = {c.type for table in export.tables for c in export.columns(table)}
    lines += [f"| {name} | {_cell(t.doc)} |" for name, t in TYPES.items() if name in used]
    for table in export.tables:
        lines += ["", f"## {table}.{fmt}", "", TABLES[table].description, "", "| column | type | description |"]
        lines.append("|---|---|---|")
        lines += [f"| {c.name} | {c.type} | {_cell(c.description)} |" for c in export.columns(table)]
    if "aggregates" in export.tables:
        lines += ["", "## Aggregation methods", "", "`aggregates.method` is one of:", "", "| method | description |"]
        lines.append("|---|---|")
        lines += [f"| {name} | {_cell(text)} |" for name, text in method_descriptions().items()]
        lines += [
            "",
            "Every method but bayes combines each forecaster's latest forecast as it stood right after the "
            "forecast named by prediction_id; recency_weighted_median is the community prediction shown on the "
            "site.",
        ]
    if "scores" in export.tables:
        lines += ["", "## Scores", "", "| kind | description |", "|---|---|"]
        lines += [f"| {kind} | {_cell(text)} |" for kind, text in SCORE_DOCS.items()]
        lines += ["", "| method | description |", "|---|---|"]
        lines += [f"| {method} | {_cell(text)} |" for method, text in SCORE_METHOD_DOCS.items()]
    return "\n".join(lines) + "\n"


def _format_doc(fmt: str) -> str:
    if fmt == "csv":
        return "CSV: UTF-8, comma-separated, RFC 4180 quoting, one header row."
    return (
        "Parquet (one file per table, zstd-compressed, typed columns as listed below). "
        "Read with e.g. pandas.read_parquet or pyarrow.parquet.read_table."
    )


def _identity_doc(export: Export) -> str:
    if export.forecaster_id is not None:
        return "only you; your username is in forecaster_username."
    if export.identities:
        return "pseudonymised keys and usernames (forecaster_username): this export identifies forecasters."
    return (
        "anonymised. forecaster is a stable salted hash (HMAC-SHA256 of the user id with the newsroom's secret "
        "salt, first 16 hex characters); usernames are not included."
    )
