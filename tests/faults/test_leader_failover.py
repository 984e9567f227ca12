"""F-cluster: the partition leader of the replicated cluster (three nodes, TLS and SCRAM,
replication factor 3, ``min.insync.replicas`` 2) is SIGKILLed five times while clients produce
through a gateway process and a worker process copies every record to an output topic. Every
acknowledged id reaches the output, no produce is answered 500, and with one broker left the
gateway answers 503 with Retry-After, never 2xx for a write no replica holds."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from sluice.application.model import TopicSpec
from sluice.events import ConsumedRecord
from sluice.kafka import Consumer, KafkaSettings
from sluice.kafka.admin import delete_topics, ensure_topics
from tests.faults.support import (
    APP,
    PIPELINE_APP,
    Ledger,
    children,
    gateway_process,
    write_app,
)
from tests.kafka_cluster import SecuredCluster, all_nodes_back

pytestmark = [pytest.mark.kafka, pytest.mark.faults]

PRODUCE_TIMEOUT = 5.0
KILLS = 5
IN, OUT = "faults-in", "faults-out"


async def _partition(settings: KafkaSettings, topic: str) -> tuple[int, list[int]]:
    """The leader and the in-sync replicas of ``topic``'s partition 0."""
    admin = AIOKafkaAdminClient(**settings.client_kwargs("admin"))
    await admin.start()
    try:
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    partition = described[0]["partitions"][0]
    return partition["leader"], list(partition["isr"])


async def _fully_in_sync(settings: KafkaSettings, topic: str, *, within: float = 60) -> int:
    """Wait until all three replicas are in sync; return the leader."""
    deadline = time.monotonic() + within
    while True:
        try:
            leader, isr = await _partition(settings, topic)
            if leader >= 0 and len(isr) == 3:
                return leader
        except Exception:  # a metadata request during an election: ask again
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            raise AssertionError(f"{topic}: replicas not back in sync within {within:g} s")
        await asyncio.sleep(0.5)


async def _ids(settings: KafkaSettings, topic: str, wanted: set[str], within: float) -> set[str]:
    """Ledger ids in ``topic``, read from the beginning until ``wanted`` are all there or
    ``within`` passed."""
    found: set[str] = set()
    spec = TopicSpec.bare(topic)
    async with Consumer(settings, [spec], start_at="beginning") as consumer:
        deadline = time.monotonic() + within
        while not wanted <= found and time.monotonic() < deadline:
            for item in await consumer.poll(timeout_ms=1000):
                if isinstance(item, ConsumedRecord):
                    text = str(item.record.value)
                    start = text.find("ledger-")
                    if start >= 0:
                        found.add(text[start : start + len("ledger-") + 32])
    return found


def _instance(directory: Path, cluster: SecuredCluster) -> Path:
    """instance.yaml with the cluster's client properties (password included) and short
    consumer sessions."""
    options = {k: v for k, v in cluster.properties.items() if k != "bootstrap.servers"}
    options.update({"session.timeout.ms": "2000", "heartbeat.interval.ms": "500"})
    lines = ["instance:", "  streamingCluster:", "    type: kafka", "    configuration:"]
    lines += ["      admin:"] + [f"        {k}: {json.dumps(v)}" for k, v in options.items()]
    path = directory / "instance.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.timeout(420)
async def test_leader_killed_five_times_under_load(
    kafka_cluster: SecuredCluster, tmp_path: Path
) -> None:
    cluster = kafka_cluster.cluster
    settings = kafka_cluster.settings
    app = write_app(tmp_path, PIPELINE_APP)
    instance = _instance(tmp_path, kafka_cluster)
    bootstrap = kafka_cluster.properties["bootstrap.servers"]
    topics = [TopicSpec(IN, creation_mode="create-if-not-exists")]
    topics.append(TopicSpec(OUT, creation_mode="create-if-not-exists"))
    await ensure_topics(settings, topics)
    ledger = Ledger()
    url = f"/api/gateways/produce/default/{APP}/in"
    stop = asyncio.Event()
    leaders: list[int] = []

    async def write(base: str) -> None:
        async with httpx.AsyncClient(base_url=base, timeout=30, trust_env=False) as client:
            while not stop.is_set():
                response = await ledger.produce(client, url)
                if response is None or not response.is_success:
                    await asyncio.sleep(0.2)

    try:
        async with (
            all_nodes_back(cluster),
            gateway_process(
                app,
                bootstrap,
                tmp_path / "gateway.log",
                "-i",
                str(instance),
                "--produce-timeout",
                str(PRODUCE_TIMEOUT),
            ) as gateway,  # fmt: skip
            children(app, bootstrap, tmp_path, instance) as kids,
        ):
            await kids.worker("copy")
            writers = [asyncio.create_task(write(gateway.url)) for _ in range(4)]
            try:
                for _ in range(KILLS):
                    leader = await _fully_in_sync(settings, IN)
                    leaders.append(leader)
                    before = len(ledger.ok)
                    await cluster.kill(leader)
                    await asyncio.sleep(3)
                    await cluster.restart(leader)
                    await asyncio.sleep(1)
                    assert len(ledger.ok) > before, "no write acknowledged across a failover"
                await _fully_in_sync(settings, IN)
            finally:
                stop.set()
                await asyncio.gather(*writers)

            # One broker left: min.insync.replicas 2 cannot be met, so no write is taken.
            survivor, *doomed = sorted(cluster.pids)
            for node in doomed:
                await cluster.kill(node)
            lonely = Ledger()
            async with httpx.AsyncClient(
                base_url=gateway.url, timeout=30, trust_env=False
            ) as client:
                answers = await asyncio.gather(*(lonely.produce(client, url) for _ in range(3)))
            for response in answers:
                assert response is not None
                assert response.status_code == 503, response.text
                assert response.headers.get("Retry-After"), response.headers
            assert not lonely.ok
            await asyncio.gather(*(cluster.restart(node) for node in doomed))
            assert gateway.process.returncode is None

            found = await _ids(settings, OUT, ledger.ok, within=90)
    finally:
        await delete_topics(settings, [IN, OUT])

    statuses: dict[int, int] = dict(ledger.statuses)
    line = (
        f"F-cluster leaders killed {leaders}: {len(ledger.ok)} acknowledged, statuses "
        f"{statuses}, lost {len(ledger.ok - found)}, survivor {survivor}"
    )
    print(line)
    assert len(set(leaders)) >= 2 or len(leaders) == KILLS, line
    assert ledger.ok - found == set(), line
    assert set(statuses) <= {200, 503}, line
    assert Counter(statuses)[500] == 0, line
    assert len(ledger.ok) > 50, line
