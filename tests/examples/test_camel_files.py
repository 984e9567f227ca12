"""examples/camel-files: a camel-source (Apache Camel's file component in a real JVM) feeds a
Python processor; files dropped into the inbox come out as summaries on the consume gateway,
each once, and Camel moves them to done/ after their record is in Kafka."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect

from tests.examples.support import EXAMPLES, Example, receive_json, sluice_run
from workers.camel.jars import camel_classpath
from workers.camel.settings import CamelSettings

pytestmark = pytest.mark.kafka

APP = EXAMPLES / "camel-files"


@pytest.fixture
async def example(kafka_bootstrap: str, tmp_path: Path) -> AsyncIterator[Example]:
    # The Camel jars are resolved with Maven into the user cache (once; later runs find them).
    await camel_classpath(CamelSettings())
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    async with sluice_run(
        APP, kafka_bootstrap, tmp_path, globals_={"inbox": str(inbox)}
    ) as running:
        yield running


async def test_files_become_summaries(example: Example, tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    files = {
        "hello.txt": "hello world\nfrom a file\n",
        "notes.md": "# Notes\n\none two three four\n",
        "empty.txt": "",
    }
    async with connect(example.ws_url("consume", "summaries", "?option:position=earliest")) as ws:
        for name, text in files.items():
            (inbox / f".{name}.tmp").write_text(text)
            (inbox / f".{name}.tmp").rename(inbox / name)  # appears whole
        summaries: dict[str, Any] = {}
        while len(summaries) < len(files):
            frame = await receive_json(ws, timeout=60)
            summaries[frame["record"]["key"]] = frame["record"]["value"]
    assert summaries["hello.txt"] == {
        "file": "hello.txt",
        "bytes": 24,
        "lines": 2,
        "words": 5,
        "first line": "hello world",
    }
    assert summaries["notes.md"]["words"] == 6
    assert summaries["empty.txt"]["bytes"] == 0
    # Camel moves each file once its record is acknowledged (just after it is pushed).
    done = inbox / "done"
    for _ in range(100):
        if done.is_dir() and sorted(p.name for p in done.iterdir()) == sorted(files):
            break
        await asyncio.sleep(0.1)
    assert sorted(p.name for p in done.iterdir()) == sorted(files)
    assert not [p for p in inbox.iterdir() if p.is_file()]
