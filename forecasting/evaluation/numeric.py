"""The causal evaluation of continuous (numeric and date) questions. Pure numpy/pandas: no Django import.

Input: the numeric flat format, one row per forecast::

    question_id, forecaster_id, made_at, cdf, range_min, range_max, open_lower_bound, open_upper_bound,
    outcome, resolved_at[, zero_point, question_type, closes_at]

``cdf`` is a JSON list of 201 values on the question's scaled range (``forecasting.continuous.grid``);
``open_lower_bound`` / ``open_upper_bound`` are true/false; ``zero_point`` is empty for a linear scale;
``outcome`` is a number, an ISO date for a date question (read as epoch seconds, like ``range_min`` and
``range_max`` when they are dates), or ``below_lower_bound`` / ``above_upper_bound``. ``question_type``
(``numeric`` or ``date``) is optional: without it a value that is not a number is tried as a date.

Cleaning follows the yes/no rules (dates, after-resolution and after-close forecasts, plausible closes:
``data.screen_rows``), plus: a row whose range, bounds or zero point do not make a valid ``Scale`` is a
``bad_scale``; a ``cdf`` that is not 201 finite numbers in [0, 1], non-decreasing (to 1e-9), a ``bad_cdf``
(Metaculus's stricter rules for submitting -- minimum steps, tail masses -- are the site's, not the
evaluation's); an outcome that does not parse, or lies beyond a closed bound, a ``bad_outcome``; a question
whose rows disagree on the scale, the outcome or ``resolved_at`` is inconsistent (every row dropped).

Each question is taken as it stood at its end (``ends_at``: its close, or its resolution if earlier; the
rows after it are dropped): each forecaster's latest CDF, rows oldest to newest (ties in file order).
Methods: ``linear_pool`` (the mean of the CDFs), ``recency_weighted_mean`` (Metaculus's community
distribution), ``quantile_average`` and ``learnt_pool`` (``forecasting.continuous.learnt``), which learns walk-forward:
it refits after every distinct resolution time (or at most every ``refit_every_days``) on the questions
resolved by then with at least ``MIN_TRAINING_FORECASTERS`` forecasters, and each question is aggregated
with the last fit made strictly before its end (``protocol.CAUSAL_RULE``), so no outcome of a question
resolved at or after that instant reaches it. Scores, averaged over questions: ``crps`` (in units of the
range, lower is better) and ``log`` (the log density at the outcome, ``continuous.scoring.log_density``:
``ln(200 p)`` for the outcome's bucket mass p inside the range, ``ln p`` beyond a bound; higher is better).
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime

import numpy as np
import pandas as pd

from forecasting.continuous import aggregation as continuous_aggregation
from forecasting.continuous import scoring as continuous_scoring
from forecasting.continuous.grid import ABOVE, BELOW, CDF_POINTS, DECREASE_TOLERANCE, Scale
from forecasting.continuous.learnt import LearntPool

from .data import _epoch_seconds, _standing_indexes, screen_rows, typed_keys
from .protocol import CAUSAL_RULE, MIN_TRAINING_FORECASTERS, Progress, _timestamp_seconds, fit_index, refit_times

REQUIRED_COLUMNS = (
    "question_id",
    "forecaster_id",
    "made_at",
    "cdf",
    "range_min",
    "range_max",
    "open_lower_bound",
    "open_upper_bound",
    "outcome",
    "resolved_at",
)
DROP_REASONS = (
    "unparsable_date",
    "bad_scale",
    "bad_cdf",
    "bad_outcome",
    "made_after_resolution",
    "made_after_close",
    "inconsistent_question",
)
_TRUE, _FALSE = frozenset({"true", "1", "yes", "t"}), frozenset({"false", "0", "no", "f"})


@dataclass(frozen=True, eq=False)
class NumericQuestion:
    """A resolved continuous question as the evaluation sees it: each forecaster's latest CDF (rows oldest
    to newest), the outcome's unit position (``Scale.outcome_position``), times in epoch seconds (UTC)."""

    question_id: str
    scale: Scale
    position: float
    forecaster_ids: np.ndarray  # (n,)
    made_at: np.ndarray  # (n,) float
    cdfs: np.ndarray  # (n, 201)
    resolved_at: float
    closes_at: float = math.nan

    @property
    def n_forecasters(self) -> int:
        return len(self.forecaster_ids)

    @property
    def ends_at(self) -> float:
        """Its close, or its resolution if that came first (or the close is unknown)."""
        return min(self.closes_at, self.resolved_at) if math.isfinite(self.closes_at) else self.resolved_at


Method = Callable[[NumericQuestion], np.ndarray]
SIMPLE_METHODS: dict[str, Method] = {
    "linear_pool": lambda q: continuous_aggregation.linear_pool(q.cdfs),
    "recency_weighted_mean": lambda q: continuous_aggregation.recency_weighted_mean(q.cdfs),
    "quantile_average": lambda q: continuous_aggregation.quantile_average(q.cdfs),
}
# Methods that learn: a factory of objects with ``aggregate(question) -> cdf`` and ``learn(resolved questions)``.
LEARNERS: dict[str, Callable[[], LearntPool]] = {"learnt_pool": LearntPool}
METHODS = (*SIMPLE_METHODS, *LEARNERS)


def is_numeric(frame: pd.DataFrame) -> bool:
    """Whether a raw frame is in the numeric format (judged from its header: a ``cdf`` column)."""
    return "cdf" in frame.columns


# --- reading and cleaning ---------------------------------------------------------------------------


def _real(text: str, dates: bool) -> float | None:
    """A finite number, or with ``dates`` an ISO date as epoch seconds; None when neither."""
    text = str(text).strip()
    try:
        value = float(text)
    except ValueError:
        value = math.nan
        if dates and text:
            stamp = pd.to_datetime(text, utc=True, errors="coerce", format="ISO8601")
            if not pd.isna(stamp):
                value = (stamp - pd.Timestamp(0, tz="UTC")).total_seconds()
    return value if math.isfinite(value) else None


def _flag(text: str) -> bool | None:
    text = str(text).strip().lower()
    return True if text in _TRUE else False if text in _FALSE else None


def _scale(range_min: str, range_max: str, lower: str, upper: str, zero_point: str, kind: str) -> Scale | None:
    dates = kind.strip().lower() != "numeric"
    low, high, open_lower, open_upper = _real(range_min, dates), _real(range_max, dates), _flag(lower), _flag(upper)
    zero = None if not str(zero_point).strip() else _real(zero_point, dates)
    if None in (low, high, open_lower, open_upper) or (str(zero_point).strip() and zero is None):
        return None
    try:
        return Scale(low, high, open_lower=open_lower, open_upper=open_upper, zero_point=zero)
    except ValueError:
        return None


def _cdf(text: str) -> np.ndarray | None:
    try:
        values = np.asarray(json.loads(text), dtype=float)
    except (TypeError, ValueError):
        return None
    if values.shape != (CDF_POINTS,) or not np.all(np.isfinite(values)):
        return None
    if values.min() < -DECREASE_TOLERANCE or values.max() > 1 + DECREASE_TOLERANCE:
        return None
    if np.any(np.diff(values) < -DECREASE_TOLERANCE):
        return None
    return np.maximum.accumulate(np.clip(values, 0.0, 1.0))


def _position(scale: Scale | None, outcome: str, kind: str) -> float:
    """The outcome's unit position, NaN when it does not parse or a closed bound rules it out."""
    if scale is None:
        return math.nan
    outcome = str(outcome).strip()
    value = outcome if outcome in (BELOW, ABOVE) else _real(outcome, kind.strip().lower() != "numeric")
    if value is None:
        return math.nan
    try:
        return float(scale.outcome_position(value))
    except ValueError:
        return math.nan


def clean_numeric(frame: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """Typed, valid rows (file order kept) and the rows dropped per reason (``DROP_REASONS``)."""
    question_id, made_at, resolved_at, closes_at = typed_keys(frame, REQUIRED_COLUMNS)
    n = len(frame)
    blank = pd.Series([""] * n, index=frame.index, dtype=object)
    kind = frame["question_type"].astype(str) if "question_type" in frame.columns else blank
    zero_point = frame["zero_point"].astype(str) if "zero_point" in frame.columns else blank
    scale_columns = [frame[c].astype(str) for c in ("range_min", "range_max", "open_lower_bound", "open_upper_bound")]
    scale_keys = list(zip(*scale_columns, zero_point, kind, strict=True))
    scales_by_key = {key: _scale(*key) for key in dict.fromkeys(scale_keys)}
    scales = pd.Series([scales_by_key[k] for k in scale_keys], index=frame.index, dtype=object)
    cdfs = pd.Series([_cdf(text) for text in frame["cdf"]], index=frame.index, dtype=object)
    positions = pd.Series(
        [_position(s, o, k) for s, o, k in zip(scales, frame["outcome"], kind, strict=True)],
        index=frame.index,
        dtype=float,
    )

    bad_date = made_at.isna() | resolved_at.isna()
    bad_scale = scales.isna()
    keep, closes_at, dropped = screen_rows(
        question_id,
        made_at,
        resolved_at,
        closes_at,
        bad_probability=bad_scale | cdfs.isna(),
        bad_outcome=positions.isna(),
    )
    scale_count = int((~bad_date & bad_scale).sum())
    dropped = {
        "unparsable_date": dropped["unparsable_date"],
        "bad_scale": scale_count,
        "bad_cdf": dropped["bad_probability"] - scale_count,
        **{k: v for k, v in dropped.items() if k not in ("unparsable_date", "bad_probability")},
    }

    clean = pd.DataFrame(
        {
            "question_id": question_id,
            "forecaster_id": frame["forecaster_id"].astype(str),
            "made_at": made_at,
            "cdf": cdfs,
            "scale": scales,
            "position": positions,
            "resolved_at": resolved_at,
            "closes_at": closes_at,
        }
    )[keep.to_numpy()]
    grouped = clean.groupby("question_id", sort=False)
    inconsistent = (
        (grouped["scale"].transform(lambda s: s.map(hash).nunique()) > 1)
        | (grouped["position"].transform("nunique") > 1)
        | (grouped["resolved_at"].transform("nunique") > 1)
    )
    clean = clean[~inconsistent.to_numpy()].reset_index(drop=True)
    return clean, {**dropped, "inconsistent_question": int(inconsistent.sum())}


def build_numeric_questions(clean: pd.DataFrame) -> list[NumericQuestion]:
    """One ``NumericQuestion`` per question of a cleaned frame, ordered by ``resolved_at`` (ties in order
    of first appearance)."""
    ordered = clean.assign(_row=np.arange(len(clean))).sort_values(["made_at", "_row"], kind="stable")
    questions = []
    for question_id, rows in ordered.groupby("question_id", sort=False):
        standing = _standing_indexes(rows["forecaster_id"].to_numpy(dtype=object))
        first = rows.iloc[0]
        questions.append(
            NumericQuestion(
                question_id=str(question_id),
                scale=first["scale"],
                position=float(first["position"]),
                forecaster_ids=rows["forecaster_id"].to_numpy(dtype=object)[standing],
                made_at=_epoch_seconds(rows["made_at"])[standing],
                cdfs=np.array([rows["cdf"].iloc[i] for i in standing], dtype=float).reshape(-1, CDF_POINTS),
                resolved_at=float(_epoch_seconds(rows["resolved_at"].iloc[:1])[0]),
                closes_at=float(_epoch_seconds(rows["closes_at"].iloc[:1])[0]),
            )
        )
    order = {q: i for i, q in enumerate(dict.fromkeys(clean["question_id"]))}
    return sorted(questions, key=lambda q: (q.resolved_at, order[q.question_id]))


# --- evaluation ---------------------------------------------------------------------------------------


def resolve_numeric_methods(methods: Iterable[str] | None) -> list[str]:
    """Every numeric method by default, or those named (deduplicated, in order); ``ValueError`` on an unknown one."""
    if methods is None:
        return list(METHODS)
    chosen = list(dict.fromkeys(m.strip() for m in methods if m.strip()))
    unknown = [m for m in chosen if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) for numeric questions: {', '.join(unknown)}; known: {', '.join(METHODS)}")
    if not chosen:
        raise ValueError(f"no method given; known: {', '.join(METHODS)}")
    return chosen


def _final_cdfs(
    names: list[str], scored: list[NumericQuestion], training: list[NumericQuestion], refits: np.ndarray, progress
) -> dict[str, dict[str, np.ndarray]]:
    """Each method's aggregate of each scored question at its end; learners walk forward along ``refits``."""
    finals: dict[str, dict[str, np.ndarray]] = {name: {} for name in names}
    for name in names:
        if name in SIMPLE_METHODS:
            for q in scored:
                finals[name][q.question_id] = np.asarray(SIMPLE_METHODS[name](q), dtype=float)
    learners = {name: LEARNERS[name]() for name in names if name in LEARNERS}
    if not learners:
        return finals
    jobs: dict[int, list[NumericQuestion]] = defaultdict(list)
    for q in {q.question_id: q for q in [*training, *scored]}.values():
        jobs[fit_index(refits, q.ends_at)].append(q)
    scored_ids = {q.question_id for q in scored}
    learnt = 0
    last = max(jobs, default=-1)
    for index in range(-1, last + 1):
        if index >= 0:
            known = int(np.searchsorted([q.resolved_at for q in training], refits[index], side="right"))
            for learner in learners.values():
                learner.learn(training[learnt:known])
            learnt = known
        for q in jobs.get(index, ()):
            for name, learner in learners.items():
                cdf = np.asarray(learner.aggregate(q), dtype=float)
                if q.question_id in scored_ids:
                    finals[name][q.question_id] = cdf
        if progress is not None:
            progress(index + 2, last + 2)
    return finals


def evaluate_numeric(
    frame: pd.DataFrame,
    *,
    since: str | date | datetime | pd.Timestamp | None = None,
    min_forecasters: int = 5,
    refit_every_days: float = 0.0,
    methods: Iterable[str] | None = None,
    progress: Progress | None = None,
    keep_predictions: bool = False,
) -> dict:
    """Causal scores of the numeric methods on a raw frame in the numeric format: ``{"questions",
    "question_type": "numeric", "causal", "causal_rule", "refits", "methods": {name: {"crps", "log"}},
    "individual": {"crps", "log"}}`` (``individual``: the forecasters' own mean scores, for reference).

    Scored: questions resolved on or after ``since`` with at least ``min_forecasters`` forecasters, in
    order of resolution. With ``keep_predictions`` the result also holds ``"predictions"``: per scored
    question its id, outcome position, end, and each method's final CDF, CRPS and log score."""
    names = resolve_numeric_methods(methods)
    clean, _ = clean_numeric(frame)
    questions = build_numeric_questions(clean)
    since_seconds = -math.inf if since is None else _timestamp_seconds(since)
    scored = [q for q in questions if q.resolved_at >= since_seconds and q.n_forecasters >= min_forecasters]
    learns = any(name in LEARNERS for name in names)
    training = [q for q in questions if q.n_forecasters >= MIN_TRAINING_FORECASTERS] if learns else []
    refits = refit_times(np.array([q.resolved_at for q in training]), refit_every_days) if learns else np.zeros(0)
    finals = _final_cdfs(names, scored, training, refits, progress)

    per_question = [
        {
            name: (
                float(continuous_scoring.crps(finals[name][q.question_id], q.position)),
                continuous_scoring.log_density(finals[name][q.question_id], q.scale, q.position),
            )
            for name in names
        }
        for q in scored
    ]
    individual = [
        (
            float(np.mean(continuous_scoring.crps(q.cdfs, q.position))),
            float(np.mean([continuous_scoring.log_density(c, q.scale, q.position) for c in q.cdfs])),
        )
        for q in scored
    ]
    result = {
        "questions": len(scored),
        "question_type": "numeric",
        "causal": True,
        "causal_rule": CAUSAL_RULE,
        "refits": len(refits),
        "methods": {name: _means([row[name] for row in per_question]) for name in names},
        "individual": _means(individual),
    }
    if keep_predictions:
        result["predictions"] = [
            {
                "question_id": q.question_id,
                "position": q.position,
                "ends_at": q.ends_at,
                "cdf": {name: finals[name][q.question_id] for name in names},
                "crps": {name: row[name][0] for name in names},
                "log": {name: row[name][1] for name in names},
            }
            for q, row in zip(scored, per_question, strict=True)
        ]
    return result


def _means(rows: list[tuple[float, float]]) -> dict[str, float]:
    if not rows:
        return {"crps": math.nan, "log": math.nan}
    values = np.array(rows, dtype=float)
    return {"crps": float(values[:, 0].mean()), "log": float(values[:, 1].mean())}


def format_numeric_table(result: dict) -> str:
    """A plain-text table of ``evaluate_numeric``'s result, best CRPS first, and the question count."""
    rows = sorted(result["methods"].items(), key=lambda item: (math.isnan(item[1]["crps"]), item[1]["crps"], item[0]))
    label = "individual forecasters (mean)"
    width = max([len("method"), len(label), *(len(name) for name, _ in rows)])
    lines = ["  ".join(["method".ljust(width), "crps".rjust(8), "log".rjust(8)])]
    for name, scores in [*rows, (label, result["individual"])]:
        lines.append("  ".join([name.ljust(width), f"{scores['crps']:.6f}".rjust(8), f"{scores['log']:.4f}".rjust(8)]))
    lines.append(f"causal walk-forward, {result.get('refits', 0)} refits: {result['causal_rule']}")
    lines.append(f"questions: {result['questions']} (numeric; crps in units of the range, lower is better)")
    return "\n".join(lines)
