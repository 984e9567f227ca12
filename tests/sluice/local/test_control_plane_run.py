"""Under ``sluice run`` the control-plane API reports each worker as its executor's replica:
running once ready, in error with the reason when it failed (real broker, real workers)."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest

from sluice.application import load_application
from sluice.local.runner import RunSettings, run_application
from sluice.net import free_port

pytestmark = pytest.mark.kafka

EXCLAMATION = """
from langstream import SimpleRecord, Processor


class Exclamation(Processor):
    def process(self, record):
        return [SimpleRecord(record.value() + "!!", headers=record.headers())]
"""


async def test_replicas_are_the_workers_as_sluice_run_sees_them(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    suffix = uuid.uuid4().hex[:8]
    app_dir = tmp_path / "exclamation"
    (app_dir / "python").mkdir(parents=True)
    (app_dir / "python" / "example.py").write_text(EXCLAMATION)
    (app_dir / "pipeline.yaml").write_text(
        f"""
topics:
  - {{name: in-{suffix}, creation-mode: create-if-not-exists}}
  - {{name: out-{suffix}, creation-mode: create-if-not-exists}}
pipeline:
  - name: "Process using Python"
    type: python-processor
    input: in-{suffix}
    output: out-{suffix}
    configuration:
      className: example.Exclamation
"""
    )
    (app_dir / "broken.yaml").write_text(
        f"""
pipeline:
  - id: broken
    type: python-processor
    input: out-{suffix}
    configuration:
      className: missing_module.Nothing
"""
    )
    instance = tmp_path / "instance.yaml"
    instance.write_text(
        "instance:\n  streamingCluster:\n    type: kafka\n    configuration:\n"
        f"      admin: {{bootstrap.servers: '{kafka_bootstrap}'}}\n"
    )
    app = load_application(app_dir, instance=instance, name="test")
    settings = RunSettings(
        app_dir=app_dir,
        instance=instance,
        gateway_port=free_port(),
        state_dir=tmp_path / "state",
        wait_workers=60,
    )
    async with (
        run_application(app, settings) as running,
        httpx.AsyncClient(timeout=10, trust_env=False) as client,
    ):
        answer = await client.get(f"{running.base_url}/api/applications/default/test")
        listed = await client.get(f"{running.base_url}/api/applications/default")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert listed.json() == [body]
    assert body["application"]["instance"]["streamingCluster"]["type"] == "kafka"
    replicas = {e["id"]: e["replicas"] for e in body["status"]["executors"]}
    assert set(replicas) == {"broken", "pipeline-python-processor-1"}
    [good] = replicas["pipeline-python-processor-1"]
    assert good["id"] == "test-pipeline-python-processor-1-0"
    assert (good["status"], good["reason"]) == ("RUNNING", None)
    [bad] = replicas["broken"]
    assert bad["status"] == "ERROR"
    assert "missing_module" in bad["reason"]
