"""Each forecaster's latest forecast on a question, packed as arrays in its ``AggregateState``.

Shared by the live aggregates (``aggregates``) and the Bayesian update (``bayesian``): a new
forecast replaces its forecaster's previous one and moves to the end (oldest first).

The stored arrays are a checkpoint: ``state.last_prediction`` is the newest forecast folded into them,
and the forecasts aggregated since (at most ``CHECKPOINT_EVERY``, found through their snapshots' unique
index) are folded in when the state is loaded. Writing the arrays back costs O(forecasters) bytes (320 kB
at 10,000 forecasters: ~20 ms of TOAST and WAL), so a new forecast writes them once every
``CHECKPOINT_EVERY`` forecasts instead of every time. Folding the same forecasts twice changes nothing
(a suffix of the forecasts, applied in order, leaves every forecaster at its place), so a checkpoint that
lags is never wrong.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..continuous import CDF_POINTS
from ..models import AggregateSnapshot, AggregateState, Prediction, Question

CHECKPOINT_EVERY = 32  # forecasts folded at load before the arrays are written back
# A method whose snapshot every forecast writes (``aggregates.method_names``): the tail is found through it.
TAIL_METHOD = {"binary": "mean", "continuous": "linear_pool"}


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


def tail_forecasts(state: AggregateState) -> list[tuple[int, float, np.ndarray]]:
    """The forecasts aggregated after the state's checkpoint, in the order they came (by id: forecasts are
    written under the question's lock), as (forecaster id, made at, vector)."""
    if state.pk is None or state._state.adding:
        return []
    method = TAIL_METHOD["continuous" if state.outcomes == CDF_POINTS else "binary"]
    # Ordered like the snapshots' unique index (question, method, prediction): a range scan of the few new rows.
    rows = (
        AggregateSnapshot.objects.filter(
            question_id=state.question_id, method=method, prediction_id__gt=state.last_prediction_id or 0
        )
        .order_by("prediction_id")
        .values_list(
            "prediction__forecaster_id",
            "prediction__made_at",
            "prediction__probability",
            "prediction__option_probabilities",
            "prediction__cdf",
        )
    )
    forecasts = []
    for forecaster_id, made_at, probability, options, cdf in rows:
        stored = Prediction(probability=probability, option_probabilities=options, cdf=cdf)  # for its vector
        forecasts.append((forecaster_id, made_at.timestamp(), prediction_vector(stored)))
    return forecasts


@dataclass
class LatestForecasts:
    """Each forecaster's latest forecast, oldest first."""

    forecaster_ids: np.ndarray
    made_at: np.ndarray
    probabilities: np.ndarray

    @classmethod
    def unpack(cls, state: AggregateState) -> LatestForecasts:
        """The stored arrays alone (the checkpoint)."""
        ids = np.frombuffer(bytes(state.forecaster_ids), dtype=np.int64)
        made = np.frombuffer(bytes(state.made_at), dtype=np.float64)
        probs = np.frombuffer(bytes(state.probabilities), dtype=np.float64).reshape(len(ids), state.outcomes)
        return cls(ids, made, probs)

    @classmethod
    def load(cls, state: AggregateState) -> LatestForecasts:
        """The question's latest forecasts now: the checkpoint and the forecasts aggregated since."""
        latest, _ = cls.load_with_tail(state)
        return latest

    @classmethod
    def load_with_tail(cls, state: AggregateState) -> tuple[LatestForecasts, int]:
        """``load`` and how many forecasts it folded past the checkpoint."""
        tail = tail_forecasts(state)
        return cls.unpack(state).with_forecasts(tail), len(tail)

    def with_forecasts(self, forecasts: list[tuple[int, float, np.ndarray]]) -> LatestForecasts:
        """``with_forecast`` for each (forecaster id, made at, vector) in order, in one pass."""
        if not forecasts:
            return self
        last: dict[int, tuple[float, np.ndarray]] = {}
        for forecaster_id, made_at, vector in forecasts:
            last.pop(forecaster_id, None)  # re-inserted last: dicts keep insertion order
            last[forecaster_id] = (made_at, vector)
        ids = np.fromiter(last, dtype=np.int64, count=len(last))
        keep = ~np.isin(self.forecaster_ids, ids)
        return LatestForecasts(
            np.concatenate([self.forecaster_ids[keep], ids]),
            np.concatenate([self.made_at[keep], np.array([made for made, _ in last.values()])]),
            np.vstack([self.probabilities[keep], *(vector[None, :] for _, vector in last.values())]),
        )

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
