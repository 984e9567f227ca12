"""``webcrawler-source``: the agent (``source``), its crawl status (``status``), where the
status is kept (``storage``), URL rules and link extraction (``urls``), robots.txt (``robots``)."""

from workers.builtin.webcrawler.source import WebCrawlerSource

__all__ = ["WebCrawlerSource"]
