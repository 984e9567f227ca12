"""python-service agents whose ``main()`` starts its own server, in real worker processes.

The ``main()`` bodies are written as users write them, with the server's own signal handling;
the worker runs them on its main thread, as LangStream ran them.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from sluice.net import free_port
from tests.workers.conftest import StartWorker, Worker
from tests.workers.test_orphan import LAUNCHER, orphan_and_wait
from workers.supervisor import ChildSpec, Supervisor

pytestmark = pytest.mark.kafka

SERVICES = '''
import asyncio
import http.server
import os
import sys
import time

from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route


class Hooks:
    """LangStream shape; init/start/close note themselves in the file configuration.log."""

    def init(self, config):
        self.config = config
        self.note("init")

    def start(self):
        self.note("start")

    def close(self):
        self.note("close")

    def note(self, what):
        with open(self.config["log"], "a") as f:
            f.write(what + "\\n")


async def hello(request):
    return PlainTextResponse("hello")


async def slow(request):
    await asyncio.sleep(1.5)
    return PlainTextResponse("slow done")


APP = Starlette(routes=[Route("/", hello), Route("/slow", slow)])


class Uvicorn(Hooks):
    def main(self):
        import uvicorn

        uvicorn.run(APP, host="127.0.0.1", port=int(os.environ["PORT"]), log_level="warning")


class Hypercorn(Hooks):
    def main(self):
        import hypercorn.asyncio
        import hypercorn.config

        config = hypercorn.config.Config()
        config.bind = [f"127.0.0.1:{{os.environ['PORT']}}"]
        asyncio.run(hypercorn.asyncio.serve(APP, config))


class HypercornUvloop(Hooks):
    """On uvloop, whose add_signal_handler does not go through signal.signal."""

    def main(self):
        import hypercorn.asyncio
        import hypercorn.config
        import uvloop

        config = hypercorn.config.Config()
        config.bind = [f"127.0.0.1:{{os.environ['PORT']}}"]
        uvloop.run(hypercorn.asyncio.serve(APP, config))


class QuartRun(Hooks):
    def main(self):
        from quart import Quart

        app = Quart(__name__)

        @app.get("/")
        async def index():
            return "hello"

        @app.get("/slow")
        async def slow():
            await asyncio.sleep(1.5)
            return "slow done"

        app.run(host="127.0.0.1", port=int(os.environ["PORT"]))


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/slow":
            time.sleep(1.5)
        body = b"slow done" if self.path == "/slow" else b"hello"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class PlainHttp(Hooks):
    def main(self):
        http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()


class DrainingHttp(Hooks):
    """A threading http.server that waits for its requests when it closes."""

    def main(self):
        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = False

        with Server(("127.0.0.1", int(os.environ["PORT"])), Handler) as server:
            server.serve_forever()


class HardCoded(Hooks):
    """LangStream's examples hard-code the port (8000) instead of reading PORT."""

    def main(self):
        import uvicorn

        uvicorn.run(APP, host="0.0.0.0", port=self.config["port"], log_level="warning")


class Nowhere(Hooks):
    def main(self):
        while True:
            time.sleep(1)


class Crashes(Hooks):
    def main(self):
        raise RuntimeError("the model is not there")


class Returns(Hooks):
    def main(self):
        return None


class Exits(Hooks):
    def main(self):
        sys.exit(3)


class IgnoresTheStop(Hooks):
    """Takes SIGTERM and carries on."""

    def main(self):
        import signal

        signal.signal(signal.SIGTERM, lambda signum, frame: None)
        Uvicorn.main(self)
        while True:
            time.sleep(1)


class CrashesOnce(Hooks):
    """Crashes in the first process (leaves a marker), serves in the next."""

    def main(self):
        marker = self.config["log"] + ".crashed"
        if not os.path.exists(marker):
            open(marker, "w").close()
            raise RuntimeError("first run")
        Uvicorn.main(self)
'''


AppFactory = Callable[..., Path]


def service_app(app_factory: AppFactory, class_name: str, log: Path, **config: object) -> Path:
    extra = "".join(f", {key}: {value}" for key, value in config.items())
    return app_factory(
        {
            "pipeline.yaml": f"""
pipeline:
  - {{{{id: svc, type: python-service, configuration: {{{{className: services.{class_name}, log: "{log}"{extra}}}}}}}}}
""",
            "python/services.py": SERVICES,
        }
    )


async def readyz(worker: Worker) -> httpx.Response:
    async with httpx.AsyncClient(timeout=2) as client:
        return await client.get(f"http://127.0.0.1:{worker.health_port}/readyz")


async def stop_within(worker: Worker, seconds: float) -> int:
    loop = asyncio.get_running_loop()
    begun = loop.time()
    code = await worker.stop(signal.SIGTERM, within=seconds + 5)
    assert loop.time() - begun < seconds, "\n".join(worker.output)
    return code


SERVERS = ["Uvicorn", "Hypercorn", "HypercornUvloop", "QuartRun", "PlainHttp", "DrainingHttp"]


@pytest.mark.parametrize("class_name", SERVERS)
async def test_main_serves_becomes_ready_and_stops_on_sigterm(
    app_factory: AppFactory, start_worker: StartWorker, tmp_path: Path, class_name: str
) -> None:
    log = tmp_path / "hooks"
    port = free_port()
    worker = await start_worker(service_app(app_factory, class_name, log), "svc", service_port=port)
    async with httpx.AsyncClient(timeout=5) as client:
        response = await client.get(f"http://127.0.0.1:{port}/")
    assert (response.status_code, response.text) == (200, "hello")
    ready = await readyz(worker)
    assert (ready.status_code, ready.json()) == (200, {"status": "ready", "service_port": port})

    assert await stop_within(worker, 5) == 0
    output = "\n".join(worker.output)
    assert "set_wakeup_fd" not in output
    assert "while it should run" not in output
    assert log.read_text().split() == ["init", "start", "close"]


@pytest.mark.parametrize(
    "class_name", ["Uvicorn", "Hypercorn", "HypercornUvloop", "QuartRun", "DrainingHttp"]
)
async def test_sigterm_lets_a_request_in_flight_complete(
    app_factory: AppFactory, start_worker: StartWorker, tmp_path: Path, class_name: str
) -> None:
    port = free_port()
    worker = await start_worker(
        service_app(app_factory, class_name, tmp_path / "hooks"), "svc", service_port=port
    )
    async with httpx.AsyncClient(timeout=10) as client:
        request = asyncio.create_task(client.get(f"http://127.0.0.1:{port}/slow"))
        await asyncio.sleep(0.5)  # the request is in the server
        assert worker.process.returncode is None
        worker.process.send_signal(signal.SIGTERM)
        response = await request
    assert (response.status_code, response.text) == (200, "slow done")
    assert await stop_within(worker, 5) == 0


async def test_main_on_a_hard_coded_port_reports_it(
    app_factory: AppFactory, start_worker: StartWorker, tmp_path: Path
) -> None:
    hard_coded, port = free_port(), free_port()
    worker = await start_worker(
        service_app(app_factory, "HardCoded", tmp_path / "hooks", port=hard_coded),
        "svc",
        service_port=port,
    )
    ready = await readyz(worker)
    assert ready.json() == {"status": "ready", "service_port": hard_coded}
    async with httpx.AsyncClient(timeout=5) as client:
        response = await client.get(f"http://127.0.0.1:{hard_coded}/")
    assert response.text == "hello"
    assert f"service svc listens on port {hard_coded}, not on PORT={port}" in "\n".join(
        worker.output
    )
    assert await stop_within(worker, 5) == 0


async def test_main_listening_nowhere_stays_unready_and_says_so(
    app_factory: AppFactory, start_worker: StartWorker, tmp_path: Path
) -> None:
    log = tmp_path / "hooks"
    port = free_port()
    worker = await start_worker(
        service_app(app_factory, "Nowhere", log), "svc", service_port=port, ready=False
    )
    expected = {"status": "not ready", "reason": f"service svc listens on no port (PORT={port})"}
    deadline = time.monotonic() + 60
    while True:
        try:
            response = await readyz(worker)
            if response.json() == expected:
                break
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "\n".join(worker.output)
        await asyncio.sleep(0.1)
    assert response.status_code == 503
    # Nothing in main() handles signals: SIGTERM ends it as Ctrl-C would.
    assert await stop_within(worker, 5) == 0
    assert log.read_text().split() == ["init", "start", "close"]


@pytest.mark.parametrize(
    ("class_name", "line"),
    [
        ("Crashes", "main() crashed (RuntimeError('the model is not there')) while it should run"),
        ("Returns", "main() returned while it should run"),
        ("Exits", "main() exited with code 3 while it should run"),
    ],
)
async def test_main_that_ends_by_itself_ends_the_worker(
    app_factory: AppFactory,
    start_worker: StartWorker,
    tmp_path: Path,
    class_name: str,
    line: str,
) -> None:
    log = tmp_path / "hooks"
    port = free_port()
    worker = await start_worker(
        service_app(app_factory, class_name, log), "svc", service_port=port, ready=False
    )
    assert await worker.exited(within=60) == 1
    errors = [text for text in worker.output if text.startswith("ERROR")]
    assert errors == [
        f"ERROR sluice.worker: service svc on port {port}: {line}; "
        "the worker exits to be started again"
    ], "\n".join(worker.output)
    assert log.read_text().split() == ["init", "start", "close"]


async def test_supervisor_restarts_a_worker_whose_main_crashed(
    app_factory: AppFactory, kafka_bootstrap: str, tmp_path: Path
) -> None:
    log = tmp_path / "hooks"
    app_dir = service_app(app_factory, "CrashesOnce", log)
    health, port = free_port(), free_port()
    argv = [
        sys.executable,
        *("-m", "workers", str(app_dir), "--executor", "svc"),
        *("--bootstrap-servers", kafka_bootstrap, "--state-dir", str(tmp_path / "state")),
        *("--health-port", str(health), "--service-port", str(port)),
    ]
    lines: list[str] = []
    supervisor = Supervisor(
        [ChildSpec("svc", argv, health_port=health, service_port=port)],
        printer=lambda name, text: lines.append(text),
        backoff=(0.1, 1.0),
        grace=10,
    )
    await supervisor.start()
    try:
        deadline = time.monotonic() + 60
        async with httpx.AsyncClient(timeout=2) as client:
            while True:
                try:
                    response = await client.get(f"http://127.0.0.1:{port}/")
                    if response.status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, "\n".join(lines)
                await asyncio.sleep(0.1)
        assert supervisor.restarts("svc") == 1
        assert "exited with code 1; restarting in 0s" in lines
    finally:
        await supervisor.stop()
    assert log.read_text().split() == ["init", "start", "close"] * 2


async def test_main_that_ignores_the_stop_is_left_after_the_grace(
    app_factory: AppFactory, start_worker: StartWorker, tmp_path: Path
) -> None:
    log = tmp_path / "hooks"
    worker = await start_worker(
        service_app(app_factory, "IgnoresTheStop", log), "svc", service_port=free_port()
    )
    worker.process.send_signal(signal.SIGTERM)
    assert await worker.exited(within=30) == 0
    output = "\n".join(worker.output)
    assert "service svc: main() still runs 15s after the stop; closing the agent" in output
    assert "main() did not return: the worker exits without it" in output
    assert log.read_text().split() == ["init", "start", "close"]


async def test_an_orphaned_service_worker_stops_its_main(
    app_factory: AppFactory, kafka_bootstrap: str, tmp_path: Path
) -> None:
    log = tmp_path / "hooks"
    app_dir = service_app(app_factory, "Uvicorn", log)
    health = free_port()
    launcher = tmp_path / "launcher.py"
    launcher.write_text(LAUNCHER)
    worker = [
        sys.executable, "-m", "workers", str(app_dir), "--executor", "svc",
        "--bootstrap-servers", kafka_bootstrap, "--health-port", str(health),
        "--service-port", str(free_port()), "--state-dir", str(tmp_path / "state"),
    ]  # fmt: skip
    output = await asyncio.to_thread(orphan_and_wait, launcher, worker, health)
    assert "is gone: stopping" in output
    assert "while it should run" not in output
    assert log.read_text().split() == ["init", "start", "close"]
