"""Fitting the model: ``fit(data, method=...)`` picks the point estimate (``map_fit``) or the full
posterior (``sampling``), and ``fit_for_evaluation`` is the model's learner in the walk-forward
evaluation (``forecasting.evaluation``). No Django import."""

from __future__ import annotations

import functools
import weakref
from collections.abc import Sequence
from typing import Any

import numpy as np

from .fitted import BayesFit, prior_fit
from .map_fit import fit_map, single_threaded_blas
from .model import MIN_TRAINING_QUESTIONS, ForecastData
from .sampling import fit_nuts


def fit(
    data: ForecastData,
    *,
    method: str = "map",
    previous: BayesFit | None = None,
    draws: int = 450,
    tune: int | None = None,
    chains: int = 2,
    random_seed: int | None = 0,
    max_iterations: int = 3000,
    max_rhat: float | None = None,
    min_ess: float | None = None,
) -> BayesFit:
    """Fit the model on resolved questions: ``method="map"`` (L-BFGS, fast) or ``"nuts"`` (PyMC).

    ``previous`` (MAP only) warm-starts the optimiser from an earlier fit: its population values
    and the parameters of the forecasters it knows.
    """
    if method == "map":
        with single_threaded_blas():  # (OpenBLAS's pool slowed the MAP 2.5x on a shared host)
            return fit_map(data, previous=previous, max_iterations=max_iterations)
    if method == "nuts":
        targets = {k: v for k, v in {"max_rhat": max_rhat, "min_ess": min_ess}.items() if v is not None}
        with single_threaded_blas():
            return fit_nuts(data, draws=draws, tune=tune, chains=chains, random_seed=random_seed, **targets)
    raise ValueError(f"unknown fit method {method!r}: 'map' or 'nuts'")


# --- walk-forward evaluation hook -------------------------------------------------------------------

_QUESTION_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_LAST_EVALUATION_FIT: dict[str, Any] = {}


def _question_rows(history) -> dict[str, np.ndarray]:
    """A resolved question's latest forecasts as model rows (cached per history object)."""
    cached = _QUESTION_CACHE.get(history)
    if cached is None:
        cached = _rows(history)
        _QUESTION_CACHE[history] = cached
    return cached


def _rows(history) -> dict[str, np.ndarray]:
    log = history.all_forecasts
    keys = np.asarray(history.forecaster_ids, dtype=object)
    first_key = log.forecaster_ids[0] if len(log.forecaster_ids) else None
    all_keys, all_counts = np.unique(np.asarray(log.forecaster_ids, dtype=object).astype(str), return_counts=True)
    counts = dict(zip(all_keys.tolist(), all_counts.tolist(), strict=True))
    return {
        "keys": keys,
        "p": np.asarray(history.probabilities, dtype=float)[:, 1],
        # The clock is the close date (``clock_at``), as the product reads an open question: never
        # the resolution date, which nobody knows in advance (causal evaluation).
        "t": np.maximum(history.clock_at - np.asarray(history.made_at, dtype=float), 0.0),
        "life": max(history.clock_at - float(log.made_at[0]), 0.0) if len(log.made_at) else 0.0,
        "opener": np.array([first_key is not None and k == first_key for k in keys], dtype=bool),
        "revisions": np.array([counts[str(k)] - 1 for k in keys], dtype=float),
    }


def data_from_histories(histories: Sequence) -> ForecastData:
    """``ForecastData`` of resolved ``evaluation.QuestionHistory`` objects (latest forecasts)."""
    rows = [_question_rows(h) for h in histories]
    sizes = [len(r["p"]) for r in rows]

    def cat(name, dtype=float):
        return np.concatenate([r[name] for r in rows]).astype(dtype) if rows else np.zeros(0, dtype)

    return ForecastData(
        question_index=np.repeat(np.arange(len(rows)), sizes),
        forecaster_key=cat("keys", object),
        probability=cat("p"),
        seconds_to_resolution=cat("t"),
        outcome=np.array([h.outcome_index for h in histories], dtype=np.int64),
        life_seconds=np.array([r["life"] for r in rows], dtype=float),
        opener=cat("opener", bool),
        revisions=cat("revisions"),
        n_questions=len(rows),
    )


def aggregate_history(result: BayesFit, history) -> np.ndarray:
    """``[P(no), P(yes)]`` of a question history at its resolution (the evaluation's final aggregate)."""
    rows = _rows(history)
    first = history.all_forecasts.forecaster_ids[0] if len(history.all_forecasts.forecaster_ids) else None
    p_yes, _, _ = result.aggregate(
        rows["keys"],
        rows["p"],
        rows["t"],
        life_seconds=rows["life"],
        opener_key=first,
        revisions=rows["revisions"],
        interval=False,
    )
    return np.array([1.0 - p_yes, p_yes])


def fit_for_evaluation(training: list) -> dict:
    """Learner for ``evaluation.LEARNERS``: a MAP fit on the training questions.

    Warm-starts from the previous call's fit when that fit's questions are a prefix of these (the
    walk-forward refits); below ``MIN_TRAINING_QUESTIONS`` questions it uses the prior.
    """
    if len(training) < MIN_TRAINING_QUESTIONS:
        result = prior_fit()
    else:
        ids = [h.question_id for h in training]
        previous = _LAST_EVALUATION_FIT.get("fit")
        previous_ids = _LAST_EVALUATION_FIT.get("ids")
        if previous_ids is None or len(previous_ids) > len(ids) or ids[: len(previous_ids)] != previous_ids:
            previous = None
        result = fit(data_from_histories(training), method="map", previous=previous)
        _LAST_EVALUATION_FIT.update(fit=result, ids=ids)
    return {"__aggregate__": functools.partial(aggregate_history, result)}
