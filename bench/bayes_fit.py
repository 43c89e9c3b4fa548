"""Time of the Bayesian model's fits (forecasting/bayes/) on synthetic data drawn from its own story.

Targets (issue 23), on a 2-core machine: on 2,000 forecasters x 500 resolved questions x 100,000
forecasts, the full posterior (NUTS) <= 10 s with its diagnostics passing (max r-hat <= 1.05, min bulk
ESS >= 100, no divergences) and the point estimate (MAP) <= 1.5 s, each beside plain ``pm.sample()``
on a naively written PyMC model of the same data, measured in the same run; with ``--large``,
20,000 x 5,000 x 1,000,000 in <= 5 minutes and <= 4 GB peak RSS (the MAP point estimate).

    .venv/bin/python bench/bayes_fit.py [--seeds 0-9] [--draws 450 --tune N] [--naive-draws 1000 | --skip-naive]
    .venv/bin/python bench/bayes_fit.py --quick      # the same fits, a 200 + 200 draw naive baseline
    .venv/bin/python bench/bayes_fit.py --large

Output: bench/rows.py's rows (``--rows PATH`` writes them as JSON), progress on stderr. With
``--seeds``, each seed's data is fitted in turn after one compile, and the rows hold the worst
figures over the seeds. Fit times are warm: the models are compiled first, as a worker does at
start (``warm_up``); the compile times are printed apart. The naive model's time is the whole
``pm.sample()`` call (its compilation included, as a user meets it), on the first seed's data;
``--naive-draws`` sets its tune and draws (PyMC's default: 1,000 each). The progress lines give the
host's speed before and after each NUTS fit (one kernel gradient, two at once): the machine is shared.
"""

from __future__ import annotations

import argparse
import math
import resource
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
import rows  # noqa: E402 (bench/rows.py: the rows every bench reports in)

DAY = 86400.0
# The latent's story (forecasting/bayes/model.py): the clock's variance q, its shape kappa, a small
# variance per forecast (200 forecasts a question: 0.005 each adds 1.0 over a question's life), the first
# level N(m0, s0^2).
TRUTH = {"m0": 0.0, "s0": 1.5, "q": 2.0, "kappa": 1.0, "q_event": 0.005, "eta": 1.0}


def simulate(seed: int, n_forecasters: int, n_questions: int, n_forecasts: int):
    """``ForecastData`` drawn from the model's generative story: forecasters with their own scale
    (log alpha ~ N(0, 0.15)), bias (N(0.1, 0.3)) and noise (log sigma ~ N(0, 0.5)); each question's
    latent probit a random walk in its remaining life; each forecast a noisy, scaled (more so near
    resolution: ``bayes.loading``), shifted view of the latent when made; the outcome the latent's
    sign at resolution. One forecast per forecaster and question, a Poisson number of forecasts per
    question."""
    from forecasting import bayes

    rng = np.random.default_rng(seed)
    log_alpha = rng.normal(0.0, 0.15, n_forecasters)
    bias = rng.normal(0.1, 0.3, n_forecasters)
    log_sigma = rng.normal(0.0, 0.5, n_forecasters)
    counts = np.clip(rng.poisson(n_forecasts / n_questions, n_questions), 2, n_forecasters)
    while counts.sum() != n_forecasts:  # exactly n_forecasts rows
        i = rng.integers(n_questions)
        step = 1 if counts.sum() < n_forecasts else -1
        if 2 <= counts[i] + step <= n_forecasters:
            counts[i] += step
    q = np.repeat(np.arange(n_questions), counts)
    starts = np.r_[0, np.cumsum(counts)[:-1]]
    first = np.zeros(len(q), dtype=bool)
    first[starts] = True
    who = np.concatenate([rng.choice(n_forecasters, size=c, replace=False) for c in counts])
    u = np.where(first, 2.0, rng.uniform(size=len(q)))
    clock = np.minimum(u[np.lexsort((-u, q))], 1.0)  # 1 at a question's first forecast, then falling
    r = TRUTH["q"] * clock ** TRUTH["kappa"]
    gained = np.where(first, TRUTH["s0"] ** 2, np.r_[0.0, r[:-1] - r[1:]] + TRUTH["q_event"])
    steps = rng.normal(0.0, np.sqrt(np.maximum(gained, 0.0))) + np.where(first, TRUTH["m0"], 0.0)
    latent = np.cumsum(steps)
    latent -= np.repeat(np.r_[0.0, latent[starts[1:] - 1]], counts)  # each question's own walk
    last = starts + counts - 1
    final = latent[last] + rng.normal(0.0, np.sqrt(TRUTH["q"] * clock[last] ** TRUTH["kappa"]))
    alpha = np.exp(log_alpha[who]) * bayes.loading(TRUTH["eta"], clock ** TRUTH["kappa"])
    x = alpha * latent + bias[who] + rng.normal(0.0, np.exp(log_sigma[who]))
    life = rng.uniform(5.0, 200.0, n_questions) * DAY
    return bayes.ForecastData(
        question_index=q,
        forecaster_key=who,
        probability=np.clip(bayes.scale_to_probability(x), 0.001, 0.999),
        seconds_to_resolution=clock * life[q],
        outcome=(final > 0).astype(int),
        life_seconds=life,
        n_questions=n_questions,
    )


def naive_pymc(data, *, draws: int, tune: int, seed: int, sampler: str = "default") -> tuple[float, dict]:
    """A naively written Turner-style hierarchical model of the same data, sampled with plain
    ``pm.sample()``: per forecaster scale, bias and noise with partial pooling, a static latent per
    question, the outcome Bernoulli(Phi(latent)). Returns the seconds and arviz diagnostics.

    ``sampler="default"``: whatever plain ``pm.sample()`` picks (PyMC 6 picks nutpie when it is
    installed, as it is here); ``"pymc"``: PyMC's own NUTS."""
    import arviz as az
    import pymc as pm

    from forecasting.bayes.model import to_scale

    keys, j = np.unique(data.forecaster_key.astype(np.int64), return_inverse=True)
    i = data.question_index
    x = to_scale(data.probability)
    started = time.perf_counter()
    with pm.Model():
        mu_b = pm.Normal("mu_b", 0.0, 1.0)
        mu_s = pm.Normal("mu_s", 0.0, 1.0)
        tau_a = pm.HalfNormal("tau_a", 1.0)
        tau_b = pm.HalfNormal("tau_b", 1.0)
        tau_s = pm.HalfNormal("tau_s", 1.0)
        log_alpha = pm.Normal("log_alpha", 0.0, tau_a, shape=len(keys))
        bias = pm.Normal("bias", mu_b, tau_b, shape=len(keys))
        log_sigma = pm.Normal("log_sigma", mu_s, tau_s, shape=len(keys))
        latent = pm.Normal("latent", 0.0, 1.5, shape=data.n_questions)
        pm.Normal("x", mu=pm.math.exp(log_alpha[j]) * latent[i] + bias[j], sigma=pm.math.exp(log_sigma[j]), observed=x)
        pm.Bernoulli("y", p=pm.math.invprobit(latent), observed=data.outcome)
        kwargs = {} if sampler == "default" else {"nuts_sampler": sampler}
        idata = pm.sample(
            draws=draws, tune=tune, random_seed=seed, progressbar=False, compute_convergence_checks=False, **kwargs
        )
    seconds = time.perf_counter() - started
    rhat = az.rhat(idata)
    ess = az.ess(idata, method="bulk")
    return seconds, {
        "max_rhat": max(float(rhat[v].max()) for v in rhat.data_vars),
        "min_ess": min(float(ess[v].min()) for v in ess.data_vars),
        "divergences": int(idata.sample_stats["diverging"].sum()),
        "chains": int(idata.posterior.sizes["chain"]),
        "sampler": "nutpie" if "maxdepth_reached" in idata.sample_stats else "pymc",
    }


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # Linux: KiB


def kernel_ms(data, calls: int = 50, threads: int = 2) -> float:
    """Median milliseconds of one call of the likelihood kernel (value and gradient) on ``data``, on
    ``threads`` threads at once: how fast this host is right now (shared hosts vary by tens of
    percent over minutes)."""
    from forecasting.bayes.kernel import blocked_loglik
    from forecasting.bayes.kernel_op import BLOCK_NAMES, block_values
    from forecasting.bayes.layout import training_layout
    from forecasting.bayes.model import N_COV
    from forecasting.bayes.nuts_model import capacity_for

    layout = training_layout(data)
    blocks = block_values(layout)
    capacity = capacity_for(len(layout.keys))
    rng = np.random.default_rng(0)
    args = (
        *(rng.normal(0.0, s, capacity) for s in (0.1, 0.2, 0.3)),
        np.zeros(N_COV),
        np.zeros(N_COV),
        np.array([0.1, 1.2, 2.0, 1.0, 0.01, 0.5]),
        np.ones(1),
        np.zeros(1),
        1.0,
        *(blocks[name] for name in BLOCK_NAMES),
    )
    blocked_loglik(*args)

    def run() -> list[float]:
        times = []
        for _ in range(calls):
            t0 = time.perf_counter()
            blocked_loglik(*args)
            times.append(time.perf_counter() - t0)
        return times

    # on two threads at once, as the two chains run (the kernel releases the GIL)
    with ThreadPoolExecutor(max_workers=threads) as pool:
        times = [t for part in pool.map(lambda _: run(), range(threads)) for t in part]
    return 1000.0 * float(np.median(times))


def _seeds(text: str) -> list[int]:
    """``1`` or ``0-9`` or ``0,3,7``."""
    out: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        out.extend(range(int(lo), int(hi or lo) + 1))
    return out


def run_default(args) -> tuple[bool, list[dict]]:
    """The NUTS and MAP fits on each data seed, after one compile (as a worker does at start), then
    the naive baseline once, on the first seed's data."""
    from forecasting import bayes
    from forecasting.bayes.kernel_op import likelihood_check

    seeds = _seeds(args.seeds) if args.seeds else [args.seed]
    size = f"{args.forecasters:,} forecasters x {args.questions:,} questions x {args.forecasts:,} forecasts"
    rows.progress(f"compiling the NUTS model ({size}; seeds {seeds})")
    t0 = time.perf_counter()
    bayes.sampling.warm_up(args.forecasters)
    nuts_compile = time.perf_counter() - t0
    t0 = time.perf_counter()
    bayes.warm_up()
    map_compile = time.perf_counter() - t0
    check = likelihood_check()
    rows.progress(f"compiled: NUTS {nuts_compile:.1f} s, MAP {map_compile:.1f} s; numba likelihood ok: {check['ok']}")

    results = []
    first_data = None
    for seed in seeds:
        data = simulate(seed, args.forecasters, args.questions, args.forecasts)
        first_data = first_data if first_data is not None else data
        kernel_before = kernel_ms(data)
        t0, c0 = time.perf_counter(), time.process_time()
        nuts = bayes.fit(data, method="nuts", draws=args.draws, tune=args.tune, chains=args.chains, random_seed=seed)
        nuts_s, nuts_cpu = time.perf_counter() - t0, time.process_time() - c0
        kernel_after = kernel_ms(data)
        map_s, map_cpu, iterations = math.nan, math.nan, 0
        if not args.skip_map:
            t0, c0 = time.perf_counter(), time.process_time()
            point = bayes.fit(data, method="map")
            map_s, map_cpu = time.perf_counter() - t0, time.process_time() - c0
            iterations = point.diagnostics["iterations"]
        d = nuts.diagnostics
        results.append({"seed": seed, "nuts_s": nuts_s, "map_s": map_s, "nuts_cpu": nuts_cpu, **d})
        rows.progress(
            f"seed {seed}: NUTS {nuts_s:.1f} s ({nuts_cpu:.1f} s of CPU; max r-hat {d['max_rhat']:.3f},"
            f" min bulk ESS {d['min_ess']:.0f},"
            f" {d['divergences']} divergences, {d['chains']} chains x ({d['tune']} tune + {d['draws']} draws),"
            f" {d.get('trajectory', 'Euclidean')} trajectories, mean {d['mean_leapfrog_steps']:.1f} leapfrog steps"
            f" at step {d['step_size']:.3f}, {d.get('rounds', 1)} round(s), sampling {d['sampling_seconds']:.1f} s);"
            f" MAP {map_s:.2f} s ({map_cpu:.2f} s of CPU, {iterations} L-BFGS iterations);"
            f" host: one gradient (two at once) {kernel_before:.2f} ms before, {kernel_after:.2f} ms after"
            " (about 2.0 on a quiet host)"
        )

    naive_s, naive = math.nan, {}
    naive_draws = args.naive_draws if args.naive_draws is not None else (200 if args.quick else 1000)
    naive_label = f"naive pm.sample() ({naive_draws} tune + {naive_draws} draws)"
    if not args.skip_naive:
        rows.progress(f"{naive_label} on seed {seeds[0]}'s data…")
        naive_s, naive = naive_pymc(
            first_data, draws=naive_draws, tune=naive_draws, seed=seeds[0], sampler=args.naive_sampler
        )
        rows.progress(
            f"naive: {naive_s:.1f} s, max r-hat {naive['max_rhat']:.3f}, min ESS {naive['min_ess']:.0f}"
            f" ({naive['sampler']}, {naive['chains']} chains, {naive['divergences']} divergences)"
        )
    naive_value = None if math.isnan(naive_s) else naive_s

    worst_nuts = max(r["nuts_s"] for r in results)
    worst_map = max(r["map_s"] for r in results)
    worst_rhat = max(r["max_rhat"] for r in results)
    lowest_ess = min(r["min_ess"] for r in results)
    divergences = sum(r["divergences"] for r in results)
    over = f"seed {seeds[0]}" if len(seeds) == 1 else f"worst of seeds {args.seeds}"
    shape = f"{args.forecasters}x{args.questions}x{args.forecasts // 1000}k"
    out = [
        rows.row(
            f"bayes: NUTS refit {shape}",
            worst_nuts,
            "s",
            baseline=naive_label,
            baseline_value=naive_value,
            goal=rows.at_most(10, "s"),
        ),
        rows.row(
            f"bayes: MAP fit {shape}",
            worst_map,
            "s",
            baseline=naive_label,
            baseline_value=naive_value,
            goal=rows.at_most(1.5, "s"),
        ),
        rows.row(
            f"bayes: NUTS max r-hat ({over})",
            worst_rhat,
            "",
            baseline="naive pm.sample() r-hat",
            baseline_value=naive.get("max_rhat"),
            goal=rows.at_most(1.05, ""),
        ),
        rows.row(
            f"bayes: NUTS min bulk ESS ({over})",
            lowest_ess,
            "",
            baseline="naive pm.sample() ESS",
            baseline_value=naive.get("min_ess"),
            goal=rows.at_least(100, ""),
        ),
        rows.row(
            f"bayes: NUTS divergences ({over})",
            divergences,
            "",
            baseline="naive pm.sample() divergences",
            baseline_value=naive.get("divergences"),
            goal=rows.at_most(0, ""),
        ),
    ]
    if len(seeds) > 1:
        rows.progress(
            f"over seeds {args.seeds}: NUTS {min(r['nuts_s'] for r in results):.1f}-{worst_nuts:.1f} s,"
            f" MAP {min(r['map_s'] for r in results):.2f}-{worst_map:.2f} s,"
            f" max r-hat {min(r['max_rhat'] for r in results):.3f}-{worst_rhat:.3f},"
            f" min ESS {lowest_ess:.0f}-{max(r['min_ess'] for r in results):.0f},"
            f" rounds {sorted({r.get('rounds', 1) for r in results})}"
        )
    return all(r["met"] for r in out), out


def run_large(args) -> list[dict]:
    from forecasting import bayes

    n_f, n_q, n = 20_000, 5_000, 1_000_000
    t0 = time.perf_counter()
    data = simulate(args.seed, n_f, n_q, n)
    print(f"data: {n_f:,} forecasters x {n_q:,} questions x {n:,} forecasts ({time.perf_counter() - t0:.1f} s)")
    base_rss = peak_rss_gb()
    t0 = time.perf_counter()
    bayes.warm_up()
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    fit = bayes.fit(data, method="map")
    seconds = time.perf_counter() - t0
    d = fit.diagnostics
    rss = peak_rss_gb()
    print(
        f"fit: method={fit.method} (Laplace MAP, {d['likelihood']} likelihood), {d['iterations']} L-BFGS"
        f" iterations, converged {d['converged']} ({d['message']})"
    )
    print(f"{'large case':<44}{'value':>10}  {'target':>8}")
    print(f"{'fit seconds (bayes.fit, method=map)':<44}{seconds:>10.1f}  {'<= 300':>8}")
    print(f"{'first compile (warm_up, once per worker)':<44}{compile_s:>10.1f}")
    print(f"{'peak RSS of the process (GB)':<44}{rss:>10.2f}  {'<= 4':>8}")
    print(f"{'  of which the simulated data set (GB)':<44}{base_rss:>10.2f}")
    baseline = "first compile (warm_up)"
    return [
        rows.row(
            "bayes: MAP fit 20000x5000x1000k",
            seconds,
            "s",
            baseline=baseline,
            baseline_value=compile_s,
            goal=rows.at_most(300, "s"),
        ),
        rows.row(
            "bayes: MAP fit peak RSS",
            rss,
            "GB",
            baseline="the data set",
            baseline_value=base_rss,
            goal=rows.at_most(4, "GB"),
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    rows.add_arguments(parser)
    parser.add_argument("--forecasters", type=int, default=2_000)
    parser.add_argument("--questions", type=int, default=500)
    parser.add_argument("--forecasts", type=int, default=100_000)
    parser.add_argument("--draws", type=int, default=450, help="NUTS draws per chain")
    parser.add_argument(
        "--tune", type=int, default=None, help="NUTS tuning draws per chain (default: the fit's, 40 from the mode)"
    )
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument(
        "--naive-draws",
        type=int,
        default=None,
        help="tune and draws of the naive pm.sample() (default 1000, PyMC's; 200 with --quick)",
    )
    parser.add_argument(
        "--naive-sampler",
        choices=["default", "pymc", "nutpie"],
        default="default",
        help="default: plain pm.sample() (nutpie when installed); pymc: PyMC's own NUTS",
    )
    parser.add_argument("--skip-naive", action="store_true")
    parser.add_argument("--skip-map", action="store_true", help="skip bayes.fit(method='map')")
    parser.add_argument("--large", action="store_true", help="the 20,000 x 5,000 x 1,000,000 case only")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--seeds", help="data seeds to fit in turn, after one compile: 0-9 or 0,3,7 (default: --seed)")
    args = parser.parse_args()
    if args.large:
        out = run_large(args)
    else:
        _, out = run_default(args)
    rows.write_rows(args.rows, out)
    print("PASS" if all(r["met"] for r in out) else "FAIL")


if __name__ == "__main__":
    main()
