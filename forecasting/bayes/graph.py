"""The training likelihood as a pytensor graph: each resolved question's Kalman filter as a
``pytensor.scan`` over its padded block of forecasts. The reference definition of the likelihood:
the numba kernel (``kernel``) must compute the same function, which ``kernel_op.likelihood_check``
verifies. No Django import."""

from __future__ import annotations

import math

import numpy as np
import pytensor
import pytensor.tensor as pt

from .layout import TrainingLayout
from .model import FORECAST_WEIGHT, N_BUCKETS, N_COV, N_VOLATILITY, gauss_hermite, loading


def _log_ndtr(z):
    """Stable ``log Phi(z)`` for pytensor tensors."""
    return pt.switch(
        z < 0,
        pt.log(0.5 * pt.erfcx(-z / math.sqrt(2.0))) - z**2 / 2,
        pt.log1p(-0.5 * pt.erfc(z / math.sqrt(2.0))),
    )


def covariate_dot(z, coef):
    """``z.dot(coef)`` for a (rows, N_COV) matrix as a sum of N_COV scaled columns: elementwise work,
    no BLAS call. A BLAS gemv this size (100,000 x 4 in the MAP objective; 2,828 x 4 in the NUTS
    model) runs on OpenBLAS's thread pool, whose worker spins between calls: on a 2-core host that
    doubled the MAP's CPU time, and when the other core was busy (the other chain, another job) the
    MAP took 2.5x as long (docs/bayes.md, Speed)."""
    return sum(z[:, c] * coef[c] for c in range(N_COV))


def loglik_graph(g: dict, gb, gs, par: dict, inputs: dict):
    """Log-likelihood of the resolved questions (forecasts and outcomes), as a pytensor scalar.

    ``g``: global tensors (m0, s0, q, kappa, q_event, omega, eta); ``par``: per-forecaster vectors
    (log_alpha, bias, log_sigma); ``inputs``: the data tensors of ``input_tensors``.
    """
    fidx, z = inputs["forecaster"], inputs["z"]
    clock_power = pt.exp(g["kappa"] * pt.log(inputs["f"]))
    r = g["q"] * clock_power
    alpha = pt.exp(par["log_alpha"][fidx]) * loading(g["eta"], clock_power)
    beta = par["bias"][fidx] + z.dot(gb)
    e = pt.exp(2.0 * (par["log_sigma"][fidx] + z.dot(gs)))
    prev = inputs["prev"]
    is_later = pt.neq(prev, pt.arange(prev.shape[0]))
    d = (pt.maximum(r[prev] - r, 0.0) + g["q_event"]) * is_later
    one, zero = pt.ones((1,)), pt.zeros((1,))
    xe = pt.concatenate([inputs["x"], zero])
    ae = pt.concatenate([alpha, one])
    be = pt.concatenate([beta, zero])
    ee = pt.concatenate([e, one])
    de = pt.concatenate([d, zero])

    nodes, weights = gauss_hermite(N_VOLATILITY)
    scale = pt.exp(g["omega"] * pt.as_tensor(nodes))[None, :]  # (1, K)
    log_weight = pt.as_tensor(np.log(weights))[None, :]

    def step(x_, a_, b_, e_, d_, mask_, m_, v_, ll_):
        x_, a_, b_, e_, d_, mask_ = (t[:, None] for t in (x_, a_, b_, e_, d_, mask_))
        v_ = v_ + d_ * scale
        s_ = a_**2 * v_ + e_
        innovation = x_ - a_ * m_ - b_
        gain = v_ * a_ / s_
        ll_ = ll_ + mask_ * (-0.5 * pt.log(2 * np.pi * s_) - 0.5 * innovation**2 / s_)
        return m_ + mask_ * gain * innovation, v_ - mask_ * gain * a_ * v_, ll_

    total = 0.0
    k = len(nodes)
    for idx, mask, last, y in inputs["buckets"]:
        nq = y.shape[0]
        ms, vs, lls = pytensor.scan(
            step,
            sequences=[xe[idx], ae[idx], be[idx], ee[idx], de[idx], mask],
            outputs_info=[pt.zeros((nq, k)) + g["m0"], pt.zeros((nq, k)) + g["s0"] ** 2, pt.zeros((nq, k))],
            return_updates=False,
        )
        z_out = (2 * y - 1)[:, None] * ms[-1] / pt.sqrt(vs[-1] + r[last][:, None] * scale)
        per_node = log_weight + FORECAST_WEIGHT * lls[-1] + _log_ndtr(z_out)
        total = total + pt.logsumexp(per_node, axis=1).sum()
    return total


def input_tensors() -> dict:
    return {
        "x": pt.dvector("x"),
        "forecaster": pt.lvector("forecaster"),
        "f": pt.dvector("f"),
        "z": pt.dmatrix("z"),
        "prev": pt.lvector("prev"),
        "buckets": [
            (pt.lmatrix(f"idx{b}"), pt.dmatrix(f"mask{b}"), pt.lvector(f"last{b}"), pt.dvector(f"y{b}"))
            for b in range(N_BUCKETS)
        ],
    }


def input_values(layout: TrainingLayout) -> list:
    values = [layout.x, layout.forecaster, layout.f, layout.z, layout.prev]
    for bucket in layout.buckets:
        values.extend(bucket)
    return values


def flat_inputs(inputs: dict) -> list:
    flat = [inputs["x"], inputs["forecaster"], inputs["f"], inputs["z"], inputs["prev"]]
    for bucket in inputs["buckets"]:
        flat.extend(bucket)
    return flat


def likelihood_globals(gv: dict) -> dict:
    """The likelihood's global tensors (``loglik_graph``'s ``g``) from the sampled ones (``GLOBALS``)."""
    return {
        "m0": gv["m0"],
        "s0": pt.exp(gv["log_s0"]),
        "q": pt.exp(gv["log_q"]),
        "kappa": pt.exp(gv["log_kappa"]),
        "q_event": pt.exp(gv["log_q_event"]),
        "omega": pt.exp(gv["log_omega"]),
        "eta": pt.exp(gv["log_eta"]),
    }
