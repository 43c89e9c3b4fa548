"""Trades per second and latency with 32 concurrent clients, beside a bare insert of the same rows.

Target (issue 5): >= 200 trades/s on this 2-core machine, zero invariant violations after.

    DATABASE_URL=postgres://... .venv/bin/python bench/market_throughput.py \
        [--clients 32] [--processes 2] [--trades 3000] [--markets 8]

The 32 clients are threads spread over a few processes (as web requests are spread over
gunicorn workers), each with its own database connection, calling the trading service (the
same code path as the web and the API: validation, row locks, ledger, position, price
history). The baseline inserts the same number of rows, one per transaction, from the same
clients into a bare table. Runs on a throw-away SQLite file if DATABASE_URL is not set (the
target is for PostgreSQL).
"""

from __future__ import annotations

import argparse
import os
import queue
import random
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def run_in_processes(n_processes: int, n_clients: int, jobs: list, do_one) -> tuple[float, list[float], int]:
    """Split the jobs over forked processes, each running its share of the client threads."""
    import multiprocessing

    from django.db import connections

    connections.close_all()  # children open their own connections
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    per_process = max(1, n_clients // n_processes)

    def child(share):
        q: queue.Queue = queue.Queue()
        for job in share:
            q.put(job)
        _, latencies, failures = run_clients(per_process, q, do_one)
        results.put((latencies, failures))

    shares = [jobs[i::n_processes] for i in range(n_processes)]
    processes = [context.Process(target=child, args=(share,)) for share in shares]
    started = time.perf_counter()
    for p in processes:
        p.start()
    gathered = [results.get() for _ in processes]
    for p in processes:
        p.join()
    elapsed = time.perf_counter() - started
    return elapsed, [x for lat, _ in gathered for x in lat], sum(f for _, f in gathered)


def run_clients(n_clients: int, jobs: queue.Queue, do_one) -> tuple[float, list[float], int]:
    from django.db import connections

    latencies: list[float] = []
    failures = [0]
    lock = threading.Lock()

    def client():
        local = []
        try:
            while True:
                try:
                    job = jobs.get_nowait()
                except queue.Empty:
                    break
                t0 = time.perf_counter()
                try:
                    do_one(job)
                except Exception:
                    with lock:
                        failures[0] += 1
                local.append(time.perf_counter() - t0)
        finally:
            connections.close_all()
            with lock:
                latencies.extend(local)

    threads = [threading.Thread(target=client) for _ in range(n_clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - started, latencies, failures[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--trades", type=int, default=3000)
    parser.add_argument("--markets", type=int, default=8)
    parser.add_argument(
        "--processes",
        type=int,
        default=2,
        help="client processes, one per core like web workers (1: all threads in one)",
    )
    args = parser.parse_args()

    tmp = tempfile.mkdtemp(prefix="bench-market-")
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{tmp}/bench.sqlite3")
    os.environ.setdefault("VAR_DIR", tmp)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
    os.environ.setdefault("BAYES_AUTO_REFIT", "0")
    os.environ.setdefault("DEBUG", "0")
    import django

    django.setup()
    import datetime as dt

    import numpy as np
    from django.contrib.auth.models import User
    from django.core.exceptions import ValidationError
    from django.core.management import call_command
    from django.db import connection
    from django.db.models import Sum
    from django.utils import timezone

    from forecasting.models import Article, Question
    from market import services
    from market.models import MICRO, Account, LedgerEntry, Position

    call_command("migrate", verbosity=0)
    now = timezone.now()
    tag = uuid.uuid4().hex[:8]
    article = Article.objects.create(slug=f"bench-market-{tag}", title="Bench", published_at=now, body="-")
    markets = []
    for i in range(args.markets):
        question = Question.objects.create(
            article=article,
            title=f"Bench market {i}",
            resolution_criteria="-",
            status=Question.Status.OPEN,
            opens_at=now - dt.timedelta(days=1),
            closes_at=now + dt.timedelta(days=30),
        )
        markets.append(services.market_create(question=question))
    users = [User.objects.create(username=f"bench-{tag}-{i}") for i in range(args.clients * 4)]
    for user in users:
        services.account_for_user(user=user)
    total_before = Account.objects.exclude(kind=Account.Kind.MINT).aggregate(s=Sum("balance"))["s"]

    rng = random.Random(7)
    jobs = [
        (rng.choice(users), rng.choice(markets), rng.randrange(2), rng.randint(1, 20) * MICRO, rng.random())
        for _ in range(args.trades)
    ]

    def trade(job):
        user, market, outcome, amount, coin = job
        if coin < 0.25:
            held = (
                Position.objects.filter(user=user, market=market, outcome=outcome)
                .values_list("shares", flat=True)
                .first()
            )
            if held:
                try:
                    services.trade_execute(
                        user=user,
                        market_id=market.pk,
                        outcome=outcome,
                        side="sell",
                        shares=max(1, held // 2),
                        idempotency_key=uuid.uuid4().hex,
                    )
                    return
                except ValidationError:
                    pass
        services.trade_execute(
            user=user, market_id=market.pk, outcome=outcome, side="buy", amount=amount, idempotency_key=uuid.uuid4().hex
        )

    elapsed, latencies, failures = run_in_processes(args.processes, args.clients, jobs, trade)

    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_bare_insert")
        cursor.execute(
            "CREATE TABLE bench_bare_insert (user_id bigint, market_id bigint, outcome int, shares bigint, cost bigint)"
        )
    bare_jobs = [(i, i % args.markets, i % 2, 1000 + i, 500 + i) for i in range(args.trades)]

    def bare(job):
        from django.db import transaction

        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("INSERT INTO bench_bare_insert VALUES (%s, %s, %s, %s, %s)", job)

    bare_elapsed, bare_latencies, bare_failures = run_in_processes(args.processes, args.clients, bare_jobs, bare)

    negative = Account.objects.exclude(kind__in=[Account.Kind.MINT, Account.Kind.DEBT]).filter(balance__lt=0).count()
    mismatched = sum(
        1
        for account in Account.objects.all()
        if account.balance != (LedgerEntry.objects.filter(account=account).aggregate(s=Sum("amount"))["s"] or 0)
    )
    conserved = Account.objects.exclude(kind=Account.Kind.MINT).aggregate(s=Sum("balance"))["s"] == total_before
    ms = np.array(latencies) * 1000
    bare_ms = np.array(bare_latencies) * 1000
    print(
        f"database: {connection.vendor}; {args.clients} clients in {args.processes} processes,"
        f" {args.markets} markets, {args.trades} trades"
    )
    for label, seconds, lat, failed in (
        ("trades:", elapsed, ms, failures),
        ("bare insert:", bare_elapsed, bare_ms, bare_failures),
    ):
        print(
            f"{label:<13} {args.trades / seconds:8.1f} /s   p50 {np.percentile(lat, 50):6.1f} ms"
            f"   p95 {np.percentile(lat, 95):6.1f} ms   failed {failed}"
        )
    print(f"trade cost relative to a bare insert: {bare_elapsed and elapsed / bare_elapsed:.1f}x")
    print(f"invariants: negative balances {negative}, balances != ledger {mismatched}, money conserved {conserved}")
    ok = args.trades / elapsed >= 200 and negative == 0 and mismatched == 0 and conserved and failures == 0
    print("PASS" if ok else "FAIL")


if __name__ == "__main__":
    main()
