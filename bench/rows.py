"""The shape every benchmark reports in: rows of `make bench`'s results (bench/run.py).

A row is one figure beside a baseline measured in the same run on the same machine, the ratio
between them and the goal it is held to:

    {"name", "value", "unit", "baseline", "baseline_value", "ratio", "goal", "met"}

Machines here are shared and noisy, so goals are stated on the ratio wherever the issue allows;
an absolute goal (seconds, milliseconds, megabytes) still carries its baseline for context.

Each bench script takes ``--quick`` (a smaller size, same rows) and ``--rows PATH`` (write its
rows there as JSON for bench/run.py) through ``add_arguments``, prints progress to stderr with
``progress`` and ends with ``write_rows``.
"""

from __future__ import annotations

import argparse
import json
import math
import operator
import sys
import time
from dataclasses import dataclass
from pathlib import Path

_STARTED = time.monotonic()
_OPS = {">=": operator.ge, "<=": operator.le}


@dataclass(frozen=True)
class Goal:
    """A target on the figure itself (``on="value"``) or on figure / baseline (``on="ratio"``)."""

    on: str
    op: str
    target: float
    unit: str = ""

    def __post_init__(self) -> None:
        if self.on not in ("value", "ratio") or self.op not in _OPS:
            raise ValueError(f"bad goal {self.on} {self.op} {self.target}")

    def text(self) -> str:
        if self.on == "ratio":
            return f"{self.op} {self.target:g}x baseline"
        return f"{self.op} {self.target:g} {self.unit}".rstrip()

    def met(self, value: float, ratio: float | None) -> bool:
        subject = ratio if self.on == "ratio" else value
        if subject is None or not math.isfinite(subject):
            return False
        return bool(_OPS[self.op](subject, self.target))


def ratio_at_least(target: float) -> Goal:
    return Goal("ratio", ">=", target)


def ratio_at_most(target: float) -> Goal:
    return Goal("ratio", "<=", target)


def at_most(target: float, unit: str) -> Goal:
    return Goal("value", "<=", target, unit)


def at_least(target: float, unit: str) -> Goal:
    return Goal("value", ">=", target, unit)


def row(
    name: str,
    value: float,
    unit: str,
    *,
    baseline: str,
    baseline_value: float | None,
    goal: Goal | None = None,
) -> dict:
    """One result row; ``goal=None`` is a figure reported for context, held to nothing."""
    ratio = None
    if baseline_value not in (None, 0) and value is not None:
        ratio = round(value / baseline_value, 4)
    return {
        "name": name,
        "value": None if value is None else round(float(value), 4),
        "unit": unit,
        "baseline": baseline,
        "baseline_value": None if baseline_value is None else round(float(baseline_value), 4),
        "ratio": ratio,
        "goal": goal.text() if goal else "",
        "met": goal.met(value, ratio) if goal else None,
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true", help="the smaller size of make bench QUICK=1")
    parser.add_argument("--rows", type=Path, help="write the result rows to this JSON file")


def progress(message: str) -> None:
    """A timestamped line on stderr, so a long run shows where it is."""
    elapsed = time.monotonic() - _STARTED
    print(f"[{elapsed:7.1f} s] {message}", file=sys.stderr, flush=True)


def write_rows(path: Path | None, rows: list[dict]) -> None:
    """Print the rows as a table and, with --rows, write them for bench/run.py."""
    print(format_table(rows), flush=True)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(rows, indent=2) + "\n")


def _number(x: float | None) -> str:
    if x is None:
        return "-"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    return f"{x:.3g}"


def _baseline(r: dict) -> str:
    if r["baseline_value"] is None:
        return r["baseline"] or "-"
    return f"{r['baseline']}: {_number(r['baseline_value'])} {r['unit']}".rstrip()


def _ratio(x: float | None) -> str:
    return "-" if x is None else f"{x:.3g}x"


def format_table(rows: list[dict]) -> str:
    """A Markdown table (it reads as plain text too)."""
    header = ["benchmark", "value", "baseline", "ratio", "goal", "met"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        met = {True: "yes", False: "NO", None: ""}[r["met"]]
        lines.append(
            f"| {r['name']} | {_number(r['value'])} {r['unit']} | {_baseline(r)}"
            f" | {_ratio(r['ratio'])} | {r['goal']} | {met} |"
        )
    return "\n".join(lines)
