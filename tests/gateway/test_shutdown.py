"""Stopping the gateway process (``python -m gateway``, as Knative runs it) while service calls
wait for their replies: each gets its reply within the drain period, or a 503 problem+json when
the drain period ends first; never a bare 500, an empty body or a reset, and nothing in the
gateway's log but its own lines."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from gateway.settings import GatewaySettings, gateway_settings
from sluice.commands import GatewayOptions, add_gateway_options
from sluice.errors import SluiceError
from sluice.kafka import KafkaSettings
from sluice.kafka.admin import delete_topics, ensure_topics
from sluice.net import LOOPBACK, free_port
from tests.gateway.support import APP_ID, PROBLEM, TENANT, unique
from tests.gateway.test_service_gateway import GATEWAY, Responder, service_app

pytestmark = pytest.mark.kafka

CALLS = 50
DRAIN = 4.0


class Gateway:
    """``python -m gateway`` in a process of its own, its output collected."""

    def __init__(self, process: asyncio.subprocess.Process, url: str) -> None:
        self.process = process
        self.url = url
        self.signalled = False

    def terminate(self) -> None:
        self.signalled = True
        self.process.send_signal(signal.SIGTERM)

    async def stop(self) -> str:
        # One SIGTERM only: a second one may land after the gateway's event loop closed, where
        # it ends the process as SIGTERM does by default.
        if not self.signalled and self.process.returncode is None:
            self.terminate()
        output, _ = await asyncio.wait_for(self.process.communicate(), 90)
        return output.decode(errors="replace")


async def start_gateway(app_dir: Path, bootstrap: str, *extra: str) -> Gateway:
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", str(app_dir), "--bootstrap-servers", bootstrap,
        "--tenant", TENANT, "--app-id", APP_ID, "--host", LOOPBACK, "--port", str(port), *extra,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    url = f"http://{LOOPBACK}:{port}"
    async with httpx.AsyncClient(timeout=2, trust_env=False) as client:
        for _ in range(600):
            if process.returncode is not None:
                output = await process.stdout.read() if process.stdout else b""
                raise AssertionError(f"the gateway exited: {output.decode()}")
            try:
                if (await client.get(f"{url}/readyz")).status_code == 200:
                    return Gateway(process, url)
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    process.kill()
    raise AssertionError("the gateway did not become ready")


@pytest.fixture
async def topics(kafka_bootstrap: str, tmp_path: Path) -> AsyncIterator[tuple[Path, str, str]]:
    kafka = KafkaSettings(kafka_bootstrap)
    inputs, results = unique("shutdown-inputs"), unique("shutdown-results")
    app_dir = service_app(tmp_path / APP_ID, inputs, results)
    from sluice.application import load_application

    specs = list(load_application(app_dir, name=APP_ID).topics.values())
    await ensure_topics(kafka, specs)
    yield app_dir, inputs, results
    await delete_topics(kafka, [spec.name for spec in specs])


async def test_sigterm_with_service_calls_in_flight_answers_each_with_its_reply_or_503(
    kafka_bootstrap: str, topics: tuple[Path, str, str]
) -> None:
    # 50 concurrent calls; 20 are answered before SIGTERM, 15 during the drain period, 15
    # never: those get a 503 problem+json when the drain period ends, long before their own
    # timeout (60 s).
    app_dir, inputs, results = topics
    kafka = KafkaSettings(kafka_bootstrap)
    gateway = await start_gateway(app_dir, kafka_bootstrap, "--drain-timeout", str(DRAIN))
    output = ""
    limits = httpx.Limits(max_connections=CALLS + 10, max_keepalive_connections=CALLS + 10)
    try:
        async with (
            Responder(kafka, inputs, results) as responder,
            httpx.AsyncClient(timeout=60, limits=limits, trust_env=False) as client,
        ):
            url = f"{gateway.url}/api/gateways/service/{TENANT}/{APP_ID}/{GATEWAY}"

            async def ask(i: int) -> httpx.Response | BaseException:
                try:
                    return await client.post(
                        url, params={"option:timeout": "60"}, json={"value": f"call-{i}"}
                    )
                except httpx.HTTPError as error:
                    return error

            calls = [asyncio.create_task(ask(i)) for i in range(CALLS)]
            requests = await responder.take(CALLS)
            before, during, never = requests[:20], requests[20:35], requests[35:]
            await responder.answer(before)
            for _ in range(200):
                if sum(task.done() for task in calls) >= len(before):
                    break
                await asyncio.sleep(0.05)
            gateway.terminate()
            signalled = time.monotonic()
            await asyncio.sleep(DRAIN / 4)
            await responder.answer(during)
            answers = await asyncio.wait_for(asyncio.gather(*calls), DRAIN + 30)
            elapsed = time.monotonic() - signalled
    finally:
        output = await gateway.stop()

    by_value: dict[str, httpx.Response] = {}
    for i, answer in enumerate(answers):
        assert isinstance(answer, httpx.Response), f"call {i}: {answer!r}\n{output}"
        by_value[f"call-{i}"] = answer
    replied = {r.value for r in before + during}
    for value, response in by_value.items():
        if value in replied:
            assert response.status_code == 200, (value, response.status_code, response.text)
            assert response.json()["record"]["value"] == {"answer": value}
        else:
            assert response.status_code == 503, (value, response.status_code, response.text)
            assert response.headers["content-type"] == PROBLEM
            problem = response.json()
            assert problem["status"] == 503
            assert "shutting down" in problem["detail"]
    assert sum(r.status_code == 503 for r in by_value.values()) == len(never)
    assert elapsed < DRAIN + 5, elapsed
    assert "Traceback" not in output, output
    assert "Error" not in output, output
    assert gateway.process.returncode == 0, output


@pytest.mark.parametrize("value", ["0", "-1", "nan"])
def test_the_drain_timeout_must_be_positive(value: str) -> None:
    parser = argparse.ArgumentParser()
    add_gateway_options(parser)

    def settings(*argv: str) -> GatewaySettings:
        return gateway_settings(GatewayOptions.from_namespace(parser.parse_args(argv)), "default")

    with pytest.raises(SluiceError, match="--drain-timeout must be greater than 0"):
        settings("--drain-timeout", value)
    assert settings().shutdown_grace == 35.0
    assert settings("--drain-timeout", "2.5").shutdown_grace == 2.5
