"""webcrawler-source: its URL rules, link and sitemap reading, robots.txt, the saved status, its
configuration, and the agent itself crawling a real site on loopback (read and commit called
as the source executor calls them; tests/workers/builtin/test_webcrawler_worker.py runs it in a
worker on the broker)."""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Any

import pytest

from sluice.application.builtin_config import BadConfiguration, problems_of, read_configuration
from sluice.application.builtin_schemas.sources import DEFAULT_USER_AGENT
from sluice.record import Record
from sluice.sdk import AgentContext
from tests.workers.builtin.website import EMITTED, Page, Website, html, sample_site
from workers.builtin.webcrawler import WebCrawlerSource
from workers.builtin.webcrawler.robots import (
    ALLOW_ALL,
    DISALLOW_ALL,
    Robots,
    robots_name,
    text_for_status,
)
from workers.builtin.webcrawler.status import CrawlStatus
from workers.builtin.webcrawler.urls import UrlRules, links_of, origin_of, sitemap_entries


def test_url_rules_follow_langstream() -> None:
    rules = UrlRules(("https://docs.example.com/guide", "example.org"), ("/private", "/admin"))
    assert rules.allows("https://docs.example.com/guide/intro.html")
    assert not rules.allows("https://docs.example.com/blog/")  # not under the allowed prefix
    assert rules.allows("http://EXAMPLE.org")  # host match, case-insensitive, path "/"
    assert not rules.allows("http://example.org/private/x")
    assert not rules.allows("http://example.org/admin")
    assert not rules.allows("http://sub.example.org/")
    assert not rules.allows("ftp://example.org/file")
    assert not rules.allows("http:example.org")
    assert not rules.allows("http://example.org:99999/")  # no such port
    assert not UrlRules((), ()).allows("http://example.org/")


def test_links_are_absolute_without_fragments_and_once_each() -> None:
    page = """<html><head><base href="/docs/"></head><body>
    <a href="a.html">a</a><a href="a.html#part">again</a><a href="../top.html">up</a>
    <A HREF="https://other.example/x?q=1#f">other</A><a>no href</a><a href="">empty</a>
    <a href="mailto:x@example.com">mail</a><a href="javascript:void(0)">js</a>
    <link href="/style.css"><a href="http://[broken">broken</a><p>unclosed <a href=b.html>b
    <![if !IE]><a href="c.html">c</a><![endif]>
    </body></html>"""
    assert links_of(page, "http://site.example/docs/index.html") == [
        "http://site.example/docs/a.html",
        "http://site.example/top.html",
        "https://other.example/x?q=1",
        "http://site.example/docs/b.html",
        "http://site.example/docs/c.html",
    ]


def test_sitemaps_and_sitemap_indexes() -> None:
    urlset = (
        '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><url>'
        "<loc> http://s.example/a.html </loc><lastmod>2024-01-01</lastmod></url>"
        "<url><loc>http://s.example/b.html?x=1&amp;y=2</loc></url></urlset>"
    )
    assert sitemap_entries(urlset, "http://s.example/sitemap.xml") == (
        False,
        ["http://s.example/a.html", "http://s.example/b.html?x=1&y=2"],
    )
    index = "<sitemapindex><sitemap><loc>/more.xml</loc></sitemap></sitemapindex>"
    assert sitemap_entries(index, "http://s.example/sitemap.xml") == (
        True,
        ["http://s.example/more.xml"],
    )


def test_robots_rules_delay_and_answers() -> None:
    robots = Robots.parse(
        "User-agent: *\nDisallow: /private/\nCrawl-delay: 2\nSitemap: http://s.example/sm.xml\n",
        "SluiceTest/1.0",
    )
    assert robots.allows("http://s.example/public.html")
    assert not robots.allows("http://s.example/private/x.html")
    assert robots.delay() == 2.0
    assert robots.sitemaps() == ["http://s.example/sm.xml"]
    assert text_for_status(200, "User-agent: *") == "User-agent: *"
    assert text_for_status(404, "nope") == ALLOW_ALL
    assert text_for_status(403, "nope") == DISALLOW_ALL
    assert text_for_status(503, "later") is None
    assert not Robots.parse(DISALLOW_ALL, "x").allows("http://s.example/")
    assert Robots.parse(ALLOW_ALL, "x").allows("http://s.example/")
    assert origin_of("HTTP://S.example:8080/a/b?c") == "http://s.example:8080"


def test_robots_groups_match_the_crawler_named_in_the_user_agent() -> None:
    assert robots_name("Mozilla/5.0 (compatible; LangStream.ai/0.1; +https://x)") == (
        "LangStream.ai"
    )
    assert robots_name(DEFAULT_USER_AGENT) == "Sluice webcrawler-source"
    assert robots_name("langstream.ai-webcrawler/1.0") == "langstream.ai-webcrawler"
    assert robots_name("Mozilla/5.0 (X11; Linux x86_64)") == "Mozilla"
    text = "User-agent: Sluice\nDisallow: /\n\nUser-agent: *\nDisallow: /private/\n"
    assert not Robots.parse(text, DEFAULT_USER_AGENT).allows("http://s.example/page")
    other = Robots.parse(text, "otherbot/2.0")
    assert other.allows("http://s.example/page")
    assert not other.allows("http://s.example/private/x")


def test_status_saves_uncommitted_pages_as_still_to_fetch() -> None:
    status = CrawlStatus(started=10.0)
    for url in ("http://s/a", "http://s/b", "http://s/c"):
        status.add_page(url, 1)
    assert not status.add_page("http://s/a", 0)
    status.queue.popleft()
    status.emitted("http://s/a", "h-a")
    status.queue.popleft()
    status.emitted("http://s/b", "h-b")
    status.committed("http://s/b")
    status.robots["http://s"] = "User-agent: *"
    loaded = CrawlStatus.from_json(status.to_json())
    assert loaded is not None
    assert list(loaded.queue) == ["http://s/a", "http://s/c"]
    assert loaded.hashes == {"http://s/b": "h-b"}
    assert loaded.pending == {}
    assert loaded.robots == {"http://s": "User-agent: *"}
    assert loaded.depths == {"http://s/a": 1, "http://s/b": 1, "http://s/c": 1}
    assert loaded.started == 10.0
    assert loaded.unchanged("http://s/b", "h-b")
    assert not loaded.unchanged("http://s/b", "other")
    loaded.restart(now=20.0)
    assert (list(loaded.queue), loaded.depths, loaded.robots) == ([], {}, {})
    assert loaded.hashes == {"http://s/b": "h-b"}
    assert (loaded.started, loaded.ended) == (20.0, 0.0)
    assert CrawlStatus.from_json(b"{not json") is None
    assert CrawlStatus.from_json(b'{"format": 99}') is None
    assert CrawlStatus.from_json(b'{"format": 1, "queue": 3}') is None


def test_configuration_defaults_and_problems() -> None:
    checked = read_configuration("webcrawler-source", {"seed-urls": "http://a/, http://b/"})
    assert checked["max-urls"] == 1000
    assert checked["max-depth"] == 50
    assert checked["state-storage"] == "s3"
    assert checked["min-time-between-requests"] == 500
    assert checked["reindex-interval-seconds"] == 86400
    problems = problems_of(
        "webcrawler-source",
        {"seed-urls": ["ftp://x/"], "allowed-domains": [3], "state-storage": "memory"},
    )
    messages = {path: message for path, message, _ in problems}
    assert "must be one of" in messages[("state-storage",)] or "memory" in str(messages)
    with pytest.raises(BadConfiguration, match="allowed-domains: must hold strings"):
        read_configuration("webcrawler-source", {"allowed-domains": [3]})
    with pytest.raises(BadConfiguration, match="seed-urls: must be http or https URLs"):
        read_configuration("webcrawler-source", {"seed-urls": ["ftp://x/"]})
    warnings = problems_of("webcrawler-source", {"seed-urls": ["http://a/"]})
    assert [(path, fatal) for path, _, fatal in warnings] == [(("allowed-domains",), False)]


async def test_disk_state_needs_a_persistent_directory() -> None:
    source = WebCrawlerSource()
    source.use_context(AgentContext(agent_id="crawl", tenant="t", application="app"))
    with pytest.raises(BadConfiguration, match=r"state-storage: disk needs a persistent disk"):
        await source.init({"state-storage": "disk"})


# The agent on a real site -------------------------------------------------------------------


async def crawl(source: WebCrawlerSource, *, quiet: float = 1.5, limit: float = 30) -> list[Record]:
    """Read and commit until nothing new comes for ``quiet`` seconds."""
    got: list[Record] = []
    deadline = time.monotonic() + limit
    last = time.monotonic()
    while time.monotonic() < deadline and time.monotonic() - last < quiet:
        batch = await source.read()
        if batch:
            got.extend(batch)
            await source.commit(batch)
            last = time.monotonic()
    return got


async def started(state: Path, **config: Any) -> WebCrawlerSource:
    source = WebCrawlerSource()
    source.use_context(
        AgentContext(agent_id="crawl", tenant="t", application="app", state_directory=str(state))
    )
    await source.init({"state-storage": "disk", **config})
    await source.start()
    return source


def paths_of(records: list[Record], site: Website) -> list[str]:
    return [str(r.key).removeprefix(site.url) for r in records]


async def test_crawls_a_site_within_its_rules(tmp_path: Path) -> None:
    with Website(sample_site()) as site:
        source = await started(
            tmp_path,
            **{
                "seed-urls": [f"{site.url}/index.html"],
                "allowed-domains": [site.url],
                "forbidden-paths": ["/forbidden"],
                "max-depth": 3,
                "min-time-between-requests": 100,
                "user-agent": "SluiceTest/1.0",
            },
        )
        records = await crawl(source)
        await source.close()
        paths = paths_of(records, site)
        assert sorted(paths) == sorted(EMITTED)
        assert paths[0] == "/index.html"
        index = records[0]
        assert index.headers["url"] == f"{site.url}/index.html"
        assert index.headers["content_type"] == "text/html; charset=utf-8"
        assert isinstance(index.value, bytes) and b"<h1>Index</h1>" in index.value
        requested = site.paths()
        assert requested[0] == "/robots.txt"
        assert requested.count("/a.html") == 1  # a.html#top is the same page
        for never in ("/private/secret.html", "/forbidden/x.html", "/deep3.html"):
            assert never not in requested
        assert {"/redirect", "/c.html", "/missing.html", "/doc.pdf"} <= set(requested)
        assert {hit.user_agent for hit in site.hits} == {"SluiceTest/1.0"}
        times = [hit.at for hit in site.hits]
        assert min(b - a for a, b in itertools.pairwise(times)) >= 0.09


async def test_max_urls_and_non_html_contents(tmp_path: Path) -> None:
    with Website(sample_site()) as site:
        source = await started(
            tmp_path,
            **{
                "seed-urls": [f"{site.url}/index.html"],
                "allowed-domains": ["127.0.0.1"],
                "max-urls": 4,
                "handle-robots-file": False,
                "min-time-between-requests": 0,
            },
        )
        records = await crawl(source)
        await source.close()
    # The seed and the first three links of the index (a.html#top is a.html), the robots.txt
    # rules not applied.
    assert paths_of(records, site) == ["/index.html", "/a.html", "/b.html", "/private/secret.html"]
    assert "/robots.txt" not in site.paths()

    site_pages = {"/doc.pdf": sample_site()["/doc.pdf"], "/": html("root", "/doc.pdf")}
    with Website(site_pages) as site:
        source = await started(
            tmp_path / "pdf",
            **{
                "seed-urls": [site.url],
                "allowed-domains": [site.url],
                "allow-non-html-contents": True,
                "min-time-between-requests": 0,
            },
        )
        records = await crawl(source)
        await source.close()
    assert [(r.key, r.headers["content_type"]) for r in records] == [
        (site.url, "text/html; charset=utf-8"),
        (f"{site.url}/doc.pdf", "application/pdf"),
    ]
    assert records[1].value == b"%PDF-1.4 not really"


async def test_resumes_and_reindexes_without_repeating_unchanged_pages(tmp_path: Path) -> None:
    config = {
        "min-time-between-requests": 0,
        "reindex-interval-seconds": 1,
        "forbidden-paths": ["/forbidden"],
        "max-depth": 3,
    }
    with Website(sample_site()) as site:
        config.update({"seed-urls": [f"{site.url}/index.html"], "allowed-domains": [site.url]})
        source = await started(tmp_path, **config)
        # Two pages emitted, one committed, then the worker stops.
        first = await source.read()
        await source.commit(first)
        second = await source.read()
        await source.close()
        # The sitemap (named by robots.txt) is read first, the seed fetched next.
        assert paths_of(first + second, site) == ["/index.html", "/from-sitemap.html"]

        source = await started(tmp_path, **config)
        rest = await crawl(source, quiet=0.5)
        # from-sitemap.html was never committed: emitted again; index.html was: not fetched.
        assert sorted(paths_of(rest, site)) == sorted(EMITTED - {"/index.html"})
        assert site.paths().count("/index.html") == 1
        await source.close()

        site.pages["/b.html"] = html("B version 2")
        site.pages["/new.html"] = html("New")
        site.pages["/index.html"] = html("Index", "a.html", "/b.html", "/new.html")
        source = await started(tmp_path, **config)
        again = await crawl(source, quiet=2.5)
        await source.close()
        assert sorted(paths_of(again, site)) == ["/b.html", "/index.html", "/new.html"]
        assert b"B version 2" in again[paths_of(again, site).index("/b.html")].value


async def test_failing_pages_are_retried_then_given_up(tmp_path: Path) -> None:
    busy = Page("busy", "text/plain", 503)
    pages: dict[str, Page | list[Page]] = {
        "/": html("root", "/flaky.html", "/broken.html", "/after.html"),
        "/flaky.html": [busy, busy, html("Flaky, now fine")],
        "/broken.html": Page("down", "text/plain", 500),
        "/after.html": html("After"),
        "/robots.txt": Page("", "text/plain", 404),
    }
    with Website(pages) as site:
        source = await started(
            tmp_path,
            **{
                "seed-urls": [site.url + "/"],
                "allowed-domains": [site.url],
                "min-time-between-requests": 0,
                "max-error-count": 3,
            },
        )
        records = await crawl(source, quiet=1.0)
        await source.close()
    assert paths_of(records, site) == ["/", "/after.html", "/flaky.html"]
    assert site.paths().count("/flaky.html") == 3
    assert site.paths().count("/broken.html") == 3


async def test_robots_crawl_delay_and_answers(tmp_path: Path) -> None:
    pages: dict[str, Page | list[Page]] = {
        "/robots.txt": Page("User-agent: *\nCrawl-delay: 1\n", "text/plain"),
        "/": html("root", "/a.html"),
        "/a.html": html("A"),
    }
    with Website(pages) as site:
        source = await started(
            tmp_path / "delay",
            **{
                "seed-urls": [site.url + "/"],
                "allowed-domains": [site.url],
                "min-time-between-requests": 0,
            },
        )
        records = await crawl(source, quiet=2.5)
        await source.close()
        assert paths_of(records, site) == ["/", "/a.html"]
        times = [hit.at for hit in site.hits]
        assert len(times) == 3
        assert min(b - a for a, b in itertools.pairwise(times)) >= 0.95

    forbidden: dict[str, Page | list[Page]] = {
        "/robots.txt": Page("no", "text/plain", 403),
        "/": html("root"),
    }
    with Website(forbidden) as site:
        source = await started(
            tmp_path / "forbidden",
            **{"seed-urls": [site.url + "/"], "allowed-domains": [site.url]},
        )
        assert await crawl(source, quiet=1.0) == []
        await source.close()
        assert site.paths() == ["/robots.txt"]

    down = Page("later", "text/plain", 503)
    flaky: dict[str, Page | list[Page]] = {
        "/robots.txt": [down, Page("User-agent: *\nDisallow: /no/\n", "text/plain")],
        "/": html("root", "/no/x.html", "/yes.html"),
        "/yes.html": html("Yes"),
    }
    with Website(flaky) as site:
        source = await started(
            tmp_path / "flaky",
            **{
                "seed-urls": [site.url + "/"],
                "allowed-domains": [site.url],
                "min-time-between-requests": 0,
            },
        )
        records = await crawl(source, quiet=1.0)
        await source.close()
        # No page before robots.txt answered; then its rules apply.
        assert site.paths()[:3] == ["/robots.txt", "/robots.txt", "/"]
        assert paths_of(records, site) == ["/", "/yes.html"]
        assert "/no/x.html" not in site.paths()


@pytest.mark.parametrize("handle_cookies", [True, False])
async def test_cookies(tmp_path: Path, handle_cookies: bool) -> None:
    pages: dict[str, Page | list[Page]] = {
        "/": Page(html("root", "/next.html").body, cookie="session=abc; Path=/"),
        "/next.html": html("Next"),
    }
    with Website(pages) as site:
        source = await started(
            tmp_path,
            **{
                "seed-urls": [site.url + "/"],
                "allowed-domains": [site.url],
                "min-time-between-requests": 0,
                "handle-robots-file": False,
                "handle-cookies": handle_cookies,
            },
        )
        await crawl(source, quiet=0.5)
        await source.close()
        [next_hit] = [hit for hit in site.hits if hit.path == "/next.html"]
        assert next_hit.cookie == ("session=abc" if handle_cookies else "")


async def test_documents_beyond_the_size_limit_are_skipped(tmp_path: Path) -> None:
    pages: dict[str, Page | list[Page]] = {
        "/robots.txt": Page("User-agent: *\nDisallow: /no/\n" + "#" * 3000, "text/plain"),
        "/": html("root", "/big.html", "/small.html", "/no/x.html"),
        "/big.html": Page("<html>" + "x" * 5000 + "</html>"),
        "/small.html": Page(html("Small", "/zipped.html").body, gzip=True),
        "/zipped.html": Page(html("Zipped").body, gzip=True),
    }
    with Website(pages) as site:
        source = await started(
            tmp_path,
            **{
                "seed-urls": [site.url + "/"],
                "allowed-domains": [site.url],
                "min-time-between-requests": 0,
            },
        )
        source.MAX_BYTES = 2000
        records = await crawl(source, quiet=1.0)
        await source.close()
        assert paths_of(records, site) == ["/", "/small.html", "/zipped.html"]
        assert b"<h1>Zipped</h1>" in records[2].value  # decompressed
        assert site.paths().count("/big.html") == 1  # skipped, not retried
        assert "/no/x.html" not in site.paths()  # robots.txt read up to the limit


async def test_a_link_no_client_can_fetch_is_skipped(tmp_path: Path) -> None:
    pages: dict[str, Page | list[Page]] = {
        "/": html("root", "http://127.0.0.1:99999/x.html", "/ok.html"),
        "/ok.html": html("OK"),
    }
    with Website(pages) as site:
        source = await started(
            tmp_path,
            **{
                "seed-urls": [site.url + "/"],
                "allowed-domains": ["127.0.0.1"],
                "handle-robots-file": False,
                "min-time-between-requests": 0,
            },
        )
        records = await crawl(source, quiet=1.0)
        await source.close()
    assert [r.key for r in records] == [site.url + "/", site.url + "/ok.html"]
