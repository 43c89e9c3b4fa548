"""The Markdown renderer (comments/markup.py), a pure core: what a reader types can never script the page."""

from html.parser import HTMLParser

from hypothesis import given
from hypothesis import strategies as st

from comments.markup import ALLOWED_ATTRIBUTES, ALLOWED_TAGS, LINK_REL, render_markdown


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag, attrs) -> None:
        self.tags.append((tag, dict(attrs)))


def tags_of(html: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Collect()
    parser.feed(html)
    return parser.tags


def test_markdown_gives_the_allowed_formatting():
    html = render_markdown("*em* **strong** `code`\n\n> quoted\n\n- one\n- two\n\n1. first\n\n```\nblock\n```")
    assert {tag for tag, _ in tags_of(html)} == {"p", "em", "strong", "code", "blockquote", "ul", "ol", "li", "pre"}


def test_a_script_tag_is_shown_as_text_not_run():
    html = render_markdown("Look <script>alert(1)</script> here")
    assert "<script" not in html
    assert "&lt;script&gt;" in html


def test_an_onerror_attribute_never_reaches_the_page():
    for source in ('<img src=x onerror="alert(1)">', '<a href="https://x.org" onclick="steal()">x</a>'):
        html = render_markdown(source)
        assert all(not name.startswith("on") for _, attrs in tags_of(html) for name in attrs), html
        assert "<img" not in html and "<a " not in html


def test_javascript_and_data_links_are_not_links():
    for source in ("[x](javascript:alert(1))", "[x](JaVaScRiPt:alert(1))", "[x](data:text/html,hi)", "<javascript:x>"):
        html = render_markdown(source)
        assert all(attrs.get("href") is None for tag, attrs in tags_of(html) if tag == "a"), html


def test_web_links_stay_and_are_marked_as_user_content():
    html = render_markdown("[source](https://example.org/a?b=1) and <http://example.org/c>")
    links = [attrs for tag, attrs in tags_of(html) if tag == "a"]
    assert [a["href"] for a in links] == ["https://example.org/a?b=1", "http://example.org/c"]
    assert all(a["rel"] == LINK_REL for a in links)


def test_relative_links_lose_their_address():
    (link,) = [attrs for tag, attrs in tags_of(render_markdown("[here](/admin/)")) if tag == "a"]
    assert "href" not in link


def test_images_and_headings_are_not_rendered():
    html = render_markdown("# Title\n\n![pixel](https://tracker.example/p.gif)")
    assert "<img" not in html and "<h1" not in html
    assert "Title" in html


def test_blank_input_renders_nothing():
    assert render_markdown("  \n ") == ""


@given(st.text(alphabet=st.sampled_from(list("<>/=\"' abcdehijnoprstvx:[]()*`!#-&;\n")), max_size=200))
def test_whatever_is_typed_only_allowed_tags_and_attributes_come_out(source):
    for tag, attrs in tags_of(render_markdown(source)):
        assert tag in ALLOWED_TAGS
        allowed = ALLOWED_ATTRIBUTES.get(tag, set()) | ({"rel"} if tag == "a" else set())
        assert set(attrs) <= allowed
        if "href" in attrs:
            assert attrs["href"].lower().startswith(("http://", "https://"))
