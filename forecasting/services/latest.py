"""Each forecaster's latest forecast on a question, packed as arrays in its ``AggregateState``.

Shared by the live aggregates (``aggregates``) and the Bayesian update (``bayesian``): a new
forecast replaces its forecaster's previous one and moves to the end (oldest first).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..continuous import CDF_POINTS
from ..models import AggregateState, Prediction, Question


def question_outcomes(question: Question, *, options: int | None = None) -> int:
    """The width of a forecast's vector: 2, the number of options (``options`` if counted already), or
    the CDF's points."""
    if question.is_binary:
        return 2
    if question.is_continuous:
        return CDF_POINTS
    return question.options.count() if options is None else options


def prediction_vector(prediction: Prediction) -> np.ndarray:
    return np.asarray(prediction.probability_vector(), dtype=float)


@dataclass
class LatestForecasts:
    """Each forecaster's latest forecast, oldest first."""

    forecaster_ids: np.ndarray
    made_at: np.ndarray
    probabilities: np.ndarray

    @classmethod
    def load(cls, state: AggregateState) -> LatestForecasts:
        ids = np.frombuffer(bytes(state.forecaster_ids), dtype=np.int64)
        made = np.frombuffer(bytes(state.made_at), dtype=np.float64)
        probs = np.frombuffer(bytes(state.probabilities), dtype=np.float64).reshape(len(ids), state.outcomes)
        return cls(ids, made, probs)

    def with_forecast(self, forecaster_id: int, made_at: float, vector: np.ndarray) -> LatestForecasts:
        keep = self.forecaster_ids != forecaster_id
        return LatestForecasts(
            np.append(self.forecaster_ids[keep], forecaster_id),
            np.append(self.made_at[keep], made_at),
            np.vstack([self.probabilities[keep], vector[None, :]]),
        )

    def store(self, state: AggregateState) -> None:
        state.forecaster_ids = self.forecaster_ids.astype(np.int64).tobytes()
        state.made_at = self.made_at.astype(np.float64).tobytes()
        state.probabilities = np.ascontiguousarray(self.probabilities, dtype=np.float64).tobytes()
