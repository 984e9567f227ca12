"""``sluice run`` against a production-shaped Kafka: the replicated cluster with TLS and SCRAM
(``kafka_cluster``), its credentials and CA certificate in secrets.yaml and referenced from
instance.yaml. The whole path works (topics created replicated by the CLI, HTTP produce and
WebSocket consume through the gateway, a service round trip, the stateful counter in its worker
process) and a wrong password, an untrusted CA or a plaintext client are refused with the cause,
by ``sluice run`` and by a gateway process on its own, never a hang."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect

from sluice.kafka.admin import delete_topics, describe_topic
from sluice.kafka.local.certs import make_ca, pem
from sluice.net import free_port
from tests.examples.support import EXAMPLES, ROOT, receive_json, run_cli, sluice_run
from tests.kafka_cluster import SecuredCluster

pytestmark = pytest.mark.kafka

COUNTER = EXAMPLES / "counter"

INSTANCE = """\
instance:
  streamingCluster:
    type: kafka
    configuration:
      admin:
        bootstrap.servers: "{bootstrap}"
        security.protocol: SASL_SSL
        sasl.mechanism: SCRAM-SHA-512
        sasl.jaas.config: >-
          org.apache.kafka.common.security.scram.ScramLoginModule required
          username="${{secrets.kafka.username}}" password="${{secrets.kafka.password}}";
        ssl.truststore.type: PEM
        ssl.truststore.certificates: "${{secrets.kafka.ca}}"
"""


def settings_files(
    directory: Path, cluster: SecuredCluster, *, password: str | None = None, ca: str | None = None
) -> tuple[Path, Path]:
    """instance.yaml and secrets.yaml for the cluster, the password and CA changeable."""
    directory.mkdir(parents=True, exist_ok=True)
    instance = directory / "instance.yaml"
    bootstrap = cluster.properties["bootstrap.servers"]
    instance.write_text(INSTANCE.format(bootstrap=bootstrap))
    secrets = directory / "secrets.yaml"
    ca_text = ca if ca is not None else cluster.ca_file.read_text()
    secrets.write_text(
        "secrets:\n  - id: kafka\n    data:\n      username: sluice\n"
        f"      password: {json.dumps(password or cluster.password)}\n"
        "      ca: |\n" + "".join(f"        {line}\n" for line in ca_text.splitlines())
    )
    return instance, secrets


async def test_the_whole_path_over_tls_and_scram(
    kafka_cluster: SecuredCluster, tmp_path: Path
) -> None:
    instance, secrets = settings_files(tmp_path / "secured", kafka_cluster)
    bootstrap = kafka_cluster.properties["bootstrap.servers"]
    settings = kafka_cluster.settings
    try:
        async with (
            sluice_run(
                COUNTER,
                bootstrap,
                tmp_path,
                ("-i", str(instance), "-s", str(secrets)),
                delete_topics_after=False,
            ) as counter,  # fmt: skip
            httpx.AsyncClient(timeout=60) as http,
        ):
            for topic in ("questions", "answers"):
                described = await describe_topic(settings, topic)
                assert described.replication_factor == 3, described
                assert described.config["min.insync.replicas"] == "2"
            async with connect(
                counter.ws_url("consume", "answers", "?param:sessionId=s1")
            ) as answers:
                produced = await http.post(
                    counter.http_url("produce", "questions") + "?param:sessionId=s1",
                    json={"value": "hello"},
                )
                assert produced.json() == {"status": "OK", "reason": None}
                frame = await receive_json(answers)
                assert frame["record"]["value"] == "hello (question #1)"
            reply = await http.post(counter.http_url("service", "ask"), json={"value": "again"})
            assert reply.status_code == 200, reply.text
            assert reply.json()["record"]["value"] == "again (question #2)"
        assert kafka_cluster.password not in counter.output
    finally:
        await delete_topics(settings, ["questions", "answers"])
    counter_file = tmp_path / "state" / "default" / "counter" / "counter" / "counter.txt"
    assert counter_file.read_text() == "2"


def _other_ca() -> str:
    return pem(make_ca("someone else's CA")[1]).decode()


@pytest.mark.parametrize(
    ("change", "cause"),
    [
        ({"password": "not-the-password"}, "refused the SASL credentials for user 'sluice'"),
        ({"ca": "other"}, "is not trusted: self-signed certificate in certificate chain"),
    ],
)
async def test_sluice_run_and_the_gateway_refuse_bad_credentials_at_once(
    kafka_cluster: SecuredCluster, tmp_path: Path, change: dict[str, str], cause: str
) -> None:
    ca = _other_ca() if change.get("ca") else None
    instance, secrets = settings_files(
        tmp_path / "bad", kafka_cluster, password=change.get("password"), ca=ca
    )
    began = time.monotonic()
    code, out, err = await run_cli(
        "run", str(COUNTER), "-i", str(instance), "-s", str(secrets),
        "--gateway-port", str(free_port()), "--state-dir", str(tmp_path / "state"),
        within=120,
    )  # fmt: skip
    assert code != 0, out + err
    flat = " ".join((out + err).split())  # the terminal output wraps long lines
    assert cause in flat, out + err
    assert "Traceback" not in out + err
    assert "not-the-password" not in out + err
    assert time.monotonic() - began < 60

    bootstrap = kafka_cluster.properties["bootstrap.servers"]
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", str(COUNTER), "--bootstrap-servers", bootstrap,
        "-i", str(instance), "-s", str(secrets), "--host", "127.0.0.1", "--port", str(free_port()),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=ROOT,
    )  # fmt: skip
    output, _ = await asyncio.wait_for(process.communicate(), 60)
    text = output.decode(errors="replace")
    assert process.returncode == 1, text
    assert cause in text, text
    assert "not-the-password" not in text


async def test_a_plaintext_client_is_told_the_listener_speaks_tls(
    kafka_cluster: SecuredCluster, tmp_path: Path
) -> None:
    bootstrap = kafka_cluster.properties["bootstrap.servers"]
    instance = tmp_path / "plain" / "instance.yaml"
    instance.parent.mkdir()
    instance.write_text(
        "instance:\n  streamingCluster:\n    type: kafka\n    configuration:\n"
        f"      admin: {{bootstrap.servers: '{bootstrap}'}}\n"
    )
    code, out, err = await run_cli(
        "run", str(COUNTER), "-i", str(instance), "--gateway-port", str(free_port()),
        "--state-dir", str(tmp_path / "state"), within=120,
    )  # fmt: skip
    assert code != 0, out + err
    flat = " ".join((out + err).split())
    assert "speaks TLS but security.protocol is PLAINTEXT" in flat, out + err
