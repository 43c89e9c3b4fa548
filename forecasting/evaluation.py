"""Walk-forward benchmark of the aggregation methods on resolved questions. Pure numpy/pandas.

Input is the flat benchmark format, one row per individual forecast on a yes/no question::

    question_id, forecaster_id, made_at, probability, outcome, resolved_at

(extra columns are ignored; dates are ISO 8601, naive ones read as UTC; ``outcome`` is 1 for
YES and 0 for NO). ``load_forecasts`` reads such a CSV (gzipped or not) and ``evaluate`` scores
every registered aggregator (``forecasting.aggregation.AGGREGATORS``) on it.

Protocol
--------
Cleaning (``clean_forecasts``): rows with an unparsable date, a probability that is not a
finite number in [0, 1], or an outcome other than 0/1 are dropped, and so are forecasts made
after their question resolved (one made exactly at ``resolved_at`` is kept), and every row of a
question whose rows disagree on ``outcome`` or ``resolved_at``. The counts are returned per
reason. Raw probabilities of exactly 0 or 1 are kept: each aggregator clips as it documents.

Per question (``QuestionHistory``): each forecaster's latest kept forecast (on a tie in
``made_at``, the later row of the file), these rows ordered oldest to newest by ``made_at``
(ties in file order).

Scored questions: those resolved on or after ``since`` with at least ``min_forecasters``
distinct forecasters. Each method aggregates the question's latest forecasts; the score uses
P(YES) of that final aggregate:

- ``brier``: mean over questions of ``(p - outcome)**2`` (lower is better);
- ``log``: mean of ``ln`` of the probability given to the outcome, clipped to
  ``[0.001, 0.999]`` (<= 0, higher is better);
- ``ece``: ``forecasting.scoring.expected_calibration_error`` with 10 equal-width bins;
- ``brier_time_averaged`` (only with ``time_averaged=True``): per question, the Brier score of
  the aggregate averaged over time from the question's first kept forecast to ``resolved_at``,
  the aggregate being recomputed after each forecast (on every forecaster's latest forecast so
  far) and standing until the next one; then the mean over questions. A question whose
  forecasts were all made at ``resolved_at`` (a life of zero length) counts its final Brier.

Walk-forward learning: questions are scored in order of ``resolved_at`` (ties in order of first
appearance in the file). A method that learns something has a learner in ``LEARNERS``; its
parameters are refit when the question being scored resolved at least ``refit_every_days``
after the previous fit (or when there is no fit yet), and otherwise kept. A fit made for a
question resolved at time T is trained on every question in the file resolved strictly before T
with at least 2 forecasters -- including questions that are not scored themselves (resolved
before ``since`` or with fewer than ``min_forecasters`` forecasters): all of them were known at
T. So no question is ever scored with parameters learnt from itself or from a question that
resolved at the same time or later. The time-averaged score of a question uses the same
parameters as its final score.

Pluggable learning
------------------
``LEARNERS[name](training: list[QuestionHistory]) -> dict`` returns the keyword arguments of
aggregator ``name``; the method is then called as ``AGGREGATORS[name](probabilities, **kwargs)``.
``training`` may be empty (the first scored question has nothing before it): the learner then
returns its defaults. A method that needs more than the probabilities (e.g. forecaster ids or
times to resolution) returns instead a dict holding a callable under ``"__aggregate__"``: it is
called as ``kwargs["__aggregate__"](history)`` with the question's ``QuestionHistory`` (for the
time-averaged score, a history truncated to the forecasts made so far) and returns the
aggregate probability vector ``[P(no), P(yes)]``. Methods without a learner are called with no
keyword arguments (their defaults).
"""

from __future__ import annotations

import functools
import gzip
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from forecasting import aggregation, scoring

REQUIRED_COLUMNS = ("question_id", "forecaster_id", "made_at", "probability", "outcome", "resolved_at")
LOG_CLIP = (0.001, 0.999)
ECE_BINS = 10
DEFAULT_MIN_FORECASTERS = 5
DEFAULT_REFIT_EVERY_DAYS = 30
MIN_TRAINING_FORECASTERS = 2
AGGREGATE_HOOK = "__aggregate__"
DROP_REASONS = (
    "unparsable_date",
    "bad_probability",
    "bad_outcome",
    "made_after_resolution",
    "inconsistent_question",
)
_DAY = 86400.0


class MissingColumnsError(ValueError):
    """The input lacks some of ``REQUIRED_COLUMNS``."""

    def __init__(self, missing: Iterable[str]):
        self.missing = tuple(missing)
        super().__init__(f"missing required column(s): {', '.join(self.missing)}")


@dataclass(frozen=True, eq=False)
class ForecastLog:
    """Every kept forecast on a question, ordered by ``made_at`` (ties in file order)."""

    forecaster_ids: np.ndarray  # (m,) str
    made_at: np.ndarray  # (m,) float, epoch seconds UTC
    probabilities: np.ndarray  # (m, k), k = 2: [P(no), P(yes)]


@dataclass(frozen=True, eq=False)
class QuestionHistory:
    """A resolved question as the evaluation sees it.

    ``forecaster_ids``, ``made_at`` and ``probabilities`` describe each forecaster's latest
    forecast, rows ordered oldest to newest; ``all_forecasts`` holds every kept forecast.
    Times are epoch seconds (UTC) as floats.
    """

    question_id: str
    forecaster_ids: np.ndarray  # (n,)
    made_at: np.ndarray  # (n,) float
    probabilities: np.ndarray  # (n, k)
    all_forecasts: ForecastLog
    resolved_at: float
    outcome_index: int

    @property
    def n_forecasters(self) -> int:
        return len(self.forecaster_ids)

    @cached_property
    def mean_log_probabilities(self) -> np.ndarray:
        """``aggregation.mean_log_probabilities`` of the latest forecasts (computed once)."""
        return aggregation.mean_log_probabilities(self.probabilities)

    def truncated(self, count: int) -> QuestionHistory:
        """The question as it stood after its first ``count`` forecasts (same resolution)."""
        log = self.all_forecasts
        standing = _standing_indexes(log.forecaster_ids[:count])
        return QuestionHistory(
            question_id=self.question_id,
            forecaster_ids=log.forecaster_ids[standing],
            made_at=log.made_at[standing],
            probabilities=log.probabilities[standing],
            all_forecasts=ForecastLog(log.forecaster_ids[:count], log.made_at[:count], log.probabilities[:count]),
            resolved_at=self.resolved_at,
            outcome_index=self.outcome_index,
        )


Learner = Callable[[list[QuestionHistory]], dict]


def fit_extremized_logodds(training: list[QuestionHistory]) -> dict:
    """The extremizing factor that minimises the log loss on the training questions."""
    return {
        "factor": aggregation.fit_extremizing_factor(
            [q.mean_log_probabilities for q in training],
            [q.outcome_index for q in training],
        )
    }


LEARNERS: dict[str, Learner] = {"extremized_logodds": fit_extremized_logodds}


# --- loading ---------------------------------------------------------------------------------------


def _is_gzip(path: Path) -> bool:
    if path.suffix == ".gz":
        return True
    with path.open("rb") as handle:
        return handle.read(2) == b"\x1f\x8b"


def read_csv(path: str | Path) -> pd.DataFrame:
    """The raw CSV as strings (gzip detected from the ``.gz`` suffix or the magic bytes)."""
    path = Path(path)
    opener = gzip.open if _is_gzip(path) else open
    with opener(path, "rt", encoding="utf-8", newline="") as handle:
        return pd.read_csv(handle, dtype=str, keep_default_na=False, na_filter=False)


def _parse_dates(values: pd.Series) -> pd.Series:
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert("UTC")
    return pd.to_datetime(values, utc=True, errors="coerce", format="ISO8601")


def clean_forecasts(frame: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """Typed, valid rows (file order kept) and the number of rows dropped per reason.

    Idempotent. Raises ``MissingColumnsError`` when a required column is absent.
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise MissingColumnsError(missing)
    made_at = _parse_dates(frame["made_at"])
    resolved_at = _parse_dates(frame["resolved_at"])
    probability = pd.to_numeric(frame["probability"], errors="coerce").astype(float)
    outcome = pd.to_numeric(frame["outcome"], errors="coerce").astype(float)

    bad_date = made_at.isna() | resolved_at.isna()
    bad_probability = ~bad_date & ~(np.isfinite(probability) & (probability >= 0) & (probability <= 1))
    bad_outcome = ~bad_date & ~bad_probability & ~outcome.isin([0.0, 1.0])
    valid = ~(bad_date | bad_probability | bad_outcome)
    late = valid & (made_at > resolved_at)
    keep = valid & ~late

    clean = pd.DataFrame(
        {
            "question_id": frame["question_id"].astype(str),
            "forecaster_id": frame["forecaster_id"].astype(str),
            "made_at": made_at,
            "probability": probability,
            "outcome": outcome.fillna(-1).astype(int),
            "resolved_at": resolved_at,
        }
    )[keep.to_numpy()]
    grouped = clean.groupby("question_id", sort=False)
    inconsistent = (grouped["outcome"].transform("nunique") > 1) | (grouped["resolved_at"].transform("nunique") > 1)
    clean = clean[~inconsistent.to_numpy()].reset_index(drop=True)

    dropped = {
        "unparsable_date": int(bad_date.sum()),
        "bad_probability": int(bad_probability.sum()),
        "bad_outcome": int(bad_outcome.sum()),
        "made_after_resolution": int(late.sum()),
        "inconsistent_question": int(inconsistent.sum()),
    }
    return clean, dropped


def load_forecasts(path: str | Path) -> tuple[pd.DataFrame, dict[str, int]]:
    """Read and clean a benchmark CSV: ``(frame, dropped rows per reason)``."""
    return clean_forecasts(read_csv(path))


# --- question histories ---------------------------------------------------------------------------


def _standing_indexes(forecaster_ids: np.ndarray) -> np.ndarray:
    """Indexes of each forecaster's last entry, ascending (i.e. oldest to newest)."""
    if len(forecaster_ids) == 0:
        return np.zeros(0, dtype=int)
    reversed_ids = forecaster_ids[::-1]
    _, first_in_reversed = np.unique(reversed_ids, return_index=True)
    return np.sort(len(forecaster_ids) - 1 - first_in_reversed)


def _epoch_seconds(values: pd.Series) -> np.ndarray:
    return (values - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy(dtype=float)


def build_histories(frame: pd.DataFrame) -> list[QuestionHistory]:
    """One ``QuestionHistory`` per question of a cleaned frame, ordered by ``resolved_at``
    (ties in order of the question's first appearance)."""
    if frame.empty:
        return []
    question_code, question_ids = pd.factorize(frame["question_id"], sort=False)
    order = np.lexsort((np.arange(len(frame)), frame["made_at"].to_numpy(), question_code))
    codes = question_code[order]
    forecasters = frame["forecaster_id"].to_numpy(dtype=object)[order]
    made_at = _epoch_seconds(frame["made_at"])[order]
    yes = frame["probability"].to_numpy(dtype=float)[order]
    probabilities = np.column_stack([1.0 - yes, yes])
    resolved = _epoch_seconds(frame["resolved_at"])[order]
    outcomes = frame["outcome"].to_numpy(dtype=int)[order]

    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
    ends = np.r_[starts[1:], len(codes)]
    histories = []
    for start, end in zip(starts, ends, strict=True):
        log = ForecastLog(forecasters[start:end], made_at[start:end], probabilities[start:end])
        standing = _standing_indexes(log.forecaster_ids)
        histories.append(
            QuestionHistory(
                question_id=str(question_ids[codes[start]]),
                forecaster_ids=log.forecaster_ids[standing],
                made_at=log.made_at[standing],
                probabilities=log.probabilities[standing],
                all_forecasts=log,
                resolved_at=float(resolved[start]),
                outcome_index=int(outcomes[start]),
            )
        )
    # Histories come out in question-code order (first appearance); a stable sort keeps it on ties.
    histories.sort(key=lambda h: h.resolved_at)
    return histories


# --- aggregation and scoring ----------------------------------------------------------------------


def aggregate(name: str, history: QuestionHistory, parameters: dict) -> np.ndarray:
    """Method ``name``'s aggregate of the question's latest forecasts, given its learnt parameters."""
    hook = parameters.get(AGGREGATE_HOOK)
    if callable(hook):
        return np.asarray(hook(history), dtype=float)
    return np.asarray(aggregation.AGGREGATORS[name](history.probabilities, **parameters), dtype=float)


def time_averaged_brier(name: str, history: QuestionHistory, parameters: dict) -> float:
    """Brier score of the aggregate averaged over the question's life (see the module docstring)."""
    log = history.all_forecasts
    outcome = history.outcome_index
    total = history.resolved_at - log.made_at[0]
    if total <= 0:
        return float((aggregate(name, history, parameters)[1] - outcome) ** 2)
    ends = np.r_[log.made_at[1:], history.resolved_at]
    needs_history = callable(parameters.get(AGGREGATE_HOOK))
    agg = aggregation.AGGREGATORS.get(name)
    # The standing forecasts: each forecaster's latest so far, kept in index (= time) order.
    position: dict[str, int] = {}
    standing: list[int] = []
    weighted = 0.0
    for j, forecaster in enumerate(log.forecaster_ids):
        previous = position.get(forecaster)
        if previous is not None:
            standing.remove(previous)
        standing.append(j)
        position[forecaster] = j
        duration = ends[j] - log.made_at[j]
        if duration <= 0:
            continue  # superseded at the same instant: never stands
        if needs_history:
            vector = parameters[AGGREGATE_HOOK](history.truncated(j + 1))
        else:
            vector = agg(log.probabilities[standing], **parameters)
        weighted += duration * (float(vector[1]) - outcome) ** 2
    return weighted / total


def _summary(p_yes: np.ndarray, outcomes: np.ndarray) -> dict[str, float]:
    if len(p_yes) == 0:
        return {"brier": math.nan, "log": math.nan, "ece": math.nan}
    p_outcome = np.where(outcomes == 1, p_yes, 1.0 - p_yes)
    return {
        "brier": float(np.mean((p_yes - outcomes) ** 2)),
        "log": float(np.mean(np.log(np.clip(p_outcome, *LOG_CLIP)))),
        "ece": scoring.expected_calibration_error(np.clip(p_yes, 0.0, 1.0), outcomes, bins=ECE_BINS),
    }


def resolve_methods(methods: Iterable[str] | None) -> list[str]:
    """The method names to run (all registered ones by default); ``ValueError`` on an unknown one."""
    known = list(aggregation.AGGREGATORS)
    if methods is None:
        return known
    chosen = list(dict.fromkeys(m.strip() for m in methods if m.strip()))
    unknown = [m for m in chosen if m not in aggregation.AGGREGATORS]
    if unknown:
        raise ValueError(f"unknown method(s): {', '.join(unknown)}; known: {', '.join(known)}")
    if not chosen:
        raise ValueError(f"no method given; known: {', '.join(known)}")
    return chosen


def _timestamp_seconds(since: str | date | datetime | pd.Timestamp) -> float:
    stamp = pd.Timestamp(since)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return (stamp - pd.Timestamp(0, tz="UTC")).total_seconds()


def evaluate(
    frame: pd.DataFrame,
    *,
    since: str | date | datetime | pd.Timestamp | None = None,
    min_forecasters: int = DEFAULT_MIN_FORECASTERS,
    refit_every_days: float = DEFAULT_REFIT_EVERY_DAYS,
    methods: Iterable[str] | None = None,
    time_averaged: bool = False,
) -> dict:
    """Walk-forward scores: ``{"questions": n, "methods": {name: {"brier", "log", "ece"}}}``.

    ``frame`` is the output of ``load_forecasts`` (or any frame with the required columns:
    it is cleaned again, silently). With ``time_averaged`` each method's dict also has
    ``brier_time_averaged``. Scores are NaN when no question qualifies.
    """
    names = resolve_methods(methods)
    clean, _ = clean_forecasts(frame)
    histories = build_histories(clean)
    since_seconds = -math.inf if since is None else _timestamp_seconds(since)
    scored = [h for h in histories if h.resolved_at >= since_seconds and h.n_forecasters >= min_forecasters]
    training = [h for h in histories if h.n_forecasters >= MIN_TRAINING_FORECASTERS]
    training_resolved = np.array([h.resolved_at for h in training])
    refit_seconds = refit_every_days * _DAY

    learners = {name: LEARNERS[name] for name in names if name in LEARNERS}
    parameters: dict[str, dict] = {name: {} for name in names}
    last_fit: float | None = None
    finals = {name: np.empty(len(scored)) for name in names}
    averaged = {name: np.empty(len(scored)) for name in names}
    for i, history in enumerate(scored):
        if learners and (last_fit is None or history.resolved_at >= last_fit + refit_seconds):
            known = training[: int(np.searchsorted(training_resolved, history.resolved_at, side="left"))]
            for name, learner in learners.items():
                parameters[name] = dict(learner(known))
            last_fit = history.resolved_at
        for name in names:
            finals[name][i] = aggregate(name, history, parameters[name])[1]
            if time_averaged:
                averaged[name][i] = time_averaged_brier(name, history, parameters[name])

    outcomes = np.array([h.outcome_index for h in scored], dtype=float)
    results = {}
    for name in names:
        results[name] = _summary(finals[name], outcomes)
        if time_averaged:
            results[name]["brier_time_averaged"] = float(averaged[name].mean()) if len(scored) else math.nan
    return {"questions": len(scored), "methods": results}


def format_table(result: dict) -> str:
    """A plain-text table of ``evaluate``'s result, best Brier first, and the question count."""
    rows = sorted(
        result["methods"].items(),
        key=lambda item: (math.isnan(item[1]["brier"]), item[1]["brier"], item[0]),
    )
    columns = ["brier", "log", "ece"]
    if any("brier_time_averaged" in scores for _, scores in rows):
        columns.append("brier_time_averaged")
    width = max([len("method"), *(len(name) for name, _ in rows)])
    widths = [max(len(c), 8) for c in columns]
    lines = ["  ".join(["method".ljust(width), *(c.rjust(w) for c, w in zip(columns, widths, strict=True))])]
    for name, scores in rows:
        cells = [f"{scores[c]:.4f}".rjust(w) for c, w in zip(columns, widths, strict=True)]
        lines.append("  ".join([name.ljust(width), *cells]))
    lines.append(f"questions: {result['questions']}")
    return "\n".join(lines)


# --- methods that need forecaster ids and forecast times ------------------------------------------
# The Bayesian model (forecasting/bayes.py) and the skill-weighted log-odds mean
# (forecasting/weighted_logodds.py) are not aggregation.AGGREGATORS (the app's per-forecast
# aggregates): the evaluation runs them through their learner hooks.
from forecasting import bayes, weighted_logodds  # noqa: E402


def _weighting_rows(history: QuestionHistory, records: weighted_logodds.TrackRecords) -> dict[str, np.ndarray]:
    made = np.asarray(history.made_at, dtype=float)
    return {
        "p": history.probabilities[:, 1],
        "age_days": (made.max() - made) / _DAY if len(made) else made,
        "days_to_resolution": (history.resolved_at - made) / _DAY,
        "brier": records.brier(history.forecaster_ids),
    }


def _skill_weighted_aggregate(
    weighting: weighted_logodds.Weighting, records: weighted_logodds.TrackRecords, history: QuestionHistory
) -> np.ndarray:
    rows = _weighting_rows(history, records)
    p = weighted_logodds.combine(rows["p"], rows["age_days"], rows["days_to_resolution"], rows["brier"], weighting)
    return np.array([1.0 - p, p])


def fit_skill_weighted_logodds(training: list[QuestionHistory]) -> dict:
    """Learner of ``skill_weighted_logodds`` (``forecasting.weighted_logodds``): each training
    question is weighted with the track records as they stood before it resolved (questions that
    resolved at the same moment do not see each other), and the aggregate of a question uses the
    records of every training question."""
    training = sorted(training, key=lambda h: h.resolved_at)  # stable: ties keep their order
    records = weighted_logodds.TrackRecords()
    rows, outcomes = [], []
    i = 0
    while i < len(training):
        j = i
        while j < len(training) and training[j].resolved_at == training[i].resolved_at:
            j += 1
        for history in training[i:j]:
            rows.append(_weighting_rows(history, records))
            outcomes.append(history.outcome_index)
        for history in training[i:j]:
            records.add(list(history.forecaster_ids), history.probabilities[:, 1], history.outcome_index)
        i = j
    weighting = weighted_logodds.fit_weighting(rows, outcomes)
    return {AGGREGATE_HOOK: functools.partial(_skill_weighted_aggregate, weighting, records)}


LEARNERS["bayes"] = bayes.fit_for_evaluation
LEARNERS["skill_weighted_logodds"] = fit_skill_weighted_logodds
HOOK_ONLY_METHODS = ("skill_weighted_logodds", "bayes")
_resolve_registered_methods = resolve_methods


def resolve_methods(methods: Iterable[str] | None) -> list[str]:
    """The methods to run: every registered one and ``bayes`` by default, or those named."""
    if methods is None:
        return [*_resolve_registered_methods(None), *HOOK_ONLY_METHODS]
    chosen = list(dict.fromkeys(m.strip() for m in methods if m.strip()))
    others = [m for m in chosen if m not in HOOK_ONLY_METHODS]
    registered = _resolve_registered_methods(others) if others or not chosen else []
    return [m for m in chosen if m in HOOK_ONLY_METHODS or m in registered]
