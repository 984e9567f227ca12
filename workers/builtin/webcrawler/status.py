"""What a crawl knows: the URLs left to fetch, those seen, and the content already delivered.

:class:`CrawlStatus` is plain data with pure operations, saved as JSON by the source into the
agent's state (its disk or a bucket) so a restarted worker resumes the crawl. A page whose
bytes hash to the value recorded when it was last *committed* (Kafka acknowledged it) is not
emitted again, on a resumed crawl or on a later reindex; a changed page is.

Emitted pages not yet committed are saved as still to fetch, so a crash between emitting and
committing fetches and emits them again (at least once).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

FORMAT = 1
"""Version of the saved JSON; a file of another version is ignored (the crawl starts over)."""


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class CrawlStatus:
    queue: deque[str] = field(default_factory=deque)
    """Pages to fetch, in order."""
    sitemaps: deque[str] = field(default_factory=deque)
    """Sitemaps to read (fetched before the pages left)."""
    depths: dict[str, int] = field(default_factory=dict)
    """Every page accepted in this crawl (queued, fetched or refused at fetch) -> its depth."""
    seen_sitemaps: set[str] = field(default_factory=set)
    pending: dict[str, str] = field(default_factory=dict)
    """Emitted, not yet committed: URL -> hash of what was emitted."""
    hashes: dict[str, str] = field(default_factory=dict)
    """URL -> hash of the content last committed; kept across reindexes."""
    robots: dict[str, str] = field(default_factory=dict)
    """Origin -> its robots.txt text, as read in this crawl."""
    errors: dict[str, int] = field(default_factory=dict)
    """URL -> temporary errors so far (not saved: a restart gives every URL its retries back)."""
    started: float = 0.0
    ended: float = 0.0
    """When this crawl started and ended (epoch seconds; ``ended`` 0 while it runs)."""

    def add_page(self, url: str, depth: int) -> bool:
        """Queue ``url`` unless this crawl already knows it; True when it was added."""
        if url in self.depths:
            return False
        self.depths[url] = depth
        self.queue.append(url)
        return True

    def add_sitemap(self, url: str) -> None:
        if url not in self.seen_sitemaps:
            self.seen_sitemaps.add(url)
            self.sitemaps.append(url)

    def unchanged(self, url: str, digest: str) -> bool:
        """Whether ``digest`` is what was last committed (or is being delivered) for ``url``."""
        return self.hashes.get(url) == digest or self.pending.get(url) == digest

    def emitted(self, url: str, digest: str) -> None:
        self.pending[url] = digest

    def committed(self, url: str) -> None:
        digest = self.pending.pop(url, None)
        if digest is not None:
            self.hashes[url] = digest
        self.errors.pop(url, None)

    def given_up(self, url: str) -> None:
        """The record of ``url`` failed for good downstream: not retried in this crawl, and
        emitted again on the next one (no hash kept)."""
        self.pending.pop(url, None)
        self.hashes.pop(url, None)

    def gone(self, url: str) -> None:
        """``url`` answered 4xx: forget its content, so it is emitted if it comes back."""
        self.hashes.pop(url, None)

    def temporary_error(self, url: str) -> int:
        """Count an error on ``url``; returns the count so far."""
        self.errors[url] = self.errors.get(url, 0) + 1
        return self.errors[url]

    def restart(self, now: float | None = None) -> None:
        """A new crawl (reindex): everything forgotten but the committed hashes and the pages
        still being delivered."""
        self.queue.clear()
        self.sitemaps.clear()
        self.depths.clear()
        self.seen_sitemaps.clear()
        self.robots.clear()
        self.errors.clear()
        self.started = time.time() if now is None else now
        self.ended = 0.0

    def to_json(self) -> bytes:
        # Pages emitted but not committed are fetched again after a restart.
        queue = [*self.pending, *(url for url in self.queue if url not in self.pending)]
        data = {
            "format": FORMAT,
            "queue": queue,
            "sitemaps": list(self.sitemaps),
            "depths": self.depths,
            "seen-sitemaps": sorted(self.seen_sitemaps),
            "hashes": self.hashes,
            "robots": self.robots,
            "started": self.started,
            "ended": self.ended,
        }
        return json.dumps(data, separators=(",", ":")).encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes) -> CrawlStatus | None:
        """The saved status, or None when ``data`` is not one this version wrote."""
        try:
            loaded: Any = json.loads(data)
        except ValueError:
            return None
        if not isinstance(loaded, dict) or loaded.get("format") != FORMAT:
            return None
        try:
            return cls(
                queue=deque(str(url) for url in loaded["queue"]),
                sitemaps=deque(str(url) for url in loaded["sitemaps"]),
                depths={str(url): int(depth) for url, depth in loaded["depths"].items()},
                seen_sitemaps={str(url) for url in loaded["seen-sitemaps"]},
                hashes={str(url): str(digest) for url, digest in loaded["hashes"].items()},
                robots={str(origin): str(text) for origin, text in loaded["robots"].items()},
                started=float(loaded["started"]),
                ended=float(loaded["ended"]),
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            return None
