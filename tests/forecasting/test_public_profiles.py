"""Defect 8, "Pseudonyms can be reversed": public pages name only readers who chose a public profile.

The exports key forecasters by pseudonym; public pages used to show every reader's per-question
scores under their username, so an analyst could join the two. The regression test plays that
analyst: it downloads the scores and tries to match each pseudonym to a name from the public pages.
"""

import re
from collections import defaultdict

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse
from django.utils.html import strip_tags

from forecasting import services
from forecasting.models import ForecasterProfile
from forecasting.services.profiles import PRIVATE_LABEL
from tests.factories import ArticleFactory, UserFactory
from tests.forecasting.io.export_helpers import client_for, csv_tables, fetch, key
from tests.forecasting.test_track_record import make_public, resolve

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hashing")]


# --- the analyst's attack ------------------------------------------------------------------------


def table_rows(html: str) -> list[tuple[list[str], list[str]]]:
    """Each table row of a page: its cells' text and the links in it."""
    rows = []
    for row in re.findall(r"<tr[^>]*>(.*?)</tr>", html, flags=re.S):
        cells = [strip_tags(c).strip() for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, flags=re.S)]
        rows.append((cells, re.findall(r'href="([^"]+)"', row)))
    return rows


def match_pseudonyms(analyst, usernames) -> dict[str, str]:
    """Which pseudonym of the export is which username, from the public pages alone (anonymous visitor).

    A username is matched to a pseudonym when its public track record lists the same questions
    with the same Brier scores, or when a leaderboard row naming it shows the pseudonym's mean
    time-averaged peer and Brier scores.
    """
    tables, _ = csv_tables(fetch(client_for(analyst), reverse("download_all")))
    spot_brier: dict[str, dict[str, str]] = defaultdict(dict)
    averaged: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for row in tables["scores"].itertuples():
        if row.kind == "brier" and row.method == "spot":
            spot_brier[row.forecaster][row.question_id] = f"{float(row.value):.3f}"
        if row.method == "time_averaged":
            averaged[row.forecaster][row.kind].append(float(row.value))
    means = {
        f: (f"{sum(k['peer']) / len(k['peer']):.1f}", f"{sum(k['brier']) / len(k['brier']):.3f}")
        for f, k in averaged.items()
    }

    visitor = Client()
    matches: dict[str, str] = {}
    for username in usernames:  # the analyst may know every reader's name
        page = visitor.get(reverse("track_record", args=[username])).content.decode()
        seen = {}
        for cells, links in table_rows(page):
            question = next((m.group(1) for link in links if (m := re.match(r"/questions/(\d+)/$", link))), None)
            if question:
                seen[question] = cells
        for pseudonym, briers in spot_brier.items():
            if seen and set(seen) == set(briers) and all(briers[q] in seen[q] for q in briers):
                matches[pseudonym] = username
    boards = [reverse("leaderboard"), reverse("leaderboard") + "?period=90d"]
    for url in boards:
        for cells, _ in table_rows(visitor.get(url).content.decode()):
            named = [u for u in usernames if u in cells]
            for pseudonym, (peer, brier) in means.items():
                if named and peer in cells and brier in cells:
                    matches[pseudonym] = named[0]
    return matches


def test_an_analyst_cannot_put_a_name_on_a_private_readers_pseudonym(editor, analyst, settings):
    settings.LEADERBOARD_MIN_COVERAGE = 0
    private = [UserFactory(username=name) for name in ("pia", "paul", "pru")]
    public = UserFactory(username="olga")
    make_public(public)
    article = ArticleFactory()
    everyone = [*private, public]
    for i, outcome in enumerate(("yes", "no", "yes")):
        resolve(
            editor,
            {u: (j, f"0.{(i * 4 + j * 3) % 8 + 1}") for j, u in enumerate(everyone)},
            article=article,
            outcome=outcome,
        )

    matches = match_pseudonyms(analyst, [u.username for u in everyone])

    # A public reader chose to be joinable; no private reader can be named.
    assert matches == {key(public): "olga"}
    assert not {key(u) for u in private} & set(matches)


# --- profiles ------------------------------------------------------------------------------------


def test_readers_are_private_until_they_choose_otherwise():
    reader = UserFactory()
    assert services.profile_is_public(user=reader) is False
    profile = services.profile_update(user=reader, is_public=True)
    assert profile.is_public and services.profile_is_public(user=reader)
    services.profile_update(user=reader, is_public=False)
    assert services.profile_is_public(user=reader) is False
    assert ForecasterProfile.objects.filter(user=reader).count() == 1


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_profile_update_refuses_what_is_not_a_choice(value):
    reader = UserFactory()
    with pytest.raises(ValidationError, match="public or private"):
        services.profile_update(user=reader, is_public=value)
    assert not ForecasterProfile.objects.exists()


def test_profile_update_refuses_an_anonymous_visitor():
    from django.contrib.auth.models import AnonymousUser

    with pytest.raises(ValidationError, match="signed-in"):
        services.profile_update(user=AnonymousUser(), is_public=True)


def test_the_settings_page_changes_the_choice(reader):
    client = client_for(reader)
    page = client.get(reverse("profile_settings"))
    assert page.status_code == 200
    assert re.search(r'value="private"[^>]*checked', page.content.decode())
    assert not ForecasterProfile.objects.exists()  # a GET writes nothing
    response = client.post(reverse("profile_settings"), {"visibility": "public"})
    assert response.status_code == 302
    assert services.profile_is_public(user=reader)
    assert "now public" in client.get(reverse("profile_settings")).content.decode()


@pytest.mark.parametrize("data", [{}, {"visibility": "everyone"}])
def test_the_settings_page_refuses_bad_input_and_changes_nothing(reader, data):
    services.profile_update(user=reader, is_public=True)
    response = client_for(reader).post(reverse("profile_settings"), data)
    assert response.status_code == 400
    assert "Choose public or private." in response.content.decode()
    assert services.profile_is_public(user=reader)


# --- what the public pages show ------------------------------------------------------------------


def test_a_private_track_record_is_shown_to_its_owner_only(editor):
    owner, other = UserFactory.create_batch(2)
    question = resolve(editor, {owner: (0, "0.8"), other: (0, "0.4")})
    url = reverse("track_record", args=[owner.username])
    for client in (Client(), client_for(other), client_for(editor)):
        page = client.get(url).content.decode()
        assert "keeps their track record private" in page
        assert question.title not in page and "0.040" not in page
    own = client_for(owner).get(url).content.decode()
    assert question.title in own and "0.040" in own and "only you can see this page" in own
    make_public(owner)
    assert question.title in Client().get(url).content.decode()


def test_leaderboards_list_private_readers_without_their_name(editor, settings):
    settings.LEADERBOARD_MIN_COVERAGE = 0
    hidden, shown = UserFactory(username="hidden-hal"), UserFactory(username="shown-sue")
    make_public(shown)
    resolve(editor, {hidden: (0, "0.9"), shown: (0, "0.3")})
    board = services.public_leaderboard(viewer=None)
    assert [(r.rank, r.label, r.username) for r in board.ranked] == [
        (1, PRIVATE_LABEL, None),
        (2, "shown-sue", "shown-sue"),
    ]
    assert board.private_rows == 1
    page = Client().get(reverse("leaderboard")).content.decode()
    assert "hidden-hal" not in page and PRIVATE_LABEL in page
    assert reverse("track_record", args=["shown-sue"]) in page
    own = client_for(hidden).get(reverse("leaderboard")).content.decode()
    assert "hidden-hal</a> (you)" in own  # the viewer sees their own row


def test_leaderboards_filter_by_period_and_article(editor, settings):
    settings.LEADERBOARD_MIN_COVERAGE = 0
    settings.LEADERBOARD_MIN_COVERAGE_ARTICLE = 0
    recent, old = UserFactory(username="recent-rita"), UserFactory(username="old-otto")
    make_public(recent, old)
    politics, sport = ArticleFactory(slug="politics"), ArticleFactory(slug="sport")
    resolve(editor, {recent: (0, "0.9"), old: (0, "0.2")}, article=politics, days_ago=20)
    resolve(editor, {old: (0, "0.9"), recent: (0, "0.6")}, article=sport, days_ago=70)  # resolved 60 days ago
    names = lambda board: [r.label for r in board.ranked]  # noqa: E731
    assert names(services.public_leaderboard(period="30d")) == ["recent-rita", "old-otto"]
    assert [r.questions for r in services.public_leaderboard(period="90d").ranked] == [2, 2]
    assert names(services.public_leaderboard(article=sport)) == ["old-otto", "recent-rita"]
    client = Client()
    page = client.get(reverse("leaderboard"), {"period": "30d", "article": "sport"}).content.decode()
    assert "Nobody has enough coverage on resolved questions in this period" in page
    page = client.get(reverse("leaderboard"), {"period": "90d", "article": "sport"}).content.decode()
    assert page.index("old-otto") < page.index("recent-rita")
    assert client.get(reverse("leaderboard"), {"article": "nope"}).status_code == 404


def test_an_unknown_period_is_a_clear_400(client):
    response = client.get(reverse("leaderboard"), {"period": "forever"})
    assert response.status_code == 400
    assert "Unknown period “forever”: choose one of all, 30d, 90d, 365d." in response.content.decode()
    with pytest.raises(ValidationError):
        services.public_leaderboard(period="7d")


def test_the_leaderboard_makes_one_query_whatever_the_number_of_forecasters(
    editor, settings, django_assert_max_num_queries
):
    settings.LEADERBOARD_MIN_COVERAGE = 0
    crowd = UserFactory.create_batch(12)
    make_public(*crowd[:5])
    for i in range(3):
        resolve(editor, {u: (0, f"0.{(i + j) % 9 + 1}") for j, u in enumerate(crowd)})
    with django_assert_max_num_queries(1):
        board = services.public_leaderboard(period="all")
    assert len(board.ranked) == 12 and board.private_rows == 7
    # The page: the board, the filter's articles and the base template's own.
    with django_assert_max_num_queries(3):
        assert Client().get(reverse("leaderboard")).status_code == 200
