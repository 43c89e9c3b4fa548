"""Numeric and date questions the Metaculus way: a forecast is a 201-point CDF on the question's scaled range.

A pure core (numpy and scipy only): ``grid`` (the scale, the CDF's validation, PMF, buckets and quantiles),
``build`` (CDFs from readers' medians and intervals or quantiles; Metaculus's standardisation),
``scoring`` (log, baseline, peer and CRPS scores, spot and time-averaged) and ``aggregation``
(linear pool, Metaculus's recency-weighted mean, quantile averaging, summaries).
"""

from .aggregation import linear_pool, quantile_average, recency_weighted_mean, recency_weights, summary
from .build import cdf_from_components, cdf_from_median_interval, cdf_from_quantiles, standardise
from .grid import CDF_POINTS, CdfError, Scale, density, outcome_bucket, pmf, quantile, validate_cdf
from .scoring import (
    baseline_cdf,
    baseline_score,
    crps,
    log_density,
    peer_score,
    spot_scores,
    time_averaged_scores,
    uniform_scores,
)

__all__ = [
    "CDF_POINTS",
    "CdfError",
    "Scale",
    "baseline_cdf",
    "baseline_score",
    "cdf_from_components",
    "cdf_from_median_interval",
    "cdf_from_quantiles",
    "crps",
    "density",
    "linear_pool",
    "log_density",
    "outcome_bucket",
    "peer_score",
    "pmf",
    "quantile",
    "quantile_average",
    "recency_weighted_mean",
    "recency_weights",
    "spot_scores",
    "standardise",
    "summary",
    "time_averaged_scores",
    "uniform_scores",
    "validate_cdf",
]
