"""The evaluation's result as a plain-text table (``manage.py evaluate_aggregators``). No Django import."""

from __future__ import annotations

import math


def format_table(result: dict) -> str:
    """A plain-text table of ``evaluate``'s result, best Brier first, and the question count."""
    rows = sorted(
        result["methods"].items(),
        key=lambda item: (math.isnan(item[1]["brier"]), item[1]["brier"], item[0]),
    )
    columns = ["brier", "log", "ece"]
    if any("brier_time_averaged" in scores for _, scores in rows):
        columns += ["brier_time_averaged", "log_time_averaged"]
    width = max([len("method"), *(len(name) for name, _ in rows)])
    widths = [max(len(c), 8) for c in columns]
    lines = ["  ".join(["method".ljust(width), *(c.rjust(w) for c, w in zip(columns, widths, strict=True))])]
    for name, scores in rows:
        cells = [f"{scores[c]:.4f}".rjust(w) for c, w in zip(columns, widths, strict=True)]
        lines.append("  ".join([name.ljust(width), *cells]))
    if result.get("causal"):
        lines.append(f"causal walk-forward, {result.get('refits', 0)} refits: {result['causal_rule']}")
    lines.append(f"questions: {result['questions']}")
    return "\n".join(lines)
