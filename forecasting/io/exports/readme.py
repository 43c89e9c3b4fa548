"""The ``README.md`` inside every ZIP: scope, conventions, every column of every table, methods and scores.

It is generated from the table declarations (``TABLES``, ``TYPES``) and the aggregation methods'
own descriptions, so it documents exactly what the ZIP holds.
"""

from __future__ import annotations

from forecasting import aggregation
from forecasting.services.bayesian import BAYES_METHOD  # a constant: the exports only read

from .export import Export
from .registry import TABLES
from .schema import TYPES, timestamp_text

BAYES_DESCRIPTION = (
    "Bayesian aggregate: a model fitted on resolved questions learns each forecaster's skill and bias and "
    "combines the latest forecasts in closed form; low/high give its 90% interval for P(YES); yes/no questions "
    "only; model_run_id names the fit that made each value."
)

SCORE_DOCS = {
    "brier": "Brier score: (p - o)^2 for a yes/no question, sum over options of (p_i - o_i)^2 otherwise (0 to 2). "
    "Lower is better; 0 is perfect, 0.25 is what 50% on a yes/no question earns.",
    "log": "Log score: ln p(outcome), probabilities clipped at 0.001. Higher (closer to 0) is better.",
    "baseline": "Baseline score: 100 (log2 p(outcome) + 1) for a yes/no question, 100 (ln p(outcome) + ln k) / ln k "
    "with k options; 0 for the uniform forecast, 100 for certainty on the outcome.",
    "peer": "Peer score: 100 (ln p_i(outcome) - mean over the other forecasters j of ln p_j(outcome)); the "
    "forecasters' peer scores on a question sum to 0. Numeric and date questions use the density at the outcome "
    "instead of p(outcome) (Metaculus's continuous peer score).",
    "crps": "Numeric and date questions: the continuous ranked probability score in units of the range, the "
    "integral over the range of (F(u) - 1[u >= outcome])^2 (trapezoid rule on the 201 points; an outcome past an "
    "end counts at that end). Lower is better; 0 is a point forecast on the outcome.",
}
CONTINUOUS_METHOD_DOCS = {
    "recency_weighted_mean": "Numeric and date questions: the community distribution, the mean of the forecasters' "
    "latest CDFs weighted by recency (Metaculus's weights exp(sqrt(i) - sqrt(n)), oldest first).",
    "linear_pool": "Numeric and date questions: the plain mean of the latest CDFs.",
    "quantile_average": "Numeric and date questions: the average of the latest forecasts' quantile functions "
    "(each quantile the mean of the forecasters' values at that probability).",
    "learnt_pool": "Numeric and date questions, the headline community distribution: the mean of the latest "
    "CDFs weighted by each forecaster's shrunk relative CRPS on resolved questions (weight exp(-2 r)), then "
    "extremized in log-odds at every point by a factor fitted on resolved questions (parameters.factor); the plain "
    "linear pool until questions resolve.",
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
    return methods | CONTINUOUS_METHOD_DOCS


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
        f"- **Exported at:** {timestamp_text(export.as_of)} (forecasts, aggregates and prices added after this "
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
        return (
            "CSV: UTF-8, comma-separated, RFC 4180 quoting, one header row. Text cells are written as stored, "
            "except that a text value that starts with =, +, -, @, a tab or a carriage return gets a leading ' "
            "(so that a spreadsheet shows it as text instead of running it as a formula: OWASP's advice against "
            "CSV injection); strip that ' if you read the CSV with code. Number columns are never changed."
        )
    return (
        "Parquet (one file per table, zstd-compressed, typed columns as listed below). "
        "Read with e.g. pandas.read_parquet or pyarrow.parquet.read_table. Text is exactly as stored, even when "
        "it starts like a spreadsheet formula (=, +, -, @): Parquet cells are typed values that no spreadsheet "
        "runs as formulas."
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
