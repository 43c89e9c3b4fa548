"""Convergence diagnostics of NUTS draws: arviz's rank-normalised split R-hat and bulk ESS, computed
for thousands of parameters at once (arviz does one at a time), the worst ones then by arviz itself.
Pure numpy/scipy (arviz for the final figures): no Django import."""

from __future__ import annotations

import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from scipy.fft import next_fast_len
from scipy.special import ndtri

from .model import FORECASTER_PARAMS

_DIAGNOSTIC_CHUNK = 512  # parameters per task of rhat_ess


def rhat_ess(trace: dict[str, np.ndarray], nf: int) -> tuple[float, float]:
    """Largest rank-normalised split R-hat and smallest bulk ESS (arviz) over the model's parameters:
    the globals (the MAP vector) and every forecaster effect (padding slots left out).

    arviz computes these one parameter at a time (seconds for thousands); ``_rank_diagnostics``
    computes arviz's formulas for all parameters at once, and the worst few are then recomputed
    with arviz itself, whose figures are the ones returned."""
    import arviz as az  # deferred: a 1.7 s import that only NUTS fits need

    columns = [np.asarray(trace["theta"])]
    columns += [np.asarray(trace[name])[..., :nf] for name in FORECASTER_PARAMS]
    stacked = np.concatenate([c.reshape(c.shape[0], c.shape[1], -1) for c in columns], axis=-1)
    # The parameters in chunks on two threads (numpy's sorts, FFTs and ufuncs release the GIL); small
    # chunks keep the work arrays in cache and reuse their memory (fresh pages cost more than the sorts)
    chunks = np.array_split(np.arange(stacked.shape[-1]), max(1, -(-stacked.shape[-1] // _DIAGNOSTIC_CHUNK)))
    with ThreadPoolExecutor(max_workers=2) as pool:
        parts = list(pool.map(lambda cols: _rank_diagnostics(stacked[..., cols]), chunks))
    rhat, ess = np.concatenate([part[0] for part in parts]), np.concatenate([part[1] for part in parts])
    worst_rhat = np.argsort(-np.nan_to_num(rhat, nan=np.inf))[:5]
    worst_ess = np.argsort(np.nan_to_num(ess, nan=-np.inf))[:5]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        max_rhat = np.asarray(az.rhat(stacked[..., worst_rhat], chain_axis=0, draw_axis=1))
        min_ess = np.asarray(az.ess(stacked[..., worst_ess], chain_axis=0, draw_axis=1, method="bulk"))
        return float(np.nanmax(max_rhat)), float(np.nanmin(min_ess))


def _rank_diagnostics(draws: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """arviz's rank-normalised split R-hat (bulk and tail) and bulk ESS of every column of
    ``draws`` (chains, draws, parameters), vectorised over the parameters."""
    chains, n_draws, p = draws.shape
    half = n_draws // 2
    split = np.concatenate([draws[:, :half], draws[:, n_draws - half :]], axis=0)  # (2 chains, half, p)

    def z_scale(x):
        flat = x.reshape(-1, p)
        rank = _average_ranks(np.ascontiguousarray(flat.T)).T
        return ndtri((rank - 0.375) / (flat.shape[0] + 0.25)).reshape(x.shape)

    def rhat(x):
        n = x.shape[1]
        between = n * np.var(x.mean(axis=1), axis=0, ddof=1)
        within = np.var(x, axis=1, ddof=1).mean(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.sqrt((between / within + n - 1) / n)

    z = z_scale(split)
    folded = np.abs(split - np.median(split.reshape(-1, p), axis=0))
    r = np.maximum(rhat(z), rhat(z_scale(folded))) if chains > 1 else np.full(p, np.nan)  # arviz: 2+ chains
    return r, _ess(z)


def _average_ranks(rows: np.ndarray) -> np.ndarray:
    """``scipy.stats.rankdata(rows, method="average", axis=1)`` with one sort per row. Tied values (a
    rejected NUTS transition repeats a draw) get the mean of their group's positions: each sorted
    position's group start is a running maximum of the starts, its group end one from the right."""
    order = np.argsort(rows, axis=1)
    n = rows.shape[1]
    ordered = np.take_along_axis(rows, order, axis=1)
    position = np.arange(n)
    first = np.ones(rows.shape, dtype=bool)
    first[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    last = np.ones(rows.shape, dtype=bool)
    last[:, :-1] = first[:, 1:]
    start = np.maximum.accumulate(np.where(first, position, 0), axis=1)
    end = (n - 1) - np.maximum.accumulate(np.where(last[:, ::-1], position, 0), axis=1)[:, ::-1]
    rank = np.empty(rows.shape)
    np.put_along_axis(rank, order, 0.5 * (start + end) + 1.0, axis=1)
    return rank


def _ess(x: np.ndarray) -> np.ndarray:
    """arviz's ``_ess`` (Geyer's initial monotone sequence) of every column of x (chains, draws, p)."""
    m, n, p = x.shape
    centred = x - x.mean(axis=1, keepdims=True)
    size = next_fast_len(2 * n)
    spectrum = np.fft.rfft(centred, n=size, axis=1)
    acov = np.fft.irfft(spectrum * np.conjugate(spectrum), n=size, axis=1)[:, :n] / n
    mean_var = acov[:, 0].mean(axis=0) * n / (n - 1.0)
    var_plus = mean_var * (n - 1.0) / n + (np.var(x.mean(axis=1), axis=0, ddof=1) if m > 1 else 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = 1.0 - (mean_var - acov.mean(axis=0)) / var_plus  # (n, p)
    rho_hat = np.zeros((n, p))
    rho_hat[0], rho_hat[1] = 1.0, rho[1]
    even, odd = np.ones(p), rho[1].copy()
    active = even + odd > 0
    t_end = np.ones(p, dtype=np.int64)
    for t in range(1, n - 3, 2):  # Geyer's initial positive sequence
        even = np.where(active, rho[t + 1], even)
        odd = np.where(active, rho[t + 2], odd)
        keep = active & (even + odd >= 0)
        rho_hat[t + 1] = np.where(keep, even, rho_hat[t + 1])
        rho_hat[t + 2] = np.where(keep, odd, rho_hat[t + 2])
        t_end = np.where(active, t + 2, t_end)
        active &= even + odd > 0
    max_t = t_end - 2
    cols = np.arange(p)
    improve = (even > 0) & (max_t + 1 < n)
    rho_hat[np.minimum(max_t + 1, n - 1)[improve], cols[improve]] = even[improve]
    for t in range(1, n - 2, 2):  # Geyer's initial monotone sequence
        inside = t <= max_t - 2
        pair_now, pair_before = rho_hat[t + 1] + rho_hat[t + 2], rho_hat[t - 1] + rho_hat[t]
        fix = inside & (pair_now > pair_before)
        rho_hat[t + 1] = np.where(fix, pair_before / 2.0, rho_hat[t + 1])
        rho_hat[t + 2] = np.where(fix, rho_hat[t + 1], rho_hat[t + 2])
    cumulative = np.cumsum(rho_hat, axis=0)
    upto = cumulative[np.clip(max_t, 0, n - 1), cols] * (max_t >= 0)
    after = np.where(max_t + 1 < n, rho_hat[np.minimum(max_t + 1, n - 1), cols], 0.0)
    total = m * n
    tau = np.maximum(-1.0 + 2.0 * upto + after, 1.0 / np.log10(total))
    ess = total / tau
    ess[np.isnan(rho_hat).any(axis=0)] = np.nan
    constant = (x.max(axis=(0, 1)) - x.min(axis=(0, 1))) < np.finfo(float).resolution
    ess[constant] = total
    return ess
