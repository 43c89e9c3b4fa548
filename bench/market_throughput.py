"""Trades per second and latency with 32 concurrent clients, beside a bare insert of the same rows.

Goal (issue 23, hot paths): trades/s >= 0.5x the bare single-row inserts/s of the same clients
(PostgreSQL), and zero invariant violations after the run: no negative balance, every balance equal
to its ledger, money conserved, positions adding up to the market's shares, and every trade priced
on the state the one before it left (a serial replay of each market's trades).

    DATABASE_URL=postgres://... .venv/bin/python bench/market_throughput.py [--quick] [--rows PATH] \
        [--clients 32] [--processes 2] [--trades 3000 (quick: 1000)] [--markets 8]

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
sys.path.insert(0, str(ROOT / "bench"))
import rows  # noqa: E402


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


def invariant_violations(total_before: int, market_ids: list[int]) -> dict[str, int]:
    """What must hold after the run, counted: each non-zero count is a bug (the replay: this run's markets)."""
    from django.db.models import Sum

    from market import lmsr
    from market.models import Account, LedgerEntry, Market, Position, Trade

    ledger = dict(LedgerEntry.objects.values("account").annotate(s=Sum("amount")).values_list("account", "s"))
    accounts = list(Account.objects.values_list("id", "kind", "balance"))
    total_after = sum(balance for _, kind, balance in accounts if kind != Account.Kind.MINT)
    held: dict[tuple[int, int], int] = {}
    for market_id, outcome, shares in Position.objects.values_list("market", "outcome", "shares"):
        held[market_id, outcome] = held.get((market_id, outcome), 0) + shares
    mispriced = unmatched = 0
    for market in Market.objects.filter(pk__in=market_ids):
        q = [0] * len(market.shares)
        for outcome, shares, cost in (
            Trade.objects.filter(market=market).order_by("id").values_list("outcome", "shares", "cost")
        ):
            if shares > 0:
                expected = lmsr.quote_buy_shares(q, market.liquidity, outcome, shares).cost
            else:
                expected = lmsr.quote_sell_shares(q, market.liquidity, outcome, -shares).cost
            mispriced += cost != expected
            q[outcome] += shares
        unmatched += q != market.shares or any(held.get((market.pk, i), 0) != x for i, x in enumerate(q))
    return {
        "negative balances": sum(
            1 for _, kind, b in accounts if kind not in (Account.Kind.MINT, Account.Kind.DEBT) and b < 0
        ),
        "balances != ledger": sum(1 for pk, _, balance in accounts if balance != (ledger.get(pk) or 0)),
        "money not conserved": int(total_after != total_before),
        "trades not priced on the last state": mispriced,
        "markets whose shares != trades or positions": unmatched,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    rows.add_arguments(parser)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--trades", type=int, help="default 3,000 (quick: 1,000)")
    parser.add_argument("--markets", type=int, default=8)
    parser.add_argument(
        "--processes",
        type=int,
        default=2,
        help="client processes, one per core like web workers (1: all threads in one)",
    )
    args = parser.parse_args()
    n_trades = args.trades or (1_000 if args.quick else 3_000)

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
    from market.models import MICRO, Account, Position

    call_command("migrate", verbosity=0)
    rows.progress(f"{connection.vendor}: {args.markets} markets, {args.clients * 4} readers")
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
        for _ in range(n_trades)
    ]
    held_sql = f"SELECT shares FROM {Position._meta.db_table} WHERE user_id = %s AND market_id = %s AND outcome = %s"

    def trade(job):
        user, market, outcome, amount, coin = job
        if coin < 0.25:  # a quarter of the clients sell half of what they hold, if they hold any
            with connection.cursor() as cursor:
                cursor.execute(held_sql, [user.pk, market.pk, outcome])
                held = (cursor.fetchone() or [0])[0]
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

    rows.progress(f"{n_trades:,} trades from {args.clients} clients in {args.processes} processes")
    elapsed, latencies, failures = run_in_processes(args.processes, args.clients, jobs, trade)

    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_bare_insert")
        cursor.execute(
            "CREATE TABLE bench_bare_insert (user_id bigint, market_id bigint, outcome int, shares bigint, cost bigint)"
        )
    bare_jobs = [(i, i % args.markets, i % 2, 1000 + i, 500 + i) for i in range(n_trades)]

    def bare(job):
        from django.db import transaction

        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("INSERT INTO bench_bare_insert VALUES (%s, %s, %s, %s, %s)", job)

    rows.progress(f"{n_trades:,} bare inserts from the same clients")
    bare_elapsed, bare_latencies, bare_failures = run_in_processes(args.processes, args.clients, bare_jobs, bare)

    rows.progress("checking the invariants")
    violations = invariant_violations(total_before, [m.pk for m in markets])
    ms = np.array(latencies) * 1000
    bare_ms = np.array(bare_latencies) * 1000
    per_s, bare_per_s = n_trades / elapsed, n_trades / bare_elapsed
    rows.progress(
        f"{connection.vendor}: trades {per_s:,.0f}/s (p50 {np.percentile(ms, 50):.1f} ms,"
        f" p95 {np.percentile(ms, 95):.1f} ms, {failures} failed); bare inserts {bare_per_s:,.0f}/s"
        f" (p50 {np.percentile(bare_ms, 50):.1f} ms, p95 {np.percentile(bare_ms, 95):.1f} ms, {bare_failures} failed);"
        f" invariants {violations}"
    )
    label = f"{args.clients} clients"
    rows.write_rows(
        args.rows,
        [
            rows.row(
                f"market: trades/s ({label})",
                per_s,
                "/s",
                baseline="bare single-row inserts/s, same clients",
                baseline_value=bare_per_s,
                goal=rows.ratio_at_least(0.5),
            ),
            rows.row(
                f"market: trade p50 latency ({label})",
                float(np.percentile(ms, 50)),
                "ms",
                baseline="bare insert p50",
                baseline_value=float(np.percentile(bare_ms, 50)),
            ),
            rows.row(
                f"market: trade p95 latency ({label})",
                float(np.percentile(ms, 95)),
                "ms",
                baseline="bare insert p95",
                baseline_value=float(np.percentile(bare_ms, 95)),
            ),
            rows.row(
                "market: trades refused or failed (e.g. a sale racing another)",
                failures,
                "",
                baseline="bare inserts failed",
                baseline_value=bare_failures,
            ),
            rows.row(
                "market: invariant violations after the run",
                sum(violations.values()),
                "",
                baseline="",
                baseline_value=None,
                goal=rows.at_most(0, ""),
            ),
        ],
    )


if __name__ == "__main__":
    main()
