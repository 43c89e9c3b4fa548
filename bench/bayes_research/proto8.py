"""Prototype 6: proto4 model, bucketed padded Kalman scans (fast gradients)."""
import time, functools
import numpy as np
import pytensor, pytensor.tensor as pt
from scipy.optimize import minimize
from scipy.special import expit, logit
from proto4 import P, GH_NODES, GH_LOGW, _normal, remaining, covariates  # noqa
GLOB = ['mu_a', 'mu_b', 'mu_s', 'lt_a', 'lt_b', 'lt_s', 'm0', 'ls0', 'lq', 'lk', 'lqa', 'lca', 'lc', 'lqe']
NG = len(GLOB)

STEP_COST = 600.0
TAU_RATE = 2.0


def buckets(counts, B):
    """Partition questions (by forecast count) into at most B groups minimising padded cost."""
    vals = np.unique(counts)
    nv = len(vals)
    B = min(B, nv)
    nq_le = np.array([(counts <= v).sum() for v in vals])
    def cost(i, j):  # group of distinct values vals[i..j]
        n = nq_le[j] - (nq_le[i - 1] if i > 0 else 0)
        return n * vals[j] + STEP_COST * vals[j]
    INF = float('inf')
    D = np.full((B + 1, nv), INF); arg = np.zeros((B + 1, nv), int)
    for j in range(nv):
        D[1, j] = cost(0, j)
    for b in range(2, B + 1):
        for j in range(nv):
            for i in range(1, j + 1):
                c = D[b - 1, i - 1] + cost(i, j)
                if c < D[b, j]:
                    D[b, j] = c; arg[b, j] = i
    bounds = []; j = nv - 1; b = B
    while b >= 1:
        i = arg[b, j] if b > 1 else 0
        bounds.append((vals[i], vals[j])); j = i - 1; b -= 1
    return bounds[::-1]


@functools.lru_cache(maxsize=None)
def compiled(n_cov, n_buckets, abs_time=False, tau_prior_mu=np.log(0.5), x_weight=1.0, link='logit', event=False):
    theta = pt.dvector('theta')
    x = pt.dvector('x'); f = pt.lvector('f'); fr = pt.dvector('fr'); td = pt.dvector('td'); C = pt.dmatrix('C')
    prev = pt.lvector('prev'); nf = pt.lscalar('nf')
    bins = [(pt.lmatrix(f'idx{b}'), pt.dmatrix(f'msk{b}'), pt.lvector(f'last{b}'), pt.dvector(f'y{b}')) for b in range(n_buckets)]
    g = {n: theta[i] for i, n in enumerate(GLOB)}
    gs = theta[NG:NG + n_cov]
    o = NG + n_cov
    par = {}
    for p in P:
        par[p] = theta[o:o + nf]; o += nf
    q, k = pt.exp(g['lq']), pt.exp(g['lk'])
    qa, ca = (pt.exp(g['lqa']), pt.exp(g['lca'])) if abs_time else (None, None)
    R = remaining(fr, td, (q, k, qa, ca), pt)
    dR = pt.maximum(R[prev] - R, 0.0)
    if event:
        dR = dR + pt.exp(g['lqe']) * pt.neq(prev, pt.arange(prev.shape[0]))
    alpha = pt.exp(par['a'][f]); beta = par['b'][f]
    log_sigma = par['s'][f] + (C.dot(gs) if n_cov else 0.0)
    ve = pt.exp(2 * log_sigma)
    one = pt.ones((1,)); zero = pt.zeros((1,))
    xe = pt.concatenate([x, zero]); ae = pt.concatenate([alpha, one]); be = pt.concatenate([beta, zero])
    vee = pt.concatenate([ve, one]); dRe = pt.concatenate([dR, zero])
    s02 = pt.exp(2 * g['ls0'])
    LC = pt.exp(g['lc'])

    def step(xx, a, b, e, d, msk, m, v, ll):
        v = v + d
        S = a ** 2 * v + e
        innov = xx - a * m - b
        K = v * a / S
        ll = ll + msk * (-0.5 * pt.log(S) - 0.5 * innov ** 2 / S)
        m = m + msk * K * innov
        v = v - msk * K * a * v
        return m, v, ll

    ll = 0.0
    for idx, msk, last, yb in bins:
        nqb = yb.shape[0]
        (ms, vs, lls), _ = pytensor.scan(
            step, sequences=[xe[idx], ae[idx], be[idx], vee[idx], dRe[idx], msk],
            outputs_info=[pt.zeros((nqb,)) + g['m0'], pt.zeros((nqb,)) + s02, pt.zeros((nqb,))])
        m_last, v_res = ms[-1], vs[-1] + R[last]
        sign = 2 * yb - 1
        if link == 'probit':
            zsc = sign * m_last / pt.sqrt(v_res)
            logpy = pt.switch(zsc < 0, pt.log(0.5 * pt.erfcx(-zsc / np.sqrt(2))) - zsc ** 2 / 2, pt.log1p(-0.5 * pt.erfc(zsc / np.sqrt(2))))
        else:
            zz = LC * (m_last[:, None] + pt.sqrt(v_res)[:, None] * pt.as_tensor(GH_NODES)[None, :])
            logpy = pt.logsumexp(pt.as_tensor(GH_LOGW)[None, :] - pt.softplus(-sign[:, None] * zz), axis=1)
        ll = ll + x_weight * lls[-1].sum() + logpy.sum()
    prec = 1.0 / ve

    def fseg(v):
        return pt.inc_subtensor(pt.zeros((nf,))[f], v)
    h = {'a': fseg(prec * alpha ** 2 * 4.0), 'b': fseg(prec), 's': fseg(2.0 * pt.ones_like(prec))}
    lp = 0.0
    for p in P:
        tau = pt.exp(g['lt_' + p])
        mu_p = 0.0 if p == 'a' else g['mu_' + p]
        lp += (-0.5 * ((par[p] - mu_p) / tau) ** 2).sum() + (-0.5 * pt.log1p(h[p] * tau ** 2)).sum()
        lp += (_normal(g['mu_' + p], 0.0, 1.0) if p != 'a' else -0.5 * g['mu_a'] ** 2)
        lp += 2.0 * g['lt_' + p] - TAU_RATE * tau  # Gamma(2, rate) on tau, in log space
    lp += _normal(g['m0'], 0.0, 1.5) + _normal(g['ls0'], np.log(1.5), 1.0)
    lp += _normal(g['lq'], np.log(2.0), 1.5) + _normal(g['lk'], 0.0, 1.0)
    lp += _normal(g['lqa'], 0.0, 1.5) + _normal(g['lca'], 0.0, 1.5) + _normal(g['lc'], 0.0, 1.0) + _normal(g['lqe'], np.log(0.1), 1.5)
    lp += _normal(gs, 0.0, 1.0).sum() if n_cov else 0.0
    obj = -(ll + lp)
    grad = pt.grad(obj, theta)
    inputs = [theta, x, f, fr, td, C, prev, nf] + [v for bn in bins for v in bn]
    return pytensor.function(inputs, [obj, grad], on_unused_input='ignore')


def layout(qidx, nq, y, B):
    """Forecasts must be in time order within each question (stable by index)."""
    N = len(qidx)
    counts = np.bincount(qidx, minlength=nq)
    order = np.argsort(qidx, kind='stable')
    starts = np.r_[0, np.cumsum(counts)[:-1]]
    pos = np.empty(N, int); pos[order] = np.arange(N) - starts[qidx[order]]
    prev = np.arange(N)
    prev[order[pos[order] > 0]] = order[np.flatnonzero(pos[order] > 0) - 1]
    lastf = order[starts + counts - 1]
    out = []
    for lo, hi in buckets(counts[counts > 0], B):
        qs = np.flatnonzero((counts >= lo) & (counts <= hi))
        idx = np.full((hi, len(qs)), N, dtype=np.int64); msk = np.zeros((hi, len(qs)))
        for c, qq in enumerate(qs):
            n = counts[qq]
            idx[:n, c] = order[starts[qq]:starts[qq] + n]; msk[:n, c] = 1.0
        out.append((idx, msk, lastf[qs].astype(np.int64), y[qs].astype(float)))
    return prev, out


class Fit:
    pass


def fit(keys, qidx, p, days, rank, frac, y, spec=(), clip=0.01, previous=None, maxiter=5000, abs_time=False, B=4, ftol=1e-9, link='logit', event=False, **kw):
    t0 = time.time()
    uniq, f = np.unique(keys, return_inverse=True)
    nf = len(uniq); nq = len(y)
    x = logit(np.clip(p, clip, 1 - clip))
    C, center = covariates(days, rank, frac, spec)
    nc = C.shape[1]
    prev, bins = layout(qidx, nq, y, B)
    fn = compiled(nc, len(bins), abs_time=abs_time, link=link, event=event, **kw)
    o = NG + nc
    theta = np.zeros(o + 3 * nf)
    init = dict(lqe=np.log(0.1), lt_a=np.log(0.5), lt_b=np.log(0.5), lt_s=np.log(0.5), ls0=np.log(1.5), lq=np.log(2.0))
    for i, n in enumerate(GLOB):
        theta[i] = init.get(n, 0.0)
    for i in range(3):
        theta[o + i * nf:o + (i + 1) * nf] = theta[i]
    if previous is not None and previous[0].shape[0] == o:
        pg, pkeys, pp = previous
        theta[:o] = pg
        for i in range(3):
            theta[o + i * nf:o + (i + 1) * nf] = pg[i]
        idx = {k: i for i, k in enumerate(pkeys)}
        js = [(j, idx[k]) for j, k in enumerate(uniq) if k in idx]
        if js:
            jn, jo = map(np.array, zip(*js))
            for i in range(3):
                theta[o + i * nf + jn] = pp[i][jo]
    args = (x, f.astype(np.int64), frac, days, C if nc else np.zeros((len(x), 0)), prev.astype(np.int64), nf) + tuple(v for bn in bins for v in bn)
    out = Fit()
    out.nfev = 0
    def fg(th):
        out.nfev += 1
        return fn(th, *args)
    res = minimize(fg, theta, jac=True, method='L-BFGS-B', options=dict(maxiter=maxiter, maxcor=30, ftol=ftol, gtol=1e-5))
    th = res.x
    out.g = th[:o]; out.keys = uniq; out.abs_time = abs_time; out.link = link; out.event = event
    out.par = [th[o + i * nf:o + (i + 1) * nf] for i in range(3)]
    out.center = center; out.spec = spec; out.clip = clip; out.nc = nc; out.res = res
    out.idx = {k: i for i, k in enumerate(uniq)}
    out.time = time.time() - t0
    out.prev = (out.g, out.keys, out.par)
    return out


def aggregate(fit, keys, p, days, rank, frac):
    x = logit(np.clip(p, fit.clip, 1 - fit.clip))
    C, _ = covariates(days, rank, frac, fit.spec, fit.center)
    g = dict(zip(GLOB, fit.g[:NG]))
    gs = fit.g[NG:NG + fit.nc]
    j = np.array([fit.idx.get(k, -1) for k in keys])
    a, b, s = [np.where(j >= 0, fit.par[i][np.maximum(j, 0)], fit.g[i] if i else 0.0) for i in range(3)]
    alpha = np.exp(a); ve = np.exp(2 * (s + C @ gs))
    qa, ca = (np.exp(g['lqa']), np.exp(g['lca'])) if fit.abs_time else (None, None)
    R = remaining(frac, days, (np.exp(g['lq']), np.exp(g['lk']), qa, ca), np)
    m, v = g['m0'], np.exp(2 * g['ls0'])
    rprev = R[0]
    for k in range(len(x)):
        v += max(rprev - R[k], 0.0) + (np.exp(g['lqe']) if (fit.event and k > 0) else 0.0); rprev = R[k]
        S = alpha[k] ** 2 * v + ve[k]
        K = v * alpha[k] / S
        m += K * (x[k] - alpha[k] * m - b[k]); v -= K * alpha[k] * v
    v += rprev
    sd = np.sqrt(v); c = np.exp(g['lc'])
    if fit.link == 'probit':
        from scipy.special import ndtr
        pm = float(ndtr(m / sd))
    else:
        pm = float(np.sum(np.exp(GH_LOGW) * expit(c * (m + sd * GH_NODES))))
    return pm, pm, pm
