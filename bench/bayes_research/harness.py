import sys, time, json
sys.path.insert(0, '/work/main'); sys.path.insert(0, '/tmp/bayes-scratch')
import numpy as np
from forecasting import evaluation as ev, aggregation
import importlib, os; proto = importlib.import_module(os.environ.get("PROTO", "proto"))

PRED = {}
FRAME, _ = ev.load_forecasts('/work/shared/data/predictionbook_dev.csv.gz')

def hist_arrays(h, use_all=False):
    if use_all:
        L = h.all_forecasts; keys, made, p = L.forecaster_ids, L.made_at, L.probabilities[:, 1]
    else:
        keys, made, p = h.forecaster_ids, h.made_at, h.probabilities[:, 1]
    n = len(keys)
    days = np.maximum(h.resolved_at - made, 0) / 86400
    allk = h.all_forecasts.forecaster_ids
    uk, cnts = np.unique(allk, return_counts=True)
    nrev = cnts[np.searchsorted(uk, keys)] - 1 if not use_all else np.zeros(n)
    rank = np.stack([(n - 1 - np.arange(n)).astype(float), np.arange(n, dtype=float), nrev.astype(float)], 1)
    life = max(h.resolved_at - h.all_forecasts.made_at[0], 1.0)
    frac = np.maximum(h.resolved_at - made, 0) / life
    return keys, p, days, rank, frac

def make_learner(opts, fit_kw, use_all=False, stats=None):
    state = {'prev': None}
    def learner(training):
        if len(training) < 20:
            return {'__aggregate__': lambda h: aggregation.logodds_mean(h.probabilities)}
        K=[];Q=[];P=[];D=[];R=[];F=[]
        for i, h in enumerate(training):
            k, p, d, r, fr = hist_arrays(h, use_all)
            K.append(k); P.append(p); D.append(d); R.append(r); F.append(fr); Q.append(np.full(len(k), i))
        y = np.array([h.outcome_index for h in training], float)
        fitres = proto.fit(np.concatenate(K), np.concatenate(Q), np.concatenate(P), np.concatenate(D),
                           np.concatenate(R), np.concatenate(F), y, previous=state['prev'], **opts, **fit_kw)
        state["prev"] = getattr(fitres, "prev", None) or (fitres.g, fitres.keys, fitres.a, fitres.b, fitres.s)
        if stats is not None:
            stats.append((fitres.time, fitres.res.nit, fitres.res.success))
            if os.environ.get("VERBOSE"): print(len(training), round(fitres.time,2), fitres.res.nit, round(fitres.res.fun,1), np.round(fitres.g,2).tolist(), flush=True)
        def agg(h):
            k, p, d, r, fr = hist_arrays(h, os.environ.get('AGG_ALL') == '1')
            pm, lo, hi = proto.aggregate(fitres, k, p, d, r, fr)
            PRED[h.question_id] = (pm, h.outcome_index, h.resolved_at)
            return np.array([1 - pm, pm])
        return {'__aggregate__': agg}
    return learner

def run(name, opts={}, fit_kw={}, use_all=False):
    stats = []
    aggregation.AGGREGATORS['bayes'] = aggregation.Aggregator('bayes', aggregation.logodds_mean, 'x')
    ev.LEARNERS['bayes'] = make_learner(opts, fit_kw, use_all, stats)
    t = time.time()
    r = ev.evaluate(FRAME, methods=['bayes'])
    s = r['methods']['bayes']
    el = time.time() - t
    if os.environ.get('SAVE'):
        import pickle; pickle.dump(dict(PRED), open(os.environ['SAVE'], 'wb'))
    print(f"{name:40s} brier={s['brier']:.4f} log={s['log']:.4f} ece={s['ece']:.4f}  time={el:.0f}s fits={len(stats)} nit={np.mean([x[1] for x in stats]):.0f} mean_fit={np.mean([x[0] for x in stats]):.2f}s fails={sum(not x[2] for x in stats)}", flush=True)
    return s

if __name__ == '__main__':
    variants = json.loads(sys.argv[1])
    for v in variants:
        run(v.get('name', str(v)), v.get('opts', {}), v.get('fit_kw', {}), v.get('use_all', False))
