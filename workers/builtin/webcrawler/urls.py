"""Which URLs the crawler may visit, and the links and sitemap entries found in documents.

Pure functions: no I/O. Documents are read with the standard library's HTML tokenizer
(``html.parser``), which copes with broken markup and needs no extra package; the crawler only
wants ``<a href>`` (and ``<base href>`` to resolve them) and the ``<loc>`` entries of sitemaps.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import urldefrag, urljoin, urlsplit


@dataclass(frozen=True)
class UrlRules:
    """``allowed-domains`` and ``forbidden-paths``, as LangStream reads them.

    A URL is allowed when it starts with one of the allowed entries (which may be
    ``https://host/path``) or its host equals one (case-insensitive), and its path (``/`` when
    empty) starts with none of the forbidden paths.
    """

    allowed_domains: tuple[str, ...] = ()
    forbidden_paths: tuple[str, ...] = ()

    def allows(self, url: str) -> bool:
        try:
            parts = urlsplit(url)
            host = parts.hostname or ""
            _ = parts.port  # a port out of range raises ValueError
        except ValueError:
            return False
        if parts.scheme not in ("http", "https") or not host:
            return False
        path = parts.path or "/"
        domain_ok = any(
            url.startswith(entry) or entry.lower() == host.lower() for entry in self.allowed_domains
        )
        return domain_ok and not any(path.startswith(p) for p in self.forbidden_paths)


def without_fragment(url: str) -> str:
    """``url`` without its ``#fragment``: one page, however many anchors point into it."""
    return urldefrag(url).url


def origin_of(url: str) -> str:
    """``scheme://host[:port]``: whose robots.txt rules a URL, and whose politeness delay."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


class _Lenient(HTMLParser):
    """The standard tokenizer, but a marked section it does not know (``<![if !IE]>``, old
    conditional comments) is skipped like a comment instead of stopping the parse."""

    def parse_marked_section(self, i: int, report: bool = True) -> int:
        try:
            return super().parse_marked_section(i, report)
        except AssertionError:
            end = self.rawdata.find(">", i)
            return -1 if end < 0 else end + 1


class _Links(_Lenient):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.base: str | None = None
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ("a", "base"):
            return
        href = next((value for name, value in attrs if name == "href" and value), None)
        if href is None:
            return
        if tag == "base":
            if self.base is None:
                self.base = href.strip()
        else:
            self.hrefs.append(href.strip())


def links_of(html: str, page_url: str) -> list[str]:
    """The absolute http(s) URLs of the ``<a href>`` links of ``html``, fragments dropped, in
    document order, each once."""
    parser = _Links()
    parser.feed(html)
    parser.close()
    base = urljoin(page_url, parser.base) if parser.base else page_url
    return _unique(_absolute(base, href) for href in parser.hrefs)


class _Locations(_Lenient):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.index = False
        self.inside = False
        self.text: list[str] = []
        self.locations: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "sitemapindex":
            self.index = True
        elif tag == "loc":
            self.inside = True
            self.text = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "loc" and self.inside:
            self.inside = False
            self.locations.append("".join(self.text).strip())

    def handle_data(self, data: str) -> None:
        if self.inside:
            self.text.append(data)


def sitemap_entries(xml: str, sitemap_url: str) -> tuple[bool, list[str]]:
    """(whether it is a sitemap index, the absolute URLs of its ``<loc>`` entries): pages of a
    sitemap, or further sitemaps of an index."""
    parser = _Locations()
    parser.feed(xml)
    parser.close()
    return parser.index, _unique(_absolute(sitemap_url, loc) for loc in parser.locations if loc)


def _absolute(base: str, href: str) -> str:
    try:
        url = without_fragment(urljoin(base, href))
    except ValueError:
        return ""
    return url if url.lower().startswith(("http://", "https://")) else ""


def _unique(urls: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(url for url in urls if url))
