"""The Bayesian aggregate (method ``bayes``): a model of how each forecaster reads a question's latent
chance, fitted on resolved questions and combining an open question's forecasts in closed form.
Equations, choices and measurements: ``docs/bayes.md``. No Django import anywhere in the package.

Modules, each importing only those above it:

- ``model``: constants, priors, the parameter vector, ``ForecastData``;
- ``layout``: training data arranged for the likelihood;
- ``fitted``: ``BayesFit``, a fit's parameters and its closed-form aggregate (a Kalman filter);
- ``graph``: the training likelihood as a pytensor scan (the reference);
- ``kernel``: the same likelihood and its gradient as a numba kernel;
- ``kernel_op``: the kernel as a pytensor Op, and the check that it equals ``graph``;
- ``map_fit``: the point estimate (L-BFGS) and its warm-up;
- ``nuts_model``, ``diagnostics``, ``sampling``: the full posterior with NUTS, and its warm-up;
- ``fitting``: ``fit(data, method=...)`` and the walk-forward evaluation's learner;
- ``stacking``: the shown aggregate, the model stacked with the log-odds mean by learnt trust.

Callers use the names below (``from forecasting import bayes``; ``bayes.fit(...)``); the NUTS warm-up
is ``bayes.sampling.warm_up``.
"""

from . import sampling
from .fitted import BayesFit, forecaster_records, laplace_sds, prior_fit
from .fitting import aggregate_history, data_from_histories, fit, fit_for_evaluation
from .map_fit import fit_map, warm_up
from .model import (
    CLIP,
    COVARIATES,
    INTERVAL,
    INTERVAL_DRAWS,
    MIN_TRAINING_QUESTIONS,
    MODEL_VERSION,
    N_COV,
    OUTPUT_CLIP,
    ForecastData,
    default_population,
    loading,
    scale_to_probability,
    warm_up_data,
)
from .sampling import fit_nuts
from .stacking import StackWeights, fit_stack

__all__ = [
    "CLIP",
    "COVARIATES",
    "INTERVAL",
    "INTERVAL_DRAWS",
    "MIN_TRAINING_QUESTIONS",
    "MODEL_VERSION",
    "N_COV",
    "OUTPUT_CLIP",
    "BayesFit",
    "ForecastData",
    "StackWeights",
    "aggregate_history",
    "data_from_histories",
    "default_population",
    "fit",
    "fit_for_evaluation",
    "fit_map",
    "fit_nuts",
    "fit_stack",
    "forecaster_records",
    "laplace_sds",
    "loading",
    "prior_fit",
    "sampling",
    "scale_to_probability",
    "warm_up",
    "warm_up_data",
]
