"""The demo's older articles: fictional places and people, labelled as demo content, each with the
questions it raised and how they resolved. Plain data (no Django): ``services.demo_seed`` writes them.

``outcome`` is "yes", "no", "annulled" or, for a multiple-choice question, the winning option's label.
``days`` is how long the question was open; ``after`` the paragraph its card follows.
"""

from __future__ import annotations

DEMO_SECTION = "Demo"
DEMO_BYLINE = "Demo desk (simulated content)"
DEMO_NOTE = "Demo article: a fictional story written to show how the product works. Nothing in it is real."

ARTICLES: list[dict] = [
    {
        "slug": "demo-northmere-tram-extension",
        "title": "Demo: Northmere council weighs a tram extension",
        "weeks_before": 10,
        "paragraphs": [
            "Northmere's city council will vote next month on extending the tram network, a plan that has "
            "divided the fictional harbour city for the best part of a decade.",
            "Three routes are on the table: a Harbour line along the waterfront, a University loop through the "
            "northern suburbs and an Airport spur. Officials say only one can be funded in this budget round.",
            "The cost estimate stands at £360m, though opponents argue that tunnelling under the old town "
            "could push it well past £400m. The mayor has hinted at a referendum if the vote is close.",
            "Construction crews are on standby, but the transport authority says no work will start until "
            "the final business case is signed off.",
        ],
        "questions": [
            ("Will Northmere's council approve the tram extension at its vote?", "yes", 21, 1),
            ("Will the final plan's budget exceed £400m?", "no", 28, 3),
            ("Will construction of the extension start within four weeks of the article?", "no", 28, 4),
            (
                "Which route will the council choose?",
                "University loop",
                21,
                2,
                ["Harbour line", "University loop", "Airport spur"],
            ),
            ("Will the mayor call a referendum on the extension?", "annulled", 21, 3),
        ],
    },
    {
        "slug": "demo-riverside-rovers-promotion-race",
        "title": "Demo: Riverside Rovers enter the final weeks of a promotion race",
        "weeks_before": 7,
        "paragraphs": [
            "Riverside Rovers, the fictional second-division club, sit two points clear in second place with "
            "four matches left, and their manager's contract runs out at the end of the season.",
            "Their striker has 17 league goals; three more would make him the first Rovers player to reach 20 "
            "in a season since the club moved grounds.",
            "The club expects a sell-out of 32,000 for the last home game, if the promotion race is still "
            "alive by then.",
        ],
        "questions": [
            ("Will Riverside Rovers finish in the top two?", "yes", 24, 1),
            ("Will Rovers' striker score 20 or more league goals this season?", "no", 24, 2),
            ("Will attendance at Rovers' last home game exceed 30,000?", "yes", 18, 3),
            ("Will the manager sign a new contract before the season ends?", "yes", 24, 1),
            ("Will Rovers lose more than one of their last four matches?", "no", 24, None),
        ],
    },
    {
        "slug": "demo-heatwave-tests-the-regional-grid",
        "title": "Demo: A heatwave tests the regional grid",
        "weeks_before": 5,
        "paragraphs": [
            "Forecasters expect temperatures in the fictional Vale region to approach the all-time record of "
            "38.1°C this week, and the grid operator has warned that demand could outstrip supply at peak hours.",
            "Water companies are weighing a hosepipe ban; reservoirs stand at 61% of capacity, against 78% "
            "in a typical summer.",
            "Consumer groups have asked the energy regulator to open an inquiry into last summer's outages.",
        ],
        "questions": [
            ("Will the Vale's all-time temperature record be broken this summer?", "yes", 14, 1),
            ("Will the grid operator order rolling blackouts?", "no", 14, 1),
            ("Will a hosepipe ban be declared in the Vale?", "yes", 14, 2),
            ("Will the energy regulator open an inquiry into the outages?", "no", 21, 3),
            ("Will reservoir levels fall below 50% before the question closes?", "no", 21, 2),
        ],
    },
]


def questions_of(article: dict) -> list[dict]:
    """The article's questions as dicts: title, outcome, days, after, options (empty for yes/no)."""
    rows = []
    for row in article["questions"]:
        title, outcome, days, after, *rest = row
        rows.append(
            {"title": title, "outcome": outcome, "days": days, "after": after, "options": rest[0] if rest else []}
        )
    return rows
