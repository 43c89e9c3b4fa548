"""Soak: 10,000 random forecasts, trades, sells, closes, resolves, annuls and un-resolves from many
threads in several processes, then every invariant checked (tests/soak.py says which).

    DATABASE_URL=postgres://... .venv/bin/python bench/soak.py [--operations 10000] [--processes 2]
        [--threads 8] [--readers 200] [--questions 40] [--seed 1]

Prints the operations done, refused (a clear error: a sale of nothing, a closed market...) and
failed (any other error: a defect), the invariant violations (goal: 0 and 0), and the throughput
beside a single-threaded run of the same mix in the same database (the baseline). Runs on a
throw-away SQLite file if DATABASE_URL is not set (the goal is for PostgreSQL, where row locks
really contend). Tasks run inline after each commit (CELERY_TASK_ALWAYS_EAGER).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import rows  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--operations", type=int, default=10_000)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8, help="threads per process")
    parser.add_argument("--readers", type=int, default=200)
    parser.add_argument("--questions", type=int, default=40)
    parser.add_argument("--baseline-operations", type=int, default=500)
    parser.add_argument("--seed", type=int, default=1)
    rows.add_arguments(parser)
    args = parser.parse_args()
    if args.quick:  # make bench QUICK=1
        args.operations, args.baseline_operations = min(args.operations, 2_000), min(args.baseline_operations, 300)

    tmp = tempfile.mkdtemp(prefix="bench-soak-")
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{tmp}/soak.sqlite3")
    os.environ.setdefault("VAR_DIR", tmp)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
    os.environ.setdefault("CELERY_TASK_ALWAYS_EAGER", "1")
    os.environ.setdefault("BAYES_AUTO_REFIT", "0")
    os.environ.setdefault("DEBUG", "0")
    import django

    django.setup()
    import multiprocessing

    from django.contrib.auth.hashers import make_password
    from django.contrib.auth.models import Group, User
    from django.core.management import call_command
    from django.db import connections

    from forecasting.roles import EDITORS, ensure_role_groups
    from tests import soak

    call_command("migrate", verbosity=0)
    ensure_role_groups()
    password = make_password(None)

    def person(name: str) -> User:
        return User.objects.create(username=name, password=password)

    editor = person(f"soak-editor-{os.getpid()}")
    editor.groups.add(Group.objects.get(name=EDITORS))

    # Baseline: the same mix, one thread, its own questions and readers.
    rows.progress(f"soak: baseline, {args.baseline_operations} operations in one thread")
    base_room = soak.newsroom(
        readers=args.readers // 4 or 1, questions=args.questions // 4 or 1, editor=editor, user_factory=person
    )
    started = time.perf_counter()
    base = soak.run(base_room, operations=args.baseline_operations, threads=1, seed=args.seed)
    base_rate = base.operations / (time.perf_counter() - started)

    room = soak.newsroom(readers=args.readers, questions=args.questions, editor=editor, user_factory=person)
    connections.close_all()  # each process opens its own
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    share = args.operations // args.processes

    def child(index: int) -> None:
        report = soak.run(room, operations=share, threads=args.threads, seed=args.seed * 100 + index)
        results.put((dict(report.done), dict(report.refused), dict(report.reasons), report.errors))

    rows.progress(f"soak: {args.operations} operations in {args.processes} processes x {args.threads} threads")
    started = time.perf_counter()
    processes = [context.Process(target=child, args=(i,)) for i in range(args.processes)]
    for process in processes:
        process.start()
    gathered = [results.get() for _ in processes]
    for process in processes:
        process.join()
    elapsed = time.perf_counter() - started

    total = soak.Report()
    for done, refused, reasons, errors in gathered:
        total.done.update(done)
        total.refused.update(refused)
        total.reasons.update(reasons)
        total.errors.extend(errors)
    found = soak.violations(room) + soak.violations(base_room)
    rate = total.operations / elapsed
    print(f"database: {connections['default'].vendor}, {args.processes} processes x {args.threads} threads")
    print(f"operations: {total.operations} ({sum(total.done.values())} done, {sum(total.refused.values())} refused)")
    print("  done:    " + ", ".join(f"{k} {v}" for k, v in sorted(total.done.items())))
    print("  refused: " + ", ".join(f"{k} {v}" for k, v in sorted(total.refused.items())))
    for (operation, reason), count in total.reasons.most_common(6):
        print(f"    {count:6} {operation}: {reason}")
    print(f"failed (errors other than a clear refusal): {len(total.errors)}   goal: 0")
    for error in total.errors[:20]:
        print(f"  {error}")
    print(f"invariant violations: {len(found)}   goal: 0")
    for violation in found[:20]:
        print(f"  {violation}")
    print(f"throughput: {rate:.0f} operations/s concurrent, beside {base_rate:.0f}/s single-threaded (baseline)")
    label = f"soak: {args.operations:,} mixed operations, {args.processes}x{args.threads} threads"
    rows.write_rows(
        args.rows,
        [
            rows.row(
                f"{label}, operations/s",
                rate,
                "/s",
                baseline="the same mix in one thread",
                baseline_value=base_rate,
            ),
            rows.row(
                f"{label}, failed operations",
                len(total.errors),
                "",
                baseline="",
                baseline_value=None,
                goal=rows.at_most(0, ""),
            ),
            rows.row(
                f"{label}, invariant violations",
                len(found),
                "",
                baseline="",
                baseline_value=None,
                goal=rows.at_most(0, ""),
            ),
        ],
    )
    return 0 if not total.errors and not found else 1


if __name__ == "__main__":
    sys.exit(main())
