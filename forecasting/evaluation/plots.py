"""Pictures of an evaluation (``evaluate_aggregators --plots DIR``): a calibration diagram and the Brier
score over time, one line per method. Matplotlib with its file-only backend; no Django import."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on a server

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .protocol import ECE_BINS

ROLLING_QUESTIONS = 50  # the Brier-over-time line is the mean over the last this many questions


def calibration_points(p_yes: np.ndarray, outcomes: np.ndarray, bins: int = ECE_BINS) -> list[tuple[float, float, int]]:
    """(mean forecast, observed frequency, count) per non-empty equal-width bin, as the ECE bins them."""
    p_yes, outcomes = np.asarray(p_yes, dtype=float), np.asarray(outcomes, dtype=float)
    index = np.minimum((p_yes * bins).astype(int), bins - 1)
    return [
        (float(p_yes[index == b].mean()), float(outcomes[index == b].mean()), int((index == b).sum()))
        for b in range(bins)
        if (index == b).any()
    ]


def _columns(result: dict) -> tuple[list[str], np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    rows = result.get("predictions")
    if rows is None:
        raise ValueError("the result has no predictions: evaluate with keep_predictions=True")
    methods = list(result["methods"])
    outcomes = np.array([r["outcome"] for r in rows], dtype=float)
    ends = np.array([r["ends_at"] for r in rows], dtype=float)
    p = {m: np.array([r["p_yes"][m] for r in rows], dtype=float) for m in methods}
    return methods, outcomes, ends, p


def write_plots(result: dict, directory: str | Path) -> list[Path]:
    """Write ``calibration.png`` and ``brier_over_time.png`` into ``directory`` (created if needed)
    from ``evaluate(..., keep_predictions=True)``'s result; returns the paths written."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    methods, outcomes, ends, p = _columns(result)
    written = []

    figure, axes = plt.subplots(figsize=(7, 7))
    axes.plot([0, 1], [0, 1], color="0.6", linestyle="--", linewidth=1, label="perfect calibration")
    for method in methods:
        points = calibration_points(p[method], outcomes)
        if points:
            x, y, _ = zip(*points, strict=True)
            axes.plot(x, y, marker="o", markersize=4, label=f"{method} (ECE {result['methods'][method]['ece']:.3f})")
    axes.set(xlabel="forecast probability (bin mean)", ylabel="observed frequency", xlim=(0, 1), ylim=(0, 1))
    axes.set_title(f"Calibration, {len(outcomes)} questions, {ECE_BINS} bins")
    axes.legend(fontsize=8, loc="upper left")
    written.append(directory / "calibration.png")
    figure.savefig(written[-1], dpi=110, bbox_inches="tight")
    plt.close(figure)

    figure, axes = plt.subplots(figsize=(10, 5))
    order = np.argsort(ends, kind="stable")
    when = pd.to_datetime(ends[order], unit="s", utc=True)
    window = min(ROLLING_QUESTIONS, max(len(order), 1))
    for method in methods:
        brier = pd.Series((p[method][order] - outcomes[order]) ** 2)
        axes.plot(when, brier.rolling(window, min_periods=1).mean(), linewidth=1.2, label=method)
    axes.set(xlabel="question end (close, or resolution if earlier)", ylabel=f"Brier, mean of last {window} questions")
    axes.set_title("Brier score over time (lower is better)")
    axes.legend(fontsize=8, ncol=2)
    written.append(directory / "brier_over_time.png")
    figure.savefig(written[-1], dpi=110, bbox_inches="tight")
    plt.close(figure)
    return written
