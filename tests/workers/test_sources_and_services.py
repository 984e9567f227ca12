"""Sources and services in real worker processes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from sluice.net import free_port
from tests.workers.conftest import StartWorker, prepare, read_all

pytestmark = pytest.mark.kafka

SOURCES = '''
import json
from sluice import Record
from sluice.sdk import Source


class Numbers(Source):
    """Ten records over two reads, then nothing; commits are logged to a file."""

    def init(self, config, context):
        self.pending = [[Record(f"n{{i}}", headers={{"batch": str(i // 5)}}) for i in range(b * 5, b * 5 + 5)]
                        for b in range(2)]
        self.log = config["log"]

    def read(self):
        return self.pending.pop(0) if self.pending else []

    def commit(self, records):
        with open(self.log, "a") as f:
            for r in records:
                f.write(r.value + "\\n")


class LegacyNumbers:
    """LangStream shape: dicts from read(), commit(record) once per record."""

    def init(self, config):
        self.left = [{{"value": f"m{{i}}"}} for i in range(4)]
        self.log = config["log"]

    def read(self):
        return [self.left.pop(0)] if self.left else []

    def commit(self, record):
        with open(self.log, "a") as f:
            f.write(record.value() + "\\n")
'''

SERVICES = '''
import os
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route
from sluice.sdk import Service


class Hello(Service):
    def init(self, config, context):
        self.context = context

    def app(self):
        async def hello(request):
            return JSONResponse({{"agent": self.context.agent_id, "path": request.url.path}})
        return Starlette(routes=[Route("/{{path:path}}", hello)])


class Legacy:
    """LangStream style: main() runs its own server on $PORT."""

    def main(self):
        import uvicorn
        async def app(scope, receive, send):
            if scope["type"] != "http":
                return
            await send({{"type": "http.response.start", "status": 200, "headers": []}})
            await send({{"type": "http.response.body", "body": b"legacy"}})
        uvicorn.run(app, host="127.0.0.1", port=int(os.environ["PORT"]), log_level="warning")
'''


@pytest.mark.parametrize(
    ("class_name", "expected"),
    [
        ("sources.Numbers", [f"n{i}" for i in range(10)]),
        ("sources.LegacyNumbers", [f"m{i}" for i in range(4)]),
    ],
)
async def test_source_commits_exactly_its_acknowledged_records(
    app_factory: Callable[..., Path],
    topics: dict[str, str],
    start_worker: StartWorker,
    kafka_bootstrap: str,
    tmp_path: Path,
    class_name: str,
    expected: list[str],
) -> None:
    log = tmp_path / "committed"
    app_dir = app_factory(
        {
            "pipeline.yaml": f"""
topics:
  - {{{{name: {{out}}, creation-mode: create-if-not-exists}}}}
pipeline:
  - {{{{id: src, type: python-source, output: {{out}}, configuration: {{{{className: {class_name}, log: "{log}"}}}}}}}}
""",
            "python/sources.py": SOURCES,
        },
        **topics,
    )
    await prepare(app_dir, kafka_bootstrap)
    worker = await start_worker(app_dir, "src")
    got = await read_all(kafka_bootstrap, topics["out"], len(expected), settle=0.5)
    assert [r.record.value for r in got] == expected
    for _ in range(100):
        if log.exists() and len(log.read_text().split()) == len(expected):
            break
        await asyncio.sleep(0.05)
    assert log.read_text().split() == expected
    assert await worker.stop() == 0


@pytest.mark.parametrize(
    ("class_name", "check"),
    [
        ("services.Hello", lambda r: r.json() == {"agent": "svc", "path": "/the/custom/path"}),
        ("services.Legacy", lambda r: r.text == "legacy"),
    ],
)
async def test_python_service_answers_http(
    app_factory: Callable[..., Path],
    topics: dict[str, str],
    start_worker: StartWorker,
    class_name: str,
    check: Callable[[httpx.Response], bool],
) -> None:
    app_dir = app_factory(
        {
            "pipeline.yaml": f"""
pipeline:
  - {{{{id: svc, type: python-service, configuration: {{{{className: {class_name}}}}}}}}}
""",
            "python/services.py": SERVICES,
        },
        **topics,
    )
    port = free_port()
    worker = await start_worker(app_dir, "svc", service_port=port)
    async with httpx.AsyncClient(timeout=5) as client:
        response = await client.get(f"http://127.0.0.1:{port}/the/custom/path")
    assert response.status_code == 200
    assert check(response)
    assert await worker.stop() == 0
