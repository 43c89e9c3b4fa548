"""Forecasting's own export tables, declared once: columns, types and descriptions.

Four tables, registered in this order (an app built on forecasting may add more, see ``registry``):

- ``questions``: one row per question (drafts are never exported) with its outcomes and its
  active resolution;
- ``forecasts``: every individual forecast, the forecaster anonymised by a stable salted
  hash (``forecaster_key``) unless the export is made for someone allowed to see identities;
- ``aggregates``: the history of every aggregation method, with the Bayesian interval and
  the model run that made each value;
- ``scores``: every score row as stored.

The CSV header, the Parquet schema, the ``README.md`` of every ZIP and the analyst page are
generated from these declarations; the rows come from ``rows.py``.
"""

from __future__ import annotations

from forecasting.models import AggregateSnapshot, Prediction

from .access import IDENTITIES_PERMISSION
from .registry import register_table
from .rows import aggregates_rows, forecasts_rows, questions_rows, scores_rows
from .schema import Column, Table

FORECASTER_DOC = (
    "The forecaster, anonymised: the first 16 hex characters of HMAC-SHA256(salt, user id). Stable across "
    "exports (the same forecaster has the same key in every download, so forecasts and scores can be joined), "
    "but it cannot be turned back into a user without the newsroom's secret salt."
)
USERNAME_DOC = (
    "The forecaster's username. Only in exports made for holders of the "
    f"{IDENTITIES_PERMISSION} permission, and in a reader's download of their own data."
)


QUESTIONS = register_table(
    Table(
        "questions",
        "One row per question in the export (drafts are never exported), with its active resolution.",
        (
            Column("question_id", "integer", "Question id; every other table refers to it."),
            Column("article_id", "integer", "Id of the article that raises the question."),
            Column("article_slug", "text", "The article's slug (its address on the site: /articles/<slug>/)."),
            Column("article_title", "text", "The article's headline."),
            Column("title", "text", "The question as readers see it."),
            Column("question_type", "text", "binary (yes/no), multiple_choice, numeric or date."),
            Column("status", "text", "open, closed, resolved or annulled, when the export was made."),
            Column(
                "outcomes",
                "text_list",
                'The outcomes, in the order every probability vector in this export follows: ["No","Yes"] '
                "for a yes/no question, the option labels in display order for a multiple-choice question; empty "
                "for numeric and date questions, whose forecasts are distributions (forecasts.cdf).",
            ),
            Column("opens_at", "timestamp", "When the question opens for forecasts."),
            Column("closes_at", "timestamp", "When it closes: no forecast is accepted from then on."),
            Column(
                "resolution",
                "text",
                "The active resolution: yes, no, option (multiple choice), value, below or above (numeric and "
                "date: the outcome, or past an open end of the range) or annulled; empty while "
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
            Column(
                "range_min",
                "float",
                "Numeric and date questions: the low end of the range (dates: seconds since 1970-01-01 UTC).",
            ),
            Column("range_max", "float", "Numeric and date questions: the high end of the range."),
            Column("open_lower_bound", "boolean", "Numeric and date: whether the outcome may fall below the range."),
            Column("open_upper_bound", "boolean", "Numeric and date: whether the outcome may fall above the range."),
            Column(
                "zero_point",
                "float",
                "A log-scaled numeric question's zero point (Metaculus's convention); empty for a linear scale.",
            ),
            Column("unit", "text", "Numeric questions: the unit of the values."),
            Column(
                "resolution_value",
                "float",
                "Numeric and date questions resolved inside the range: the outcome (dates: seconds since 1970).",
            ),
        ),
        rows=questions_rows,
    )
)

FORECASTS = register_table(
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
                "yes/no question, the stored option probabilities (summing to exactly 1) for multiple choice; "
                "empty for numeric and date questions.",
            ),
            Column(
                "cdf",
                "cdf",
                "Numeric and date questions: the forecast's cumulative distribution as stored (Metaculus's "
                "format: value k is P(X <= range_min + k/200 of the range on its scale); the first value is the "
                "mass below the range, one minus the last the mass above it); empty otherwise.",
            ),
        ),
        rows=forecasts_rows,
        append_only=Prediction,
    )
)

AGGREGATES = register_table(
    Table(
        "aggregates",
        "The history of every aggregation method: one row per method each time a forecast changed the "
        "aggregate (and, for the Bayesian method, each time the model was re-applied). The value of a "
        "method at a moment is its latest row at or before that moment.",
        (
            Column("snapshot_id", "integer", "Id of this aggregate value."),
            Column("question_id", "integer", "The question (questions.question_id)."),
            Column("method", "text", "Aggregation method; every method is described under Aggregation methods below."),
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
                "(rounded to 6 decimals when computed); empty for numeric and date questions (see cdf).",
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
                'Learnt parameters used, e.g. {"factor":1.7} for extremized_logodds; the run and fit method for bayes.',
            ),
            Column(
                "cdf",
                "cdf",
                "Numeric and date questions: the aggregate distribution (201 values, as forecasts.cdf); "
                "empty otherwise.",
            ),
        ),
        rows=aggregates_rows,
        append_only=AggregateSnapshot,
    )
)

SCORES = register_table(
    Table(
        "scores",
        "Every score as stored, for resolved questions: each forecaster gets the Brier, log, baseline and "
        "peer scores, both at resolution (spot) and time-averaged. Scores are recomputed when a question "
        "is resolved, annulled or un-resolved; annulled and un-resolved questions have none.",
        (
            Column("question_id", "integer", "The question (questions.question_id)."),
            Column("forecaster", "text", FORECASTER_DOC),
            Column("forecaster_username", "text", USERNAME_DOC, identity=True),
            Column(
                "kind",
                "text",
                "brier, log, baseline or peer (see Scores below); numeric and date questions: log (of the density "
                "at the outcome), baseline, peer and crps (no Brier).",
            ),
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
                "Fraction (0 to 1) of the question's open period during which the forecaster had a forecast standing.",
            ),
            Column("prediction_id", "integer", "The forecast standing at resolution (forecasts.prediction_id)."),
            Column("resolution_id", "integer", "The resolution the score was computed against."),
            Column("computed_at", "timestamp", "When the score was last computed."),
        ),
        rows=scores_rows,
    )
)

# A reader's download of their own data.
OWN_DATA_TABLES = ("questions", "forecasts", "scores")
