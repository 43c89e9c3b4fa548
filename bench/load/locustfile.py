"""The load test's reader mix (locust), run headless by bench/load/run.py on loopback.

    LOAD_PLAN=plan.json .venv/bin/locust -f bench/load/locustfile.py --headless -u 16 -r 8 \
        --run-time 60s --host http://127.0.0.1:8765 [AnonymousReader Forecaster | StaticBaseline]

``LOAD_PLAN`` (written by run.py) names the open questions, the spike question, the articles, the static
file and one pre-made session per logged-in reader (sessions created with Django's session store, as a
login would, so no password hashing runs during the load).

Two kinds of reader, as on a news site (anonymous readers outnumber those who forecast):

- ``AnonymousReader`` (weight 3): article pages, question pages (one in ten is the spike question,
  10,000 forecasters), embeds (an iframe on a partner's page carries no session), the chart's JSON and
  the page's static file.
- ``Forecaster`` (weight 1, logged in): the same pages, plus forecasts, trades and comments, each a POST
  with the CSRF token the pages set (the form's field, as a browser sends it). Writes never target the
  spike question (it resolves during the load; a forecast racing it would rightly be refused).

``StaticBaseline`` (run alone, no think time): the server's cheapest endpoint, a static file through
gunicorn and WhiteNoise, for the capacity baseline.

A POST that succeeds answers 302 (the redirect is not followed: the page it leads to is its own kind);
anything else is a failure. A trade refused for a business reason also redirects, so run.py checks
the trades written against the trades posted. ``LOAD_MAX_REQUESTS`` caps the requests of one run.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import uuid

import gevent
from locust import HttpUser, between, constant, events, task

PLAN = json.loads(open(os.environ["LOAD_PLAN"]).read())  # noqa: SIM115 - read once at import
QUESTIONS: list[int] = PLAN["questions"]
SPIKE: int = PLAN["spike"]
ARTICLES: list[str] = PLAN["articles"]
STATIC: str = PLAN["static"]
SPIKE_SUFFIX = f" [spike question, {PLAN['spike_forecasters']:,} forecasters]"
SESSIONS = itertools.cycle(PLAN["sessions"])  # one per logged-in reader, handed out in turn

# A bound on the requests of one run besides its --run-time (run.py sets it): reached, the run stops.
MAX_REQUESTS = int(os.environ.get("LOAD_MAX_REQUESTS", "0"))
_made = {"requests": 0, "environment": None}


@events.init.add_listener
def _remember(environment, **_kwargs) -> None:
    _made["environment"] = environment


@events.request.add_listener
def _count(**_kwargs) -> None:
    _made["requests"] += 1
    if MAX_REQUESTS and _made["requests"] == MAX_REQUESTS and _made["environment"] is not None:
        gevent.spawn(_made["environment"].runner.quit)


KINDS = {
    "article": "article page",
    "question": "question page",
    "embed": "embed",
    "chart": "chart data (history.json)",
    "forecast": "forecast (POST)",
    "trade": "trade (POST)",
    "comment": "comment (POST)",
    "static": "static file (cheapest endpoint)",
}


def _any_question() -> tuple[int, str]:
    """A question to read, and the suffix of its kind: one read in ten is of the spike question."""
    if random.random() < 0.1:
        return SPIKE, SPIKE_SUFFIX
    return random.choice(QUESTIONS), ""


class Pages:
    """The reads every reader makes."""

    def article(self) -> None:
        self.client.get(f"/articles/{random.choice(ARTICLES)}/", name=KINDS["article"])

    def question(self) -> None:
        pk, suffix = _any_question()
        self.client.get(f"/questions/{pk}/", name=KINDS["question"] + suffix)

    def chart(self) -> None:
        pk, suffix = _any_question()
        self.client.get(f"/questions/{pk}/history.json", name=KINDS["chart"] + suffix)

    def static(self) -> None:
        self.client.get(STATIC, name=KINDS["static"])


class AnonymousReader(Pages, HttpUser):
    weight = 3
    wait_time = between(0.5, 1.5)

    @task(25)
    def article_page(self) -> None:
        self.article()

    @task(25)
    def question_page(self) -> None:
        self.question()

    @task(15)
    def embed(self) -> None:
        pk, suffix = _any_question()
        self.client.get(f"/embed/questions/{pk}/", name=KINDS["embed"] + suffix)

    @task(15)
    def chart_data(self) -> None:
        self.chart()

    @task(15)
    def static_file(self) -> None:
        self.static()


class Forecaster(Pages, HttpUser):
    weight = 1
    wait_time = between(0.5, 1.5)

    def on_start(self) -> None:
        session = next(SESSIONS)
        self.client.cookies.set("sessionid", session["key"])
        # The page a reader reads before forecasting sets the CSRF cookie its forms carry.
        with self.client.get(
            f"/questions/{random.choice(QUESTIONS)}/", name=KINDS["question"], catch_response=True
        ) as r:
            if not self.client.cookies.get("csrftoken"):
                r.failure("no csrftoken cookie on a logged-in reader's question page")

    def _post(self, path: str, data: dict, kind: str) -> None:
        data = {**data, "csrfmiddlewaretoken": self.client.cookies.get("csrftoken", "")}
        with self.client.post(path, data=data, name=KINDS[kind], allow_redirects=False, catch_response=True) as r:
            if r.status_code != 302:
                r.failure(f"{kind}: HTTP {r.status_code}, expected a 302 redirect")
            elif "/accounts/login/" in r.headers.get("Location", ""):
                r.failure(f"{kind}: redirected to the login page (session not accepted)")

    @task(10)
    def article_page(self) -> None:
        self.article()

    @task(10)
    def question_page(self) -> None:
        self.question()

    @task(6)
    def chart_data(self) -> None:
        self.chart()

    @task(5)
    def static_file(self) -> None:
        self.static()

    @task(8)
    def forecast(self) -> None:
        question = random.choice(QUESTIONS)
        probability = str(random.randint(2, 98))
        self._post(f"/questions/{question}/forecast/", {"probability": probability, "rationale": ""}, "forecast")

    @task(3)
    def trade(self) -> None:
        question = random.choice(QUESTIONS)
        data = {
            "outcome": str(random.randint(0, 1)),
            "side": "buy",
            "amount": str(random.randint(1, 5)),
            "idempotency_key": uuid.uuid4().hex,
        }
        self._post(f"/questions/{question}/market/trade/", data, "trade")

    @task(2)
    def comment(self) -> None:
        question = random.choice(QUESTIONS)
        body = f"Updating after today's report: the *base rate* still says {random.randint(5, 95)}%."
        self._post(f"/questions/{question}/comments/new/", {"body": body}, "comment")


class StaticBaseline(Pages, HttpUser):
    """The cheapest endpoint alone, as fast as it answers: the server's floor (run.py runs it by itself)."""

    wait_time = constant(0)

    @task
    def static_file(self) -> None:
        self.static()
