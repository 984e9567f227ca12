"""F7: the gateway stops while service calls (request/reply through Kafka) are in flight, and a
new gateway takes over.

SIGTERM: every caller gets an answer, its reply (200) if it comes within the drain period, else
a 503 problem+json, never a bare 500 and never a hang past the drain period; the process exits.
SIGKILL: callers see their connection reset (indeterminate), nothing else. Either way the new
gateway serves, and every request whose record reached the input topic has its reply in the
output topic (the worker answered it even if no caller was left to receive it): I1; nothing
appears that was not sent: I2.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from sluice.application import load_application, plan_application
from sluice.kafka import KafkaSettings
from sluice.kafka.admin import ensure_topics
from tests.faults.support import (
    Ledger,
    children,
    counts,
    gateway_process,
    instance_file,
    other_5xx,
    read_topic,
    summary,
    write_app,
)

pytestmark = [pytest.mark.kafka, pytest.mark.faults, pytest.mark.timeout(240)]

CALLS = 30
DRAIN = 3.0
APP = {
    "gateways.yaml": """
        gateways:
          - id: svc
            type: service
            service-options: {input-topic: f7-in, output-topic: f7-out}
    """,
    "pipeline.yaml": """
        topics:
          - {name: f7-in, creation-mode: create-if-not-exists}
          - {name: f7-out, creation-mode: create-if-not-exists}
        pipeline:
          - {id: echo, type: python-processor, input: f7-in, output: f7-out,
             configuration: {className: agents.Echo}}
    """,
    "python/agents.py": """
        import time

        from sluice import Processor


        class Echo(Processor):
            # 0.3 s a call, one at a time: 30 calls take 9 s, so most are still waiting when
            # the gateway is stopped.
            def process(self, record):
                time.sleep(0.3)
                return record
    """,
}


async def _call(
    ledger: Ledger, client: httpx.AsyncClient, url: str, outcomes: Counter[str]
) -> None:
    ident = ledger.new_id()
    try:
        response = await client.post(url, json={"value": ident})
    except httpx.TransportError as error:
        ledger.info.add(ident)
        ledger.statuses[0] += 1
        outcomes[type(error).__name__] += 1
        return
    ledger.statuses[response.status_code] += 1
    if response.status_code == 200 and ident in response.text:
        ledger.ok.add(ident)
        outcomes["reply"] += 1
    elif response.status_code == 503 and response.headers.get("content-type") == (
        "application/problem+json"
    ):
        ledger.info.add(ident)  # its record may be in the input topic
        outcomes["503 problem"] += 1
    else:
        ledger.info.add(ident)
        outcomes[f"{response.status_code} {response.text[:80]!r}"] += 1


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
async def test_f7_gateway_stopped_with_service_calls_in_flight(
    kafka_bootstrap: str, tmp_path: Path, sig: signal.Signals
) -> None:
    app = write_app(tmp_path, APP)
    await ensure_topics(
        KafkaSettings(kafka_bootstrap), plan_application(load_application(app)).topics
    )
    already = counts(await read_topic(kafka_bootstrap, "f7-in", settle=0.5))
    ledger = Ledger()
    outcomes: Counter[str] = Counter()
    async with (
        children(app, kafka_bootstrap, tmp_path, instance_file(tmp_path)) as kids,
        httpx.AsyncClient(timeout=60, trust_env=False) as client,
    ):
        await kids.worker("echo")
        async with gateway_process(
            app, kafka_bootstrap, tmp_path / "gateway-1.log", "--drain-timeout", str(DRAIN)
        ) as first:
            url = f"{first.url}/api/gateways/service/default/faults/svc"
            calls = asyncio.gather(*(_call(ledger, client, url, outcomes) for _ in range(CALLS)))
            await asyncio.sleep(1.5)
            first.process.send_signal(sig)
            stopped_at = time.monotonic()
            await asyncio.wait_for(calls, DRAIN + 15)
            answered_in = time.monotonic() - stopped_at
            code = await asyncio.wait_for(first.process.wait(), DRAIN + 15)
            gateway_log = first.log.read_text(errors="replace")
        async with gateway_process(app, kafka_bootstrap, tmp_path / "gateway-2.log") as second:
            restarted = time.monotonic() - stopped_at
            url = f"{second.url}/api/gateways/service/default/faults/svc"
            after: Counter[str] = Counter()
            await asyncio.gather(*(_call(ledger, client, url, after) for _ in range(5)))

        requests = counts(await read_topic(kafka_bootstrap, "f7-in", settle=0.5))
        requests -= already
        replies = counts(
            await read_topic(kafka_bootstrap, "f7-out", expect=requests.keys(), within=60)
        )

    lost = (ledger.ok - requests.keys()) | (requests.keys() - replies.keys())
    phantoms = requests.keys() - ledger.ok - ledger.info
    line = summary(
        f"F7 gateway {sig.name} with {CALLS} service calls in flight",
        sent=ledger.sent,
        ok=len(ledger.ok),
        info=len(ledger.info),
        lost=len(lost),
        phantoms=len(phantoms),
        duplicates=sum(n - 1 for n in requests.values()),
        other_5xx=other_5xx(ledger.statuses),
        recovered=restarted,
        extra=f"callers got {dict(outcomes)} within {answered_in:.1f} s, exit {code}, "
        f"after the restart {dict(after)}, requests in the input topic {len(requests)}",
    )
    assert after == {"reply": 5}, line
    assert not lost and not phantoms, line
    assert other_5xx(ledger.statuses) == 0, line
    if sig == signal.SIGTERM:
        assert set(outcomes) <= {"reply", "503 problem"}, line
        assert answered_in < DRAIN + 5, line
        assert code == 0, line
        assert "Traceback" not in gateway_log, gateway_log[-3000:]
    else:
        assert set(outcomes) <= {"reply", "RemoteProtocolError", "ReadError"}, line
