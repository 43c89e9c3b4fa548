"""The walk-forward protocol: which questions are scored, when the learners refit and on what, and
the scores (Brier, log, calibration; optionally the Brier averaged over each question's life).
The rules are in ``forecasting.evaluation``'s docstring. Pure numpy/pandas: no Django import."""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import date, datetime

import numpy as np
import pandas as pd

from forecasting import aggregation, scoring

from .data import SECONDS_PER_DAY, QuestionHistory, build_histories, clean_forecasts
from .learners import AGGREGATE_HOOK, HOOK_ONLY_METHODS, LEARNERS

LOG_CLIP = (0.001, 0.999)
ECE_BINS = 10
DEFAULT_MIN_FORECASTERS = 5
DEFAULT_REFIT_EVERY_DAYS = 30
MIN_TRAINING_FORECASTERS = 2


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
    """The method names to run: every registered aggregator and the hook-only methods (``bayes``
    included) by default, or those named (deduplicated, in order); ``ValueError`` on an unknown one."""
    known = list(aggregation.AGGREGATORS)
    if methods is None:
        return [*known, *HOOK_ONLY_METHODS]
    chosen = list(dict.fromkeys(m.strip() for m in methods if m.strip()))
    unknown = [m for m in chosen if m not in aggregation.AGGREGATORS and m not in HOOK_ONLY_METHODS]
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
    refit_seconds = refit_every_days * SECONDS_PER_DAY

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
