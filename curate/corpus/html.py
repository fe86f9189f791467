"""HTML to plain text with the standard library's :mod:`html.parser`."""

from __future__ import annotations

import re
from html.parser import HTMLParser

#: Elements whose content is dropped: code, styles and the page head.
SKIP_TAGS = frozenset({"script", "style", "head"})
#: Elements dropped by class or id: navigation, tables of contents and banners
#: (DocBook/publican names, as in the Debian Administrator's Handbook).
SKIP_CLASSES = frozenset({"docnav", "toc"})
SKIP_IDS = frozenset({"banner"})
#: Elements that end a line of text.
BLOCK_TAGS = frozenset({"address", "blockquote", "br", "dd", "div", "dl", "dt", "figcaption",
                        "h1", "h2", "h3", "h4", "h5", "h6", "hr", "li", "ol", "p", "pre",
                        "table", "td", "th", "tr", "ul"})
VOID_TAGS = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link",
                       "meta", "source", "track", "wbr"})


class _TextParser(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.pieces: list[str] = []
        self.stack: list[tuple[str, bool]] = []  # open elements: (tag, dropped)
        self.dropped = 0  # open dropped elements
        self.pre = 0  # open <pre> elements

    def handle_starttag(self, tag, attrs):
        if tag in BLOCK_TAGS:
            self.pieces.append("\n")
        if tag in VOID_TAGS:
            return
        attrs = dict(attrs)
        drop = (tag in SKIP_TAGS or attrs.get("id") in SKIP_IDS
                or not SKIP_CLASSES.isdisjoint((attrs.get("class") or "").split()))
        self.stack.append((tag, drop))
        self.dropped += drop
        self.pre += tag == "pre"

    def handle_startendtag(self, tag, attrs):
        if tag in BLOCK_TAGS:
            self.pieces.append("\n")

    def handle_endtag(self, tag):
        if tag in BLOCK_TAGS:
            self.pieces.append("\n")
        if not any(open_tag == tag for open_tag, _ in self.stack):
            return  # a stray end tag
        while self.stack:
            open_tag, drop = self.stack.pop()
            self.dropped -= drop
            self.pre -= open_tag == "pre"
            if open_tag == tag:
                break

    def handle_data(self, data):
        if self.dropped:
            return
        if not self.pre:
            data = re.sub(r"\s+", " ", data)
            if not self.pieces or self.pieces[-1].endswith("\n"):
                data = data.lstrip(" ")
        self.pieces.append(data)


def html_to_text(html: str) -> str:
    """The visible text of ``html``: a line break at each block element (paragraph,
    heading, list item, table cell), so that paragraphs are mostly separated by a blank
    line, never more than one in a row; whitespace collapsed outside ``<pre>``; scripts,
    styles, the head, navigation and tables of contents dropped."""
    parser = _TextParser()
    parser.feed(html)
    parser.close()
    lines = [line.rstrip() for line in "".join(parser.pieces).split("\n")]
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n")
    return text + "\n" if text else ""
