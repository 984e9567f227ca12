"""``webcrawler-source``: crawl web sites from seed URLs and emit each page as a record.

Each :meth:`WebCrawlerSource.read` fetches URLs, politely, until one yields a document to emit
(or about a second passed): robots.txt of an origin first, then the sitemaps it names, then the
pages in the order they were found. A page is emitted with key and header ``url`` and header
``content_type``, its value the body's bytes, and its links (``<a href>``) that the rules allow
are queued one level deeper. :meth:`WebCrawlerSource.commit` runs once Kafka acknowledged the
page's record; only then does the page count as delivered, and its content hash is kept so an
unchanged page is not emitted again by a resumed crawl or a reindex.

The status is saved every ``max-unflushed-pages`` commits, when a crawl ends, when a reindex
starts and when the worker stops; a crash loses at most the commits since the last save, whose
pages are then fetched and emitted again (at least once).
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

import httpx

from sluice.application.builtin_config import BadConfiguration, read_configuration
from sluice.application.builtin_schemas.sources import DEFAULT_USER_AGENT, text_list
from sluice.record import Record
from sluice.sdk import AgentContext
from workers.builtin.objectstore import open_bucket
from workers.builtin.webcrawler.robots import Robots, text_for_status
from workers.builtin.webcrawler.status import CrawlStatus, content_hash
from workers.builtin.webcrawler.storage import BucketStore, DiskStore, StatusStore
from workers.builtin.webcrawler.urls import (
    UrlRules,
    links_of,
    origin_of,
    sitemap_entries,
    without_fragment,
)

log = logging.getLogger("sluice.agent.webcrawler-source")

HTML_TYPES = ("text/html", "application/xhtml+xml")
"""Documents whose links are followed."""


def is_document(content_type: str) -> bool:
    """Whether a response is a text document, emitted without ``allow-non-html-contents``."""
    media = content_type.split(";", 1)[0].strip().lower()
    return not media or media.startswith("text/") or media.endswith(("/xml", "+xml"))


class TooLarge(Exception):
    """A response body beyond :attr:`WebCrawlerSource.MAX_BYTES`: the URL is skipped."""


class WebCrawlerSource:
    READ_BUDGET = 1.0
    """Seconds one :meth:`read` keeps fetching without finding a document to emit."""
    MAX_BYTES = 64 * 1024 * 1024
    """The largest document fetched; robots.txt is read up to this size and cut there."""

    def __init__(self) -> None:
        self._context: AgentContext | None = None
        self._status = CrawlStatus()
        self._robots: dict[str, Robots] = {}
        self._next_request: dict[str, float] = {}
        self._client: httpx.AsyncClient | None = None
        self._unflushed = 0

    def use_context(self, context: AgentContext) -> None:
        self._context = context

    async def init(self, config: dict[str, Any]) -> None:
        checked = read_configuration("webcrawler-source", config)
        self.seeds = [without_fragment(url) for url in text_list(checked["seed-urls"])]
        self.rules = UrlRules(
            text_list(checked["allowed-domains"]), text_list(checked["forbidden-paths"])
        )
        self.max_urls: int = checked["max-urls"]
        self.max_depth: int = checked["max-depth"]
        self.handle_robots: bool = checked["handle-robots-file"]
        self.scan_html: bool = checked["scan-html-documents"]
        self.non_html: bool = checked["allow-non-html-contents"]
        self.user_agent: str = checked["user-agent"].strip() or DEFAULT_USER_AGENT
        self.min_delay = checked["min-time-between-requests"] / 1000
        self.max_errors: int = checked["max-error-count"]
        self.timeout = checked["http-timeout"] / 1000
        self.cookies: bool = checked["handle-cookies"]
        self.reindex_interval: int = checked["reindex-interval-seconds"]
        self.flush_every: int = checked["max-unflushed-pages"]
        self.store = self._status_store(checked)

    def _status_store(self, checked: dict[str, Any]) -> StatusStore:
        context = self._context
        agent_id = context.agent_id if context is not None else "webcrawler"
        name = f"{agent_id}.webcrawler.status.json"
        if checked["state-storage"] == "disk":
            directory = context.get_persistent_state_directory() if context else None
            if directory is None:
                raise BadConfiguration(
                    "webcrawler-source",
                    [
                        f"state-storage: disk needs a persistent disk for agent {agent_id}: "
                        "add resources: {disk: {enabled: true}} to the agent"
                    ],
                )
            return DiskStore(Path(directory) / name)
        bucket = open_bucket(checked, needed_by="webcrawler-source with state-storage: s3")
        if context is not None:
            name = f"{context.tenant}-{context.application}-{name}"
        return BucketStore(bucket, name)

    async def start(self) -> None:
        if isinstance(self.store, BucketStore):
            await self.store.bucket.ensure()
        saved = await self.store.load()
        status = CrawlStatus.from_json(saved) if saved is not None else None
        if status is None:
            if saved is not None:
                log.warning("the crawl status in %s is unreadable: starting over", self.store.where)
            status = CrawlStatus(started=time.time())
        else:
            log.info(
                "resuming the crawl from %s: %d URLs to fetch, %d pages delivered",
                self.store.where,
                len(status.queue),
                len(status.hashes),
            )
        self._status = status
        self._robots = {
            origin: Robots.parse(text, self.user_agent) for origin, text in status.robots.items()
        }
        self._seed()
        if status.queue or status.sitemaps:
            status.ended = 0.0
        self._client = httpx.AsyncClient(
            timeout=self.timeout,
            follow_redirects=False,
            headers={"User-Agent": self.user_agent},
        )

    def _seed(self) -> None:
        for url in self.seeds:
            if self.rules.allows(url):
                self._status.add_page(url, 0)
            else:
                log.warning("seed URL %s is not allowed by allowed-domains/forbidden-paths", url)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
            await self._flush()

    async def read(self) -> list[Record]:
        status = self._status
        deadline = time.monotonic() + self.READ_BUDGET
        while time.monotonic() < deadline:
            if status.ended:
                if not self._reindex_due():
                    return []
                await self._reindex()
            url, is_sitemap = self._next_url()
            if url is None:
                await self._crawl_ended()
                return []
            origin = origin_of(url)
            if self.handle_robots and origin not in self._robots:
                answered = await self._read_robots(origin, deadline)
                if answered is None:
                    return []
                if not answered:
                    self._take(is_sitemap)
                    self._retry(url, is_sitemap)
                continue
            wait = self._next_request.get(origin, 0.0) - time.monotonic()
            if wait > 0:
                await asyncio.sleep(min(wait, max(0.0, deadline - time.monotonic())))
                if self._next_request.get(origin, 0.0) > time.monotonic():
                    return []
            self._take(is_sitemap)
            record = await (self._read_sitemap(url) if is_sitemap else self._fetch(url))
            if record is not None:
                return [record]
        return []

    def _next_url(self) -> tuple[str | None, bool]:
        status = self._status
        if status.sitemaps:
            return status.sitemaps[0], True
        if status.queue:
            return status.queue[0], False
        return None, False

    def _take(self, is_sitemap: bool) -> None:
        (self._status.sitemaps if is_sitemap else self._status.queue).popleft()

    def _reindex_due(self) -> bool:
        return (
            self.reindex_interval > 0 and time.time() - self._status.ended >= self.reindex_interval
        )

    async def _reindex(self) -> None:
        log.info("reindexing from the seed URLs")
        self._status.restart()
        self._robots.clear()
        self._seed()
        await self._flush()

    async def _crawl_ended(self) -> None:
        self._status.ended = time.time()
        log.info(
            "crawl ended: %d pages delivered%s",
            len(self._status.hashes),
            f"; next one in {self.reindex_interval} s" if self.reindex_interval > 0 else "",
        )
        await self._flush()

    def _delay(self, origin: str) -> None:
        robots = self._robots.get(origin)
        delay = max(self.min_delay, robots.delay() if robots is not None else 0.0)
        self._next_request[origin] = time.monotonic() + delay

    async def _get(self, url: str, *, truncate: bool = False) -> httpx.Response:
        """The response to ``GET url`` with its body read, at most :attr:`MAX_BYTES` of it:
        a longer body raises :class:`TooLarge`, or is cut there with ``truncate``."""
        assert self._client is not None, "start() opens the HTTP client"
        limit = self.MAX_BYTES
        try:
            async with self._client.stream("GET", url) as response:
                declared = response.headers.get("content-length", "")
                if not truncate and declared.isdigit() and int(declared) > limit:
                    raise TooLarge(f"{url} declares {declared} bytes, more than {limit}")
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > limit:
                        if not truncate:
                            raise TooLarge(f"{url} has more than {limit} bytes")
                        del body[limit:]
                        break
            # The body is decoded already: its encoding headers no longer describe it.
            headers = [
                (name, value)
                for name, value in response.headers.multi_items()
                if name.lower() not in ("content-encoding", "content-length", "transfer-encoding")
            ]
            return httpx.Response(
                response.status_code,
                headers=headers,
                content=bytes(body),
                request=response.request,
            )
        finally:
            self._delay(origin_of(url))
            if not self.cookies:
                self._client.cookies.clear()

    async def _read_robots(self, origin: str, deadline: float) -> bool | None:
        """Read ``origin``'s robots.txt: True when it gave rules, False when it could not be
        read (the URL waiting for it is retried later), None when it is too early to ask."""
        wait = self._next_request.get(origin, 0.0) - time.monotonic()
        if wait > 0:
            await asyncio.sleep(min(wait, max(0.0, deadline - time.monotonic())))
            if self._next_request.get(origin, 0.0) > time.monotonic():
                return None
        url = f"{origin}/robots.txt"
        try:
            response = await self._get(url, truncate=True)
            text = text_for_status(response.status_code, response.text)
            problem = f"HTTP {response.status_code}"
        except httpx.HTTPError as error:
            text, problem = None, f"{type(error).__name__}: {error}"
        if text is None:
            log.warning("%s could not be read (%s): will try again", url, problem)
            return False
        robots = Robots.parse(text, self.user_agent)
        self._robots[origin] = robots
        self._status.robots[origin] = text
        self._delay(origin)  # now with its Crawl-delay
        for sitemap in robots.sitemaps():
            if self.rules.allows(sitemap):
                self._status.add_sitemap(sitemap)
        return True

    def _retry(self, url: str, is_sitemap: bool = False) -> None:
        """Fetch ``url`` (taken off its queue) again after the others, or drop it after
        ``max-error-count`` errors."""
        count = self._status.temporary_error(url)
        if count >= self.max_errors:
            log.warning("giving up on %s after %d errors", url, count)
        else:
            (self._status.sitemaps if is_sitemap else self._status.queue).append(url)

    def _allowed(self, url: str) -> bool:
        if not self.rules.allows(url):
            return False
        robots = self._robots.get(origin_of(url))
        return robots is None or robots.allows(url)

    def _add_link(self, url: str, depth: int) -> None:
        if url in self._status.depths or not self._allowed(url):
            return
        if self.max_depth > 0 and depth > self.max_depth:
            return
        if self.max_urls > 0 and len(self._status.depths) >= self.max_urls:
            log.debug("max-urls reached, not adding %s", url)
            return
        self._status.add_page(url, depth)

    async def _read_sitemap(self, url: str) -> None:
        try:
            response = await self._get(url)
        except (httpx.HTTPError, httpx.InvalidURL, TooLarge) as error:
            log.warning("sitemap %s could not be read: %s", url, error)
            return None
        if response.status_code != 200:
            log.warning("sitemap %s answered HTTP %d", url, response.status_code)
            return None
        index, entries = sitemap_entries(response.text, url)
        for entry in entries:
            if not self.rules.allows(entry):
                continue
            if index:
                self._status.add_sitemap(entry)
            else:
                self._add_link(entry, 0)
        return None

    async def _fetch(self, url: str) -> Record | None:
        """Fetch the page ``url`` (already taken off the queue): its record, or None when there
        is nothing to emit (refused, redirected, failed, unchanged, not a document)."""
        status = self._status
        depth = status.depths.get(url, 0)
        if not self._allowed(url):
            log.info("skipping %s: not allowed (robots.txt or the rules)", url)
            return None
        try:
            response = await self._get(url)
        except TooLarge as error:
            log.warning("skipping %s", error)
            return None
        except httpx.InvalidURL as error:
            log.warning("skipping %s: %s", url, error)
            return None
        except httpx.HTTPError as error:
            log.info("fetching %s failed: %s: %s", url, type(error).__name__, error)
            self._retry(url)
            return None
        code = response.status_code
        if 300 <= code < 400:
            location = response.headers.get("location")
            if location:
                target = without_fragment(str(response.url.join(location)))
                if target != url:
                    log.info("%s redirects to %s", url, target)
                    self._add_link(target, depth + 1)
            return None
        if 400 <= code < 500:
            log.info("skipping %s: HTTP %d", url, code)
            status.gone(url)
            return None
        if code >= 500 or code < 200:
            log.info("fetching %s: HTTP %d, will retry", url, code)
            self._retry(url)
            return None
        content_type = response.headers.get("content-type", "")
        html = content_type.split(";", 1)[0].strip().lower() in HTML_TYPES or not content_type
        if not html and not (self.non_html or is_document(content_type)):
            log.info("skipping %s: %s is not a document", url, content_type)
            return None
        body = response.content
        if html and self.scan_html:
            for link in links_of(response.text, str(response.url)):
                self._add_link(link, depth + 1)
        digest = content_hash(body)
        if status.unchanged(url, digest):
            log.debug("%s is unchanged", url)
            return None
        status.emitted(url, digest)
        return Record(
            body,
            key=url,
            headers={"url": url, "content_type": content_type or "text/html"},
            timestamp=int(time.time() * 1000),
        )

    async def commit(self, records: list[Record]) -> None:
        for record in records:
            self._status.committed(str(record.key))
            self._unflushed += 1
        if self._unflushed >= self.flush_every:
            await self._flush()

    async def permanent_failure(self, record: Record, error: Exception) -> None:
        log.warning("the record of %s failed for good: %s", record.key, error)
        self._status.given_up(str(record.key))

    async def _flush(self) -> None:
        self._unflushed = 0
        try:
            await self.store.save(self._status.to_json())
        except Exception as error:
            # The crawl goes on; the next save may succeed, and a crash only repeats pages.
            log.error("saving the crawl status to %s failed: %s", self.store.where, error)
