"""Questions in other sites' pages: the embed (framable there only), oEmbed, the Open Graph tags and
the preview card, and the editors' embed code (forecasting/views/embeds.py, services/embeds.py)."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from html import unescape
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from forecasting import services
from forecasting.models import Question
from tests.factories import QuestionFactory, UserFactory, multiple_choice_question

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hashing")]

SITE = "https://forecasts.example.org"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def site_url(settings):
    settings.SITE_URL = SITE
    settings.ALLOWED_HOSTS = ["testserver", "forecasts.example.org"]


def forecast(question: Question, *values: str) -> None:
    for value in values:
        services.prediction_create(question=question, forecaster=UserFactory(), probability=Decimal(value))


@pytest.fixture
def binary(db) -> Question:
    question = QuestionFactory(
        title="Will the ceasefire hold until June?", closes_at=timezone.now() + dt.timedelta(days=5)
    )
    forecast(question, "0.30", "0.40", "0.35")
    return question


@pytest.fixture
def draft(db) -> Question:
    return QuestionFactory(status=Question.Status.DRAFT, title="An embargoed question?")


def policy(response) -> dict[str, list[str]]:
    directives = {}
    for part in response.headers["Content-Security-Policy"].split(";"):
        name, *sources = part.split()
        directives[name] = sources
    return directives


def embed_path(question: Question) -> str:
    return reverse("question_embed", kwargs={"pk": question.pk})


def oembed(client, url: str | None, **params):
    query = dict(params)
    if url is not None:
        query["url"] = url
    return client.get(reverse("oembed"), query)


# --- the embed ------------------------------------------------------------------------------------


def test_the_embed_shows_the_live_number_the_forecasters_and_a_link_out(client, binary):
    response = client.get(embed_path(binary))
    assert response.status_code == 200
    html = response.content.decode()
    community = services.community_forecast(question=binary)
    shown = re.search(r"data-community-value>([\d.]+)%<", html).group(1)
    assert Decimal(shown) == round(Decimal(str(community.probability_yes)) * 100, 1)
    assert "3 forecasters" in html and "closes in 5 days" in html
    assert "Will the ceasefire hold until June?" in html
    link = re.search(r'<a class="embed-cta" href="([^"]+)" target="_blank" rel="noopener">', html)
    assert link and link.group(1) == binary.get_absolute_url()
    assert "<polyline" in html  # the sparkline, drawn on the server
    assert (
        '<html lang="en"' in html and "<title>Will the ceasefire hold until June? · Newsroom Forecasts</title>" in html
    )


def test_the_embed_has_its_own_small_page_within_the_strict_policy(client, binary):
    from tests.webapp.test_security_headers import ScriptsAndAttributes

    html = client.get(embed_path(binary)).content.decode()
    assert "site.css" not in html and "htmx" not in html  # not base.html
    found = ScriptsAndAttributes.of(html)
    assert found.inline_scripts == [] and found.refused_attributes == []
    assert found.sources == ["/static/forecasting/embed.js"]


def test_only_the_embed_may_be_framed_and_by_the_configured_sites(client, binary, settings):
    settings.EMBED_FRAME_ANCESTORS = ["https://news.example.com", "https://*.partner.example"]
    embed = client.get(embed_path(binary))
    assert "X-Frame-Options" not in embed.headers
    csp = policy(embed)
    assert csp["frame-ancestors"] == ["https://news.example.com", "https://*.partner.example"]
    assert csp["script-src"] == ["'self'"] and csp["style-src"] == ["'self'"]  # the rest stays strict

    page = client.get(binary.get_absolute_url())
    assert page.headers["X-Frame-Options"] == "DENY"
    assert policy(page)["frame-ancestors"] == ["'none'"]


def test_any_site_may_frame_the_embed_by_default_and_none_when_the_list_is_empty(client, binary, settings):
    settings.EMBED_FRAME_ANCESTORS = ["*"]
    assert policy(client.get(embed_path(binary)))["frame-ancestors"] == ["*"]
    settings.EMBED_FRAME_ANCESTORS = []
    assert policy(client.get(embed_path(binary)))["frame-ancestors"] == ["'none'"]


def test_a_dark_theme_on_request(client, binary):
    assert 'class="theme-dark"' in client.get(embed_path(binary), {"theme": "dark"}).content.decode()
    assert 'class="theme-light"' in client.get(embed_path(binary), {"theme": "<script>"}).content.decode()


def test_a_multiple_choice_embed_lists_the_leading_options_most_likely_first(client):
    question = multiple_choice_question(labels=("Oman", "Qatar", "Egypt", "Jordan"))
    for vector in (["0.1", "0.6", "0.2", "0.1"], ["0.2", "0.5", "0.2", "0.1"]):
        services.prediction_create(
            question=question,
            forecaster=UserFactory(),
            option_probabilities=[Decimal(v) for v in vector],
        )
    html = client.get(embed_path(question)).content.decode()
    labels = re.findall(r'<span class="label">([^<]+)</span>', html)
    assert labels[0] == "Qatar" and len(labels) == 3 and "Jordan" not in labels


def test_a_question_without_forecasts_says_so(client):
    html = client.get(embed_path(QuestionFactory())).content.decode()
    assert "No forecasts yet" in html and "0 forecasters" in html


def test_drafts_are_not_found_by_readers_but_editors_preview_them_uncached(client, draft, editor):
    assert client.get(embed_path(draft)).status_code == 404
    client.force_login(UserFactory())
    assert client.get(embed_path(draft)).status_code == 404
    client.force_login(editor)
    response = client.get(embed_path(draft))
    assert response.status_code == 200
    assert "no-store" in response.headers["Cache-Control"] and "public" not in response.headers["Cache-Control"]


def test_the_embed_reads_in_a_bounded_number_of_queries_and_writes_nothing(client, binary):
    forecast(binary, *["0.5"] * 20)
    with CaptureQueriesContext(connection) as queries:
        assert client.get(embed_path(binary)).status_code == 200
    # the question, its options, its headline history: not one more per forecast
    assert len(queries) <= 3, [q["sql"] for q in queries]
    assert not [q for q in queries if not q["sql"].lstrip().upper().startswith("SELECT")]


def test_the_embed_refuses_writes(client, binary):
    assert client.post(embed_path(binary)).status_code == 405


# --- oEmbed ---------------------------------------------------------------------------------------

REQUIRED_RICH = {"version", "type", "html", "width", "height"}


def test_oembed_answers_a_question_page_with_a_rich_iframe(client, binary):
    response = oembed(client, f"{SITE}{binary.get_absolute_url()}", format="json")
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    data = response.json()
    assert set(data) >= REQUIRED_RICH
    assert data["version"] == "1.0" and data["type"] == "rich"
    assert isinstance(data["width"], int) and isinstance(data["height"], int)
    assert data["title"] == binary.title
    assert data["provider_name"] == "Newsroom Forecasts" and data["provider_url"] == f"{SITE}/"
    assert data["cache_age"] == 300
    assert data["thumbnail_url"] == f"{SITE}/questions/{binary.pk}/card.png"
    assert (data["thumbnail_width"], data["thumbnail_height"]) == (1200, 630)
    iframe = data["html"]
    assert iframe.startswith("<iframe ") and iframe.endswith("</iframe>")
    assert f'src="{SITE}/embed/questions/{binary.pk}/"' in iframe
    assert f'width="{data["width"]}" height="{data["height"]}"' in iframe
    assert 'loading="lazy"' in iframe and 'title="Forecast: Will the ceasefire hold until June?"' in iframe
    assert "public" in response["Cache-Control"]


def test_oembed_answers_an_embed_url_and_keeps_its_theme(client, binary):
    data = oembed(client, f"{SITE}{embed_path(binary)}?theme=dark").json()
    assert f'src="{SITE}/embed/questions/{binary.pk}/?theme=dark"' in data["html"]


def test_oembed_honours_maxwidth_and_maxheight(client, binary):
    url = f"{SITE}{binary.get_absolute_url()}"
    narrow = oembed(client, url, maxwidth="320").json()
    assert narrow["width"] <= 320 and 'width="320"' in narrow["html"]
    assert "thumbnail_url" not in narrow  # the spec: a thumbnail must respect the limits too
    short = oembed(client, url, maxwidth="2000", maxheight="150").json()
    assert short["height"] <= 150 and short["width"] <= 2000
    roomy = oembed(client, url, maxwidth="1600", maxheight="900").json()
    assert roomy["thumbnail_width"] <= 1600 and roomy["thumbnail_height"] <= 900


@pytest.mark.parametrize("value", ["wide", "0", "-5", "1.5"])
def test_oembed_refuses_a_size_that_is_not_a_positive_number(client, binary, value):
    response = oembed(client, f"{SITE}{binary.get_absolute_url()}", maxwidth=value)
    assert response.status_code == 400 and "maxwidth" in response.json()["error"]


def test_oembed_xml_is_not_implemented(client, binary):
    response = oembed(client, f"{SITE}{binary.get_absolute_url()}", format="xml")
    assert response.status_code == 501 and "json" in response.json()["error"]


def test_oembed_without_url_is_a_bad_request_that_says_why(client):
    response = oembed(client, None, format="json")
    assert response.status_code == 400
    assert "url" in response.json()["error"]


@pytest.mark.parametrize(
    "url",
    [
        "https://elsewhere.example/questions/{pk}/",  # another site
        "{site}/articles/talks/",  # ours, not a question
        "{site}/questions/{pk}/history.json",
        "{site}/questions/999999/",  # no such question
        "javascript:alert(1)",
        "not a url",
    ],
)
def test_oembed_refuses_urls_that_are_not_our_questions(client, binary, url):
    response = oembed(client, url.format(site=SITE, pk=binary.pk))
    assert response.status_code == 404


def test_oembed_does_not_reveal_a_draft(client, draft):
    assert oembed(client, f"{SITE}{draft.get_absolute_url()}").status_code == 404


def test_oembed_refuses_writes(client, binary):
    assert client.post(reverse("oembed"), {"url": f"{SITE}{binary.get_absolute_url()}"}).status_code == 405


# --- the question page: Open Graph, Twitter card, oEmbed discovery ----------------------------------


def meta(html: str) -> dict[str, str]:
    tags = re.findall(r'<meta (?:property|name)="([^"]+)" content="([^"]*)">', html)
    return {name: unescape(content) for name, content in tags}


def test_the_question_page_describes_itself_for_link_previews(client, binary):
    html = client.get(binary.get_absolute_url()).content.decode()
    tags = meta(html)
    assert tags["og:title"] == binary.title
    assert tags["og:url"] == f"{SITE}/questions/{binary.pk}/"
    assert tags["og:type"] == "article"
    assert tags["og:image"] == f"{SITE}/questions/{binary.pk}/card.png"
    assert (tags["og:image:width"], tags["og:image:height"]) == ("1200", "630")
    assert tags["og:image:alt"].startswith(binary.title)
    assert tags["twitter:card"] == "summary_large_image"
    assert re.fullmatch(r"Readers give it \d+% · 3 forecasters · closes \d+ \w+ \d{4}", tags["og:description"])
    for name in ("og:url", "og:image", "twitter:image"):
        assert urlsplit(tags[name]).scheme == "https", f"{name} must be absolute"


def test_the_question_page_announces_its_oembed_endpoint(client, binary):
    html = client.get(binary.get_absolute_url()).content.decode()
    link = re.search(r'<link rel="alternate" type="application/json\+oembed" href="([^"]+)" title="([^"]+)">', html)
    assert link, "no oEmbed discovery link"
    href = unescape(link.group(1))
    assert href.startswith(f"{SITE}/oembed?")
    query = parse_qs(urlsplit(href).query)
    assert query["url"] == [f"{SITE}{binary.get_absolute_url()}"] and query["format"] == ["json"]
    # and a consumer following it gets the embed
    assert client.get(urlsplit(href).path, query).json()["type"] == "rich"


def test_a_resolved_question_says_how_it_resolved(client, binary, editor):
    services.question_resolve(question=binary, actor=editor, outcome="yes")
    description = meta(client.get(binary.get_absolute_url()).content.decode())["og:description"]
    assert description.startswith("Resolved: Yes · Readers gave it ")


# --- the card ---------------------------------------------------------------------------------------


def test_the_card_is_a_cacheable_png(client, binary):
    response = client.get(reverse("question_card_image", kwargs={"pk": binary.pk}))
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert response.content.startswith(PNG_SIGNATURE)
    assert "public" in response["Cache-Control"] and "max-age=300" in response["Cache-Control"]


def test_the_card_is_drawn_once_until_the_number_moves_and_a_get_writes_nothing(client, binary):
    url = reverse("question_card_image", kwargs={"pk": binary.pk})
    first = client.get(url).content
    with CaptureQueriesContext(connection) as queries:
        again = client.get(url).content
    assert again == first
    assert len(queries) <= 2, "a cached card costs the question and its latest snapshot id"
    assert all(q["sql"].lstrip().upper().startswith("SELECT") for q in queries)
    forecast(binary, "0.95", "0.97")
    assert client.get(url).content != first


def test_the_card_of_a_draft_is_not_found(client, draft):
    assert client.get(reverse("question_card_image", kwargs={"pk": draft.pk})).status_code == 404


# --- the editors' embed code ------------------------------------------------------------------------


def test_editors_get_the_embed_code_and_readers_do_not(client, binary, editor):
    assert "data-embed-code" not in client.get(binary.get_absolute_url()).content.decode()
    client.force_login(editor)
    html = client.get(binary.get_absolute_url()).content.decode()
    textarea = re.search(r"<textarea [^>]*data-embed-code-text>(.*?)</textarea>", html, re.S)
    code = unescape(textarea.group(1))
    assert code.startswith(f'<iframe src="{SITE}/embed/questions/{binary.pk}/"') and code.endswith("</iframe>")
    assert "readonly" in textarea.group(0)
    assert 'src="/static/forecasting/embed_code.js" defer' in html
    assert 'aria-live="polite"' in html and "data-oembed-url" in html


def test_the_embed_code_escapes_the_title(client, editor):
    question = QuestionFactory(title='Will "A & B" </textarea><script>x</script> agree?')
    client.force_login(editor)
    html = client.get(question.get_absolute_url()).content.decode()
    assert "<script>x</script>" not in html
    code = unescape(re.search(r"data-embed-code-text>(.*?)</textarea>", html, re.S).group(1))
    assert 'title="Forecast: Will &quot;A &amp; B&quot; &lt;/textarea&gt;&lt;script&gt;x&lt;/script&gt; agree?"' in code
