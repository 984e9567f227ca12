"""``python -m gateway``: the gateway alone, as its Knative Service runs it, forwarding agent-id
service gateways to the URLs given with ``--service-url``."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import httpx
import pytest
from quart import Quart, Response, jsonify, request

from sluice.net import free_port
from tests.loopback import serve_on_loopback

pytestmark = pytest.mark.kafka

GATEWAYS = """
gateways:
  - id: ask
    type: service
    service-options:
      agent-id: my-service-agent
"""
PIPELINE = """
pipeline:
  - id: my-service-agent
    type: python-service
    configuration:
      className: service.Nothing
"""


def _service() -> Quart:
    """Stands in for the python-service's Knative Service (a URL in the cluster)."""
    app = Quart(__name__)

    @app.route("/<path:path>", methods=["GET", "POST"])
    async def echo(path: str) -> Response:
        return jsonify({"path": path, "query": request.query_string.decode()})

    return app


async def _gateway(app: Path, bootstrap: str, *extra: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", str(app), "--bootstrap-servers", bootstrap,
        "--tenant", "team", "--app-id", "bot", "--host", "127.0.0.1", *extra,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "PORT": "1"},
    )  # fmt: skip


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    app = tmp_path / "bot"
    (app / "python").mkdir(parents=True)
    (app / "gateways.yaml").write_text(GATEWAYS)
    (app / "pipeline.yaml").write_text(PIPELINE)
    (app / "python" / "service.py").write_text("class Nothing:\n    pass\n")
    return app


async def test_agent_id_gateways_forward_to_the_given_service_url(
    app_dir: Path, kafka_bootstrap: str
) -> None:
    port = free_port()
    async with serve_on_loopback(_service()) as service_url:
        process = await _gateway(
            app_dir,
            kafka_bootstrap,
            "--port",
            str(port),
            "--service-url",
            f"my-service-agent={service_url}/",
        )
        try:
            async with httpx.AsyncClient(timeout=5, trust_env=False) as client:
                for _ in range(300):
                    try:
                        if (await client.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    await asyncio.sleep(0.1)
                response = await client.get(
                    f"http://127.0.0.1:{port}/api/gateways/service/team/bot/ask/v1/hello?x=1"
                )
            assert response.status_code == 200, response.text
            assert response.json() == {"path": "v1/hello", "query": "x=1"}
        finally:
            process.send_signal(signal.SIGTERM)
            output, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, output.decode()
    assert b"draining" in output


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("my-service-agent", "expected AGENT_ID=http(s)://host[:port]"),
        ("my-service-agent=ftp://x", "expected AGENT_ID=http(s)://host[:port]"),
        ("nobody=http://x:1", "names agents the application lacks: ['nobody']"),
    ],
)
async def test_a_bad_service_url_stops_with_a_clear_message(
    app_dir: Path, kafka_bootstrap: str, url: str, message: str
) -> None:
    process = await _gateway(app_dir, kafka_bootstrap, "--service-url", url)
    output, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 1
    assert message in output.decode()
