"""F1 and F2: the broker goes away in the middle of a stream and comes back on the same port and
data. Clients produce steadily through the gateway and a worker copies every record to an output
topic.

F1 is the issue's acceptance case: ``sluice run`` (gateway and worker as its children) rides out
a 60 s clean broker stop (SIGTERM) and produces again within 10 s of the broker's return, with
no restart. F2 SIGKILLs the broker under a gateway and a worker run as their own processes
(``python -m gateway``, ``python -m workers``). Both check I1 (every acknowledged id in the input
topic and, once the worker caught up, in the output topic), I2, no producer duplicates, I4 and
lag 0, no 5xx but 503, and ``/readyz`` saying Kafka is away while it is.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from sluice.application import load_application, plan_application
from sluice.kafka import KafkaSettings
from sluice.kafka.admin import ensure_topics
from sluice.kafka.local import LocalKafka, LocalKafkaSettings
from sluice.net import free_port
from tests.faults.support import (
    PIPELINE_APP,
    check_pipeline,
    children,
    gateway_process,
    instance_file,
    ride_out,
    sluice_run,
    write_app,
)

pytestmark = [pytest.mark.kafka, pytest.mark.faults]

PRODUCE_TIMEOUT = 5.0


def _broker(tmp_path: Path) -> LocalKafka:
    return LocalKafka(
        LocalKafkaSettings(port=free_port(), data_dir=tmp_path / "kafka", start_timeout=120)
    )


@pytest.mark.timeout(360)
async def test_f1_sluice_run_rides_out_a_60_s_broker_stop(tmp_path: Path) -> None:
    broker = _broker(tmp_path)
    await broker.start()
    try:
        app = write_app(tmp_path, PIPELINE_APP)
        instance = instance_file(tmp_path, broker.bootstrap_servers)
        async with sluice_run(
            app, instance, tmp_path, "--produce-timeout", str(PRODUCE_TIMEOUT)
        ) as run:
            outage = await ride_out(
                run.url, broker.stop, broker.start, 60, produce_timeout=PRODUCE_TIMEOUT
            )
            lines = run.log_lines()
            line = await check_pipeline(
                "F1 broker SIGTERM, 60 s away, under sluice run",
                broker.bootstrap_servers,
                outage,
                extra=f"sluice run alive {run.process.returncode is None}",
            )
            assert run.process.returncode is None, line
        connection_errors = [x for x in lines if "Unable connect" in x or "Unable to update" in x]
        assert len(connection_errors) <= 20, connection_errors[:20]
        assert any("unreachable" in x for x in lines), "sluice run's output says Kafka is away"
        assert any("reachable again" in x for x in lines), "... and that it is back"
    finally:
        await broker.stop()


@pytest.mark.timeout(240)
async def test_f2_gateway_and_worker_ride_out_a_broker_sigkill(tmp_path: Path) -> None:
    broker = _broker(tmp_path)
    await broker.start()
    try:
        bootstrap = broker.bootstrap_servers
        app = write_app(tmp_path, PIPELINE_APP)
        instance = instance_file(tmp_path)

        async def kill() -> None:
            assert broker.pid is not None
            os.kill(broker.pid, signal.SIGKILL)
            await broker.stop()  # reaps it

        await ensure_topics(
            KafkaSettings(bootstrap), plan_application(load_application(app)).topics
        )
        async with (
            gateway_process(
                app,
                bootstrap,
                tmp_path / "gateway.log",
                "--produce-timeout",
                str(PRODUCE_TIMEOUT),
            ) as gateway,  # fmt: skip
            children(app, bootstrap, tmp_path, instance) as kids,
        ):
            worker = await kids.worker("copy")
            outage = await ride_out(
                gateway.url, kill, broker.start, 10, produce_timeout=PRODUCE_TIMEOUT
            )
            line = await check_pipeline("F2 broker SIGKILL, 10 s away", bootstrap, outage)
            assert gateway.process.returncode is None, line
            assert await worker.stop() == 0, line
    finally:
        await broker.stop()
