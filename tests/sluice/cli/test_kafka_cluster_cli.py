"""``sluice kafka start --brokers N --tls --sasl scram``, ``status`` and ``stop``: the printed
instance.yaml block and the client.properties file reach the cluster, a second start is refused,
and bad flags are clean errors. One node keeps it quick; the three-node shape is the session's
``kafka_cluster``, started by the same code."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sluice.cli.main import main
from sluice.kafka import KafkaSettings
from sluice.kafka.admin import list_topics
from sluice.kafka.local.cluster import client_properties, stop_cluster


async def sluice(*args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "sluice.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "NO_COLOR": "1"},
    )


@pytest.mark.kafka
async def test_start_status_stop_a_secured_cluster(tmp_path: Path) -> None:
    data_dir = tmp_path / "cluster"
    flags = ("--brokers", "1", "--tls", "--sasl", "scram", "--data-dir", str(data_dir))
    try:
        started = await sluice("kafka", "start", *flags)
        assert started.returncode == 0, started.stderr
        assert started.stdout.startswith("Kafka cluster of 1 running at 127.0.0.1:")
        properties = client_properties(data_dir)
        assert properties["security.protocol"] == "SASL_SSL"
        assert oct((data_dir / "client.properties").stat().st_mode & 0o777) == "0o600"
        password = properties["sasl.jaas.config"].split('password="')[1].split('"')[0]
        assert password not in started.stdout

        # The printed block is instance.yaml's admin mapping, the password left to secrets.yaml.
        block = started.stdout.split("file):\n", 1)[1].split("stop it with")[0]
        admin = yaml.safe_load(block)["instance"]["streamingCluster"]["configuration"]["admin"]
        assert 'password="${secrets.kafka.password}"' in admin["sasl.jaas.config"]
        admin["sasl.jaas.config"] = properties["sasl.jaas.config"]
        assert isinstance(await list_topics(KafkaSettings.from_properties(admin)), frozenset)

        status = await sluice("kafka", "status", "--data-dir", str(data_dir))
        assert status.returncode == 0, status.stderr
        assert "cluster running: 1 node(s) at 127.0.0.1:" in status.stdout

        again = await sluice("kafka", "start", *flags)
        assert again.returncode == 1
        assert again.stderr.startswith("error: a Kafka cluster is already running from ")

        stopped = await sluice("kafka", "stop", "--data-dir", str(data_dir))
        assert stopped.returncode == 0, stopped.stderr
        assert f"stopped the Kafka cluster in {data_dir}" in stopped.stdout
        status = await sluice("kafka", "status", "--data-dir", str(data_dir))
        assert status.returncode == 3
        assert "cluster not running" in status.stdout
    finally:
        await stop_cluster(data_dir, grace=5)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (("--brokers", "0"), "not a number of brokers from 1 to 9: '0'"),
        (("--brokers", "three"), "not a number of brokers from 1 to 9: 'three'"),
        (("--sasl", "plain"), "invalid choice: 'plain'"),
    ],
)
def test_bad_flags_are_clean_errors(
    flags: tuple[str, ...], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["kafka", "start", *flags])
    assert exited.value.code == 2
    assert message in capsys.readouterr().err
