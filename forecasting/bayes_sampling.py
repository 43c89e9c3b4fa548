"""Full-posterior fits of the Bayesian model (``forecasting.bayes``) with NUTS, and a point estimate for
very large data. No Django import.

The model is ``bayes``'s (its likelihood, priors and constants are read from there); what is here is
how to sample it fast (issue 4: 2,000 forecasters x 500 questions x 100,000 forecasts):

- Likelihood: the Kalman filters run in one numba kernel with its reverse pass written out
  (``blocked_loglik``: questions side by side in blocks, one pass per block, no allocation per
  forecast) instead of ``pytensor.scan``. It is the same function as ``bayes._loglik_graph``: once
  per process ``likelihood_check`` compares value and gradient at random points, and if they differ
  (the model changed in ``bayes``) the sampler uses ``bayes._loglik_graph`` itself.
- Sampler: nutpie (Rust NUTS, chains in threads: works in a daemonic prefork Celery worker, where
  ``pm.sample(cores>1)`` cannot fork) on a PyMC model compiled by numba. Without nutpie, PyMC's NUTS
  on one core.
- Compiled once per process and capacity: the data are ``pm.Data`` (swapped with nutpie's
  ``with_data``) and the forecasters are padded up to a capacity (``_capacity``: powers of sqrt 2);
  ``warm_up`` compiles at worker start.
- Geometry (measured on the bench data; none of it changes the posterior): forecaster effects
  centred or not by how much data inform them, and sheared so that no effect moves with the
  covariate slopes or the latent's level (``_build_model``); chains start from a point estimate
  (``_estimate``) with the global parameters whitened there (``_whitening``).
- Diagnostics: arviz's rank-normalised split R-hat and bulk ESS over every model parameter,
  computed for all at once (``_rank_diagnostics``) and the worst ones by arviz itself.

``fast_loglik_graph`` with ``block_tensors``/``block_values`` can stand in for ``bayes._loglik_graph``
in any pytensor graph (``bayes``'s MAP objective uses it).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import math
import os
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numba
import numpy as np
from scipy.special import ndtri

from forecasting import bayes
from forecasting.bayes import (
    _FORECASTER_PARAMS,
    _GLOBALS,
    _SLOPE_SD,
    _TAU_RATE,
    _TAU_SHAPE,
    N_COV,
    BayesFit,
    ForecastData,
    _Layout,
    _layout,
    _population_from_vector,
)

logger = logging.getLogger(__name__)

MIN_CAPACITY = 64  # forecaster slots of the smallest compiled model
CENTRE_MIN_FORECASTS = 10  # a forecaster effect is centred when this many forecasts inform it
TARGET_ACCEPT = 0.6  # data-rich fits (measured on the bench data: fewer leapfrog steps, no divergence)
TARGET_ACCEPT_SPARSE = 0.9  # sparse data: funnels in the hierarchy want small steps
# Chains started at the mode (data-rich fits), in coordinates of about unit scale (``_effect_whitening``,
# ``_whitening``); measured on the bench data (2,000 x 500 x 100,000):
START_OFFSET = 1.0  # each coordinate starts one (Laplace) sd from the mode, up or down at random
INITIAL_STEP = 0.25  # the step size NUTS settles at there (nutpie's default start, 0.1, costs deep early trees)
# 15 leapfrog steps at most: the draws take 15 (a U-turn at step ~0.24); deeper trees came only in the warm-up
MAX_TREE_DEPTH = 4
TUNE_FROM_MODE = 40  # tuning draws from the mode (with 80 and without the unit scales, one seed in two failed r-hat)
TUNE_FROM_PRIOR = 500
_DIAGNOSTIC_CHUNK = 512  # parameters per task of _rhat_ess
# L-BFGS iterations towards the mode before sampling (a start: the warm-up does the rest). With 120 the
# start could be short of the mode in (log q, log q_event): negative curvature there, and an ESS of 60
# on one bench seed of eight. Run to convergence (about 260), the joint mode's small tau_a slowed
# log tau_a instead (ESS 95-130).
INIT_ITERATIONS = 200
_TAUS = {"log_alpha": "tau_a", "bias": "tau_b", "log_sigma": "tau_s"}


# --- the likelihood kernel ----------------------------------------------------------------------

_LOG_2PI = math.log(2.0 * math.pi)
_SQRT2 = math.sqrt(2.0)
LANES = 8  # questions filtered side by side (independent recursions keep the CPU's pipelines full)
_LOG_EVERY = 8  # filter steps between two logarithms of the running product of prediction variances
_E_MAX = 1e30  # cap on a forecast's noise variance (see blocked_loglik)
_TINY = 1e-250  # adjoints below this are flushed to 0 (subnormal arithmetic is slow)
_FASTMATH = {"contract", "arcp", "nsz", "reassoc"}  # no "nnan"/"ninf": infinities keep their meaning
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_INV_LN2 = 1.0 / math.log(2.0)
_TWO_POW = np.array([math.ldexp(1.0, k) for k in range(-1074, 1024)])
_EXP_C = tuple(1.0 / math.factorial(i) for i in range(14))


@numba.njit(inline="always", fastmath={"contract"})
def _exp(x):
    """exp(x) to ~1 ulp for x <= 709 (larger x give exp(709)), in a form the compiler vectorises."""
    x = min(max(x, -745.0), 709.0)
    kf = math.floor(x * _INV_LN2 + 0.5)
    r = (x - kf * _LN2_HI) - kf * _LN2_LO
    c = _EXP_C
    p = c[13]
    p = p * r + c[12]
    p = p * r + c[11]
    p = p * r + c[10]
    p = p * r + c[9]
    p = p * r + c[8]
    p = p * r + c[7]
    p = p * r + c[6]
    p = p * r + c[5]
    p = p * r + c[4]
    p = p * r + c[3]
    p = p * r + c[2]
    p = p * r + c[1]
    p = p * r + c[0]
    return p * _TWO_POW[int(kf) + 1074]


@numba.njit(nogil=True, cache=True)
def _log_ndtr_ratio(z):
    if z > -30.0:
        logp = math.log(0.5 * math.erfc(-z / _SQRT2))
        return logp, math.exp(-0.5 * z * z - 0.5 * _LOG_2PI - logp)
    w = 1.0 / (z * z)
    series = 1.0 - w * (1.0 - w * (3.0 - w * (15.0 - 105.0 * w)))
    return -0.5 * z * z - 0.5 * _LOG_2PI - math.log(-z) + math.log(series), -z / series


def blocked_layout(start, x, forecaster, z, f, lanes=LANES):
    """The rows of questions (question i: rows ``start[i]:start[i+1]``, oldest first) rearranged for
    ``blocked_loglik``: questions sorted by length and taken ``lanes`` at a time; block b's cell
    ``boffset[b] + j * lanes + l`` holds forecast j of the block's question l (``bactive`` 0 where that
    question has fewer forecasts). ``bz`` is transposed (covariate, cell); ``blogf`` is log f;
    ``bcount``/``bquestion``: each slot's forecast count and question (-1: an empty slot)."""
    counts = np.diff(start)
    nq = len(counts)
    order = np.argsort(-counts, kind="stable")
    nb = -(-nq // lanes)
    slot_q = np.full(nb * lanes, -1, dtype=np.int64)
    slot_q[:nq] = order
    slot_count = np.zeros(nb * lanes, dtype=np.int64)
    slot_count[:nq] = counts[order]
    length = slot_count.reshape(nb, lanes).max(axis=1)
    offset = np.r_[0, np.cumsum(length * lanes)].astype(np.int64)
    n_pad = int(offset[-1])
    src = np.full(n_pad, -1, dtype=np.int64)
    for b in range(nb):
        for ln in range(lanes):
            s = b * lanes + ln
            c = slot_count[s]
            if c:
                q = slot_q[s]
                src[offset[b] + np.arange(c) * lanes + ln] = start[q] + np.arange(c)
    real = src >= 0
    take = np.where(real, src, 0)
    return {
        "bx": np.where(real, x[take], 0.0),
        "bforecaster": np.where(real, forecaster[take], 0).astype(np.int64),
        "bz": np.ascontiguousarray(np.where(real[:, None], z[take], 0.0).T),
        "blogf": np.where(real, np.log(f[take]), 0.0),
        "bactive": real.astype(np.float64),
        "boffset": offset,
        "bcount": slot_count,
        "bquestion": slot_q,
    }


def slot_outcomes(slot_q, y):
    """Each question slot's outcome (0 for an empty slot)."""
    return np.where(slot_q >= 0, y[np.maximum(slot_q, 0)], 0.0)


@numba.njit(nogil=True, cache=True, fastmath=_FASTMATH)
def blocked_loglik(la, bias, ls, gb, gs, glob, scale, log_weight, fw, bx, bf, bz, blogf, bactive, boffset, bcount, by):
    """``bayes._loglik_graph`` and its gradient, the Kalman filters' reverse pass written out.

    Parameters: per forecaster ``la`` (log alpha), ``bias``, ``ls`` (log sigma);
    the covariate slopes ``gb``, ``gs``; ``glob`` = (m0, s0^2, q, kappa, q_event, eta); the volatility
    nodes' multipliers ``scale`` and prior log weights; ``fw`` the forecasts' weight. Data: the
    ``blocked_layout`` arrays and ``by``, each slot's outcome.

    Per cell: r = q f^kappa, alpha = exp(la) sqrt((1 + eta) / (f^kappa + eta)) (``bayes.loading``),
    beta = bias + z . gb, e = exp(2 (ls + z . gs)), d = max(r_prev - r, 0) + q_event after a
    question's first forecast. Per question and node: a scalar Kalman filter from N(m0, s0^2) (d and r
    scaled by the node's multiplier) gives the forecasts' prediction-error log density ll and the
    outcome's log Phi(+-m / sqrt(v + r_last)); the question's term is logsumexp over nodes of
    (log weight + fw ll + log Phi).

    Returns ``head`` = (loglik, d/dm0, d/d(s0^2), d/dq, d/dkappa, d/dq_event, d/deta) and the
    gradients with respect to la, bias, ls, gb, gs, scale. Each block's work space stays in cache; the passes
    are A (per cell quantities), B (filters), C (reverse), D (to the parameters)."""
    nb = boffset.shape[0] - 1
    lanes = bcount.shape[0] // nb
    ncov = bz.shape[0]
    nk = scale.shape[0]
    nfc = la.shape[0]
    m0, v0, q, kappa, q_event, eta = glob[0], glob[1], glob[2], glob[3], glob[4], glob[5]
    one_eta = 1.0 + eta
    ea = np.empty(nfc)
    es = np.empty(nfc)
    for j in range(nfc):  # _exp: vectorised (libm's exp is called one value at a time)
        ea[j] = _exp(la[j])
        es[j] = _exp(2.0 * ls[j])
    cells = 0
    for b in range(nb):
        cells = max(cells, boffset[b + 1] - boffset[b])
    alpha = np.empty(cells)
    beta = np.empty(cells)
    zs = np.empty(cells)
    e = np.empty(cells)
    r = np.empty(cells)
    d = np.empty(cells)
    M = np.empty((nk, cells))
    VV = np.empty((nk, cells))
    INV = np.empty((nk, cells))
    INN = np.empty((nk, cells))
    g_alpha = np.empty(cells)
    g_beta = np.empty(cells)
    g_e = np.empty(cells)
    g_d = np.empty(cells)
    g_rc = np.empty(cells)
    inv_re = np.empty(cells)  # 1 / (f^kappa + eta)
    tmp = np.empty(cells)
    node = np.empty((nk, lanes))
    node_m = np.empty((nk, lanes))
    node_v = np.empty((nk, lanes))
    wts = np.empty((nk, lanes))
    r_last = np.empty(lanes)
    m = np.empty(lanes)
    v = np.empty(lanes)
    ll = np.empty(lanes)
    prod = np.empty(lanes)
    bm = np.empty(lanes)
    bv = np.empty(lanes)
    bll = np.empty(lanes)
    g_par = np.zeros(3 * nfc)  # d/d (la, bias, ls) of forecaster j at 3j, 3j + 1, 3j + 2
    g_gb = np.zeros(ncov)
    g_gs = np.zeros(ncov)
    g_scale = np.zeros(nk)
    g_m0 = 0.0
    g_v0 = 0.0
    g_q = 0.0
    g_kappa = 0.0
    g_qe = 0.0
    g_eta = 0.0
    total = 0.0
    for b in range(nb):
        base = boffset[b]
        n_cells = boffset[b + 1] - base
        length = n_cells // lanes
        # Block views, indexed by loop counters: numba then knows the index is not negative and
        # skips its wraparound check on every access (15% of the kernel's time).
        bxb = bx[base : base + n_cells]
        bfb = bf[base : base + n_cells]
        blogfb = blogf[base : base + n_cells]
        bactb = bactive[base : base + n_cells]
        # A: per-cell quantities
        for i in range(n_cells):
            j = bfb[i]
            alpha[i] = ea[j]
            beta[i] = bias[j]
            e[i] = es[j]
            zs[i] = 0.0
        for c in range(ncov):
            gbc = gb[c]
            gsc = gs[c]
            zrow = bz[c, base : base + n_cells]
            for i in range(n_cells):
                zc = zrow[i]
                beta[i] += zc * gbc
                zs[i] += zc * gsc
        for i in range(n_cells):
            zs[i] = _exp(2.0 * zs[i])
        for i in range(n_cells):
            r[i] = _exp(kappa * blogfb[i])
        for i in range(n_cells):
            # Capped (sd 1e15 on the log-odds: only an optimiser's wild trial step gets there) so
            # that the running product of _LOG_EVERY prediction variances stays finite.
            e[i] = min(e[i] * zs[i], _E_MAX)
        # the loading (bayes.loading): two loops, so that the square roots vectorise (2x faster)
        for i in range(n_cells):
            inv_re[i] = 1.0 / (r[i] + eta)
        for i in range(n_cells):
            alpha[i] *= math.sqrt(one_eta * inv_re[i])
        for i in range(n_cells):
            r[i] *= q
        g_rc[:n_cells] = 0.0  # (g_alpha, g_beta, g_e, g_d: set by the reverse pass's first node)
        for i in range(lanes):
            d[i] = 0.0
        # cell i + lanes is the next forecast of cell i's question: views keep the indices plain
        d_next = d[lanes:n_cells]
        r_next = r[lanes:n_cells]
        act_next = bactb[lanes:n_cells]
        for i in range(n_cells - lanes):
            d_next[i] = (max(r[i] - r_next[i], 0.0) + q_event) * act_next[i]
        for ln in range(lanes):
            c = bcount[b * lanes + ln]
            r_last[ln] = r[(c - 1) * lanes + ln] if c > 0 else 0.0
        # B: filters
        for k in range(nk):
            sc = scale[k]
            for ln in range(lanes):
                m[ln] = m0
                v[ln] = v0
                ll[ln] = 0.0
                prod[ln] = 1.0
            for jj in range(length):
                row = jj * lanes
                if jj % _LOG_EVERY == _LOG_EVERY - 1:
                    for ln in range(lanes):
                        ll[ln] -= 0.5 * math.log(prod[ln])
                        prod[ln] = 1.0
                for ln in range(lanes):
                    i = np.uint64(row + ln)  # unsigned: no wraparound check
                    act = bactb[i]
                    vv = v[ln] + d[i] * sc
                    a = alpha[i]
                    s = a * a * vv + e[i]
                    inv = 1.0 / s
                    mm = m[ln]
                    inn = bxb[i] - a * mm - beta[i]
                    M[k, i] = mm
                    VV[k, i] = vv
                    INV[k, i] = inv  # kept for the reverse pass (a division saved per cell: 7%)
                    INN[k, i] = inn
                    gain = act * vv * a * inv
                    ll[ln] -= act * 0.5 * (_LOG_2PI + inn * inn * inv)
                    prod[ln] *= act * s + (1.0 - act)
                    m[ln] = mm + gain * inn
                    v[ln] = vv - gain * a * vv
            for ln in range(lanes):
                ll[ln] -= 0.5 * math.log(prod[ln])
                slot = b * lanes + ln
                node[k, ln] = -np.inf
                node_m[k, ln] = m[ln]
                node_v[k, ln] = v[ln]
                if bcount[slot] > 0:
                    sign = 2.0 * by[slot] - 1.0
                    lphi, _ = _log_ndtr_ratio(sign * m[ln] / math.sqrt(v[ln] + r_last[ln] * sc))
                    node[k, ln] = log_weight[k] + fw * ll[ln] + lphi
        for ln in range(lanes):
            if bcount[b * lanes + ln] == 0:
                for k in range(nk):
                    wts[k, ln] = 0.0
                continue
            top = node[0, ln]
            for k in range(1, nk):
                top = max(top, node[k, ln])
            acc = 0.0
            for k in range(nk):
                acc += math.exp(node[k, ln] - top)
            total += top + math.log(acc)
            for k in range(nk):
                wts[k, ln] = math.exp(node[k, ln] - top) / acc
        # C: reverse
        for k in range(nk):
            sc = scale[k]
            for ln in range(lanes):
                slot = b * lanes + ln
                bm[ln] = 0.0
                bv[ln] = 0.0
                bll[ln] = 0.0
                if bcount[slot] > 0:
                    w = wts[k, ln]
                    sign = 2.0 * by[slot] - 1.0
                    den2 = node_v[k, ln] + r_last[ln] * sc
                    den = math.sqrt(den2)
                    zz = sign * node_m[k, ln] / den
                    _, ratio = _log_ndtr_ratio(zz)
                    bm[ln] = w * ratio * sign / den
                    bv[ln] = -0.5 * w * ratio * zz / den2
                    g_rc[(bcount[slot] - 1) * lanes + ln] += bv[ln] * sc
                    g_scale[k] += bv[ln] * r_last[ln]
                    bll[ln] = w * fw
            gsc = 0.0
            keep = k > 0  # the first node sets the cell gradients, the others add to them
            for jj in range(length - 1, -1, -1):
                row = jj * lanes
                for ln in range(lanes):
                    i = np.uint64(row + ln)  # unsigned: no wraparound check
                    act = bactb[i]
                    a = alpha[i]
                    vv = VV[k, i]
                    inv = INV[k, i]
                    mm = M[k, i]
                    inn = INN[k, i]
                    ga = act * a * inv  # d gain / d vv
                    bml = bm[ln]
                    bvl = bv[ln]
                    blll = bll[ln] * act
                    # v' = vv - act a^2 vv^2 / s ; m' = m + act vv a / s inn ; ll += act (...)
                    bgain = bml * inn
                    binn = bml * ga * vv - blll * inn * inv
                    bvv = bvl * (1.0 - 2.0 * ga * a * vv) + bgain * ga
                    ba = -bvl * 2.0 * ga * vv * vv + bgain * act * vv * inv
                    bs = (bvl * ga * a * vv * vv - bgain * ga * vv + blll * (0.5 * inn * inn * inv - 0.5)) * inv
                    ba -= binn * mm
                    bm_new = bml - binn * a
                    ba += bs * 2.0 * a * vv
                    bvv += bs * a * a
                    gsc += bvv * d[i]
                    if keep:
                        g_beta[i] -= binn
                        g_d[i] += bvv * sc
                        g_alpha[i] += ba
                        g_e[i] += bs
                    else:
                        g_beta[i] = -binn
                        g_d[i] = bvv * sc
                        g_alpha[i] = ba
                        g_e[i] = bs
                    # adjoints shrink by the filter's gain at every step: flush them to 0 before they
                    # turn subnormal (slow arithmetic), a change below 1e-250 in any gradient
                    bm[ln] = bm_new * (abs(bm_new) > _TINY)
                    bv[ln] = bvv * (abs(bvv) > _TINY)
            g_scale[k] += gsc
            for ln in range(lanes):
                g_m0 += bm[ln]
                g_v0 += bv[ln]
        # D: to the parameters
        for i in range(lanes):
            tmp[i] = 0.0
        tmp_next = tmp[lanes:n_cells]
        gd_next = g_d[lanes:n_cells]
        for i in range(n_cells - lanes):
            gd = gd_next[i] * act_next[i]
            g_qe += gd
            tmp_next[i] = gd if r[i] - r_next[i] >= 0.0 else 0.0
        for i in range(n_cells - lanes):  # d(i + lanes) moves with r(i)
            g_rc[i] += tmp_next[i]
        sum_half = 0.0
        sum_half_inv = 0.0
        inv_q = 1.0 / q
        for i in range(n_cells):
            # g_alpha: d/d log alpha; log alpha = la + (log(1 + eta) - log(f^kappa + eta)) / 2
            g_alpha[i] *= alpha[i]
            half = 0.5 * g_alpha[i]
            half_inv = half * inv_re[i]
            sum_half += half
            sum_half_inv += half_inv
            gr = (g_rc[i] - tmp[i]) * r[i]
            g_q += gr
            g_kappa += (gr - half_inv * r[i] * inv_q) * blogfb[i]
            g_e[i] *= 2.0 * e[i]
        g_eta += sum_half / one_eta - sum_half_inv
        # the scatter to the forecasters in a loop of its own: the one above then vectorises (10% of
        # the kernel's time)
        for i in range(n_cells):
            j = 3 * bfb[i]
            g_par[j] += g_alpha[i]
            g_par[j + 1] += g_beta[i]
            g_par[j + 2] += g_e[i]
        for c in range(ncov):
            sb = 0.0
            ss = 0.0
            zrow = bz[c, base : base + n_cells]
            for i in range(n_cells):
                zc = zrow[i]
                sb += g_beta[i] * zc
                ss += g_e[i] * zc
            g_gb[c] += sb
            g_gs[c] += ss
    head = np.empty(7)
    head[0] = total
    head[1] = g_m0
    head[2] = g_v0
    head[3] = g_q / q
    head[4] = g_kappa
    head[5] = g_qe
    head[6] = g_eta
    return head, g_par[0::3].copy(), g_par[1::3].copy(), g_par[2::3].copy(), g_gb, g_gs, g_scale


# --- the likelihood as a pytensor Op --------------------------------------------------------------

_SOURCE_HASH = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]
_BLOCK_NAMES = ("bx", "bforecaster", "bz", "blogf", "bactive", "boffset", "bcount", "by")


def _kalman_op_class():
    """``KalmanLogLik`` (built lazily: pytensor is imported only when a fit needs it)."""
    cached = globals().get("_KALMAN_OP")
    if cached is not None:
        return cached
    import pytensor.tensor as pt
    from pytensor.gradient import disconnected_type
    from pytensor.graph.basic import Apply
    from pytensor.graph.op import Op
    from pytensor.link.numba.dispatch.basic import numba_njit, register_funcify_and_cache_key

    n_params = 8  # la, bias, ls, gb, gs, glob, scale, log_weight; then the data (_BLOCK_NAMES)

    class KalmanLogLik(Op):
        """``blocked_loglik`` as an Op. Outputs ``head`` (loglik, then d/d(m0, v0, q, kappa, q_event, eta))
        and the gradients with respect to la, bias, ls, gb, gs, scale. Only ``head[0]`` is
        differentiable (first derivatives: what NUTS needs)."""

        __props__ = ("forecast_weight",)

        def __init__(self, forecast_weight: float):
            self.forecast_weight = float(forecast_weight)

        def make_node(self, *inputs):
            floats = [pt.as_tensor_variable(v).astype("float64") for v in inputs[:n_params]]
            data = [pt.as_tensor_variable(v) for v in inputs[n_params:]]
            # integers as they come (pm.Data keeps them as int32): a cast would copy them at every call
            data = [v if "int" in v.dtype else v.astype("float64") for v in data]
            return Apply(self, floats + data, [pt.dvector() for _ in range(7)])

        def perform(self, node, inputs, outputs):
            result = blocked_loglik(*inputs[:n_params], self.forecast_weight, *inputs[n_params:])
            for storage, value in zip(outputs, result, strict=True):
                storage[0] = value

        def connection_pattern(self, node):
            return [[i < n_params - 1] * 7 for i in range(len(node.inputs))]

        def pullback(self, inputs, outputs, cotangents):
            head, g_la, g_b, g_ls, g_gb, g_gs, g_scale = outputs
            bar = cotangents[0][0]
            grads = [g_la, g_b, g_ls, g_gb, g_gs, head[1:7], g_scale]
            return [bar * g for g in grads] + [disconnected_type() for _ in inputs[len(grads) :]]

    @register_funcify_and_cache_key(KalmanLogLik)
    def _funcify(op, node=None, **kwargs):
        weight = op.forecast_weight

        @numba_njit
        def kalman(la, bias, ls, gb, gs, glob, scale, log_weight, bx, bf, bz, blogf, bactive, boffset, bcount, by):
            return blocked_loglik(
                la,
                bias,
                ls,
                gb,
                gs,
                glob,
                scale,
                log_weight,
                weight,
                bx,
                bf,
                bz,
                blogf,
                bactive,
                boffset,
                bcount,
                by,
            )

        return kalman, f"forecasting.bayes_sampling.KalmanLogLik-{_SOURCE_HASH}-{weight!r}"

    globals()["_KALMAN_OP"] = KalmanLogLik
    return KalmanLogLik


def _question_arrays(layout: _Layout) -> tuple[np.ndarray, np.ndarray]:
    """Per question with forecasts (in row order): where its rows start (plus the end) and its outcome."""
    last = np.concatenate([b[2] for b in layout.buckets]).astype(np.int64)
    y = np.concatenate([b[3] for b in layout.buckets]).astype(float)
    order = np.argsort(last, kind="stable")
    return np.r_[0, last[order] + 1].astype(np.int64), y[order]


def block_values(layout: _Layout) -> dict[str, np.ndarray]:
    """The layout's rows in ``blocked_layout`` order, with each question slot's outcome: the values
    of ``block_tensors``."""
    start, y = _question_arrays(layout)
    blocks = blocked_layout(start, layout.x, layout.forecaster, layout.z, layout.f)
    blocks["by"] = slot_outcomes(blocks.pop("bquestion"), y)
    return blocks


def block_tensors() -> dict:
    """Symbolic inputs for ``fast_loglik_graph`` (values: ``block_values``)."""
    import pytensor.tensor as pt

    integer = {"bforecaster", "boffset", "bcount"}
    return {
        name: (pt.dmatrix if name == "bz" else pt.lvector if name in integer else pt.dvector)(name)
        for name in _BLOCK_NAMES
    }


def fast_loglik_graph(g: dict, gb, gs, par: dict, blocks: dict):
    """``bayes._loglik_graph(g, gb, gs, par, inputs)`` computed by ``blocked_loglik``: the same
    arguments, with ``blocks`` (``block_tensors``, or constants of ``block_values``) as the data."""
    import pytensor.tensor as pt

    nodes, weights = bayes._gauss_hermite(bayes.N_VOLATILITY)
    op = _kalman_op_class()(bayes.FORECAST_WEIGHT)
    head = op(
        par["log_alpha"],
        par["bias"],
        par["log_sigma"],
        gb,
        gs,
        pt.stack([g["m0"], g["s0"] ** 2, g["q"], g["kappa"], g["q_event"], g["eta"]]),
        pt.exp(g["omega"] * pt.as_tensor(nodes)),
        np.log(weights),
        *(blocks[name] for name in _BLOCK_NAMES),
    )[0]
    return head[0]


# --- checking the kernel against the model's own likelihood -------------------------------------

_CHECK: dict[str, Any] = {}
_LOCK = threading.RLock()


def likelihood_check() -> dict[str, Any]:
    """Compare ``fast_loglik_graph`` with ``bayes._loglik_graph``: value and gradient at random
    parameters on a small synthetic data set. The result decides which likelihood the sampler uses,
    so that a change to the model in ``bayes`` is never sampled with a stale kernel. Once per process,
    and remembered on disk (pytensor's compile directory) for the same source of both modules."""
    with _LOCK:
        if not _CHECK:
            key = hashlib.sha256(Path(bayes.__file__).read_bytes() + Path(__file__).read_bytes()).hexdigest()
            stored = _stored_check(key)
            if stored is not None:
                _CHECK.update(stored, cached=True)
            else:
                try:
                    _CHECK.update(_run_likelihood_check())
                except Exception as exc:  # a model change the kernel cannot even express
                    _CHECK.update(ok=False, error=repr(exc))
                _store_check(key, _CHECK)
            if not _CHECK["ok"]:
                logger.warning("fast Kalman likelihood unusable, sampling with pytensor's scan: %s", _CHECK)
        return dict(_CHECK)


def _check_file() -> Path:
    import pytensor

    return Path(pytensor.config.compiledir) / "forecasting_bayes_likelihood_check.json"


def _stored_check(key: str) -> dict | None:
    try:
        stored = json.loads(_check_file().read_text())
    except (OSError, ValueError):
        return None
    return stored.get("result") if stored.get("key") == key else None


def _store_check(key: str, result: dict) -> None:
    with contextlib.suppress(OSError):  # read-only: check again next time
        _check_file().write_text(json.dumps({"key": key, "result": result}))


def _check_data() -> ForecastData:
    rng = np.random.default_rng(20240611)
    n_questions, keys = 12, [f"check-{i}" for i in range(6)]
    rows: dict[str, list] = {"q": [], "key": [], "p": [], "t": []}
    for i in range(n_questions):
        k = int(rng.integers(1, 6))
        rows["q"] += [i] * k
        rows["key"] += list(rng.choice(keys, size=k, replace=True))  # repeats: superseded forecasts
        rows["p"] += list(rng.uniform(0.0, 1.0, size=k))
        rows["t"] += list(np.sort(rng.uniform(0.0, 50.0, size=k))[::-1] * 86400.0)
    return ForecastData(
        question_index=np.array(rows["q"]),
        forecaster_key=rows["key"],
        probability=np.array(rows["p"]),
        seconds_to_resolution=np.array(rows["t"]),
        outcome=rng.integers(0, 2, size=n_questions),
        life_seconds=rng.uniform(50.0, 80.0, size=n_questions) * 86400.0,
    )


def _run_likelihood_check() -> dict[str, Any]:
    import pytensor
    import pytensor.tensor as pt
    from pytensor.compile.mode import Mode

    started = time.monotonic()
    layout = _layout(_check_data())
    nf = len(layout.keys)
    theta = pt.dvector("theta")
    g, gb, gs, par = _split_theta(theta, nf)
    reference = bayes._input_tensors()
    blocks = block_values(layout)
    block_tensors = {name: pt.as_tensor(value) for name, value in blocks.items()}
    mode = Mode(linker="py", optimizer="fast_compile")
    outputs = []
    for loglik in (bayes._loglik_graph(g, gb, gs, par, reference), fast_loglik_graph(g, gb, gs, par, block_tensors)):
        fn = pytensor.function(
            [theta, *bayes._flat_inputs(reference)],
            [loglik, pytensor.grad(loglik, theta)],
            mode=mode,
            on_unused_input="ignore",
        )
        rng = np.random.default_rng(1)
        for _ in range(3):
            point = np.r_[
                bayes._vector_from_population(bayes.default_population()) + rng.normal(0.0, 0.4, bayes._NG + 2 * N_COV),
                rng.normal(0.0, 0.4, len(_FORECASTER_PARAMS) * nf),
            ]
            outputs.append(fn(point, *bayes._input_values(layout)))
    pairs = list(zip(outputs[:3], outputs[3:], strict=True))
    value_error = max(abs(float(a[0]) - float(b[0])) for a, b in pairs)
    grad_error = max(float(np.max(np.abs(a[1] - b[1]))) for a, b in pairs)
    size = max(1.0, *(abs(float(a[0])) for a, _ in pairs))
    ok = bool(np.isfinite(value_error) and value_error <= 1e-9 * size and grad_error <= 1e-8 * size)
    return {"ok": ok, "value_error": value_error, "grad_error": grad_error, "seconds": time.monotonic() - started}


def _split_theta(theta, nf):
    """The model's parameters as slices of one vector (the MAP's layout)."""
    gv = {name: theta[i] for i, name in enumerate(bayes._GLOBAL_NAMES)}
    o = bayes._NG
    gb, gs = theta[o : o + N_COV], theta[o + N_COV : o + 2 * N_COV]
    o += 2 * N_COV
    par = {name: theta[o + i * nf : o + (i + 1) * nf] for i, name in enumerate(_FORECASTER_PARAMS)}
    return bayes.likelihood_globals(gv), gb, gs, par


# --- the compiled model, one per process and capacity ---------------------------------------------


def _capacity(n_forecasters: int) -> int:
    """Forecaster slots of the compiled model: powers of sqrt(2) from ``MIN_CAPACITY``, so that a
    model is recompiled only when the number of forecasters grows by more than 41%."""
    if n_forecasters <= MIN_CAPACITY:
        return MIN_CAPACITY
    steps = math.ceil(2.0 * math.log2(n_forecasters / MIN_CAPACITY) - 1e-9)
    return math.ceil(MIN_CAPACITY * 2.0 ** (steps / 2.0))


def _centring(layout: _Layout, capacity: int) -> dict[str, np.ndarray]:
    """How the sampler places each forecaster effect (any choice gives the same posterior):

    ``centred`` (3, capacity): 1.0 where the effect is sampled centred (the forecaster's data pin it
    down), 0.0 where non-centred (few forecasts, or a padding slot); ``fit_nuts`` later replaces the
    log alpha row by partial centrings in [0, 1] (``_partial_centring``). ``zbar`` (capacity, N_COV): the
    forecaster's mean covariates; ``zbar_mean`` (2, N_COV): their mean over the centred forecasters,
    for the bias and the log noise. A centred bias is sampled as ``bias_j + zbar_j . gamma_bias`` (what
    the forecaster's forecasts measure) and ``mu_b`` as ``mu_b + zbar_mean . gamma_bias``, and the
    same for the noise: otherwise every forecaster effect moves with the covariate slopes."""
    nf = len(layout.keys)
    counts = np.maximum(layout.counts, 1)
    zbar = np.zeros((capacity, N_COV))
    for c in range(N_COV):
        zbar[:nf, c] = np.bincount(layout.forecaster, weights=layout.z[:, c], minlength=nf) / counts
    informed = {
        "log_alpha": layout.counts,
        "bias": layout.counts,
        "log_sigma": layout.counts,
    }
    centred = np.zeros((len(_FORECASTER_PARAMS), capacity))
    for i, name in enumerate(_FORECASTER_PARAMS):
        centred[i, :nf] = informed[name] >= CENTRE_MIN_FORECASTS
    zbar_mean = np.zeros((2, N_COV))
    for row, name in enumerate(("bias", "log_sigma")):
        c = centred[_FORECASTER_PARAMS.index(name)]
        if c.sum():
            zbar_mean[row] = (c[:, None] * zbar).sum(axis=0) / c.sum()
    return {"centred": centred, "zbar": zbar, "zbar_mean": zbar_mean}


def _data_values(layout: _Layout, capacity: int, fast: bool) -> dict[str, np.ndarray]:
    """The ``pm.Data`` values of a fit: blocked rows for the kernel, or rows and question bounds for
    the scan fallback; plus the centring (``_centring``)."""
    if fast:
        values = block_values(layout)
    else:
        start, y = _question_arrays(layout)
        values = {
            "x": layout.x,
            "forecaster": layout.forecaster,
            "f": layout.f,
            "z": np.ascontiguousarray(layout.z),
            "prev": layout.prev,
            "start": start,
            "y": y,
        }
    return values | _centring(layout, capacity) | {"variance_weights": _variance_weights(layout)}


def _placeholder_layout() -> _Layout:
    """Two questions, three forecasts: the data a model is built with (replaced before sampling)."""
    data = ForecastData(
        question_index=[0, 0, 1],
        forecaster_key=[0, 1, 0],
        probability=[0.6, 0.4, 0.7],
        seconds_to_resolution=[2.0, 1.0, 1.0],
        outcome=[1, 0],
    )
    return _layout(data)


_NGV = bayes._NG + 2 * N_COV  # global parameters: bayes's MAP vector without the forecaster effects
_I = {name: i for i, name in enumerate(bayes._GLOBAL_NAMES)}


def _global_start(variance_weights: np.ndarray) -> np.ndarray:
    """The sampled global coordinates (``_build_model``) at the MAP optimiser's start values."""
    raw = bayes._vector_from_population(bayes.default_population())
    m0, mu_b = raw[_I["m0"]], raw[_I["mu_b"]]
    raw[_I["m0"]], raw[_I["mu_b"]] = -mu_b, m0 + mu_b  # m0' and mu_b' (the covariate slopes start at 0)
    log_q, log_q_event = raw[_I["log_q"]], raw[_I["log_q_event"]]
    a, b = variance_weights
    raw[_I["log_q"]] = math.log(a * math.exp(log_q) + b * math.exp(log_q_event))  # log V
    raw[_I["log_q_event"]] = log_q - log_q_event  # phi
    return raw


def _variance_weights(layout: _Layout) -> np.ndarray:
    """(a, b): a question's latent gains about ``a q + b q_event`` over its forecasts (a: the mean
    share of its life they span, b: the mean number of steps between them)."""
    start, _ = _question_arrays(layout)
    if len(start) < 2:
        return np.array([1.0, 1.0])
    first, last = start[:-1], start[1:] - 1
    a = float(np.mean(layout.f[first] - layout.f[last])) + 1e-3
    b = float(np.mean(last - first)) + 1e-3
    return np.array([a, b])


@dataclass
class _Compiled:
    capacity: int
    fast: bool
    model: Any
    nutpie_model: Any  # None without nutpie
    stored: list[str]  # variables kept in the trace
    seconds: float


_MODELS: dict[tuple[int, bool], _Compiled] = {}


def _normal_logp(value, mean, sd, pt):
    return -0.5 * ((value - mean) / sd) ** 2 - pt.log(sd)


def _build_model(capacity: int, fast: bool):
    """The model of ``bayes`` (same likelihood, same priors as the MAP's) with ``capacity`` forecaster
    slots, its data in ``pm.Data`` containers, in coordinates chosen for NUTS.

    The sampler moves in a shear of the model's parameters (unit Jacobian, except for the partially
    centred log alpha, whose Jacobian is in its potential), so that the posterior has
    no long thin ridges (each one found by sampling without the shear):

    - a centred bias is sampled as ``u_j = bias_j + zbar_j . gamma_bias + alpha_j m0'`` (what the
      forecaster's forecasts measure), a centred log noise as ``u_j = log_sigma_j + zbar_j .
      gamma_noise`` (``_centring``), else every effect moves with the covariate slopes;
    - ``m0' = -(mu_b + zbar_mean . gamma_bias)`` and ``mu_b' = m0 - m0'``: the outcomes pin ``m0'``,
      the prior on the questions' latents pins ``mu_b'`` (the latents' common level), and the
      forecasters' biases do not move with either; ``mu_s' = mu_s + zbar_mean . gamma_noise``.

    The global coordinates are further whitened, ``raw = g_center + g_scale @ s`` (data: the identity
    at first, then from the posterior mode's Hessian, ``_whitening``). The priors are Potentials on the
    model's parameters; Deterministics ``theta`` (bayes's MAP vector of globals) and ``log_alpha``,
    ``bias``, ``log_sigma`` give the model's parameters."""
    import pymc as pm
    import pytensor.tensor as pt

    with pm.Model() as model:
        values = _data_values(_placeholder_layout(), capacity, fast)
        shared = {name: pm.Data(name, value) for name, value in (values | _whitening_identity(values)).items()}
        s = pm.Flat("s", shape=_NGV)
        raw = shared["g_center"] + pt.dot(shared["g_scale"], s)
        gb = raw[bayes._NG : bayes._NG + N_COV]
        gs = raw[bayes._NG + N_COV :]
        m0_, mu_b_, mu_s_ = raw[_I["m0"]], raw[_I["mu_b"]], raw[_I["mu_s"]]
        gv = {name: raw[i] for name, i in _I.items()}
        gv["m0"] = m0_ + mu_b_
        gv["mu_b"] = -m0_ - pt.dot(shared["zbar_mean"][0], gb)
        gv["mu_s"] = mu_s_ - pt.dot(shared["zbar_mean"][1], gs)
        # (log V, phi) = (log(a q + b q_event), log q - log q_event): the forecasts pin V, the latent's
        # variance over a question's forecasts; a unit-Jacobian map of (log q, log q_event)
        a, b = shared["variance_weights"][0], shared["variance_weights"][1]
        log_v, phi = raw[_I["log_q"]], raw[_I["log_q_event"]]
        gv["log_q"] = log_v - pt.log(a + b * pt.exp(-phi))
        gv["log_q_event"] = gv["log_q"] - phi
        pm.Deterministic("theta", pt.concatenate([pt.stack([gv[n] for n in bayes._GLOBAL_NAMES]), gb, gs]))
        prior = 0.0
        for name, mean, sd, *_ in _GLOBALS:
            if mean is not None:
                prior += _normal_logp(gv[name], mean, sd, pt)
            else:  # log tau: Gamma(shape, rate) on tau, with the log transform's Jacobian
                prior += _TAU_SHAPE * gv[name] - _TAU_RATE * pt.exp(gv[name])
        prior += _normal_logp(gb, 0.0, _SLOPE_SD, pt).sum() + _normal_logp(gs, 0.0, _SLOPE_SD, pt).sum()
        pm.Potential("global_prior", prior)
        taus = {name: pt.exp(gv[f"log_{_TAUS[name]}"]) for name in _FORECASTER_PARAMS}
        means = {"log_alpha": 0.0, "bias": gv["mu_b"], "log_sigma": gv["mu_s"]}
        par = {}
        for i, name in enumerate(_FORECASTER_PARAMS):
            # centred (c = 1): theta_j = u_j (sheared); non-centred: theta_j = mu + tau u_j
            # The sampler moves v, a per-slot affine map of u (``u_center``, ``u_scale``: data, constant
            # Jacobian); ``_effect_whitening`` sets them so that v has about unit scale at the mode.
            v = pm.Flat(f"{name}_u", shape=capacity)
            u = shared["u_center"][i] + shared["u_scale"][i] * v
            pm.Potential(f"{name}_u_prior", _normal_logp(u, 0.0, 1.0, pt).sum())
            c = shared["centred"][i]
            if name == "log_alpha":
                # Partially centred (Papaspiliopoulos et al. 2003): theta_j = tau^(1 - w_j) u_j, with w_j
                # the share of the effect's posterior precision that comes from the data
                # (``_partial_centring``, stored as c = w); w = 1 is centred, w = 0 non-centred, and between the two
                # u_j is about independent of tau a posteriori. Jacobian: tau^(1 - w_j).
                # tau^(1 - w) as exp((1 - w) log tau): a pow per slot and gradient was 2% of a gradient
                log_tau = gv[f"log_{_TAUS[name]}"]
                par[name] = pm.Deterministic(name, pt.exp((1.0 - c) * log_tau) * u)
                correction = (
                    _normal_logp(par[name], 0.0, taus[name], pt) + (1.0 - c) * log_tau - _normal_logp(u, 0.0, 1.0, pt)
                )
                pm.Potential(f"{name}_centring", correction.sum())
                continue
            centred_value = u
            if name == "bias":
                centred_value = u - pt.dot(shared["zbar"], gb) - pt.exp(par["log_alpha"]) * m0_
            elif name == "log_sigma":
                centred_value = u - pt.dot(shared["zbar"], gs)
            par[name] = pm.Deterministic(name, c * centred_value + (1.0 - c) * (means[name] + taus[name] * u))
            correction = _normal_logp(par[name], means[name], taus[name], pt) - _normal_logp(u, 0.0, 1.0, pt)
            pm.Potential(f"{name}_centring", (c * correction).sum())
        g = bayes.likelihood_globals(gv)
        likelihood = fast_loglik_graph if fast else _scan_loglik
        pm.Potential("likelihood", likelihood(g, gb, gs, par, shared))
    return model


def _whitening_identity(values: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    capacity = values["centred"].shape[1]
    return {
        "g_center": _global_start(values["variance_weights"]),
        "g_scale": np.eye(_NGV),
        "u_center": np.zeros((len(_FORECASTER_PARAMS), capacity)),
        "u_scale": np.ones((len(_FORECASTER_PARAMS), capacity)),
    }


def _scan_loglik(g: dict, gb, gs, par: dict, shared: dict):
    """``bayes._loglik_graph`` itself (the fallback), inside an OpFromGraph so that its scan sees
    only explicit inputs (a scan would otherwise pull the model's random variables into its loop)."""
    import pytensor.tensor as pt
    from pytensor.compile.builders import OpFromGraph

    names = ("x", "forecaster", "f", "z", "prev", "start", "y")
    g_in = {k: pt.dscalar(k) for k in g}
    par_in = {k: pt.dvector(k) for k in par}
    gb_in, gs_in = pt.dvector("gb"), pt.dvector("gs")
    data_in = {k: shared[k].type() for k in names}
    out = bayes._loglik_graph(g_in, gb_in, gs_in, par_in, {**data_in, "buckets": _one_block(data_in)})
    inputs = [*g_in.values(), gb_in, gs_in, *par_in.values(), *data_in.values()]
    op = OpFromGraph(inputs, [out])
    return op(*g.values(), gb, gs, *par.values(), *(shared[k] for k in names))


def _one_block(shared: dict) -> list:
    """For the fallback (``bayes._loglik_graph``): every question in one padded block."""
    import pytensor.tensor as pt

    start, y = shared["start"], shared["y"]
    counts = start[1:] - start[:-1]
    steps = pt.arange(pt.max(counts))[:, None]
    inside = steps < counts[None, :]
    n = shared["x"].shape[0]
    idx = pt.switch(inside, start[:-1][None, :] + steps, n)
    empty = (pt.zeros((1, 0), dtype="int64") + n, pt.zeros((1, 0)), pt.zeros((0,), dtype="int64"), pt.zeros((0,)))
    return [(idx, pt.cast(inside, "float64"), start[1:] - 1, y)] + [empty] * (bayes.N_BUCKETS - 1)


def _compiled(capacity: int) -> _Compiled:
    """The compiled model for ``capacity`` forecasters (built on first use in this process)."""
    fast = bool(likelihood_check()["ok"])
    with _LOCK:
        cached = _MODELS.get((capacity, fast))
        if cached is not None:
            return cached
        started = time.monotonic()
        model = _build_model(capacity, fast)
        stored = [v.name for v in model.deterministics]
        try:
            import nutpie
        except ImportError:  # PyMC's own sampler (compiles per fit)
            nutpie_model = None
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                nutpie_model = nutpie.compile_pymc_model(model, backend="numba", var_names=stored)
        compiled = _Compiled(capacity, fast, model, nutpie_model, stored, time.monotonic() - started)
        _MODELS[(capacity, fast)] = compiled
        return compiled


class _Point:
    """The compiled model's log posterior and its gradient on the sampler's flat vector, with the data
    of one fit (the model's shared variables: callers hold ``_LOCK``)."""

    def __init__(self, compiled: _Compiled, values: dict[str, np.ndarray]):
        model = compiled.nutpie_model
        for name, value in values.items():
            shared = compiled.model[name]
            shared.set_value(np.asarray(value, dtype=shared.dtype))
        self.fn = model.logp_func
        self.expand = model.expand_func
        self.names, self.slices, self.shapes = model.shape_info
        self.n_dim = model.n_dim
        self.evaluations = 0

    def neg(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        self.evaluations += 1
        logp, grad = self.fn(x)
        if not np.isfinite(logp):
            return 1e300, np.zeros_like(x)
        return -float(logp), -np.asarray(grad, dtype=float)

    def slice_of(self, name: str) -> slice:
        return self.slices[self.names.index(name)]

    def expanded(self, x: np.ndarray) -> dict[str, np.ndarray]:
        out = self.expand(x)
        flat = np.asarray(out[0] if isinstance(out, (list, tuple)) else out)
        return {n: flat[sl].reshape(sh) for n, sl, sh in zip(self.names, self.slices, self.shapes, strict=True)}


_SCALE_NAMES = {"log_alpha": "log_tau_a", "bias": "log_tau_b", "log_sigma": "log_tau_s"}


@dataclass
class _Estimate:
    x: np.ndarray  # the sampler's flat vector
    iterations: int
    converged: bool
    message: str
    neg_log_posterior: float
    unset: list[str]  # hierarchical scales left at their start (too few informed effects)


def _estimate(point: _Point, values: dict[str, np.ndarray], max_iterations: int, rounds: int = 2) -> _Estimate:
    """A point estimate by L-BFGS with the hierarchical scales held fixed, then each scale set to the
    spread of its (data-informed) effects, ``rounds`` times.

    Not the joint mode: with centred effects the joint density grows without bound as a scale goes
    to 0 (every effect at the mean), which is where a free optimiser goes. ``bayes._fit_map`` avoids
    it with a Laplace correction; here the scales are updated like an EM step instead."""
    from scipy.optimize import minimize

    sl = point.slice_of("s")
    center = values["g_center"]
    x = np.zeros(point.n_dim)
    # A scale whose effects are all non-centred has no such singularity: it is left free (and set).
    free = {scale for i, scale in enumerate(_SCALE_NAMES.values()) if not values["centred"][i].any()}
    iterations, res, unset = 0, None, [scale for scale in _SCALE_NAMES.values() if scale not in free]
    for round_ in range(rounds):
        bounds = [(None, None)] * point.n_dim
        for name in _SCALE_NAMES.values():
            if name in free:
                continue
            i = sl.start + _I[name]
            bounds[i] = (x[i], x[i])
        res = minimize(
            point.neg,
            x,
            jac=True,
            method="L-BFGS-B",
            bounds=bounds,
            options={"maxiter": max_iterations // rounds, "maxcor": 20},
        )
        x, iterations = res.x, iterations + int(res.nit)
        if round_ == rounds - 1:
            break
        expanded = point.expanded(x)
        theta = expanded["theta"]
        for i, (name, scale) in enumerate(_SCALE_NAMES.items()):
            informed = values["centred"][i] > 0
            if informed.sum() < 10:
                continue
            mean = {"bias": theta[_I["mu_b"]], "log_sigma": theta[_I["mu_s"]]}.get(name, 0.0)
            spread = float(np.mean((expanded[name][informed] - mean) ** 2))
            x[sl.start + _I[scale]] = 0.5 * math.log(max(spread, 1e-6)) - center[_I[scale]]
            unset = [u for u in unset if u != scale]
    return _Estimate(x, iterations, bool(res.success), str(res.message), float(res.fun), unset)


def _laplace_at(point: _Point, x: np.ndarray, layout: _Layout) -> tuple[dict, np.ndarray, np.ndarray]:
    """The population, the (nf, 3) forecaster effects and their Laplace posterior sds
    (``bayes.laplace_sds``) at the sampler's vector ``x``."""
    nf = len(layout.keys)
    expanded = point.expanded(x)
    population = _population_from_vector(expanded["theta"])
    params = np.column_stack([expanded[name][:nf] for name in _FORECASTER_PARAMS])
    return population, params, bayes.laplace_sds(population, params, layout)


def _partial_centring(point: _Point, x: np.ndarray, values: dict[str, np.ndarray], layout: _Layout) -> np.ndarray:
    """Sets each scale effect's centring ``w_j = 1 - sd_j^2 / tau_a^2`` (the Laplace posterior sd at
    the point estimate ``x``, as in ``bayes.laplace_sds``) in ``values["centred"]``, and returns ``x``
    in the new coordinates (the same parameter values).

    Measured on the bench data at a tree depth of 3: the spread ``tau_a`` reached an ESS of 26 with
    the effects centred by count, 5 with them all non-centred, and 67 partially centred."""
    nf = len(layout.keys)
    population, params, sds = _laplace_at(point, x, layout)
    tau = population["tau_a"]
    row = _FORECASTER_PARAMS.index("log_alpha")
    centred = values["centred"].copy()
    centred[row, :nf] = np.clip(1.0 - (sds[:, row] / tau) ** 2, 0.0, 1.0)
    values["centred"] = centred
    moved = x.copy()
    moved[point.slice_of("log_alpha_u")][:nf] = params[:, row] / tau ** (1.0 - centred[row, :nf])
    return moved


def _effect_whitening(point: _Point, x: np.ndarray, values: dict[str, np.ndarray], layout: _Layout) -> np.ndarray:
    """Sets ``values["u_center"]`` and ``values["u_scale"]`` to each forecaster effect's coordinate
    at the point estimate ``x`` and its Laplace posterior sd there (``bayes.laplace_sds``, carried
    through the centring), and returns ``x`` in the new coordinates (0 for every effect: the same
    parameter values). ``point`` holds ``values`` with the identity map.

    Why: nutpie starts its mass matrix from the gradient at the first point, which is right only for
    coordinates of about unit scale; a centred effect's scale is its posterior sd (0.05-0.3 here).
    Unit-scale coordinates let the chains start at the mode with a fitting mass matrix, so the
    warm-up's first trees are not twice as long and fewer tuning draws do."""
    nf = len(layout.keys)
    population, _, sds = _laplace_at(point, x, layout)
    moved = x.copy()
    for i, name in enumerate(_FORECASTER_PARAMS):
        tau = population[_TAUS[name]]
        c = values["centred"][i, :nf]
        # u's sd: the effect's, divided by what multiplies u (tau^(1 - c) for log alpha; 1 centred, tau not)
        divisor = tau ** (1.0 - c) if name == "log_alpha" else np.where(c > 0, 1.0, tau)
        sl = point.slice_of(f"{name}_u")
        values["u_center"][i, :nf] = x[sl][:nf]
        values["u_scale"][i, :nf] = sds[:, i] / divisor
        moved[sl.start : sl.start + nf] = 0.0  # padding slots keep the identity map
    return moved


def _whitening(
    point: _Point, x: np.ndarray, center: np.ndarray, unset: list[str] = ()
) -> tuple[np.ndarray, np.ndarray]:
    """``(g_center, g_scale)`` that make the global coordinates about independent with unit variance
    at the mode ``x``: the Hessian of the log posterior in the globals (finite differences of the
    gradient), with the forecaster effects integrated out, eigenvalues floored, and its inverse
    square root."""
    sl = point.slice_of("s")
    base = point.neg(x)[1]
    h = 1e-5
    rows = np.empty((_NGV, len(x)))
    for i in range(_NGV):
        moved = x.copy()
        moved[sl.start + i] += h
        rows[i] = (point.neg(moved)[1] - base) / h
    # The globals' curvature with the forecaster effects integrated out, not held fixed: the effects'
    # coordinates have about unit curvature (_effect_whitening), so the Schur complement is
    # H_gg - H_gu H_ug. (Held fixed, the effects made log tau_a and log eta look twice as narrow as
    # they are: ESS 65-98 in three bench seeds of seven.)
    cross = np.delete(rows, np.arange(sl.start, sl.stop), axis=1)
    hessian = rows[:, sl] - cross @ cross.T
    hessian = 0.5 * (hessian + hessian.T)
    for name in unset:  # not estimated: leave that coordinate alone
        hessian[_I[name], :] = hessian[:, _I[name]] = 0.0
        hessian[_I[name], _I[name]] = 1.0
    eigenvalues, vectors = np.linalg.eigh(hessian)
    eigenvalues = np.maximum(eigenvalues, 0.25)  # a direction the point does not pin: a prior-like scale
    scale = vectors / np.sqrt(eigenvalues)
    return center + x[sl], scale


# --- fitting ----------------------------------------------------------------------------------------


def _prepare(data: ForecastData) -> tuple[_Layout, int, _Compiled, dict[str, np.ndarray], bool]:
    layout = _layout(data)
    capacity = _capacity(len(layout.keys))
    fresh = (capacity, bool(likelihood_check()["ok"])) not in _MODELS
    compiled = _compiled(capacity)
    values = _data_values(layout, capacity, compiled.fast)
    values |= _whitening_identity(values)
    return layout, capacity, compiled, values, fresh


def fit_nuts(data: ForecastData, *, draws: int, tune: int | None, chains: int, random_seed: int | None) -> BayesFit:
    """Full posterior with NUTS (nutpie when installed, else PyMC's sampler on one core): posterior
    means in the MAP fit's structure, arviz diagnostics (``max_rhat``, ``min_ess``, ``divergences``).

    With data-rich forecasters the chains start near a point estimate (``_estimate``,
    ``INIT_ITERATIONS``), in coordinates of about unit scale there (``_partial_centring``,
    ``_effect_whitening``, ``_whitening``); all of these only shorten the warm-up (``tune=None``:
    ``TUNE_FROM_MODE`` draws, else ``TUNE_FROM_PRIOR``): the posterior is the same."""
    started = time.monotonic()
    layout, capacity, compiled, values, fresh = _prepare(data)
    nf = len(layout.keys)
    init = None
    extra: dict[str, Any] = {"init": "prior", "target_accept": TARGET_ACCEPT_SPARSE}
    centred = values["centred"][:, :nf]
    if compiled.nutpie_model is not None and centred[_FORECASTER_PARAMS.index("bias")].mean() >= 0.5:
        # Data-rich (most forecaster effects centred): the joint mode is a good start. With sparse
        # data the hierarchy's joint mode sits in the funnel's neck: start from the prior instead.
        with _LOCK:
            point = _Point(compiled, values)
            res = _estimate(point, values, INIT_ITERATIONS)
            evaluations = point.evaluations
            init = _partial_centring(point, res.x, values, layout)
            point = _Point(compiled, values)  # the new centring
            init = _effect_whitening(point, init, values, layout)
            point = _Point(compiled, values)  # the effects' new coordinates
            values["g_center"], values["g_scale"] = _whitening(point, init, values["g_center"], res.unset)
            init[point.slice_of("s")] = 0.0
            extra = {
                "init": "mode",
                "target_accept": TARGET_ACCEPT,
                "init_iterations": res.iterations,
                "init_evaluations": evaluations + point.evaluations,
                "max_tree_depth": MAX_TREE_DEPTH,
            }
    if tune is None:
        tune = TUNE_FROM_MODE if init is not None else TUNE_FROM_PRIOR
    sampling_started = time.monotonic()
    trace, stats = _sample(
        compiled,
        values,
        init,
        draws=draws,
        tune=tune,
        chains=chains,
        random_seed=random_seed,
        target_accept=extra["target_accept"],
    )
    sampling_seconds = time.monotonic() - sampling_started
    max_rhat, min_ess = _rhat_ess(trace, nf)
    result = _result(trace, layout, data, method="nuts")
    result.duration_seconds = time.monotonic() - started
    result.diagnostics = {
        "max_rhat": max_rhat,
        "min_ess": min_ess,
        **stats,
        "draws": draws,
        "tune": tune,
        "chains": chains,
        "likelihood": "kalman-numba" if compiled.fast else "pytensor-scan",
        "capacity": capacity,
        "centred": int(centred.sum()),
        **extra,
        "compile_seconds": compiled.seconds if fresh else 0.0,
        "sampling_seconds": sampling_seconds,
    }
    return result


def _result(trace: dict[str, np.ndarray], layout: _Layout, data: ForecastData, *, method: str) -> BayesFit:
    """A ``BayesFit`` of posterior means (over chains and draws) of the model's parameters."""
    nf = len(layout.keys)
    population = _population_from_vector(np.asarray(trace["theta"]).mean(axis=(0, 1)))
    draws = np.stack([np.asarray(trace[name])[..., :nf] for name in _FORECASTER_PARAMS], axis=-1)
    params = draws.mean(axis=(0, 1))
    # Posterior sds from the draws; a point estimate (one draw) takes the Laplace approximation's.
    sds = (
        draws.std(axis=(0, 1)) if draws.shape[0] * draws.shape[1] > 1 else bayes.laplace_sds(population, params, layout)
    )
    forecasters = bayes.forecaster_records(layout, params, sds)
    return BayesFit(
        population=population,
        forecasters=forecasters,
        method=method,
        n_questions=data.n_questions,
        n_forecasters=nf,
        n_forecasts=len(layout.x),
    )


def _sample(
    compiled: _Compiled,
    values: dict,
    init: np.ndarray | None,
    *,
    draws: int,
    tune: int,
    chains: int,
    random_seed: int | None,
    target_accept: float,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """``{stored variable: (chains, draws, ...) array}`` and the sampler's statistics."""
    if compiled.nutpie_model is not None:
        import nutpie

        model = compiled.nutpie_model.with_data(**values)
        if init is not None:
            model = dataclasses.replace(model, initial_point_func=_start_near(init))
        trace = nutpie.sample(
            model,
            draws=draws,
            tune=tune,
            chains=chains,
            cores=max(1, min(chains, os.cpu_count() or 1)),  # threads: fine in a daemonic worker
            seed=random_seed,
            progress_bar=False,
            save_warmup=False,
            target_accept=target_accept,
            **({"initial_step": INITIAL_STEP, "maxdepth": MAX_TREE_DEPTH} if init is not None else {}),
        )
        sample_stats = trace.sample_stats
        steps = np.asarray(sample_stats["n_steps"])
        stats = {
            "sampler": "nutpie",
            "divergences": int(np.asarray(sample_stats["diverging"]).sum()),
            "step_size": float(np.asarray(sample_stats["step_size"]).mean()),
            "mean_leapfrog_steps": float(steps.mean()),
        }
    else:
        import pymc as pm

        with compiled.model:
            pm.set_data(values)
            trace = pm.sample(
                draws=draws,
                tune=tune,
                chains=chains,
                cores=1,  # pm.sample cannot fork inside a daemonic (prefork) worker
                nuts_sampler="pymc",
                random_seed=random_seed,
                progressbar=False,
                compute_convergence_checks=False,
                target_accept=target_accept,
            )
        stats = {"sampler": "pymc", "divergences": int(np.asarray(trace.sample_stats["diverging"]).sum())}
    return {name: np.asarray(trace.posterior[name]) for name in compiled.stored}, stats


def _start_near(init: np.ndarray):
    """Each chain's start: ``init`` moved by ``START_OFFSET`` up or down in every coordinate.

    nutpie's PyMC models ignore ``nutpie.sample(init_mean=...)`` and start from PyMC's initial point
    with a uniform jitter in [-1, 1]: far out in the tails for a forecaster effect of sd 0.05. And
    nutpie's first mass matrix is ``1 / |gradient|`` at the start, which is the right variance where
    a unit-scale coordinate is one sd from the mode: hence the offset of one, in every coordinate."""

    def start(seed=None) -> np.ndarray:
        rng = np.random.default_rng(seed)
        return init + START_OFFSET * rng.choice([-1.0, 1.0], size=init.shape)

    return start


def _rhat_ess(trace: dict[str, np.ndarray], nf: int) -> tuple[float, float]:
    """Largest rank-normalised split R-hat and smallest bulk ESS (arviz) over the model's parameters:
    the globals (bayes's MAP vector) and every forecaster effect (padding slots left out).

    arviz computes these one parameter at a time (seconds for thousands); ``_rank_diagnostics``
    computes arviz's formulas for all parameters at once, and the worst few are then recomputed
    with arviz itself, whose figures are the ones returned."""
    import arviz as az

    columns = [np.asarray(trace["theta"])]
    columns += [np.asarray(trace[name])[..., :nf] for name in _FORECASTER_PARAMS]
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
    from scipy.fft import next_fast_len

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


def warm_up(n_forecasters: int = MIN_CAPACITY) -> float:
    """Check the kernel, then compile the model for ``n_forecasters`` (pass about the number of
    forecasters a fit will see: one compiled model serves up to 41% more) and every function a fit
    calls, on a tiny data set, so that a worker's first fit compiles nothing. numba's and pytensor's
    caches on disk make a later process's warm-up faster. Returns the seconds it took."""
    started = time.monotonic()
    data = bayes.warm_up_data()
    fit_nuts(data, draws=5, tune=5, chains=1, random_seed=0)
    compiled = _compiled(_capacity(n_forecasters))
    if compiled.nutpie_model is not None:  # the point functions compile on their first call
        layout = _layout(data)
        values = _data_values(layout, compiled.capacity, compiled.fast)
        values |= _whitening_identity(values)
        with _LOCK:
            point = _Point(compiled, values)
            point.neg(np.zeros(point.n_dim))
            point.expanded(np.zeros(point.n_dim))
    return time.monotonic() - started
