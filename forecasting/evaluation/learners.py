"""The methods that learn, for the walk-forward evaluation: ``LEARNERS[name](training) -> dict``
(the contract is in ``forecasting.evaluation``'s docstring): the extremized log-odds mean's
factor, the skill-weighted log-odds mean (``skill_weighted``) and the Bayesian model
(``forecasting.bayes``). The last two are not ``aggregation.AGGREGATORS`` (the app's per-forecast
aggregates): they need forecaster ids and forecast times, so the evaluation runs them through
their aggregate hooks (``AGGREGATE_HOOK``). No Django import."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from forecasting import aggregation, bayes

from .data import SECONDS_PER_DAY, QuestionHistory
from .skill_weighted import TrackRecords, Weighting, combine, fit_weighting

AGGREGATE_HOOK = "__aggregate__"
# Run only through their hooks (``bayes_model`` is the model alone; ``bayes`` the stack shown to readers).
HOOK_ONLY_METHODS = ("skill_weighted_logodds", "bayes_model", "bayes")


Learner = Callable[[list[QuestionHistory]], dict]


def fit_extremized_logodds(training: list[QuestionHistory]) -> dict:
    """The extremizing factor that minimises the log loss on the training questions."""
    return {
        "factor": aggregation.fit_extremizing_factor(
            [q.mean_log_probabilities for q in training],
            [q.outcome_index for q in training],
        )
    }


def _weighting_rows(history: QuestionHistory, records: TrackRecords) -> dict[str, np.ndarray]:
    made = np.asarray(history.made_at, dtype=float)
    return {
        "p": history.probabilities[:, 1],
        "age_days": (made.max() - made) / SECONDS_PER_DAY if len(made) else made,
        "days_to_resolution": np.maximum(history.clock_at - made, 0.0) / SECONDS_PER_DAY,
        "brier": records.brier(history.forecaster_ids),
    }


def _skill_weighted_aggregate(weighting: Weighting, records: TrackRecords, history: QuestionHistory) -> np.ndarray:
    rows = _weighting_rows(history, records)
    p = combine(rows["p"], rows["age_days"], rows["days_to_resolution"], rows["brier"], weighting)
    return np.array([1.0 - p, p])


def fit_skill_weighted_logodds(training: list[QuestionHistory]) -> dict:
    """Learner of ``skill_weighted_logodds`` (``skill_weighted``): each training
    question is weighted with the track records as they stood before it resolved (questions that
    resolved at the same moment do not see each other), and the aggregate of a question uses the
    records of every training question."""
    training = sorted(training, key=lambda h: h.resolved_at)  # stable: ties keep their order
    records = TrackRecords()
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
    weighting = fit_weighting(rows, outcomes)
    return {AGGREGATE_HOOK: functools.partial(_skill_weighted_aggregate, weighting, records)}


LEARNERS: dict[str, Learner] = {
    "extremized_logodds": fit_extremized_logodds,
    "bayes_model": bayes.fit_for_evaluation,
    "skill_weighted_logodds": fit_skill_weighted_logodds,
}


@dataclass(frozen=True)
class Stacked:
    """A method that combines other methods' aggregates with weights learnt from their out-of-sample
    record: ``fit(p, outcomes) -> parameters`` on the inputs' final P(YES) of earlier questions (n, k),
    ``combine(p_inputs, parameters) -> P(YES)``."""

    inputs: tuple[str, ...]
    fit: Callable[[np.ndarray, np.ndarray], dict]
    combine: Callable[[np.ndarray, dict], float]


def _fit_bayes_stack(p: np.ndarray, outcomes: np.ndarray) -> dict:
    return {"stack": bayes.fit_stack(p, outcomes)}


def _combine_bayes_stack(p: np.ndarray, parameters: dict) -> float:
    return parameters["stack"].combine(p)


# ``bayes`` is what readers see: the model stacked with the log-odds mean (``bayes.stacking``).
STACKED: dict[str, Stacked] = {
    "bayes": Stacked(inputs=("bayes_model", "logodds_mean"), fit=_fit_bayes_stack, combine=_combine_bayes_stack),
}
