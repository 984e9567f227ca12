"""A1: hostile tokens at the gateway (issue: "10,000 bad tokens mixed with valid users").

A google-protected produce gateway (``sluice run`` in its own process, the failure limiter off
so that every token reaches the verifier) checks tokens against a local JWKS stand-in. Each
repetition runs, alternately:

- baseline: valid users only (``valid`` requests, ``concurrency`` at once);
- flood: the same valid users mixed with ``bad`` tokens (garbage, expired, wrong audience,
  unknown kid, a quarter each), shuffled, at the same concurrency.

Reported: the valid users' p50/p99 under the flood against the baseline's (ratio), every status
seen (no 5xx allowed), records written (must equal the valid requests: nothing from a bad
token), and JWKS fetches during the flood against the bound ``1 + duration / cooldown``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import random
import secrets
import signal
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from hypercorn.asyncio import serve
from hypercorn.config import Config
from joserfc import jwt
from joserfc.jwk import RSAKey
from quart import Quart, Response

from benchmarks.harness import percentile, spread
from sluice.application.model import TopicSpec
from sluice.kafka import Consumer, KafkaSettings
from sluice.net import free_port

CLIENT_ID = "bench.apps.googleusercontent.com"
TOPIC = "auth-flood"
COOLDOWN = 60.0
KINDS = ("garbage", "expired", "wrong-audience", "unknown-kid")


@dataclass
class Jwks:
    key: RSAKey
    url: str = ""
    fetches: int = 0


@contextlib.asynccontextmanager
async def jwks_stand_in() -> AsyncIterator[Jwks]:
    """Google's JWKS endpoint, on loopback, counting fetches."""
    jwks = Jwks(RSAKey.generate_key(2048, parameters={"kid": "bench-1"}))
    app = Quart(__name__)

    @app.get("/certs")
    async def certs() -> Response:
        jwks.fetches += 1
        body = json.dumps({"keys": [jwks.key.as_dict(private=False)]})
        return Response(
            body, content_type="application/json", headers={"Cache-Control": "max-age=600"}
        )

    port = free_port()
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    config.loglevel = "WARNING"
    stop = asyncio.Event()
    task = asyncio.create_task(serve(app, config, shutdown_trigger=stop.wait))
    jwks.url = f"http://127.0.0.1:{port}/certs"
    try:
        async with httpx.AsyncClient(trust_env=False) as client:
            for _ in range(100):
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(jwks.url)).status_code == 200:
                        break
                await asyncio.sleep(0.05)
        jwks.fetches = 0
        yield jwks
    finally:
        stop.set()
        await task


def _claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "iss": "https://accounts.google.com",
        "aud": CLIENT_ID,
        "sub": secrets.token_hex(8),
        "iat": now - 10,
        "exp": now + 3600,
    }
    base.update(changes)
    return base


def _sign(key: RSAKey, claims: dict[str, Any], kid: str | None = None) -> str:
    return jwt.encode({"alg": "RS256", "kid": kid or str(key.kid)}, claims, key)


def bad_token(kind: str, key: RSAKey, stranger: RSAKey) -> str:
    now = int(time.time())
    if kind == "garbage":
        return secrets.token_urlsafe(random.randint(8, 600))
    if kind == "expired":
        return _sign(key, _claims(exp=now - 7200, iat=now - 9000))
    if kind == "wrong-audience":
        return _sign(key, _claims(aud="someone-else.apps.googleusercontent.com"))
    return _sign(stranger, _claims(), kid=secrets.token_hex(8))


@dataclass
class Phase:
    statuses: Counter[str] = field(default_factory=Counter)
    valid_latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0


async def drive(url: str, requests: list[tuple[str, str]], concurrency: int) -> Phase:
    """Send every (kind, token) as a produce; ``concurrency`` in flight."""
    phase = Phase()
    queue = iter(requests)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async def worker(client: httpx.AsyncClient) -> None:
        for kind, token in queue:
            started = time.perf_counter()
            response = await client.post(
                url, headers={"Authorization": f"Bearer {token}"}, json={"value": kind}
            )
            elapsed = time.perf_counter() - started
            phase.statuses[f"{kind} {response.status_code}"] += 1
            if kind == "valid":
                phase.valid_latencies.append(elapsed)

    async with httpx.AsyncClient(timeout=60, trust_env=False, limits=limits) as client:
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        phase.seconds = time.perf_counter() - started
    return phase


@contextlib.asynccontextmanager
async def sluice_run(bootstrap: str, work: Path, jwks_url: str) -> AsyncIterator[str]:
    """``sluice run`` of the guarded application, in its own process; yields the produce URL."""
    app = work / "auth-flood"
    app.mkdir(parents=True, exist_ok=True)
    (app / "pipeline.yaml").write_text(
        f"topics:\n  - name: {TOPIC}\n    creation-mode: create-if-not-exists\n"
    )
    (app / "gateways.yaml").write_text(
        "gateways:\n"
        "  - id: guarded\n"
        "    type: produce\n"
        f"    topic: {TOPIC}\n"
        "    authentication:\n"
        "      provider: google\n"
        f"      configuration: {{clientId: {CLIENT_ID}, jwksUri: '{jwks_url}'}}\n"
        "    produce-options:\n"
        "      headers:\n"
        "        - {key: langstream-client-user-id, value-from-authentication: subject}\n"
    )
    instance = work / "instance.yaml"
    instance.write_text(
        "instance:\n  streamingCluster:\n    type: kafka\n    configuration:\n"
        f"      admin: {{bootstrap.servers: '{bootstrap}'}}\n"
    )
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sluice.cli.main", "run", str(app), "-i", str(instance),
        "--tenant", "bench", "--app-id", "flood", "--gateway-port", str(port),
        "--state-dir", str(work / "state"), "--auth-failure-limit", "0",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "NO_COLOR": "1"},
    )  # fmt: skip
    assert process.stdout is not None
    lines: list[str] = []
    try:
        while True:
            line = (await asyncio.wait_for(process.stdout.readline(), 180)).decode()
            if not line:
                raise RuntimeError("sluice run stopped:\n" + "".join(lines))
            lines.append(line)
            if line.startswith("ready: "):
                break
        drain = asyncio.create_task(process.stdout.read())
        yield f"http://127.0.0.1:{port}/api/gateways/produce/bench/flood/guarded"
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
        await asyncio.wait_for(process.wait(), 60)
        with contextlib.suppress(NameError):
            await drain


async def written(bootstrap: str) -> int:
    async with Consumer(KafkaSettings(bootstrap), [TopicSpec(TOPIC)], start_at="end") as c:
        return sum([await c.position(t, p) for t, p in c.assignment()])


async def a1(
    bootstrap: str,
    work: Path,
    *,
    bad: int = 10_000,
    valid: int = 1_000,
    concurrency: int = 50,
    repetitions: int = 3,
) -> dict[str, Any]:
    async with jwks_stand_in() as jwks:
        stranger = RSAKey.generate_key(2048, parameters={"kid": "stranger"})
        print(f"A1: minting {valid} valid and {bad} bad tokens", flush=True)
        good = [("valid", _sign(jwks.key, _claims())) for _ in range(valid)]
        hostile = [
            (kind, bad_token(kind, jwks.key, stranger))
            for index in range(bad)
            for kind in [KINDS[index % len(KINDS)]]
        ]
        async with sluice_run(bootstrap, work, jwks.url) as url:
            await drive(url, good[:10], 1)  # warm: connections, topic, the key cache
            baseline_p99, flood_p99, baseline_p50, flood_p50 = [], [], [], []
            runs: list[dict[str, Any]] = []
            for repetition in range(repetitions):
                print(f"A1: repetition {repetition + 1}/{repetitions}", flush=True)
                base = await drive(url, list(good), concurrency)
                mixed = [*good, *hostile]
                random.shuffle(mixed)
                before_fetches, before_written = jwks.fetches, await written(bootstrap)
                flood = await drive(url, mixed, concurrency)
                fetches = jwks.fetches - before_fetches
                records = await written(bootstrap) - before_written
                bound = 1 + math.ceil(flood.seconds / COOLDOWN)
                baseline_p50.append(percentile(base.valid_latencies, 0.50) * 1000)
                baseline_p99.append(percentile(base.valid_latencies, 0.99) * 1000)
                flood_p50.append(percentile(flood.valid_latencies, 0.50) * 1000)
                flood_p99.append(percentile(flood.valid_latencies, 0.99) * 1000)
                runs.append(
                    {
                        "baseline_statuses": dict(base.statuses),
                        "flood_statuses": dict(flood.statuses),
                        "flood_seconds": flood.seconds,
                        "flood_requests_per_second": len(mixed) / flood.seconds,
                        "server_errors": sum(
                            n
                            for key, n in flood.statuses.items()
                            if key.split()[-1].startswith("5")
                        ),
                        "records_written_during_flood": records,
                        "jwks_fetches_during_flood": fetches,
                        "jwks_fetch_bound": bound,
                    }
                )
    ok = all(
        run["server_errors"] == 0
        and run["records_written_during_flood"] == valid
        and run["jwks_fetches_during_flood"] <= run["jwks_fetch_bound"]
        and run["flood_statuses"].get("valid 200") == valid
        and sum(n for k, n in run["flood_statuses"].items() if k.endswith(" 401")) == bad
        for run in runs
    )
    ratio = spread(flood_p99)["median"] / spread(baseline_p99)["median"]
    return {
        "id": "A1",
        "scenario": f"{bad} bad tokens ({', '.join(KINDS)}) mixed with {valid} valid users, "
        f"{concurrency} concurrent, google provider, limiter off",
        "baseline": f"the same {valid} valid users alone, same concurrency, same run",
        "valid_p50_ms_flood": spread(flood_p50),
        "valid_p99_ms_flood": spread(flood_p99),
        "valid_p50_ms_baseline": spread(baseline_p50),
        "valid_p99_ms_baseline": spread(baseline_p99),
        "ratio_p99_flood_over_baseline": ratio,
        "unit": "ms",
        "checks_passed": ok,
        "target": "zero 5xx, every bad token 401, nothing written for them, JWKS fetches <= "
        "1 + duration/60 s",
        "met": ok,
        "runs": runs,
    }
