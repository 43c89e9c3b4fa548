"""Readers' Markdown (comments, forecast rationales) to HTML that is safe to put in a page. A pure core:
no Django, tested directly (tests/comments/test_markup.py).

Two locks, so that one bug is not enough: markdown-it renders with raw HTML off (a ``<script>`` typed
by a reader comes out as text) and refuses ``javascript:``-style links; then nh3 (the Ammonia
sanitiser) keeps only the allow-listed tags and attributes, links only to http(s) addresses, and
marks every link ``rel="nofollow noopener ugc"``. Rendering happens on read (nothing rendered is
stored, so a tighter allow-list applies to old comments too), memoised per source text.
"""

from __future__ import annotations

from functools import lru_cache

import nh3
from markdown_it import MarkdownIt

ALLOWED_TAGS = frozenset({"p", "br", "em", "strong", "a", "code", "pre", "blockquote", "ul", "ol", "li"})
ALLOWED_ATTRIBUTES = {"a": {"href"}}
LINK_REL = "nofollow noopener ugc"
LINK_SCHEMES = ("http://", "https://")

# CommonMark without raw HTML, images (one would load a third party's address on our page) or
# headings (a comment's "# 1" is not a title): those come out as text.
_markdown = MarkdownIt("commonmark", {"html": False}).disable(["image", "heading", "lheading"])


def _only_web_links(tag: str, attribute: str, value: str) -> str | None:
    """nh3's attribute filter: an ``href`` stays only if it is an absolute http(s) address."""
    if tag == "a" and attribute == "href" and not value.strip().lower().startswith(LINK_SCHEMES):
        return None
    return value


@lru_cache(maxsize=2048)
def render_markdown(source: str) -> str:
    """``source`` (Markdown) as sanitised HTML; the empty string for blank input."""
    if not source.strip():
        return ""
    html = _markdown.render(source)
    return nh3.clean(
        html,
        tags=set(ALLOWED_TAGS),
        attributes={tag: set(names) for tag, names in ALLOWED_ATTRIBUTES.items()},
        attribute_filter=_only_web_links,
        url_schemes={"http", "https"},
        link_rel=LINK_REL,
        strip_comments=True,
    ).strip()
