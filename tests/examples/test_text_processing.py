"""examples/text-processing: documents dropped into a folder (a PDF, an HTML page, a text in
Italian) go through LangStream's text agents and compute, fused with the camel-source in one
executor, and come out as JSON chunks on the consume gateway; the Italian one is dropped by the
language detector."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect

from sluice.application import load_application, plan_application
from tests.examples.support import EXAMPLES, Example, instance_file, receive_json, sluice_run
from tests.workers.builtin.test_text_agents import pdf
from workers.camel.jars import camel_classpath
from workers.camel.settings import CamelSettings

pytestmark = pytest.mark.kafka

APP = EXAMPLES / "text-processing"

PAGES = (
    "Kafka topics carry the records between the agents of a pipeline.",
    "Each agent reads a record, changes it and writes the result to the next topic.",
    "Built-in agents need no code: they are configured in the pipeline file.",
)
HTML = (
    "<html><head><title>Gateways</title></head><body><h1>Gateways</h1>"
    "<p>A produce gateway turns an HTTP request into a record on a topic.</p>"
    "<p>A consume gateway pushes the records of a topic to a WebSocket client.</p></body></html>"
)
ITALIAN = "Questo documento è scritto in italiano e non deve arrivare alla fine della pipeline."


@pytest.fixture
async def example(kafka_bootstrap: str, tmp_path: Path) -> AsyncIterator[Example]:
    await camel_classpath(CamelSettings())  # the Camel jars, once into the user cache
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    async with sluice_run(
        APP, kafka_bootstrap, tmp_path, globals_={"inbox": str(inbox)}
    ) as running:
        yield running


def test_the_whole_pipeline_is_one_executor(kafka_bootstrap: str, tmp_path: Path) -> None:
    instance = instance_file(tmp_path, kafka_bootstrap, {"inbox": str(tmp_path)})
    plan = plan_application(load_application(APP, instance=instance))
    assert [len(executor.agents) for executor in plan.executors] == [7]


async def test_documents_become_json_chunks(example: Example, tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    documents: dict[str, str | bytes] = {
        "guide.pdf": pdf(*PAGES),
        "gateways.html": HTML.encode(),
        "it.txt": ITALIAN,
    }
    async with connect(example.ws_url("consume", "chunks", "?option:position=earliest")) as ws:
        for name, content in documents.items():
            staging = inbox / f".{name}.tmp"
            if isinstance(content, str):
                staging.write_text(content)
            else:
                staging.write_bytes(content)
            staging.rename(inbox / name)  # appears whole
        chunks: list[dict[str, Any]] = []
        # Each document's last chunk says so: read until both English ones are complete.
        while sum(1 for c in chunks if c["last"]) < 2:
            frame = await receive_json(ws, timeout=90)
            # JSON text, as LangStream's agents write it (a client parses it).
            chunks.append(json.loads(frame["record"]["value"]))
    by_file: dict[str, list[dict[str, Any]]] = {}
    for chunk in chunks:
        by_file.setdefault(chunk["filename"], []).append(chunk)
    assert sorted(by_file) == ["gateways.html", "guide.pdf"]  # the Italian text was dropped
    assert len(by_file["guide.pdf"]) >= 2  # split: 30 tokens per chunk at most
    for name, parts in by_file.items():
        assert [p["chunk_id"] for p in parts] == list(range(len(parts))), name
        assert all(p["language"] == "en" for p in parts)
        assert all(0 < p["chunk_num_tokens"] <= 30 for p in parts)
        assert [p["last"] for p in parts] == [False] * (len(parts) - 1) + [True]
        # Lower-cased and with the spaces normalised, the chunks cover the document's words.
        text = " ".join(p["text"] for p in parts)
        assert text == text.lower()
        assert "  " not in text
    guide = " ".join(p["text"] for p in by_file["guide.pdf"])
    assert all(page.lower().rstrip(".").split()[-1] in guide for page in PAGES)
    html = " ".join(p["text"] for p in by_file["gateways.html"])
    assert "a consume gateway pushes the records" in html
    assert "<p>" not in html
    assert set(by_file["guide.pdf"][0]) == {
        "text",
        "filename",
        "chunk_id",
        "language",
        "chunk_num_tokens",
        "last",
    }
