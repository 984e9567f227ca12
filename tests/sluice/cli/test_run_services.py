"""``sluice run`` with python-service agents: a failing one does not hold the rest back, and
services are reached where they listen (LangStream's port 8000, or the PORT they are given)."""

from __future__ import annotations

import asyncio
import re
import socket
import textwrap
import uuid
from pathlib import Path

import httpx
import pytest

from sluice.net import free_port
from tests.sluice.cli.test_run import sluice_run

pytestmark = pytest.mark.kafka

# A LangStream-style service running its own server from main() on the port it is told (PORT)
# or on a port it hard-codes, answering with the port it listens on and the path asked.
SERVICE = """
import json
import os
from http.server import BaseHTTPRequestHandler, HTTPServer

from sluice import Service


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"port": self.server.server_port, "path": self.path}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class FromPort(Service):
    def main(self):
        HTTPServer(("0.0.0.0", int(os.environ["PORT"])), Handler).serve_forever()


class On8000(Service):
    def main(self):
        HTTPServer(("0.0.0.0", 8000), Handler).serve_forever()


class FailsOnce(Service):
    def main(self):
        marker = os.path.join(os.path.dirname(__file__), "started-once")
        if not os.path.exists(marker):
            open(marker, "w").close()
            raise RuntimeError("the first start fails")
        HTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()


class Nowhere(Service):
    def main(self):
        import time

        while True:
            time.sleep(1)
"""

ECHO = """
from sluice import Processor


class Echo(Processor):
    def process(self, record):
        return [record]
"""

BROKEN = """
import langserve_that_is_not_installed  # noqa: F401

from sluice import Service


class Api(Service):
    pass
"""


def write_app(
    root: Path,
    bootstrap: str,
    services: dict[str, str],
    *,
    processor: bool = False,
    modules: dict[str, str] | None = None,
) -> Path:
    """An application with a service gateway per service (agent id -> className), and a
    processor behind a produce gateway if asked; its instance points at ``bootstrap``."""
    app = root / "app"
    (app / "python").mkdir(parents=True)
    for name, text in {"services": SERVICE, "echo": ECHO, **(modules or {})}.items():
        (app / "python" / f"{name}.py").write_text(text)
    suffix = uuid.uuid4().hex[:8]
    pipeline = [
        "topics:",
        f"  - {{name: in-{suffix}, creation-mode: create-if-not-exists}}",
        f"  - {{name: out-{suffix}, creation-mode: create-if-not-exists}}",
        "pipeline:",
    ]
    gateways = ["gateways:"]
    if processor:
        pipeline.append(
            f"  - {{id: echo, type: python-processor, input: in-{suffix}, "
            f"output: out-{suffix}, configuration: {{className: echo.Echo}}}}"
        )
        gateways.append(f"  - {{id: in, type: produce, topic: in-{suffix}}}")
    for agent, class_name in services.items():
        pipeline.append(
            f"  - {{id: {agent}, type: python-service, configuration: {{className: {class_name}}}}}"
        )
        gateways.append(
            f"  - {{id: {agent}, type: service, service-options: {{agent-id: {agent}}}}}"
        )
    (app / "pipeline.yaml").write_text("\n".join(pipeline) + "\n")
    (app / "gateways.yaml").write_text("\n".join(gateways) + "\n")
    (root / "instance.yaml").write_text(
        textwrap.dedent(
            f"""
            instance:
              streamingCluster:
                type: kafka
                configuration:
                  admin:
                    bootstrap.servers: "{bootstrap}"
            """
        )
    )
    return app


def service_url(gateway: str, app: str, agent: str) -> str:
    return f"{gateway}/api/gateways/service/default/{app}/{agent}"


async def get_json(client: httpx.AsyncClient, url: str) -> dict[str, object]:
    """The JSON answer of ``url``, asking again while the service is not up yet (503)."""
    for _ in range(150):
        response = await client.get(url)
        if response.status_code != 503:
            break
        await asyncio.sleep(0.2)
    assert response.status_code == 200, response.text
    answer: dict[str, object] = response.json()
    return answer


def port_8000_is_free() -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("0.0.0.0", 8000))
        except OSError:
            return False
    return True


async def wait_for_port_8000() -> None:
    for _ in range(60):
        if port_8000_is_free():
            return
        await asyncio.sleep(0.5)
    # Never a skip: a skipped test would count as passing. The test needs LangStream's port.
    pytest.fail(
        "port 8000 stayed taken for 30 s: this test needs it free (LangStream's service port)"
    )


async def test_a_service_that_cannot_start_does_not_hold_the_gateway_back(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    app = write_app(
        tmp_path, kafka_bootstrap, {"api": "broken.Api"}, processor=True, modules={"broken": BROKEN}
    )
    instance = ["-i", str(tmp_path / "instance.yaml")]
    async with sluice_run(app, tmp_path, *instance) as run, httpx.AsyncClient(timeout=30) as client:
        topics = next(t for line, t in run.times.items() if line.startswith("✔ topics:"))
        gateway = next(t for line, t in run.times.items() if line.startswith("✔ gateway:"))
        # The gateway line comes once its /readyz answered 200.
        assert gateway - topics < 10, run.lines
        assert (await client.get(f"{run.gateway}/readyz")).status_code == 200
        summary = "\n".join(run.lines)
        title = next(line for line in run.lines if line.startswith(("Started in", "Ready in")))
        assert title.startswith("Started in "), summary
        assert title.endswith("default/app, but 1 of 2 executor(s) not running")
        listed = run.lines[
            run.lines.index(
                "Not running (failed ones restart with backoff, picked up once ready):"
            ) :
        ]
        # The worker's last error line: the loader's own words for the ModuleNotFoundError.
        reason = next(line for line in listed if line.startswith("  api [api (python-service)]: "))
        assert "langserve_that_is_not_installed" in reason, summary
        assert "not installed" in reason, summary
        produced = await client.post(
            f"{run.gateway}/api/gateways/produce/default/app/in", json={"value": "hello"}
        )
        assert produced.status_code == 200, produced.text
        response = await client.get(f"{service_url(run.gateway, 'app', 'api')}/x")
        assert response.status_code == 503, response.text
        assert response.headers["content-type"] == "application/problem+json"
        detail = response.json()["detail"]
        assert detail.startswith("service api is not running: "), detail
        assert "langserve_that_is_not_installed" in detail


async def test_a_service_that_hard_codes_port_8000_answers(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    await wait_for_port_8000()
    app = write_app(tmp_path, kafka_bootstrap, {"fixed": "services.On8000"})
    instance = ["-i", str(tmp_path / "instance.yaml")]
    async with sluice_run(app, tmp_path, *instance) as run, httpx.AsyncClient(timeout=30) as client:
        assert any(line.startswith("Ready in") for line in run.lines), "\n".join(run.lines)
        answer = await get_json(client, f"{service_url(run.gateway, 'app', 'fixed')}/hello")
        assert answer == {"port": 8000, "path": "/hello"}


async def test_two_services_reading_port_both_answer(kafka_bootstrap: str, tmp_path: Path) -> None:
    app = write_app(
        tmp_path, kafka_bootstrap, {"one": "services.FromPort", "two": "services.FromPort"}
    )
    instance = ["-i", str(tmp_path / "instance.yaml")]
    async with sluice_run(app, tmp_path, *instance) as run, httpx.AsyncClient(timeout=30) as client:
        assert any(line.startswith("Ready in") for line in run.lines), "\n".join(run.lines)
        one = await get_json(client, f"{service_url(run.gateway, 'app', 'one')}/a")
        two = await get_json(client, f"{service_url(run.gateway, 'app', 'two')}/b")
        assert (one["path"], two["path"]) == ("/a", "/b")
        assert one["port"] != two["port"]


async def test_a_worker_that_comes_up_late_is_picked_up(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    app = write_app(tmp_path, kafka_bootstrap, {"flaky": "services.FailsOnce"})
    instance = ["-i", str(tmp_path / "instance.yaml")]
    async with sluice_run(app, tmp_path, *instance) as run, httpx.AsyncClient(timeout=30) as client:
        summary = "\n".join(run.lines)
        assert any(line.startswith("Started in ") for line in run.lines), summary
        assert any(
            line.startswith("  flaky [flaky (python-service)]: ") and "first start fails" in line
            for line in run.lines
        ), summary
        # Restarted after its backoff, it is routed without a restart of sluice run.
        answer = await get_json(client, f"{service_url(run.gateway, 'app', 'flaky')}/late")
        assert answer["path"] == "/late"
        for _ in range(50):
            if any(re.match(r"✔ worker flaky is ready \(", line) for line in run.lines):
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("\n".join(run.lines))


async def test_a_service_that_listens_nowhere_is_named(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    app = write_app(tmp_path, kafka_bootstrap, {"quiet": "services.Nowhere"})
    args = ["-i", str(tmp_path / "instance.yaml"), "--wait-workers", "3"]
    async with sluice_run(app, tmp_path, *args) as run, httpx.AsyncClient(timeout=30) as client:
        summary = "\n".join(run.lines)
        assert any(line.endswith("but 1 of 1 executor(s) not running") for line in run.lines)
        assert any(
            line.startswith("  quiet [quiet (python-service)]: not ready after 3 s")
            for line in run.lines
        ), summary
        response = await client.get(service_url(run.gateway, "app", "quiet"))
        assert response.status_code == 503, response.text
        assert response.json()["detail"].startswith("service quiet is not running")


async def test_the_gateway_routes_to_the_port_a_service_really_listens_on(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    # Not PORT: a port of its own choosing, which the worker finds and reports (service_port).
    fixed = free_port()
    own_port = (
        SERVICE
        + f"""

class OwnPort(Service):
    def main(self):
        HTTPServer(("127.0.0.1", {fixed}), Handler).serve_forever()
"""
    )
    app = write_app(tmp_path, kafka_bootstrap, {"own": "own.OwnPort"}, modules={"own": own_port})
    instance = ["-i", str(tmp_path / "instance.yaml")]
    async with sluice_run(app, tmp_path, *instance) as run, httpx.AsyncClient(timeout=30) as client:
        assert any(line.startswith("Ready in") for line in run.lines), "\n".join(run.lines)
        assert any(
            line.startswith("  worker    own:") and f"service http://127.0.0.1:{fixed}" in line
            for line in run.lines
        ), "\n".join(run.lines)
        answer = await get_json(client, f"{service_url(run.gateway, 'app', 'own')}/mine")
        assert answer == {"port": fixed, "path": "/mine"}
