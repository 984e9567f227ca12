"""``/metrics``: Prometheus text whose figures follow what the gateway is doing."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import ClientConnection, connect

from sluice.kafka import KafkaSettings
from tests.gateway.support import Served, serve_gateway, unique, write_app

pytestmark = pytest.mark.kafka

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(client: httpx.AsyncClient, served: Served) -> Samples:
    response = await client.get(f"{served.url}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
async def served(kafka_bootstrap: str, tmp_path: Path) -> AsyncIterator[Served]:
    inputs, outputs, answers = unique("metrics-in"), unique("metrics-out"), unique("metrics-a")
    gateways = f"""
gateways:
  - {{id: in, type: produce, topic: {inputs}}}
  - {{id: out, type: consume, topic: {answers}}}
  - id: ask
    type: service
    service-options: {{input-topic: {inputs}, output-topic: {outputs}}}
"""
    app_dir = write_app(tmp_path / "app", {inputs: 1, outputs: 1, answers: 1}, gateways)
    async with serve_gateway(KafkaSettings(kafka_bootstrap), app_dir) as gateway:
        yield gateway


async def test_metrics_follow_sockets_requests_and_pending_replies(served: Served) -> None:
    answers = served.application.gateway("out", "consume")
    assert answers is not None and answers.topic is not None
    topic = answers.topic
    async with httpx.AsyncClient(timeout=30, trust_env=False) as client:
        async with contextlib.AsyncExitStack() as stack:
            sockets: list[ClientConnection] = [
                await stack.enter_async_context(connect(served.ws("consume", "out")))
                for _ in range(5)
            ]
            samples = await scrape(client, served)
            assert value(samples, "sluice_gateway_kafka_consumers", topic=topic, role="fanout") == 1
            assert value(samples, "sluice_gateway_subscriptions", topic=topic) == 5
            assert value(samples, "sluice_gateway_websockets_open", type="consume") == 5
            assert sockets
        for _ in range(3):
            response = await client.post(served.http("produce", "in"), json={"value": "v"})
            assert response.status_code == 200
        timed_out = await client.post(
            served.http("service", "ask"), params={"option:timeout": "0.5"}, json={"value": "q"}
        )
        assert timed_out.status_code == 504
        for _ in range(100):  # the sockets' handlers finish after the client closed
            samples = await scrape(client, served)
            if value(samples, "sluice_gateway_websockets_open", type="consume") == 0:
                break
            await asyncio.sleep(0.05)
    assert value(samples, "sluice_gateway_websockets_open", type="consume") == 0
    assert value(samples, "sluice_gateway_subscriptions", topic=topic) == 0
    assert value(samples, "sluice_gateway_kafka_consumers", topic=topic, role="fanout") == 1
    produced = value(
        samples, "sluice_gateway_http_requests_total", endpoint="produce_route", status="200"
    )
    assert produced == 3
    assert (
        value(samples, "sluice_gateway_http_requests_total", endpoint="service_route", status="504")
        == 1
    )
    assert value(samples, "sluice_gateway_records_produced_total") == 4
    service = served.application.gateway("ask", "service")
    assert service is not None and service.service is not None
    output = service.service.output_topic
    assert output is not None
    assert value(samples, "sluice_gateway_kafka_consumers", topic=output, role="replies") == 1
    assert value(samples, "sluice_gateway_service_pending", topic=output) == 0
    assert value(samples, "sluice_gateway_ready") == 1
