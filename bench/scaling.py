"""How the per-question costs grow with forecasters on one question: docs/scaling.md's table.

    .venv/bin/python bench/scaling.py [--sizes 2000,10000,30000] [--out var/bench/scaling]

Runs the benches whose cost depends on the forecasters of one question (the pages, a forecast's
aggregate update and submission, scoring and the notification fan-out) at each size, each on a
fresh copy of a migrated database (bench/run.py's template), and prints one table: each row's
value at each size and the growth from the smallest to the largest size. The history and the
number of questions are covered by the export at 200,000 and 1,000,000 forecasts (make bench
QUICK=1 and make bench) and by the load test at its two sizes.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import rows  # noqa: E402
import run  # noqa: E402

SCRIPTS = {
    "pages": ("bench/page_latency.py", ("--requests", "30")),
    "aggregates": ("bench/aggregate_latency.py", ("--updates", "100")),
    "forecast_submit": ("bench/forecast_submit.py", ("--no-numeric", "--submissions", "100")),
    "scoring": ("bench/scoring_fanout.py", ("--repeats", "1")),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="2000,10000,30000", help="forecasters on the question")
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "bench" / "scaling")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    db_base = os.environ.get("DATABASE_URL", run.DEFAULT_DATABASE_URL)
    env = {**os.environ, "DEBUG": "0", "LOG_LEVEL": "WARNING", "CELERY_BROKER_URL": run.DEFAULT_BROKER_URL}
    run.ensure_services(db_base, env["CELERY_BROKER_URL"])
    run.prepare_template(db_base, env)
    by_name: dict[str, dict[int, dict]] = {}
    for size in sizes:
        for name, (script, extra) in SCRIPTS.items():
            rows.progress(f"{name} at {size:,} forecasters")
            path = args.out / f"{name}-{size}.json"
            step = run.Step(f"scaling_{name}", script)
            step_env = {**env, "DATABASE_URL": run.database_for(step, db_base), "VAR_DIR": tempfile.mkdtemp()}
            command = [sys.executable, script, "--forecasters", str(size), *extra, "--rows", str(path)]
            subprocess.run(command, cwd=ROOT, env=step_env, check=True, capture_output=True)
            for r in json.loads(path.read_text()):
                # sizes are in each row's name (forecasters, score rows): the same row at every size
                # shares its name with its numbers of 1,000 and over taken out
                key = re.sub(r"\b\d{1,3}(?:,\d{3})+\b|\b\d{4,}\b", "N", r["name"])
                by_name.setdefault(key, {})[size] = r
    lines = ["| row (N forecasters) | " + " | ".join(f"N = {s:,}" for s in sizes) + " | growth |"]
    lines.append("|" + "---|" * (len(sizes) + 2))
    for key, at in by_name.items():
        values = [at.get(s, {}).get("value") for s in sizes]
        first, last = values[0], values[-1]
        growth = f"{last / first:.2f}x" if first and last is not None else "-"
        unit = next(iter(at.values()))["unit"]
        lines.append(
            f"| {key} | " + " | ".join(f"{v:.4g} {unit}" if v is not None else "-" for v in values) + f" | {growth} |"
        )
    table = "\n".join(lines)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "scaling.md").write_text(table + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
