"""Training data arranged for the likelihood: resolved questions' standing forecasts in row order,
grouped by forecast count into padded blocks for the Kalman scans (``graph.loglik_graph``) and
regrouped for the numba kernel (``kernel_op.block_values``). Pure numpy: no Django import."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

import numpy as np

from .model import N_BUCKETS, ForecastData, covariates, key_codes, life_fraction, to_scale

_STEP_COST = 600.0  # relative cost of a filter step vs one padded element, for choosing the blocks


@dataclass
class TrainingLayout:
    """Training data arranged for the bucketed Kalman scans."""

    x: np.ndarray
    forecaster: np.ndarray
    f: np.ndarray
    z: np.ndarray
    prev: np.ndarray
    buckets: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]
    keys: list[Hashable]
    counts: np.ndarray


def _choose_buckets(counts: np.ndarray, n_buckets: int) -> list[tuple[int, int]]:
    """Split the questions' forecast counts into contiguous ranges minimising the padded cost."""
    values = np.unique(counts)
    nv = len(values)
    b_max = min(n_buckets, nv)
    upto = np.array([(counts <= v).sum() for v in values])

    def cost(i: int, j: int) -> float:
        questions = upto[j] - (upto[i - 1] if i else 0)
        return float(questions * values[j] + _STEP_COST * values[j])

    best = np.full((b_max + 1, nv), np.inf)
    arg = np.zeros((b_max + 1, nv), dtype=int)
    for j in range(nv):
        best[1, j] = cost(0, j)
    for b in range(2, b_max + 1):
        for j in range(nv):
            for i in range(1, j + 1):
                c = best[b - 1, i - 1] + cost(i, j)
                if c < best[b, j]:
                    best[b, j], arg[b, j] = c, i
    b = int(np.argmin(best[1:, nv - 1])) + 1
    ranges, j = [], nv - 1
    while b >= 1:
        i = arg[b, j] if b > 1 else 0
        ranges.append((int(values[i]), int(values[j])))
        j, b = i - 1, b - 1
    return ranges[::-1]


def training_layout(data: ForecastData) -> TrainingLayout:
    if data.outcome is None:
        raise ValueError("fitting needs the outcome of every question")
    data = data.standing()
    order = np.arange(data.n_forecasts)  # standing() rows are ordered
    q = data.question_index[order]
    keys_sorted = data.forecaster_key[order]
    forecaster, uniq = key_codes(keys_sorted, with_keys=True)
    n = len(order)
    counts = np.bincount(q, minlength=data.n_questions)
    starts = np.r_[0, np.cumsum(counts)[:-1]]
    position = np.arange(n) - starts[q]
    prev = np.arange(n, dtype=np.int64)
    prev[position > 0] = np.flatnonzero(position > 0) - 1
    f = life_fraction(data.seconds_to_resolution[order], data.life_seconds[q])
    z = covariates(
        data.opener[order], position.astype(float), data.revisions[order], f, data.seconds_to_resolution[order]
    )
    last = starts + counts - 1
    buckets = []
    present = counts[counts > 0]
    ranges = _choose_buckets(present, N_BUCKETS) if len(present) else []
    for lo, hi in ranges:
        qs = np.flatnonzero((counts >= lo) & (counts <= hi))
        idx = np.full((hi, len(qs)), n, dtype=np.int64)  # n: a padding cell
        mask = np.zeros((hi, len(qs)))
        for col, qq in enumerate(qs):
            c = counts[qq]
            idx[:c, col] = np.arange(starts[qq], starts[qq] + c)
            mask[:c, col] = 1.0
        buckets.append((idx, mask, last[qs].astype(np.int64), data.outcome[qs].astype(float)))
    while len(buckets) < N_BUCKETS:  # empty blocks keep one compiled function for every data set
        buckets.append((np.full((1, 0), n, dtype=np.int64), np.zeros((1, 0)), np.zeros(0, np.int64), np.zeros(0)))
    return TrainingLayout(
        x=to_scale(data.probability[order]),
        forecaster=forecaster,
        f=f,
        z=z,
        prev=prev,
        buckets=buckets,
        keys=uniq,
        counts=np.bincount(forecaster, minlength=len(uniq)),
    )
