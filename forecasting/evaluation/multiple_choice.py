"""The causal evaluation of multiple-choice questions. Pure numpy/pandas: no Django import.

Input: the multiple-choice flat format, one row per forecast::

    question_id, forecaster_id, made_at, options, probabilities, outcome, resolved_at[, closes_at]

``options`` is a JSON list of the option labels, ``probabilities`` a JSON list of one probability per
option (summing to 1), ``outcome`` the winning label. Cleaning follows the yes/no rules (dates,
after-resolution and after-close forecasts, plausible closes, conflicting rows), plus: a row whose
lists do not parse, differ in length, hold a value outside [0, 1] or do not sum to 1 (within 1%)
is a ``bad_probability``; an outcome that is not one of the options a ``bad_outcome``; a question
whose rows disagree on the options is inconsistent.

Methods: every aggregator that combines probability vectors (``mean``, ``median``,
``logodds_mean`` -- the normalised geometric mean --, ``recency_weighted_median``) on each question's
latest forecasts, and ``bayes`` (with ``bayes_model``): the yes/no model applied to each option as
the question "does this option win?", then renormalised. The model learns, walk-forward and
causally, from the options of earlier questions (``protocol.evaluate`` on the expanded yes/no rows),
so the same rules hold. Scores: the multiclass Brier (summed over options), the log score of the
winning option (clipped to ``LOG_CLIP``) and the ECE over every (question, option) probability.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable

import numpy as np
import pandas as pd

from forecasting import aggregation, scoring

from .data import _standing_indexes, screen_rows, typed_keys
from .protocol import CAUSAL_RULE, ECE_BINS, LOG_CLIP, MIN_TRAINING_FORECASTERS, evaluate

REQUIRED_COLUMNS = ("question_id", "forecaster_id", "made_at", "options", "probabilities", "outcome", "resolved_at")
VECTOR_METHODS = ("mean", "median", "logodds_mean", "recency_weighted_median")
MODEL_METHODS = ("bayes_model", "bayes")
METHODS = (*VECTOR_METHODS, *MODEL_METHODS)
SUM_TOLERANCE = 0.01
_SEPARATOR = "::option::"


def is_multiple_choice(frame: pd.DataFrame) -> bool:
    """Whether a raw frame is in the multiple-choice format (judged from its header)."""
    return "options" in frame.columns and "probabilities" in frame.columns


def _parse_row(options: str, probabilities: str, outcome: str) -> tuple[tuple[str, ...] | None, list | None, int]:
    """(labels, probabilities, winning index) with None where the lists are bad, -1 for a bad outcome."""
    try:
        labels = json.loads(options)
        values = json.loads(probabilities)
    except (TypeError, ValueError):
        return None, None, -1
    if not isinstance(labels, list) or not isinstance(values, list) or len(labels) < 2 or len(labels) != len(values):
        return None, None, -1
    if len(set(map(str, labels))) != len(labels):
        return None, None, -1
    try:
        p = [float(v) for v in values]
    except (TypeError, ValueError):
        return None, None, -1
    if not all(math.isfinite(v) and 0.0 <= v <= 1.0 for v in p) or abs(sum(p) - 1.0) > SUM_TOLERANCE:
        return tuple(map(str, labels)), None, -1
    labels = tuple(map(str, labels))
    return labels, p, labels.index(outcome) if outcome in labels else -1


def clean_multiple_choice(frame: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """Typed, valid rows (file order kept) and the rows dropped per reason (as ``clean_forecasts``)."""
    question_id, made_at, resolved_at, closes_at = typed_keys(frame, REQUIRED_COLUMNS)
    parsed = [
        _parse_row(o, p, str(w))
        for o, p, w in zip(frame["options"], frame["probabilities"], frame["outcome"], strict=True)
    ]
    labels = pd.Series([r[0] for r in parsed], index=frame.index, dtype=object)
    vectors = pd.Series([r[1] for r in parsed], index=frame.index, dtype=object)
    winner = pd.Series([r[2] for r in parsed], index=frame.index, dtype=int)

    keep, closes_at, dropped = screen_rows(
        question_id, made_at, resolved_at, closes_at, bad_probability=vectors.isna(), bad_outcome=winner < 0
    )

    clean = pd.DataFrame(
        {
            "question_id": question_id,
            "forecaster_id": frame["forecaster_id"].astype(str),
            "made_at": made_at,
            "options": labels,
            "vector": vectors,
            "outcome": winner,
            "resolved_at": resolved_at,
            "closes_at": closes_at,
        }
    )[keep.to_numpy()]
    grouped = clean.groupby("question_id", sort=False)
    inconsistent = (
        (grouped["options"].transform(lambda s: s.map(hash).nunique()) > 1)
        | (grouped["outcome"].transform("nunique") > 1)
        | (grouped["resolved_at"].transform("nunique") > 1)
    )
    clean = clean[~inconsistent.to_numpy()].reset_index(drop=True)
    return clean, {**dropped, "inconsistent_question": int(inconsistent.sum())}


def _as_binary(clean: pd.DataFrame) -> pd.DataFrame:
    """One yes/no row per (forecast, option): "does option k win?", for the model."""
    k = clean["options"].map(len).to_numpy()
    rows = clean.loc[clean.index.repeat(k)].reset_index(drop=True)
    option = np.concatenate([np.arange(n) for n in k]) if len(k) else np.zeros(0, dtype=int)
    return pd.DataFrame(
        {
            "question_id": rows["question_id"] + _SEPARATOR + pd.Series(option).astype(str),
            "forecaster_id": rows["forecaster_id"],
            "made_at": rows["made_at"],
            "probability": [v[i] for v, i in zip(rows["vector"], option, strict=True)],
            "outcome": (rows["outcome"].to_numpy() == option).astype(int),
            "resolved_at": rows["resolved_at"],
            "closes_at": rows["closes_at"],
        }
    )


def _latest_vectors(clean: pd.DataFrame) -> dict[str, np.ndarray]:
    """Per question, each forecaster's latest vector, rows oldest to newest (ties in file order)."""
    ordered = clean.assign(_row=np.arange(len(clean))).sort_values(["question_id", "made_at", "_row"], kind="stable")
    out = {}
    for question_id, rows in ordered.groupby("question_id", sort=False):
        standing = _standing_indexes(rows["forecaster_id"].to_numpy(dtype=object))
        out[question_id] = np.array([rows["vector"].iloc[i] for i in standing], dtype=float)
    return out


def evaluate_multiple_choice(
    frame: pd.DataFrame,
    *,
    min_forecasters: int = 5,
    refit_every_days: float = 0.0,
    methods: Iterable[str] | None = None,
    progress=None,
) -> dict:
    """Causal scores of the multiple-choice methods on a raw frame in the multiple-choice format:
    ``{"questions", "question_type", "causal", "causal_rule", "refits", "methods": {name: {"brier",
    "log", "ece"}}}`` (``brier`` summed over options)."""
    names = list(METHODS) if methods is None else list(dict.fromkeys(methods))
    unknown = [m for m in names if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) for multiple choice: {', '.join(unknown)}; known: {', '.join(METHODS)}")
    clean, _ = clean_multiple_choice(frame)
    latest = _latest_vectors(clean)
    meta = clean.groupby("question_id", sort=False).agg(outcome=("outcome", "first"), resolved=("resolved_at", "first"))
    scored = [q for q in meta.sort_values("resolved", kind="stable").index if len(latest[q]) >= min_forecasters]

    p_by_method: dict[str, list[np.ndarray]] = {}
    for name in names:
        if name in VECTOR_METHODS:
            p_by_method[name] = [np.asarray(aggregation.AGGREGATORS[name](latest[q]), dtype=float) for q in scored]
    model_names = [n for n in names if n in MODEL_METHODS]
    binary_result = None
    if model_names:
        binary_result = evaluate(
            _as_binary(clean),
            min_forecasters=max(min_forecasters, MIN_TRAINING_FORECASTERS),
            refit_every_days=refit_every_days,
            methods=model_names,
            progress=progress,
            keep_predictions=True,
        )
        per_option = {row["question_id"]: row["p_yes"] for row in binary_result["predictions"]}
        for name in model_names:
            vectors = []
            for q in scored:
                k = len(latest[q][0])
                p = np.array([per_option[f"{q}{_SEPARATOR}{i}"][name] for i in range(k)])
                vectors.append(p / p.sum())
            p_by_method[name] = vectors

    outcomes = [int(meta.loc[q, "outcome"]) for q in scored]
    results = {name: _scores(p_by_method[name], outcomes) for name in names}
    result = {
        "questions": len(scored),
        "question_type": "multiple_choice",
        "causal": True,
        "methods": results,
    }
    result["causal_rule"] = CAUSAL_RULE
    result["refits"] = binary_result["refits"] if binary_result is not None else 0
    return result


def _scores(vectors: list[np.ndarray], outcomes: list[int]) -> dict[str, float]:
    if not vectors:
        return {"brier": math.nan, "log": math.nan, "ece": math.nan}
    brier, log, flat_p, flat_y = [], [], [], []
    for p, winner in zip(vectors, outcomes, strict=True):
        truth = np.zeros(len(p))
        truth[winner] = 1.0
        brier.append(float(np.sum((p - truth) ** 2)))
        log.append(float(np.log(np.clip(p[winner], *LOG_CLIP))))
        flat_p.extend(p.tolist())
        flat_y.extend(truth.tolist())
    return {
        "brier": float(np.mean(brier)),
        "log": float(np.mean(log)),
        "ece": scoring.expected_calibration_error(np.clip(flat_p, 0.0, 1.0), np.array(flat_y), bins=ECE_BINS),
    }
