"""Full-stack load test (issue 23): gunicorn, PostgreSQL, Redis, two Celery workers and locust, on loopback.

    .venv/bin/python bench/load/run.py [--quick] [--rows PATH] [--users 10,20,30,40,60,80,120,160] [--step-time 45]
        [--spike-time 120] [--port 8765] [--web-workers 4]

1. The seeded database (bench/load/seed_large.py: 10,000 readers, 200 questions, 1,000,000 forecasts, a
   question with 10,000 forecasters; ``--quick`` a fifth to a tenth of that) is kept in
   ``<DATABASE_URL's name>_seed_full`` (``_seed_quick``) and seeded only once; each run copies it into
   DATABASE_URL's database (``CREATE DATABASE ... TEMPLATE``: seconds), so every run starts from the same
   state, and migrates the copy.
2. It starts gunicorn (``webapp.wsgi``, 4 sync workers, DEBUG=0, static files by WhiteNoise after
   collectstatic) and two Celery workers on Redis (the first with ``--beat``: the outbox flush and the
   schedule run as in production), then locust headless (bench/load/locustfile.py):
   - the baseline: the cheapest endpoint (a static file) alone, without think time;
   - a warm-up of the mix (15 s; every web worker imports and connects; its failures count too);
   - steps of the reader mix at rising user counts; the sustained rate is the highest rate of a step
     whose p95 over every request is under 250 ms (stepping stops at the first step over it);
   - the spike run, at the user count of that step: 15 s in, an editor resolves the question with
     10,000 forecasters (GET the resolve form, POST it, as on the editor's page) and the run polls the
     database until every score and every notification of that question is written.
3. It stops everything (always, even on error: SIGTERM to each process it started, then SIGKILL to
   their process groups) and reports, per request kind of the spike run, p50/p95/p99; the errors (failed
   requests of every run, plus trades posted but not written, plus missing scores or notifications);
   and the time from the resolution to the last score and notification, beside the score recompute
   alone (in this process, after the load, rolled back).

Rate limits would turn a load test from one address into 429s: the servers get the settings' own
environment variables raised (RATE_LIMIT_FORECAST, RATE_LIMIT_TRADE, COMMENT_RATE_ACCOUNT, COMMENT_RATE_IP).
Persistent database connections (DB_CONN_MAX_AGE=60) as production would run; e-mails go to Django's
dummy backend (the notification rows and their e-mail status are written as with SMTP); the Bayesian
model's refit after a resolution is off (BAYES_AUTO_REFIT=0) unless ``--bayes-refit``.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import requests

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(HERE))

import rows  # noqa: E402
from seed_large import EDITOR, MARKER, READER_PREFIX  # noqa: E402

DEFAULT_DATABASE_URL = "postgres://forecasting:forecasting@127.0.0.1:5432/bench_load"
DEFAULT_BROKER_URL = "redis://127.0.0.1:6379/5"
BIN = ROOT / ".venv" / "bin"
P95_GOAL_MS = 250.0
SPIKE_DELAY_S = 15.0
SECRET_KEY = "bench-load-secret-key-not-for-anything-else-0123456789abcdef"
STATIC = "/static/css/site.css"
MAX_REQUESTS_PER_RUN = 100_000  # each locust run stops there if its --run-time has not come first
SESSIONS = 300  # logged-in readers available to locust (one each)


# --- databases ------------------------------------------------------------------------------------


def _with_db(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/" + name))


def _db_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def _admin(url: str):
    import psycopg

    return psycopg.connect(_with_db(url, "postgres"), autocommit=True, connect_timeout=5)


def _connect(url: str):
    import psycopg

    return psycopg.connect(url, autocommit=True, connect_timeout=5)


def prepare_database(url: str, *, quick: bool, env: dict) -> None:
    """Seed the template once (kept between runs), then copy it into ``url``'s database."""
    seed_name = f"{_db_name(url)}_seed_{'quick' if quick else 'full'}"
    seed_url = _with_db(url, seed_name)
    with _admin(url) as admin:
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [seed_name]).fetchone():
            admin.execute(f'CREATE DATABASE "{seed_name}"')
    rows.progress(f"seed database {seed_name} (seeded once, then reused)")
    command = [sys.executable, str(HERE / "seed_large.py"), *(["--quick"] if quick else [])]
    subprocess.run(command, cwd=ROOT, env={**env, "DATABASE_URL": seed_url}, check=True)
    rows.progress(f"copying {seed_name} into {_db_name(url)}")
    with _admin(url) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{_db_name(url)}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{_db_name(url)}" TEMPLATE "{seed_name}"')
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
    subprocess.run([*manage, "collectstatic", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)


def seeded(url: str) -> dict:
    with _connect(url) as conn:
        keys = ("size", "readers", "questions", "forecasts", "spike_question_id", "spike_forecasters")
        found = conn.execute(f"SELECT {', '.join(keys)} FROM {MARKER}").fetchone()
        return dict(zip(keys, found, strict=True))


def write_plan(path: Path, info: dict) -> dict:
    """The questions, articles and pre-made sessions locust uses (Django's session store, as a login)."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.auth.models import User
    from django.contrib.sessions.backends.db import SessionStore

    from forecasting.models import Article, Question

    def session_for(user: User) -> str:
        store = SessionStore()
        store[SESSION_KEY] = str(user.pk)
        store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        store[HASH_SESSION_KEY] = user.get_session_auth_hash()
        store.create()
        return store.session_key

    spike = info["spike_question_id"]
    readers = User.objects.filter(username__startswith=READER_PREFIX).order_by("?")[:SESSIONS]
    plan = {
        "spike": spike,
        "spike_forecasters": info["spike_forecasters"],
        "questions": list(
            Question.objects.filter(status=Question.Status.OPEN).exclude(pk=spike).values_list("pk", flat=True)
        ),
        "articles": list(Article.objects.values_list("slug", flat=True)),
        "static": STATIC,
        "sessions": [{"username": u.username, "key": session_for(u)} for u in readers],
        "editor_session": session_for(User.objects.get(username=EDITOR)),
    }
    path.write_text(json.dumps(plan))
    return plan


# --- processes ------------------------------------------------------------------------------------


@dataclass
class Processes:
    """Every process this run started, stopped in reverse order whatever happens."""

    started: list[tuple[str, subprocess.Popen]] = field(default_factory=list)

    def start(self, name: str, command: list[str], *, env: dict, log: Path) -> subprocess.Popen:
        handle = log.open("ab")
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.started.append((name, process))
        return process

    def stop(self, timeout: float = 30.0) -> None:
        for _name, process in reversed(self.started):
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGTERM)  # the main process only: a warm shutdown
        deadline = time.monotonic() + timeout
        for name, process in reversed(self.started):
            try:
                process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                rows.progress(f"{name} did not stop in {timeout:.0f} s: killing its process group")
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)  # its own group (start_new_session): leftovers only
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5)
        self.started.clear()


def wait_for_http(url: str, timeout: float, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the web server exited (status {process.returncode}) before answering")
        with contextlib.suppress(requests.RequestException):
            if requests.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.5)
    raise SystemExit(f"{url} did not answer within {timeout:.0f} s")


def wait_for_log(path: Path, text: str, timeout: float, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"a Celery worker exited (status {process.returncode}); see {path}")
        if path.exists() and text in path.read_text(errors="replace"):
            return
        time.sleep(0.5)
    raise SystemExit(f"no {text!r} in {path} within {timeout:.0f} s")


# --- locust ---------------------------------------------------------------------------------------


@dataclass
class Stats:
    """One locust run's figures: per request kind and over all (``"Aggregated"``)."""

    label: str
    users: int
    kinds: dict[str, dict] = field(default_factory=dict)
    failures: list[dict] = field(default_factory=list)

    @property
    def total(self) -> dict:
        return self.kinds["Aggregated"]


def _number(value: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def read_stats(prefix: Path, label: str, users: int) -> Stats:
    stats = Stats(label, users)
    with open(f"{prefix}_stats.csv", newline="") as handle:
        for line in csv.DictReader(handle):
            stats.kinds[line["Name"]] = {
                "requests": int(line["Request Count"]),
                "failures": int(line["Failure Count"]),
                "rps": _number(line["Requests/s"]),
                "p50": _number(line["50%"]),
                "p95": _number(line["95%"]),
                "p99": _number(line["99%"]),
            }
    with contextlib.suppress(FileNotFoundError), open(f"{prefix}_failures.csv", newline="") as handle:
        stats.failures = list(csv.DictReader(handle))
    return stats


def locust(
    processes: Processes,
    *,
    label: str,
    users: int,
    seconds: int,
    host: str,
    env: dict,
    out: Path,
    classes: tuple[str, ...] = ("AnonymousReader", "Forecaster"),
    during=None,
) -> Stats:
    """One headless locust run (bounded by ``--run-time``); ``during(process)`` runs while it does."""
    prefix = out / label
    command = [
        str(BIN / "locust"),
        "-f",
        str(HERE / "locustfile.py"),
        "--headless",
        "--users",
        str(users),
        "--spawn-rate",
        str(max(users / 3, 1)),
        "--run-time",
        f"{seconds}s",
        "--stop-timeout",
        "5",
        "--host",
        host,
        "--csv",
        str(prefix),
        "--only-summary",
        "--loglevel",
        "WARNING",
        *classes,
    ]
    rows.progress(f"locust {label}: {users} users for {seconds} s ({', '.join(classes)})")
    process = processes.start(f"locust {label}", command, env=env, log=out / f"{label}.log")
    result = during(process) if during else None
    try:
        process.wait(timeout=seconds + 60)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=20)
    processes.started.remove((f"locust {label}", process))
    stats = read_stats(prefix, label, users)
    total = stats.total
    rows.progress(
        f"  {label}: {total['rps']:.1f} req/s, p50 {total['p50']:.0f} ms, p95 {total['p95']:.0f} ms,"
        f" p99 {total['p99']:.0f} ms, {total['failures']} failed of {total['requests']}"
        f" (machine load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)"
    )
    stats.during = result
    return stats


# --- the spike ------------------------------------------------------------------------------------


@dataclass
class Spike:
    question_id: int
    forecasters: int
    resolved_at: float | None = None  # monotonic, when the editor's POST was sent
    post_ms: float | None = None
    scores_s: float | None = None
    notifications_s: float | None = None
    emails_s: float | None = None
    scores: int = 0
    notifications: int = 0
    error: str = ""


def resolve_and_watch(spike: Spike, *, host: str, editor_session: str, url: str, timeout: float):
    """``during`` for the spike run: wait, resolve as the editor does, poll until everything is written."""

    def during(process: subprocess.Popen) -> Spike:
        try:
            return watch(process)
        except Exception as error:  # reported as an error row, the run goes on to its end
            spike.error = f"{type(error).__name__}: {error}"
            rows.progress(f"  spike: {spike.error}")
            return spike

    def watch(process: subprocess.Popen) -> Spike:
        time.sleep(SPIKE_DELAY_S)
        editor = requests.Session()
        editor.cookies.set("sessionid", editor_session)
        form = f"{host}/editor/questions/{spike.question_id}/resolve/"
        page = editor.get(form, timeout=30)
        token = editor.cookies.get("csrftoken")
        if page.status_code != 200 or not token:
            spike.error = f"resolve form: HTTP {page.status_code}, csrftoken {'set' if token else 'missing'}"
            return spike
        data = {"outcome": "yes", "source": "https://example.org/announcement", "note": "load test spike"}
        spike.resolved_at = time.monotonic()
        answer = editor.post(
            form, data={**data, "csrfmiddlewaretoken": token}, headers={"Referer": form}, allow_redirects=False
        )
        spike.post_ms = (time.monotonic() - spike.resolved_at) * 1000
        if answer.status_code != 302:
            spike.error = f"resolve POST: HTTP {answer.status_code}"
            return spike
        rows.progress(f"  spike: question {spike.question_id} resolved ({spike.post_ms:.0f} ms); polling")
        with _connect(url) as conn:
            deadline = spike.resolved_at + timeout
            while time.monotonic() < deadline:
                now = time.monotonic() - spike.resolved_at
                spike.scores = conn.execute(
                    "SELECT count(*) FROM forecasting_score WHERE question_id = %s", [spike.question_id]
                ).fetchone()[0]
                if spike.scores and spike.scores_s is None:
                    spike.scores_s = now  # one transaction writes them all
                spike.notifications, pending = conn.execute(
                    "SELECT count(*), count(*) FILTER (WHERE email_status IN ('pending', 'sending'))"
                    " FROM notifications_notification WHERE question_id = %s AND kind = 'resolved'",
                    [spike.question_id],
                ).fetchone()
                if spike.notifications >= spike.forecasters and spike.notifications_s is None:
                    spike.notifications_s = now
                if spike.notifications_s is not None and not pending:
                    spike.emails_s = now
                    break
                time.sleep(0.2)
        rows.progress(
            f"  spike: scores after {spike.scores_s} s ({spike.scores}), notifications after"
            f" {spike.notifications_s} s ({spike.notifications}), e-mails handed over after {spike.emails_s} s"
        )
        return spike

    return during


def scoring_alone(question_id: int) -> float:
    """The score recompute of the spike question in this process with no load, rolled back."""
    from django.db import transaction

    from forecasting.services import question_scores_recompute

    class Rollback(Exception):
        pass

    started = time.perf_counter()
    with contextlib.suppress(Rollback), transaction.atomic():
        question_scores_recompute(question_id=question_id)
        elapsed = time.perf_counter() - started
        raise Rollback
    return elapsed


# --- main -----------------------------------------------------------------------------------------


def server_env(url: str, broker: str, var_dir: Path, port: int, *, bayes_refit: bool) -> dict:
    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": url,
            "CELERY_BROKER_URL": broker,
            "CACHE_URL": broker,  # the rate limits' counters, shared by the web workers (other keys than Celery's)
            "DJANGO_SETTINGS_MODULE": "webapp.settings",
            "DEBUG": "0",
            "SECRET_KEY": SECRET_KEY,
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "SITE_URL": f"http://127.0.0.1:{port}",
            "VAR_DIR": str(var_dir),
            "LOG_LEVEL": "WARNING",
            "DB_CONN_MAX_AGE": "60",
            "EMAIL_BACKEND": "django.core.mail.backends.dummy.EmailBackend",
            "RATE_LIMIT_FORECAST": "1000000/m",
            "RATE_LIMIT_TRADE": "1000000/m",
            "COMMENT_RATE_ACCOUNT": "100000/m,1000000/d",
            "COMMENT_RATE_IP": "100000/m,1000000/d",
            "BAYES_AUTO_REFIT": "1" if bayes_refit else "0",
            "BAYES_WORKER_WARM_UP": "1" if bayes_refit else "0",
            "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        }
    )
    return env


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--users",
        default="",
        help="user counts of the steps (default 10,20,30,40,60,80,120,160; quick 10,20,40,60,80,120);"
        " stepping stops at the first step that misses p95 < 250 ms",
    )
    parser.add_argument("--step-time", type=int, default=0, help="seconds per step (default 45; quick 30)")
    parser.add_argument("--spike-time", type=int, default=0, help="seconds of the spike run (default 120; quick 75)")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--web-workers", type=int, default=4)
    parser.add_argument("--bayes-refit", action="store_true", help="refit the Bayesian model after the resolution")
    parser.add_argument("--out", type=Path, default=None, help="locust CSVs and logs (default: a temporary folder)")
    rows.add_arguments(parser)
    args = parser.parse_args()
    steps = [
        int(u) for u in (args.users or ("10,20,40,60,80,120" if args.quick else "10,20,30,40,60,80,120,160")).split(",")
    ]
    step_time = args.step_time or (30 if args.quick else 45)
    spike_time = args.spike_time or (75 if args.quick else 120)

    url = os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL)
    if not url.startswith(("postgres://", "postgresql://")):
        raise SystemExit("the load test runs on PostgreSQL: DATABASE_URL must be a postgres:// URL")
    broker = os.environ.get("CELERY_BROKER_URL", DEFAULT_BROKER_URL)
    if not broker.startswith("redis://"):
        raise SystemExit("the load test runs on Redis: CELERY_BROKER_URL must be a redis:// URL")
    out = args.out or Path(tempfile.mkdtemp(prefix="bench-load-"))
    out.mkdir(parents=True, exist_ok=True)
    var_dir = Path(os.environ.get("VAR_DIR") or tempfile.mkdtemp(prefix="bench-load-var-"))
    host = f"http://127.0.0.1:{args.port}"
    env = server_env(url, broker, var_dir, args.port, bayes_refit=args.bayes_refit)
    rows.progress(f"load: logs and CSVs in {out}")

    prepare_database(url, quick=args.quick, env=env)
    info = seeded(url)
    rows.progress(f"seeded: {info}")
    os.environ.update({k: env[k] for k in ("DATABASE_URL", "SECRET_KEY", "DJANGO_SETTINGS_MODULE", "VAR_DIR")})
    os.environ.update({"CELERY_BROKER_URL": broker, "DEBUG": "0", "LOG_LEVEL": "WARNING"})
    import django

    django.setup()
    from django.db import connections

    plan_path = out / "plan.json"
    plan = write_plan(plan_path, info)
    connections.close_all()
    env["LOAD_PLAN"] = str(plan_path)
    env["LOAD_MAX_REQUESTS"] = str(MAX_REQUESTS_PER_RUN)
    load_started_sql = None
    with _connect(url) as conn:
        load_started_sql = conn.execute("SELECT now()").fetchone()[0]

    processes = Processes()
    runs: list[Stats] = []
    busy = float("nan")
    spike = Spike(info["spike_question_id"], info["spike_forecasters"])
    try:
        celery = [str(BIN / "celery"), "-A", "webapp"]
        subprocess.run([*celery, "purge", "-f"], cwd=ROOT, env=env, check=False, capture_output=True)
        workers = []
        for n in (1, 2):
            extra = ["--beat", "--schedule", str(var_dir / "celerybeat-schedule")] if n == 1 else []
            log = out / f"worker{n}.log"
            command = [*celery, "worker", "--loglevel", "INFO", "--concurrency", "2", "--hostname", f"load{n}@%h"]
            workers.append((processes.start(f"celery worker {n}", [*command, *extra], env=env, log=log), log))
        gunicorn = [
            str(BIN / "gunicorn"),
            "webapp.wsgi",
            "--workers",
            str(args.web_workers),
            "--bind",
            f"127.0.0.1:{args.port}",
            "--timeout",
            "120",
        ]
        web = processes.start("gunicorn", gunicorn, env=env, log=out / "gunicorn.log")
        wait_for_http(host + STATIC, 60, web)
        for process, log in workers:
            wait_for_log(log, " ready.", 120, process)
        rows.progress(f"gunicorn ({args.web_workers} workers) and 2 Celery workers are up on {host}")

        common = {"host": host, "env": env, "out": out}
        baseline = locust(
            processes,
            label="baseline-static",
            users=8,
            seconds=min(step_time, 20),
            classes=("StaticBaseline",),
            **common,
        )
        runs.append(baseline)
        # Warm-up (every web worker imports and connects; its failures still count as errors).
        runs.append(locust(processes, label="warm-up", users=steps[0], seconds=15, **common))
        best: Stats | None = None
        busy = os.getloadavg()[0]  # the machine is shared: the figures depend on what else runs
        for users in steps:
            stats = locust(processes, label=f"step-{users}-users", users=users, seconds=step_time, **common)
            runs.append(stats)
            if stats.total["p95"] < P95_GOAL_MS and stats.total["failures"] == 0:
                if best is None or stats.total["rps"] > best.total["rps"]:
                    best = stats
            else:
                break
        spike_users = best.users if best else steps[0]
        watch = resolve_and_watch(
            spike, host=host, editor_session=plan["editor_session"], url=url, timeout=spike_time + 240
        )
        spike_run = locust(
            processes, label=f"spike-{spike_users}-users", users=spike_users, seconds=spike_time, during=watch, **common
        )
        runs.append(spike_run)
    finally:
        rows.progress("stopping locust, gunicorn and the Celery workers")
        processes.stop()

    # --- checks and rows ------------------------------------------------------------------------------
    posted = sum(
        r.kinds.get("trade (POST)", {}).get("requests", 0) - r.kinds.get("trade (POST)", {}).get("failures", 0)
        for r in runs
    )
    with _connect(url) as conn:
        written = conn.execute(
            "SELECT count(*) FROM market_trade WHERE created_at >= %s", [load_started_sql]
        ).fetchone()[0]
        expected_scores = 8 * spike.forecasters  # Brier, log, baseline, peer; at resolution and time-averaged
    failed_requests = sum(r.total["failures"] for r in runs)
    missing_trades = max(posted - written, 0)
    missing = max(expected_scores - spike.scores, 0) + max(spike.forecasters - spike.notifications, 0)
    errors = failed_requests + missing_trades + missing + (1 if spike.error else 0)
    rows.progress(
        f"errors: {failed_requests} failed requests, {missing_trades} trades posted but not written"
        f" ({posted} posted, {written} written), {missing} scores or notifications missing"
        + (f", spike: {spike.error}" if spike.error else "")
    )
    for r in runs:
        for failure in r.failures[:10]:
            where = f"{failure.get('Method')} {failure.get('Name')}"
            rows.progress(f"  {r.label}: {failure.get('Occurrences')} x {where}: {failure.get('Error')}")
    alone = scoring_alone(spike.question_id) if spike.scores_s is not None else None

    static_kind = "static file (cheapest endpoint)"
    static_rps = baseline.total["rps"]
    size = f"{info['readers']:,} readers, {info['questions']} questions, {info['forecasts']:,} forecasts"
    sustained = best.total["rps"] if best else 0.0
    spike_static_p95 = spike_run.kinds.get(static_kind, {}).get("p95")
    result = [
        rows.row(
            f"load ({size}): sustained requests/s of the reader mix, the highest step with p95 <"
            f" {P95_GOAL_MS:.0f} ms and no error, 0 if none ({best.users if best else 0} users,"
            f" p95 {best.total['p95'] if best else float('nan'):.0f} ms; steps {', '.join(map(str, steps))} users;"
            f" load average {busy:.1f} on {os.cpu_count()} cores)",
            sustained,
            "/s",
            baseline="the cheapest endpoint (static file) alone, 8 users, no think time",
            baseline_value=static_rps,
            goal=rows.at_least(1, "/s"),
        ),
        rows.row(
            f"load: all requests of the spike run, p95 (p50 {spike_run.total['p50']:.0f} ms,"
            f" p99 {spike_run.total['p99']:.0f} ms, {spike_run.total['requests']:,} requests, {spike_users} users)",
            spike_run.total["p95"],
            "ms",
            baseline="static file p95 in the same run",
            baseline_value=spike_static_p95,
            goal=rows.at_most(P95_GOAL_MS, "ms"),
        ),
    ]
    for name, kind in sorted(spike_run.kinds.items()):
        if name == "Aggregated":
            continue
        result.append(
            rows.row(
                f"load: {name} p95 (p50 {kind['p50']:.0f} ms, p99 {kind['p99']:.0f} ms, {kind['requests']:,} requests)",
                kind["p95"],
                "ms",
                baseline="static file p95 in the same run",
                baseline_value=spike_static_p95,
                goal=rows.at_most(P95_GOAL_MS, "ms"),
            )
        )
    result.append(
        rows.row(
            "load: errors (failed requests, trades not written, scores or notifications missing)",
            errors,
            "",
            baseline="",
            baseline_value=None,
            goal=rows.at_most(0, ""),
        )
    )
    done_s = None
    if spike.scores_s is not None and spike.notifications_s is not None:
        done_s = max(spike.scores_s, spike.notifications_s)
    scores_s = "-" if spike.scores_s is None else f"{spike.scores_s:.1f}"
    result.append(
        rows.row(
            f"load: resolution of a {spike.forecasters:,}-forecaster question to every score and notification"
            f" written, under load (scores after {scores_s} s)",
            done_s,
            "s",
            baseline="the score recompute alone, in-process, no load",
            baseline_value=alone,
            goal=rows.at_most(60, "s"),
        )
    )
    result.append(
        rows.row(
            f"load: resolution of the {spike.forecasters:,}-forecaster question to every e-mail handed to the"
            " mail backend (context)",
            spike.emails_s,
            "s",
            baseline="",
            baseline_value=None,
        )
    )
    rows.write_rows(args.rows, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
