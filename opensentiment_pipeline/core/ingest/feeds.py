"""RSS and Atom feeds as a source: fetch (a URL or a file, size-capped), parse with feedparser, strip HTML."""

from __future__ import annotations

import logging
import urllib.error
import urllib.request
import xml.sax
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import feedparser
import pandas as pd

from opensentiment_pipeline.core.ingest.articles import Rejects
from opensentiment_pipeline.core.ingest.sources import SourceSpec, _to_articles

logger = logging.getLogger(__name__)


def read_rss(spec: SourceSpec, rejects: Rejects) -> pd.DataFrame:
    """Feed entries: text = summary (or content, or the title for headline-only feeds) without HTML."""
    feed = feedparser.parse(_fetch(spec))
    problem = feed.get("bozo_exception")
    # On any XML error feedparser falls back to a lenient parse that can turn a broken document into wrong
    # entries. HTML entities (&nbsp;) undefined in XML are the exception: common, and resolved exactly.
    if isinstance(problem, xml.sax.SAXParseException) and problem.getMessage() != "undefined entity":
        raise ValueError(f"source {spec.name!r}: {spec.path} is not a readable RSS/Atom feed: not well-formed XML at "
                         f"line {problem.getLineNumber()}, column {problem.getColumnNumber()} ({problem.getMessage()}); "
                         "fix the document (or ask its publisher to) before ingesting it")
    if feed.bozo and not feed.entries:
        raise ValueError(f"source {spec.name!r}: {spec.path} is not a readable RSS/Atom feed: {feed.get('bozo_exception')}")
    if feed.bozo:
        logger.warning("%s: feed parsed with problems: %s", spec.name, feed.get("bozo_exception"))
    entries = []
    for entry in feed.entries:
        body = entry.get("summary") or (entry.get("content") or [{}])[0].get("value") or ""
        title = _strip_html(entry.get("title", ""))
        entries.append({"id": entry.get("id") or entry.get("link"), "title": title, "text": _strip_html(body) or title,
                        "published": _feed_date(entry), "outlet": feed.feed.get("title")})
    columns = {"id": "id", "title": "title", "text": "text", "published_at": "published", "outlet": "outlet"}
    frame = pd.DataFrame(entries, columns=list(columns.values()), dtype=object)
    return _to_articles(frame, range(1, len(frame) + 1), spec, rejects, columns)


def _fetch(spec: SourceSpec) -> bytes:
    """The feed document, at most `spec.max_feed_bytes` long (a larger one is an error, never read whole)."""
    # Fetched here rather than by feedparser so a network error fails loudly instead of giving an empty feed.
    cap = spec.max_feed_bytes
    if str(spec.path).startswith(("http://", "https://")):
        try:
            with urllib.request.urlopen(spec.path, timeout=30) as response:
                declared = response.headers.get("Content-Length")
                if declared and declared.isdigit() and int(declared) > cap:
                    _too_large(spec, f"{int(declared):,} bytes (Content-Length)")
                data = response.read(cap + 1)
        except urllib.error.URLError as err:
            raise ConnectionError(f"source {spec.name!r}: cannot fetch {spec.path}: {err}") from err
    else:
        path = Path(spec.path)
        if not path.is_file():
            raise FileNotFoundError(f"source {spec.name!r}: no such file: {path}")
        if path.stat().st_size > cap:
            _too_large(spec, f"{path.stat().st_size:,} bytes")
        with path.open("rb") as fh:
            data = fh.read(cap + 1)
    if len(data) > cap:
        _too_large(spec, "more")
    return data


def _too_large(spec: SourceSpec, size: str) -> None:
    raise ValueError(f"source {spec.name!r}: {spec.path} is {size}, over max_feed_bytes={spec.max_feed_bytes:,}; "
                     "that is no ordinary feed. Check the URL, or raise `max_feed_bytes` on the source if it is right")


def _feed_date(entry: Any) -> str | None:
    """ISO date from feedparser's parsed UTC time when it has one (it knows many odd formats), else the raw string."""
    # dict.get skips FeedParserDict's deprecated fallback from "updated" to "published" (and its warning).
    key = "published" if dict.get(entry, "published") else "updated"
    parsed = dict.get(entry, f"{key}_parsed")
    if parsed:
        return "{:04d}-{:02d}-{:02d}T{:02d}:{:02d}:{:02d}Z".format(*parsed[:6])
    return dict.get(entry, key)


class _TextOnly(HTMLParser):
    """Collects the text of an HTML fragment; block tags separate words, inline tags (<b>) do not."""

    _BLOCK = {"p", "br", "div", "li", "tr", "td", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        self.parts.append(" " if tag in self._BLOCK else "")

    def handle_endtag(self, tag: str) -> None:
        self.handle_starttag(tag, [])

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def _strip_html(markup: str) -> str:
    parser = _TextOnly()
    parser.feed(markup or "")
    parser.close()
    return " ".join("".join(parser.parts).split())
