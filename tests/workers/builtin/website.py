"""A small web site on loopback for the crawler's tests: pages the test may change while it
runs, redirects, errors, and a log of every request (path, user agent, time)."""

from __future__ import annotations

import gzip
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler

from tests.fakes.loopback import Served


@dataclass(frozen=True)
class Page:
    body: str | bytes
    content_type: str = "text/html; charset=utf-8"
    status: int = 200
    location: str | None = None
    cookie: str | None = None
    """A ``Set-Cookie`` header to send."""
    gzip: bool = False
    """Send the body gzip-compressed (``Content-Encoding: gzip``)."""


@dataclass(frozen=True)
class Hit:
    path: str
    user_agent: str
    at: float
    cookie: str


@dataclass
class Website(Served):
    """The site at :attr:`url` while the ``with`` block runs; ``{site}`` in a page body is
    replaced by the site's URL when served."""

    pages: dict[str, Page | list[Page]] = field(default_factory=dict)
    """A list answers its pages in turn, then its last one again and again."""
    hits: list[Hit] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    served_name = "website"

    def paths(self) -> list[str]:
        with self._lock:
            return [hit.path for hit in self.hits]

    def handler(self) -> type[BaseHTTPRequestHandler]:
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with site._lock:
                    site.hits.append(
                        Hit(
                            self.path,
                            self.headers.get("User-Agent", ""),
                            time.monotonic(),
                            self.headers.get("Cookie", ""),
                        )
                    )
                    page = site.pages.get(self.path)
                    if isinstance(page, list):
                        page = page.pop(0) if len(page) > 1 else page[0]
                if page is None:
                    page = Page("not found", "text/plain", 404)
                body = page.body
                if isinstance(body, str):
                    body = body.replace("{site}", site.url).encode("utf-8")
                if page.gzip:
                    body = gzip.compress(body)
                self.send_response(page.status)
                self.send_header("Content-Type", page.content_type)
                if page.gzip:
                    self.send_header("Content-Encoding", "gzip")
                self.send_header("Content-Length", str(len(body)))
                if page.location is not None:
                    self.send_header("Location", page.location)
                if page.cookie is not None:
                    self.send_header("Set-Cookie", page.cookie)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler


def html(title: str, *links: str) -> Page:
    anchors = "".join(f'<li><a href="{link}">{link}</a></li>' for link in links)
    return Page(
        f"<html><head><title>{title}</title></head><body><h1>{title}</h1><ul>{anchors}</ul></body></html>"
    )


def sample_site() -> dict[str, Page | list[Page]]:
    """index -> a, b, a#top, the robots-disallowed /private/, the forbidden /forbidden/, an
    off-domain link (localhost is not 127.0.0.1), a redirect to c, a 404 and a PDF; a -> deep1
    -> deep2 -> deep3 (depth 4); robots.txt names a sitemap that lists /from-sitemap.html."""
    return {
        "/robots.txt": Page(
            "User-agent: *\nDisallow: /private/\n\nSitemap: {site}/sitemap.xml\n", "text/plain"
        ),
        "/sitemap.xml": Page(
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
            "<url><loc>{site}/from-sitemap.html</loc></url>"
            "<url><loc>http://localhost:1/elsewhere.html</loc></url></urlset>",
            "application/xml",
        ),
        "/index.html": html(
            "Index",
            "a.html",
            "/b.html",
            "a.html#top",
            "/private/secret.html",
            "/forbidden/x.html",
            "http://localhost:1/offdomain.html",
            "/redirect",
            "/missing.html",
            "/doc.pdf",
            "mailto:someone@example.com",
        ),
        "/a.html": html("A", "/deep1.html", "/index.html"),
        "/b.html": html("B version 1"),
        "/c.html": html("C"),
        "/deep1.html": html("Deep 1", "/deep2.html"),
        "/deep2.html": html("Deep 2", "/deep3.html"),
        "/deep3.html": html("Deep 3"),
        "/from-sitemap.html": html("From the sitemap"),
        "/private/secret.html": html("Secret"),
        "/forbidden/x.html": html("Forbidden"),
        "/redirect": Page("", "text/plain", 302, "/c.html"),
        "/doc.pdf": Page(b"%PDF-1.4 not really", "application/pdf"),
    }


EMITTED = {
    "/index.html",
    "/a.html",
    "/b.html",
    "/c.html",
    "/deep1.html",
    "/deep2.html",
    "/from-sitemap.html",
}
"""The pages of :func:`sample_site` a crawl with ``max-depth: 3`` and
``forbidden-paths: [/forbidden]`` emits."""
