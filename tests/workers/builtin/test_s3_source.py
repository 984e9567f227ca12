"""s3-source, and webcrawler-source's status in a bucket, against a real S3-compatible server on
loopback (moto's server mode): the agents called as the source executor calls them, and
s3-source in a real worker on the real broker."""

from __future__ import annotations

import asyncio
import io
import signal
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from minio import Minio

from sluice.application.builtin_config import read_configuration
from sluice.net import free_port
from sluice.record import Record
from sluice.sdk import AgentContext
from tests.workers.builtin.s3_server import ACCESS_KEY, SECRET_KEY, S3Server, running_s3_server
from tests.workers.builtin.website import EMITTED, Website, sample_site
from tests.workers.conftest import StartWorker, prepare, read_all
from workers.builtin.object_sources import extension_allowed
from workers.builtin.objectstore import ObjectStoreError, endpoint_parts
from workers.builtin.s3 import S3Source
from workers.builtin.webcrawler import WebCrawlerSource


@pytest.fixture(scope="module")
async def s3_server() -> AsyncIterator[S3Server]:
    async with running_s3_server() as server:
        yield server


def client(server: S3Server) -> Minio:
    return Minio(
        server.endpoint.removeprefix("http://"),
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        secure=False,
        region="us-east-1",
    )


def put(server: S3Server, bucket: str, objects: dict[str, bytes]) -> None:
    minio = client(server)
    if not minio.bucket_exists(bucket):
        minio.make_bucket(bucket)
    for name, data in objects.items():
        minio.put_object(bucket, name, io.BytesIO(data), len(data))


def names_in(server: S3Server, bucket: str) -> list[str]:
    return sorted(str(o.object_name) for o in client(server).list_objects(bucket, recursive=True))


def bucket_name() -> str:
    return f"b-{uuid.uuid4().hex[:12]}"


async def drain(source: Any, *, quiet: float = 1.5, commit: bool = True) -> list[Record]:
    got: list[Record] = []
    last = time.monotonic()
    while time.monotonic() - last < quiet:
        batch = await source.read()
        if batch:
            got.extend(batch)
            if commit:
                await source.commit(batch)
            last = time.monotonic()
    return got


async def s3_source(config: dict[str, Any], state: Path | None = None) -> S3Source:
    source = S3Source()
    source.use_context(
        AgentContext(
            agent_id="s3",
            tenant="t",
            application="app",
            state_directory=str(state) if state is not None else None,
        )
    )
    await source.init(config)
    await source.start()
    return source


def test_extensions_and_endpoints() -> None:
    allowed = frozenset({"pdf", "txt", ""})
    assert extension_allowed("doc.pdf", allowed)
    assert extension_allowed("dir/notes.txt", allowed)
    assert not extension_allowed("doc.PDF", allowed)  # case-sensitive, as LangStream
    assert extension_allowed("README", allowed)
    assert extension_allowed("trailing.", allowed)
    assert not extension_allowed("a.exe", allowed)
    assert extension_allowed("a.exe", frozenset({"*"}))
    assert endpoint_parts("http://minio:9000") == ("minio:9000", False)
    assert endpoint_parts("https://s3.example.com/") == ("s3.example.com", True)
    assert endpoint_parts("minio:9000") == ("minio:9000", False)
    with pytest.raises(ValueError, match="must not have a path"):
        endpoint_parts("http://minio:9000/bucket")
    with pytest.raises(ValueError, match="http or https URL"):
        endpoint_parts("ftp://minio")
    checked = read_configuration("s3-source", {})
    assert (checked["bucketName"], checked["idle-time"], checked["delete-objects"]) == (
        "langstream-source",
        5,
        True,
    )
    assert checked["file-extensions"] == "pdf,docx,html,htm,md,txt"


async def test_objects_are_emitted_and_deleted_after_commit(s3_server: S3Server) -> None:
    bucket = bucket_name()
    put(
        s3_server,
        bucket,
        {"a.txt": b"alpha", "b.pdf": b"%PDF-1.4", "c.exe": b"binary", "docs/d.md": b"# d"},
    )
    source = await s3_source({**s3_server.config(bucket), "idle-time": 1})
    first = await source.read()
    # Emitted but not committed: not deleted, and not emitted again.
    assert names_in(s3_server, bucket) == ["a.txt", "b.pdf", "c.exe", "docs/d.md"]
    rest = await drain(source, quiet=2.5)
    await source.commit(first)
    records = first + rest
    assert sorted((r.key, r.value, r.headers["name"]) for r in records) == [
        ("a.txt", b"alpha", "a.txt"),
        ("b.pdf", b"%PDF-1.4", "b.pdf"),
        ("docs/d.md", b"# d", "docs/d.md"),
    ]
    assert names_in(s3_server, bucket) == ["c.exe"]
    put(s3_server, bucket, {"late.txt": b"late"})
    assert [r.key for r in await drain(source, quiet=2.5)] == ["late.txt"]
    assert names_in(s3_server, bucket) == ["c.exe"]


async def test_a_store_that_goes_away_is_listed_again_later(
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = free_port()
    bucket = bucket_name()
    async with running_s3_server(port) as server:
        source = await s3_source({**server.config(bucket), "idle-time": 1})
        assert await source.read() == []
    # The server is gone: the listing fails, is logged, and the source waits.
    await asyncio.sleep(1.1)
    assert await source.read() == []
    assert f"listing the bucket on bucket '{bucket}' at {server.endpoint} failed" in caplog.text
    async with running_s3_server(port) as server:
        put(server, bucket, {"back.txt": b"back"})
        records = await drain(source, quiet=2.5)
    assert [(r.key, r.value) for r in records] == [("back.txt", b"back")]


async def test_missing_bucket_is_created(s3_server: S3Server) -> None:
    bucket = bucket_name()
    source = await s3_source({**s3_server.config(bucket), "idle-time": 0})
    assert await source.read() == []
    assert client(s3_server).bucket_exists(bucket)


async def test_kept_objects_are_emitted_again_only_when_changed(
    s3_server: S3Server, tmp_path: Path
) -> None:
    bucket = bucket_name()
    put(s3_server, bucket, {"a.txt": b"one", "b.txt": b"two"})
    config = {**s3_server.config(bucket), "idle-time": 1, "delete-objects": False}
    source = await s3_source(config, tmp_path)
    assert sorted(r.key for r in await drain(source, quiet=2.5)) == ["a.txt", "b.txt"]
    assert names_in(s3_server, bucket) == ["a.txt", "b.txt"]
    put(s3_server, bucket, {"b.txt": b"two, changed"})
    changed = await drain(source, quiet=2.5)
    assert [(r.key, r.value) for r in changed] == [("b.txt", b"two, changed")]
    # A restarted worker remembers what it delivered (its disk).
    source = await s3_source(config, tmp_path)
    assert await drain(source, quiet=2.5) == []


async def test_an_unreachable_store_is_a_clear_error(s3_server: S3Server) -> None:
    config = {**s3_server.config(bucket_name()), "endpoint": "http://127.0.0.1:9"}
    source = S3Source()
    await source.init(config)
    with pytest.raises(ObjectStoreError) as caught:
        await source.start()
    message = str(caught.value)
    assert "checking the bucket" in message and "http://127.0.0.1:9" in message
    assert SECRET_KEY not in message


async def test_webcrawler_status_in_a_bucket(s3_server: S3Server) -> None:
    bucket = bucket_name()

    async def crawler(site: Website) -> WebCrawlerSource:
        source = WebCrawlerSource()
        source.use_context(AgentContext(agent_id="crawl", tenant="t", application="app"))
        await source.init(
            {
                **s3_server.config(bucket),
                "seed-urls": [f"{site.url}/index.html"],
                "allowed-domains": [site.url],
                "forbidden-paths": ["/forbidden"],
                "max-depth": 3,
                "min-time-between-requests": 0,
            }
        )
        await source.start()
        return source

    with Website(sample_site()) as site:
        source = await crawler(site)
        records = await drain(source)
        await source.close()
        assert sorted(str(r.key).removeprefix(site.url) for r in records) == sorted(EMITTED)
        assert names_in(s3_server, bucket) == ["t-app-crawl.webcrawler.status.json"]
        fetched = len(site.hits)
        source = await crawler(site)
        assert await drain(source, quiet=1.0) == []
        await source.close()
        assert len(site.hits) == fetched  # the crawl had ended: nothing fetched again


S3_APP = """
topics:
  - {{name: "{out}", creation-mode: create-if-not-exists}}
pipeline:
  - id: t
    type: s3-source
    output: "{out}"
    configuration:
      bucketName: "{bucket}"
      endpoint: "{endpoint}"
      access-key: "{access}"
      secret-key: "{secret}"
      idle-time: 1
      file-extensions: "txt,md"
"""


@pytest.mark.kafka
async def test_s3_source_in_a_worker(
    s3_server: S3Server,
    app_factory: Callable[..., Path],
    topics: dict[str, str],
    start_worker: StartWorker,
    kafka_bootstrap: str,
) -> None:
    bucket = bucket_name()
    put(s3_server, bucket, {"one.txt": b"first", "two.md": b"second", "skip.pdf": b"%PDF"})
    app_dir = app_factory(
        {"pipeline.yaml": S3_APP},
        out=topics["out"],
        bucket=bucket,
        endpoint=s3_server.endpoint,
        access=ACCESS_KEY,
        secret=SECRET_KEY,
    )
    await prepare(app_dir, kafka_bootstrap)
    worker = await start_worker(app_dir, "t")
    records = await read_all(kafka_bootstrap, topics["out"], 2, settle=1.0)
    put(s3_server, bucket, {"three.txt": b"third"})
    records += await read_all(
        kafka_bootstrap, topics["out"], 3, until=lambda got: len(got) >= 3, settle=1.0
    )
    assert await worker.stop(signal.SIGTERM) == 0
    seen = {r.record.key: r for r in records}
    assert sorted(seen) == ["one.txt", "three.txt", "two.md"]
    assert seen["one.txt"].record.headers["name"] == "one.txt"
    assert seen["one.txt"].record.value in (b"first", "first")
    assert names_in(s3_server, bucket) == ["skip.pdf"]
    assert not any(SECRET_KEY in line for line in worker.output)
