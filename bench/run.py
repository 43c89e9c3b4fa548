"""`make bench`: every benchmark in one run, each figure beside a baseline measured in the same run.

    .venv/bin/python bench/run.py [--quick] [--only market,export,...] [--out var/bench]

Each step is one script of bench/ run in its own process (so peak-memory figures are its own) on
its own PostgreSQL database, copied from a freshly migrated template. The scripts write their
rows (bench/rows.py) and this runner gathers them into ``var/bench/results.json`` (a list of
``{name, value, unit, baseline, baseline_value, ratio, goal, met}``) and ``var/bench/results.md``
(the same as a table, with the machine and the commit), and prints the table. With ``--only``,
the other steps' rows from the last run into the same folder are kept (the header says so). ``--quick`` is
``make bench QUICK=1``: smaller sizes, the same rows, under 20 minutes on a 2-core machine.

PostgreSQL and Redis must answer on loopback: DATABASE_URL's server (default: the role and
database that bin/services creates) and CELERY_BROKER_URL (default redis://127.0.0.1:6379/9).
When they do not and this runs as root, it starts them with ``bash bin/services``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import rows  # noqa: E402

DEFAULT_DATABASE_URL = "postgres://forecasting:forecasting@127.0.0.1:5432/forecasting"
DEFAULT_BROKER_URL = "redis://127.0.0.1:6379/9"
TEMPLATE = "bench_template"


@dataclass(frozen=True)
class Step:
    name: str
    script: str
    args: tuple[str, ...] = ()
    quick_args: tuple[str, ...] = ("--quick",)
    timeout_s: int = 1800
    fresh_database: bool = True  # False: the step keeps its database between runs (a large seed)


STEPS = (
    Step("market", "bench/market_throughput.py"),
    Step("forecast_submit", "bench/forecast_submit.py"),
    Step("aggregates", "bench/aggregate_latency.py"),
    Step("pages", "bench/page_latency.py"),
    Step("scoring", "bench/scoring_fanout.py"),
    Step("export", "bench/export_memory.py"),
    Step("bayes", "bench/bayes_fit.py", timeout_s=2400),
    Step("soak", "bench/soak.py"),
    Step("broker_outage", "bench/broker_outage.py"),
    Step("load", "bench/load/run.py", timeout_s=3600, fresh_database=False),
)


def database_url(base: str, name: str) -> str:
    """``base`` with its database name replaced by ``name``."""
    parts = urlsplit(base)
    return urlunsplit(parts._replace(path="/" + name))


def _admin_connection(base: str):
    import psycopg

    parts = urlsplit(base)
    return psycopg.connect(
        host=parts.hostname,
        port=parts.port or 5432,
        user=parts.username,
        password=parts.password,
        dbname="postgres",
        autocommit=True,
        connect_timeout=5,
    )


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def ensure_services(db_base: str, broker: str) -> None:
    """PostgreSQL and Redis answer, or (as root) bin/services starts them, or a clear error."""
    db, redis = urlsplit(db_base), urlsplit(broker)
    needed = [(db.hostname, db.port or 5432), (redis.hostname, redis.port or 6379)]
    if all(_reachable(h, p) for h, p in needed):
        return
    if os.geteuid() == 0:
        rows.progress("starting PostgreSQL and Redis (bin/services)")
        subprocess.run(["bash", str(ROOT / "bin/services")], check=True)
        if all(_reachable(h, p) for h, p in needed):
            return
    raise SystemExit(
        f"make bench needs PostgreSQL at {db.hostname}:{db.port or 5432} and Redis at "
        f"{redis.hostname}:{redis.port or 6379}; start them with `sudo bash bin/services` "
        "or point DATABASE_URL and CELERY_BROKER_URL at yours."
    )


def _recreate(admin, name: str, template: str | None = None) -> None:
    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))


def prepare_template(db_base: str, env: dict) -> None:
    """A migrated database that each step's database is copied from (a copy takes a second)."""
    with _admin_connection(db_base) as admin:
        _recreate(admin, TEMPLATE)
    env = {**env, "DATABASE_URL": database_url(db_base, TEMPLATE)}
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)


def database_for(step: Step, db_base: str) -> str:
    name = f"bench_{step.name}"
    with _admin_connection(db_base) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if step.fresh_database or not exists:
            _recreate(admin, name, TEMPLATE)
    return database_url(db_base, name)


def run_step(step: Step, *, quick: bool, env: dict, out: Path, db_base: str) -> list[dict]:
    """Run one script; its rows, or one failing row that says why."""
    rows_path = out / "steps" / f"{step.name}.json"
    rows_path.unlink(missing_ok=True)
    step_env = {**env, "DATABASE_URL": database_for(step, db_base), "VAR_DIR": tempfile.mkdtemp(prefix="bench-")}
    command = [sys.executable, step.script, *(step.quick_args if quick else step.args), "--rows", str(rows_path)]
    started = time.monotonic()
    try:
        result = subprocess.run(command, cwd=ROOT, env=step_env, timeout=step.timeout_s)
        failure = None if result.returncode == 0 or rows_path.exists() else f"exit status {result.returncode}"
    except subprocess.TimeoutExpired:
        failure = f"timed out after {step.timeout_s} s"
    rows.progress(f"{step.name}: {time.monotonic() - started:.0f} s")
    if failure is None and rows_path.exists():
        return json.loads(rows_path.read_text())
    failed = [
        {
            "name": f"{step.name}: the benchmark ran to the end",
            "value": None,
            "unit": "",
            "baseline": failure or "no rows written",
            "baseline_value": None,
            "ratio": None,
            "goal": "runs",
            "met": False,
        }
    ]
    rows_path.parent.mkdir(parents=True, exist_ok=True)
    rows_path.write_text(json.dumps(failed, indent=2) + "\n")
    return failed


def gather(out: Path, fresh: dict[str, list[dict]]) -> tuple[list[dict], list[str]]:
    """Every step's rows in STEPS order: those just run, and (with --only) those an earlier run into
    the same folder left in ``steps/``; and the names of the steps kept from before."""
    gathered, kept = [], []
    for step in STEPS:
        earlier = out / "steps" / f"{step.name}.json"
        if step.name in fresh:
            gathered += fresh[step.name]
        elif earlier.exists():
            gathered += json.loads(earlier.read_text())
            kept.append(step.name)
    return gathered, kept


def header(quick: bool) -> str:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    load = os.getloadavg()
    return (
        f"make bench{' QUICK=1' if quick else ''} at {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC,"
        f" commit {commit.stdout.strip() or '?'}, {platform.machine()} with {os.cpu_count()} cores,"
        f" load average {load[0]:.1f} at the start"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, the same rows")
    parser.add_argument("--only", default="", help="comma-separated step names: " + ",".join(s.name for s in STEPS))
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "bench")
    args = parser.parse_args()
    chosen = [s for s in STEPS if not args.only or s.name in args.only.split(",")]
    if not chosen:
        parser.error(f"no step named {args.only!r}")

    db_base = os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL)
    if not db_base.startswith(("postgres://", "postgresql://")):
        raise SystemExit("make bench runs on PostgreSQL: DATABASE_URL must be a postgres:// URL")
    broker = os.environ.get("CELERY_BROKER_URL", DEFAULT_BROKER_URL)
    ensure_services(db_base, broker)
    env = {**os.environ, "CELERY_BROKER_URL": broker, "DEBUG": "0", "LOG_LEVEL": "WARNING"}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    title = header(args.quick)
    rows.progress(title)
    rows.progress("migrating the template database")
    prepare_template(db_base, env)

    fresh: dict[str, list[dict]] = {}
    for number, step in enumerate(chosen, 1):
        rows.progress(f"[{number}/{len(chosen)}] {step.name}: {step.script}")
        fresh[step.name] = run_step(step, quick=args.quick, env=env, out=args.out, db_base=db_base)
    gathered, kept = gather(args.out, fresh)
    if kept:  # ONLY=... re-ran some steps: the others' rows are those of the last run into this folder
        title += f"; re-ran {', '.join(fresh)}, kept the last rows of {', '.join(kept)}"

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(gathered, indent=2) + "\n")
    table = rows.format_table(gathered)
    (args.out / "results.md").write_text(f"{title}\n\n{table}\n")
    missed = [r["name"] for r in gathered if r["met"] is False]
    print(f"\n{title}\n\n{table}\n")
    print(f"{len(gathered)} rows, {len(missed)} short of their goal; written to {args.out}/results.json and results.md")
    # A goal missed is a figure to report; a benchmark that did not run to the end is a failure.
    return 1 if any(r["goal"] == "runs" for r in gathered) else 0


if __name__ == "__main__":
    raise SystemExit(main())
