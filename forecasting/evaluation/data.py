"""The benchmark's input: reading and cleaning the flat CSV of resolved forecasts, and each
question as the evaluation sees it (``QuestionHistory``). The format and the cleaning rules are in
``forecasting.evaluation``'s docstring. Pure numpy/pandas: no Django import."""

from __future__ import annotations

import gzip
import math
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from forecasting import aggregation

REQUIRED_COLUMNS = ("question_id", "forecaster_id", "made_at", "probability", "outcome", "resolved_at")
CLOSE_COLUMN = "closes_at"  # optional: without it (or where implausible) a question's close is unknown
DROP_REASONS = (
    "unparsable_date",
    "bad_probability",
    "bad_outcome",
    "made_after_resolution",
    "made_after_close",
    "inconsistent_question",
)
SECONDS_PER_DAY = 86400.0
# A close date more than this after a question's first forecast is a typo (PredictionBook has years
# 3008 and 0139), not a deadline anyone forecast against.
MAX_PLAUSIBLE_LIFE_DAYS = 50 * 365.25


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
    Times are epoch seconds (UTC) as floats; ``closes_at`` is NaN when the close is unknown.
    """

    question_id: str
    forecaster_ids: np.ndarray  # (n,)
    made_at: np.ndarray  # (n,) float
    probabilities: np.ndarray  # (n, k)
    all_forecasts: ForecastLog
    resolved_at: float
    outcome_index: int
    closes_at: float = math.nan

    @property
    def n_forecasters(self) -> int:
        return len(self.forecaster_ids)

    @property
    def clock_at(self) -> float:
        """The time the question's lead times run to, as a reader saw it while it was open: its
        close date; when that is unknown, its newest forecast so far (never the resolution date)."""
        if math.isfinite(self.closes_at):
            return self.closes_at
        made = self.all_forecasts.made_at
        return float(made[-1]) if len(made) else self.resolved_at

    @property
    def ends_at(self) -> float:
        """The end of the question's forecasting life: its close, or its resolution if that came first
        (or if the close is unknown). Its final aggregate is the one standing at this instant."""
        if math.isfinite(self.closes_at):
            return min(self.closes_at, self.resolved_at)
        return self.resolved_at

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
            closes_at=self.closes_at,
        )


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


def _plausible_closes(question_id: pd.Series, made_at: pd.Series, closes_at: pd.Series, valid: pd.Series) -> pd.Series:
    """Each row's question close, NaT where it is unknown: unparsable, disagreeing between the
    question's rows, before its first forecast or more than ``MAX_PLAUSIBLE_LIFE_DAYS`` after it."""
    frame = pd.DataFrame({"q": question_id, "made": made_at, "close": closes_at})[valid.to_numpy()]
    grouped = frame.groupby("q", sort=False)
    first = grouped["made"].min()
    close = grouped["close"].first()
    agreed = grouped["close"].nunique(dropna=False) == 1
    life = close - first
    plausible = agreed & (life >= pd.Timedelta(0)) & (life <= pd.Timedelta(days=MAX_PLAUSIBLE_LIFE_DAYS))
    per_question = close.where(plausible)
    return question_id.map(per_question).astype(made_at.dtype)


def typed_keys(frame: pd.DataFrame, required: Iterable[str]) -> tuple[pd.Series, pd.Series, pd.Series, pd.Series]:
    """``(question_id, made_at, resolved_at, closes_at)`` of a raw frame, dates parsed (NaT where
    unparsable; ``closes_at`` all NaT without the optional column). Raises ``MissingColumnsError``
    when one of ``required`` is absent."""
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise MissingColumnsError(missing)
    made_at = _parse_dates(frame["made_at"])
    if CLOSE_COLUMN in frame.columns:
        closes_at = _parse_dates(frame[CLOSE_COLUMN])
    else:
        closes_at = pd.Series(pd.NaT, index=frame.index, dtype=made_at.dtype)
    return frame["question_id"].astype(str), made_at, _parse_dates(frame["resolved_at"]), closes_at


def screen_rows(
    question_id: pd.Series,
    made_at: pd.Series,
    resolved_at: pd.Series,
    closes_at: pd.Series,
    *,
    bad_probability: pd.Series,
    bad_outcome: pd.Series,
) -> tuple[pd.Series, pd.Series, dict[str, int]]:
    """The row rules every format shares: ``(keep, each row's plausible close, rows dropped per reason)``
    (every reason of ``DROP_REASONS`` but the per-question ``inconsistent_question``). A row counts
    under its first failing reason, in that order."""
    bad_date = made_at.isna() | resolved_at.isna()
    bad_probability = ~bad_date & bad_probability
    bad_outcome = ~bad_date & ~bad_probability & bad_outcome
    valid = ~(bad_date | bad_probability | bad_outcome)
    late = valid & (made_at > resolved_at)
    closes_at = _plausible_closes(question_id, made_at, closes_at, valid & ~late)
    after_close = valid & ~late & closes_at.notna() & (made_at > closes_at)
    dropped = {
        "unparsable_date": int(bad_date.sum()),
        "bad_probability": int(bad_probability.sum()),
        "bad_outcome": int(bad_outcome.sum()),
        "made_after_resolution": int(late.sum()),
        "made_after_close": int(after_close.sum()),
    }
    return valid & ~late & ~after_close, closes_at, dropped


def clean_forecasts(frame: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """Typed, valid rows (file order kept) and the number of rows dropped per reason.

    Idempotent. Raises ``MissingColumnsError`` when a required column is absent. The optional
    ``closes_at`` column gives each question's close (NaT where unknown, see ``_plausible_closes``);
    forecasts made after a known close are dropped, as the product accepts none.
    """
    question_id, made_at, resolved_at, closes_at = typed_keys(frame, REQUIRED_COLUMNS)
    probability = pd.to_numeric(frame["probability"], errors="coerce").astype(float)
    outcome = pd.to_numeric(frame["outcome"], errors="coerce").astype(float)

    keep, closes_at, dropped = screen_rows(
        question_id,
        made_at,
        resolved_at,
        closes_at,
        bad_probability=~(np.isfinite(probability) & (probability >= 0) & (probability <= 1)),
        bad_outcome=~outcome.isin([0.0, 1.0]),
    )

    clean = pd.DataFrame(
        {
            "question_id": question_id,
            "forecaster_id": frame["forecaster_id"].astype(str),
            "made_at": made_at,
            "probability": probability,
            "outcome": outcome.fillna(-1).astype(int),
            "resolved_at": resolved_at,
            "closes_at": closes_at,
        }
    )[keep.to_numpy()]
    grouped = clean.groupby("question_id", sort=False)
    inconsistent = (grouped["outcome"].transform("nunique") > 1) | (grouped["resolved_at"].transform("nunique") > 1)
    clean = clean[~inconsistent.to_numpy()].reset_index(drop=True)
    return clean, {**dropped, "inconsistent_question": int(inconsistent.sum())}


def questions_without_close(frame: pd.DataFrame) -> int:
    """How many questions of a cleaned frame have no plausible close (their clock is their newest forecast)."""
    if frame.empty:
        return 0
    return int(frame.groupby("question_id", sort=False)["closes_at"].first().isna().sum())


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
    closes = _epoch_seconds(frame["closes_at"])[order] if "closes_at" in frame.columns else np.full(len(order), np.nan)
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
                closes_at=float(closes[start]),
            )
        )
    # Histories come out in question-code order (first appearance); a stable sort keeps it on ties.
    histories.sort(key=lambda h: h.resolved_at)
    return histories
