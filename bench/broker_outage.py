"""The broker down for a full minute under a real web server and worker (the test does a few seconds).

    DATABASE_URL=postgres://... CELERY_BROKER_URL=redis://127.0.0.1:6379/0 \\
        .venv/bin/python bench/broker_outage.py [--seconds 60]

Runs tests/integration/test_faults_broker.py with FAULT_BROKER_OUTAGE_SECONDS set: forecasts and
resolutions spread over the outage all succeed, and once the broker returns every queued task runs
exactly once. Needs Redis (the relay cuts the connection to it) and prints pytest's verdict.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import rows  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0, help="how long the broker stays down")
    rows.add_arguments(parser)
    args = parser.parse_args()
    if args.quick:  # make bench QUICK=1
        args.seconds = min(args.seconds, 10.0)
    if not os.environ.get("CELERY_BROKER_URL", "").startswith("redis"):
        print("CELERY_BROKER_URL must be a Redis URL: the outage is a cut connection to Redis.")
        return 2
    command = [
        sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-s",
        "tests/integration/test_faults_broker.py",
    ]  # fmt: skip
    env = {**os.environ, "FAULT_BROKER_OUTAGE_SECONDS": str(args.seconds)}
    rows.progress(f"broker outage: Redis cut for {args.seconds:g} s under gunicorn and a Celery worker")
    started = time.monotonic()
    code = subprocess.run(command, cwd=ROOT, env=env).returncode
    rows.write_rows(
        args.rows,
        [
            rows.row(
                f"broker down {args.seconds:g} s: requests failed, tasks lost or run twice (0 = the test passed)",
                0 if code == 0 else 1,
                "",
                baseline=f"whole test took {time.monotonic() - started:.0f} s, outage included",
                baseline_value=None,
                goal=rows.at_most(0, ""),
            )
        ],
    )
    return code


if __name__ == "__main__":
    raise SystemExit(main())
