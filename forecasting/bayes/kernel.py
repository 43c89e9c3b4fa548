"""The training likelihood's numba kernel: every resolved question's Kalman filters in one pass,
questions side by side in blocks (``blocked_layout``), with the reverse pass (the gradient) written
out. It computes ``graph.loglik_graph`` and its gradient about 10x faster than pytensor's scan, with
no allocation per forecast. Pure numpy/numba: no pytensor, no Django import (the pytensor Op around
it is ``kernel_op``)."""

from __future__ import annotations

import math

import numba
import numpy as np

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
    """``graph.loglik_graph`` and its gradient, the Kalman filters' reverse pass written out.

    Parameters: per forecaster ``la`` (log alpha), ``bias``, ``ls`` (log sigma);
    the covariate slopes ``gb``, ``gs``; ``glob`` = (m0, s0^2, q, kappa, q_event, eta); the volatility
    nodes' multipliers ``scale`` and prior log weights; ``fw`` the forecasts' weight. Data: the
    ``blocked_layout`` arrays and ``by``, each slot's outcome.

    Per cell: r = q f^kappa, alpha = exp(la) sqrt((1 + eta) / (f^kappa + eta)) (``model.loading``),
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
        # the loading (model.loading): two loops, so that the square roots vectorise (2x faster)
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
