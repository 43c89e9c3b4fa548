"""Synthetic data for the Bayesian model's tests, drawn from the model's own story (no real data)."""

import math

import numpy as np

from forecasting import bayes

DAY = 86400.0
# Forecasters: (bias, log noise sd) on the model's (probit) scale. "sharp" is clearly better than "sloppy".
FORECASTERS = {"sharp": (0.0, math.log(0.3)), "sloppy": (0.0, math.log(2.5))} | {
    f"crowd{i}": (0.2, math.log(1.0)) for i in range(8)
}
TRUE_POPULATION = {"m0": 0.0, "s0": 1.5, "q": 2.0, "kappa": 1.0, "q_event": 0.05, "eta": 0.5}


def simulate(rng, n_questions, forecasters=FORECASTERS, per_question=(3, 7)):
    """Questions, forecasts and outcomes drawn from the model's generative story (no real data)."""
    names = list(forecasters)
    rows = {"q": [], "key": [], "p": [], "t": []}
    lives, outcomes = [], []
    for i in range(n_questions):
        life = rng.uniform(5, 200) * DAY
        k = int(rng.integers(per_question[0], per_question[1] + 1))
        chosen = ["sharp", "sloppy", *rng.choice(names[2:], size=k - 2, replace=False)]
        rng.shuffle(chosen)
        clock = np.r_[1.0, np.sort(rng.uniform(0.0, 1.0, size=k - 1))[::-1]]
        pop = TRUE_POPULATION
        latent = rng.normal(pop["m0"], pop["s0"])
        for j, (key, f) in enumerate(zip(chosen, clock, strict=True)):
            if j:
                gained = pop["q"] * (clock[j - 1] ** pop["kappa"] - f ** pop["kappa"]) + pop["q_event"]
                latent += rng.normal(0.0, math.sqrt(gained))
            bias, log_sigma = forecasters[key]
            load = bayes.loading(pop["eta"], f ** pop["kappa"])
            x = load * latent + bias + rng.normal(0.0, math.exp(log_sigma))
            rows["q"].append(i)
            rows["key"].append(key)
            rows["p"].append(float(np.clip(bayes.scale_to_probability(x), 0.001, 0.999)))
            rows["t"].append(f * life)
        latent += rng.normal(0.0, math.sqrt(pop["q"] * clock[-1] ** pop["kappa"]))
        outcomes.append(int(latent > 0))
        lives.append(life)
    return bayes.ForecastData(
        question_index=np.array(rows["q"]),
        forecaster_key=rows["key"],
        probability=np.array(rows["p"]),
        seconds_to_resolution=np.array(rows["t"]),
        outcome=np.array(outcomes),
        life_seconds=np.array(lives),
    )
