"""Prototype 4: dynamic latent log-odds (random walk in question-relative time) + Turner forecaster view.

l_i(f): latent log-odds of question i when the fraction f of its life remains (f = 1 at the first
forecast, 0 at resolution). l_i(1) ~ N(m0, s0^2); l_i(f') - l_i(f) ~ N(0, q (f^k - f'^k)) for f' < f.
y_i ~ Bern(sigmoid(l_i(0))).  x_ik = alpha_j l_i(f_k) + beta_j + eps, eps ~ N(0, sigma_k^2),
log sigma_k = s_j + C_k gs.  Kalman filter per question; MAP with Laplace-corrected hierarchy.
"""
import time, functools
import numpy as np
import pytensor, pytensor.tensor as pt
from scipy.optimize import minimize
from scipy.special import expit, logit

P = ['a', 'b', 's']
GLOB = ['mu_a', 'mu_b', 'mu_s', 'lt_a', 'lt_b', 'lt_s', 'm0', 'ls0', 'lq', 'lk', 'lqa', 'lca']
NG = len(GLOB)
GH_N = 20
_gx, _gw = np.polynomial.hermite.hermgauss(GH_N)
GH_NODES = _gx * np.sqrt(2.0)
GH_LOGW = np.log(_gw / np.sqrt(np.pi))


def _normal(v, mu, sd):
    return -0.5 * ((v - mu) / sd) ** 2 - pt.log(sd)


def remaining(f, t, g, lib):
    """Process variance still to come when fraction f of the life / t days remain."""
    q, k, qa, ca = g
    out = q * f ** k
    if qa is not None:
        out = out + qa * lib.log1p(t / ca)
    return out


@functools.lru_cache(maxsize=None)
def compiled(n_cov, abs_time=False, tau_prior_mu=np.log(0.5)):
    theta = pt.dvector('theta')
    # padded (nq, n) arrays, columns = forecasts in time order; mask 0 for padding
    X = pt.dmatrix('X'); F = pt.lmatrix('F'); FR = pt.dmatrix('FR'); TD = pt.dmatrix('TD'); M = pt.dmatrix('M')
    C = pt.dtensor3('C'); y = pt.dvector('y'); nf = pt.lscalar('nf')
    g = {n: theta[i] for i, n in enumerate(GLOB)}
    gs = theta[NG:NG + n_cov]
    o = NG + n_cov
    par = {}
    for p in P:
        par[p] = theta[o:o + nf]; o += nf
    q, k = pt.exp(g['lq']), pt.exp(g['lk'])
    qa, ca = (pt.exp(g['lqa']), pt.exp(g['lca'])) if abs_time else (None, None)
    R = remaining(FR, TD, (q, k, qa, ca), pt)  # (nq, n)
    alpha = pt.exp(par['a'][F]); beta = par['b'][F]
    log_sigma = par['s'][F] + (C.dot(gs) if n_cov else 0.0)
    var_e = pt.exp(2 * log_sigma)
    s02 = pt.exp(2 * g['ls0'])
    nq = X.shape[0]
    # initial state: at f = 1 (question start), prior N(m0, s0^2); R at start = remaining(1, t_first)
    R_prev0 = R[:, 0]

    def step(x, a, b, ve, r, msk, m, v, rprev, ll):
        v = v + pt.switch(msk > 0, pt.maximum(rprev - r, 0.0), 0.0)
        S = a ** 2 * v + ve
        innov = x - a * m - b
        K = v * a / S
        ll = ll + msk * (-0.5 * pt.log(S) - 0.5 * innov ** 2 / S)
        m = m + msk * K * innov
        v = v - msk * K * a * v
        rprev = pt.switch(msk > 0, r, rprev)
        return m, v, rprev, ll

    (ms, vs, rs, lls), _ = pytensor.scan(
        step,
        sequences=[X.T, alpha.T, beta.T, var_e.T, R.T, M.T],
        outputs_info=[pt.zeros((nq,)) + g['m0'], pt.zeros((nq,)) + s02, R_prev0, pt.zeros((nq,))],
    )
    m_last, v_last, r_last, ll_x = ms[-1], vs[-1], rs[-1], lls[-1]
    v_res = v_last + r_last  # add all variance still to come up to resolution
    sign = 2 * y - 1
    zz = m_last[:, None] + pt.sqrt(v_res)[:, None] * pt.as_tensor(GH_NODES)[None, :]
    logpy = pt.logsumexp(pt.as_tensor(GH_LOGW)[None, :] - pt.softplus(-sign[:, None] * zz), axis=1)
    ll = ll_x.sum() + logpy.sum()
    # hierarchy with Laplace correction
    Ff = F.flatten(); Mf = M.flatten()
    prec = (1.0 / var_e).flatten() * Mf

    def fseg(v):
        return pt.inc_subtensor(pt.zeros((nf,))[Ff], v)
    h = {'a': fseg(prec * (alpha.flatten() ** 2) * 4.0), 'b': fseg(prec), 's': fseg(2.0 * Mf)}
    lp = 0.0
    for p in P:
        tau = pt.exp(g['lt_' + p])
        lp += (-0.5 * ((par[p] - g['mu_' + p]) / tau) ** 2).sum() + (-0.5 * pt.log1p(h[p] * tau ** 2)).sum()
        lp += _normal(g['mu_' + p], 0.0, 1.0) + _normal(g['lt_' + p], tau_prior_mu, 1.0)
    lp += _normal(g['m0'], 0.0, 1.5) + _normal(g['ls0'], np.log(1.5), 1.0)
    lp += _normal(g['lq'], np.log(2.0), 1.5) + _normal(g['lk'], 0.0, 1.0)
    lp += _normal(g['lqa'], 0.0, 1.5) + _normal(g['lca'], 0.0, 1.5)
    lp += _normal(gs, 0.0, 1.0).sum() if n_cov else 0.0
    obj = -(ll + lp)
    grad = pt.grad(obj, theta)
    return pytensor.function([theta, X, F, FR, TD, M, C, y, nf], [obj, grad], on_unused_input='ignore')


class Fit:
    pass


def covariates(days, rank, frac, spec, center=None):
    cols = []
    pos = None
    if np.ndim(rank) == 2:
        rank, pos, nrev = rank[:, 0], rank[:, 1], rank[:, 2]
    for name in spec:
        if name == 'logt':
            cols.append(np.log1p(days))
        elif name == 'logfrac':
            cols.append(np.log(np.clip(frac, 1e-4, 1)))
        elif name == 'logpos':
            cols.append(np.log1p(pos))
        elif name == 'revised':
            cols.append(np.log1p(nrev))
        elif name == 'first':
            cols.append((pos == 0).astype(float))
        elif name == 'rank0':
            cols.append((rank == 0).astype(float))
    C = np.column_stack(cols) if cols else np.zeros((len(days), 0))
    if center is None:
        center = (C.mean(0), C.std(0) + 1e-9) if cols else (np.zeros(0), np.ones(0))
    return (C - center[0]) / center[1], center


def pad(qidx, nq, *arrays):
    counts = np.bincount(qidx, minlength=nq)
    n = max(int(counts.max()), 1)
    order = np.argsort(qidx, kind='stable')
    starts = np.r_[0, np.cumsum(counts)[:-1]]
    col = np.arange(len(qidx)) - starts[qidx[order]]
    out = []
    for arr, fill in arrays:
        shape = (nq, n) + arr.shape[1:]
        A = np.full(shape, fill, dtype=arr.dtype)
        A[qidx[order], col] = arr[order]
        out.append(A)
    M = np.zeros((nq, n)); M[qidx[order], col] = 1.0
    return out, M


def fit(keys, qidx, p, days, rank, frac, y, spec=(), clip=0.01, previous=None, maxiter=5000, abs_time=False, **kw):
    """Forecasts must be in time order within each question."""
    t0 = time.time()
    uniq, f = np.unique(keys, return_inverse=True)
    nf = len(uniq); nq = len(y)
    x = logit(np.clip(p, clip, 1 - clip))
    C, center = covariates(days, rank, frac, spec)
    nc = C.shape[1]
    fn = compiled(nc, abs_time=abs_time, **kw)
    (X, Fm, FR, TD, Cm), M = pad(qidx, nq, (x, 0.0), (f.astype(np.int64), 0), (frac, 1.0), (days, 0.0), (C, 0.0))
    if nc == 0:
        Cm = np.zeros(X.shape + (0,))
    o = NG + nc
    theta = np.zeros(o + 3 * nf)
    init = dict(lt_a=np.log(0.5), lt_b=np.log(0.5), lt_s=np.log(0.5), ls0=np.log(1.5), lq=np.log(2.0))
    for i, n in enumerate(GLOB):
        theta[i] = init.get(n, 0.0)
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
    else:
        for i in range(3):
            theta[o + i * nf:o + (i + 1) * nf] = theta[i]
    args = (X, Fm, FR, TD, M, Cm, y.astype(float), nf)
    res = minimize(lambda th: fn(th, *args), theta, jac=True, method='L-BFGS-B', options=dict(maxiter=maxiter))
    th = res.x
    out = Fit()
    out.g = th[:o]; out.keys = uniq; out.abs_time = abs_time
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
    a, b, s = [np.where(j >= 0, fit.par[i][np.maximum(j, 0)], fit.g[i]) for i in range(3)]
    alpha = np.exp(a); ve = np.exp(2 * (s + C @ gs))
    qa, ca = (np.exp(g['lqa']), np.exp(g['lca'])) if fit.abs_time else (None, None)
    R = remaining(frac, days, (np.exp(g['lq']), np.exp(g['lk']), qa, ca), np)
    m, v = g['m0'], np.exp(2 * g['ls0'])
    rprev = R[0]
    for k in range(len(x)):
        v += max(rprev - R[k], 0.0); rprev = R[k]
        S = alpha[k] ** 2 * v + ve[k]
        K = v * alpha[k] / S
        m += K * (x[k] - alpha[k] * m - b[k]); v -= K * alpha[k] * v
    v += rprev
    sd = np.sqrt(v)
    pm = float(np.sum(np.exp(GH_LOGW) * expit(m + sd * GH_NODES)))
    return pm, expit(m - 1.645 * sd), expit(m + 1.645 * sd)
