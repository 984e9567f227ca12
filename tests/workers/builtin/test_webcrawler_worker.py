"""webcrawler-source in a real worker process on the real broker, crawling a site on loopback:
each page once, within the rules; a restarted worker resumes from the status on its disk and
emits, after the reindex, only the page that changed."""

from __future__ import annotations

import json
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.workers.builtin.website import EMITTED, Website, html, sample_site
from tests.workers.conftest import StartWorker, prepare, read_all

pytestmark = pytest.mark.kafka

CRAWLER = """
topics:
  - {{name: "{out}", creation-mode: create-if-not-exists}}
pipeline:
  - id: t
    name: Crawl the site
    type: webcrawler-source
    output: "{out}"
    resources:
      disk: {{enabled: true, size: 16M}}
    configuration:
      seed-urls: ["{site}/index.html"]
      allowed-domains: ["{site}"]
      forbidden-paths: ["/forbidden"]
      max-depth: 3
      max-urls: 100
      min-time-between-requests: 50
      reindex-interval-seconds: 3
      user-agent: ""
      state-storage: disk
"""


def text_of(value: object) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


async def test_crawl_restart_and_reindex_in_a_worker(
    app_factory: Callable[..., Path],
    topics: dict[str, str],
    start_worker: StartWorker,
    kafka_bootstrap: str,
) -> None:
    with Website(sample_site()) as site:
        app_dir = app_factory({"pipeline.yaml": CRAWLER}, out=topics["out"], site=site.url)
        await prepare(app_dir, kafka_bootstrap)
        worker = await start_worker(app_dir, "t")
        first = await read_all(kafka_bootstrap, topics["out"], len(EMITTED), settle=1.5)
        assert await worker.stop(signal.SIGTERM) == 0
        paths = [text_of(r.record.key).removeprefix(site.url) for r in first]
        assert sorted(paths) == sorted(EMITTED)  # each page once
        index = next(r.record for r in first if text_of(r.record.key).endswith("/index.html"))
        assert index.headers["url"] == f"{site.url}/index.html"
        assert index.headers["content_type"] == "text/html; charset=utf-8"
        assert "<h1>Index</h1>" in text_of(index.value)
        requested = site.paths()
        assert requested[0] == "/robots.txt"
        assert not {"/private/secret.html", "/forbidden/x.html", "/deep3.html"} & set(requested)
        assert all("Sluice" in hit.user_agent for hit in site.hits)

        site.pages["/b.html"] = html("B version 2")
        fetched_before = len(site.hits)
        worker = await start_worker(app_dir, "t")
        both = await read_all(
            kafka_bootstrap, topics["out"], len(EMITTED) + 1, within=40, settle=3.0
        )
        assert await worker.stop(signal.SIGTERM) == 0
        later = both[len(first) :]
        assert [text_of(r.record.key).removeprefix(site.url) for r in later] == ["/b.html"]
        assert "B version 2" in text_of(later[0].record.value)
        # The reindex fetched the site again; only the changed page went out.
        assert "/index.html" in site.paths()[fetched_before:]


FUSED = """
topics:
  - {{name: "{out}", creation-mode: create-if-not-exists}}
pipeline:
  - id: t
    type: webcrawler-source
    resources:
      disk: {{enabled: true}}
    configuration:
      seed-urls: "{site}/index.html"
      allowed-domains: "{site}"
      forbidden-paths: "/forbidden"
      max-depth: 3
      min-time-between-requests: 0
      state-storage: disk
  - name: Extract text
    type: text-extractor
  - name: Convert to structured data
    type: document-to-json
    output: "{out}"
    configuration:
      text-field: text
      copy-properties: true
"""


async def test_crawled_pages_through_the_text_agents(
    app_factory: Callable[..., Path],
    topics: dict[str, str],
    start_worker: StartWorker,
    kafka_bootstrap: str,
) -> None:
    # LangStream's crawler pipelines start this way: the source fused with the text agents,
    # the page's url header becoming a property of the JSON document.
    with Website(sample_site()) as site:
        app_dir = app_factory({"pipeline.yaml": FUSED}, out=topics["out"], site=site.url)
        await prepare(app_dir, kafka_bootstrap)
        worker = await start_worker(app_dir, "t")
        records = await read_all(kafka_bootstrap, topics["out"], len(EMITTED), settle=1.0)
        assert await worker.stop(signal.SIGTERM) == 0
    documents = {
        (doc := json.loads(text_of(r.record.value)))["url"].removeprefix(site.url): doc
        for r in records
    }
    assert sorted(documents) == sorted(EMITTED)
    assert documents["/b.html"]["text"].split() == ["B", "version", "1"] * 2  # title, h1
    assert documents["/index.html"]["content_type"] == "text/html; charset=utf-8"
