"""Full-posterior fits of the Bayesian model (``forecasting.bayes``) with NUTS. No Django import.

Speed (issue 4): a fit on 2,000 forecasters x 500 questions x 100,000 forecasts samples in seconds, not
minutes, because

- the likelihood's Kalman filters run in one numba kernel with a hand-written reverse pass
  (``kalman_loglik``) instead of ``pytensor.scan`` (the same likelihood as ``bayes._loglik_graph``,
  checked against it once per process by ``likelihood_check``; on a mismatch the sampler falls back to
  ``_loglik_graph`` itself);
- the sampler is nutpie (Rust NUTS, chains in threads, so it works inside a daemonic prefork Celery
  worker where ``pm.sample(cores>1)`` cannot fork), on a PyMC model compiled by numba;
- the model is compiled once per process and capacity: the data are ``pm.Data`` (swapped with
  nutpie's ``with_data``) and the forecasters are padded up to a capacity bucket (``_capacity``), so
  fits of similar size reuse one compiled model (``warm_up`` compiles one at worker start);
- each forecaster effect is centred when the forecaster's data pin it down and non-centred otherwise
  (a per-forecaster switch held in the data, see ``_centred``), which keeps the hierarchical scales
  mixing well with few tuning draws. Padding forecasters have no data and no effect on the posterior.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numba
import numpy as np

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
TARGET_ACCEPT = 0.9
_TAUS = {"log_alpha": "tau_a", "bias": "tau_b", "opener_bias": "tau_c", "log_sigma": "tau_s"}
_MEANS = {"log_alpha": None, "bias": "mu_b", "opener_bias": None, "log_sigma": "mu_s"}


# --- the likelihood kernel ----------------------------------------------------------------------

_LOG_2PI = math.log(2.0 * math.pi)
_SQRT2 = math.sqrt(2.0)
LANES = 8  # questions filtered side by side (independent recursions keep the CPU's pipelines full)
_LOG_EVERY = 8  # filter steps between two logarithms of the running product of prediction variances
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
    return np.where(slot_q >= 0, y[np.maximum(slot_q, 0)], 0.0)


@numba.njit(nogil=True, cache=True, fastmath=_FASTMATH)
def blocked_loglik(
    la, bias, ob, ls, gb, gs, glob, scale, log_weight, fw, bx, bf, bz, blogf, bactive, boffset, bcount, by
):
    nb = boffset.shape[0] - 1
    lanes = bcount.shape[0] // nb
    ncov = bz.shape[0]
    nk = scale.shape[0]
    nfc = la.shape[0]
    m0, v0, q, kappa, q_event = glob[0], glob[1], glob[2], glob[3], glob[4]
    ea = np.empty(nfc)
    es = np.empty(nfc)
    for j in range(nfc):
        ea[j] = math.exp(la[j])
        es[j] = math.exp(2.0 * ls[j])
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
    g_alpha = np.empty(cells)
    g_beta = np.empty(cells)
    g_e = np.empty(cells)
    g_d = np.empty(cells)
    g_rc = np.empty(cells)
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
    g_la = np.zeros(nfc)
    g_b = np.zeros(nfc)
    g_ob = np.zeros(nfc)
    g_ls = np.zeros(nfc)
    g_gb = np.zeros(ncov)
    g_gs = np.zeros(ncov)
    g_scale = np.zeros(nk)
    g_m0 = 0.0
    g_v0 = 0.0
    g_q = 0.0
    g_kappa = 0.0
    g_qe = 0.0
    total = 0.0
    for b in range(nb):
        base = boffset[b]
        n_cells = boffset[b + 1] - base
        length = n_cells // lanes
        # A: per-cell quantities
        for i in range(n_cells):
            j = bf[base + i]
            alpha[i] = ea[j]
            beta[i] = bias[j] + bz[0, base + i] * ob[j]
            e[i] = es[j]
            zs[i] = 0.0
        for c in range(ncov):
            gbc = gb[c]
            gsc = gs[c]
            for i in range(n_cells):
                zc = bz[c, base + i]
                beta[i] += zc * gbc
                zs[i] += zc * gsc
        for i in range(n_cells):
            zs[i] = _exp(2.0 * zs[i])
        for i in range(n_cells):
            r[i] = _exp(kappa * blogf[base + i])
        for i in range(n_cells):
            e[i] *= zs[i]
            r[i] *= q
        g_alpha[:n_cells] = 0.0
        g_beta[:n_cells] = 0.0
        g_e[:n_cells] = 0.0
        g_d[:n_cells] = 0.0
        g_rc[:n_cells] = 0.0
        for i in range(lanes):
            d[i] = 0.0
        for i in range(lanes, n_cells):
            d[i] = (max(r[i - lanes] - r[i], 0.0) + q_event) * bactive[base + i]
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
                    i = row + ln
                    act = bactive[base + i]
                    vv = v[ln] + d[i] * sc
                    a = alpha[i]
                    s = a * a * vv + e[i]
                    inv = 1.0 / s
                    mm = m[ln]
                    inn = bx[base + i] - a * mm - beta[i]
                    M[k, i] = mm
                    VV[k, i] = vv
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
            for jj in range(length - 1, -1, -1):
                row = jj * lanes
                for ln in range(lanes):
                    i = row + ln
                    act = bactive[base + i]
                    a = alpha[i]
                    vv = VV[k, i]
                    s = a * a * vv + e[i]
                    inv = 1.0 / s
                    mm = M[k, i]
                    inn = bx[base + i] - a * mm - beta[i]
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
                    bm[ln] = bml - binn * a
                    g_beta[i] -= binn
                    ba += bs * 2.0 * a * vv
                    bvv += bs * a * a
                    g_d[i] += bvv * sc
                    gsc += bvv * d[i]
                    g_alpha[i] += ba
                    g_e[i] += bs
                    bv[ln] = bvv
            g_scale[k] += gsc
            for ln in range(lanes):
                g_m0 += bm[ln]
                g_v0 += bv[ln]
        # D: to the parameters
        for i in range(n_cells):
            tmp[i] = 0.0
        for i in range(lanes, n_cells):
            gd = g_d[i] * bactive[base + i]
            g_qe += gd
            tmp[i] = gd if r[i - lanes] - r[i] >= 0.0 else 0.0
        for i in range(n_cells - lanes):
            g_rc[i] += tmp[i + lanes]
        for i in range(n_cells):
            g_rc[i] -= tmp[i]
            g_e[i] *= 2.0 * e[i]
            g_alpha[i] *= alpha[i]
        for i in range(n_cells):
            j = bf[base + i]
            g_la[j] += g_alpha[i]
            g_b[j] += g_beta[i]
            g_ob[j] += g_beta[i] * bz[0, base + i]
            g_ls[j] += g_e[i]
        for c in range(ncov):
            sb = 0.0
            ss = 0.0
            for i in range(n_cells):
                zc = bz[c, base + i]
                sb += g_beta[i] * zc
                ss += g_e[i] * zc
            g_gb[c] += sb
            g_gs[c] += ss
        for i in range(n_cells):
            gr = g_rc[i] * r[i]
            g_q += gr
            g_kappa += gr * blogf[base + i]
    head = np.empty(6)
    head[0] = total
    head[1] = g_m0
    head[2] = g_v0
    head[3] = g_q / q
    head[4] = g_kappa
    head[5] = g_qe
    return head, g_la, g_b, g_ob, g_ls, g_gb, g_gs, g_scale


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

    n_params = 9  # la, bias, ob, ls, gb, gs, glob, scale, log_weight; then the data (_BLOCK_NAMES)

    class KalmanLogLik(Op):
        """``blocked_loglik`` as an Op. Outputs ``head`` (loglik, then d/d(m0, v0, q, kappa, q_event))
        and the gradients with respect to la, bias, ob, ls, gb, gs, scale. Only ``head[0]`` is
        differentiable (first derivatives: what NUTS needs)."""

        __props__ = ("forecast_weight",)

        def __init__(self, forecast_weight: float):
            self.forecast_weight = float(forecast_weight)

        def make_node(self, *inputs):
            floats = [pt.as_tensor_variable(v).astype("float64") for v in inputs[:n_params]]
            data = [pt.as_tensor_variable(v) for v in inputs[n_params:]]
            data = [v.astype("int64") if "int" in v.dtype else v.astype("float64") for v in data]
            return Apply(self, floats + data, [pt.dvector() for _ in range(8)])

        def perform(self, node, inputs, outputs):
            result = blocked_loglik(*inputs[:9], self.forecast_weight, *inputs[9:])
            for storage, value in zip(outputs, result, strict=True):
                storage[0] = value

        def connection_pattern(self, node):
            return [[i < n_params - 1] * 8 for i in range(len(node.inputs))]

        def pullback(self, inputs, outputs, cotangents):
            head, g_la, g_b, g_ob, g_ls, g_gb, g_gs, g_scale = outputs
            bar = cotangents[0][0]
            grads = [g_la, g_b, g_ob, g_ls, g_gb, g_gs, head[1:6], g_scale]
            return [bar * g for g in grads] + [disconnected_type() for _ in inputs[len(grads) :]]

    @register_funcify_and_cache_key(KalmanLogLik)
    def _funcify(op, node=None, **kwargs):
        weight = op.forecast_weight

        @numba_njit
        def kalman(la, bias, ob, ls, gb, gs, glob, scale, log_weight, bx, bf, bz, blogf, bactive, boffset, bcount, by):
            return blocked_loglik(
                la,
                bias,
                ob,
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


def _question_arrays(layout: _Layout) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per question with forecasts (in row order): where its rows start (plus the end) and its outcome."""
    last = np.concatenate([b[2] for b in layout.buckets]).astype(np.int64)
    y = np.concatenate([b[3] for b in layout.buckets]).astype(float)
    order = np.argsort(last, kind="stable")
    return np.r_[0, last[order] + 1].astype(np.int64), y[order]


def _block_values(layout: _Layout) -> dict[str, np.ndarray]:
    """The layout's rows in ``blocked_layout`` order, with each question slot's outcome."""
    start, y = _question_arrays(layout)
    blocks = blocked_layout(start, layout.x, layout.forecaster, layout.z, layout.f)
    blocks["by"] = slot_outcomes(blocks.pop("bquestion"), y)
    return blocks


def fast_loglik_graph(g: dict, gb, gs, par: dict, blocks: dict):
    """``bayes._loglik_graph`` computed by ``blocked_loglik``; ``blocks``: tensors of ``_block_values``."""
    import pytensor.tensor as pt

    nodes, weights = bayes._gauss_hermite(bayes.N_VOLATILITY)
    op = _kalman_op_class()(bayes.FORECAST_WEIGHT)
    head = op(
        par["log_alpha"],
        par["bias"],
        par["opener_bias"],
        par["log_sigma"],
        gb,
        gs,
        pt.stack([g["m0"], g["s0"] ** 2, g["q"], g["kappa"], g["q_event"]]),
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
    parameters on a small synthetic data set. Once per process; the result decides which likelihood
    the sampler uses, so that a change to the model in ``bayes`` is never sampled with a stale kernel."""
    with _LOCK:
        if not _CHECK:
            try:
                _CHECK.update(_run_likelihood_check())
            except Exception as exc:  # a model change the kernel cannot even express
                _CHECK.update(ok=False, error=repr(exc))
            if not _CHECK["ok"]:
                logger.warning("fast Kalman likelihood unusable, sampling with pytensor's scan: %s", _CHECK)
        return dict(_CHECK)


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
    blocks = _block_values(layout)
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
    import pytensor.tensor as pt

    gv = {name: theta[i] for i, name in enumerate(bayes._GLOBAL_NAMES)}
    o = bayes._NG
    gb, gs = theta[o : o + N_COV], theta[o + N_COV : o + 2 * N_COV]
    o += 2 * N_COV
    par = {name: theta[o + i * nf : o + (i + 1) * nf] for i, name in enumerate(_FORECASTER_PARAMS)}
    return _globals_dict(gv, pt), gb, gs, par


def _globals_dict(gv: dict, pt) -> dict:
    """The likelihood's globals from the sampled ones (as ``bayes._map_objective`` builds them)."""
    return {
        "m0": gv["m0"],
        "s0": pt.exp(gv["log_s0"]),
        "q": pt.exp(gv["log_q"]),
        "kappa": pt.exp(gv["log_kappa"]),
        "q_event": pt.exp(gv["log_q_event"]),
        "omega": pt.exp(gv["log_omega"]),
    }


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

    ``centred`` (4, capacity): 1.0 where the effect is sampled centred (the forecaster's data pin it
    down), 0.0 where non-centred (few forecasts, or a padding slot). ``zbar`` (capacity, N_COV): the
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
        "opener_bias": np.bincount(layout.forecaster, weights=layout.z[:, 0], minlength=nf),
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
        values = _block_values(layout)
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
    return values | _centring(layout, capacity)


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


@dataclass
class _Compiled:
    capacity: int
    fast: bool
    model: Any
    nutpie_model: Any  # None without nutpie
    free: list[str]  # the sampled coordinates
    stored: list[str]  # and the model's parameters (Deterministics)
    seconds: float


_MODELS: dict[tuple[int, bool], _Compiled] = {}


def _normal_logp(value, mean, sd, pt):
    return -0.5 * ((value - mean) / sd) ** 2 - pt.log(sd)


def _build_model(capacity: int, fast: bool):
    """The PyMC model with ``capacity`` forecaster slots; the data in ``pm.Data`` containers.

    The sampler moves in coordinates that are a unit-Jacobian shear of the model's parameters, so
    that the posterior has no long thin ridges (each found by sampling without it):

    - a centred forecaster bias is sampled as ``u_j = bias_j - mu_b' + zbar_j . gamma_bias +
      alpha_j m0``: what the forecaster's forecasts measure, relative to the sampled mean ``mu_b'``
      (else every bias moves with the covariate slopes and with the latent's level);
    - ``mu_b' = mu_b + zbar_mean . gamma_bias + m0`` and ``m0' = m0 - mu_b'`` (the forecasts pin
      ``mu_b'`` and the outcomes pin ``m0 + mu_b'`` only up to the questions' common level);
    - a centred log noise is ``u_j = log_sigma_j - mu_s' + zbar_j . gamma_noise`` with
      ``mu_s' = mu_s + zbar_mean . gamma_noise``.

    Potentials turn the priors of the sampled coordinates into the model's priors; Deterministics
    (named as in ``bayes``, ``m0``/``mu_b``/``mu_s`` with a ``_model`` suffix) give the parameters."""
    import pymc as pm
    import pytensor.tensor as pt

    with pm.Model() as model:
        shared = {
            name: pm.Data(name, value) for name, value in _data_values(_placeholder_layout(), capacity, fast).items()
        }
        priors = {name: (mean, sd) for name, mean, sd, *_ in _GLOBALS if mean is not None}
        sampled = {name: pm.Normal(name, mean, sd) for name, (mean, sd) in priors.items()}
        taus = {t: pm.Gamma(t, alpha=_TAU_SHAPE, beta=_TAU_RATE) for t in _TAUS.values()}
        gamma_bias = pm.Normal("gamma_bias", 0.0, _SLOPE_SD, shape=N_COV)
        gamma_noise = pm.Normal("gamma_noise", 0.0, _SLOPE_SD, shape=N_COV)
        slopes = {"bias": gamma_bias, "log_sigma": gamma_noise}
        gv = dict(sampled)
        gv["m0"] = sampled["m0"] + sampled["mu_b"]
        gv["mu_b"] = sampled["mu_b"] - pt.dot(shared["zbar_mean"][0], gamma_bias) - gv["m0"]
        gv["mu_s"] = sampled["mu_s"] - pt.dot(shared["zbar_mean"][1], gamma_noise)
        for name in ("m0", "mu_b", "mu_s"):
            gv[name] = pm.Deterministic(f"{name}_model", gv[name])
            mean, sd = priors[name]
            pm.Potential(
                f"{name}_shear", _normal_logp(gv[name], mean, sd, pt) - _normal_logp(sampled[name], mean, sd, pt)
            )
        par = {}
        for i, name in enumerate(_FORECASTER_PARAMS):
            u = pm.Normal(f"{name}_u", 0.0, 1.0, shape=capacity)
            c = shared["centred"][i]
            mu = gv[_MEANS[name]] if _MEANS[name] else 0.0
            tau = taus[_TAUS[name]]
            centred_value = u
            if name in slopes:
                centred_value = u - pt.dot(shared["zbar"], slopes[name])
            if name == "bias":
                centred_value = centred_value - pt.exp(par["log_alpha"]) * sampled["m0"]
            par[name] = pm.Deterministic(name, c * centred_value + (1.0 - c) * (mu + tau * u))
            correction = _normal_logp(par[name], mu, tau, pt) - _normal_logp(u, 0.0, 1.0, pt)
            pm.Potential(f"{name}_centring", (c * correction).sum())
        g = _globals_dict(gv, pt)
        if fast:
            loglik = fast_loglik_graph(g, gamma_bias, gamma_noise, par, shared)
        else:
            loglik = bayes._loglik_graph(g, gamma_bias, gamma_noise, par, {**shared, "buckets": _one_block(shared)})
        pm.Potential("likelihood", loglik)
    return model


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
        free = [v.name for v in model.free_RVs]
        stored = free + [v.name for v in model.deterministics]
        try:
            import nutpie
        except ImportError:  # PyMC's own sampler (compiles per fit)
            nutpie_model = None
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                nutpie_model = nutpie.compile_pymc_model(model, backend="numba", var_names=stored)
        compiled = _Compiled(capacity, fast, model, nutpie_model, free, stored, time.monotonic() - started)
        _MODELS[(capacity, fast)] = compiled
        return compiled


# --- fitting ----------------------------------------------------------------------------------------


def fit_nuts(data: ForecastData, *, draws: int, tune: int, chains: int, random_seed: int | None) -> BayesFit:
    """Full posterior with NUTS (nutpie when installed, else PyMC's sampler on one core): posterior
    means in the MAP fit's structure, arviz diagnostics (``max_rhat``, ``min_ess``, ``divergences``)."""
    started = time.monotonic()
    layout = _layout(data)
    nf = len(layout.keys)
    capacity = _capacity(nf)
    fresh = (capacity, bool(likelihood_check()["ok"])) not in _MODELS
    compiled = _compiled(capacity)
    values = _data_values(layout, capacity, compiled.fast)
    sampling_started = time.monotonic()
    draws_by_name, stats = _sample(compiled, values, draws=draws, tune=tune, chains=chains, random_seed=random_seed)
    sampling_seconds = time.monotonic() - sampling_started

    columns = []  # the sampled parameters, padding slots left out
    for name in compiled.free:
        value = draws_by_name[name]
        value = value[..., :nf] if name.endswith("_u") else value
        columns.append(value.reshape(value.shape[0], value.shape[1], -1))
    max_rhat, min_ess = _rhat_ess(np.concatenate(columns, axis=-1))

    def mean(value):
        return np.asarray(value).mean(axis=(0, 1))

    model_name = {"m0": "m0_model", "mu_b": "mu_b_model", "mu_s": "mu_s_model"}
    theta = [
        float(mean(draws_by_name[model_name.get(name, name)]))
        if prior_mean is not None
        else float(mean(np.log(draws_by_name[name[4:]])))
        for name, prior_mean, *_ in _GLOBALS
    ]
    population = _population_from_vector(
        np.array(theta + list(mean(draws_by_name["gamma_bias"])) + list(mean(draws_by_name["gamma_noise"])))
    )
    centred = values["centred"][:, :nf]
    params = {name: mean(draws_by_name[name][..., :nf]) for name in _FORECASTER_PARAMS}
    forecasters = {
        key: {**{name: float(params[name][j]) for name in _FORECASTER_PARAMS}, "n_forecasts": int(layout.counts[j])}
        for j, key in enumerate(layout.keys)
    }
    return BayesFit(
        population=population,
        forecasters=forecasters,
        method="nuts",
        n_questions=data.n_questions,
        n_forecasters=nf,
        n_forecasts=len(layout.x),
        duration_seconds=time.monotonic() - started,
        diagnostics={
            "max_rhat": max_rhat,
            "min_ess": min_ess,
            **stats,
            "draws": draws,
            "tune": tune,
            "chains": chains,
            "likelihood": "kalman-numba" if compiled.fast else "pytensor-scan",
            "capacity": capacity,
            "centred": int(centred.sum()),
            "compile_seconds": compiled.seconds if fresh else 0.0,
            "sampling_seconds": sampling_seconds,
        },
    )


def _sample(
    compiled: _Compiled, values: dict, *, draws: int, tune: int, chains: int, random_seed: int | None
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """``{free variable: (chains, draws, ...) array}`` and the sampler's statistics."""
    if compiled.nutpie_model is not None:
        import nutpie

        trace = nutpie.sample(
            compiled.nutpie_model.with_data(**values),
            draws=draws,
            tune=tune,
            chains=chains,
            cores=max(1, min(chains, os.cpu_count() or 1)),
            seed=random_seed,
            progress_bar=False,
            save_warmup=False,
            target_accept=TARGET_ACCEPT,
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
                cores=1,  # no fork inside a daemonic (prefork) worker
                random_seed=random_seed,
                progress_bar=False,
                compute_convergence_checks=False,
                target_accept=TARGET_ACCEPT,
            )
        stats = {"sampler": "pymc", "divergences": int(np.asarray(trace.sample_stats["diverging"]).sum())}
    return {name: np.asarray(trace.posterior[name]) for name in compiled.stored}, stats


def _rhat_ess(stacked: np.ndarray) -> tuple[float, float]:
    """Largest rank-normalised split R-hat and smallest bulk ESS (arviz) over (chains, draws, params)."""
    import arviz as az

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rhat = np.asarray(az.rhat(stacked, chain_axis=0, draw_axis=1))
        ess = np.asarray(az.ess(stacked, chain_axis=0, draw_axis=1, method="bulk"))
    return float(np.nanmax(rhat)), float(np.nanmin(ess))


def warm_up(n_forecasters: int = MIN_CAPACITY) -> float:
    """Check the kernel, compile the model for ``n_forecasters`` and sample a few draws on a tiny data
    set, so that a worker's first fit compiles nothing (numba's and pytensor's caches on disk make a
    later process's warm-up faster). Returns the seconds it took."""
    started = time.monotonic()
    rng = np.random.default_rng(0)
    n_questions, per_question = bayes.MIN_TRAINING_QUESTIONS, 3
    q = np.repeat(np.arange(n_questions), per_question)
    data = ForecastData(
        question_index=q,
        forecaster_key=[f"warm-up-{i % 4}" for i in range(len(q))],
        probability=rng.uniform(0.1, 0.9, size=len(q)),
        seconds_to_resolution=np.tile([3.0, 2.0, 1.0], n_questions) * 86400.0,
        outcome=rng.integers(0, 2, size=n_questions),
    )
    fit_nuts(data, draws=5, tune=5, chains=1, random_seed=0)
    _compiled(_capacity(n_forecasters))
    return time.monotonic() - started
