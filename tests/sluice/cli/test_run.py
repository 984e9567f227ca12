"""``sluice run`` as a user runs it: its own broker, the topics created, a clean Ctrl-C."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest

from sluice.kafka.admin import list_topics
from sluice.kafka.client import KafkaSettings
from sluice.kafka.local import broker_status

ROOT = Path(__file__).resolve().parents[3]

pytestmark = pytest.mark.kafka


async def test_run_starts_kafka_creates_topics_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    data_dir = tmp_path / "kafka"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sluice.cli.main",
        "run",
        str(ROOT / "examples" / "counter"),
        "--kafka-data-dir",
        str(data_dir),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert process.stdout is not None and process.stderr is not None
    try:
        line = await asyncio.wait_for(process.stdout.readline(), timeout=120)
        assert line.startswith(b"ready: kafka=127.0.0.1:"), line
        bootstrap = line.decode().strip().split("=", 1)[1]
        assert {"questions", "answers"} <= await list_topics(KafkaSettings(bootstrap))
        assert broker_status(data_dir).running
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
        code = await asyncio.wait_for(process.wait(), timeout=60)
    stderr = (await process.stderr.read()).decode()
    assert code == 0, stderr
    assert "counter (python-processor)" in stderr
    assert "Traceback" not in stderr
    assert not broker_status(data_dir).running


async def test_run_refuses_an_invalid_application(tmp_path: Path) -> None:
    app = tmp_path / "broken"
    app.mkdir()
    (app / "pipeline.yaml").write_text("pipeline:\n  - type: nope\n")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sluice.cli.main",
        "run",
        str(app),
        "--kafka-data-dir",
        str(tmp_path / "kafka"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert b"ready:" not in stdout
    assert process.returncode == 1
    assert 'pipeline.yaml:2 pipeline[0].type: unknown agent type "nope"' in stderr.decode()
    assert not (tmp_path / "kafka").exists()
